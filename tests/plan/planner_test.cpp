#include <chrono>
#include <climits>
#include <cmath>
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
  for (const auto& h : c.hops) s += fmt::format(" {}:{}", h.codec, h.bytes);
  return s;
}

// Hops that use a codec, over `plans`.
int CodecHops(const std::vector<PlanCandidate>& plans) {
  int n = 0;
  for (const auto& c : plans)
    for (const auto& h : c.hops) n += h.codec != "none";
  return n;
}

// Codec options at random boundaries (some with none), in random order, with sizes below and
// above raw and integer costs (ties are common); some are not measured on some resources
// (negative, or the cost lists cut short). Often an upload cap that only some codecs meet.
void AddRandomCodecs(PlanProblem& p, std::mt19937& rng) {
  auto pick = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  std::vector<std::string> names = {"lz4", "zstd", "fp16", "int8+zstd"};
  p.codecs.resize(static_cast<size_t>(p.blocks + 1 - pick(0, 1)));
  for (size_t b = 0; b < p.codecs.size(); ++b) {
    if (pick(0, 3) == 0) continue;
    std::shuffle(names.begin(), names.end(), rng);
    const int64_t raw = p.BytesAtBoundary(static_cast<int>(b));
    for (int i = 0, n = pick(1, 3); i < n; ++i)
      p.codecs[b].push_back({names[static_cast<size_t>(i)],
                             pick(0, 1) == 0 ? raw * pick(0, 6) / 4 : pick(0, 8) * 500,
                             pick(0, 3) == 0 ? 0.01 * pick(1, 3) : 0.0});
  }
  for (auto& r : p.resources) {
    r.codec_cost.resize(pick(0, 3) == 0 ? static_cast<size_t>(pick(0, p.blocks)) : p.codecs.size());
    for (size_t b = 0; b < r.codec_cost.size() && b < p.codecs.size(); ++b) {
      const int listed = static_cast<int>(p.codecs[b].size());
      r.codec_cost[b].resize(static_cast<size_t>(pick(0, 4) == 0 ? pick(0, listed) : listed));
      for (auto& cost : r.codec_cost[b]) {
        cost = {static_cast<double>(pick(0, 3)), static_cast<double>(pick(0, 3))};
        if (pick(0, 5) == 0) (pick(0, 1) == 0 ? cost.encode_ms : cost.decode_ms) = -1;
      }
    }
  }
  if (pick(0, 2) == 0)
    p.max_upload_bytes[pick(0, static_cast<int>(p.tiers.size()) - 1)] = pick(0, 6) * 500;
}

// Random instance: integer times and sizes so that ties are common. With `caps_often`, absolute,
// percentage and memory caps come in most instances, many of them binding or infeasible.
PlanProblem RandomProblem(std::mt19937& rng, bool caps_often = false) {
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
  auto some_resource = [&] {
    return p.resources[static_cast<size_t>(pick(0, static_cast<int>(p.resources.size()) - 1))].name;
  };
  for (int i = 0, n = caps_often ? pick(0, 3) : pick(0, 5) == 0; i < n; ++i)
    p.max_time[pick(0, tiers - 1)] = {static_cast<double>(pick(0, 12)), false};
  for (int i = 0, n = caps_often ? pick(0, 2) : pick(0, 7) == 0; i < n; ++i)
    p.max_time[pick(0, tiers - 1)] = {static_cast<double>(pick(10, 100)), true};
  if (caps_often ? pick(0, 1) == 0 : pick(0, 6) == 0) {
    for (int b = 0; b < p.blocks; ++b) p.block_weight_bytes.push_back(pick(0, 3) * 1000);
    for (int i = 0, n = caps_often ? pick(1, 3) : 1; i < n; ++i)
      p.max_memory_bytes[some_resource()] = pick(2, 12) * 1000;
  }
  p.return_result = pick(0, 4) == 0;
  p.top_k = pick(1, 8);
  int objective = pick(0, 5);
  p.objective = objective == 4   ? Objective::kUplink
                : objective == 5 ? Objective::kThroughput
                                 : Objective::kLatency;
  return p;
}

// Every other instance has codec options: the brute force enumerates every codec assignment of
// every layout, the search prices each hop by its chosen codec.
TEST(Planner, TopKEqualsBruteForceOnThousandsOfRandomInstances) {
  std::mt19937 rng(20261123);
  int nonempty = 0, codec_hops = 0;
  for (int i = 0; i < 3000; ++i) {
    PlanProblem p = RandomProblem(rng);
    if (i % 2 == 1) AddRandomCodecs(p, rng);
    auto expected = PlanBruteForce(p);
    auto actual = PlanTopK(p);
    nonempty += !expected.empty();
    codec_hops += CodecHops(actual);
    ASSERT_EQ(actual.size(), expected.size()) << "instance " << i;
    for (size_t k = 0; k < expected.size(); ++k)
      ASSERT_EQ(Describe(actual[k]), Describe(expected[k])) << "instance " << i << " rank " << k;
  }
  EXPECT_GT(nonempty, 1500);   // the generator must produce mostly feasible instances
  EXPECT_GT(codec_hops, 200);  // and codecs must be chosen often
}

// The bench's synthetic problem (bench/bench_plan.cpp): later tiers faster, random sizes,
// privacy on 5 blocks and an upload cap on the first tier.
PlanProblem SyntheticProblem(int blocks, int tiers, int per_tier) {
  std::mt19937 rng(42);
  std::uniform_real_distribution<double> time(0.1, 5.0);
  std::uniform_int_distribution<int> size(1000, 4000000);
  PlanProblem p;
  for (int t = 0; t < tiers; ++t) p.tiers.push_back(fmt::format("t{}", t));
  p.blocks = blocks;
  p.input_bytes = 150528 * 4;
  for (int b = 0; b < blocks; ++b) p.output_bytes.push_back(size(rng));
  for (int t = 0; t < tiers; ++t)
    for (int i = 0; i < per_tier; ++i) {
      ResourceProfile r{fmt::format("t{}r{}", t, i), t, {}, {}};
      for (int b = 0; b < blocks; ++b) r.block_ms.push_back(time(rng) / (1 + t));
      p.resources.push_back(std::move(r));
    }
  for (const auto& a : p.resources)
    for (const auto& b : p.resources)
      if (a.tier < b.tier)
        p.links[{a.name, b.name}] = {5.0 * (b.tier - a.tier), 20.0 * (1 + a.tier)};
  p.privacy_blocks = 5;
  p.max_upload_bytes[0] = 2000000;
  for (int b = 0; b < blocks; ++b) p.block_weight_bytes.push_back(size(rng));
  return p;
}

// Three codecs at every boundary, as bench/bench_plan.cpp adds them: lz4 (ratio 0.5..0.9, fast),
// zstd (0.3..0.7) and int8+zstd (0.1..0.3, lossy), encode and decode times proportional to the raw
// size, slower on the first tier; one codec in twenty not measured on one resource.
void AddSyntheticCodecs(PlanProblem& p, std::mt19937& rng) {
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  const std::vector<std::pair<std::string, double>> kinds = {
      {"lz4", 0.5}, {"zstd", 0.3}, {"int8+zstd", 0.1}};
  p.codecs.assign(static_cast<size_t>(p.blocks) + 1, {});
  for (int b = 0; b <= p.blocks; ++b)
    for (const auto& [name, ratio] : kinds)
      p.codecs[static_cast<size_t>(b)].push_back(
          {name,
           static_cast<int64_t>(static_cast<double>(p.BytesAtBoundary(b)) *
                                (ratio + 0.4 * unit(rng))),
           name == "int8+zstd" ? 0.01 : 0.0});
  for (auto& r : p.resources) {
    r.codec_cost.assign(p.codecs.size(), {});
    for (int b = 0; b <= p.blocks; ++b) {
      const double mb = static_cast<double>(p.BytesAtBoundary(b)) / 1e6;
      for (size_t i = 0; i < p.codecs[static_cast<size_t>(b)].size(); ++i) {
        const double per_mb = (1.0 + static_cast<double>(i)) * (r.tier == 0 ? 4.0 : 1.0);
        CodecCost cost{mb * per_mb * (0.5 + unit(rng)), mb * per_mb * 0.5 * (0.5 + unit(rng))};
        if (unit(rng) < 0.05) cost.decode_ms = -1;
        r.codec_cost[static_cast<size_t>(b)].push_back(cost);
      }
    }
  }
}

// How many plans both found.
size_t ExpectSamePlans(const PlanProblem& p, const std::string& what) {
  auto expected = PlanBruteForce(p);
  auto actual = PlanTopK(p);
  EXPECT_EQ(actual.size(), expected.size()) << what;
  for (size_t k = 0; k < std::min(expected.size(), actual.size()); ++k)
    EXPECT_EQ(Describe(actual[k]), Describe(expected[k])) << what << " rank " << k;
  return expected.size();
}

// Caps in most instances: absolute and memory caps are pruned inside the DP, percentages by
// k-doubling; both must match brute force, binding and infeasible ones included.
TEST(Planner, CapsEqualBruteForceOnThousandsOfRandomInstances) {
  std::mt19937 rng(4242);
  int binding = 0, infeasible = 0;
  for (int i = 0; i < 3000; ++i) {
    PlanProblem p = RandomProblem(rng, true);
    if (i % 2 == 1) AddRandomCodecs(p, rng);
    ExpectSamePlans(p, fmt::format("instance {}", i));
    if (testing::Test::HasFailure()) return;
    PlanProblem free = p;
    free.max_time.clear();
    free.max_memory_bytes.clear();
    auto capped = PlanBruteForce(p), uncapped = PlanBruteForce(free);
    infeasible += capped.empty() && !uncapped.empty();
    binding += !capped.empty() && Describe(capped[0]) != Describe(uncapped[0]);
  }
  EXPECT_GT(binding, 300);
  EXPECT_GT(infeasible, 300);
}

// Tens of blocks with real-valued times, every objective, caps binding: windows longer than a
// few blocks, and the throughput thresholds over non-integer bottlenecks.
TEST(Planner, MediumInstancesWithCapsEqualBruteForce) {
  std::mt19937 rng(99);
  auto pick = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  int nonempty = 0;
  for (int i = 0; i < 36; ++i) {
    PlanProblem p = SyntheticProblem(pick(20, 36), 3, 2);
    p.max_upload_bytes.clear();
    p.privacy_blocks = pick(0, 3);
    p.objective = static_cast<Objective>(i % 3);
    // Throughput needs several thresholds to fill a long list.
    p.top_k = p.objective == Objective::kThroughput ? pick(10, 60) : pick(1, 8);
    p.return_result = i % 4 == 3;
    for (const auto& a : p.resources)
      for (const auto& b : p.resources)
        if (a.tier > b.tier) p.links[{a.name, b.name}] = {1.0, 40.0};
    if (i % 2 == 0) p.max_time[2] = {static_cast<double>(pick(5, 25)), false};
    if (i % 3 == 0) p.max_time[1] = {static_cast<double>(pick(30, 70)), true};
    if (i % 4 < 2)
      p.max_memory_bytes[p.resources[static_cast<size_t>(pick(2, 5))].name] = pick(4, 30) * 1000000;
    if (i % 3 == 2) AddSyntheticCodecs(p, rng);
    nonempty += ExpectSamePlans(p, fmt::format("instance {}", i)) > 0;
    if (testing::Test::HasFailure()) return;
  }
  EXPECT_GT(nonempty, 24);
}

// Percentage caps that the fastest plans all break, on tens of blocks: past the third round the
// search ranks by Lagrangian weights beside the plain order; the answer must stay exact.
TEST(Planner, BindingPercentageCapsEqualBruteForce) {
  std::mt19937 rng(5);
  auto pick = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  int nonempty = 0;
  for (int i = 0; i < 200; ++i) {
    PlanProblem p = SyntheticProblem(pick(10, 18), 3, pick(2, 3));
    p.max_upload_bytes.clear();
    p.privacy_blocks = 0;
    p.objective = i % 5 == 4   ? Objective::kThroughput
                  : i % 5 == 3 ? Objective::kUplink
                               : Objective::kLatency;
    p.top_k = pick(1, 30);
    p.return_result = i % 4 == 1;
    for (const auto& a : p.resources)
      for (const auto& b : p.resources)
        if (a.tier > b.tier) p.links[{a.name, b.name}] = {1.0, 40.0};
    // The input's transfer makes the first tier's plans the fastest: capping it binds.
    p.max_time[0] = {static_cast<double>(pick(25, 70)), true};
    if (i % 3 == 0) p.max_time[2] = {static_cast<double>(pick(30, 60)), true};
    if (i % 4 == 2) AddSyntheticCodecs(p, rng);
    nonempty += ExpectSamePlans(p, fmt::format("instance {}", i)) > 0;
    if (testing::Test::HasFailure()) return;
  }
  EXPECT_GT(nonempty, 150);
}

// The front by definition, from every plan (every codec assignment of every layout): per uplink
// value the first plan in the total order, kept when it is faster than every plan with a smaller
// uplink.
std::vector<PlanCandidate> BruteForceFront(const PlanProblem& p) {
  auto all = AllPlans(p, CodecPlans::kEvery);
  std::stable_sort(all.begin(), all.end(), [](const PlanCandidate& a, const PlanCandidate& b) {
    return a.uplink_bytes < b.uplink_bytes;
  });
  std::vector<PlanCandidate> front;
  for (auto& plan : all)
    if (front.empty() || (plan.uplink_bytes != front.back().uplink_bytes &&
                          plan.latency_ms < front.back().latency_ms))
      front.push_back(plan);
  return front;
}

TEST(Planner, ParetoFrontIsNonDominatedAndComplete) {
  std::mt19937 rng(7);
  int codec_points = 0;
  for (int i = 0; i < 600; ++i) {
    PlanProblem p = RandomProblem(rng, i % 2 == 1);
    if (i % 4 >= 2) AddRandomCodecs(p, rng);
    p.objective = Objective::kLatency;
    auto all = AllPlans(p, CodecPlans::kEvery);
    auto front = ParetoLatencyUplink(p);
    auto expected = BruteForceFront(p);
    ASSERT_EQ(front.size(), expected.size()) << "instance " << i;
    for (size_t k = 0; k < front.size(); ++k)
      ASSERT_EQ(Describe(front[k]), Describe(expected[k])) << "instance " << i;
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
    codec_points += CodecHops(front);
  }
  EXPECT_GT(codec_points, 30);
}

TEST(Planner, HandComputedThreeTierExample) {
  PlanProblem p;
  p.tiers = {"device", "edge", "cloud"};
  p.blocks = 3;
  p.output_bytes = {4000, 1000, 10};
  p.input_bytes = 8000;
  p.resources = {{"pi", 0, {10, 10, 10}, {}}, {"box", 1, {2, 2, 2}, {}}, {"gpu", 2, {1, 1, 1}, {}}};
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

// A slow device (500 ms per block) and a fast cloud: the device sends the 1 MB input (boundary 0)
// or its block's 1 MB output (boundary 1, no codecs). At boundary 0 lz4 makes 600 kB (pi encodes
// in 2 ms, gpu decodes in 1 ms) and zstd 300 kB (10 ms, 2 ms). 8 Mbit/s moves 1 kB per ms.
// `change` applied to `p` makes PlanTopK refuse it as bad input naming `text`.
void ExpectBadProblem(PlanProblem p, const std::function<void(PlanProblem&)>& change,
                      const std::string& text) {
  change(p);
  try {
    PlanTopK(p);
    FAIL() << text;
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kBadInput);
    EXPECT_THAT(e.what(), testing::HasSubstr(text));
  }
}

PlanProblem CodecProblem(double mbps) {
  PlanProblem p;
  p.tiers = {"device", "cloud"};
  p.blocks = 2;
  p.input_bytes = 1000000;
  p.output_bytes = {1000000, 1000};
  p.resources = {{"pi", 0, {500, 500}, {}}, {"gpu", 1, {1, 1}, {}}};
  p.links[{"pi", "gpu"}] = {2, mbps};
  p.codecs = {{{"lz4", 600000, 0}, {"zstd", 300000, 0}}};
  p.resources[0].codec_cost = {{{2, 7}, {10, 9}}};
  p.resources[1].codec_cost = {{{5, 1}, {6, 2}}};
  p.top_k = 5;
  return p;
}

TEST(PlannerCodecs, SlowLinkPicksACompressingCodec) {
  PlanProblem p = CodecProblem(8);
  auto plans = PlanTopK(p);
  ASSERT_FALSE(plans.empty());
  // raw 2 + 1000 ms, lz4 2 + 2 + 600 + 1, zstd 10 + 2 + 300 + 2 = 314 ms; then 2 ms on the gpu.
  ASSERT_EQ(plans[0].hops.size(), 1u);
  const Hop& hop = plans[0].hops[0];
  EXPECT_EQ(hop.codec, "zstd");
  EXPECT_EQ(hop.bytes, 300000);
  EXPECT_EQ(hop.raw_bytes, 1000000);
  EXPECT_DOUBLE_EQ(hop.encode_ms, 10);
  EXPECT_DOUBLE_EQ(hop.decode_ms, 2);
  EXPECT_DOUBLE_EQ(hop.ms, 314);
  EXPECT_DOUBLE_EQ(plans[0].latency_ms, 316);
  EXPECT_EQ(plans[0].uplink_bytes, 300000);
  EXPECT_EQ(Describe(plans[0]), Describe(PlanBruteForce(p)[0]));
}

TEST(PlannerCodecs, FastLinkKeepsRawBytes) {
  PlanProblem p = CodecProblem(10000);
  auto plans = PlanTopK(p);
  ASSERT_FALSE(plans.empty());
  // raw 2 + 0.8 ms beats lz4 (2 + 2 + 0.48 + 1) and zstd (10 + 2 + 0.24 + 2).
  const Hop& hop = plans[0].hops.at(0);
  EXPECT_EQ(hop.codec, "none");
  EXPECT_EQ(hop.bytes, 1000000);
  EXPECT_EQ(hop.raw_bytes, 1000000);
  EXPECT_EQ(hop.encode_ms, 0);
  EXPECT_DOUBLE_EQ(hop.ms, 2.8);
  EXPECT_EQ(Describe(plans[0]), Describe(PlanBruteForce(p)[0]));
}

// zstd would win at 8 Mbit/s, but the gpu never measured it: no hop into the gpu uses it, neither
// in the search nor among every assignment the brute force tries.
TEST(PlannerCodecs, ACodecNotMeasuredOnTheReceiverIsNeverChosen) {
  for (int variant = 0; variant < 3; ++variant) {
    PlanProblem p = CodecProblem(8);
    if (variant == 0) p.resources[1].codec_cost[0].resize(1);  // the list cut short
    if (variant == 1) p.resources[1].codec_cost[0][1].decode_ms = -1;
    if (variant == 2) p.resources[1].codec_cost.clear();  // nothing measured on the gpu
    auto plans = PlanTopK(p);
    // The layout that sends the input: lz4 (605 ms), or raw (1002 ms) when the gpu has no codec.
    auto offload = std::find_if(plans.begin(), plans.end(), [](const PlanCandidate& c) {
      return c.stages.size() == 2 && c.stages[0].last_block == -1;
    });
    ASSERT_NE(offload, plans.end());
    EXPECT_EQ(offload->hops.at(0).codec, variant == 2 ? "none" : "lz4") << variant;
    for (const auto& plan : AllPlans(p, CodecPlans::kEvery))
      for (const auto& h : plan.hops) EXPECT_NE(h.codec, "zstd") << variant;
    EXPECT_EQ(Describe(plans[0]), Describe(PlanBruteForce(p)[0]));
  }
}

// 500 kB may leave the device: neither raw (1 MB) nor lz4 (600 kB) fits, zstd does, so the fast
// link's plan offloads with zstd; without zstd on the gpu only the device-only plan is left.
TEST(PlannerCodecs, AnUploadCapOnlyACodecMeets) {
  PlanProblem p = CodecProblem(10000);
  p.max_upload_bytes[0] = 500000;
  auto plans = PlanTopK(p);
  ASSERT_EQ(plans.size(), 2u);
  EXPECT_EQ(plans[0].hops.at(0).codec, "zstd");
  EXPECT_EQ(plans[0].uplink_bytes, 300000);
  EXPECT_DOUBLE_EQ(plans[0].latency_ms, 10 + 2 + 0.24 + 2 + 2);
  EXPECT_TRUE(plans[1].hops.empty());  // the device runs everything
  EXPECT_EQ(Describe(plans[0]), Describe(PlanBruteForce(p)[0]));
  p.resources[1].codec_cost[0][1] = {};
  plans = PlanTopK(p);
  ASSERT_EQ(plans.size(), 1u);
  EXPECT_TRUE(plans[0].hops.empty());
  EXPECT_EQ(PlanBruteForce(p).size(), 1u);
}

// On a fast link the latency objective sends raw bytes; the uplink objective sends the fewest
// bytes out of the device (zstd) even though lz4 and raw are faster.
TEST(PlannerCodecs, UplinkObjectivePicksTheSmallestFirstHop) {
  PlanProblem p = CodecProblem(10000);
  p.objective = Objective::kUplink;
  auto plans = PlanTopK(p);
  ASSERT_GE(plans.size(), 2u);
  EXPECT_EQ(plans[0].uplink_bytes, 0);  // the device runs everything
  EXPECT_EQ(plans[1].hops.at(0).codec, "zstd");
  EXPECT_EQ(plans[1].uplink_bytes, 300000);
  EXPECT_EQ(plans[1].stages.at(0).last_block, -1);
  auto expected = PlanBruteForce(p);
  ASSERT_EQ(plans.size(), expected.size());
  for (size_t k = 0; k < plans.size(); ++k) EXPECT_EQ(Describe(plans[k]), Describe(expected[k]));
  p.objective = Objective::kLatency;
  EXPECT_EQ(PlanTopK(p)[0].hops.at(0).codec, "none");
}

// A plan on the front is a layout with its codecs: on a fast link the offloading layout gives
// three points (raw fastest, lz4, zstd smallest), beside the device-only plan.
TEST(PlannerCodecs, ParetoFrontHoldsOneLayoutWithSeveralCodecs) {
  PlanProblem p = CodecProblem(10000);
  auto front = ParetoLatencyUplink(p);
  ASSERT_EQ(front.size(), 4u);
  EXPECT_EQ(front[0].uplink_bytes, 0);
  const std::vector<std::pair<std::string, int64_t>> expected = {
      {"zstd", 300000}, {"lz4", 600000}, {"none", 1000000}};
  for (size_t i = 0; i < expected.size(); ++i) {
    const auto& plan = front[i + 1];
    EXPECT_EQ(plan.stages.at(0).last_block, -1);
    EXPECT_EQ(plan.hops.at(0).codec, expected[i].first);
    EXPECT_EQ(plan.uplink_bytes, expected[i].second);
  }
  EXPECT_DOUBLE_EQ(front[3].latency_ms, 4.8);
}

// The return hop moves the final output (boundary `blocks`) with that boundary's codecs; Evaluate
// fills every hop field and sums the lossy codecs' output errors.
TEST(PlannerCodecs, EvaluateFillsTheHopsAndSumsTheOutputError) {
  PlanProblem p = CodecProblem(8);
  p.output_bytes = {1000000, 200000};
  p.codecs.resize(3);
  p.codecs[0].push_back({"int8+zstd", 100000, 0.02});
  p.codecs[2] = {{"fp16", 100000, 0.005}};
  p.resources[0].codec_cost = {{{2, 7}, {10, 9}, {3, 3}}, {}, {{1, 1}}};
  p.resources[1].codec_cost = {{{5, 1}, {6, 2}, {4, 4}}, {}, {{1, 1}}};
  p.links[{"gpu", "pi"}] = {3, 8};
  p.return_result = true;
  auto plans = PlanTopK(p);
  ASSERT_FALSE(plans.empty());
  const auto& best = plans[0];
  ASSERT_EQ(best.hops.size(), 2u);
  // int8+zstd: 3 + (2 + 100) + 4 ms; fp16 back: 1 + (3 + 100) + 1 ms.
  EXPECT_EQ(best.hops[0].codec, "int8+zstd");
  EXPECT_DOUBLE_EQ(best.hops[0].ms, 109);
  EXPECT_EQ(best.hops[1].codec, "fp16");
  EXPECT_EQ(best.hops[1].from, 1);
  EXPECT_EQ(best.hops[1].raw_bytes, 200000);
  EXPECT_EQ(best.hops[1].bytes, 100000);
  EXPECT_DOUBLE_EQ(best.hops[1].encode_ms, 1);
  EXPECT_DOUBLE_EQ(best.hops[1].decode_ms, 1);
  EXPECT_DOUBLE_EQ(best.hops[1].ms, 105);
  EXPECT_DOUBLE_EQ(best.hops[1].output_error, 0.005);
  EXPECT_DOUBLE_EQ(best.output_error, 0.025);
  EXPECT_DOUBLE_EQ(best.latency_ms, 109 + 2 + 105);
  EXPECT_EQ(Describe(best), Describe(PlanBruteForce(p)[0]));
  // The same layout with raw bytes given explicitly.
  auto raw = Evaluate(p, best.stages, {0, 0});
  EXPECT_EQ(raw.hops[0].codec, "none");
  EXPECT_EQ(raw.hops[0].bytes, 1000000);
  EXPECT_EQ(raw.output_error, 0);
  EXPECT_DOUBLE_EQ(raw.latency_ms, 1002 + 2 + 203);
}

TEST(PlannerCodecs, RejectsBadCodecData) {
  auto expect_bad = [](const std::function<void(PlanProblem&)>& change, const std::string& text) {
    ExpectBadProblem(CodecProblem(8), change, text);
  };
  expect_bad([](PlanProblem& p) { p.codecs.resize(4); }, "codec choices for 4 boundaries");
  expect_bad([](PlanProblem& p) { p.codecs[0][0].name = ""; }, "boundary 0: codec name ''");
  expect_bad([](PlanProblem& p) { p.codecs[0][0].name = "none"; }, "codec name 'none'");
  expect_bad([](PlanProblem& p) { p.codecs[0][1].name = "lz4"; }, "codec lz4 is listed twice");
  expect_bad([](PlanProblem& p) { p.codecs[0][1].bytes = -1; }, "boundary 0 codec zstd: -1 bytes");
  expect_bad([](PlanProblem& p) { p.codecs[0][1].bytes = int64_t{1} << 43; }, "codec zstd");
  expect_bad([](PlanProblem& p) { p.codecs[0][0].output_error = NAN; }, "output error nan");
  expect_bad([](PlanProblem& p) { p.codecs[0][0].output_error = -0.1; }, "output error -0.1");
  expect_bad([](PlanProblem& p) { p.resources[1].codec_cost.resize(4); },
             "resource 'gpu' has codec costs for 4 boundaries");
  expect_bad(
      [](PlanProblem& p) {
        p.resources[0].codec_cost[0].push_back({1, 1});
      },
      "resource 'pi' boundary 0: costs of 3 codecs, 2 are listed");
  expect_bad([](PlanProblem& p) { p.resources[0].codec_cost[0][1].encode_ms = NAN; },
             "resource 'pi' boundary 0 codec zstd: time nan ms");
  expect_bad([](PlanProblem& p) { p.resources[0].codec_cost[0][1].decode_ms = 2e12; },
             "resource 'pi' boundary 0 codec zstd: time");
  expect_bad([](PlanProblem& p) { p.resources[0].codec_cost[0][0].decode_ms = -INFINITY; },
             "codec lz4: time -inf ms");
  PlanProblem fine = CodecProblem(8);
  fine.resources[0].codec_cost[0][0] = {-1, -5};  // negative: not measured, not an error
  EXPECT_NO_THROW(PlanTopK(fine));
}

// What used to run into std::bad_alloc: infeasible caps at 150 x 3 x 3. Absolute and memory caps
// are local, so infeasibility is proven at once; so is 3 x 30% (< 100%: only plans without
// compute could pass).
TEST(Planner, InfeasibleCapsEndWithNoPlan) {
  PlanProblem p = SyntheticProblem(150, 3, 3);
  for (int t = 0; t < 3; ++t) p.max_time[t] = {1.0, false};
  for (auto objective : {Objective::kLatency, Objective::kThroughput, Objective::kUplink}) {
    p.objective = objective;
    EXPECT_TRUE(PlanTopK(p).empty());
  }
  EXPECT_TRUE(ParetoLatencyUplink(p).empty());
  p.max_time.clear();
  // Below any block's weights plus activations.
  for (const auto& r : p.resources) p.max_memory_bytes[r.name] = 1000;
  EXPECT_TRUE(PlanTopK(p).empty());
  p.max_memory_bytes.clear();
  for (int t = 0; t < 3; ++t) p.max_time[t] = {30.0, true};
  for (auto objective : {Objective::kLatency, Objective::kThroughput, Objective::kUplink}) {
    p.objective = objective;
    EXPECT_TRUE(PlanTopK(p).empty());
  }
}

// Percentage caps that leave next to nothing (34% + 33% + 34%): no proof within the bound, and
// an error that says which caps and what to do, in bounded time and memory.
TEST(Planner, PercentageCapsBeyondTheBoundSaySo) {
  PlanProblem p = SyntheticProblem(150, 3, 3);
  p.max_time = {{0, {34.0, true}}, {1, {33.0, true}}, {2, {34.0, true}}};
  auto start = std::chrono::steady_clock::now();
  try {
    PlanTopK(p);
    FAIL() << "expected the search bound";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kBadInput);
    EXPECT_THAT(e.what(), testing::StartsWith(
                              "cannot prove the top-5 plans under --max-time t0=34%, --max-time "
                              "t1=33%, --max-time t2=34% within the search bound"));
    EXPECT_THAT(e.what(), testing::HasSubstr("relax the caps or lower --top"));
  }
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
}

// A binding 50% cap on the fastest tier at 1000 x 4 x 10: the best plans all break it, so plain
// k-doubling would need astronomically many rounds; the Lagrangian-weighted search proves it.
TEST(Planner, BindingPercentageCapOnAThousandBlocks) {
  PlanProblem p = SyntheticProblem(1000, 4, 10);
  p.top_k = 5;
  const double free_ms = PlanTopK(p).front().latency_ms;
  p.max_time[3] = {50.0, true};
  auto plans = PlanTopK(p);
  ASSERT_EQ(plans.size(), 5u);
  EXPECT_GT(plans[0].latency_ms, free_ms);
  for (size_t k = 0; k < plans.size(); ++k) {
    EXPECT_TRUE(Satisfies(p, plans[k]));
    if (k > 0) {
      EXPECT_FALSE(PlanLess(p, plans[k], plans[k - 1]));
    }
  }
}

// Binding absolute and memory caps on 1000 blocks x 4 tiers x 10 resources: exact, no doubling.
TEST(Planner, BindingLocalCapsOnAThousandBlocks) {
  PlanProblem p = SyntheticProblem(1000, 4, 10);
  p.top_k = 5;
  auto free = PlanTopK(p);
  ASSERT_EQ(free.size(), 5u);
  p.max_time[3] = {100.0, false};
  for (int i = 0; i < 10; ++i) p.max_memory_bytes[fmt::format("t2r{}", i)] = 600000000;
  auto capped = PlanTopK(p);
  ASSERT_EQ(capped.size(), 5u);
  EXPECT_GT(capped[0].latency_ms, free[0].latency_ms);  // the caps bind
  for (size_t k = 0; k < capped.size(); ++k) {
    EXPECT_TRUE(Satisfies(p, capped[k]));
    if (k > 0) {
      EXPECT_FALSE(PlanLess(p, capped[k], capped[k - 1]));
    }
  }
}

// Throughput used to enumerate every layout (never finishing at 1000 blocks); the threshold
// search answers at that size, and its first plan has the smallest bottleneck of all.
TEST(Planner, ThroughputAnswersAThousandBlocks) {
  PlanProblem p = SyntheticProblem(1000, 4, 10);
  p.objective = Objective::kThroughput;
  p.top_k = 5;
  auto plans = PlanTopK(p);
  ASSERT_EQ(plans.size(), 5u);
  for (size_t k = 1; k < plans.size(); ++k) EXPECT_FALSE(PlanLess(p, plans[k], plans[k - 1]));
  p.objective = Objective::kLatency;
  p.top_k = 50;
  for (const auto& by_latency : PlanTopK(p))
    EXPECT_LE(plans[0].bottleneck_ms, by_latency.bottleneck_ms);
}

// Many equal plans (all times and sizes zero) cannot be ordered within the bound: a clear error,
// not an exhausted machine.
TEST(Planner, MassTiesReachTheBoundWithAClearError) {
  PlanProblem p = SyntheticProblem(200, 4, 2);
  p.input_bytes = 0;
  for (auto& bytes : p.output_bytes) bytes = 0;
  for (auto& r : p.resources) std::fill(r.block_ms.begin(), r.block_ms.end(), 0.0);
  for (auto& [key, link] : p.links) link.rtt_ms = 0;
  try {
    PlanTopK(p);
    FAIL() << "expected the search bound";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(),
                testing::StartsWith("cannot prove the top-5 plans within the search bound"));
    EXPECT_THAT(e.what(), testing::HasSubstr("lower --top"));
  }
}

TEST(Planner, TopKIsBounded) {
  PlanProblem p = SyntheticProblem(8, 2, 1);
  for (int top : {0, -1, kMaxTopK + 1, INT_MAX}) {
    p.top_k = top;
    try {
      PlanTopK(p);
      FAIL() << "--top " << top;
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::kBadInput);
      EXPECT_EQ(std::string(e.what()), fmt::format("--top {} is outside 1..1000", top));
    }
  }
  p.top_k = kMaxTopK;
  EXPECT_EQ(PlanTopK(p).size(), AllPlans(p).size());  // fewer plans than --top exist
}

// Numbers the planner cannot compute with: a clear error naming what is wrong.
TEST(Planner, RejectsNumbersThatBreakTheArithmetic) {
  auto expect_bad = [](const std::function<void(PlanProblem&)>& change, const std::string& text) {
    ExpectBadProblem(SyntheticProblem(8, 2, 1), change, text);
  };
  const std::pair<std::string, std::string> link = {"t0r0", "t1r0"};
  expect_bad([&](PlanProblem& p) { p.links[link].mbps = 1e-320; }, "link t0r0 -> t1r0: bandwidth");
  expect_bad([&](PlanProblem& p) { p.links[link].mbps = NAN; }, "link t0r0 -> t1r0: bandwidth");
  expect_bad([&](PlanProblem& p) { p.links[link].rtt_ms = INFINITY; }, "link t0r0 -> t1r0: RTT");
  expect_bad([&](PlanProblem& p) { p.links[link].rtt_ms = -1; }, "link t0r0 -> t1r0: RTT");
  expect_bad([](PlanProblem& p) { p.resources[1].block_ms[3] = NAN; }, "resource 't1r0' block 3");
  expect_bad([](PlanProblem& p) { p.resources[0].block_ms[0] = -1; }, "resource 't0r0' block 0");
  expect_bad([](PlanProblem& p) { p.resources[0].block_ms[0] = 1e300; }, "resource 't0r0' block 0");
  expect_bad([](PlanProblem& p) { p.output_bytes[2] = -5; }, "block 2 output size");
  expect_bad([](PlanProblem& p) { p.input_bytes = INT64_MAX; }, "model input size");
  expect_bad([](PlanProblem& p) { p.block_weight_bytes[1] = -1; }, "block 1 weight size");
  expect_bad([](PlanProblem& p) { p.max_time[1] = {-1, false}; }, "--max-time");
  expect_bad([](PlanProblem& p) { p.max_time[7] = {1, false}; }, "--max-time");
  expect_bad([](PlanProblem& p) { p.max_upload_bytes[5] = 1; }, "--max-upload");
  expect_bad([](PlanProblem& p) { p.max_memory_bytes["nobody"] = 1; }, "--max-memory nobody");
  expect_bad(
      [](PlanProblem& p) {
        p.criteria.resize(2);
        p.criteria[1].blocks_in = {8};
      },
      "criteria for tier t1: block 8");
}

TEST(Planner, ValidationErrors) {
  PlanProblem p;
  p.tiers = {"device"};
  p.blocks = 2;
  p.output_bytes = {1, 1};
  p.resources = {{"pi", 0, {1}, {}}};
  EXPECT_THROW(PlanTopK(p), Error);  // wrong number of block times
  p.resources = {{"edge1", 0, {1, 1}, {}}};
  p.top_k = 0;
  EXPECT_THROW(PlanTopK(p), Error);
}

}  // namespace
}  // namespace scission::plan
