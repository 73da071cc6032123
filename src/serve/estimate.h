// One estimated quantity of the adaptive server (a resource's slowdown, a link's bandwidth or
// RTT) from its last few samples. Used by serve/adapter.cpp; separate so its rules are testable.
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <deque>
#include <string>
#include <vector>

namespace scission::serve {

// What one sample did to an estimate.
enum class Moved {
  kNo,
  kMedian,   // the median moved by more than a third
  kOutlier,  // beyond a factor 2 of the estimate: a change, or noise? (a probe will tell)
  kShift,    // the second sample in a row beyond a factor 2 on the same side: the history goes
};

// The last few samples of one quantity. The median ignores a single outlier; two samples in a row
// beyond a factor 2 on the same side of it are a level shift and replace the history, so a step
// is followed after two samples (a confirming probe is asked for after the first) instead of
// three. A single sample is never enough, however far off: a request that stalled once looks just
// like the first one on a link that has dropped (in the demo, acting on one sample 8x off made a
// switch that measured 41% worse). `min` serves RTTs (queueing only ever adds).
struct Estimate {
  std::deque<double> samples;
  std::chrono::steady_clock::time_point updated{};
  std::string source;     // "live" or "probe"
  int outlier_side = 0;   // +1 / -1 while the last sample was an outlier
  double outlier_of = 0;  // the median it was an outlier of
  Moved Add(double v, const char* from) {
    updated = std::chrono::steady_clock::now();
    source = from;
    if (samples.empty()) {
      samples.push_back(v);
      return Moved::kNo;
    }
    const double ref = outlier_side != 0 ? outlier_of : Median();
    const int side = v > 2 * ref ? 1 : v < ref / 2 ? -1 : 0;
    if (side != 0 && side == outlier_side) {
      const double first = samples.back();
      samples = {first, v};
      outlier_side = 0;
      return Moved::kShift;
    }
    outlier_side = side;
    outlier_of = ref;
    const bool moves = ref > 0 && std::fabs(v / ref - 1) > 0.33;
    samples.push_back(v);
    if (samples.size() > 5) samples.pop_front();
    if (side != 0) return Moved::kOutlier;
    return moves ? Moved::kMedian : Moved::kNo;
  }
  bool Fresh(int max_age_ms) const { return !samples.empty() && AgeMs() <= max_age_ms; }
  // Of an even count, the mean of the middle two (after a shift: of both samples).
  double Median() const {
    std::vector<double> v(samples.begin(), samples.end());
    std::sort(v.begin(), v.end());
    const size_t n = v.size();
    return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
  }
  double Min() const { return *std::min_element(samples.begin(), samples.end()); }
  double AgeMs() const {
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - updated)
        .count();
  }
};

}  // namespace scission::serve
