// An adaptive-serving run read back for the report (issue 9): the load generator's request records,
// the adapter's switch log and the demo's phases, all from one directory that
// `scission demo --scenario adaptive` writes. Times are Unix epoch milliseconds, latencies ms.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace scission::report {

// One line of `scission loadgen --records`.
struct RequestPoint {
  double start_unix_ms = 0;
  std::optional<double> latency_ms;  // none: no reply came (code LOST)
  std::string code;                  // a gRPC status name, "OK", or loadgen's own (LOST, ...)
  bool ok() const { return code == "OK"; }
};

// One condition of the test bed (link rate, CPU share), [start, end).
struct PhaseSpan {
  std::string name;
  double start_unix_ms = 0, end_unix_ms = 0;
};

// One line of the adapter's switch log (`serve --switch-log`); gains are fractions (0.25 = 25%
// faster), nullopt where the log has null.
struct SwitchMark {
  double time_unix_ms = 0;  // when the new chain took over (after its install)
  std::string trigger, from, to;
  std::optional<double> predicted_gain, measured_gain, install_ms;
};

struct Timeline {
  std::string source;  // the directory it was read from, for the page
  std::vector<RequestPoint> requests;
  std::vector<PhaseSpan> phases;     // sorted by start
  std::vector<SwitchMark> switches;  // sorted by time
  // The x origin: the first phase's start, else the first request's start (0 for an empty run).
  double OriginUnixMs() const;
};

inline constexpr const char* kRequestsFile = "adaptive-requests.jsonl";
inline constexpr const char* kSwitchesFile = "adaptive-switches.jsonl";
inline constexpr const char* kPhasesFile = "adaptive-phases.json";

// Reads `dir`/adaptive-requests.jsonl (required), adaptive-switches.jsonl (absent: no switches)
// and adaptive-phases.json (absent: no phases). BadInput "<file>:<line>: <what>" for a malformed
// JSON Lines line, "<file>: <what>" for a missing requests file or a malformed phases file.
Timeline ReadTimeline(const std::string& dir);

// Per phase (a request belongs to the phase its start falls in): counts, and latency statistics
// over the requests that succeeded (NaN when none did). Requests outside every phase get a row
// of their own named "outside the phases"; without phases there is one row, "whole run".
struct PhaseStats {
  std::string name;
  size_t requests = 0, errors = 0;
  double mean_ms = 0, p50_ms = 0, p95_ms = 0;
};
std::vector<PhaseStats> SummarizePhases(const Timeline& timeline);

}  // namespace scission::report
