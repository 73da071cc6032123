#include <gtest/gtest.h>

#include "common/error.h"
#include "common/files.h"
#include "common/tensor.h"

namespace scission {
namespace {

TEST(Tensor, BytesAndNames) {
  TensorSpec spec{"x", DType::kFloat, {1, 3, 224, 224}};
  EXPECT_EQ(spec.bytes(), 1 * 3 * 224 * 224 * 4);
  spec.shape = {1, -1};
  EXPECT_EQ(spec.bytes(), -1);
  EXPECT_EQ(DTypeName(DType::kInt64), "int64");
  EXPECT_EQ(DTypeFromName("float32"), DType::kFloat);
  EXPECT_EQ(ShapeString({1, -1, 7}), "[1,?,7]");
}

TEST(Error, IsOneLineWithExitCode) {
  Error e = BadInput("{}: bad\nthing\t here", "file.onnx");
  EXPECT_STREQ(e.what(), "file.onnx: bad thing here");
  EXPECT_EQ(e.exit_code(), 2);
  EXPECT_EQ(Internal("x").exit_code(), 1);
}

TEST(Files, Sha256OfKnownString) {
  EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

}  // namespace
}  // namespace scission
