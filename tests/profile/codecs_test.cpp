#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "common/error.h"
#include "common/files.h"
#include "common/npy.h"
#include "graph/graph_builder.h"
#include "graph/model.h"
#include "profile/benchmark.h"
#include "profile/codecs.h"
#include "profile/inputs.h"

namespace scission::profile {
namespace {

Tensor FloatTensor(const std::string& name, std::vector<int64_t> shape,
                   const std::vector<float>& values) {
  Tensor t;
  t.spec = {name, DType::kFloat, std::move(shape)};
  t.data.resize(values.size() * sizeof(float));
  std::memcpy(t.data.data(), values.data(), t.data.size());
  return t;
}

BenchmarkOptions QuickOptions() {
  BenchmarkOptions o;
  o.harness.warmup_runs = 1;
  o.harness.min_runs = 2;
  o.session.threads = 1;
  o.codec_repeats = 2;
  return o;
}

// Residual blocks (the generated models are small, so few blocks survive the merge of tiny ones).
TEST(CodecBenchmark, MeasuresEveryCodecAtEveryBoundaryOverEveryInputSet) {
  auto model = graph::ParseModel(testing::ResidualModel(2).SerializeAsString(), "res.onnx");
  auto analysis = graph::Analyze(model.proto);
  const int blocks = static_cast<int>(analysis.blocks.size());
  ASSERT_GE(blocks, 2);
  BenchmarkOptions o = QuickOptions();
  o.codecs = {"lz4", "zstd", "fp16", "int8", "fp16+zstd"};
  o.fidelity_inputs = {{runtime::MakeRandomInput(analysis.inputs[0], 7)},
                       {runtime::MakeRandomInput(analysis.inputs[0], 8)}};
  auto r = BenchmarkModel(model, analysis, o, nullptr);
  ASSERT_EQ(r.codecs.size(), static_cast<size_t>(blocks + 1) * o.codecs.size());
  EXPECT_GT(r.codec_ms, 0);
  for (int b = 0; b <= blocks; ++b) {
    const int64_t raw = b == 0 ? analysis.inputs[0].bytes() : r.blocks[b - 1].output_bytes;
    for (size_t c = 0; c < o.codecs.size(); ++c) {
      const CodecMeasurement& m = r.codecs[static_cast<size_t>(b) * o.codecs.size() + c];
      SCOPED_TRACE(fmt::format("boundary {} codec {}", b, m.codec));
      EXPECT_EQ(m.boundary, b);
      EXPECT_EQ(m.codec, o.codecs[c]);
      EXPECT_EQ(m.raw_bytes, raw);
      EXPECT_GT(m.bytes, 0);
      EXPECT_GE(m.encode_ms, 0);
      EXPECT_GE(m.decode_ms, 0);
      if (m.codec == "lz4" || m.codec == "zstd") {
        EXPECT_EQ(m.rel_l2_error, 0);  // exact
        EXPECT_EQ(m.max_abs_error, 0);
        EXPECT_EQ(m.fidelity_inputs, 0);
      } else {
        // fp16 keeps about 11 bits, int8 about 8 of the range: small, measured, never zero for
        // random inputs through convolutions.
        EXPECT_EQ(m.fidelity_inputs, 3);
        EXPECT_GT(m.rel_l2_error, 0);
        EXPECT_LT(m.rel_l2_error, m.codec == "int8" ? 0.05 : 2e-3);
        EXPECT_GT(m.max_abs_error, 0);
        EXPECT_LE(m.bytes, m.codec == "int8" ? raw / 4 + 64 : raw / 2 + 64);
      }
    }
    // fp16 and fp16+zstd decode to the same values: the same fidelity.
    const auto& fp16 = r.codecs[static_cast<size_t>(b) * o.codecs.size() + 2];
    const auto& fp16_zstd = r.codecs[static_cast<size_t>(b) * o.codecs.size() + 4];
    EXPECT_EQ(fp16.rel_l2_error, fp16_zstd.rel_l2_error);
    EXPECT_EQ(fp16.max_abs_error, fp16_zstd.max_abs_error);
  }
}

TEST(CodecBenchmark, NothingMeasuredWithoutCodecsAndUnknownNamesAreRefused) {
  auto model = graph::ParseModel(testing::ChainModel(3).SerializeAsString(), "m.onnx");
  auto analysis = graph::Analyze(model.proto);
  BenchmarkOptions o = QuickOptions();
  auto r = BenchmarkModel(model, analysis, o, nullptr);
  EXPECT_TRUE(r.codecs.empty());
  EXPECT_EQ(r.codec_ms, 0);
  o.codecs = {"gzip"};
  EXPECT_THROW(BenchmarkModel(model, analysis, o, nullptr), Error);
  o.codecs = {"lz4"};
  o.codec_repeats = 0;
  EXPECT_THROW(BenchmarkModel(model, analysis, o, nullptr), Error);
}

TEST(Fidelity, RelativeL2MaxAbsAndTopOneOverRowsAndInputs) {
  // Two rows of class scores: the second row's winner changes.
  Tensor exact = FloatTensor("scores", {2, 3}, {0.1f, 0.7f, 0.2f, 0.5f, 0.4f, 0.1f});
  Tensor approx = FloatTensor("scores", {2, 3}, {0.1f, 0.7f, 0.2f, 0.4f, 0.5f, 0.1f});
  FidelityAccumulator f;
  f.Add({exact}, {approx});
  f.Add({exact}, {exact});
  CodecMeasurement m;
  f.Fill(m);
  EXPECT_EQ(m.fidelity_inputs, 2);
  EXPECT_NEAR(m.max_abs_error, 0.1, 1e-6);
  // Pooled over both inputs: ||d||^2 = 0.02 (the first), ||y||^2 = 2 x 0.96.
  EXPECT_NEAR(m.rel_l2_error, std::sqrt(0.02 / 1.92), 1e-6);
  EXPECT_DOUBLE_EQ(m.top1_agreement, 3.0 / 4.0);  // 4 rows over 2 inputs, one disagrees
}

// A detector's map of a photograph with nothing in it is near zero everywhere: its tiny absolute
// error must not dominate the relative error pooled with inputs that have content.
TEST(Fidelity, NearZeroOutputsDoNotDominateThePooledRelativeError) {
  Tensor content = FloatTensor("map", {1, 2}, {1.0f, 1.0f});
  Tensor content_off = FloatTensor("map", {1, 2}, {1.01f, 1.0f});
  Tensor empty = FloatTensor("map", {1, 2}, {1e-7f, 0.0f});
  Tensor empty_off = FloatTensor("map", {1, 2}, {0.0f, 0.0f});
  FidelityAccumulator f;
  f.Add({content}, {content_off});
  f.Add({empty}, {empty_off});
  CodecMeasurement m;
  f.Fill(m);
  EXPECT_LT(m.rel_l2_error, 0.01);  // per input, the empty map alone would read 1.0
  EXPECT_NEAR(m.max_abs_error, 0.01, 1e-6);
}

TEST(Fidelity, NoClassScoresAndBrokenOutputs) {
  Tensor map = FloatTensor("map", {1, 1, 2, 2}, {1, 2, 3, 4});
  Tensor shifted = FloatTensor("map", {1, 1, 2, 2}, {1, 2, 3, 5});
  FidelityAccumulator f;
  f.Add({map}, {shifted});
  CodecMeasurement m;
  f.Fill(m);
  EXPECT_EQ(m.top1_agreement, -1);  // not [rows, classes]
  EXPECT_NEAR(m.rel_l2_error, 1 / std::sqrt(30.0), 1e-9);
  // An integer output that differs, or an output of another shape: an error as large as any.
  Tensor ids;
  ids.spec = {"ids", DType::kInt64, {1}};
  ids.data.assign(8, 0);
  Tensor other = ids;
  other.data[0] = 1;
  FidelityAccumulator g;
  g.Add({ids}, {other});
  g.Fill(m);
  EXPECT_EQ(m.rel_l2_error, std::numeric_limits<double>::max());
  FidelityAccumulator h;
  h.Add({map}, {FloatTensor("map", {1, 4}, {1, 2, 3, 4})});
  h.Fill(m);
  EXPECT_EQ(m.max_abs_error, std::numeric_limits<double>::max());
}

TEST(FidelityInputs, FilesAndDirectoriesAgainstTheBenchmarksInputs) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::path(::testing::TempDir()) / "fidelity_inputs";
  fs::remove_all(dir);
  fs::create_directories(dir / "set");
  std::vector<Tensor> base = {FloatTensor("x", {1, 2}, {0, 0}), FloatTensor("y", {1, 1}, {5})};
  WriteFileAtomic((dir / "set" / "b.npy").string(), SerializeNpy(FloatTensor("", {1, 2}, {3, 4})));
  WriteFileAtomic((dir / "set" / "a.npy").string(), SerializeNpy(FloatTensor("", {1, 2}, {1, 2})));
  WriteFileAtomic((dir / "set" / "notes.txt").string(), "not an array");
  WriteFileAtomic((dir / "wide.npy").string(), SerializeNpy(FloatTensor("", {1, 3}, {1, 2, 3})));
  auto sets = ResolveFidelityInputs(base, {"x=" + (dir / "set").string()});
  ASSERT_EQ(sets.size(), 2u);
  EXPECT_EQ(sets[0][0].data, FloatTensor("x", {1, 2}, {1, 2}).data);  // a.npy first
  EXPECT_EQ(sets[1][0].data, FloatTensor("x", {1, 2}, {3, 4}).data);
  EXPECT_EQ(sets[0][0].spec.name, "x");
  EXPECT_EQ(sets[1][1].data, base[1].data);  // y keeps the benchmark's values
  EXPECT_TRUE(ResolveFidelityInputs(base, {}).empty());
  auto message = [&](const std::vector<std::string>& flags) {
    try {
      ResolveFidelityInputs(base, flags);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message({"x=" + (dir / "wide.npy").string()}).find("[1,3]"), std::string::npos);
  EXPECT_NE(message({"z=" + (dir / "wide.npy").string()}).find("no input 'z'"), std::string::npos);
  EXPECT_NE(
      message({"x=" + (dir / "set").string(), "y=" + (dir / "wide.npy").string()}).find("1 arrays"),
      std::string::npos);
  EXPECT_NE(message({"x"}).find("--fidelity-input"), std::string::npos);
  fs::create_directories(dir / "empty");
  EXPECT_NE(message({"x=" + (dir / "empty").string()}).find("no .npy"), std::string::npos);
}

}  // namespace
}  // namespace scission::profile
