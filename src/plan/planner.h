// Exact top-k placement search over profiles and links (DESIGN.md "Native planner").
//
// Total order of plans (documented, used by the search and the brute force alike): objective value
// ascending (latency ms; uplink bytes; bottleneck ms for throughput), then latency ascending, then
// the stage key — the sequence of (resource index, first block, last block) — lexicographically,
// then the codec key: the hops' options hop by hop, each by (ms, bytes, option), where option 0 is
// raw ("none") and option i + 1 is PlanProblem::codecs[b][i] (registry order as listed); under the
// uplink objective the hop out of the first tier by (bytes, ms, option). Plan values are always
// recomputed by Evaluate() in one canonical summation order.
//
// Codecs. A hop at boundary b from r to r2 may move raw bytes (BytesAtBoundary(b), no codec time)
// or use codecs[b][i] when it was measured on both r and r2 (ResourceProfile::codec_cost); it
// costs encode(r) + (RTT + bytes × 8 / (Mbit/s × 1000)) + decode(r2), summed in that order. An
// option over the sender's tier's upload cap is not usable; a hop is possible when any option is.
// A plan (top-k) is a stage layout with, on each hop, the least option in the per-hop order above:
// the fewest ms, or, out of the first tier under the uplink objective, the fewest bytes. That is
// the least codec assignment of the layout in the total order: the objective, the latency and the
// bottleneck are sums and maxima of the hops' ms (rounding is monotone), and the uplink is the
// first hop's bytes, so per-hop minima are also plan minima, and the codec key is componentwise
// least. The choice depends on the hop alone (boundary, resources, link, cap), never on the rest
// of the plan, so the DP keeps its states and only prices each hop by its chosen option; every
// proof and bound below holds unchanged. Memory caps weigh raw activations (codecs do not change
// what a stage holds in memory). The Pareto front is over (layout, codec assignment) pairs instead,
// see below.
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
// per group of equal first-hop size (after the hop's codec: a hop out of the first tier is in
// the group of its chosen option's bytes), groups in ascending order. Throughput (max over stages
// and hops): "bottleneck <= θ" is local, so the smallest bottlenecks θ1 < θ2 < ... come from binary
// searches over plan counts (at most 64 count DPs each) and the plans at each from the latency
// DP under that threshold (a hop is under θ when its fastest usable option is, which is the one it
// takes). Pareto: one latency search per uplink group, pruned by the fastest plan of the smaller
// uplinks; a group u holds every (layout, codecs) whose hop out of the first tier carries exactly
// u bytes, that hop taking the fastest option of u bytes and the others their fastest.
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

// Fills hops, per-stage compute, totals for `stages` (stage 0 = source on tiers[0]); each hop
// takes its codec as the search does (see Codecs above).
PlanCandidate Evaluate(const PlanProblem& problem, std::vector<Stage> stages);
// The same with the codec of each hop given: codec_options[i] for hop i (the return hop last), 0
// = raw, j = codecs[b][j - 1]. A codec not measured on both resources gives its hop an infinite
// time (Satisfies then rejects the plan). Internal error when the options do not fit the hops.
PlanCandidate Evaluate(const PlanProblem& problem, std::vector<Stage> stages,
                       const std::vector<int>& codec_options);
// Every constraint of the problem, checked on a complete plan.
bool Satisfies(const PlanProblem& problem, const PlanCandidate& plan);
// The documented total order.
bool PlanLess(const PlanProblem& problem, const PlanCandidate& a, const PlanCandidate& b);

// The exact top-k under problem.objective. Validates the problem first; BadInput when the search
// bound is reached.
std::vector<PlanCandidate> PlanTopK(const PlanProblem& problem);
// Which plans of a layout AllPlans lists: its least codec assignment in the total order (a plan
// as PlanTopK ranks them), or every assignment (a plan as the Pareto front counts them).
enum class CodecPlans { kBestPerLayout, kEvery };
// Every plan that satisfies the constraints, sorted by the total order (tests and tiny problems:
// it enumerates every layout and every codec assignment of it, independently of the search's
// per-hop choice).
std::vector<PlanCandidate> AllPlans(const PlanProblem& problem,
                                    CodecPlans which = CodecPlans::kBestPerLayout);
// AllPlans cut to top_k.
std::vector<PlanCandidate> PlanBruteForce(const PlanProblem& problem);
// Pareto front of (latency, uplink) over every (layout, codec assignment): one layout may give
// several points (raw is faster, zstd smaller on the first hop). For each uplink value, the least
// plan in the latency order (the fastest), kept when it is faster than every plan with a smaller
// uplink. Ascending uplink. One latency search per uplink group, under the same bounds as PlanTopK.
std::vector<PlanCandidate> ParetoLatencyUplink(const PlanProblem& problem);

}  // namespace scission::plan
