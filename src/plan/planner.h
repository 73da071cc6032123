// Exact top-k placement search over profiles and links (DESIGN.md "Cost model").
//
// Total order of plans (documented, used by the search and the brute force alike): objective value
// ascending (latency ms; uplink bytes; bottleneck ms for throughput), then latency ascending, then
// the stage key — the sequence of (resource index, first block, last block) — lexicographically.
// Plan values are always recomputed by Evaluate() in one canonical summation order.
//
// Search. Latency: a forward dynamic program over (block boundary, resource) states keeping the k
// best partial costs per state, one block per step ("continue on this resource" or "hop to a
// resource of a later tier, then compute"), O(n · R² · k log R). Local constraints (criteria,
// privacy, upload caps, tier skipping) prune edges; global ones (time and memory caps) are checked
// on complete plans, doubling k until the k-th valid plan is provably final. Uplink: the same DP
// per group of equal first-hop size, groups in ascending order. Throughput (max over stages):
// exhaustive branch-and-bound over stage layouts (the bottleneck is not decomposable for a top-k
// DP); intended for the sizes the deployment uses.
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

// The exact top-k under problem.objective. Validates the problem first.
std::vector<PlanCandidate> PlanTopK(const PlanProblem& problem);
// Every plan, filtered and sorted by the total order, cut to top_k (tests and tiny problems).
std::vector<PlanCandidate> PlanBruteForce(const PlanProblem& problem);
// Pareto front of (latency, uplink): for each uplink value, the fastest plan, kept when it is
// faster than every plan with a smaller uplink. Ascending uplink.
std::vector<PlanCandidate> ParetoLatencyUplink(const PlanProblem& problem);

}  // namespace scission::plan
