// Plain tensors handed between layers (graph analysis, runtime, wire). Owns its bytes.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace scission {

// Values equal ONNX TensorProto::DataType so conversion is a cast.
enum class DType : int32_t {
  kUndefined = 0,
  kFloat = 1,
  kUint8 = 2,
  kInt8 = 3,
  kUint16 = 4,
  kInt16 = 5,
  kInt32 = 6,
  kInt64 = 7,
  kString = 8,
  kBool = 9,
  kFloat16 = 10,
  kDouble = 11,
  kUint32 = 12,
  kUint64 = 13,
  kBfloat16 = 16,
};

// Bytes per element; 0 for types Scission cannot carry (string, undefined).
size_t DTypeSize(DType dtype);
std::string DTypeName(DType dtype);
// Accepts the names DTypeName returns; kUndefined otherwise.
DType DTypeFromName(const std::string& name);

// What ElementCount and TensorSpec::bytes() return when they have no number: a dimension is
// unknown (negative), or the product does not fit in int64 (a shape such as [2^40, 2^40]).
inline constexpr int64_t kSizeUnknown = -1;
inline constexpr int64_t kSizeTooLarge = -2;

// Number of elements; kSizeUnknown if any dimension is unknown, kSizeTooLarge on overflow.
int64_t ElementCount(const std::vector<int64_t>& shape);
std::string ShapeString(const std::vector<int64_t>& shape);

struct TensorSpec {
  std::string name;
  DType dtype = DType::kUndefined;
  std::vector<int64_t> shape;  // -1 marks an unknown dimension
  bool rank_known = true;      // false: nothing is known about the shape
  // Bytes when every dimension is known; kSizeUnknown if not (or the type has no fixed size),
  // kSizeTooLarge if the count in bytes overflows int64.
  int64_t bytes() const;
};

struct Tensor {
  TensorSpec spec;
  std::vector<uint8_t> data;  // row-major, spec.bytes() long
};

}  // namespace scission
