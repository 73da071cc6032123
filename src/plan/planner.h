// Exact top-k placement search over profiles and links (DESIGN.md "Native planner").
//
// Total order of plans (documented, used by the search and the brute force alike): objective value
// ascending (latency ms; uplink bytes; bottleneck ms for throughput), then latency ascending, then
// the stage key — the sequence of (resource index, first block, last block) — lexicographically.
// Plan values are always recomputed by Evaluate() in one canonical summation order.
//
// Search. Latency: a forward dynamic program over (block boundary, resource) states keeping the k
// best plan prefixes per state, O(n · R² · k log R). Every constraint but the percentage time
// caps is local and pruned inside the DP, exactly: criteria, privacy, upload caps and tier
// skipping restrict hops and blocks; an absolute time cap or a memory cap limits one stage, whose
// allowed first blocks for a given last block form a suffix (compute and memory only grow with
// the stage), so such a stage takes the k best over that window of starts (a two-stack sliding
// window, O(n · k) per resource). Percentage caps depend on the whole plan's compute: complete
// plans failing them are skipped and k doubles until the k-th valid plan is provably final (ties
// at the cut do the same). Uplink: the same DP per group of equal first-hop size, groups in
// ascending order. Throughput (max over stages and hops): "bottleneck <= θ" is local, so the
// smallest bottlenecks θ1 < θ2 < ... are found by binary search over plan counts (at most 64 count
// DPs each) and the plans at each are the latency top-k under that threshold.
//
// Bounds. --top is 1..kMaxTopK. One doubling round holds at most 2^22 DP entries (64 MiB) and one
// PlanTopK or ParetoLatencyUplink call computes at most 2^28 in all (rounds, uplink groups,
// throughput thresholds); reaching either throws BadInput ("cannot prove the top-5 plans under
// --max-time edge=40% within the search bound ...") rather than answering inexactly. Without
// percentage caps or mass ties the first round is the only one.
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
