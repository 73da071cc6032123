#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/error.h"
#include "graph/graph_builder.h"
#include "graph/model.h"
#include "runtime/backend.h"
#include "runtime/onnxruntime_backend.h"

namespace scission::runtime {
namespace {

using ::testing::Contains;
using ::testing::HasSubstr;

TEST(Registry, KnowsOnnxRuntimeAndRejectsUnknownNames) {
  EXPECT_THAT(BackendNames(), Contains("onnxruntime"));
  try {
    CreateBackend("tensorrt-on-a-toaster");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kBadInput);
    EXPECT_THAT(e.what(), HasSubstr("onnxruntime"));
  }
}

TEST(OnnxRuntime, VersionIsThePinnedOne) {
  EXPECT_THAT(OnnxRuntimeVersion(), ::testing::StartsWith("1.30"));
  auto backend = CreateBackend("onnxruntime");
  auto p = backend->provenance({.threads = 1});
  EXPECT_EQ(p.execution_provider, "CPUExecutionProvider");
  EXPECT_EQ(p.threads, 1);
  EXPECT_FALSE(p.cpu_model.empty());
}

TEST(OnnxRuntime, RunsAModelAndChecksInputs) {
  auto backend = CreateBackend("onnxruntime");
  auto session =
      backend->Prepare(testing::ChainModel(2).SerializeAsString(), {.threads = 1}, "chain");
  ASSERT_EQ(session->inputs().size(), 1u);
  auto input = MakeRandomInput(session->inputs()[0], 7);
  auto outputs = RunOnce(*session, {input});
  ASSERT_EQ(outputs.size(), 1u);
  EXPECT_EQ(outputs[0].spec.shape, (std::vector<int64_t>{1, 4, 8, 8}));
  EXPECT_EQ(outputs[0].data.size(), 256u * 4);

  Tensor wrong_shape = input;
  wrong_shape.spec.shape = {1, 4, 8, 9};
  EXPECT_THROW(session->BindInputs({wrong_shape}), Error);
  Tensor wrong_type = input;
  wrong_type.spec.dtype = DType::kInt32;
  EXPECT_THROW(session->BindInputs({wrong_type}), Error);
  Tensor short_data = input;
  short_data.data.resize(10);
  EXPECT_THROW(session->BindInputs({short_data}), Error);
}

TEST(OnnxRuntime, GarbageModelIsBadInput) {
  auto backend = CreateBackend("onnxruntime");
  EXPECT_THROW(backend->Prepare("not a model", {}, "garbage"), Error);
}

TEST(MakeRandomInput, RefusesInputsBeyondTwoGiBNamingShapeAndBytes) {
  auto message = [](const TensorSpec& spec) -> std::string {
    try {
      MakeRandomInput(spec, 1);
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::kBadInput);
      return e.what();
    }
    ADD_FAILURE() << "allocated " << ShapeString(spec.shape);
    return "";
  };
  // Before: std::bad_alloc (exit 1) or whatever the allocator allowed.
  EXPECT_EQ(message({"image", DType::kFloat, {1, 3, 100000, 100000}}),
            "input 'image' (float32 [1,3,100000,100000]) needs 120000000000 bytes; Scission "
            "generates inputs of at most 2 GiB (2147483648 bytes)");
  // Before: the size wrapped to 0 and ONNX Runtime failed later with an internal error.
  EXPECT_THAT(message({"x", DType::kFloat, {int64_t{1} << 40, int64_t{1} << 40}}),
              HasSubstr("needs more than 2^63 bytes"));
  EXPECT_THAT(message({"x", DType::kUint8, {(int64_t{2} << 30) + 1}}),
              HasSubstr("needs 2147483649 bytes"));
  EXPECT_EQ(MakeRandomInput({"small", DType::kFloat, {2, -1}}, 1).data.size(), 8u);
}

TEST(OnnxRuntime, SequenceOutputIsBadInputNotAnOrtException) {
  testing::GraphBuilder b;
  b.Input("x", {2, 4}).Node("SplitToSequence", {"x"}, {"parts"});
  auto proto = b.Build();
  auto* out = proto.mutable_graph()->add_output();
  out->set_name("parts");
  out->mutable_type()
      ->mutable_sequence_type()
      ->mutable_elem_type()
      ->mutable_tensor_type()
      ->set_elem_type(onnx::TensorProto::FLOAT);
  auto backend = CreateBackend("onnxruntime");
  auto session = backend->Prepare(proto.SerializeAsString(), {.threads = 1}, "seq");
  try {
    RunOnce(*session, {MakeRandomInput(session->inputs()[0], 1)});
    ADD_FAILURE() << "returned a sequence as a tensor";
  } catch (const Error& e) {  // before: Ort::Exception, reported as an internal error (exit 1)
    EXPECT_EQ(e.kind(), ErrorKind::kBadInput);
    EXPECT_THAT(e.what(), HasSubstr("output 'parts' is not a tensor"));
  }
}

TEST(OnnxRuntime, LoadsEveryNestingDepthTheLoaderAccepts) {
  auto model = testing::NestedIfModel(graph::MaxSubgraphDepth());
  auto loaded = graph::ParseModel(model.SerializeAsString(), "deep.onnx");
  auto backend = CreateBackend("onnxruntime");
  auto session = backend->Prepare(loaded.proto.SerializeAsString(), {.threads = 1}, "deep");
  Tensor x = MakeRandomInput(session->inputs()[0], 1);
  Tensor cond{{"cond", DType::kBool, {}}, {1}};
  auto out = RunOnce(*session, {x, cond});
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].data.size(), 16u);
}

}  // namespace
}  // namespace scission::runtime
