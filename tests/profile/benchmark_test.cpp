#include <cmath>
#include <cstring>
#include <limits>
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
  EXPECT_EQ(r.chain.status, ChainCheckStatus::kPassed)
      << r.chain.max_abs_diff << " > " << r.chain.tolerance;
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

// Every split of a model into two or three segments reproduces the whole model's outputs.
void ExpectEverySplitReproduces(const onnx::ModelProto& proto, bool merge) {
  auto model = graph::ParseModel(proto.SerializeAsString(), "m.onnx");
  auto analysis = graph::Analyze(model.proto, {.merge_trivial_blocks = merge});
  auto backend = runtime::CreateBackend("onnxruntime");
  auto whole = backend->Prepare(model.proto.SerializeAsString(), {.threads = 1}, "whole");
  auto input = runtime::MakeRandomInput(whole->inputs()[0], 3);
  auto expected = runtime::RunOnce(*whole, {input});
  const int n = static_cast<int>(analysis.blocks.size());
  ASSERT_GE(n, 2);
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

TEST(RunSegments, ChainKeepsOutputsComputedFromConstants) {
  ExpectEverySplitReproduces(testing::ConstantOutputsModel(), false);
}

TEST(RunSegments, ChainWithEyeLikeOfAnActivationReproducesTheModel) {
  ExpectEverySplitReproduces(testing::EyeLikeModel(), true);
  ExpectEverySplitReproduces(testing::EyeLikeModel(), false);
}

TEST(BenchmarkModel, ChainCheckSeesEveryOutput) {
  auto model = graph::ParseModel(testing::ConstantOutputsModel().SerializeAsString(), "m.onnx");
  auto analysis = graph::Analyze(model.proto);
  BenchmarkOptions o;
  o.harness.warmup_runs = 1;
  o.harness.min_runs = 1;
  o.session.threads = 1;
  auto r = BenchmarkModel(model, analysis, o, nullptr);
  EXPECT_EQ(r.chain.status, ChainCheckStatus::kPassed)
      << r.chain.max_abs_diff << " > " << r.chain.tolerance;
}

template <typename T>
Tensor Make(DType dtype, std::vector<T> values) {
  Tensor t;
  t.spec = {"y", dtype, {static_cast<int64_t>(values.size())}};
  t.data.resize(values.size() * sizeof(T));
  std::memcpy(t.data.data(), values.data(), t.data.size());
  return t;
}

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kInf = std::numeric_limits<float>::infinity();

TEST(CompareOutputs, NaNOnlyEqualsNaNAtTheSamePlace) {
  auto e = Make<float>(DType::kFloat, {1.0f, kNaN, 3.0f});
  EXPECT_TRUE(CompareOutputs({e}, {e}).ok);
  // NaN where the whole model has a number (and the reverse) used to compare as "ok".
  auto nan_elsewhere = Make<float>(DType::kFloat, {kNaN, kNaN, 3.0f});
  auto r = CompareOutputs({e}, {nan_elsewhere});
  EXPECT_FALSE(r.ok);
  EXPECT_TRUE(std::isinf(r.max_abs_diff));
  EXPECT_FALSE(CompareOutputs({nan_elsewhere}, {e}).ok);
  EXPECT_FALSE(CompareOutputs({Make<float>(DType::kFloat, {kNaN, kNaN})},
                              {Make<float>(DType::kFloat, {0.0f, 0.0f})})
                   .ok);
}

TEST(CompareOutputs, InfinitiesMustMatchExactly) {
  auto e = Make<float>(DType::kFloat, {kInf, -kInf, 1.0f});
  EXPECT_TRUE(CompareOutputs({e}, {e}).ok);
  EXPECT_FALSE(CompareOutputs({e}, {Make<float>(DType::kFloat, {-kInf, -kInf, 1.0f})}).ok);
  EXPECT_FALSE(CompareOutputs({e}, {Make<float>(DType::kFloat, {3e38f, -kInf, 1.0f})}).ok);
  // An infinity does not widen the tolerance of the finite values.
  EXPECT_FALSE(CompareOutputs({e}, {Make<float>(DType::kFloat, {kInf, -kInf, 1.5f})}).ok);
}

TEST(CompareOutputs, OtherFloatTypesNumericallyIntegersExactly) {
  // float64: the float32 rule, 1e-4 * max|y| + 1e-5.
  auto d = Make<double>(DType::kDouble, {100.0, 1.0});
  EXPECT_TRUE(CompareOutputs({d}, {Make<double>(DType::kDouble, {100.005, 1.0})}).ok);
  EXPECT_FALSE(CompareOutputs({d}, {Make<double>(DType::kDouble, {100.02, 1.0})}).ok);
  // float16 (1.0 = 0x3c00, 1.0009765625 = 0x3c01, 1.5 = 0x3e00, NaN = 0x7e00): 1e-2 * max|y| +
  // 1e-3, and bytes need not be equal.
  auto h = Make<uint16_t>(DType::kFloat16, {0x3c00, 0x7e00});
  EXPECT_TRUE(CompareOutputs({h}, {Make<uint16_t>(DType::kFloat16, {0x3c01, 0x7e01})}).ok);
  EXPECT_FALSE(CompareOutputs({h}, {Make<uint16_t>(DType::kFloat16, {0x3e00, 0x7e00})}).ok);
  EXPECT_FALSE(CompareOutputs({h}, {Make<uint16_t>(DType::kFloat16, {0x3c00, 0x3c00})}).ok);
  // bfloat16 (1.0 = 0x3f80, 1.0078125 = 0x3f81, 2.0 = 0x4000).
  auto bf = Make<uint16_t>(DType::kBfloat16, {0x3f80});
  EXPECT_TRUE(CompareOutputs({bf}, {Make<uint16_t>(DType::kBfloat16, {0x3f81})}).ok);
  EXPECT_FALSE(CompareOutputs({bf}, {Make<uint16_t>(DType::kBfloat16, {0x4000})}).ok);
  // Integers: exact.
  auto i = Make<int64_t>(DType::kInt64, {1, 2});
  EXPECT_TRUE(CompareOutputs({i}, {i}).ok);
  EXPECT_FALSE(CompareOutputs({i}, {Make<int64_t>(DType::kInt64, {1, 3})}).ok);
}

TEST(CompareOutputs, EachOutputAgainstItsOwnScaleAndShapesMustAgree) {
  auto big = Make<float>(DType::kFloat, {1000.0f});
  auto small = Make<float>(DType::kFloat, {0.001f});
  // 0.05 off on a value of 0.001 is wrong, however large another output is.
  EXPECT_FALSE(CompareOutputs({big, small}, {big, Make<float>(DType::kFloat, {0.051f})}).ok);
  EXPECT_TRUE(CompareOutputs({big, small}, {big, small}).ok);
  // A missing output, a different shape or short data never compare equal (nor read past data).
  EXPECT_FALSE(CompareOutputs({big, small}, {big}).ok);
  auto longer = Make<float>(DType::kFloat, {1000.0f, 0.0f});
  EXPECT_FALSE(CompareOutputs({big}, {longer}).ok);
  Tensor truncated = big;
  truncated.data.resize(2);
  EXPECT_FALSE(CompareOutputs({big}, {truncated}).ok);
}

}  // namespace
}  // namespace scission::profile
