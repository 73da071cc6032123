#include "plan/planner.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <memory>
#include <queue>
#include <set>

#include "common/error.h"

namespace scission::plan {

void PlanProblem::Validate() const {
  if (tiers.empty()) throw BadInput("no tiers");
  if (blocks < 1) throw BadInput("the model has no blocks");
  if (static_cast<int>(output_bytes.size()) != blocks)
    throw BadInput("output sizes for {} blocks, expected {}", output_bytes.size(), blocks);
  if (!criteria.empty() && criteria.size() != tiers.size())
    throw BadInput("criteria for {} tiers, expected {}", criteria.size(), tiers.size());
  bool first_tier = false;
  for (const auto& r : resources) {
    if (r.tier < 0 || r.tier >= static_cast<int>(tiers.size()))
      throw BadInput("resource '{}' has no tier in {}", r.name, tiers.size());
    if (static_cast<int>(r.block_ms.size()) != blocks)
      throw BadInput("resource '{}' has {} block times, the model has {} blocks", r.name,
                     r.block_ms.size(), blocks);
    for (double ms : r.block_ms)
      if (!(ms >= 0) || !std::isfinite(ms))
        throw BadInput("resource '{}' has an invalid block time", r.name);
    first_tier |= r.tier == 0;
  }
  if (!first_tier)
    throw BadInput("no resource on the first tier '{}', where the input starts", tiers[0]);
  if (privacy_blocks < 0 || privacy_blocks > blocks)
    throw BadInput("--privacy {} is outside 0..{}", privacy_blocks, blocks);
  if (top_k < 1) throw BadInput("--top must be at least 1");
  for (const auto& [key, link] : links)
    if (!(link.mbps > 0) || !(link.rtt_ms >= 0))
      throw BadInput("link {} -> {} needs bandwidth > 0 and RTT >= 0", key.first, key.second);
  if (!max_memory_bytes.empty() && static_cast<int>(block_weight_bytes.size()) != blocks)
    throw BadInput("memory limits need per-block weight sizes (an ONNX model, not imported data)");
}

namespace {

const TierCriteria kNoCriteria{};

const TierCriteria& CriteriaOf(const PlanProblem& p, int tier) {
  return p.criteria.empty() ? kNoCriteria : p.criteria[static_cast<size_t>(tier)];
}

bool Contains(const std::vector<int>& v, int x) {
  return std::find(v.begin(), v.end(), x) != v.end();
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

// Block b may run on resource r (criteria, privacy).
bool ComputeAllowed(const PlanProblem& p, int b, int r) {
  int tier = p.resources[static_cast<size_t>(r)].tier;
  if (b < p.privacy_blocks && tier != 0) return false;
  if (CriteriaOf(p, tier).must_be_unused) return false;
  if (Contains(CriteriaOf(p, tier).blocks_not_in, b)) return false;
  for (int t = 0; t < static_cast<int>(p.tiers.size()); ++t)
    if (t != tier && Contains(CriteriaOf(p, t).blocks_in, b)) return false;
  return ResourceAllowedOnTier(p, r);
}

const Link* FindLink(const PlanProblem& p, int from, int to) {
  auto it = p.links.find(
      {p.resources[static_cast<size_t>(from)].name, p.resources[static_cast<size_t>(to)].name});
  return it == p.links.end() ? nullptr : &it->second;
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

// ---- Latency DP ------------------------------------------------------------------------------

struct Entry {
  double cost;
  int pred_state;  // -1: source
  int pred_rank;
};

struct DpOptions {
  int k = 5;
  int only_source = -1;  // restrict the source resource (return-result mode)
  // Uplink grouping: first-tier exits only at boundaries where allowed_exit[b]; no_exit_allowed
  // keeps plans that never leave the first tier.
  const std::vector<bool>* allowed_exit = nullptr;
  bool no_exit_allowed = true;
};

struct DpResult {
  std::vector<std::vector<Stage>> layouts;  // in ascending DP cost
  std::vector<double> costs;
  bool exhausted = false;  // fewer than k complete plans exist
};

DpResult RunLatencyDp(const PlanProblem& p, const DpOptions& o) {
  const int n = p.blocks;
  const int nr = static_cast<int>(p.resources.size());
  auto id = [nr](int b, int r) { return b * nr + r; };
  auto tier_of = [&](int r) { return p.resources[static_cast<size_t>(r)].tier; };

  // Everything that does not change from block to block, precomputed once per run.
  std::vector<char> compute_ok(static_cast<size_t>(n * nr));
  for (int b = 0; b < n; ++b)
    for (int r = 0; r < nr; ++r)
      compute_ok[static_cast<size_t>(id(b, r))] = ComputeAllowed(p, b, r);
  std::vector<const Link*> link(static_cast<size_t>(nr * nr), nullptr);
  std::vector<char> hop_ok(static_cast<size_t>(nr * nr), 0);
  for (int r = 0; r < nr; ++r)
    for (int r2 = 0; r2 < nr; ++r2) {
      const Link* l = FindLink(p, r, r2);
      link[static_cast<size_t>(r * nr + r2)] = l;
      bool ok = l != nullptr && tier_of(r) < tier_of(r2) && ResourceAllowedOnTier(p, r2) &&
                !CriteriaOf(p, tier_of(r2)).must_be_unused;
      for (int mid = tier_of(r) + 1; ok && mid < tier_of(r2); ++mid) ok = !MustBeUsed(p, mid);
      hop_ok[static_cast<size_t>(r * nr + r2)] = ok;
    }
  std::vector<int64_t> upload_cap(p.tiers.size(), std::numeric_limits<int64_t>::max());
  for (const auto& [tier, cap] : p.max_upload_bytes) upload_cap[static_cast<size_t>(tier)] = cap;
  const bool first_must_compute = MustBeUsed(p, 0);

  // k-best lists of every state in one flat allocation.
  const size_t k = static_cast<size_t>(o.k);
  // Default-initialised (not zeroed): only entries below counts[] are ever read.
  std::unique_ptr<Entry[]> storage(new Entry[static_cast<size_t>((n + 1) * nr) * k]);
  std::vector<int> counts(static_cast<size_t>((n + 1) * nr), 0);
  struct List {
    const Entry* data;
    int size;
    bool empty() const { return size == 0; }
    const Entry& front() const { return data[0]; }
    const Entry& operator[](size_t i) const { return data[i]; }
  };
  auto list_of = [&](int state) {
    return List{&storage[static_cast<size_t>(state) * k], counts[static_cast<size_t>(state)]};
  };
  auto push = [&](int state, Entry e) {
    storage[static_cast<size_t>(state) * k +
            static_cast<size_t>(counts[static_cast<size_t>(state)]++)] = e;
  };
  for (int r = 0; r < nr; ++r)
    if (tier_of(r) == 0 && (o.only_source < 0 || o.only_source == r)) push(id(0, r), {0.0, -1, 0});

  struct Source {
    List list;
    double add;
    int state;
  };
  std::vector<Source> sources;
  struct Candidate {
    double cost;
    int source;
    int pos;
  };
  std::vector<Candidate> candidates;
  std::vector<double> fronts;
  std::vector<int> live;  // resources with a non-empty list at boundary b
  for (int b = 0; b < n; ++b) {
    const int64_t bytes = p.BytesAtBoundary(b);
    live.clear();
    for (int r = 0; r < nr; ++r)
      if (counts[static_cast<size_t>(id(b, r))] > 0) live.push_back(r);
    if (live.empty()) break;
    for (int r2 = 0; r2 < nr; ++r2) {
      if (!compute_ok[static_cast<size_t>(id(b, r2))]) continue;
      sources.clear();
      const List own = list_of(id(b, r2));
      if (!own.empty()) sources.push_back({own, 0.0, id(b, r2)});
      if (b >= p.privacy_blocks) {
        for (int r : live) {
          if (!hop_ok[static_cast<size_t>(r * nr + r2)]) continue;
          const int t = tier_of(r);
          if (bytes > upload_cap[static_cast<size_t>(t)]) continue;
          if (t == 0 && ((b == 0 && first_must_compute) ||
                         (o.allowed_exit && !(*o.allowed_exit)[static_cast<size_t>(b)])))
            continue;
          sources.push_back({list_of(id(b, r)),
                             link[static_cast<size_t>(r * nr + r2)]->TransferMs(bytes), id(b, r)});
        }
      }
      if (sources.empty()) continue;
      const double compute = p.resources[static_cast<size_t>(r2)].block_ms[static_cast<size_t>(b)];
      const int out = id(b + 1, r2);
      // The k-th smallest list head bounds the k-th best candidate: nothing above it can enter.
      // So does the k-th entry of any full list.
      double bound = std::numeric_limits<double>::infinity();
      for (const auto& src : sources)
        if (src.list.size == o.k)
          bound = std::min(bound, src.list[static_cast<size_t>(o.k - 1)].cost + src.add);
      if (static_cast<int>(sources.size()) > o.k) {
        fronts.clear();
        for (const auto& src : sources) fronts.push_back(src.list.front().cost + src.add);
        std::nth_element(fronts.begin(), fronts.begin() + (o.k - 1), fronts.end());
        bound = std::min(bound, fronts[static_cast<size_t>(o.k - 1)]);
      }
      candidates.clear();
      for (int si = 0; si < static_cast<int>(sources.size()); ++si) {
        const auto& src = sources[static_cast<size_t>(si)];
        for (int pos = 0; pos < src.list.size; ++pos) {
          double cost = src.list[static_cast<size_t>(pos)].cost + src.add;
          if (cost > bound) break;
          candidates.push_back({cost, si, pos});
        }
      }
      auto by_cost = [](const Candidate& x, const Candidate& y) {
        return x.cost < y.cost || (x.cost == y.cost && (x.source < y.source ||
                                                        (x.source == y.source && x.pos < y.pos)));
      };
      if (static_cast<int>(candidates.size()) > o.k) {
        // Ties at the cut may fall either way; PlanTopK's final check covers that.
        std::nth_element(candidates.begin(), candidates.begin() + (o.k - 1), candidates.end(),
                         [](const Candidate& x, const Candidate& y) { return x.cost < y.cost; });
        candidates.resize(static_cast<size_t>(o.k));
      }
      std::sort(candidates.begin(), candidates.end(), by_cost);
      for (const auto& c : candidates)
        push(out, {c.cost + compute, sources[static_cast<size_t>(c.source)].state, c.pos});
    }
  }

  // Terminal states, with the optional return hop.
  struct Terminal {
    double cost;
    int state;
    int rank;
  };
  std::vector<Terminal> terminals;
  for (int r = 0; r < nr; ++r) {
    if (!TerminalAllowed(p, r)) continue;
    const List list = list_of(id(n, r));
    for (int i = 0; i < list.size; ++i)
      terminals.push_back({list[static_cast<size_t>(i)].cost, id(n, r), i});
  }
  auto layout_of = [&](int state, int rank) {
    std::vector<int> owner(static_cast<size_t>(n), -1);
    int source = -1;
    while (true) {
      int b = state / nr, r = state % nr;
      const Entry& e = list_of(state)[static_cast<size_t>(rank)];
      if (e.pred_state < 0) {
        source = r;
        break;
      }
      owner[static_cast<size_t>(b - 1)] = r;
      state = e.pred_state;
      rank = e.pred_rank;
    }
    std::vector<Stage> stages;
    stages.push_back({source, 0, -1, 0});
    for (int b = 0; b < n; ++b) {
      int r = owner[static_cast<size_t>(b)];
      if (r == stages.back().resource && (stages.back().last_block == b - 1)) {
        stages.back().last_block = b;
      } else {
        stages.push_back({r, b, b, 0});
      }
    }
    return stages;
  };
  if (p.return_result) {
    for (auto& t : terminals) {
      int r = t.state % nr;
      auto stages = layout_of(t.state, t.rank);
      int source = stages.front().resource;
      if (r != source) {
        const Link* back = FindLink(p, r, source);
        t.cost = back ? t.cost + back->TransferMs(p.output_bytes.back())
                      : std::numeric_limits<double>::infinity();
      }
    }
  }
  std::sort(terminals.begin(), terminals.end(), [](const Terminal& a, const Terminal& b) {
    return a.cost < b.cost ||
           (a.cost == b.cost && (a.state < b.state || (a.state == b.state && a.rank < b.rank)));
  });
  DpResult result;
  for (const auto& t : terminals) {
    if (static_cast<int>(result.layouts.size()) >= o.k) break;
    if (!std::isfinite(t.cost)) continue;
    auto stages = layout_of(t.state, t.rank);
    if (!o.no_exit_allowed && stages.size() == 1) continue;
    result.layouts.push_back(std::move(stages));
    result.costs.push_back(t.cost);
  }
  result.exhausted = static_cast<int>(result.layouts.size()) < o.k;
  return result;
}

// Top-k by (latency, key) among plans the DP options admit, with global constraints applied.
std::vector<PlanCandidate> LatencyTopK(const PlanProblem& p, DpOptions o, int want) {
  // A little slack on the first try usually makes it the only one.
  int k = want + 2;
  while (true) {
    std::vector<PlanCandidate> valid;
    // Unseen plans cost at least the last cost of some DP that was not exhausted.
    double last_cost = std::numeric_limits<double>::infinity();
    bool exhausted = true;
    auto run = [&](int source) {
      o.k = k;
      o.only_source = source;
      auto dp = RunLatencyDp(p, o);
      exhausted = exhausted && dp.exhausted;
      if (!dp.exhausted) last_cost = std::min(last_cost, dp.costs.back());
      for (const auto& layout : dp.layouts) {
        auto plan = Evaluate(p, layout);
        if (Satisfies(p, plan)) valid.push_back(std::move(plan));
      }
    };
    if (p.return_result) {
      // Each source gets its own DP so the return hop knows where to go.
      for (int r = 0; r < static_cast<int>(p.resources.size()); ++r)
        if (p.resources[static_cast<size_t>(r)].tier == 0) run(r);
    } else {
      run(-1);
    }
    std::sort(valid.begin(), valid.end(),
              [&](const auto& a, const auto& b) { return PlanLess(p, a, b); });
    bool final_answer = exhausted;
    if (!final_answer && static_cast<int>(valid.size()) >= want) {
      // The want-th valid plan must be strictly below anything the DPs did not return.
      double kth = valid[static_cast<size_t>(want - 1)].latency_ms;
      double eps = 1e-9 * (1.0 + std::fabs(kth));
      final_answer = kth + eps < last_cost;
    }
    if (final_answer) {
      if (static_cast<int>(valid.size()) > want) valid.resize(static_cast<size_t>(want));
      return valid;
    }
    k *= 2;
  }
}

// Distinct uplink groups: sizes of the first-tier exit at each boundary, plus 0 for no exit.
std::vector<std::pair<int64_t, std::vector<bool>>> UplinkGroups(const PlanProblem& p) {
  std::map<int64_t, std::vector<bool>> groups;
  for (int b = 0; b < p.blocks; ++b) {
    auto& mask = groups[p.BytesAtBoundary(b)];
    mask.resize(static_cast<size_t>(p.blocks), false);
    mask[static_cast<size_t>(b)] = true;
  }
  return {groups.begin(), groups.end()};
}

std::vector<PlanCandidate> UplinkTopK(const PlanProblem& p) {
  // Plans that never leave the first tier have uplink 0 and come first.
  std::vector<PlanCandidate> out;
  {
    std::vector<bool> none(static_cast<size_t>(p.blocks), false);
    DpOptions o;
    o.allowed_exit = &none;
    out = LatencyTopK(p, o, p.top_k);
  }
  auto less = [&](const auto& a, const auto& b) { return PlanLess(p, a, b); };
  for (const auto& [bytes, mask] : UplinkGroups(p)) {
    std::sort(out.begin(), out.end(), less);
    // Groups come in ascending uplink: once k plans beat this group's uplink, none can enter.
    if (static_cast<int>(out.size()) >= p.top_k &&
        out[static_cast<size_t>(p.top_k - 1)].uplink_bytes < bytes)
      break;
    DpOptions o;
    o.allowed_exit = &mask;
    o.no_exit_allowed = false;
    for (auto& plan : LatencyTopK(p, o, p.top_k)) out.push_back(std::move(plan));
  }
  std::sort(out.begin(), out.end(), less);
  if (static_cast<int>(out.size()) > p.top_k) out.resize(static_cast<size_t>(p.top_k));
  return out;
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

std::vector<PlanCandidate> ThroughputTopK(const PlanProblem& p) {
  std::vector<PlanCandidate> best;
  auto less = [&](const PlanCandidate& a, const PlanCandidate& b) { return PlanLess(p, a, b); };
  EnumerateLayouts(p, [&](std::vector<Stage>& stages) {
    auto plan = Evaluate(p, stages);
    if (static_cast<int>(best.size()) == p.top_k && !less(plan, best.back())) return;
    if (!Satisfies(p, plan)) return;
    best.insert(std::upper_bound(best.begin(), best.end(), plan, less), std::move(plan));
    if (static_cast<int>(best.size()) > p.top_k) best.pop_back();
  });
  return best;
}

}  // namespace

PlanCandidate Evaluate(const PlanProblem& p, std::vector<Stage> stages) {
  PlanCandidate c;
  for (auto& s : stages) {
    s.compute_ms = 0;
    const auto& times = p.resources[static_cast<size_t>(s.resource)].block_ms;
    for (int b = s.first_block; b <= s.last_block; ++b)
      s.compute_ms += times[static_cast<size_t>(b)];
    c.compute_ms += s.compute_ms;
    c.bottleneck_ms = std::max(c.bottleneck_ms, s.compute_ms);
  }
  for (size_t i = 1; i < stages.size(); ++i) {
    Hop h;
    h.from = stages[i - 1].resource;
    h.to = stages[i].resource;
    h.bytes = p.BytesAtBoundary(stages[i].first_block);
    const Link* link = FindLink(p, h.from, h.to);
    h.ms = link ? link->TransferMs(h.bytes) : std::numeric_limits<double>::infinity();
    c.hops.push_back(h);
  }
  if (p.return_result && stages.back().resource != stages.front().resource) {
    Hop h;
    h.from = stages.back().resource;
    h.to = stages.front().resource;
    h.bytes = p.output_bytes.back();
    const Link* link = FindLink(p, h.from, h.to);
    h.ms = link ? link->TransferMs(h.bytes) : std::numeric_limits<double>::infinity();
    c.hops.push_back(h);
  }
  for (const auto& h : c.hops) {
    c.transfer_ms += h.ms;
    c.bottleneck_ms = std::max(c.bottleneck_ms, h.ms);
  }
  c.uplink_bytes = stages.size() > 1 ? c.hops.front().bytes : 0;
  c.latency_ms = c.compute_ms + c.transfer_ms;
  c.stages = std::move(stages);
  return c;
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
  return StageKey(a) < StageKey(b);
}

std::vector<PlanCandidate> PlanTopK(const PlanProblem& p) {
  p.Validate();
  switch (p.objective) {
    case Objective::kThroughput:
      return ThroughputTopK(p);
    case Objective::kUplink:
      return UplinkTopK(p);
    default:
      return LatencyTopK(p, DpOptions{}, p.top_k);
  }
}

std::vector<PlanCandidate> PlanBruteForce(const PlanProblem& p) {
  p.Validate();
  std::vector<PlanCandidate> all;
  EnumerateLayouts(p, [&](std::vector<Stage>& stages) {
    auto plan = Evaluate(p, stages);
    if (Satisfies(p, plan)) all.push_back(std::move(plan));
  });
  std::sort(all.begin(), all.end(),
            [&](const auto& a, const auto& b) { return PlanLess(p, a, b); });
  if (static_cast<int>(all.size()) > p.top_k) all.resize(static_cast<size_t>(p.top_k));
  return all;
}

std::vector<PlanCandidate> ParetoLatencyUplink(const PlanProblem& problem) {
  problem.Validate();
  PlanProblem p = problem;
  p.objective = Objective::kLatency;
  // The fastest plan of every uplink group, then the non-dominated ones in ascending uplink.
  std::vector<PlanCandidate> fastest;
  auto consider = [&](std::vector<PlanCandidate> plans) {
    if (!plans.empty()) fastest.push_back(std::move(plans.front()));
  };
  std::vector<bool> none(static_cast<size_t>(p.blocks), false);
  DpOptions stay;
  stay.allowed_exit = &none;
  consider(LatencyTopK(p, stay, 1));
  for (const auto& [bytes, mask] : UplinkGroups(p)) {
    DpOptions o;
    o.allowed_exit = &mask;
    o.no_exit_allowed = false;
    consider(LatencyTopK(p, o, 1));
  }
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
