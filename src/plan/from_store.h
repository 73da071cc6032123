// Builds a PlanProblem from stored profiles and links, and parses the CLI's constraint language.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "plan/problem.h"
#include "store/store.h"

namespace scission::plan {

struct PlanRequest {
  std::string model_key;
  // Which profile: input shapes the user named (--shape; a subset is enough when it picks one
  // profile), or an exact profile (a plan document's, when re-planning). Empty: the only one.
  std::vector<std::pair<std::string, std::vector<int64_t>>> shapes;
  std::optional<store::ProfileKey> profile;
  std::vector<std::string> tiers = {"device", "edge", "cloud"};
  std::vector<std::pair<std::string, std::string>> where;  // tier -> criteria text
  int privacy_blocks = 0;
  std::vector<std::pair<std::string, double>> max_upload_mb;  // tier -> MB
  std::vector<std::pair<std::string, std::string>> max_time;  // tier -> "0.5" s, "250ms", "40%"
  std::vector<std::pair<std::string, double>> max_memory_mb;  // resource -> MB
  std::vector<int64_t> block_weight_bytes;                    // needed for memory limits
  bool return_result = false;
  // Per-block compute statistic: "mean" (default; the original tool's choice, and right for
  // resources whose stalls are periodic, e.g. CPU quotas) or "median".
  std::string statistic = "mean";
  Objective objective = Objective::kLatency;
  int top_k = 5;
  // Codecs hops may use (DESIGN.md "Codecs"). Lossless ones are allowed by default; `codecs`
  // (--codecs) names the allowed set instead, lossy ones included; `max_output_error`
  // (--max-output-error, relative L2) also allows every lossy codec whose measured error at a cut
  // is within it. `codecs` = {"none"}: raw bytes only.
  std::vector<std::string> codecs;
  std::optional<double> max_output_error;
};

// Criteria for one tier: N, !N, -1, !-1, name, !name (comma-separated); N is a block index.
TierCriteria ParseTierCriteria(const std::string& text, const std::string& tier,
                               const std::vector<std::string>& tier_resources, int blocks);
// "0.5" seconds, "250ms", or "40%"; BadInput otherwise.
TimeLimit ParseTimeLimit(const std::string& text, const std::string& what);
Objective ParseObjective(const std::string& text);
std::string ObjectiveName(Objective objective);

// Reads the latest profile of every resource on the requested tiers and every stored link.
// BadInput when the model has no profiles, tiers have none, or names are unknown.
// `chosen` (may be null) receives the profile used.
PlanProblem BuildProblem(store::Store& store, const PlanRequest& request,
                         std::vector<std::string>* notes, store::ProfileKey* chosen = nullptr);
// The profile a request selects among the model's stored ones; BadInput listing them when none or
// several match.
store::ProfileKey SelectProfile(store::Store& store, const PlanRequest& request,
                                std::vector<std::string>* notes);

}  // namespace scission::plan
