// Planner speed. BM_PlanTopK/n/tiers/resources_per_tier: top-10 by latency with two constraints
// (privacy on the first 5 blocks, an upload cap on the first tier). Target: <= 10 ms per call at
// 1000/4/10. BM_Plan/<case>/n/tiers/resources_per_tier: top-5 with caps on the last (fastest)
// tier, all binding — 50% of the plan's compute, 60 ms, 200 MB per resource — infeasible caps
// (1 ms or 30% on every tier), and the other objectives. A case that reaches the search bound
// reports bound_error = 1 (the time is the time to the error). Peak memory of one case:
// /usr/bin/time -f %M build/bench_plan --benchmark_filter='BM_Plan/pct50/1000'.
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
      scission::plan::ResourceProfile r{fmt::format("t{}r{}", t, i), t, {}};
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

void BM_PlanTopK(benchmark::State& state) {
  auto p = MakeProblem(static_cast<int>(state.range(0)), static_cast<int>(state.range(1)),
                       static_cast<int>(state.range(2)));
  size_t found = 0;
  for (auto _ : state) {
    auto plans = scission::plan::PlanTopK(p);
    found = plans.size();
    benchmark::DoNotOptimize(plans);
  }
  state.counters["plans"] = static_cast<double>(found);
}
BENCHMARK(BM_PlanTopK)
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
  kPareto
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
      p.objective = Objective::kUplink;
      break;
    case Case::kPareto:
      break;
  }
  return p;
}

void BM_Plan(benchmark::State& state, Case c) {
  auto p = MakeCase(c, static_cast<int>(state.range(0)), static_cast<int>(state.range(1)),
                    static_cast<int>(state.range(2)));
  size_t found = 0;
  bool bound_error = false;
  for (auto _ : state) {
    try {
      auto plans =
          c == Case::kPareto ? scission::plan::ParetoLatencyUplink(p) : scission::plan::PlanTopK(p);
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

}  // namespace

BENCHMARK_MAIN();
