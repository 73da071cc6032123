#include <limits>

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

TEST(Tensor, SizesThatOverflowInt64AreReportedNotWrapped) {
  constexpr int64_t k2p40 = int64_t{1} << 40;
  // 2^80 elements used to wrap to 0, which printed as "0 B".
  EXPECT_EQ(ElementCount({k2p40, k2p40}), kSizeTooLarge);
  EXPECT_EQ((TensorSpec{"x", DType::kFloat, {k2p40, k2p40}}.bytes()), kSizeTooLarge);
  // The element count fits (2^62) but the bytes (2^64) do not.
  EXPECT_EQ(ElementCount({int64_t{1} << 31, int64_t{1} << 31}), int64_t{1} << 62);
  EXPECT_EQ((TensorSpec{"x", DType::kFloat, {int64_t{1} << 31, int64_t{1} << 31}}.bytes()),
            kSizeTooLarge);
  // Unknown wins over too large; an empty dimension makes the product 0 whatever else it holds.
  EXPECT_EQ(ElementCount({k2p40, k2p40, -1}), kSizeUnknown);
  EXPECT_EQ(ElementCount({k2p40, k2p40, 0}), 0);
  EXPECT_EQ(ElementCount({std::numeric_limits<int64_t>::max()}),
            std::numeric_limits<int64_t>::max());
  EXPECT_EQ((TensorSpec{"x", DType::kInt8, {std::numeric_limits<int64_t>::max()}}.bytes()),
            std::numeric_limits<int64_t>::max());
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
