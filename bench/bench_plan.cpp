// Planner speed. BM_PlanTopK/n/tiers/resources_per_tier: top-10 by latency with two constraints
// (privacy on the first 5 blocks, an upload cap on the first tier). Target: <= 10 ms per call at
// 1000/4/10.
#include <random>

#include <benchmark/benchmark.h>
#include <fmt/format.h>

#include "plan/planner.h"

namespace {

scission::plan::PlanProblem MakeProblem(int blocks, int tiers, int per_tier) {
  std::mt19937 rng(42);
  std::uniform_real_distribution<double> time(0.1, 5.0);
  std::uniform_int_distribution<int> size(1000, 4000000);
  scission::plan::PlanProblem p;
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

}  // namespace

BENCHMARK_MAIN();
