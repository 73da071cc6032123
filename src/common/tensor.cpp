#include "common/tensor.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace scission {

size_t DTypeSize(DType dtype) {
  switch (dtype) {
    case DType::kFloat:
    case DType::kInt32:
    case DType::kUint32:
      return 4;
    case DType::kUint8:
    case DType::kInt8:
    case DType::kBool:
      return 1;
    case DType::kUint16:
    case DType::kInt16:
    case DType::kFloat16:
    case DType::kBfloat16:
      return 2;
    case DType::kInt64:
    case DType::kDouble:
    case DType::kUint64:
      return 8;
    default:
      return 0;
  }
}

namespace {
struct DTypeNameEntry {
  DType dtype;
  const char* name;
};
constexpr DTypeNameEntry kDTypeNames[] = {
    {DType::kFloat, "float32"},   {DType::kUint8, "uint8"},      {DType::kInt8, "int8"},
    {DType::kUint16, "uint16"},   {DType::kInt16, "int16"},      {DType::kInt32, "int32"},
    {DType::kInt64, "int64"},     {DType::kString, "string"},    {DType::kBool, "bool"},
    {DType::kFloat16, "float16"}, {DType::kDouble, "float64"},   {DType::kUint32, "uint32"},
    {DType::kUint64, "uint64"},   {DType::kBfloat16, "bfloat16"}};
}  // namespace

std::string DTypeName(DType dtype) {
  for (const auto& e : kDTypeNames)
    if (e.dtype == dtype) return e.name;
  return fmt::format("dtype{}", static_cast<int>(dtype));
}

DType DTypeFromName(const std::string& name) {
  for (const auto& e : kDTypeNames)
    if (name == e.name) return e.dtype;
  return DType::kUndefined;
}

int64_t ElementCount(const std::vector<int64_t>& shape) {
  bool empty = false;
  for (int64_t d : shape) {
    if (d < 0) return kSizeUnknown;
    empty |= d == 0;
  }
  if (empty) return 0;  // [2^40, 2^40, 0] holds nothing, however the product overflows
  int64_t n = 1;
  for (int64_t d : shape)
    if (__builtin_mul_overflow(n, d, &n)) return kSizeTooLarge;
  return n;
}

std::string ShapeString(const std::vector<int64_t>& shape) {
  std::vector<std::string> dims;
  for (int64_t d : shape) dims.push_back(d < 0 ? "?" : std::to_string(d));
  return fmt::format("[{}]", fmt::join(dims, ","));
}

int64_t TensorSpec::bytes() const {
  if (!rank_known) return -1;
  int64_t n = ElementCount(shape);
  size_t size = DTypeSize(dtype);
  if (n == kSizeUnknown || size == 0) return kSizeUnknown;
  int64_t bytes = 0;
  if (n == kSizeTooLarge || __builtin_mul_overflow(n, static_cast<int64_t>(size), &bytes))
    return kSizeTooLarge;
  return bytes;
}

}  // namespace scission
