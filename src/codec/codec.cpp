#include "codec/codec.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstring>
#include <memory>
#include <new>
#include <span>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <lz4.h>
#include <zstd.h>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "common/error.h"
#include "common/half.h"
#include "common/text.h"

namespace scission::codec {
namespace {

// Payload headers are little-endian, as the raw tensor bytes beside them on the wire are.
static_assert(std::endian::native == std::endian::little);

template <typename T>
T Load(const uint8_t* p) {
  T value;
  std::memcpy(&value, p, sizeof(T));
  return value;
}

template <typename T>
void Store(uint8_t* p, T value) {
  std::memcpy(p, &value, sizeof(T));
}

std::string Describe(const TensorSpec& spec) {
  return DTypeName(spec.dtype) + ShapeString(spec.shape);
}

// ---- Lossless stages: bytes in, bytes out -----------------------------------------------------

class LosslessStage {
 public:
  virtual ~LosslessStage() = default;
  virtual std::string_view name() const = 0;
  virtual std::vector<uint8_t> Compress(std::span<const uint8_t> bytes) const = 0;
  // What can be checked of `payload` without decoding it (its framing, the size it declares),
  // before the receiver allocates anything: BadInput "<what>: ..." if it cannot decode to
  // exactly `decoded` bytes.
  virtual void CheckFraming(std::span<const uint8_t> payload, size_t decoded,
                            const std::string& what) const = 0;
  // Fills `out` exactly from a payload CheckFraming accepted; writes nothing outside `out`.
  // BadInput "<what>: ..." when the payload is corrupt or decodes to another size.
  virtual void Decompress(std::span<const uint8_t> payload, std::span<uint8_t> out,
                          const std::string& what) const = 0;
};

class RawStage final : public LosslessStage {
 public:
  std::string_view name() const override { return "none"; }
  std::vector<uint8_t> Compress(std::span<const uint8_t> bytes) const override {
    return {bytes.begin(), bytes.end()};
  }
  void CheckFraming(std::span<const uint8_t> payload, size_t decoded,
                    const std::string& what) const override {
    if (payload.size() != decoded)
      throw BadInput("{}: payload of {} bytes, expected {}", what, payload.size(), decoded);
  }
  void Decompress(std::span<const uint8_t> payload, std::span<uint8_t> out,
                  const std::string& what) const override {
    CheckFraming(payload, out.size(), what);
    if (!out.empty()) std::memcpy(out.data(), payload.data(), out.size());
  }
};

// LZ4 blocks (fast mode, acceleration 1) of at most 1 MiB each, every block preceded by a uint32:
// its compressed size, or its size with the top bit set for a block stored as it is (LZ4 would
// have made it larger: dense float noise). The receiver knows each block's decoded size from the
// spec alone, and LZ4_decompress_safe never writes past it; LZ4's 64 KiB window makes larger
// blocks no smaller.
class Lz4Stage final : public LosslessStage {
 public:
  static constexpr size_t kBlockBytes = size_t{1} << 20;
  static constexpr uint32_t kStored = 0x80000000u;

  std::string_view name() const override { return "lz4"; }

  std::vector<uint8_t> Compress(std::span<const uint8_t> bytes) const override {
    std::vector<uint8_t> out;
    size_t used = 0;
    for (size_t start = 0; start < bytes.size(); start += kBlockBytes) {
      const int length = static_cast<int>(std::min(kBlockBytes, bytes.size() - start));
      const int bound = LZ4_compressBound(length);
      out.resize(used + 4 + static_cast<size_t>(bound));
      int written =
          LZ4_compress_default(reinterpret_cast<const char*>(bytes.data() + start),
                               reinterpret_cast<char*>(out.data() + used + 4), length, bound);
      if (written <= 0) throw Internal("lz4: compressing {} bytes failed", length);
      uint32_t word = static_cast<uint32_t>(written);
      if (written >= length) {
        std::memcpy(out.data() + used + 4, bytes.data() + start, static_cast<size_t>(length));
        written = length;
        word = static_cast<uint32_t>(length) | kStored;
      }
      Store(out.data() + used, word);
      used += 4 + static_cast<size_t>(written);
    }
    out.resize(used);
    return out;
  }

  void CheckFraming(std::span<const uint8_t> payload, size_t decoded,
                    const std::string& what) const override {
    ForEachBlock(payload, decoded, what, [](const uint8_t*, bool, int, size_t, int) {});
  }

  void Decompress(std::span<const uint8_t> payload, std::span<uint8_t> out,
                  const std::string& what) const override {
    ForEachBlock(
        payload, out.size(), what,
        [&](const uint8_t* block, bool stored, int size, size_t start, int length) {
          if (stored) {
            std::memcpy(out.data() + start, block, static_cast<size_t>(length));
            return;
          }
          const int decoded =
              LZ4_decompress_safe(reinterpret_cast<const char*>(block),
                                  reinterpret_cast<char*>(out.data() + start), size, length);
          if (decoded != length)
            throw BadInput("{}: lz4 block {} is corrupt or does not decode to its {} bytes", what,
                           start / kBlockBytes, length);
        });
  }

 private:
  // Calls visit(block, stored, size in the payload, decoded offset, decoded bytes) for every
  // block of a payload decoding to `decoded` bytes, after checking that the block lies inside the
  // payload and is no larger than LZ4 makes a block of that size (a stored one: exactly its
  // size); the blocks must fill the payload.
  template <typename Visit>
  static void ForEachBlock(std::span<const uint8_t> payload, size_t decoded,
                           const std::string& what, Visit visit) {
    size_t read = 0;
    for (size_t start = 0; start < decoded; start += kBlockBytes) {
      const int length = static_cast<int>(std::min(kBlockBytes, decoded - start));
      if (payload.size() - read < 4)
        throw BadInput("{}: lz4 payload of {} bytes ends before block {} (of {} bytes decoded)",
                       what, payload.size(), start / kBlockBytes, decoded);
      const uint32_t word = Load<uint32_t>(payload.data() + read);
      read += 4;
      const bool stored = word & kStored;
      const uint32_t size = word & ~kStored;
      const bool fits = stored
                            ? size == static_cast<uint32_t>(length)
                            : size > 0 && size <= static_cast<uint32_t>(LZ4_compressBound(length));
      if (!fits || size > payload.size() - read)
        throw BadInput("{}: lz4 block {} announces {} bytes{} ({} left, {} decoded)", what,
                       start / kBlockBytes, size, stored ? " stored" : "", payload.size() - read,
                       length);
      visit(payload.data() + read, stored, static_cast<int>(size), start, length);
      read += size;
    }
    if (read != payload.size())
      throw BadInput("{}: {} bytes after the end of the lz4 payload ({} bytes decoded)", what,
                     payload.size() - read, decoded);
  }
};

// One zstd frame that declares its decoded size. Level 1: on a post-ReLU fp32 activation of 4 MiB
// it compresses at 2.1x the speed of level 3 (415 vs 193 MB/s) for a 2.6% lower ratio (1.81 vs
// 1.86); on int8 codes it is both faster and smaller (bench_codec BM_ZstdLevel, DESIGN.md).
class ZstdStage final : public LosslessStage {
 public:
  static constexpr int kLevel = 1;

  std::string_view name() const override { return "zstd"; }

  std::vector<uint8_t> Compress(std::span<const uint8_t> bytes) const override {
    std::vector<uint8_t> out(ZSTD_compressBound(bytes.size()));
    const size_t written = ZSTD_compressCCtx(CompressContext(), out.data(), out.size(),
                                             bytes.data(), bytes.size(), kLevel);
    if (ZSTD_isError(written))
      throw Internal("zstd: compressing {} bytes: {}", bytes.size(), ZSTD_getErrorName(written));
    out.resize(written);
    return out;
  }

  // The frame must declare exactly the decoded size and hold nothing after itself. Decoding into
  // the caller's buffer (capacity out.size()) fails rather than grow however far the frame would
  // expand, and zstd's single-shot decoder allocates nothing that depends on the frame.
  void CheckFraming(std::span<const uint8_t> payload, size_t decoded,
                    const std::string& what) const override {
    const unsigned long long declared = ZSTD_getFrameContentSize(payload.data(), payload.size());
    if (declared == ZSTD_CONTENTSIZE_ERROR)
      throw BadInput("{}: payload of {} bytes is not a zstd frame", what, payload.size());
    if (declared == ZSTD_CONTENTSIZE_UNKNOWN)
      throw BadInput("{}: zstd frame does not declare its decoded size", what);
    if (declared != decoded)
      throw BadInput("{}: zstd frame declares {} bytes, expected {}", what, declared, decoded);
    const size_t frame = ZSTD_findFrameCompressedSize(payload.data(), payload.size());
    if (ZSTD_isError(frame))
      throw BadInput("{}: zstd frame of {} bytes: {}", what, payload.size(),
                     ZSTD_getErrorName(frame));
    if (frame != payload.size())
      throw BadInput("{}: {} bytes after the end of the zstd frame", what, payload.size() - frame);
  }

  void Decompress(std::span<const uint8_t> payload, std::span<uint8_t> out,
                  const std::string& what) const override {
    CheckFraming(payload, out.size(), what);
    const size_t decoded = ZSTD_decompressDCtx(DecompressContext(), out.data(), out.size(),
                                               payload.data(), payload.size());
    if (ZSTD_isError(decoded))
      throw BadInput("{}: zstd frame: {}", what, ZSTD_getErrorName(decoded));
    if (decoded != out.size())
      throw BadInput("{}: zstd frame decodes to {} bytes, expected {}", what, decoded, out.size());
  }

 private:
  // One context per thread: creating one costs more than compressing a 64 KiB tensor.
  struct FreeCompress {
    void operator()(ZSTD_CCtx* context) const { ZSTD_freeCCtx(context); }
  };
  struct FreeDecompress {
    void operator()(ZSTD_DCtx* context) const { ZSTD_freeDCtx(context); }
  };
  static ZSTD_CCtx* CompressContext() {
    thread_local std::unique_ptr<ZSTD_CCtx, FreeCompress> context(ZSTD_createCCtx());
    if (!context) throw Internal("zstd: cannot create a compression context");
    return context.get();
  }
  static ZSTD_DCtx* DecompressContext() {
    thread_local std::unique_ptr<ZSTD_DCtx, FreeDecompress> context(ZSTD_createDCtx());
    if (!context) throw Internal("zstd: cannot create a decompression context");
    return context.get();
  }
};

// ---- fp16 arrays: F16C where the CPU has it (26-40 GB/s here, the portable loop 0.6-1.5) ------

void FloatsToHalvesPortable(const uint8_t* in, uint8_t* out, size_t count) {
  for (size_t i = 0; i < count; ++i) Store(out + 2 * i, FloatToHalf(Load<float>(in + 4 * i)));
}

// `in` may be the tail of `out`'s buffer (LossyStage::Expand): each half is read before its float
// is written, and floats are written front to back, behind the halves not yet read.
void HalvesToFloatsPortable(const uint8_t* in, uint8_t* out, size_t count) {
  for (size_t i = 0; i < count; ++i) {
    const float value = HalfToFloat(Load<uint16_t>(in + 2 * i));
    Store(out + 4 * i, value);
  }
}

#if defined(__x86_64__)
bool HasF16c() {
  static const bool has = __builtin_cpu_supports("avx") && __builtin_cpu_supports("f16c");
  return has;
}

__attribute__((target("avx,f16c"))) void FloatsToHalvesF16c(const uint8_t* in, uint8_t* out,
                                                            size_t count) {
  size_t i = 0;
  for (; i + 8 <= count; i += 8) {
    const __m256 floats = _mm256_loadu_ps(reinterpret_cast<const float*>(in + 4 * i));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + 2 * i),
                     _mm256_cvtps_ph(floats, _MM_FROUND_TO_NEAREST_INT));
  }
  FloatsToHalvesPortable(in + 4 * i, out + 2 * i, count - i);
}

// In place as HalvesToFloatsPortable: eight halves are loaded before their eight floats are
// stored, and the stores end before the first half not yet loaded.
__attribute__((target("avx,f16c"))) void HalvesToFloatsF16c(const uint8_t* in, uint8_t* out,
                                                            size_t count) {
  size_t i = 0;
  for (; i + 8 <= count; i += 8) {
    const __m128i halves = _mm_loadu_si128(reinterpret_cast<const __m128i*>(in + 2 * i));
    _mm256_storeu_ps(reinterpret_cast<float*>(out + 4 * i), _mm256_cvtph_ps(halves));
  }
  HalvesToFloatsPortable(in + 2 * i, out + 4 * i, count - i);
}
#endif

void FloatsToHalves(const uint8_t* in, uint8_t* out, size_t count) {
#if defined(__x86_64__)
  if (HasF16c()) return FloatsToHalvesF16c(in, out, count);
#endif
  FloatsToHalvesPortable(in, out, count);
}

void HalvesToFloats(const uint8_t* in, uint8_t* out, size_t count) {
#if defined(__x86_64__)
  if (HasF16c()) return HalvesToFloatsF16c(in, out, count);
#endif
  HalvesToFloatsPortable(in, out, count);
}

// ---- Lossy stages: a float tensor in, its reduced form out ------------------------------------

class LossyStage {
 public:
  virtual ~LossyStage() = default;
  virtual std::string_view name() const = 0;
  // Whether this stage changes tensors of `dtype`; it passes every other tensor through.
  virtual bool Changes(DType dtype) const = 0;
  // The exact size of the reduced form of a tensor of `spec` (a dtype it changes), known from
  // the spec alone so that the lossless stage after it decodes to a size fixed in advance.
  virtual size_t ReducedBytes(const TensorSpec& spec) const = 0;
  virtual std::vector<uint8_t> Reduce(const Tensor& tensor) const = 0;
  // Writes the spec.bytes() of the tensor into `out` from `reduced` (ReducedBytes(spec) long).
  // `reduced` may be the tail of `out`'s own buffer (composite decoding needs no second buffer):
  // implementations go front to back, read element i before writing it, and write elements at
  // least as wide as they read, so no element is overwritten before it is read.
  virtual void Expand(const TensorSpec& spec, const uint8_t* reduced, uint8_t* out,
                      const std::string& what) const = 0;
};

// fp32 -> IEEE half (2 bytes per element, nothing else).
class Fp16Stage final : public LossyStage {
 public:
  std::string_view name() const override { return "fp16"; }
  bool Changes(DType dtype) const override { return dtype == DType::kFloat; }
  size_t ReducedBytes(const TensorSpec& spec) const override {
    return static_cast<size_t>(ElementCount(spec.shape)) * 2;
  }
  std::vector<uint8_t> Reduce(const Tensor& tensor) const override {
    const size_t count = tensor.data.size() / 4;
    std::vector<uint8_t> out(count * 2);
    FloatsToHalves(tensor.data.data(), out.data(), count);
    return out;
  }
  void Expand(const TensorSpec& spec, const uint8_t* reduced, uint8_t* out,
              const std::string&) const override {
    HalvesToFloats(reduced, out, static_cast<size_t>(ElementCount(spec.shape)));
  }
};

// Affine uint8 per tensor. The header holds the tensor's finite min and max (float32) and a flags
// byte; element codes follow, one byte each. Scale = (max - min) / L and zero point = min: code q
// decodes to min + q * scale (q = 0 to min and q = L to max exactly, so a constant tensor and the
// zeros of a post-ReLU tensor decode exactly); quantization error is at most scale / 2 plus the
// rounding to the tensor's dtype. Non-finite values: when a tensor holds any, flags = 1, L = 252
// and codes 253, 254, 255 stand for NaN, +inf and -inf, so they round-trip as themselves (NaN as
// the canonical quiet NaN, its sign and payload lost); otherwise flags = 0 and L = 255. A tensor
// with no finite value has min = max = 0.
class Int8Stage final : public LossyStage {
 public:
  static constexpr size_t kHeaderBytes = 12;  // float min, float max, uint8 flags, 3 zero bytes
  static constexpr uint8_t kNaN = 253, kPlusInf = 254, kMinusInf = 255;

  std::string_view name() const override { return "int8"; }
  bool Changes(DType dtype) const override {
    return dtype == DType::kFloat || dtype == DType::kFloat16 || dtype == DType::kBfloat16;
  }
  size_t ReducedBytes(const TensorSpec& spec) const override {
    return kHeaderBytes + static_cast<size_t>(ElementCount(spec.shape));
  }

  std::vector<uint8_t> Reduce(const Tensor& tensor) const override {
    const uint8_t* in = tensor.data.data();
    const size_t count = tensor.data.size() / DTypeSize(tensor.spec.dtype);
    switch (tensor.spec.dtype) {
      case DType::kFloat:
        return Quantize(count, [in](size_t i) { return Load<float>(in + 4 * i); });
      case DType::kFloat16:
        return Quantize(count, [in](size_t i) { return HalfToFloat(Load<uint16_t>(in + 2 * i)); });
      default:
        return Quantize(count,
                        [in](size_t i) { return Bfloat16ToFloat(Load<uint16_t>(in + 2 * i)); });
    }
  }

  void Expand(const TensorSpec& spec, const uint8_t* reduced, uint8_t* out,
              const std::string& what) const override {
    // The header first: the elements written below may overwrite it (see LossyStage::Expand).
    const float min = Load<float>(reduced), max = Load<float>(reduced + 4);
    const uint8_t flags = reduced[8];
    if (!std::isfinite(min) || !std::isfinite(max) || !(min <= max) || flags > 1 ||
        reduced[9] != 0 || reduced[10] != 0 || reduced[11] != 0)
      throw BadInput("{}: int8 payload header is invalid (min {}, max {}, flags {})", what, min,
                     max, flags);
    const int levels = flags ? 252 : 255;
    const double scale = (static_cast<double>(max) - min) / levels;
    // The value of every code, once: decoding is then a lookup, the same cost for every code.
    std::array<float, 256> values;
    for (int code = 0; code < 256; ++code) {
      if (code == 0)
        values[code] = min;
      else if (code < levels)
        values[code] = static_cast<float>(min + code * scale);
      else if (code == levels)
        values[code] = max;
      else
        values[code] = code == kNaN ? NAN : code == kPlusInf ? INFINITY : -INFINITY;
    }
    const size_t count = static_cast<size_t>(ElementCount(spec.shape));
    const uint8_t* codes = reduced + kHeaderBytes;
    if (spec.dtype == DType::kFloat) {
      for (size_t i = 0; i < count; ++i) Store(out + 4 * i, values[codes[i]]);
      return;
    }
    std::array<uint16_t, 256> narrow;
    for (int code = 0; code < 256; ++code)
      narrow[code] =
          spec.dtype == DType::kFloat16 ? FloatToHalf(values[code]) : FloatToBfloat16(values[code]);
    for (size_t i = 0; i < count; ++i) Store(out + 2 * i, narrow[codes[i]]);
  }

 private:
  // The payload of `count` elements, element i being read(i) as a float.
  template <typename Read>
  static std::vector<uint8_t> Quantize(size_t count, Read read) {
    float min = INFINITY, max = -INFINITY;
    bool non_finite = false;
    for (size_t i = 0; i < count; ++i) {
      const float value = read(i);
      if (!std::isfinite(value)) {
        non_finite = true;
        continue;
      }
      min = std::min(min, value);
      max = std::max(max, value);
    }
    if (min > max) min = max = 0;  // no finite value
    const int levels = non_finite ? 252 : 255;
    // Double: max - min may overflow float (-3e38 .. 3e38).
    const double scale = (static_cast<double>(max) - min) / levels;
    const double inverse = scale > 0 ? 1 / scale : 0;
    std::vector<uint8_t> out(kHeaderBytes + count);
    Store(out.data(), min);
    Store(out.data() + 4, max);
    out[8] = non_finite ? 1 : 0;
    uint8_t* codes = out.data() + kHeaderBytes;
    auto code_of_finite = [&](float value) {
      const double steps = (static_cast<double>(value) - min) * inverse + 0.5;
      return static_cast<uint8_t>(std::clamp(steps, 0.0, static_cast<double>(levels)));
    };
    if (!non_finite) {
      for (size_t i = 0; i < count; ++i) codes[i] = code_of_finite(read(i));
      return out;
    }
    for (size_t i = 0; i < count; ++i) {
      const float value = read(i);
      if (std::isnan(value))
        codes[i] = kNaN;
      else if (std::isinf(value))
        codes[i] = value > 0 ? kPlusInf : kMinusInf;
      else
        codes[i] = code_of_finite(value);
    }
    return out;
  }
};

// ---- Codecs: an optional lossy stage, then a lossless one --------------------------------------

class StagedCodec final : public Codec {
 public:
  StagedCodec(const LossyStage* lossy, const LosslessStage& lossless)
      : lossy_(lossy), lossless_(lossless) {
    if (!lossy_)
      name_ = lossless_.name();
    else if (IsRaw())
      name_ = lossy_->name();
    else
      name_ = fmt::format("{}+{}", lossy_->name(), lossless_.name());
  }

  const std::string& name() const override { return name_; }
  bool LossyFor(DType dtype) const override { return lossy_ && lossy_->Changes(dtype); }

  std::vector<uint8_t> Encode(const Tensor& tensor) const override {
    const int64_t bytes = tensor.spec.bytes();
    if (bytes < 0 || static_cast<uint64_t>(bytes) != tensor.data.size())
      throw Internal("codec {}: tensor '{}' of {} holds {} bytes, its spec {}", name_,
                     tensor.spec.name, Describe(tensor.spec), tensor.data.size(), bytes);
    if (!LossyFor(tensor.spec.dtype)) return lossless_.Compress(tensor.data);
    std::vector<uint8_t> reduced = lossy_->Reduce(tensor);
    return IsRaw() ? reduced : lossless_.Compress(reduced);
  }

  Tensor Decode(const TensorSpec& spec, const uint8_t* payload, size_t size,
                const std::string& what) const override {
    const int64_t bytes = spec.bytes();
    if (bytes < 0)
      throw BadInput("{}: tensor '{}' of {} has no known size", what, spec.name, Describe(spec));
    if (size > 0 && payload == nullptr) throw Internal("codec {}: null payload", name_);
    const std::span<const uint8_t> in(payload, size);
    const bool lossy = LossyFor(spec.dtype);
    // The reduced form goes to the tail of the tensor's own buffer and expands in place; only an
    // int8 header on a tensor of fewer than 12 bytes makes the buffer outgrow spec.bytes().
    const size_t decoded = static_cast<size_t>(bytes);
    const size_t reduced = lossy ? lossy_->ReducedBytes(spec) : decoded;
    lossless_.CheckFraming(in, reduced, what);
    Tensor tensor{spec, {}};
    try {
      tensor.data.resize(std::max(decoded, reduced));
    } catch (const std::bad_alloc&) {
      throw BadInput("{}: cannot allocate {} bytes for tensor '{}' of {}", what, decoded, spec.name,
                     Describe(spec));
    }
    uint8_t* tail = tensor.data.data() + tensor.data.size() - reduced;
    lossless_.Decompress(in, {tail, reduced}, what);
    if (lossy) lossy_->Expand(spec, tail, tensor.data.data(), what);
    tensor.data.resize(decoded);
    return tensor;
  }

 private:
  bool IsRaw() const { return lossless_.name() == "none"; }

  const LossyStage* lossy_;
  const LosslessStage& lossless_;
  std::string name_;
};

const RawStage kRaw;
const Lz4Stage kLz4;
const ZstdStage kZstd;
const Fp16Stage kFp16;
const Int8Stage kInt8;

// Registry order is Names()'s order: lossless codecs first, "none" first of all.
const std::vector<std::unique_ptr<const Codec>>& Registry() {
  static const auto* registry = [] {
    auto* codecs = new std::vector<std::unique_ptr<const Codec>>;
    const std::pair<const LossyStage*, const LosslessStage*> stages[] = {
        {nullptr, &kRaw}, {nullptr, &kLz4}, {nullptr, &kZstd}, {&kFp16, &kRaw},
        {&kInt8, &kRaw},  {&kFp16, &kZstd}, {&kInt8, &kZstd},
    };
    for (const auto& [lossy, lossless] : stages)
      codecs->push_back(std::make_unique<StagedCodec>(lossy, *lossless));
    return codecs;
  }();
  return *registry;
}

}  // namespace

const Codec* Find(std::string_view name) {
  for (const auto& codec : Registry())
    if (codec->name() == name) return codec.get();
  return nullptr;
}

const Codec& Get(std::string_view name, const std::string& what) {
  const Codec* codec = Find(name);
  if (!codec)
    throw BadInput("{}: unknown codec '{}' (codecs: {})", what, name, fmt::join(Names(), ", "));
  return *codec;
}

const std::vector<std::string>& Names() {
  static const auto* names = [] {
    auto* list = new std::vector<std::string>;
    for (const auto& codec : Registry()) list->push_back(codec->name());
    return list;
  }();
  return *names;
}

std::vector<std::string> ParseList(const std::string& text, const std::string& what) {
  std::vector<std::string> list;
  auto add = [&list](const std::string& name) {
    if (std::find(list.begin(), list.end(), name) == list.end()) list.push_back(name);
  };
  for (const std::string& item : SplitCommas(text)) {
    const std::string name = Strip(item);
    if (name.empty())
      throw BadInput("{}: empty codec name in '{}' (codecs: lossless, all, {})", what, text,
                     fmt::join(Names(), ", "));
    if (name == "all" || name == "lossless") {
      for (const auto& codec : Registry())
        if (name == "all" || !codec->lossy()) add(codec->name());
    } else {
      add(Get(name, what).name());
    }
  }
  return list;
}

}  // namespace scission::codec
