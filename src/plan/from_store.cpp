#include "plan/from_store.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <set>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "common/error.h"
#include "common/text.h"

namespace scission::plan {

namespace {

int TierIndex(const std::vector<std::string>& tiers, const std::string& tier,
              const std::string& what) {
  auto it = std::find(tiers.begin(), tiers.end(), tier);
  if (it == tiers.end())
    throw BadInput("{}: unknown tier '{}' (tiers: {})", what, tier, fmt::join(tiers, ","));
  return static_cast<int>(it - tiers.begin());
}

}  // namespace

TierCriteria ParseTierCriteria(const std::string& text, const std::string& tier,
                               const std::vector<std::string>& tier_resources, int blocks) {
  TierCriteria c;
  std::string what = "criteria for tier " + tier;
  for (const auto& raw : SplitCommas(text)) {
    std::string item = Strip(raw);
    if (item.empty()) throw BadInput("{}: empty criterion in '{}'", what, text);
    bool negate = item[0] == '!';
    std::string body = negate ? item.substr(1) : item;
    if (body.empty()) throw BadInput("{}: '!' without a block or resource in '{}'", what, text);
    if (body == "-1") {
      (negate ? c.must_be_used : c.must_be_unused) = true;
    } else if (AllDigits(body)) {
      int block = 0;
      auto [ptr, ec] = std::from_chars(body.data(), body.data() + body.size(), block);
      if (ec != std::errc() || block >= blocks)
        throw BadInput("{}: block {} is beyond the model's last block {}", what, body, blocks - 1);
      (negate ? c.blocks_not_in : c.blocks_in).push_back(block);
    } else {
      if (std::find(tier_resources.begin(), tier_resources.end(), body) == tier_resources.end())
        throw BadInput("{}: unknown resource '{}' (this tier has: {})", what, body,
                       tier_resources.empty() ? std::string("none")
                                              : fmt::format("{}", fmt::join(tier_resources, ", ")));
      (negate ? c.excluded_resources : c.only_resources).push_back(body);
    }
  }
  if (c.must_be_unused && (c.must_be_used || !c.blocks_in.empty() || !c.only_resources.empty()))
    throw BadInput("{}: '-1' (unused) contradicts the other criteria in '{}'", what, text);
  return c;
}

TimeLimit ParseTimeLimit(const std::string& text, const std::string& what) {
  TimeLimit limit;
  std::string number = Strip(text);
  double scale = 1000.0;  // seconds -> ms
  if (number.ends_with("%")) {
    limit.percent = true;
    scale = 1.0;
    number.pop_back();
  } else if (number.ends_with("ms")) {
    scale = 1.0;
    number.resize(number.size() - 2);
  } else if (number.ends_with("s")) {
    number.pop_back();
  }
  auto [ptr, ec] = std::from_chars(number.data(), number.data() + number.size(), limit.value);
  if (number.empty() || ec != std::errc() || ptr != number.data() + number.size() ||
      !std::isfinite(limit.value) || limit.value < 0)
    throw BadInput("{}: '{}' is not a time (0.5 = seconds, 250ms, or 40%)", what, text);
  limit.value *= scale;
  return limit;
}

Objective ParseObjective(const std::string& text) {
  if (text == "latency") return Objective::kLatency;
  if (text == "throughput") return Objective::kThroughput;
  if (text == "uplink") return Objective::kUplink;
  throw BadInput("--objective must be latency, throughput or uplink, got '{}'", text);
}

std::string ObjectiveName(Objective objective) {
  switch (objective) {
    case Objective::kThroughput:
      return "throughput";
    case Objective::kUplink:
      return "uplink";
    default:
      return "latency";
  }
}

PlanProblem BuildProblem(store::Store& store, const PlanRequest& request,
                         std::vector<std::string>* notes) {
  PlanProblem p;
  p.tiers = request.tiers;
  if (request.statistic != "mean" && request.statistic != "median")
    throw BadInput("--statistic must be mean or median, got '{}'", request.statistic);
  if (p.tiers.empty()) throw BadInput("--tiers must name at least one tier");
  std::set<std::string> unique(p.tiers.begin(), p.tiers.end());
  if (unique.size() != p.tiers.size()) throw BadInput("--tiers lists a tier twice");
  auto views = store.LatestProfiles(request.model_key);
  if (views.empty())
    throw BadInput("no benchmark of model {} in {}; run `scission benchmark` first",
                   request.model_key, store.path());
  p.blocks = static_cast<int>(views.front().blocks.size());
  p.input_bytes = views.front().input_bytes;
  for (const auto& b : views.front().blocks) p.output_bytes.push_back(b.output_bytes);
  for (const auto& v : views) {
    auto it = std::find(p.tiers.begin(), p.tiers.end(), v.tier);
    if (it == p.tiers.end()) {
      if (notes)
        notes->push_back(
            fmt::format("resource {} (tier {}) is not on --tiers; ignored", v.resource, v.tier));
      continue;
    }
    if (static_cast<int>(v.block_measurements.size()) != p.blocks)
      throw BadInput("resource {} has {} block measurements for model {}, expected {}", v.resource,
                     v.block_measurements.size(), request.model_key, p.blocks);
    ResourceProfile r;
    r.name = v.resource;
    r.tier = static_cast<int>(it - p.tiers.begin());
    for (const auto& m : v.block_measurements)
      r.block_ms.push_back(request.statistic == "median" ? m.median_ms : m.mean_ms);
    p.resources.push_back(std::move(r));
  }
  std::sort(p.resources.begin(), p.resources.end(), [](const auto& a, const auto& b) {
    return a.tier < b.tier || (a.tier == b.tier && a.name < b.name);
  });
  for (const auto& l : store.Links()) p.links[{l.source, l.destination}] = {l.rtt_ms, l.mbps};
  if (notes)
    for (const auto& a : p.resources)
      for (const auto& b : p.resources)
        if (a.tier < b.tier && !p.links.count({a.name, b.name}))
          notes->push_back(fmt::format(
              "no link {} -> {} stored; plans using it are skipped (scission network set / probe)",
              a.name, b.name));

  p.criteria.resize(p.tiers.size());
  auto resources_of = [&](int tier) {
    std::vector<std::string> names;
    for (const auto& r : p.resources)
      if (r.tier == tier) names.push_back(r.name);
    return names;
  };
  for (const auto& [tier, text] : request.where) {
    int t = TierIndex(p.tiers, tier, "--where");
    TierCriteria parsed = ParseTierCriteria(text, tier, resources_of(t), p.blocks);
    auto& c = p.criteria[static_cast<size_t>(t)];
    c.blocks_in.insert(c.blocks_in.end(), parsed.blocks_in.begin(), parsed.blocks_in.end());
    c.blocks_not_in.insert(c.blocks_not_in.end(), parsed.blocks_not_in.begin(),
                           parsed.blocks_not_in.end());
    c.only_resources.insert(c.only_resources.end(), parsed.only_resources.begin(),
                            parsed.only_resources.end());
    c.excluded_resources.insert(c.excluded_resources.end(), parsed.excluded_resources.begin(),
                                parsed.excluded_resources.end());
    c.must_be_used |= parsed.must_be_used;
    c.must_be_unused |= parsed.must_be_unused;
  }
  p.privacy_blocks = request.privacy_blocks;
  for (const auto& [tier, mb] : request.max_upload_mb) {
    if (!(mb >= 0 && mb <= 1e6)) throw BadInput("--max-upload {}: must be 0..1e6 MB", tier);
    p.max_upload_bytes[TierIndex(p.tiers, tier, "--max-upload")] =
        static_cast<int64_t>(std::floor(mb * 1e6));
  }
  for (const auto& [tier, text] : request.max_time)
    p.max_time[TierIndex(p.tiers, tier, "--max-time")] = ParseTimeLimit(text, "--max-time " + tier);
  for (const auto& [resource, mb] : request.max_memory_mb) {
    bool known = std::any_of(p.resources.begin(), p.resources.end(),
                             [&](const auto& r) { return r.name == resource; });
    if (!known) throw BadInput("--max-memory: unknown resource '{}'", resource);
    if (!(mb >= 0 && mb <= 1e6)) throw BadInput("--max-memory {}: must be 0..1e6 MB", resource);
    p.max_memory_bytes[resource] = static_cast<int64_t>(std::floor(mb * 1e6));
  }
  p.block_weight_bytes = request.block_weight_bytes;
  p.return_result = request.return_result;
  p.objective = request.objective;
  p.top_k = request.top_k;
  p.Validate();
  return p;
}

}  // namespace scission::plan
