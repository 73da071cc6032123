#include <random>

#include <gtest/gtest.h>

#include "common/error.h"
#include "graph/graph_builder.h"
#include "graph/model.h"
#include "profile/benchmark.h"

namespace scission::profile {
namespace {

class RecordingListener : public BenchmarkListener {
 public:
  void OnStart(int blocks) override { started = blocks; }
  void OnWholeModelDone(const Timing&) override { whole_done = true; }
  void OnBlockDone(const BlockProfile& b, int) override { done.push_back(b.index); }
  int started = -1;
  bool whole_done = false;
  std::vector<int> done;
};

class GeneratedGraphs : public ::testing::TestWithParam<int> {};

TEST_P(GeneratedGraphs, BenchmarkMeasuresEveryBlockAndChainMatches) {
  auto model = graph::ParseModel(testing::GeneratedModel(GetParam()).SerializeAsString(), "m.onnx");
  auto analysis = graph::Analyze(model.proto);
  BenchmarkOptions o;
  o.harness.warmup_runs = 1;
  o.harness.min_runs = 3;
  o.session.threads = 1;
  RecordingListener listener;
  auto r = BenchmarkModel(model, analysis, o, &listener);
  ASSERT_EQ(r.blocks.size(), analysis.blocks.size());
  EXPECT_EQ(listener.started, static_cast<int>(analysis.blocks.size()));
  EXPECT_TRUE(listener.whole_done);
  EXPECT_EQ(listener.done.size(), analysis.blocks.size());
  EXPECT_TRUE(r.chain_ok) << r.chain_max_abs_diff << " > " << r.chain_tolerance;
  for (size_t i = 0; i < r.blocks.size(); ++i) {
    EXPECT_EQ(r.blocks[i].timing.stats.n, 3u);
    EXPECT_EQ(r.blocks[i].output_bytes, analysis.blocks[i].output_bytes());
    EXPECT_GT(r.blocks[i].timing.stats.median, 0.0);
  }
  EXPECT_EQ(r.provenance.backend, "onnxruntime");
  EXPECT_GE(r.wall_ms, r.setup_ms);
}

TEST_P(GeneratedGraphs, EveryTwoAndThreeWaySplitReproducesTheModel) {
  auto model = graph::ParseModel(testing::GeneratedModel(GetParam()).SerializeAsString(), "m.onnx");
  auto analysis = graph::Analyze(model.proto);
  auto backend = runtime::CreateBackend("onnxruntime");
  auto whole = backend->Prepare(model.proto.SerializeAsString(), {.threads = 1}, "whole");
  auto input = runtime::MakeRandomInput(whole->inputs()[0], 3);
  auto expected = runtime::RunOnce(*whole, {input});
  const int n = static_cast<int>(analysis.blocks.size());
  for (int a = 0; a + 1 < n; ++a) {
    auto two = RunSegments(model, analysis, {{0, a}, {a + 1, n - 1}}, {input}, *backend);
    EXPECT_TRUE(CompareOutputs(expected, two).ok) << "2-way split after block " << a;
    for (int b = a + 1; b + 1 < n; ++b) {
      auto three =
          RunSegments(model, analysis, {{0, a}, {a + 1, b}, {b + 1, n - 1}}, {input}, *backend);
      EXPECT_TRUE(CompareOutputs(expected, three).ok) << "3-way split " << a << "/" << b;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Graphs, GeneratedGraphs, ::testing::Values(0, 1, 2, 3));

TEST(RunSegments, RejectsRangesThatDoNotCoverTheModel) {
  auto model = graph::ParseModel(testing::ChainModel(3).SerializeAsString(), "m.onnx");
  auto analysis = graph::Analyze(model.proto);
  auto backend = runtime::CreateBackend("onnxruntime");
  Tensor input = runtime::MakeRandomInput(analysis.inputs[0], 1);
  EXPECT_THROW(RunSegments(model, analysis, {{0, 0}, {2, 2}}, {input}, *backend), Error);
  EXPECT_THROW(RunSegments(model, analysis, {{0, 1}}, {input}, *backend), Error);
}

TEST(CompareOutputs, ToleranceIsRelativeToTheLargestValue) {
  Tensor a;
  a.spec = {"y", DType::kFloat, {2}};
  a.data.resize(8);
  float values[2] = {1000.0f, 1.0f};
  std::memcpy(a.data.data(), values, 8);
  Tensor b = a;
  float close[2] = {1000.05f, 1.0f};  // diff 0.05 <= 1e-4 * 1000 + 1e-5
  std::memcpy(b.data.data(), close, 8);
  EXPECT_TRUE(CompareOutputs({a}, {b}).ok);
  float far[2] = {1000.0f, 1.2f};
  std::memcpy(b.data.data(), far, 8);
  EXPECT_FALSE(CompareOutputs({a}, {b}).ok);
}

}  // namespace
}  // namespace scission::profile
