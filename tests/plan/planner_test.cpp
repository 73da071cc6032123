#include <random>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/error.h"
#include "plan/planner.h"

namespace scission::plan {
namespace {

std::string Describe(const PlanCandidate& c) {
  std::string s = fmt::format("{:.6f}ms up={} |", c.latency_ms, c.uplink_bytes);
  for (const auto& st : c.stages)
    s += fmt::format(" r{}[{}..{}]", st.resource, st.first_block, st.last_block);
  return s;
}

// Random instance: integer times and sizes so that ties are common.
PlanProblem RandomProblem(std::mt19937& rng) {
  auto pick = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  PlanProblem p;
  int tiers = pick(1, 4);
  for (int t = 0; t < tiers; ++t) p.tiers.push_back("t" + std::to_string(t));
  p.blocks = pick(1, 12);
  for (int b = 0; b < p.blocks; ++b) p.output_bytes.push_back(pick(0, 4) * 1000);
  p.input_bytes = pick(1, 4) * 1000;
  for (int t = 0; t < tiers; ++t) {
    int count = t == 0 ? pick(1, 3) : pick(0, 3);
    for (int i = 0; i < count; ++i) {
      ResourceProfile r;
      r.name = fmt::format("t{}r{}", t, i);
      r.tier = t;
      for (int b = 0; b < p.blocks; ++b) r.block_ms.push_back(pick(0, 6));
      p.resources.push_back(r);
    }
  }
  for (const auto& a : p.resources)
    for (const auto& b : p.resources)
      if (a.tier < b.tier && pick(0, 9) > 0)
        p.links[{a.name, b.name}] = {static_cast<double>(pick(0, 3)),
                                     static_cast<double>(pick(1, 4) * 8)};
  // Backward links for the return hop.
  for (const auto& a : p.resources)
    for (const auto& b : p.resources)
      if (a.tier > b.tier && pick(0, 3) > 0)
        p.links[{a.name, b.name}] = {static_cast<double>(pick(0, 3)), 16};
  p.criteria.resize(static_cast<size_t>(tiers));
  for (int t = 0; t < tiers; ++t) {
    auto& c = p.criteria[static_cast<size_t>(t)];
    int kind = pick(0, 12);
    if (kind == 0) c.blocks_in.push_back(pick(0, p.blocks - 1));
    if (kind == 1) c.blocks_not_in.push_back(pick(0, p.blocks - 1));
    if (kind == 2) c.must_be_unused = true;
    if (kind == 3) c.must_be_used = true;
    std::vector<std::string> names;
    for (const auto& r : p.resources)
      if (r.tier == t) names.push_back(r.name);
    if (kind == 4 && !names.empty())
      c.only_resources.push_back(
          names[static_cast<size_t>(pick(0, static_cast<int>(names.size()) - 1))]);
    if (kind == 5 && !names.empty())
      c.excluded_resources.push_back(
          names[static_cast<size_t>(pick(0, static_cast<int>(names.size()) - 1))]);
  }
  if (pick(0, 4) == 0) p.privacy_blocks = pick(0, p.blocks);
  if (pick(0, 4) == 0) p.max_upload_bytes[pick(0, tiers - 1)] = pick(0, 4) * 1000;
  if (pick(0, 5) == 0) p.max_time[pick(0, tiers - 1)] = {static_cast<double>(pick(0, 12)), false};
  if (pick(0, 7) == 0) p.max_time[pick(0, tiers - 1)] = {static_cast<double>(pick(10, 90)), true};
  if (pick(0, 6) == 0) {
    for (int b = 0; b < p.blocks; ++b) p.block_weight_bytes.push_back(pick(0, 3) * 1000);
    p.max_memory_bytes
        [p.resources[static_cast<size_t>(pick(0, static_cast<int>(p.resources.size()) - 1))].name] =
        pick(2, 12) * 1000;
  }
  p.return_result = pick(0, 4) == 0;
  p.top_k = pick(1, 8);
  int objective = pick(0, 5);
  p.objective = objective == 4   ? Objective::kUplink
                : objective == 5 ? Objective::kThroughput
                                 : Objective::kLatency;
  return p;
}

TEST(Planner, TopKEqualsBruteForceOnThousandsOfRandomInstances) {
  std::mt19937 rng(20261123);
  int nonempty = 0;
  for (int i = 0; i < 3000; ++i) {
    PlanProblem p = RandomProblem(rng);
    auto expected = PlanBruteForce(p);
    auto actual = PlanTopK(p);
    nonempty += !expected.empty();
    ASSERT_EQ(actual.size(), expected.size()) << "instance " << i;
    for (size_t k = 0; k < expected.size(); ++k)
      ASSERT_EQ(Describe(actual[k]), Describe(expected[k])) << "instance " << i << " rank " << k;
  }
  EXPECT_GT(nonempty, 1500);  // the generator must produce mostly feasible instances
}

TEST(Planner, ParetoFrontIsNonDominatedAndComplete) {
  std::mt19937 rng(7);
  for (int i = 0; i < 300; ++i) {
    PlanProblem p = RandomProblem(rng);
    p.objective = Objective::kLatency;
    p.top_k = 1000000;
    auto all = PlanBruteForce(p);
    auto front = ParetoLatencyUplink(p);
    for (const auto& plan : all) {
      // Every plan is weakly dominated by some front member.
      bool dominated = std::any_of(front.begin(), front.end(), [&](const PlanCandidate& f) {
        return f.latency_ms <= plan.latency_ms + 1e-9 && f.uplink_bytes <= plan.uplink_bytes;
      });
      ASSERT_TRUE(dominated) << "instance " << i << " " << Describe(plan);
    }
    for (size_t a = 1; a < front.size(); ++a) {
      EXPECT_GT(front[a].uplink_bytes, front[a - 1].uplink_bytes);
      EXPECT_LT(front[a].latency_ms, front[a - 1].latency_ms);
    }
  }
}

TEST(Planner, HandComputedThreeTierExample) {
  PlanProblem p;
  p.tiers = {"device", "edge", "cloud"};
  p.blocks = 3;
  p.output_bytes = {4000, 1000, 10};
  p.input_bytes = 8000;
  p.resources = {{"pi", 0, {10, 10, 10}}, {"box", 1, {2, 2, 2}}, {"gpu", 2, {1, 1, 1}}};
  p.links[{"pi", "box"}] = {1, 8};  // 8 Mbit/s: 1 ms per 1000 bytes
  p.links[{"box", "gpu"}] = {5, 80};
  p.links[{"pi", "gpu"}] = {20, 8};
  p.top_k = 3;
  auto plans = PlanTopK(p);
  ASSERT_EQ(plans.size(), 3u);
  // pi sends the input (1 + 8 ms), box runs everything (6): 15 ms.
  EXPECT_DOUBLE_EQ(plans[0].latency_ms, 15.0);
  ASSERT_EQ(plans[0].stages.size(), 2u);
  EXPECT_EQ(plans[0].stages[0].last_block, -1);  // the device only sends the input
  EXPECT_EQ(plans[0].stages[1].resource, 1);
  EXPECT_EQ(plans[0].uplink_bytes, 8000);
  // pi -> box block 0 (9 + 2), box -> gpu 4000 B (5 + 0.4), gpu blocks 1..2 (2): 18.4 ms.
  EXPECT_NEAR(plans[1].latency_ms, 18.4, 1e-9);
  EXPECT_EQ(plans[1].stages.size(), 3u);
  // pi block 0 (10), 4000 B to box (1 + 4), box blocks 1..2 (4): 19 ms.
  EXPECT_DOUBLE_EQ(plans[2].latency_ms, 19.0);
  EXPECT_EQ(plans[2].uplink_bytes, 4000);
  EXPECT_EQ(Describe(plans[0]), Describe(PlanBruteForce(p)[0]));
}

TEST(Planner, ValidationErrors) {
  PlanProblem p;
  p.tiers = {"device"};
  p.blocks = 2;
  p.output_bytes = {1, 1};
  p.resources = {{"pi", 0, {1}}};
  EXPECT_THROW(PlanTopK(p), Error);  // wrong number of block times
  p.resources = {{"edge1", 0, {1, 1}}};
  p.top_k = 0;
  EXPECT_THROW(PlanTopK(p), Error);
}

}  // namespace
}  // namespace scission::plan
