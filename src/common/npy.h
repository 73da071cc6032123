// NumPy .npy files (format versions 1.0, 2.0 and 3.0): what `--input NAME=FILE.npy` reads and the
// input helpers write. Only C-order arrays of the dtypes Scission carries, little-endian (or
// single-byte) — anything else is refused with a message naming the file and what is wrong.
#pragma once

#include <string>
#include <string_view>

#include "common/tensor.h"

namespace scission {

// Largest array read: the same bound as generated inputs.
inline constexpr int64_t kMaxNpyBytes = 2LL << 30;

// BadInput "<label>: ..." for a malformed or unsupported file. The tensor is named `label`.
Tensor ParseNpy(std::string_view bytes, const std::string& label);
Tensor ReadNpy(const std::string& path);
// Format 1.0 bytes of `tensor` (tests and helpers).
std::string SerializeNpy(const Tensor& tensor);

}  // namespace scission
