// Scalar conversions between float and IEEE binary16 / bfloat16, portable and exact to the bit
// (tested against x86's F16C instructions). The fp16 and int8 codecs use them where F16C is
// missing; everything else that converts single values (generated inputs, the chain check, the
// inference protocol's FP16/BF16 tensors) uses them too.
#pragma once

#include <algorithm>
#include <bit>
#include <cstdint>

namespace scission {

// `condition ? a : b` as bit masks. GCC compiles the ternary to a branch, and on activations
// (zeros among normal values, at random) that branch mispredicts: the branching FloatToHalf ran
// 4x slower on a post-ReLU tensor of 4 MiB than on a dense one.
namespace half_detail {
inline uint32_t Select(bool condition, uint32_t a, uint32_t b) {
  const uint32_t mask = 0u - static_cast<uint32_t>(condition);
  return (a & mask) | (b & ~mask);
}
}  // namespace half_detail

// IEEE binary16 from binary32, rounding to nearest even: magnitudes from 65520 up become inf,
// below 2^-25 a signed zero; a NaN stays a NaN (quiet, its top payload bits and sign kept).
// Every case is computed and one selected, without branches (see Select).
inline uint16_t FloatToHalf(float value) {
  const uint32_t bits = std::bit_cast<uint32_t>(value);
  const uint32_t sign = (bits >> 16) & 0x8000u;
  const uint32_t magnitude = bits & 0x7fffffffu;
  // A normal half (>= 2^-14): the exponent rebiased by 127 - 15 and the 13 bits dropped rounded
  // to nearest even (adding just under half, plus the kept lowest bit; a carry bumps the exponent).
  const uint32_t normal = (magnitude - 0x38000000u + 0xfffu + ((magnitude >> 13) & 1)) >> 13;
  // A subnormal half counts units of 2^-24: the 24-bit significand shifted right by 126 minus the
  // exponent (14..24; 31 for anything below 2^-25, which gives 0), rounded the same way.
  const uint32_t shift =
      static_cast<uint32_t>(std::clamp(126 - static_cast<int>(magnitude >> 23), 0, 31));
  const uint32_t significand = (magnitude & 0x7fffffu) | 0x800000u;
  const uint32_t subnormal =
      (significand + ((1u << shift) >> 1) - 1 + ((significand >> shift) & 1)) >> shift;
  uint32_t half = half_detail::Select(magnitude < 0x38800000u, subnormal, normal);
  half = half_detail::Select(magnitude >= 0x477ff000u, 0x7c00u, half);  // >= 65520
  half = half_detail::Select(magnitude > 0x7f800000u, 0x7e00u | ((magnitude >> 13) & 0x3ffu),
                             half);  // NaN
  return static_cast<uint16_t>(sign | half);
}

// Exact (every half is a float; a NaN comes out quiet); branch-free like FloatToHalf.
inline float HalfToFloat(uint16_t half) {
  const uint32_t sign = static_cast<uint32_t>(half & 0x8000u) << 16;
  const uint32_t magnitude = half & 0x7fffu;
  const uint32_t normal = (magnitude << 13) + 0x38000000u;  // exponent rebiased by 127 - 15
  // A subnormal m * 2^-24: the float 2^-14 + m * 2^-24 minus 2^-14, exact (and no float
  // subnormal involved, so a thread with denormals-are-zero set gets the same result).
  const uint32_t subnormal =
      std::bit_cast<uint32_t>(std::bit_cast<float>(0x38800000u | (magnitude << 13)) - 0x1p-14f);
  uint32_t bits = half_detail::Select(magnitude < 0x400u, subnormal, normal);
  bits |=
      half_detail::Select(magnitude >= 0x7c00u, 0x7f800000u, 0);   // inf and NaN, NaN payload kept
  bits |= half_detail::Select(magnitude > 0x7c00u, 0x400000u, 0);  // NaN made quiet, as F16C does
  return std::bit_cast<float>(sign | bits);
}

// bfloat16 from binary32, rounding to nearest even (overflow to inf); a NaN stays a quiet NaN.
inline uint16_t FloatToBfloat16(float value) {
  uint32_t bits = std::bit_cast<uint32_t>(value);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((bits >> 16) | 0x40u);
  bits += 0x7fffu + ((bits >> 16) & 1);  // ties to even; overflow carries into inf
  return static_cast<uint16_t>(bits >> 16);
}

inline float Bfloat16ToFloat(uint16_t value) { return std::bit_cast<float>(uint32_t{value} << 16); }

}  // namespace scission
