// The plan document: what `scission plan --json` prints and `scission run` (and later `serve`)
// reads. It carries the whole request it answers (tiers, criteria, privacy, caps, statistic,
// objective, return hop), so every re-plan made from it — after a worker dies, or when
// conditions change — honours exactly the user's constraints. Read back with every field checked.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "plan/from_store.h"
#include "plan/problem.h"

namespace scission::plan {

struct PlannedStage {
  std::string tier, resource;
  int first_block = 0, last_block = -1;  // last < first: the stage only sends the input
  double compute_ms = 0;
};

struct PlannedHop {
  std::string from, to;
  int64_t bytes = 0;  // on the link, after the codec
  double ms = 0;      // encode + RTT + bytes / bandwidth + decode
  // The hop's codec (a registry name; "none": raw), the boundary's bytes before it, its times on
  // the sender and the receiver, and the relative L2 error it costs the model's outputs. A
  // document written before codecs reads as codec "none", raw_bytes = bytes, zero times.
  std::string codec = "none";
  int64_t raw_bytes = 0;
  double encode_ms = 0, decode_ms = 0, output_error = 0;
};

struct PlannedRun {
  int rank = 1;
  double latency_ms = 0, compute_ms = 0, transfer_ms = 0, bottleneck_ms = 0;
  int64_t uplink_bytes = 0;
  double output_error = 0;  // sum over the hops (0: exact)
  std::vector<PlannedStage> stages;
  std::vector<PlannedHop> hops;
};

struct PlanDocument {
  struct Model {
    std::string key, name, path, origin;
  } model;
  PlanRequest request;
  store::ProfileKey profile;  // the profile the plans were made from (input shapes, partition)
  std::vector<std::string> tiers;
  std::string objective;  // "latency", "throughput", "uplink" or "pareto:latency,uplink"
  int blocks = 0;
  int64_t input_bytes = 0;
  std::vector<int64_t> output_bytes;
  std::vector<PlannedRun> plans;
  std::vector<std::string> notes;
};

PlannedRun ToPlannedRun(const PlanProblem& problem, const PlanCandidate& candidate, int rank);
// "device 0-3 | edge 4-7" ("device (input only)" for a stage that runs no block).
std::string LayoutText(const PlannedRun& run);
// "pi->gpu 12.30 ms"; with a codec, the bytes on the wire and raw:
// "pi->gpu 300.0 kB (zstd, raw 1.00 MB) 12.30 ms".
std::string HopText(const PlannedHop& hop);
// What makes two plans the same chain: LayoutText and every hop's codec, as LayoutText alone
// when every hop is raw, else "device 0-3 | edge 4-7 [lz4,none]" (one codec per hop).
std::string PlanKey(const PlannedRun& run);

nlohmann::ordered_json ToJson(const PlanDocument& document);
nlohmann::ordered_json ToJson(const PlannedRun& run);
nlohmann::ordered_json ToJson(const PlanRequest& request);
// BadInput "<what>: ..." naming the first missing or malformed field.
PlanDocument PlanDocumentFromJson(const nlohmann::json& doc, const std::string& what);
PlannedRun PlannedRunFromJson(const nlohmann::json& doc, const std::string& what);
PlanRequest PlanRequestFromJson(const nlohmann::json& doc, const std::string& what);

}  // namespace scission::plan
