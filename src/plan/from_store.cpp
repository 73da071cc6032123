#include "plan/from_store.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <set>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "codec/codec.h"
#include "common/error.h"
#include "common/text.h"
#include "profile/inputs.h"

namespace scission::plan {

namespace {

int TierIndex(const std::vector<std::string>& tiers, const std::string& tier,
              const std::string& what) {
  auto it = std::find(tiers.begin(), tiers.end(), tier);
  if (it == tiers.end())
    throw BadInput("{}: unknown tier '{}' (tiers: {})", what, tier, fmt::join(tiers, ","));
  return static_cast<int>(it - tiers.begin());
}

// The codecs a hop may use at each boundary (PlanProblem::codecs) and what they cost on each
// resource, from the resources' latest runs. Bytes and output error are the largest any resource
// measured (they depend on the data, not the machine). Allowed: lossless codecs, or those
// request.codecs names; with request.max_output_error also the lossy ones measured within it.
void AddCodecs(const PlanRequest& request, const std::vector<store::ProfileView>& views,
               PlanProblem& p, std::vector<std::string>* notes) {
  const bool named = !request.codecs.empty();
  auto allowed = [&](const codec::Codec& c, double error) {
    if (c.name() == "none") return false;  // raw: always there, not a choice of its own
    const bool listed =
        std::find(request.codecs.begin(), request.codecs.end(), c.name()) != request.codecs.end();
    if (!c.lossy()) return named ? listed : true;
    // A lossy codec whose cost in fidelity is unknown here is never used.
    if (!(error >= 0)) return false;
    if (request.max_output_error && error > *request.max_output_error) return false;
    return named ? listed : request.max_output_error.has_value();
  };
  for (const auto& name : request.codecs) codec::Get(name, "--codecs");
  if (p.blocks == 0 || request.codecs == std::vector<std::string>{"none"}) return;
  p.codecs.assign(static_cast<size_t>(p.blocks) + 1, {});
  for (auto& r : p.resources) r.codec_cost.assign(static_cast<size_t>(p.blocks) + 1, {});
  int dropped = 0;
  bool lossy_measured = false;
  for (int b = 0; b <= p.blocks; ++b) {
    const int64_t raw = b == p.blocks ? p.output_bytes.back() : p.BytesAtBoundary(b);
    for (const auto& name : codec::Names()) {
      const codec::Codec& c = codec::Get(name, "codec");
      CodecChoice choice{.name = name, .bytes = -1, .output_error = 0};
      bool lossy_unmeasured = false;
      for (const auto& v : views)
        for (const auto& m : v.codecs)
          if (m.boundary == b && m.codec == name && m.raw_bytes == raw) {
            choice.bytes = std::max(choice.bytes, m.bytes);
            if (c.lossy()) {
              if (m.rel_l2_error < 0) lossy_unmeasured = true;
              choice.output_error = std::max(choice.output_error, m.rel_l2_error);
            }
          }
      if (choice.bytes < 0) continue;  // nobody measured it here
      lossy_measured |= c.lossy() && !lossy_unmeasured;
      if (lossy_unmeasured) choice.output_error = -1;
      if (!allowed(c, choice.output_error)) {
        dropped += c.lossy() && request.max_output_error ? 1 : 0;
        continue;
      }
      choice.output_error = std::max(choice.output_error, 0.0);
      const size_t i = p.codecs[static_cast<size_t>(b)].size();
      p.codecs[static_cast<size_t>(b)].push_back(choice);
      for (auto& r : p.resources) {
        auto& costs = r.codec_cost[static_cast<size_t>(b)];
        costs.resize(i + 1);
        for (const auto& v : views)
          if (v.resource == r.name)
            for (const auto& m : v.codecs)
              if (m.boundary == b && m.codec == name && m.raw_bytes == raw)
                costs[i] = {m.encode_ms, m.decode_ms};
      }
    }
  }
  const bool lossy_asked =
      request.max_output_error.has_value() ||
      std::any_of(request.codecs.begin(), request.codecs.end(),
                  [](const std::string& n) { return codec::Get(n, "--codecs").lossy(); });
  if (notes && lossy_asked && !lossy_measured)
    notes->push_back(
        "no lossy codec was measured with its fidelity in this profile, so none is used; "
        "benchmark with --codecs all (and --fidelity-input for real data)");
  if (notes && dropped > 0)
    notes->push_back(fmt::format(
        "{} lossy codec choices (boundary x codec) are over --max-output-error {:g} and not used",
        dropped, *request.max_output_error));
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

namespace {

std::string ProfileText(const store::ProfileKey& key) {
  std::string shapes = key.input_shapes.empty() ? "shapes not recorded" : key.input_shapes;
  return key.partition.empty()
             ? shapes
             : fmt::format("{} (partition {})", shapes, key.partition.substr(0, 8));
}

}  // namespace

store::ProfileKey SelectProfile(store::Store& store, const PlanRequest& request,
                                std::vector<std::string>* notes) {
  auto profiles = store.Profiles(request.model_key);
  if (profiles.empty())
    throw BadInput("no benchmark of model {} in {}; run `scission benchmark` first",
                   request.model_key, store.path());
  if (request.profile) {
    for (const auto& p : profiles)
      if (p.key == *request.profile) return p.key;
    throw BadInput("the store has no profile {} of model {} any more",
                   ProfileText(*request.profile), request.model_key.substr(0, 16));
  }
  // One profile per set of input shapes: the newest partition at those shapes (Profiles() lists
  // the newest first); older partitions are benchmarks to repeat.
  std::vector<store::ProfileSummary> candidates;
  for (const auto& p : profiles) {
    bool seen = std::any_of(candidates.begin(), candidates.end(), [&](const auto& c) {
      return c.key.input_shapes == p.key.input_shapes;
    });
    if (seen) continue;
    if (!request.shapes.empty() && (p.key.input_shapes.empty() ||
                                    !profile::ShapeKeyMatches(p.key.input_shapes, request.shapes)))
      continue;
    candidates.push_back(p);
  }
  // Profiles stored before shapes were recorded count only when nothing newer exists.
  if (candidates.size() > 1)
    std::erase_if(candidates, [](const auto& c) { return c.key.input_shapes.empty(); });
  auto listing = [&] {
    std::vector<std::string> items;
    for (const auto& p : profiles)
      items.push_back(fmt::format("{} [{}]", ProfileText(p.key), fmt::join(p.resources, ", ")));
    return fmt::format("{}", fmt::join(items, "; "));
  };
  if (candidates.empty())
    throw BadInput("no benchmark of model {} at the given --shape; stored profiles: {}",
                   request.model_key.substr(0, 16), listing());
  if (candidates.size() > 1)
    throw BadInput("model {} has profiles at several input shapes; choose one with --shape: {}",
                   request.model_key.substr(0, 16), listing());
  if (notes) notes->push_back("profile: " + ProfileText(candidates.front().key));
  return candidates.front().key;
}

PlanProblem BuildProblem(store::Store& store, const PlanRequest& request,
                         std::vector<std::string>* notes, store::ProfileKey* chosen) {
  PlanProblem p;
  p.tiers = request.tiers;
  if (request.statistic != "mean" && request.statistic != "median")
    throw BadInput("--statistic must be mean or median, got '{}'", request.statistic);
  if (p.tiers.empty()) throw BadInput("--tiers must name at least one tier");
  std::set<std::string> unique(p.tiers.begin(), p.tiers.end());
  if (unique.size() != p.tiers.size()) throw BadInput("--tiers lists a tier twice");
  const store::ProfileKey key = SelectProfile(store, request, notes);
  if (chosen) *chosen = key;
  auto views = store.LatestProfiles(request.model_key, key);
  if (views.empty())
    throw BadInput("no resource's latest benchmark of model {} is in profile {}; benchmark again",
                   request.model_key.substr(0, 16), ProfileText(key));
  if (notes) {
    // Resources with a benchmark of this model, but not in the chosen profile.
    std::set<std::string> named;
    for (const auto& other : store.Profiles(request.model_key))
      for (const auto& r : other.resources)
        if (std::none_of(views.begin(), views.end(),
                         [&](const auto& v) { return v.resource == r; }) &&
            named.insert(r).second)
          notes->push_back(fmt::format(
              "resource {} has no benchmark of this model in profile {} (it has {}); benchmark it "
              "again to use it",
              r, ProfileText(key), ProfileText(other.key)));
  }
  p.blocks = static_cast<int>(views.front().blocks.size());
  p.input_bytes = views.front().input_bytes;
  // Bytes at each boundary as measured at these input shapes; imported data has no measurement
  // of its own sizes beyond the block records.
  for (size_t b = 0; b < views.front().blocks.size(); ++b) {
    const auto& m = views.front().block_measurements;
    p.output_bytes.push_back(b < m.size() && m[b].output_bytes > 0
                                 ? m[b].output_bytes
                                 : views.front().blocks[b].output_bytes);
  }
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
  if (p.resources.empty() || p.resources.front().tier != 0) {
    // The input starts on the first tier; say where the benchmarks are instead.
    std::vector<std::string> have;
    for (const auto& v : views)
      if (std::find(have.begin(), have.end(), v.tier) == have.end()) have.push_back(v.tier);
    throw BadInput(
        "no resource of tier '{}' (the first of --tiers, where the input starts) has a benchmark "
        "in this profile; benchmarked tiers: {} — pass --tiers starting with one of them, e.g. "
        "--tiers {}",
        p.tiers.front(), fmt::join(have, ", "), fmt::join(have, ","));
  }
  for (const auto& l : store.Links()) p.links[{l.source, l.destination}] = {l.rtt_ms, l.mbps};
  if (notes)
    for (const auto& a : p.resources)
      for (const auto& b : p.resources)
        if (a.tier < b.tier && !p.links.count({a.name, b.name}))
          notes->push_back(fmt::format(
              "no link {} -> {} stored; plans using it are skipped (scission network set / probe)",
              a.name, b.name));

  AddCodecs(request, views, p, notes);

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
