// The one timing harness (STYLE.md rule 4). Times are milliseconds from std::chrono::steady_clock.
// The very first call is reported apart (first_run_ms) and counts as warm-up run 1; warm-up goes
// on until both warmup_runs and warmup_min_ms are reached; measured runs until both min_runs and
// min_time_ms are reached, capped by max_runs. Raw samples are kept.
#pragma once

#include <chrono>
#include <functional>
#include <vector>

#include "common/cancel.h"
#include "profile/stats.h"

namespace scission::profile {

struct HarnessOptions {
  int warmup_runs = 2;            // >= 1: the first run is always a warm-up run
  double warmup_min_ms = 0;       // keep warming up at least this long
  int min_runs = 10;              // measured runs ("--repeats")
  double min_time_ms = 0;         // keep measuring at least this long
  int max_runs = 100000;          // hard cap on measured runs
  CancelToken* cancel = nullptr;  // checked before every run (BadInput "cancelled" when set)
  void Validate() const;          // BadInput naming the bad option
};

struct Timing {
  double first_run_ms = 0;
  std::vector<double> warmup_ms;   // includes the first run
  std::vector<double> samples_ms;  // measured runs only
  SampleStats stats;               // over samples_ms
  double total_ms = 0;             // wall time of all runs including warm-up
};

Timing TimeRuns(const std::function<void()>& run, const HarnessOptions& options);

// Milliseconds since `start` on the steady clock.
double ElapsedMs(std::chrono::steady_clock::time_point start);

}  // namespace scission::profile
