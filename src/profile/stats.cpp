#include "profile/stats.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

namespace scission::profile {

double Mean(const std::vector<double>& samples) {
  if (samples.empty()) return std::numeric_limits<double>::quiet_NaN();
  return std::accumulate(samples.begin(), samples.end(), 0.0) / static_cast<double>(samples.size());
}

double StdDev(const std::vector<double>& samples) {
  if (samples.size() < 2) return 0.0;
  double mean = Mean(samples), sum = 0.0;
  for (double x : samples) sum += (x - mean) * (x - mean);
  return std::sqrt(sum / static_cast<double>(samples.size() - 1));
}

double Percentile(std::vector<double> samples, double q) {
  if (samples.empty()) return std::numeric_limits<double>::quiet_NaN();
  q = std::clamp(q, 0.0, 1.0);
  std::sort(samples.begin(), samples.end());
  double h = static_cast<double>(samples.size() - 1) * q;
  size_t lo = static_cast<size_t>(std::floor(h));
  size_t hi = static_cast<size_t>(std::ceil(h));
  return samples[lo] + (h - static_cast<double>(lo)) * (samples[hi] - samples[lo]);
}

double Median(const std::vector<double>& samples) { return Percentile(samples, 0.5); }

SampleStats Summarize(const std::vector<double>& samples) {
  SampleStats s;
  s.n = samples.size();
  if (samples.empty()) return s;
  auto [lo, hi] = std::minmax_element(samples.begin(), samples.end());
  s.min = *lo;
  s.max = *hi;
  s.mean = Mean(samples);
  s.median = Median(samples);
  s.stddev = StdDev(samples);
  s.p90 = Percentile(samples, 0.90);
  s.p95 = Percentile(samples, 0.95);
  return s;
}

}  // namespace scission::profile
