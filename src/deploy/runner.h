// `scission run`: deploys one plan across workers and measures it against its prediction.
// The first tier's segment runs in this process; the cut tensor goes to the next tier's worker,
// which forwards worker to worker; the result comes back along the chain.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "deploy/wire.h"
#include "graph/analysis.h"
#include "plan/document.h"
#include "profile/inputs.h"

namespace scission::deploy {

struct RunOptions {
  plan::PlanDocument plan_doc;  // what `scission plan --json` printed
  int rank = 1;
  std::map<std::string, std::string> workers;  // resource -> host:port
  int requests = 20;
  int warmup = 2;
  int concurrency = 1;
  int threads = 0;  // intra-op threads of the local (first-tier) segment; workers use their own
  // Input values (--input); the shapes are the plan's profile's (a --shape must agree with them).
  profile::InputOptions inputs;
  graph::AnalysisOptions analysis;  // --max-cut-tensors: as the plan's profile was benchmarked
  // On a dead worker, re-plan over the remaining resources with the plan document's own request
  // (every constraint the user gave), from the profiles and links in db_path.
  bool fallback_replan = false;
  std::string db_path;
  ConnectOptions connect;
  int request_timeout_ms = 60000;
  void Validate() const;
};

struct StageSummary {
  std::string name;  // resource, or "a->b" for a hop
  double predicted_ms = 0;
  double median_ms = 0, p90_ms = 0;
  // Hops only: the codec, the bytes on the link, and the encode/decode parts of predicted_ms and
  // of the measured times (medians).
  std::string codec;
  int64_t bytes = 0;
  double predicted_encode_ms = 0, predicted_decode_ms = 0;
  double encode_ms = 0, decode_ms = 0;
};

struct RunSummary {
  plan::PlannedRun plan;  // the plan that ran first
  int requests = 0, ok = 0, failed = 0, replans = 0;
  std::vector<plan::PlannedRun> replanned;  // each plan a re-plan switched to, in order
  std::map<std::string, int> errors;        // message -> count
  std::vector<StageSummary> stages, hops;
  StageSummary total;
  double wall_ms = 0;
  double throughput_per_s = 0, predicted_throughput_per_s = 0;
  std::vector<double> latencies_ms;
  // A plan with a lossy hop: the outputs of its first answered request against the whole model
  // run here on the same input, in one session on this first tier. Relative L2 pooled per output
  // (worst output), max abs, top-1 for class scores (-1 when none). -1 everywhere: not measured
  // (no lossy hop, nothing answered, or the whole model could not run here).
  double output_rel_l2 = -1, output_max_abs = -1, output_top1 = -1;
};

RunSummary RunPlan(const RunOptions& options, const std::function<void(const std::string&)>& note);
nlohmann::ordered_json SummaryJson(const RunSummary& summary);

}  // namespace scission::deploy
