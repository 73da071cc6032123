// `scission predict`: the original scission_predict.py's answers, to the digit, on its own data.
// Semantics (facts about the original, reimplemented):
// - For every (device, edge, cloud) system triple and every x in -1..n-1, y in -1..n-1 with y > x
//   or y = -1: the device runs blocks 0..x, the edge x+1..y, the cloud the rest up to n-1 (absent
//   if x or y is n-1). The device's name is always printed; an unused edge/cloud prints as None
//   with range -1 - -1. Identical configuration texts count once.
// - Device output = the last device block's output_size, or the input size when the device runs
//   nothing; it becomes 0 when the edge and cloud compute times are both 0; the edge output becomes
//   0 when the cloud compute time is 0 (the original tests times, not usage).
// - Transfer: ping + bytes / round(Mbit/s * 125000) per hop (device->edge[->cloud] or
//   device->cloud). Latency = compute + transfer. Sorted ascending, ties in generation order.
// All times in seconds, sizes in bytes, as in the original.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "store/scission_data.h"

namespace scission::plan {

// One tier's criteria in the original's language: N, !N, -1, !-1, name, !name (comma-separated).
struct CompatCriteria {
  std::vector<int> layers_in, layers_not_in;
  std::vector<std::string> systems_in, systems_not_in;
};

// Parses and validates against the tier's systems and the model's last layer; BadInput naming
// the flag (e.g. "-d: empty criterion in '3,,x'").
CompatCriteria ParseCompatCriteria(const std::string& text, const std::string& flag,
                                   const std::vector<std::string>& tier_systems, int last_layer);

struct CompatTimeLimit {
  double value = 0;
  bool percent = false;  // value is a percentage of the total compute time
};
// "0.5" (seconds) or "40%"; BadInput naming the flag otherwise.
CompatTimeLimit ParseCompatTimeLimit(const std::string& text, const std::string& flag);

struct CompatQuery {
  std::string model;  // matched case-insensitively, as the original lowercases it
  int result_count = 5;
  double input_mb = 0.15;
  std::string device_criteria, edge_criteria, cloud_criteria;
  std::optional<double> device_upload_mb, edge_upload_mb;
  std::optional<std::string> device_time, edge_time, cloud_time;
};

struct CompatScenario {
  std::string device, edge, cloud;  // "None" when unused (the device's name is always set)
  int device_first = -1, device_last = -1, edge_first = -1, edge_last = -1, cloud_first = -1,
      cloud_last = -1;                                    // layer numbers, -1 when unused
  double device_time = 0, edge_time = 0, cloud_time = 0;  // seconds
  double device_output = 0, edge_output = 0;              // bytes after the original's zeroing
  double transfer = 0;                                    // seconds
  double latency = 0;                                     // seconds
  std::string config;  // "Device(a) = s - e, Edge(b) = s - e, Cloud(c) = s - e"
};

// The ranked results (at most query.result_count). Throws BadInput for unknown models, missing
// links and bad criteria.
std::vector<CompatScenario> PredictCompat(const std::vector<store::ScissionSystem>& systems,
                                          const std::vector<store::ScissionLink>& links,
                                          const CompatQuery& query);

// "[k] 9.0106s - 2.4087MB - Device(raspi4) = 0 - 6, Edge(...) = ..., Cloud(...) = ..."
std::string FormatCompatLine(int rank, const CompatScenario& scenario);

}  // namespace scission::plan
