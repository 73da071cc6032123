#include "plan/planner.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <deque>
#include <functional>
#include <limits>
#include <memory>
#include <optional>
#include <set>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "common/error.h"

namespace scission::plan {

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr int kMaxBlocks = 1 << 20;
constexpr double kMaxMs = 1e12;  // ~32 years: sums of times over kMaxBlocks stay finite
// 4 TiB: weight sums over kMaxBlocks blocks stay far inside int64.
constexpr int64_t kMaxBytes = int64_t{1} << 42;
constexpr double kMinMbps = 1e-6;  // 1 bit/s; slower links would turn transfer times into inf
// Search bounds (DESIGN.md "Native planner"): k-best entries (16 bytes each) held by one DP
// (memory), and entries computed by one PlanTopK or ParetoLatencyUplink call over all its
// rounds, uplink groups and throughput thresholds (time).
constexpr int64_t kMaxDpEntries = int64_t{1} << 24;
constexpr int64_t kMaxSearchEntries = int64_t{1} << 28;
// Plan counts (throughput thresholds) saturate here; sums of kMaxBlocks of them fit in int64.
constexpr int64_t kCountCap = int64_t{1} << 40;

void ValidateShape(const PlanProblem& p) {
  if (p.tiers.empty()) throw BadInput("no tiers");
  if (p.blocks < 1) throw BadInput("the model has no blocks");
  if (p.blocks > kMaxBlocks)
    throw BadInput("the model has {} blocks, more than the planner's {}", p.blocks, kMaxBlocks);
  if (static_cast<int>(p.output_bytes.size()) != p.blocks)
    throw BadInput("output sizes for {} blocks, expected {}", p.output_bytes.size(), p.blocks);
  if (!p.criteria.empty() && p.criteria.size() != p.tiers.size())
    throw BadInput("criteria for {} tiers, expected {}", p.criteria.size(), p.tiers.size());
  bool first_tier = false;
  for (const auto& r : p.resources) {
    if (r.tier < 0 || r.tier >= static_cast<int>(p.tiers.size()))
      throw BadInput("resource '{}' has no tier in {}", r.name, p.tiers.size());
    if (static_cast<int>(r.block_ms.size()) != p.blocks)
      throw BadInput("resource '{}' has {} block times, the model has {} blocks", r.name,
                     r.block_ms.size(), p.blocks);
    first_tier |= r.tier == 0;
  }
  if (!first_tier)
    throw BadInput("no resource on the first tier '{}', where the input starts", p.tiers[0]);
  if (!p.max_memory_bytes.empty() && static_cast<int>(p.block_weight_bytes.size()) != p.blocks)
    throw BadInput("memory limits need per-block weight sizes (an ONNX model, not imported data)");
  if (!p.block_weight_bytes.empty() && static_cast<int>(p.block_weight_bytes.size()) != p.blocks)
    throw BadInput("weight sizes for {} blocks, expected {}", p.block_weight_bytes.size(),
                   p.blocks);
}

// Times, sizes and links in ranges whose sums stay finite (defence in depth: the CLI and the
// store check their own inputs).
void ValidateNumbers(const PlanProblem& p) {
  auto bad = [](int64_t bytes) { return bytes < 0 || bytes > kMaxBytes; };
  if (bad(p.input_bytes))
    throw BadInput("model input size: {} bytes is outside 0..{}", p.input_bytes, kMaxBytes);
  for (int b = 0; b < p.blocks; ++b) {
    if (int64_t out = p.output_bytes[static_cast<size_t>(b)]; bad(out))
      throw BadInput("block {} output size: {} bytes is outside 0..{}", b, out, kMaxBytes);
    if (p.block_weight_bytes.empty()) continue;
    if (int64_t weights = p.block_weight_bytes[static_cast<size_t>(b)]; bad(weights))
      throw BadInput("block {} weight size: {} bytes is outside 0..{}", b, weights, kMaxBytes);
  }
  for (const auto& r : p.resources)
    for (int b = 0; b < p.blocks; ++b) {
      double ms = r.block_ms[static_cast<size_t>(b)];
      if (!(ms >= 0 && ms <= kMaxMs))
        throw BadInput("resource '{}' block {}: time {} ms is outside 0..{} ms", r.name, b, ms,
                       kMaxMs);
    }
  for (const auto& [key, link] : p.links) {
    if (!(std::isfinite(link.mbps) && link.mbps >= kMinMbps))
      throw BadInput("link {} -> {}: bandwidth {} Mbit/s is not a finite value >= {} (1 bit/s)",
                     key.first, key.second, link.mbps, kMinMbps);
    if (!(link.rtt_ms >= 0 && link.rtt_ms <= kMaxMs))
      throw BadInput("link {} -> {}: RTT {} ms is outside 0..{} ms", key.first, key.second,
                     link.rtt_ms, kMaxMs);
  }
}

// Codec choices and costs: every boundary's names distinct and not "none" (raw is implicit),
// sizes and errors in range, costs finite (negative: not measured).
void ValidateCodecs(const PlanProblem& p) {
  const size_t boundaries = static_cast<size_t>(p.blocks) + 1;
  if (p.codecs.size() > boundaries)
    throw BadInput("codec choices for {} boundaries, the model has {}", p.codecs.size(),
                   boundaries);
  for (size_t b = 0; b < p.codecs.size(); ++b) {
    std::set<std::string> names;
    for (const auto& c : p.codecs[b]) {
      if (c.name.empty() || c.name == "none")
        throw BadInput("boundary {}: codec name '{}' (needs a name other than none)", b, c.name);
      if (!names.insert(c.name).second)
        throw BadInput("boundary {}: codec {} is listed twice", b, c.name);
      if (c.bytes < 0 || c.bytes > kMaxBytes)
        throw BadInput("boundary {} codec {}: {} bytes is outside 0..{}", b, c.name, c.bytes,
                       kMaxBytes);
      if (!(std::isfinite(c.output_error) && c.output_error >= 0))
        throw BadInput("boundary {} codec {}: output error {} is not a finite value >= 0", b,
                       c.name, c.output_error);
    }
  }
  for (const auto& r : p.resources) {
    if (r.codec_cost.size() > boundaries)
      throw BadInput("resource '{}' has codec costs for {} boundaries, the model has {}", r.name,
                     r.codec_cost.size(), boundaries);
    for (size_t b = 0; b < r.codec_cost.size(); ++b) {
      const size_t listed = b < p.codecs.size() ? p.codecs[b].size() : 0;
      if (r.codec_cost[b].size() > listed)
        throw BadInput("resource '{}' boundary {}: costs of {} codecs, {} are listed", r.name, b,
                       r.codec_cost[b].size(), listed);
      for (size_t i = 0; i < r.codec_cost[b].size(); ++i)
        for (double ms : {r.codec_cost[b][i].encode_ms, r.codec_cost[b][i].decode_ms})
          if (!(std::isfinite(ms) && ms <= kMaxMs))
            throw BadInput(
                "resource '{}' boundary {} codec {}: time {} ms is not finite or above {} ms",
                r.name, b, p.codecs[b][i].name, ms, kMaxMs);
    }
  }
}

void ValidateConstraints(const PlanProblem& p) {
  const int tiers = static_cast<int>(p.tiers.size());
  if (p.privacy_blocks < 0 || p.privacy_blocks > p.blocks)
    throw BadInput("--privacy {} is outside 0..{}", p.privacy_blocks, p.blocks);
  if (p.top_k < 1 || p.top_k > kMaxTopK)
    throw BadInput("--top {} is outside 1..{}", p.top_k, kMaxTopK);
  for (size_t t = 0; t < p.criteria.size(); ++t)
    for (const auto* list : {&p.criteria[t].blocks_in, &p.criteria[t].blocks_not_in})
      for (int b : *list)
        if (b < 0 || b >= p.blocks)
          throw BadInput("criteria for tier {}: block {} is outside 0..{}", p.tiers[t], b,
                         p.blocks - 1);
  for (const auto& [tier, bytes] : p.max_upload_bytes)
    if (tier < 0 || tier >= tiers || bytes < 0)
      throw BadInput("--max-upload: tier {} of {} with {} bytes (needs a tier and >= 0)", tier,
                     tiers, bytes);
  for (const auto& [tier, limit] : p.max_time)
    if (tier < 0 || tier >= tiers || !(limit.value >= 0 && std::isfinite(limit.value)))
      throw BadInput("--max-time: tier {} of {} with limit {} (needs a tier and a finite >= 0)",
                     tier, tiers, limit.value);
  for (const auto& [name, bytes] : p.max_memory_bytes) {
    bool known = std::any_of(p.resources.begin(), p.resources.end(),
                             [&](const ResourceProfile& r) { return r.name == name; });
    if (!known || bytes < 0)
      throw BadInput("--max-memory {}: {} bytes (needs a known resource and >= 0)", name, bytes);
  }
}

}  // namespace

void PlanProblem::Validate() const {
  ValidateShape(*this);
  ValidateNumbers(*this);
  ValidateCodecs(*this);
  ValidateConstraints(*this);
}

namespace {

const TierCriteria kNoCriteria{};

const TierCriteria& CriteriaOf(const PlanProblem& p, int tier) {
  return p.criteria.empty() ? kNoCriteria : p.criteria[static_cast<size_t>(tier)];
}

bool Contains(const std::vector<std::string>& v, const std::string& x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

bool MustBeUsed(const PlanProblem& p, int tier) {
  const auto& c = CriteriaOf(p, tier);
  return c.must_be_used || !c.only_resources.empty() || !c.excluded_resources.empty();
}

bool ResourceAllowedOnTier(const PlanProblem& p, int r) {
  const auto& res = p.resources[static_cast<size_t>(r)];
  const auto& c = CriteriaOf(p, res.tier);
  if (!c.only_resources.empty() && !Contains(c.only_resources, res.name)) return false;
  return !Contains(c.excluded_resources, res.name);
}

// Which blocks may run on resource r (criteria, privacy).
std::vector<bool> BlocksAllowed(const PlanProblem& p, int r) {
  const int tier = p.resources[static_cast<size_t>(r)].tier;
  if (CriteriaOf(p, tier).must_be_unused || !ResourceAllowedOnTier(p, r))
    return std::vector<bool>(static_cast<size_t>(p.blocks), false);
  std::vector<bool> allowed(static_cast<size_t>(p.blocks), true);
  if (tier != 0) std::fill_n(allowed.begin(), p.privacy_blocks, false);
  for (int b : CriteriaOf(p, tier).blocks_not_in) allowed[static_cast<size_t>(b)] = false;
  for (int t = 0; t < static_cast<int>(p.tiers.size()); ++t)
    if (t != tier)
      for (int b : CriteriaOf(p, t).blocks_in) allowed[static_cast<size_t>(b)] = false;
  return allowed;
}

const Link* FindLink(const PlanProblem& p, int from, int to) {
  auto it = p.links.find(
      {p.resources[static_cast<size_t>(from)].name, p.resources[static_cast<size_t>(to)].name});
  return it == p.links.end() ? nullptr : &it->second;
}

// ---- Codec choice per hop ----------------------------------------------------------------------

// One way a hop moves the tensors at its boundary b: option 0 is raw bytes (free everywhere),
// option i + 1 is PlanProblem::codecs[b][i].
struct HopOption {
  int option = 0;
  int64_t bytes = 0;
  double encode_ms = 0, decode_ms = 0;
  double ms = kInf;  // encode + (RTT + bytes / bandwidth) + decode, summed in that order
};

int OptionCount(const PlanProblem& p, int b) {
  const auto at = static_cast<size_t>(b);
  return 1 + (at < p.codecs.size() ? static_cast<int>(p.codecs[at].size()) : 0);
}

const CodecCost* MeasuredCost(const ResourceProfile& r, int b, int i) {
  const auto at = static_cast<size_t>(b);
  if (at >= r.codec_cost.size() || static_cast<size_t>(i) >= r.codec_cost[at].size())
    return nullptr;
  const CodecCost& cost = r.codec_cost[at][static_cast<size_t>(i)];
  return cost.measured() ? &cost : nullptr;
}

// Option `option` moving `bytes` over `link` (null: no link, an infinite time); a codec (option
// > 0) with the sender's and the receiver's costs, nullopt when either is null (not measured).
// The one place a hop's time is computed.
std::optional<HopOption> MakeOption(int option, int64_t bytes, const CodecCost* sender,
                                    const CodecCost* receiver, const Link* link) {
  HopOption o{option, bytes, 0, 0, kInf};
  if (option > 0) {
    if (sender == nullptr || receiver == nullptr) return std::nullopt;
    o.encode_ms = sender->encode_ms;
    o.decode_ms = receiver->decode_ms;
  }
  if (link != nullptr) o.ms = o.encode_ms + link->TransferMs(o.bytes) + o.decode_ms;
  return o;
}

// Option `option` of a hop at boundary b from resource `from` to `to` over `link`.
std::optional<HopOption> OptionOf(const PlanProblem& p, int b, int from, int to, int option,
                                  const Link* link) {
  if (option == 0) return MakeOption(0, p.BytesAtBoundary(b), nullptr, nullptr, link);
  return MakeOption(option, p.codecs[static_cast<size_t>(b)][static_cast<size_t>(option - 1)].bytes,
                    MeasuredCost(p.resources[static_cast<size_t>(from)], b, option - 1),
                    MeasuredCost(p.resources[static_cast<size_t>(to)], b, option - 1), link);
}

// The problem's codecs laid out flat for the search's inner loop (its vectors of vectors cost a
// cache miss per lookup): per boundary the codecs' bytes, and per boundary, resource and codec
// the cost, negative where not measured or missing.
class CodecTable {
 public:
  explicit CodecTable(const PlanProblem& p);
  int Count(int b) const {
    return static_cast<int>(first_[static_cast<size_t>(b) + 1] - first_[static_cast<size_t>(b)]);
  }
  int64_t Bytes(int b, int i) const {
    return bytes_[first_[static_cast<size_t>(b)] + static_cast<size_t>(i)];
  }
  const CodecCost* Measured(int b, int r, int i) const {
    const CodecCost& cost =
        costs_[first_[static_cast<size_t>(b)] * nr_ + static_cast<size_t>(r * Count(b) + i)];
    return cost.measured() ? &cost : nullptr;
  }

 private:
  size_t nr_;
  std::vector<size_t> first_;  // [b]: where boundary b's codecs start in bytes_ (blocks + 2)
  std::vector<int64_t> bytes_;
  std::vector<CodecCost> costs_;  // [first_[b] * nr + r * Count(b) + i]
};

CodecTable::CodecTable(const PlanProblem& p)
    : nr_(p.resources.size()), first_(static_cast<size_t>(p.blocks) + 2, 0) {
  for (int b = 0; b <= p.blocks; ++b) {
    first_[static_cast<size_t>(b) + 1] =
        first_[static_cast<size_t>(b)] + static_cast<size_t>(OptionCount(p, b) - 1);
    for (int i = 0; i < Count(b); ++i)
      bytes_.push_back(p.codecs[static_cast<size_t>(b)][static_cast<size_t>(i)].bytes);
  }
  costs_.resize(first_.back() * nr_);
  for (int b = 0; b <= p.blocks; ++b)
    for (size_t r = 0; r < nr_; ++r)
      for (int i = 0; i < Count(b); ++i)
        if (const CodecCost* cost = MeasuredCost(p.resources[r], b, i))
          costs_[first_[static_cast<size_t>(b)] * nr_ + r * static_cast<size_t>(Count(b)) +
                 static_cast<size_t>(i)] = *cost;
}

// The per-hop order of options (planner.h): fewest ms, then fewest bytes, then option (raw
// first, then registry order); by_bytes: fewest bytes first.
bool OptionLess(const HopOption& a, const HopOption& b, bool by_bytes) {
  if (by_bytes && a.bytes != b.bytes) return a.bytes < b.bytes;
  if (a.ms != b.ms) return a.ms < b.ms;
  if (a.bytes != b.bytes) return a.bytes < b.bytes;
  return a.option < b.option;
}

// How the hops of one search take their codecs. Every hop takes its least option by OptionLess;
// the hop leaving the first tier by bytes under the uplink objective (smallest_exit). An uplink
// group (exit_bytes) keeps only plans whose hop out of the first tier carries exactly those
// bytes: under the uplink objective, plans whose smallest exit option has them; on the Pareto
// front, where each (layout, codecs) is a plan, the fastest option with them.
struct CodecRule {
  bool smallest_exit = false;
  std::optional<int64_t> exit_bytes;
};

CodecRule ObjectiveRule(const PlanProblem& p) { return {p.objective == Objective::kUplink, {}}; }

// The option a hop takes under `rule` among `count` options (option_at(o): nullopt where not
// measured on both resources) within `cap` bytes; `exit`: the hop leaves the first tier. nullopt
// when none qualifies. The one place a hop's codec is chosen.
template <typename OptionAt>
std::optional<HopOption> ChooseAmong(int count, const OptionAt& option_at, const CodecRule& rule,
                                     int64_t cap, bool exit) {
  const bool by_bytes = exit && rule.smallest_exit;
  const bool exact = exit && rule.exit_bytes.has_value();
  std::optional<HopOption> best;
  for (int o = 0; o < count; ++o) {
    const std::optional<HopOption> option = option_at(o);
    if (!option || option->bytes > cap) continue;
    if (exact && !by_bytes && option->bytes != *rule.exit_bytes) continue;
    if (!best || OptionLess(*option, *best, by_bytes)) best = option;
  }
  if (best && exact && by_bytes && best->bytes != *rule.exit_bytes) return std::nullopt;
  return best;
}

// ChooseAmong over a hop at boundary b from `from` to `to`, read from the problem.
std::optional<HopOption> ChooseOption(const PlanProblem& p, const CodecRule& rule, int b, int from,
                                      int to, const Link* link, int64_t cap, bool exit) {
  return ChooseAmong(
      OptionCount(p, b), [&](int o) { return OptionOf(p, b, from, to, o, link); }, rule, cap, exit);
}

bool TerminalAllowed(const PlanProblem& p, int r) {
  int t = p.resources[static_cast<size_t>(r)].tier;
  for (int later = t + 1; later < static_cast<int>(p.tiers.size()); ++later)
    if (MustBeUsed(p, later)) return false;
  return true;
}

std::vector<int> StageKey(const PlanCandidate& c) {
  std::vector<int> key;
  for (const auto& s : c.stages) {
    key.push_back(s.resource);
    key.push_back(s.first_block);
    key.push_back(s.last_block);
  }
  return key;
}

double ObjectiveValue(const PlanProblem& p, const PlanCandidate& c) {
  switch (p.objective) {
    case Objective::kThroughput:
      return c.bottleneck_ms;
    case Objective::kUplink:
      return static_cast<double>(c.uplink_bytes);
    default:
      return c.latency_ms;
  }
}

// The order inside one search: latency, then the stage key (one search holds each layout once,
// with the codecs its CodecRule picks).
bool LatencyLess(const PlanCandidate& a, const PlanCandidate& b) {
  if (a.latency_ms != b.latency_ms) return a.latency_ms < b.latency_ms;
  return StageKey(a) < StageKey(b);
}

// The option a plan's hop i took (its codec's position at the hop's boundary), as HopOption.
HopOption TakenOption(const PlanProblem& p, const PlanCandidate& c, size_t i) {
  const Hop& h = c.hops[i];
  HopOption o{0, h.bytes, h.encode_ms, h.decode_ms, h.ms};
  if (h.codec == "none") return o;
  const auto b =
      static_cast<size_t>(i + 1 < c.stages.size() ? c.stages[i + 1].first_block : p.blocks);
  o.option = std::numeric_limits<int>::max();  // a codec the problem does not list: last
  if (b < p.codecs.size())
    for (size_t j = 0; j < p.codecs[b].size(); ++j)
      if (p.codecs[b][j].name == h.codec) o.option = static_cast<int>(j) + 1;
  return o;
}

// The last key of the total order, between codec assignments of one layout: the hops' options
// hop by hop in the per-hop order (OptionLess; the hop out of the first tier by bytes first under
// the uplink objective).
bool CodecKeyLess(const PlanProblem& p, const PlanCandidate& a, const PlanCandidate& b) {
  const size_t hops = std::min(a.hops.size(), b.hops.size());
  for (size_t i = 0; i < hops; ++i) {
    const bool by_bytes = p.objective == Objective::kUplink && i == 0 && a.stages.size() > 1;
    const HopOption x = TakenOption(p, a, i), y = TakenOption(p, b, i);
    if (OptionLess(x, y, by_bytes)) return true;
    if (OptionLess(y, x, by_bytes)) return false;
  }
  return a.hops.size() < b.hops.size();
}

// Compute of blocks first..last on one resource, summed first to last: the one summation order
// of Evaluate and of every cap check.
double StageMs(const std::vector<double>& ms, int first, int last) {
  double sum = 0;
  for (int b = first; b <= last; ++b) sum += ms[static_cast<size_t>(b)];
  return sum;
}

// ---- Stage windows -----------------------------------------------------------------------------
// For a fixed last block, a stage's compute and memory only shrink as its first block moves right
// (rounding is monotone, so StageMs is too), and for a fixed first block they only grow with the
// last. So the allowed first blocks of a stage ending at b are a suffix [start[b], b] and start[]
// never decreases: two pointers find them. start[b] = b + 1 when block b alone is over the cap.

// Stages with StageMs <= cap_ms. Prefix sums decide all but the near-ties, which are summed as
// StageMs does. Recursive sums of n non-negative terms are off by at most about n ulp of their
// total, so the tolerance, 16 (n + 2) ulp of the whole model's total, covers both with room.
void LimitByTime(const std::vector<double>& ms, double cap_ms, std::vector<int>& start) {
  const int n = static_cast<int>(ms.size());
  std::vector<double> prefix(static_cast<size_t>(n) + 1, 0.0);
  for (int b = 0; b < n; ++b)
    prefix[static_cast<size_t>(b) + 1] =
        prefix[static_cast<size_t>(b)] + ms[static_cast<size_t>(b)];
  const double tolerance =
      16.0 * (n + 2) * std::numeric_limits<double>::epsilon() * prefix[static_cast<size_t>(n)] +
      std::numeric_limits<double>::denorm_min();
  auto fits = [&](int s, int b) {
    double estimate = prefix[static_cast<size_t>(b) + 1] - prefix[static_cast<size_t>(s)];
    if (estimate > cap_ms + tolerance) return false;
    if (estimate < cap_ms - tolerance) return true;
    return StageMs(ms, s, b) <= cap_ms;
  };
  int s = 0;
  for (int b = 0; b < n; ++b) {
    s = std::max(s, start[static_cast<size_t>(b)]);
    while (s <= b && !fits(s, b)) ++s;
    start[static_cast<size_t>(b)] = s;
  }
}

// Stages whose weights plus largest activation (input + output of one block) fit in cap_bytes,
// as Satisfies counts them.
void LimitByMemory(const PlanProblem& p, int64_t cap_bytes, std::vector<int>& start) {
  std::deque<int> largest;  // blocks of the window with decreasing activation sizes
  auto activation = [&](int b) {
    return p.BytesAtBoundary(b) + p.output_bytes[static_cast<size_t>(b)];
  };
  int64_t weights = 0;  // of blocks s..b
  int s = 0;
  for (int b = 0; b < p.blocks; ++b) {
    weights += p.block_weight_bytes[static_cast<size_t>(b)];
    while (!largest.empty() && activation(largest.back()) <= activation(b)) largest.pop_back();
    largest.push_back(b);
    auto advance = [&] {
      weights -= p.block_weight_bytes[static_cast<size_t>(s)];
      if (largest.front() == s) largest.pop_front();
      ++s;
    };
    while (s < start[static_cast<size_t>(b)]) advance();
    while (s <= b && weights + activation(largest.front()) > cap_bytes) advance();
    start[static_cast<size_t>(b)] = s;
  }
}

// ---- Search space ------------------------------------------------------------------------------

// Percentage caps on every tier summing to under 100% (with a margin for rounding) leave only
// plans without compute: each tier's compute is at most its share of the total, so the total is
// at most a fraction of itself. Then a 0 ms cap on every stage is the same constraint, and local.
bool NoComputeAllowed(const PlanProblem& p) {
  double percent = 0;
  for (int t = 0; t < static_cast<int>(p.tiers.size()); ++t) {
    auto limit = p.max_time.find(t);
    if (limit == p.max_time.end() || !limit->second.percent) return false;
    percent += limit->second.value;
  }
  return percent < 100 * (1 - 1e-9);
}

// The local constraints of one search, precomputed: which stages and hops a plan may use.
// Criteria, privacy, upload caps, tier skipping, absolute time caps, memory caps and a throughput
// threshold are all local: a stage [s, b] on r is allowed exactly when s >= MinStart(b, r), a hop
// when HopMs is finite. Percentage time caps need the whole plan; Satisfies checks them. Each hop
// takes its codec by the space's CodecRule; an option over the upload cap is not usable.
class SearchSpace {
 public:
  // max_stage_ms: the throughput threshold (every stage, hop and return hop at most this).
  explicit SearchSpace(const PlanProblem& p, double max_stage_ms = kInf);

  // Candidate uplink groups, ascending: every number of bytes an option (raw or a codec) within
  // the first tier's upload cap carries at a boundary, with those boundaries. A superset of the
  // groups that hold plans (a codec may be measured nowhere, or never be a hop's pick); AnyExit
  // says whether one does.
  std::vector<std::pair<int64_t, std::vector<int>>> ExitCandidates() const;
  // Uplink groups: plans whose hop out of the first tier carries exactly `exit_bytes` (after its
  // codec, see CodecRule) at one of `boundaries` (the candidate's), or, with nullopt, plans that
  // never leave the first tier.
  void RestrictExits(std::optional<int64_t> exit_bytes, const std::vector<int>& boundaries = {});
  // Whether some hop may leave the first tier in the group the space is restricted to.
  bool AnyExit() const;
  const std::vector<int>& ExitBoundaries() const { return exit_list_; }
  const CodecRule& rule() const { return rule_; }

  const PlanProblem& problem() const { return p_; }
  int blocks() const { return p_.blocks; }
  int resources() const { return nr_; }
  int Tier(int r) const { return tier_[static_cast<size_t>(r)]; }
  double BlockMs(int b, int r) const {
    return p_.resources[static_cast<size_t>(r)].block_ms[static_cast<size_t>(b)];
  }
  int MinStart(int b, int r) const { return min_start_[static_cast<size_t>(b * nr_ + r)]; }
  // Caps make the window of r shrink from the left (not only restart after a forbidden block).
  bool Windowed(int r) const { return windowed_[static_cast<size_t>(r)]; }
  int WindowedCount() const {
    return static_cast<int>(std::count(windowed_.begin(), windowed_.end(), true));
  }
  const std::vector<int>& Into(int r2) const { return into_[static_cast<size_t>(r2)]; }
  bool Terminal(int r) const {
    return terminal_[static_cast<size_t>(r)] && (no_exit_allowed_ || Tier(r) != 0);
  }
  // Whether plans may leave tier t at boundary b (before block b): privacy, the upload cap below
  // every option, exits.
  bool MayLeave(int b, int t) const {
    if (b < p_.privacy_blocks ||
        min_bytes_[static_cast<size_t>(b)] > upload_cap_[static_cast<size_t>(t)])
      return false;
    if (t != 0) return true;
    if (!exit_allowed_ || (b == 0 && first_must_compute_)) return false;
    return !restricted_ || exit_at_[static_cast<size_t>(b)];
  }
  // The option the hop r -> r2 at boundary b takes; nullopt where the resources have no allowed
  // hop, no option fits the upload cap or, out of the first tier, the uplink group.
  std::optional<HopOption> Choose(int b, int r, int r2) const {
    const Link* link = link_[static_cast<size_t>(r * nr_ + r2)];
    if (link == nullptr) return std::nullopt;
    // ChooseOption over the flat table: the same options, times and order.
    const int64_t raw = p_.BytesAtBoundary(b);
    auto option_at = [&](int o) {
      if (o == 0) return MakeOption(0, raw, nullptr, nullptr, link);
      return MakeOption(o, codecs_.Bytes(b, o - 1), codecs_.Measured(b, r, o - 1),
                        codecs_.Measured(b, r2, o - 1), link);
    };
    return ChooseAmong(1 + codecs_.Count(b), option_at, rule_,
                       upload_cap_[static_cast<size_t>(Tier(r))], Tier(r) == 0);
  }
  // Milliseconds of that hop, MayLeave included; kInf where not allowed or over the threshold.
  double HopMs(int b, int r, int r2) const {
    return MayLeave(b, Tier(r)) ? LeavingHopMs(b, r, r2) : kInf;
  }
  // The same given MayLeave(b, Tier(r)) (the DP's inner loop).
  double LeavingHopMs(int b, int r, int r2) const {
    double ms = kInf;
    if (!has_codecs_[static_cast<size_t>(b)]) {
      // Raw only: MayLeave checked the cap and the group; the time is OptionOf's, 0 + transfer
      // + 0.
      const Link* link = link_[static_cast<size_t>(r * nr_ + r2)];
      if (link != nullptr) ms = link->TransferMs(min_bytes_[static_cast<size_t>(b)]);
    } else if (const auto option = Choose(b, r, r2)) {
      ms = option->ms;
    }
    return ms <= max_hop_ms_ ? ms : kInf;
  }
  // Milliseconds of the return hop from r to the source; 0 without one or without a source
  // (source < 0: LagrangeWeights' estimates); kInf where not allowed.
  double ReturnMs(int r, int source) const;
  // k-best entries a latency DP over this space holds per unit of k.
  int64_t EntriesPerK() const {
    return (int64_t{p_.blocks} + 1) * nr_ + 2 * int64_t{p_.blocks} * WindowedCount();
  }

 private:
  void ComputeStarts(int r, double max_stage_ms);

  const PlanProblem& p_;
  const int nr_;
  double max_hop_ms_;
  std::vector<const Link*> link_;       // [r * nr + r2]: the link of an allowed hop, else nullptr
  std::vector<std::vector<int>> into_;  // resources that may hop into r2
  std::vector<int64_t> upload_cap_;     // per tier
  std::vector<int> min_start_;          // [b * nr + r]
  std::vector<bool> windowed_, terminal_;
  bool first_must_compute_;
  CodecRule rule_;
  bool exit_allowed_ = true, no_exit_allowed_ = true;
  // With an uplink group: the boundaries where some option (raw or a codec) has the group's
  // bytes. Elsewhere no hop can leave the first tier, which MayLeave says without pricing one.
  bool restricted_ = false;
  std::vector<int> exit_list_;
  std::vector<bool> exit_at_;
  std::vector<int64_t> min_bytes_;  // per boundary: the fewest bytes of any option
  std::vector<bool> has_codecs_;    // per boundary: any option besides raw
  std::vector<int> tier_;           // per resource
  CodecTable codecs_;
};

SearchSpace::SearchSpace(const PlanProblem& p, double max_stage_ms)
    : p_(p),
      nr_(static_cast<int>(p.resources.size())),
      max_hop_ms_(max_stage_ms),
      rule_(ObjectiveRule(p)),
      codecs_(p) {
  for (const auto& r : p.resources) tier_.push_back(r.tier);
  link_.assign(static_cast<size_t>(nr_ * nr_), nullptr);
  into_.resize(static_cast<size_t>(nr_));
  for (int r = 0; r < nr_; ++r)
    for (int r2 = 0; r2 < nr_; ++r2) {
      const Link* l = FindLink(p, r, r2);
      bool ok = l != nullptr && Tier(r) < Tier(r2) && ResourceAllowedOnTier(p, r2) &&
                !CriteriaOf(p, Tier(r2)).must_be_unused;
      for (int mid = Tier(r) + 1; ok && mid < Tier(r2); ++mid) ok = !MustBeUsed(p, mid);
      if (!ok) continue;
      link_[static_cast<size_t>(r * nr_ + r2)] = l;
      into_[static_cast<size_t>(r2)].push_back(r);
    }
  upload_cap_.assign(p.tiers.size(), std::numeric_limits<int64_t>::max());
  min_bytes_.resize(static_cast<size_t>(p.blocks));
  has_codecs_.resize(static_cast<size_t>(p.blocks));
  for (int b = 0; b < p.blocks; ++b) {
    int64_t least = p.BytesAtBoundary(b);
    if (static_cast<size_t>(b) < p.codecs.size())
      for (const auto& codec : p.codecs[static_cast<size_t>(b)])
        least = std::min(least, codec.bytes);
    min_bytes_[static_cast<size_t>(b)] = least;
    has_codecs_[static_cast<size_t>(b)] = OptionCount(p, b) > 1;
  }
  for (const auto& [tier, cap] : p.max_upload_bytes) upload_cap_[static_cast<size_t>(tier)] = cap;
  first_must_compute_ = MustBeUsed(p, 0);
  min_start_.resize(static_cast<size_t>(p.blocks * nr_));
  windowed_.resize(static_cast<size_t>(nr_));
  terminal_.resize(static_cast<size_t>(nr_));
  for (int r = 0; r < nr_; ++r) {
    ComputeStarts(r, max_stage_ms);
    terminal_[static_cast<size_t>(r)] = TerminalAllowed(p, r);
  }
}

void SearchSpace::ComputeStarts(int r, double max_stage_ms) {
  const int n = p_.blocks;
  std::vector<int> start(static_cast<size_t>(n));
  const std::vector<bool> allowed = BlocksAllowed(p_, r);
  int restart = 0;  // after the last block r may not run
  for (int b = 0; b < n; ++b) {
    if (!allowed[static_cast<size_t>(b)]) restart = b + 1;
    start[static_cast<size_t>(b)] = restart;
  }
  const std::vector<int> unlimited = start;
  const ResourceProfile& res = p_.resources[static_cast<size_t>(r)];
  double cap_ms = NoComputeAllowed(p_) ? 0.0 : max_stage_ms;
  auto time = p_.max_time.find(res.tier);
  if (time != p_.max_time.end() && !time->second.percent)
    cap_ms = std::min(cap_ms, time->second.value);
  if (cap_ms < kInf) LimitByTime(res.block_ms, cap_ms, start);
  auto memory = p_.max_memory_bytes.find(res.name);
  if (memory != p_.max_memory_bytes.end()) LimitByMemory(p_, memory->second, start);
  windowed_[static_cast<size_t>(r)] = start != unlimited;
  for (int b = 0; b < n; ++b)
    min_start_[static_cast<size_t>(b * nr_ + r)] = start[static_cast<size_t>(b)];
}

void SearchSpace::RestrictExits(std::optional<int64_t> exit_bytes,
                                const std::vector<int>& boundaries) {
  rule_.exit_bytes = exit_bytes;
  exit_allowed_ = exit_bytes.has_value();
  no_exit_allowed_ = !exit_bytes.has_value();
  restricted_ = true;
  exit_at_.resize(static_cast<size_t>(p_.blocks), false);
  for (int b : exit_list_) exit_at_[static_cast<size_t>(b)] = false;
  exit_list_ = exit_bytes ? boundaries : std::vector<int>{};
  for (int b : exit_list_) exit_at_[static_cast<size_t>(b)] = true;
}

std::vector<std::pair<int64_t, std::vector<int>>> SearchSpace::ExitCandidates() const {
  std::map<int64_t, std::vector<int>> groups;
  for (int b = p_.privacy_blocks; b < p_.blocks; ++b)
    for (int o = 0, n = OptionCount(p_, b); o < n; ++o) {
      const int64_t bytes =
          o == 0 ? p_.BytesAtBoundary(b)
                 : p_.codecs[static_cast<size_t>(b)][static_cast<size_t>(o - 1)].bytes;
      auto& boundaries = groups[bytes];
      if (bytes <= upload_cap_[0] && (boundaries.empty() || boundaries.back() != b))
        boundaries.push_back(b);
    }
  std::vector<std::pair<int64_t, std::vector<int>>> out;
  for (auto& [bytes, boundaries] : groups)
    if (!boundaries.empty()) out.emplace_back(bytes, std::move(boundaries));
  return out;
}

bool SearchSpace::AnyExit() const {
  for (int b : exit_list_)
    for (int r = 0; r < nr_; ++r)
      for (int r2 = 0; Tier(r) == 0 && r2 < nr_; ++r2)
        if (HopMs(b, r, r2) < kInf) return true;
  return false;
}

double SearchSpace::ReturnMs(int r, int source) const {
  if (!p_.return_result || source < 0 || r == source) return 0;
  const Link* back = FindLink(p_, r, source);
  if (back == nullptr) return kInf;
  // The return hop has no upload cap and never leaves the first tier; raw always qualifies.
  const double ms = ChooseOption(p_, rule_, p_.blocks, r, source, back,
                                 std::numeric_limits<int64_t>::max(), false)
                        ->ms;
  return ms <= max_hop_ms_ ? ms : kInf;
}

// ---- Search bound ------------------------------------------------------------------------------

// Holds one PlanTopK / ParetoLatencyUplink call to kMaxDpEntries per DP and kMaxSearchEntries
// computed in all, and says, when a bound is reached, what could not be proven and why.
class SearchBudget {
 public:
  // what: "the top-5 plans"; advice: what the user can change besides the caps.
  SearchBudget(const PlanProblem& p, std::string what, std::string advice)
      : p_(p), what_(std::move(what)), advice_(std::move(advice)) {}
  // Before a DP that holds `entries` at k = `k`.
  void Reserve(int64_t entries, int k) const {
    if (entries > kMaxDpEntries) Exceeded(k);
  }
  // After a DP (k = 0: a plan count) that computed `entries`.
  void Spend(int64_t entries, int k) {
    spent_ += entries;
    if (spent_ > kMaxSearchEntries) Exceeded(k);
  }
  [[noreturn]] void Exceeded(int k) const;

 private:
  const PlanProblem& p_;
  std::string what_, advice_;
  int64_t spent_ = 0;
};

void SearchBudget::Exceeded(int k) const {
  std::vector<std::string> caps;
  for (const auto& [tier, limit] : p_.max_time)
    if (limit.percent && limit.value < 100)
      caps.push_back(
          fmt::format("--max-time {}={}%", p_.tiers[static_cast<size_t>(tier)], limit.value));
  std::string reached = k > 0 ? fmt::format("at k = {}; ", k) : "";
  if (!caps.empty())
    throw BadInput(
        "cannot prove {} under {} within the search bound ({}at most {} DP entries per DP, {} "
        "per search); relax the caps or {}",
        what_, fmt::join(caps, ", "), reached, kMaxDpEntries, kMaxSearchEntries, advice_);
  throw BadInput(
      "cannot prove {} within the search bound ({}at most {} DP entries per DP, {} per search): "
      "{} blocks x {} resources are too many for it, or many plans tie; {}",
      what_, reached, kMaxDpEntries, kMaxSearchEntries, p_.blocks, p_.resources.size(), advice_);
}

// ---- Latency DP --------------------------------------------------------------------------------

struct Entry {
  double cost;
  int pred_state;  // -1: the source's seed
  int pred_rank;
};

// The first k of two ascending lists merged, add_a / add_b added to their costs.
int MergeBest(const Entry* a, int na, double add_a, const Entry* b, int nb, double add_b, int k,
              Entry* out) {
  int i = 0, j = 0, m = 0;
  for (; m < k && (i < na || j < nb); ++m) {
    if (j >= nb || (i < na && a[i].cost + add_a <= b[j].cost + add_b)) {
      out[m] = {a[i].cost + add_a, a[i].pred_state, a[i].pred_rank};
      ++i;
    } else {
      out[m] = {b[j].cost + add_b, b[j].pred_state, b[j].pred_rank};
      ++j;
    }
  }
  return m;
}

struct DpOptions {
  int k = 1;
  int only_source = -1;      // the source resource (return-hop searches); -1: any
  double cost_limit = kInf;  // prefixes costing this or more are dropped (nothing below follows)
  // Per resource, multiplies block times (percentage caps, see LagrangeWeights); null: 1.
  const std::vector<double>* weight = nullptr;
};

struct DpResult {
  std::vector<std::vector<Stage>> layouts;  // in ascending DP cost
  std::vector<double> costs;
  bool exhausted = false;  // fewer than k complete plans exist
  int64_t entries = 0;     // entries the DP computed (its work)
};

// k-best forward DP over (boundary b, resource r) states: list (b, r) holds the k cheapest plan
// prefixes whose last stage runs on r and ends with block b - 1 (the seed (0, r) is the empty
// source stage). An entry points at the entry it extends, whose boundary is where its stage
// starts. Resources without caps extend their own list one block at a time; windowed resources
// take the k best over every allowed stage start, kept in a two-stack sliding window: a front of
// suffix-merged lists rebuilt when the window passes it, and a back list merged per block.
class LatencyDp {
 public:
  LatencyDp(const SearchSpace& space, const DpOptions& options);
  DpResult Run();

 private:
  struct Source {
    const Entry* list;
    int size;
    double add;
    int state;
  };
  struct Candidate {
    double cost;
    int source;
    int pos;
  };
  struct Window {
    int front_end = -1;  // the front covers starts up to here, costed through this block
    double shift = 0;    // compute of blocks front_end + 1 .. b on this resource
    int back_size = 0;   // starts front_end + 1 .. b, costed through b
  };

  int Id(int b, int r) const { return b * nr_ + r; }
  double BlockCost(int b, int r) const {
    return weight_ ? space_.BlockMs(b, r) * (*weight_)[static_cast<size_t>(r)]
                   : space_.BlockMs(b, r);
  }
  Entry* List(int state) { return &lists_[static_cast<size_t>(state) * k_]; }
  int& Count(int state) { return counts_[static_cast<size_t>(state)]; }
  void Trim(int state) {
    while (Count(state) > 0 && List(state)[Count(state) - 1].cost >= cost_limit_) --Count(state);
  }
  Entry* Slot(std::unique_ptr<Entry[]>& area, int w, int s) {
    return &area[(static_cast<size_t>(w) * n_ + static_cast<size_t>(s)) * k_];
  }
  int& SlotCount(std::vector<int>& counts, int w, int s) {
    return counts[static_cast<size_t>(w) * n_ + static_cast<size_t>(s)];
  }
  void CollectHops(int b, int r2);
  int SelectBest(double add, Entry* out);
  void ExtendOwn(int b, int r2);
  void ExtendWindow(int b, int r2);
  void RebuildFront(int w, int r2, int first, int b);
  DpResult Collect();
  std::vector<Stage> LayoutOf(int state, int rank);

  const SearchSpace& space_;
  const int n_, nr_, k_, only_source_;
  const double cost_limit_;
  const std::vector<double>* weight_;
  std::unique_ptr<Entry[]> lists_;
  std::vector<int> counts_;
  std::vector<int> window_of_;  // resource -> index into windows_, or -1
  std::vector<Window> windows_;
  std::unique_ptr<Entry[]> arrivals_, fronts_, backs_, scratch_;  // per window, per start
  std::vector<int> arrival_counts_, front_counts_;
  std::vector<Source> sources_;
  std::vector<Candidate> candidates_;
  std::vector<double> heads_;
  std::vector<int> leaving_;  // resources with plans at the current boundary that may hop on
};

LatencyDp::LatencyDp(const SearchSpace& space, const DpOptions& options)
    : space_(space),
      n_(space.blocks()),
      nr_(space.resources()),
      k_(options.k),
      only_source_(options.only_source),
      cost_limit_(options.cost_limit),
      weight_(options.weight),
      // Default-initialised (not zeroed): only entries below their counts are ever read.
      lists_(new Entry[static_cast<size_t>((n_ + 1) * nr_) * static_cast<size_t>(k_)]),
      counts_(static_cast<size_t>((n_ + 1) * nr_), 0),
      window_of_(static_cast<size_t>(nr_), -1) {
  for (int r = 0; r < nr_; ++r)
    if (space.Windowed(r)) {
      window_of_[static_cast<size_t>(r)] = static_cast<int>(windows_.size());
      windows_.emplace_back();
    }
  const size_t per_window = static_cast<size_t>(n_) * static_cast<size_t>(k_);
  if (!windows_.empty()) {
    arrivals_.reset(new Entry[windows_.size() * per_window]);
    fronts_.reset(new Entry[windows_.size() * per_window]);
    backs_.reset(new Entry[windows_.size() * static_cast<size_t>(k_)]);
    scratch_.reset(new Entry[static_cast<size_t>(k_)]);
    arrival_counts_.assign(windows_.size() * static_cast<size_t>(n_), 0);
    front_counts_.assign(windows_.size() * static_cast<size_t>(n_), 0);
  }
  for (int r = 0; r < nr_; ++r)
    if (space.Tier(r) == 0 && (only_source_ < 0 || only_source_ == r)) {
      List(Id(0, r))[0] = {0.0, -1, 0};
      Count(Id(0, r)) = 1;
    }
}

DpResult LatencyDp::Run() {
  for (int b = 0; b < n_; ++b) {
    bool live = false;
    leaving_.clear();
    for (int r = 0; r < nr_; ++r) {
      live |= Count(Id(b, r)) > 0;
      if (Count(Id(b, r)) > 0 && space_.MayLeave(b, space_.Tier(r))) leaving_.push_back(r);
    }
    // A stage reaching past b would also have been a (non-empty) list at b.
    if (!live) break;
    for (int r2 = 0; r2 < nr_; ++r2) {
      if (space_.Windowed(r2))
        ExtendWindow(b, r2);
      else if (space_.MinStart(b, r2) <= b)
        ExtendOwn(b, r2);
    }
  }
  return Collect();
}

// Sources of plans whose stage on r2 starts with block b: the hops into r2 at boundary b.
void LatencyDp::CollectHops(int b, int r2) {
  for (int r : leaving_) {
    const double ms = space_.LeavingHopMs(b, r, r2);
    if (ms < kInf) sources_.push_back({List(Id(b, r)), Count(Id(b, r)), ms, Id(b, r)});
  }
}

// The k cheapest entries over sources_ (ascending lists plus a constant), `add` added, ascending.
int LatencyDp::SelectBest(double add, Entry* out) {
  const int k = k_;
  // The k-th smallest list head bounds the k-th best candidate: nothing above it can enter.
  // So does the k-th entry of any full list.
  double bound = kInf;
  for (const auto& src : sources_)
    if (src.size == k) bound = std::min(bound, src.list[k - 1].cost + src.add);
  if (static_cast<int>(sources_.size()) > k) {
    heads_.clear();
    for (const auto& src : sources_) heads_.push_back(src.list[0].cost + src.add);
    std::nth_element(heads_.begin(), heads_.begin() + (k - 1), heads_.end());
    bound = std::min(bound, heads_[static_cast<size_t>(k - 1)]);
  }
  candidates_.clear();
  for (int si = 0; si < static_cast<int>(sources_.size()); ++si) {
    const auto& src = sources_[static_cast<size_t>(si)];
    for (int pos = 0; pos < src.size; ++pos) {
      double cost = src.list[pos].cost + src.add;
      if (cost > bound) break;
      candidates_.push_back({cost, si, pos});
    }
  }
  if (static_cast<int>(candidates_.size()) > k) {
    // Ties at the cut may fall either way; LatencyTopK's final check covers that.
    std::nth_element(candidates_.begin(), candidates_.begin() + (k - 1), candidates_.end(),
                     [](const Candidate& x, const Candidate& y) { return x.cost < y.cost; });
    candidates_.resize(static_cast<size_t>(k));
  }
  std::sort(candidates_.begin(), candidates_.end(), [](const Candidate& x, const Candidate& y) {
    return x.cost < y.cost ||
           (x.cost == y.cost && (x.source < y.source || (x.source == y.source && x.pos < y.pos)));
  });
  int m = 0;
  for (const auto& c : candidates_)
    out[m++] = {c.cost + add, sources_[static_cast<size_t>(c.source)].state, c.pos};
  return m;
}

// Without caps: continue the stage on r2 or start one there, then run block b.
void LatencyDp::ExtendOwn(int b, int r2) {
  sources_.clear();
  if (Count(Id(b, r2)) > 0) sources_.push_back({List(Id(b, r2)), Count(Id(b, r2)), 0.0, Id(b, r2)});
  CollectHops(b, r2);
  if (sources_.empty()) return;
  Count(Id(b + 1, r2)) = SelectBest(BlockCost(b, r2), List(Id(b + 1, r2)));
  Trim(Id(b + 1, r2));
}

// With caps: list (b + 1, r2) is the k best over starts s in [MinStart(b, r2), b] of the
// arrivals at s plus the compute of blocks s..b.
void LatencyDp::ExtendWindow(int b, int r2) {
  const int w = window_of_[static_cast<size_t>(r2)];
  Window& win = windows_[static_cast<size_t>(w)];
  const int first = space_.MinStart(b, r2);
  if (first > b) {  // block b cannot run here: the window restarts later
    win = {b, 0.0, 0};
    return;
  }
  sources_.clear();
  if (b == 0 && Count(Id(0, r2)) > 0)
    sources_.push_back({List(Id(0, r2)), Count(Id(0, r2)), 0.0, Id(0, r2)});
  CollectHops(b, r2);
  Entry* arrivals = Slot(arrivals_, w, b);
  SlotCount(arrival_counts_, w, b) = sources_.empty() ? 0 : SelectBest(0.0, arrivals);
  const double ms = BlockCost(b, r2);
  Entry* back = &backs_[static_cast<size_t>(w) * static_cast<size_t>(k_)];
  if (first > win.front_end) {
    RebuildFront(w, r2, first, b);
  } else {
    win.shift += ms;
    win.back_size = MergeBest(back, win.back_size, ms, arrivals, SlotCount(arrival_counts_, w, b),
                              ms, k_, scratch_.get());
    std::copy(scratch_.get(), scratch_.get() + win.back_size, back);
  }
  Count(Id(b + 1, r2)) = MergeBest(Slot(fronts_, w, first), SlotCount(front_counts_, w, first),
                                   win.shift, back, win.back_size, 0.0, k_, List(Id(b + 1, r2)));
  Trim(Id(b + 1, r2));
}

// The front for starts first..b: front[s] = the k best of arrivals at s..b, each with the
// compute from its start through block b.
void LatencyDp::RebuildFront(int w, int r2, int first, int b) {
  double suffix_ms = 0;
  for (int s = b; s >= first; --s) {
    suffix_ms = BlockCost(s, r2) + suffix_ms;
    const bool last = s == b;
    SlotCount(front_counts_, w, s) =
        MergeBest(Slot(arrivals_, w, s), SlotCount(arrival_counts_, w, s), suffix_ms,
                  last ? nullptr : Slot(fronts_, w, s + 1),
                  last ? 0 : SlotCount(front_counts_, w, s + 1), 0.0, k_, Slot(fronts_, w, s));
  }
  windows_[static_cast<size_t>(w)] = {b, 0.0, 0};
}

DpResult LatencyDp::Collect() {
  struct Terminal {
    double cost;
    int state;
    int rank;
  };
  std::vector<Terminal> terminals;
  for (int r = 0; r < nr_; ++r) {
    if (!space_.Terminal(r)) continue;
    // With a return hop LatencyTopK runs one DP per source, so the hop is fixed per resource.
    const double back_ms = space_.ReturnMs(r, only_source_);
    if (!(back_ms < kInf)) continue;
    const Entry* list = List(Id(n_, r));
    for (int i = 0; i < Count(Id(n_, r)); ++i)
      terminals.push_back({list[i].cost + back_ms, Id(n_, r), i});
  }
  std::sort(terminals.begin(), terminals.end(), [](const Terminal& a, const Terminal& b) {
    return a.cost < b.cost ||
           (a.cost == b.cost && (a.state < b.state || (a.state == b.state && a.rank < b.rank)));
  });
  DpResult result;
  for (const auto& t : terminals) {
    if (static_cast<int>(result.layouts.size()) >= k_) break;
    result.layouts.push_back(LayoutOf(t.state, t.rank));
    result.costs.push_back(t.cost);
  }
  result.exhausted = static_cast<int>(result.layouts.size()) < k_;
  for (const std::vector<int>* counts : {&counts_, &arrival_counts_})
    for (int c : *counts) result.entries += c;
  return result;
}

std::vector<Stage> LatencyDp::LayoutOf(int state, int rank) {
  std::vector<int> owner(static_cast<size_t>(n_), -1);
  int source = -1;
  while (source < 0) {
    const int b = state / nr_, r = state % nr_;
    const Entry& e = List(state)[rank];
    // The entry's stage on r runs from the boundary of the entry it extends through block b - 1.
    const int first = e.pred_state < 0 ? 0 : e.pred_state / nr_;
    std::fill(owner.begin() + first, owner.begin() + b, r);
    if (e.pred_state < 0) source = r;
    state = e.pred_state;
    rank = e.pred_rank;
  }
  std::vector<Stage> stages;
  stages.push_back({source, 0, -1, 0});
  for (int b = 0; b < n_; ++b) {
    int r = owner[static_cast<size_t>(b)];
    if (r == stages.back().resource && stages.back().last_block == b - 1) {
      stages.back().last_block = b;
    } else {
      stages.push_back({r, b, b, 0});
    }
  }
  return stages;
}

// ---- Plan values -------------------------------------------------------------------------------

// Where a plan's hop is: its resources and link, the boundary it moves, whether it leaves the
// first tier, and the upload cap it is under (none for the return hop).
struct HopSite {
  int from = 0, to = 0, boundary = 0;
  bool exit = false;
  int64_t cap = std::numeric_limits<int64_t>::max();
  const Link* link = nullptr;
};

std::vector<HopSite> HopSites(const PlanProblem& p, const std::vector<Stage>& stages) {
  std::vector<HopSite> sites;
  for (size_t i = 1; i < stages.size(); ++i) {
    HopSite site;
    site.from = stages[i - 1].resource;
    site.to = stages[i].resource;
    site.boundary = stages[i].first_block;
    const int tier = p.resources[static_cast<size_t>(site.from)].tier;
    site.exit = tier == 0;
    if (auto cap = p.max_upload_bytes.find(tier); cap != p.max_upload_bytes.end())
      site.cap = cap->second;
    site.link = FindLink(p, site.from, site.to);
    sites.push_back(site);
  }
  if (p.return_result && stages.back().resource != stages.front().resource) {
    HopSite site;
    site.from = stages.back().resource;
    site.to = stages.front().resource;
    site.boundary = p.blocks;
    site.link = FindLink(p, site.from, site.to);
    sites.push_back(site);
  }
  return sites;
}

// The plan of `stages` whose hops take `options` (one per site), with every total.
PlanCandidate Assemble(const PlanProblem& p, std::vector<Stage> stages,
                       const std::vector<HopSite>& sites, const std::vector<HopOption>& options) {
  PlanCandidate c;
  for (auto& s : stages) {
    s.compute_ms =
        StageMs(p.resources[static_cast<size_t>(s.resource)].block_ms, s.first_block, s.last_block);
    c.compute_ms += s.compute_ms;
    c.bottleneck_ms = std::max(c.bottleneck_ms, s.compute_ms);
  }
  for (size_t i = 0; i < sites.size(); ++i) {
    const HopSite& site = sites[i];
    const HopOption& o = options[i];
    Hop h;
    h.from = site.from;
    h.to = site.to;
    h.bytes = o.bytes;
    h.ms = o.ms;
    h.raw_bytes = p.BytesAtBoundary(site.boundary);
    h.encode_ms = o.encode_ms;
    h.decode_ms = o.decode_ms;
    if (o.option > 0) {
      const CodecChoice& codec =
          p.codecs[static_cast<size_t>(site.boundary)][static_cast<size_t>(o.option - 1)];
      h.codec = codec.name;
      h.output_error = codec.output_error;
    }
    c.transfer_ms += h.ms;
    c.bottleneck_ms = std::max(c.bottleneck_ms, h.ms);
    c.output_error += h.output_error;
    c.hops.push_back(std::move(h));
  }
  c.uplink_bytes = stages.size() > 1 ? c.hops.front().bytes : 0;
  c.latency_ms = c.compute_ms + c.transfer_ms;
  c.stages = std::move(stages);
  return c;
}

// The plan of `stages` with the codecs `rule` picks. A hop with no option within its upload cap
// (or uplink group) takes the rule's pick without them, so that Satisfies rejects the plan.
PlanCandidate EvaluateUnder(const PlanProblem& p, std::vector<Stage> stages,
                            const CodecRule& rule) {
  const auto sites = HopSites(p, stages);
  std::vector<HopOption> options;
  for (const auto& site : sites) {
    auto chosen =
        ChooseOption(p, rule, site.boundary, site.from, site.to, site.link, site.cap, site.exit);
    if (!chosen)
      chosen = ChooseOption(p, {rule.smallest_exit, {}}, site.boundary, site.from, site.to,
                            site.link, std::numeric_limits<int64_t>::max(), site.exit);
    options.push_back(*chosen);  // raw always qualifies without a cap
  }
  return Assemble(p, std::move(stages), sites, options);
}

// ---- Latency top-k -----------------------------------------------------------------------------

struct Round {
  std::vector<PlanCandidate> valid;  // by (latency, key)
  double last_cost = kInf;           // every plan not returned costs at least this (DP cost)
  bool exhausted = true;             // every plan was returned
};

// One DP per source when there is a return hop (so it knows where to go), else one.
std::vector<int> DpSources(const SearchSpace& space) {
  if (!space.problem().return_result) return {-1};
  std::vector<int> sources;
  for (int r = 0; r < space.resources(); ++r)
    if (space.Tier(r) == 0) sources.push_back(r);
  return sources;
}

// Plan cost as the DP counts it: transfers plus block times weighted per resource.
double WeightedCost(const PlanCandidate& c, const std::vector<double>* weight) {
  double cost = c.transfer_ms;
  for (const auto& s : c.stages)
    cost += s.compute_ms * (weight ? (*weight)[static_cast<size_t>(s.resource)] : 1.0);
  return cost;
}

Round RunRound(const SearchSpace& space, DpOptions options, SearchBudget& budget) {
  const PlanProblem& p = space.problem();
  Round round;
  for (int source : DpSources(space)) {
    options.only_source = source;
    budget.Reserve(space.EntriesPerK() * options.k, options.k);
    DpResult dp = LatencyDp(space, options).Run();
    budget.Spend(dp.entries, options.k);
    round.exhausted = round.exhausted && dp.exhausted;
    if (!dp.exhausted) round.last_cost = std::min(round.last_cost, dp.costs.back());
    for (size_t i = 0; i < dp.layouts.size(); ++i) {
      auto plan = EvaluateUnder(p, std::move(dp.layouts[i]), space.rule());
      // The proof in LatencyTopK needs the DP's costs to agree with Evaluate's up to rounding.
      const double expected = WeightedCost(plan, options.weight);
      if (!(std::fabs(expected - dp.costs[i]) <= 1e-9 * (1.0 + expected)))
        throw Internal("planner: DP cost {} ms for a plan of {} ms", dp.costs[i], expected);
      if (Satisfies(p, plan)) round.valid.push_back(std::move(plan));
    }
  }
  std::sort(round.valid.begin(), round.valid.end(), LatencyLess);
  return round;
}

struct PercentCap {
  int tier;
  double share;  // of the plan's compute, as Satisfies computes it
};

std::vector<PercentCap> PercentCaps(const PlanProblem& p) {
  std::vector<PercentCap> caps;
  for (const auto& [tier, limit] : p.max_time)
    if (limit.percent && limit.value < 100) caps.push_back({tier, limit.value / 100.0});
  return caps;
}

// Block weights 1 + λ(tier) − Σ λ_t · share_t for multipliers λ >= 0 of the percentage caps.
std::vector<double> CapWeights(const SearchSpace& space, const std::vector<PercentCap>& caps,
                               const std::vector<double>& lambda) {
  double shared = 0;
  for (size_t i = 0; i < caps.size(); ++i) shared += lambda[i] * caps[i].share;
  std::vector<double> weight(static_cast<size_t>(space.resources()));
  for (int r = 0; r < space.resources(); ++r) {
    double own = 0;
    for (size_t i = 0; i < caps.size(); ++i)
      if (caps[i].tier == space.Tier(r)) own += lambda[i];
    weight[static_cast<size_t>(r)] = std::max(0.0, 1.0 + own - shared);
  }
  return weight;
}

// Percentage caps are global, but a Lagrangian weighting keeps them exact: with weights from
// CapWeights (Σ λ_t · share_t <= 1 keeps them >= 0) a plan's weighted cost is its latency plus
// Σ λ_t (compute on t − share_t · compute), so a valid plan's latency is at least its weighted
// cost and LatencyTopK's proof still bounds every unseen valid plan. Any λ is exact; a good one
// ranks valid plans early. Found per cap by bisection on the sign of that cap's slack in the
// cheapest plan (k = 1), two sweeps over the caps when there are several.
std::vector<double> LagrangeWeights(const SearchSpace& space, SearchBudget& budget) {
  const PlanProblem& p = space.problem();
  const auto caps = PercentCaps(p);
  std::vector<double> lambda(caps.size(), 0.0);
  for (size_t sweep = 0; sweep < std::min<size_t>(caps.size(), 2); ++sweep)
    for (size_t i = 0; i < caps.size(); ++i) {
      double others = 0;
      for (size_t j = 0; j < caps.size(); ++j)
        if (j != i) others += lambda[j] * caps[j].share;
      double lo = 0, hi = caps[i].share > 0 ? (1.0 - others) / caps[i].share : 1e6;
      for (int step = 0; step < 20; ++step) {
        lambda[i] = (lo + hi) / 2;
        const auto weight = CapWeights(space, caps, lambda);
        budget.Reserve(space.EntriesPerK(), 1);
        DpResult dp = LatencyDp(space, {.weight = &weight}).Run();
        budget.Spend(dp.entries, 1);
        if (dp.layouts.empty()) return CapWeights(space, caps, {});
        PlanCandidate cheapest = EvaluateUnder(p, std::move(dp.layouts.front()), space.rule());
        double on_tier = 0;
        for (const auto& s : cheapest.stages)
          if (space.Tier(s.resource) == caps[i].tier) on_tier = s.compute_ms;
        (on_tier > caps[i].share * cheapest.compute_ms ? lo : hi) = lambda[i];
      }
      lambda[i] = hi;
    }
  return CapWeights(space, caps, lambda);
}

// Both rounds' plans; an unseen valid plan was unseen by both, so it is above both bounds.
Round Union(Round a, Round b) {
  for (auto& plan : b.valid)
    if (std::none_of(a.valid.begin(), a.valid.end(),
                     [&](const PlanCandidate& c) { return StageKey(c) == StageKey(plan); }))
      a.valid.push_back(std::move(plan));
  std::sort(a.valid.begin(), a.valid.end(), LatencyLess);
  a.exhausted = a.exhausted || b.exhausted;
  a.last_cost = std::max(a.last_cost, b.last_cost);
  return a;
}

// Top-`want` by (latency, key) among the space's plans that satisfy every constraint. Plans
// failing a percentage cap are skipped, doubling k until the want-th valid plan is provably
// final or the budget is spent; from the fourth round on, a second DP under LagrangeWeights
// runs beside the plain one (plain doubling is cheap and enough when few plans break a cap; the
// weighted one when the best plans all do). Plans costing cost_limit or more may be left out.
std::vector<PlanCandidate> LatencyTopK(const SearchSpace& space, int want, SearchBudget& budget,
                                       double cost_limit = kInf) {
  const bool percent_caps = !PercentCaps(space.problem()).empty();
  std::vector<double> weight;
  for (int k = want + 2;; k *= 2) {  // slack: usually one round
    if (percent_caps && weight.empty() && k >= 8 * (want + 2))
      weight = LagrangeWeights(space, budget);
    DpOptions options{.k = k, .cost_limit = cost_limit};
    Round round = RunRound(space, options, budget);
    if (!weight.empty()) {
      options.weight = &weight;
      round = Union(std::move(round), RunRound(space, options, budget));
    }
    bool final_answer = round.exhausted;
    if (!final_answer && static_cast<int>(round.valid.size()) >= want) {
      // The want-th valid plan must be strictly below anything the DPs did not return.
      double kth = round.valid[static_cast<size_t>(want - 1)].latency_ms;
      final_answer = kth + 1e-9 * (1.0 + std::fabs(kth)) < round.last_cost;
    }
    if (final_answer) {
      if (static_cast<int>(round.valid.size()) > want)
        round.valid.resize(static_cast<size_t>(want));
      return round.valid;
    }
  }
}

// ---- Uplink ------------------------------------------------------------------------------------

std::vector<PlanCandidate> UplinkTopK(const PlanProblem& p, SearchBudget& budget) {
  SearchSpace space(p);
  const auto groups = space.ExitCandidates();
  // Plans that never leave the first tier have uplink 0 and come first.
  space.RestrictExits(std::nullopt);
  std::vector<PlanCandidate> out = LatencyTopK(space, p.top_k, budget);
  auto less = [&](const auto& a, const auto& b) { return PlanLess(p, a, b); };
  for (const auto& [bytes, boundaries] : groups) {
    std::sort(out.begin(), out.end(), less);
    // Groups come in ascending uplink: once k plans beat this group's uplink, none can enter.
    if (static_cast<int>(out.size()) >= p.top_k &&
        out[static_cast<size_t>(p.top_k - 1)].uplink_bytes < bytes)
      break;
    space.RestrictExits(bytes, boundaries);
    if (!space.AnyExit()) continue;
    for (auto& plan : LatencyTopK(space, p.top_k, budget)) out.push_back(std::move(plan));
  }
  std::sort(out.begin(), out.end(), less);
  if (static_cast<int>(out.size()) > p.top_k) out.resize(static_cast<size_t>(p.top_k));
  return out;
}

// ---- Throughput --------------------------------------------------------------------------------
// The bottleneck is not decomposable for a top-k DP, but "bottleneck <= θ" is local: every stage
// and hop at most θ. So the plans are found threshold by threshold: θ1 < θ2 < ... are the
// smallest bottlenecks, each found by a binary search over plan counts, and the plans with
// bottleneck θi are the latency top-k under threshold θi minus those below θ(i-1).

// Plans of the space (saturated at kCountCap): the latency DP's recurrence with counts.
int64_t CountPlans(const SearchSpace& space, int only_source) {
  const int n = space.blocks(), nr = space.resources();
  auto at = [nr](int b, int r) { return static_cast<size_t>(b * nr + r); };
  std::vector<int64_t> count(static_cast<size_t>((n + 1) * nr), 0);
  std::vector<int64_t> arrived(static_cast<size_t>((n + 1) * nr), 0);  // prefix sums of arrivals
  for (int r = 0; r < nr; ++r)
    if (space.Tier(r) == 0 && (only_source < 0 || only_source == r)) count[at(0, r)] = 1;
  for (int b = 0; b < n; ++b)
    for (int r2 = 0; r2 < nr; ++r2) {
      int64_t arrive = b == 0 ? count[at(0, r2)] : 0;
      for (int r : space.Into(r2))
        if (count[at(b, r)] > 0 && space.HopMs(b, r, r2) < kInf)
          arrive = std::min(kCountCap, arrive + count[at(b, r)]);
      arrived[at(b + 1, r2)] = arrived[at(b, r2)] + arrive;
      const int first = space.MinStart(b, r2);
      if (first <= b)
        count[at(b + 1, r2)] = std::min(kCountCap, arrived[at(b + 1, r2)] - arrived[at(first, r2)]);
    }
  int64_t total = 0;
  for (int r = 0; r < nr; ++r)
    if (space.Terminal(r) && space.ReturnMs(r, only_source) < kInf)
      total = std::min(kCountCap, total + count[at(n, r)]);
  return total;
}

// Plans (local constraints only) with bottleneck <= max_stage_ms.
int64_t CountPlansBelow(const PlanProblem& p, double max_stage_ms, SearchBudget& budget) {
  SearchSpace space(p, max_stage_ms);
  int64_t total = 0;
  if (!p.return_result) {
    budget.Spend(int64_t{p.blocks + 1} * space.resources(), 0);
    return CountPlans(space, -1);
  }
  for (int r = 0; r < space.resources(); ++r)
    if (space.Tier(r) == 0) {
      budget.Spend(int64_t{p.blocks + 1} * space.resources(), 0);
      total = std::min(kCountCap, total + CountPlans(space, r));
    }
  return total;
}

// The smallest threshold above `after` (any >= 0 when after < 0) with more than `below` plans
// at or under it, with that count. Bottlenecks are non-negative doubles, ordered like their bit
// patterns, so a binary search over the patterns finds it exactly in at most 64 counts.
std::optional<std::pair<double, int64_t>> NextBottleneck(const PlanProblem& p, double after,
                                                         int64_t below, SearchBudget& budget) {
  uint64_t lo = after < 0 ? 0 : std::bit_cast<uint64_t>(after) + 1;
  uint64_t hi = std::bit_cast<uint64_t>(kInf);
  int64_t at_hi = CountPlansBelow(p, kInf, budget);
  if (at_hi <= below) return std::nullopt;
  while (lo < hi) {
    uint64_t mid = lo + (hi - lo) / 2;
    int64_t count = CountPlansBelow(p, std::bit_cast<double>(mid), budget);
    if (count > below) {
      hi = mid;
      at_hi = count;
    } else {
      lo = mid + 1;
    }
  }
  return std::make_pair(std::bit_cast<double>(hi), at_hi);
}

std::vector<PlanCandidate> ThroughputTopK(const PlanProblem& p, SearchBudget& budget) {
  std::vector<PlanCandidate> out;
  double last = -1;   // every plan with bottleneck <= last is accounted for
  int64_t below = 0;  // how many there are (local constraints only)
  while (static_cast<int>(out.size()) < p.top_k) {
    auto next = NextBottleneck(p, last, below, budget);
    if (!next) break;
    // At most `out.size()` valid plans are below the threshold, so the latency top-k under it
    // holds the best top_k - out.size() plans at it.
    SearchSpace space(p, next->first);
    for (auto& plan : LatencyTopK(space, p.top_k, budget))
      if (plan.bottleneck_ms > last && static_cast<int>(out.size()) < p.top_k)
        out.push_back(std::move(plan));
    std::tie(last, below) = *next;
    if (below >= kCountCap) budget.Exceeded(0);  // counts are no longer exact
  }
  return out;
}

// ---- Pareto ------------------------------------------------------------------------------------

// A lower bound on the latency of every plan in an uplink group, so that a group that cannot
// beat the fastest plan of the smaller uplinks is skipped without a DP (with codecs there are
// several groups per boundary): over the group's exits (b, r, r2), the source's compute before
// b, the exit hop, and the fastest completion from r2 at b. Completions relax the space (stages
// may be empty, no caps, no criteria beyond the allowed hops, no return hop) and never leave the
// first tier again, so they depend on no group and are computed once, backwards.
class ExitBound {
 public:
  explicit ExitBound(const SearchSpace& space);
  // For the group the space is restricted to now; kInf when no hop can leave the first tier.
  double operator()(const SearchSpace& space) const;

 private:
  int nr_;
  std::vector<double> before_;  // [b * nr + r], r on the first tier: compute of blocks 0..b-1
  std::vector<double> after_;   // [b * nr + r]: least completion of blocks b.. from r
};

ExitBound::ExitBound(const SearchSpace& space)
    : nr_(space.resources()),
      before_((static_cast<size_t>(space.blocks()) + 1) * static_cast<size_t>(nr_), kInf),
      after_((static_cast<size_t>(space.blocks()) + 1) * static_cast<size_t>(nr_), kInf) {
  const int n = space.blocks();
  auto at = [this](int b, int r) { return static_cast<size_t>(b) * nr_ + static_cast<size_t>(r); };
  for (int r = 0; r < nr_; ++r) {
    if (space.Tier(r) != 0) continue;
    double sum = 0;  // summed as StageMs sums
    before_[at(0, r)] = 0;
    for (int b = 0; b < n; ++b) before_[at(b + 1, r)] = sum += space.BlockMs(b, r);
  }
  // Later tiers first, so a hop's target is final when its source is computed.
  std::vector<int> order;
  for (int r = 0; r < nr_; ++r)
    if (space.Tier(r) != 0) order.push_back(r);
  std::sort(order.begin(), order.end(),
            [&](int a, int b) { return space.Tier(a) > space.Tier(b); });
  for (int r : order) after_[at(n, r)] = 0;
  for (int b = n - 1; b >= 0; --b)
    for (int r : order) {
      double best = space.BlockMs(b, r) + after_[at(b + 1, r)];
      for (int r2 : order)
        if (space.Tier(r2) > space.Tier(r))
          best = std::min(best, space.HopMs(b, r, r2) + after_[at(b, r2)]);
      after_[at(b, r)] = best;
    }
}

double ExitBound::operator()(const SearchSpace& space) const {
  double bound = kInf;
  for (int b : space.ExitBoundaries()) {
    if (!space.MayLeave(b, 0)) continue;
    for (int r = 0; r < nr_; ++r) {
      if (space.Tier(r) != 0) continue;
      const double before = before_[static_cast<size_t>(b) * nr_ + static_cast<size_t>(r)];
      for (int r2 = 0; r2 < nr_; ++r2) {
        const double after = after_[static_cast<size_t>(b) * nr_ + static_cast<size_t>(r2)];
        if (after < kInf) bound = std::min(bound, before + space.HopMs(b, r, r2) + after);
      }
    }
  }
  return bound;
}

// Enumerates every stage layout: a source on tiers[0] running blocks 0..e (possibly none), then
// non-empty stages on strictly later tiers covering the rest.
void EnumerateLayouts(const PlanProblem& p,
                      const std::function<void(std::vector<Stage>&)>& complete) {
  const int n = p.blocks;
  const int nr = static_cast<int>(p.resources.size());
  std::vector<Stage> stages;
  std::function<void(int)> extend = [&](int next_block) {
    if (next_block == n) {
      complete(stages);
      return;
    }
    const Stage& last = stages.back();
    int tier = p.resources[static_cast<size_t>(last.resource)].tier;
    for (int r = 0; r < nr; ++r) {
      if (p.resources[static_cast<size_t>(r)].tier <= tier) continue;
      for (int end = next_block; end < n; ++end) {
        stages.push_back({r, next_block, end, 0});
        extend(end + 1);
        stages.pop_back();
      }
    }
  };
  for (int r = 0; r < nr; ++r) {
    if (p.resources[static_cast<size_t>(r)].tier != 0) continue;
    for (int end = -1; end < n; ++end) {
      stages = {{r, 0, end, 0}};
      extend(end + 1);
    }
  }
}

std::string Wanted(const PlanProblem& p) {
  std::string what = fmt::format("the top-{} plans", p.top_k);
  if (p.objective == Objective::kThroughput) what += " by throughput";
  if (p.objective == Objective::kUplink) what += " by uplink";
  return what;
}

}  // namespace

PlanCandidate Evaluate(const PlanProblem& p, std::vector<Stage> stages) {
  return EvaluateUnder(p, std::move(stages), ObjectiveRule(p));
}

PlanCandidate Evaluate(const PlanProblem& p, std::vector<Stage> stages,
                       const std::vector<int>& codec_options) {
  const auto sites = HopSites(p, stages);
  if (codec_options.size() != sites.size())
    throw Internal("planner: {} codec options for {} hops", codec_options.size(), sites.size());
  std::vector<HopOption> options;
  for (size_t i = 0; i < sites.size(); ++i) {
    const HopSite& site = sites[i];
    const int o = codec_options[i];
    if (o < 0 || o >= OptionCount(p, site.boundary))
      throw Internal("planner: codec option {} at boundary {}", o, site.boundary);
    auto option = OptionOf(p, site.boundary, site.from, site.to, o, site.link);
    if (!option) {  // not measured on both resources: no finite time
      option = HopOption{
          o, p.codecs[static_cast<size_t>(site.boundary)][static_cast<size_t>(o - 1)].bytes};
    }
    options.push_back(*option);
  }
  return Assemble(p, std::move(stages), sites, options);
}

bool Satisfies(const PlanProblem& p, const PlanCandidate& c) {
  if (!std::isfinite(c.latency_ms)) return false;
  const int tiers = static_cast<int>(p.tiers.size());
  std::vector<const Stage*> by_tier(static_cast<size_t>(tiers), nullptr);
  for (const auto& s : c.stages)
    by_tier[static_cast<size_t>(p.resources[static_cast<size_t>(s.resource)].tier)] = &s;
  for (int t = 0; t < tiers; ++t) {
    const Stage* s = by_tier[static_cast<size_t>(t)];
    bool used = s && s->last_block >= s->first_block;
    const auto& cr = CriteriaOf(p, t);
    if (cr.must_be_unused && used) return false;
    if (MustBeUsed(p, t) && !used) return false;
    if (used && !ResourceAllowedOnTier(p, s->resource)) return false;
    for (int b : cr.blocks_in)
      if (!used || b < s->first_block || b > s->last_block) return false;
    for (int b : cr.blocks_not_in)
      if (used && b >= s->first_block && b <= s->last_block) return false;
    if (!s) continue;
    auto time = p.max_time.find(t);
    if (time != p.max_time.end()) {
      double limit =
          time->second.percent ? time->second.value / 100.0 * c.compute_ms : time->second.value;
      if (s->compute_ms > limit) return false;
    }
  }
  if (p.privacy_blocks > 0 && c.stages.front().last_block < p.privacy_blocks - 1) return false;
  for (size_t i = 1; i < c.stages.size(); ++i) {
    int from_tier = p.resources[static_cast<size_t>(c.stages[i - 1].resource)].tier;
    auto cap = p.max_upload_bytes.find(from_tier);
    if (cap != p.max_upload_bytes.end() && c.hops[i - 1].bytes > cap->second) return false;
  }
  for (const auto& s : c.stages) {
    auto mem = p.max_memory_bytes.find(p.resources[static_cast<size_t>(s.resource)].name);
    if (mem == p.max_memory_bytes.end() || s.last_block < s.first_block) continue;
    int64_t weights = 0, activations = 0;
    for (int b = s.first_block; b <= s.last_block; ++b) {
      weights += p.block_weight_bytes[static_cast<size_t>(b)];
      activations =
          std::max(activations, p.BytesAtBoundary(b) + p.output_bytes[static_cast<size_t>(b)]);
    }
    if (weights + activations > mem->second) return false;
  }
  return true;
}

bool PlanLess(const PlanProblem& p, const PlanCandidate& a, const PlanCandidate& b) {
  double va = ObjectiveValue(p, a), vb = ObjectiveValue(p, b);
  if (va != vb) return va < vb;
  if (a.latency_ms != b.latency_ms) return a.latency_ms < b.latency_ms;
  auto ka = StageKey(a), kb = StageKey(b);
  if (ka != kb) return ka < kb;
  return CodecKeyLess(p, a, b);
}

std::vector<PlanCandidate> PlanTopK(const PlanProblem& p) {
  p.Validate();
  SearchBudget budget(p, Wanted(p), "lower --top");
  switch (p.objective) {
    case Objective::kThroughput:
      return ThroughputTopK(p, budget);
    case Objective::kUplink:
      return UplinkTopK(p, budget);
    default:
      return LatencyTopK(SearchSpace(p), p.top_k, budget);
  }
}

std::vector<PlanCandidate> AllPlans(const PlanProblem& p, CodecPlans which) {
  p.Validate();
  auto less = [&](const PlanCandidate& a, const PlanCandidate& b) { return PlanLess(p, a, b); };
  std::vector<PlanCandidate> all;
  EnumerateLayouts(p, [&](std::vector<Stage>& stages) {
    // Every codec assignment, whether measured or not (Evaluate and Satisfies decide), as an
    // odometer over the hops' options; never the search's per-hop choice.
    std::vector<int> counts;
    for (const auto& site : HopSites(p, stages)) counts.push_back(OptionCount(p, site.boundary));
    std::vector<int> options(counts.size(), 0);
    std::optional<PlanCandidate> best;
    for (;;) {
      auto plan = Evaluate(p, stages, options);
      if (Satisfies(p, plan)) {
        if (which == CodecPlans::kEvery)
          all.push_back(std::move(plan));
        else if (!best || less(plan, *best))
          best = std::move(plan);
      }
      size_t i = 0;
      for (; i < options.size(); ++i) {
        if (++options[i] < counts[i]) break;
        options[i] = 0;
      }
      if (i == options.size()) break;
    }
    if (best) all.push_back(std::move(*best));
  });
  std::sort(all.begin(), all.end(), less);
  return all;
}

std::vector<PlanCandidate> PlanBruteForce(const PlanProblem& p) {
  auto all = AllPlans(p);
  if (static_cast<int>(all.size()) > p.top_k) all.resize(static_cast<size_t>(p.top_k));
  return all;
}

std::vector<PlanCandidate> ParetoLatencyUplink(const PlanProblem& problem) {
  problem.Validate();
  PlanProblem p = problem;
  p.objective = Objective::kLatency;
  SearchBudget budget(p, "the latency/uplink Pareto front", "plan fewer blocks or resources");
  SearchSpace space(p);
  const auto groups = space.ExitCandidates();
  const ExitBound exit_bound(space);
  // The fastest plan of every uplink group, then the non-dominated ones in ascending uplink.
  // Groups come in ascending uplink, so a group matters only below the fastest plan so far.
  std::vector<PlanCandidate> fastest;
  double best_ms = kInf;
  auto consider = [&](std::optional<int64_t> exit_bytes, const std::vector<int>& boundaries) {
    space.RestrictExits(exit_bytes, boundaries);
    // The margin keeps ties (equal uplink) and covers the DP's rounding and the bound's (sums of
    // at most 2^20 + 2 terms in another order: far below 1e-9 relative).
    const double limit = best_ms + 1e-9 * (1.0 + best_ms);
    if (exit_bytes) {
      const double bound = exit_bound(space);
      if (!(bound < kInf) || bound - 1e-9 * (1.0 + bound) >= limit) return;
    }
    auto plans = LatencyTopK(space, 1, budget, limit);
    if (plans.empty()) return;
    best_ms = std::min(best_ms, plans.front().latency_ms);
    fastest.push_back(std::move(plans.front()));
  };
  consider(std::nullopt, {});
  for (const auto& [bytes, boundaries] : groups) consider(bytes, boundaries);
  std::sort(fastest.begin(), fastest.end(), [&](const PlanCandidate& a, const PlanCandidate& b) {
    if (a.uplink_bytes != b.uplink_bytes) return a.uplink_bytes < b.uplink_bytes;
    return PlanLess(p, a, b);
  });
  std::vector<PlanCandidate> front;
  for (auto& plan : fastest)
    if (front.empty() || plan.latency_ms < front.back().latency_ms) {
      if (!front.empty() && front.back().uplink_bytes == plan.uplink_bytes) continue;
      front.push_back(std::move(plan));
    }
  return front;
}

}  // namespace scission::plan
