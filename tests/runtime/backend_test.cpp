#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/error.h"
#include "graph/graph_builder.h"
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

}  // namespace
}  // namespace scission::runtime
