// Codecs: how the tensors at a cut cross a link (DESIGN.md "Codecs"). One registry holds every
// codec; adding one touches codec.cpp only. A payload is self-contained given the tensor's spec
// (dtype and shape, sent beside it on the wire): decoding needs nothing else.
//
// Lossless codecs (none, lz4, zstd) take every dtype. Lossy ones (fp16, int8) change only float
// tensors (fp32; int8 also fp16 and bf16) and pass every other tensor through unchanged; a
// composite "lossy+lossless" (fp16+zstd, int8+zstd) applies the lossless stage to the result.
// Codecs are stateless and thread-safe (zstd keeps one context per thread); the registry owns
// them for the life of the process.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/tensor.h"

namespace scission::codec {

class Codec {
 public:
  virtual ~Codec() = default;
  virtual const std::string& name() const = 0;
  // Whether decoding an encoded tensor of this dtype may give other values than it had.
  virtual bool LossyFor(DType dtype) const = 0;
  bool lossy() const { return LossyFor(DType::kFloat); }
  // The payload of `tensor` (its data spec.bytes() long, every dimension known). Internal error
  // if the tensor is inconsistent (a caller's fault, never the wire's).
  virtual std::vector<uint8_t> Encode(const Tensor& tensor) const = 0;
  // The tensor of `spec` (every dimension known; its bytes() is the decoded size the sender
  // declared and the receiver checked against what it expects) from a payload off the wire.
  // Never allocates or writes more than spec.bytes() (plus the payload's own size); BadInput
  // "<what>: ..." when the payload is malformed, truncated, or decodes to another size. The
  // framing (sizes, declared lengths) is checked before anything is allocated; a composite
  // decodes its lossless stage into the tail of the tensor's own buffer and expands it in place.
  // Also BadInput when spec.bytes() is unknown or cannot be allocated.
  virtual Tensor Decode(const TensorSpec& spec, const uint8_t* payload, size_t size,
                        const std::string& what) const = 0;
};

// The codec of this name, or nullptr.
const Codec* Find(std::string_view name);
// The codec of this name; BadInput "<what>: unknown codec 'x' (codecs: none, lz4, ...)".
const Codec& Get(std::string_view name, const std::string& what);
// Every codec's name, in registry order ("none" first).
const std::vector<std::string>& Names();
// A comma-separated list of codec names, in the order given, each once; "lossless" stands for
// every lossless codec and "all" for every codec. BadInput naming `what` on an unknown or empty
// name.
std::vector<std::string> ParseList(const std::string& text, const std::string& what);

}  // namespace scission::codec
