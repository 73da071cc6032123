#include "profile/harness.h"

#include <chrono>

#include "common/error.h"

namespace scission::profile {

using Clock = std::chrono::steady_clock;

double ElapsedMs(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

void HarnessOptions::Validate() const {
  if (warmup_runs < 1 || warmup_runs > 100000)
    throw BadInput("--warmup must be 1..100000 (the first run is a warm-up), got {}", warmup_runs);
  if (min_runs < 1) throw BadInput("--repeats must be at least 1, got {}", min_runs);
  if (max_runs < min_runs)
    throw BadInput("max runs ({}) must not be below --repeats ({})", max_runs, min_runs);
  // The negated comparisons also catch NaN; and infinity.
  if (!(warmup_min_ms >= 0 && warmup_min_ms <= 1e9))
    throw BadInput("minimum warm-up time must be 0..1e9 ms, got {}", warmup_min_ms);
  if (!(min_time_ms >= 0 && min_time_ms <= 1e9))
    throw BadInput("--min-time-ms must be 0..1e9, got {}", min_time_ms);
}

Timing TimeRuns(const std::function<void()>& run, const HarnessOptions& options) {
  options.Validate();
  Timing timing;
  const auto begin = Clock::now();
  auto timed = [&run, &options] {
    if (options.cancel) options.cancel->ThrowIfCancelled("timing");
    auto start = Clock::now();
    run();
    return ElapsedMs(start);
  };
  timing.first_run_ms = timed();
  timing.warmup_ms.push_back(timing.first_run_ms);
  while (static_cast<int>(timing.warmup_ms.size()) < options.warmup_runs ||
         ElapsedMs(begin) < options.warmup_min_ms)
    timing.warmup_ms.push_back(timed());

  const auto measure_begin = Clock::now();
  while (static_cast<int>(timing.samples_ms.size()) < options.max_runs &&
         (static_cast<int>(timing.samples_ms.size()) < options.min_runs ||
          ElapsedMs(measure_begin) < options.min_time_ms))
    timing.samples_ms.push_back(timed());
  timing.total_ms = ElapsedMs(begin);
  timing.stats = Summarize(timing.samples_ms);
  return timing;
}

}  // namespace scission::profile
