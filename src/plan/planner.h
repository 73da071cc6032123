// Exact top-k placement search over profiles and links (DESIGN.md "Native planner").
//
// Total order of plans (documented, used by the search and the brute force alike): objective value
// ascending (latency ms; uplink bytes; bottleneck ms for throughput), then latency ascending, then
// the stage key — the sequence of (resource index, first block, last block) — lexicographically.
// Plan values are always recomputed by Evaluate() in one canonical summation order.
//
// Search. Latency: a forward dynamic program over (block boundary, resource) states keeping the k
// best plan prefixes per state, O(n · R² · k log R). Exact for every local constraint, pruned
// inside the DP: criteria, privacy, upload caps and tier skipping restrict blocks and hops; an
// absolute time cap or a memory cap limits one stage, and for a given last block the allowed
// first blocks of a stage form a suffix (compute and memory only grow with the stage), so such a
// stage takes the k best over that window of starts (a two-stack sliding window, O(n · k) per
// resource) with no k-doubling. Percentage caps depend on the whole plan's compute: plans failing
// them are skipped and k doubles until the k-th valid plan is provably final; from the fourth
// round a second DP ranks by Lagrangian block weights (valid plans cost at least their weighted
// cost, so the proof stays exact) and the better of both bounds decides. Caps on every tier
// summing to under 100% allow no compute at all and become a local 0 ms cap. Uplink: the same DP
// per group of equal first-hop size, groups in ascending order. Throughput (max over stages and
// hops): "bottleneck <= θ" is local, so the smallest bottlenecks θ1 < θ2 < ... come from binary
// searches over plan counts (at most 64 count DPs each) and the plans at each from the latency
// DP under that threshold. Pareto: one latency search per uplink group, pruned by the fastest
// plan of the smaller uplinks.
//
// Bounds. top_k is 1..kMaxTopK. One DP holds at most 2^24 entries (16 bytes each, 256 MiB) and
// one PlanTopK or ParetoLatencyUplink call computes at most 2^28 in all (rounds, uplink groups,
// throughput thresholds); reaching either throws BadInput ("cannot prove the top-5 plans under
// --max-time edge=40% within the search bound ...; relax the caps or lower --top") instead of
// answering inexactly. Only percentage caps, mass ties (many plans of equal latency at the cut)
// or a top_k too large for the problem's size reach them in practice.
#pragma once

#include <vector>

#include "plan/problem.h"

namespace scission::plan {

// Fills hops, per-stage compute, totals for `stages` (stage 0 = source on tiers[0]).
PlanCandidate Evaluate(const PlanProblem& problem, std::vector<Stage> stages);
// Every constraint of the problem, checked on a complete plan.
bool Satisfies(const PlanProblem& problem, const PlanCandidate& plan);
// The documented total order.
bool PlanLess(const PlanProblem& problem, const PlanCandidate& a, const PlanCandidate& b);

// The exact top-k under problem.objective. Validates the problem first; BadInput when the search
// bound is reached.
std::vector<PlanCandidate> PlanTopK(const PlanProblem& problem);
// Every plan that satisfies the constraints, sorted by the total order (tests and tiny problems:
// it enumerates every layout).
std::vector<PlanCandidate> AllPlans(const PlanProblem& problem);
// AllPlans cut to top_k.
std::vector<PlanCandidate> PlanBruteForce(const PlanProblem& problem);
// Pareto front of (latency, uplink): for each uplink value, the fastest plan, kept when it is
// faster than every plan with a smaller uplink. Ascending uplink. One latency search per uplink
// group, under the same bounds as PlanTopK.
std::vector<PlanCandidate> ParetoLatencyUplink(const PlanProblem& problem);

}  // namespace scission::plan
