// Planner speed. BM_PlanTopK/n/tiers/resources_per_tier: top-10 by latency with two constraints
// (privacy on the first 5 blocks, an upload cap on the first tier). Target: <= 10 ms per call at
// 1000/4/10. BM_Plan/<case>/n/tiers/resources_per_tier: top-5 with caps on the last (fastest)
// tier, all binding — 50% of the plan's compute, 60 ms, 200 MB per resource — infeasible caps
// (1 ms or 30% on every tier), and the other objectives. A case that reaches the search bound
// reports bound_error = 1 (the time is the time to the error). Peak memory of one case:
// /usr/bin/time -f %M build/bench_plan --benchmark_filter='BM_Plan/pct50/1000'.
// BM_PlanTopKCodecs and the *_codecs cases: the same problems with three codecs at every
// boundary (AddCodecs); compare each with its codec-free twin from the same run.
#include <random>

#include <benchmark/benchmark.h>
#include <fmt/format.h>

#include "common/error.h"
#include "plan/planner.h"

namespace {

using scission::plan::Objective;
using scission::plan::PlanProblem;

PlanProblem MakeProblem(int blocks, int tiers, int per_tier) {
  std::mt19937 rng(42);
  std::uniform_real_distribution<double> time(0.1, 5.0);
  std::uniform_int_distribution<int> size(1000, 4000000);
  PlanProblem p;
  for (int t = 0; t < tiers; ++t) p.tiers.push_back(fmt::format("tier{}", t));
  p.blocks = blocks;
  p.input_bytes = 150528 * 4;
  for (int b = 0; b < blocks; ++b) p.output_bytes.push_back(size(rng));
  for (int t = 0; t < tiers; ++t)
    for (int i = 0; i < per_tier; ++i) {
      scission::plan::ResourceProfile r{fmt::format("t{}r{}", t, i), t, {}, {}};
      double speed = 1.0 / (1 + t);  // later tiers are faster
      for (int b = 0; b < blocks; ++b) r.block_ms.push_back(time(rng) * speed);
      p.resources.push_back(std::move(r));
    }
  for (const auto& a : p.resources)
    for (const auto& b : p.resources)
      if (a.tier < b.tier)
        p.links[{a.name, b.name}] = {5.0 * (b.tier - a.tier), 20.0 * (1 + a.tier)};
  p.privacy_blocks = 5;
  p.max_upload_bytes[0] = 2000000;
  p.top_k = 10;
  for (int b = 0; b < blocks; ++b) p.block_weight_bytes.push_back(size(rng));
  return p;
}

// lz4, zstd and int8+zstd at every boundary (sizes 0.5-0.9, 0.3-0.7 and 0.1-0.3 of raw), with
// encode and decode times proportional to the raw size, 4x slower on the first tier; one cost in
// twenty not measured.
void AddCodecs(PlanProblem& p) {
  std::mt19937 rng(7);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  const std::pair<const char*, double> kinds[] = {{"lz4", 0.5}, {"zstd", 0.3}, {"int8+zstd", 0.1}};
  p.codecs.assign(static_cast<size_t>(p.blocks) + 1, {});
  for (int b = 0; b <= p.blocks; ++b)
    for (const auto& [name, ratio] : kinds)
      p.codecs[static_cast<size_t>(b)].push_back(
          {name,
           static_cast<int64_t>(static_cast<double>(p.BytesAtBoundary(b)) *
                                (ratio + 0.4 * unit(rng))),
           0.0});
  for (auto& r : p.resources) {
    r.codec_cost.assign(p.codecs.size(), {});
    for (int b = 0; b <= p.blocks; ++b) {
      const double mb = static_cast<double>(p.BytesAtBoundary(b)) / 1e6;
      for (int i = 0; i < 3; ++i) {
        const double per_mb = (1.0 + i) * (r.tier == 0 ? 4.0 : 1.0);
        scission::plan::CodecCost cost{mb * per_mb * (0.5 + unit(rng)),
                                       mb * per_mb * 0.5 * (0.5 + unit(rng))};
        if (unit(rng) < 0.05) cost.decode_ms = -1;
        r.codec_cost[static_cast<size_t>(b)].push_back(cost);
      }
    }
  }
}

void RunTopK(benchmark::State& state, bool codecs) {
  auto p = MakeProblem(static_cast<int>(state.range(0)), static_cast<int>(state.range(1)),
                       static_cast<int>(state.range(2)));
  if (codecs) AddCodecs(p);
  size_t found = 0;
  for (auto _ : state) {
    auto plans = scission::plan::PlanTopK(p);
    found = plans.size();
    benchmark::DoNotOptimize(plans);
  }
  state.counters["plans"] = static_cast<double>(found);
}
void BM_PlanTopK(benchmark::State& state) { RunTopK(state, false); }
void BM_PlanTopKCodecs(benchmark::State& state) { RunTopK(state, true); }
BENCHMARK(BM_PlanTopK)
    ->Args({1000, 4, 10})
    ->Args({100, 3, 3})
    ->Args({30, 3, 2})
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_PlanTopKCodecs)
    ->Args({1000, 4, 10})
    ->Args({100, 3, 3})
    ->Args({30, 3, 2})
    ->Unit(benchmark::kMillisecond);

enum class Case {
  kPercent50,
  kAbsolute,
  kMemory,
  kInfeasibleAbsolute,
  kInfeasiblePercent,
  kThroughput,
  kUplink,
  kPareto,
  kUplinkCodecs,
  kParetoCodecs
};

PlanProblem MakeCase(Case c, int blocks, int tiers, int per_tier) {
  PlanProblem p = MakeProblem(blocks, tiers, per_tier);
  p.top_k = 5;
  const int last = tiers - 1;
  switch (c) {
    case Case::kPercent50:
      p.max_time[last] = {50, true};
      break;
    case Case::kAbsolute:
      p.max_time[last] = {60, false};
      break;
    case Case::kMemory:
      for (const auto& r : p.resources)
        if (r.tier == last) p.max_memory_bytes[r.name] = 200000000;
      break;
    case Case::kInfeasibleAbsolute:
    case Case::kInfeasiblePercent:
      for (int t = 0; t < tiers; ++t)
        p.max_time[t] = {c == Case::kInfeasibleAbsolute ? 1.0 : 30.0,
                         c == Case::kInfeasiblePercent};
      break;
    case Case::kThroughput:
      p.objective = Objective::kThroughput;
      break;
    case Case::kUplink:
    case Case::kUplinkCodecs:
      p.objective = Objective::kUplink;
      break;
    case Case::kPareto:
    case Case::kParetoCodecs:
      break;
  }
  if (c == Case::kUplinkCodecs || c == Case::kParetoCodecs) AddCodecs(p);
  return p;
}

void BM_Plan(benchmark::State& state, Case c) {
  auto p = MakeCase(c, static_cast<int>(state.range(0)), static_cast<int>(state.range(1)),
                    static_cast<int>(state.range(2)));
  size_t found = 0;
  bool bound_error = false;
  for (auto _ : state) {
    try {
      auto plans = c == Case::kPareto || c == Case::kParetoCodecs
                       ? scission::plan::ParetoLatencyUplink(p)
                       : scission::plan::PlanTopK(p);
      found = plans.size();
      benchmark::DoNotOptimize(plans);
    } catch (const scission::Error&) {
      bound_error = true;
    }
  }
  state.counters["plans"] = static_cast<double>(found);
  state.counters["bound_error"] = bound_error;
}
#define PLAN_CASE(name, c)            \
  BENCHMARK_CAPTURE(BM_Plan, name, c) \
      ->Args({150, 3, 3})             \
      ->Args({1000, 4, 10})           \
      ->Unit(benchmark::kMillisecond)
PLAN_CASE(pct50, Case::kPercent50);
PLAN_CASE(abs60ms, Case::kAbsolute);
PLAN_CASE(mem200MB, Case::kMemory);
PLAN_CASE(infeasible_abs, Case::kInfeasibleAbsolute);
PLAN_CASE(infeasible_pct, Case::kInfeasiblePercent);
PLAN_CASE(throughput, Case::kThroughput);
PLAN_CASE(uplink, Case::kUplink);
PLAN_CASE(pareto, Case::kPareto);
PLAN_CASE(uplink_codecs, Case::kUplinkCodecs);
PLAN_CASE(pareto_codecs, Case::kParetoCodecs);

}  // namespace

BENCHMARK_MAIN();
