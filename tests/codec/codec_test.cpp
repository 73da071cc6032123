// The codec registry: round trips of every codec on every dtype, the error bounds of the lossy
// ones (fp16 against the CPU's own F16C conversion where there is one), and payloads off the
// wire that are truncated, corrupt, oversized or decompression bombs, decoded without crashing
// and without allocating more than the spec says (counted by this binary's operator new).
#include "codec/codec.h"

#include <algorithm>
#include <atomic>
#include <bit>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <limits>
#include <new>
#include <random>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <lz4.h>
#include <zstd.h>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "common/error.h"
#include "common/half.h"

// ---- Counting allocations: the largest operator new while a test watches ------------------------

namespace {
std::atomic<bool> g_watching{false};
std::atomic<size_t> g_largest{0};
}  // namespace

void* operator new(size_t size) {
  if (g_watching.load(std::memory_order_relaxed)) {
    size_t seen = g_largest.load();
    while (size > seen && !g_largest.compare_exchange_weak(seen, size)) {
    }
  }
  if (void* p = std::malloc(size ? size : 1)) return p;
  throw std::bad_alloc();
}
// Not inlined: GCC would otherwise see free() on memory from "new" (-Wmismatched-new-delete).
__attribute__((noinline)) void operator delete(void* p) noexcept { std::free(p); }
__attribute__((noinline)) void operator delete(void* p, size_t) noexcept { std::free(p); }

namespace scission::codec {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

static_assert(std::endian::native == std::endian::little);

// The largest single allocation made by `run` (std::vector and std::string go through operator
// new; zstd's fixed-size context is malloc'd by the library and not counted).
size_t LargestAllocation(const std::function<void()>& run) {
  g_largest = 0;
  g_watching = true;
  try {
    run();
  } catch (...) {
    g_watching = false;
    throw;
  }
  g_watching = false;
  return g_largest;
}

template <typename T>
std::vector<uint8_t> Bytes(const std::vector<T>& values) {
  std::vector<uint8_t> out(values.size() * sizeof(T));
  if (!out.empty()) std::memcpy(out.data(), values.data(), out.size());
  return out;
}

template <typename T>
std::vector<T> Values(const Tensor& tensor) {
  std::vector<T> out(tensor.data.size() / sizeof(T));
  if (!out.empty()) std::memcpy(out.data(), tensor.data.data(), tensor.data.size());
  return out;
}

Tensor FloatTensor(const std::vector<float>& values) {
  return {{"x", DType::kFloat, {static_cast<int64_t>(values.size())}}, Bytes(values)};
}

// Random contents of any dtype; floats finite and spread over several magnitudes, bools 0/1.
Tensor RandomTensor(DType dtype, std::vector<int64_t> shape, uint32_t seed) {
  Tensor tensor{{"t", dtype, std::move(shape)}, {}};
  const size_t count = static_cast<size_t>(ElementCount(tensor.spec.shape));
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 3.0f);
  auto floats = [&] {
    std::vector<float> values(count);
    for (auto& v : values) v = normal(rng);
    return values;
  };
  switch (dtype) {
    case DType::kFloat:
      tensor.data = Bytes(floats());
      break;
    case DType::kDouble: {
      std::vector<double> values(count);
      for (auto& v : values) v = normal(rng) * 1e10;
      tensor.data = Bytes(values);
      break;
    }
    case DType::kFloat16:
    case DType::kBfloat16: {
      std::vector<uint16_t> values;
      for (float f : floats())
        values.push_back(dtype == DType::kFloat16 ? FloatToHalf(f) : FloatToBfloat16(f));
      tensor.data = Bytes(values);
      break;
    }
    case DType::kBool:
      tensor.data.resize(count);
      for (auto& b : tensor.data) b = static_cast<uint8_t>(rng() & 1);
      break;
    default:
      tensor.data.resize(static_cast<size_t>(tensor.spec.bytes()));
      for (auto& b : tensor.data) b = static_cast<uint8_t>(rng());
  }
  return tensor;
}

// About half zeros, the rest positive with a long tail: what a ReLU leaves.
Tensor ReluTensor(size_t count, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.5f);
  std::vector<float> values(count);
  for (auto& v : values) v = std::max(0.0f, normal(rng));
  return FloatTensor(values);
}

Tensor RoundTrip(const Codec& codec, const Tensor& tensor) {
  const std::vector<uint8_t> payload = codec.Encode(tensor);
  return codec.Decode(tensor.spec, payload.data(), payload.size(), "tensor 't'");
}

// `decode` throws a BadInput whose message starts with "<what>: " and contains `fragment`.
void ExpectBadInput(const std::function<void()>& decode, const std::string& fragment) {
  try {
    decode();
    ADD_FAILURE() << "no error; expected one containing '" << fragment << "'";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kBadInput) << e.what();
    EXPECT_THAT(e.what(), StartsWith("tensor 't': "));
    EXPECT_THAT(e.what(), HasSubstr(fragment));
  }
}

const std::vector<DType> kDTypes = {
    DType::kFloat, DType::kFloat16, DType::kBfloat16, DType::kInt64,  DType::kInt32, DType::kUint8,
    DType::kInt8,  DType::kBool,    DType::kDouble,   DType::kUint16, DType::kUint64};

// Shapes: a scalar, empty ones (a zero dimension among large ones), odd sizes, and one of
// 3 MiB + a little in fp32 so that lz4 splits it into several blocks.
const std::vector<std::vector<int64_t>> kShapes = {
    {}, {0}, {3, 0, 1 << 20}, {1}, {7, 13}, {1, 3, 17, 19}, {3 * (1 << 18) + 5}};

// ---- The registry -------------------------------------------------------------------------------

TEST(CodecRegistry, NamesInOrderAndWhatIsLossy) {
  EXPECT_THAT(Names(), ::testing::ElementsAre("none", "lz4", "zstd", "fp16", "int8", "fp16+zstd",
                                              "int8+zstd"));
  for (const std::string& name : Names()) {
    const Codec* codec = Find(name);
    ASSERT_NE(codec, nullptr) << name;
    EXPECT_EQ(codec->name(), name);
    EXPECT_EQ(&Get(name, "--codecs"), codec);
    const bool lossy = name.starts_with("fp16") || name.starts_with("int8");
    EXPECT_EQ(codec->lossy(), lossy) << name;
    EXPECT_EQ(codec->LossyFor(DType::kFloat), lossy) << name;
    EXPECT_EQ(codec->LossyFor(DType::kFloat16), name.starts_with("int8")) << name;
    EXPECT_EQ(codec->LossyFor(DType::kBfloat16), name.starts_with("int8")) << name;
    for (DType other : {DType::kDouble, DType::kInt64, DType::kInt32, DType::kUint8, DType::kBool})
      EXPECT_FALSE(codec->LossyFor(other)) << name << " " << DTypeName(other);
  }
  EXPECT_EQ(Find("gzip"), nullptr);
  EXPECT_EQ(Find(""), nullptr);
  try {
    Get("gzip", "--codecs");
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kBadInput);
    EXPECT_STREQ(e.what(),
                 "--codecs: unknown codec 'gzip' (codecs: none, lz4, zstd, fp16, int8, "
                 "fp16+zstd, int8+zstd)");
  }
}

TEST(CodecRegistry, ParseListExpandsGroupsKeepsOrderAndDropsRepeats) {
  EXPECT_THAT(ParseList("lossless", "--codecs"), ::testing::ElementsAre("none", "lz4", "zstd"));
  EXPECT_EQ(ParseList("all", "--codecs"), Names());
  EXPECT_THAT(ParseList("zstd,none,zstd", "--codecs"), ::testing::ElementsAre("zstd", "none"));
  EXPECT_THAT(ParseList("int8+zstd, lossless ,lz4", "--codecs"),
              ::testing::ElementsAre("int8+zstd", "none", "lz4", "zstd"));
  EXPECT_THAT(
      ParseList("fp16,all", "--codecs"),
      ::testing::ElementsAre("fp16", "none", "lz4", "zstd", "int8", "fp16+zstd", "int8+zstd"));
  for (const char* bad : {"", "zstd,", ",zstd", "zstd,,lz4", " "}) {
    try {
      ParseList(bad, "--codecs");
      ADD_FAILURE() << "'" << bad << "' accepted";
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::kBadInput);
      EXPECT_THAT(e.what(), StartsWith("--codecs: empty codec name in '"));
    }
  }
  try {
    ParseList("zstd,brotli", "--codecs");
    ADD_FAILURE() << "brotli accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kBadInput);
    EXPECT_THAT(e.what(), StartsWith("--codecs: unknown codec 'brotli' (codecs: none, lz4"));
  }
}

// ---- Round trips --------------------------------------------------------------------------------

TEST(CodecRoundTrip, EveryCodecEveryDtypeEveryShape) {
  uint32_t seed = 1;
  for (DType dtype : kDTypes)
    for (const auto& shape : kShapes) {
      const Tensor tensor = RandomTensor(dtype, shape, seed++);
      for (const std::string& name : Names()) {
        const Codec& codec = Get(name, "test");
        SCOPED_TRACE(fmt::format("{} on {}{}", name, DTypeName(dtype), ShapeString(shape)));
        const Tensor decoded = RoundTrip(codec, tensor);
        EXPECT_EQ(decoded.spec.name, "t");
        EXPECT_EQ(decoded.spec.dtype, dtype);
        EXPECT_EQ(decoded.spec.shape, shape);
        ASSERT_EQ(decoded.data.size(), tensor.data.size());
        // Lossless codecs, and lossy ones on dtypes they pass through, give the bytes back.
        if (!codec.LossyFor(dtype)) {
          EXPECT_TRUE(decoded.data == tensor.data);
        }
      }
    }
}

TEST(CodecRoundTrip, LosslessCodecsKeepEveryBitOfFloats) {
  // NaNs with payloads, signalling NaNs, -0, subnormals and infinities: bytes are bytes.
  std::vector<uint32_t> bits = {0x7fc00000, 0x7f800001, 0xffc12345, 0x80000000, 0x00000001,
                                0x007fffff, 0x7f800000, 0xff800000, 0x3f800000, 0x7f7fffff};
  Tensor tensor{{"t", DType::kFloat, {static_cast<int64_t>(bits.size())}}, Bytes(bits)};
  for (const char* name : {"none", "lz4", "zstd"}) {
    const Tensor decoded = RoundTrip(Get(name, "test"), tensor);
    EXPECT_EQ(Values<uint32_t>(decoded), bits) << name;
  }
}

TEST(CodecRoundTrip, LossyCodecsPassOtherDtypesThroughUntouched) {
  for (const char* name : {"fp16", "int8"}) {
    const Codec& codec = Get(name, "test");
    for (DType dtype : {DType::kInt64, DType::kInt32, DType::kUint8, DType::kBool, DType::kDouble,
                        DType::kInt8, DType::kFloat16, DType::kBfloat16}) {
      if (codec.LossyFor(dtype)) continue;
      const Tensor tensor = RandomTensor(dtype, {5, 7}, 42);
      // Without a lossless stage the payload is the tensor's own bytes.
      EXPECT_TRUE(codec.Encode(tensor) == tensor.data) << name << " " << DTypeName(dtype);
      EXPECT_TRUE(RoundTrip(codec, tensor).data == tensor.data) << name << " " << DTypeName(dtype);
    }
  }
}

TEST(CodecRoundTrip, CompositesDecodeToWhatTheirLossyStageGives) {
  const Tensor relu = ReluTensor(50003, 7);
  const Tensor gauss = RandomTensor(DType::kFloat, {50003}, 8);
  for (const auto& [lossy, composite] : {std::pair{"fp16", "fp16+zstd"}, {"int8", "int8+zstd"}})
    for (const Tensor* tensor : {&relu, &gauss}) {
      const Tensor alone = RoundTrip(Get(lossy, "test"), *tensor);
      const Tensor composed = RoundTrip(Get(composite, "test"), *tensor);
      EXPECT_TRUE(alone.data == composed.data) << composite;
      // The lossless stage makes a half-zero tensor smaller still.
      if (tensor == &relu) {
        EXPECT_LT(Get(composite, "test").Encode(*tensor).size(),
                  Get(lossy, "test").Encode(*tensor).size() * 3 / 4)
            << composite;
      }
    }
}

TEST(CodecRoundTrip, PayloadSizes) {
  const Tensor relu = ReluTensor(100000, 3);
  EXPECT_EQ(Get("none", "t").Encode(relu).size(), 400000u);
  EXPECT_EQ(Get("fp16", "t").Encode(relu).size(), 200000u);
  EXPECT_EQ(Get("int8", "t").Encode(relu).size(), 100000u + 12);
  // Half zeros: the general-purpose codecs find them.
  EXPECT_LT(Get("lz4", "t").Encode(relu).size(), 300000u);
  EXPECT_LT(Get("zstd", "t").Encode(relu).size(), 300000u);
}

TEST(CodecRoundTrip, Lz4SplitsLargeTensorsIntoBlocksOfOneMib) {
  const Tensor zeros{{"t", DType::kFloat, {3 * (1 << 18) + 5}},
                     std::vector<uint8_t>((3 << 20) + 20)};
  const std::vector<uint8_t> payload = Get("lz4", "t").Encode(zeros);
  size_t at = 0, blocks = 0;
  while (at + 4 <= payload.size()) {
    uint32_t size;
    std::memcpy(&size, payload.data() + at, 4);
    at += 4 + size;
    ++blocks;
  }
  EXPECT_EQ(at, payload.size());
  EXPECT_EQ(blocks, 4u);
  EXPECT_TRUE(RoundTrip(Get("lz4", "t"), zeros).data == zeros.data);
}

TEST(CodecRoundTrip, Lz4StoresIncompressibleBlocksAsTheyAre) {
  // Random bytes: LZ4 would make every block larger; stored, the payload grows by 4 bytes a block.
  const Tensor noise = RandomTensor(DType::kUint8, {(1 << 20) + 1000}, 21);
  const std::vector<uint8_t> payload = Get("lz4", "t").Encode(noise);
  EXPECT_EQ(payload.size(), noise.data.size() + 8);
  uint32_t first;
  std::memcpy(&first, payload.data(), 4);
  EXPECT_EQ(first, 0x80000000u | (1u << 20));
  EXPECT_TRUE(RoundTrip(Get("lz4", "t"), noise).data == noise.data);
  // A stored block must hold exactly its decoded size.
  std::vector<uint8_t> lying = payload;
  const uint32_t shorter = 0x80000000u | ((1u << 20) - 1);
  std::memcpy(lying.data(), &shorter, 4);
  ExpectBadInput(
      [&] { Get("lz4", "t").Decode(noise.spec, lying.data(), lying.size(), "tensor 't'"); },
      "lz4 block 0 announces 1048575 bytes stored");
}

// ---- fp16 ---------------------------------------------------------------------------------------

uint16_t HalfOf(const Codec& fp16, float value) {
  const std::vector<uint8_t> payload = fp16.Encode(FloatTensor({value}));
  uint16_t half;
  std::memcpy(&half, payload.data(), 2);
  return half;
}

TEST(CodecFp16, KnownValuesRoundToNearestEven) {
  const Codec& fp16 = Get("fp16", "t");
  EXPECT_EQ(HalfOf(fp16, 1.0f), 0x3c00);
  EXPECT_EQ(HalfOf(fp16, -2.0f), 0xc000);
  EXPECT_EQ(HalfOf(fp16, 0.0f), 0x0000);
  EXPECT_EQ(HalfOf(fp16, -0.0f), 0x8000);
  EXPECT_EQ(HalfOf(fp16, 65504.0f), 0x7bff);             // the largest half
  EXPECT_EQ(HalfOf(fp16, 65519.996f), 0x7bff);           // just below the midpoint to 65536
  EXPECT_EQ(HalfOf(fp16, 65520.0f), 0x7c00);             // the midpoint: ties to even = inf
  EXPECT_EQ(HalfOf(fp16, -1e10f), 0xfc00);               // overflow to -inf
  EXPECT_EQ(HalfOf(fp16, 1.0f + 0x1p-11f), 0x3c00);      // tie between 1 and 1+2^-10: even
  EXPECT_EQ(HalfOf(fp16, 1.0f + 3 * 0x1p-11f), 0x3c02);  // tie, odd below: up
  EXPECT_EQ(HalfOf(fp16, 0x1p-14f), 0x0400);             // the smallest normal
  EXPECT_EQ(HalfOf(fp16, 0x1p-24f), 0x0001);             // the smallest subnormal
  EXPECT_EQ(HalfOf(fp16, 0x1p-25f), 0x0000);             // tie with 0: even
  EXPECT_EQ(HalfOf(fp16, 0x1.000002p-25f), 0x0001);      // just above it
  EXPECT_EQ(HalfOf(fp16, -0x1p-30f), 0x8000);            // underflow keeps the sign
  EXPECT_EQ(HalfOf(fp16, std::numeric_limits<float>::denorm_min()), 0x0000);
  EXPECT_EQ(HalfOf(fp16, INFINITY), 0x7c00);
  EXPECT_EQ(HalfOf(fp16, -INFINITY), 0xfc00);
  EXPECT_EQ(HalfOf(fp16, std::bit_cast<float>(0x7fc00000u)), 0x7e00);
  // A NaN whose payload sits below the half's mantissa stays a NaN (quiet), sign kept.
  EXPECT_EQ(HalfOf(fp16, std::bit_cast<float>(0xff800001u)), 0xfe00);
}

// The value of a finite half, computed independently of the codec.
float HalfValue(uint16_t half) {
  const int exponent = half >> 10 & 0x1f, mantissa = half & 0x3ff;
  const float magnitude = exponent == 0
                              ? std::ldexp(static_cast<float>(mantissa), -24)
                              : std::ldexp(static_cast<float>(1024 + mantissa), exponent - 25);
  return half & 0x8000 ? -magnitude : magnitude;
}

// Floats at and around every rounding boundary of fp16, and random bit patterns.
std::vector<float> Fp16TestFloats() {
  std::vector<float> values;
  // Every finite positive half, the midpoint above it and the floats either side of that.
  for (uint16_t h = 0; h < 0x7bff; ++h) {
    const float a = HalfValue(h), b = HalfValue(static_cast<uint16_t>(h + 1));
    const float mid = a + (b - a) / 2;  // exact: float has 13 more bits
    for (float v : {a, mid, std::nextafter(mid, 0.0f), std::nextafter(mid, INFINITY)}) {
      values.push_back(v);
      values.push_back(-v);
    }
  }
  for (float v : {65504.0f, 65519.0f, 65520.0f, 65536.0f, 1e6f, 3e38f, INFINITY})
    for (float w : {v, std::nextafter(v, 0.0f), -v}) values.push_back(w);
  for (uint32_t bits : {0x7f800001u, 0x7fc00000u, 0xffc12345u, 0x7fbfffffu, 0x7f802000u,
                        0x00000001u, 0x80400000u, 0x33000000u, 0x33000001u, 0x32ffffffu})
    values.push_back(std::bit_cast<float>(bits));
  std::mt19937 rng(11);
  for (int i = 0; i < 200003; ++i)
    values.push_back(std::bit_cast<float>(static_cast<uint32_t>(rng())));
  return values;
}

#if defined(__x86_64__)
__attribute__((target("f16c"))) uint16_t HardwareHalf(float value) {
  return static_cast<uint16_t>(_cvtss_sh(value, _MM_FROUND_TO_NEAREST_INT));
}
__attribute__((target("f16c"))) float HardwareFloat(uint16_t half) { return _cvtsh_ss(half); }
#endif

// The portable conversions (half.h) and the codec (F16C where the CPU has it, the portable ones
// for the last few values) both agree with the CPU's own conversion on every value tried.
TEST(CodecFp16, AgreesWithTheCpusConversionBitForBit) {
#if defined(__x86_64__)
  if (!__builtin_cpu_supports("f16c")) GTEST_SKIP() << "this CPU has no F16C";
  const Codec& fp16 = Get("fp16", "t");
  const std::vector<float> values = Fp16TestFloats();
  ASSERT_NE(values.size() % 8, 0u);  // a tail beyond the last group of eight
  const std::vector<uint8_t> payload = fp16.Encode(FloatTensor(values));
  ASSERT_EQ(payload.size(), values.size() * 2);
  size_t mismatches = 0;
  for (size_t i = 0; i < values.size(); ++i) {
    uint16_t half;
    std::memcpy(&half, payload.data() + 2 * i, 2);
    const uint16_t expected = HardwareHalf(values[i]), portable = FloatToHalf(values[i]);
    if ((half != expected || portable != expected) && ++mismatches <= 5)
      ADD_FAILURE() << fmt::format(
          "{:a} (0x{:08x}): codec 0x{:04x}, portable 0x{:04x}, CPU 0x{:04x}", values[i],
          std::bit_cast<uint32_t>(values[i]), half, portable, expected);
  }
  EXPECT_EQ(mismatches, 0u);
  // Decoding: every one of the 65536 halves, NaN payloads included.
  std::vector<uint16_t> halves(65536 + 3);
  for (uint32_t h = 0; h < halves.size(); ++h) halves[h] = static_cast<uint16_t>(h);
  const std::vector<uint8_t> all = Bytes(halves);
  const TensorSpec spec{"t", DType::kFloat, {static_cast<int64_t>(halves.size())}};
  const std::vector<float> floats = Values<float>(fp16.Decode(spec, all.data(), all.size(), "t"));
  mismatches = 0;
  for (size_t i = 0; i < halves.size(); ++i) {
    const uint32_t expected = std::bit_cast<uint32_t>(HardwareFloat(halves[i]));
    const uint32_t codec = std::bit_cast<uint32_t>(floats[i]);
    const uint32_t portable = std::bit_cast<uint32_t>(HalfToFloat(halves[i]));
    if ((codec != expected || portable != expected) && ++mismatches <= 5)
      ADD_FAILURE() << fmt::format("half 0x{:04x}: codec 0x{:08x}, portable 0x{:08x}, CPU 0x{:08x}",
                                   halves[i], codec, portable, expected);
  }
  EXPECT_EQ(mismatches, 0u);
#else
  GTEST_SKIP() << "F16C is x86 only";
#endif
}

TEST(CodecFp16, RelativeErrorOfNormalValuesIsAtMostTwoToTheMinus11) {
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> exponent(-14.0f, 15.9f);
  std::vector<float> values(100000);
  for (auto& v : values) v = std::exp2(exponent(rng)) * (rng() & 1 ? 1.0f : -1.0f);
  const Tensor decoded = RoundTrip(Get("fp16", "t"), FloatTensor(values));
  const std::vector<float> out = Values<float>(decoded);
  double worst = 0;
  for (size_t i = 0; i < values.size(); ++i)
    worst =
        std::max(worst, std::abs(static_cast<double>(out[i]) - values[i]) / std::abs(values[i]));
  EXPECT_LE(worst, std::ldexp(1.0, -11));
  EXPECT_GT(worst, std::ldexp(1.0, -13));  // the values were not all halves already
}

TEST(CodecFp16, NonFiniteAndOutOfRangeValues) {
  const std::vector<float> values = {NAN, -NAN, INFINITY, -INFINITY, 1e5f, -1e5f, 1e-9f, -1e-9f};
  const std::vector<float> out =
      Values<float>(RoundTrip(Get("fp16+zstd", "t"), FloatTensor(values)));
  EXPECT_TRUE(std::isnan(out[0]));
  EXPECT_TRUE(std::isnan(out[1]) && std::signbit(out[1]));
  EXPECT_EQ(out[2], INFINITY);
  EXPECT_EQ(out[3], -INFINITY);
  EXPECT_EQ(out[4], INFINITY);
  EXPECT_EQ(out[5], -INFINITY);
  EXPECT_EQ(std::bit_cast<uint32_t>(out[6]), 0u);
  EXPECT_EQ(std::bit_cast<uint32_t>(out[7]), 0x80000000u);
}

// ---- int8 ---------------------------------------------------------------------------------------

float FromBits(DType dtype, uint16_t bits) {
  if (dtype == DType::kBfloat16) return std::bit_cast<float>(uint32_t{bits} << 16);
  return HalfValue(bits);  // the test tensors hold finite halves only
}

// The float values of a float tensor of any of the three float dtypes.
std::vector<float> AsFloats(const Tensor& tensor) {
  if (tensor.spec.dtype == DType::kFloat) return Values<float>(tensor);
  std::vector<float> out;
  for (uint16_t bits : Values<uint16_t>(tensor)) out.push_back(FromBits(tensor.spec.dtype, bits));
  return out;
}

TEST(CodecInt8, ErrorAtMostHalfAStepAndTheEndsExact) {
  for (DType dtype : {DType::kFloat, DType::kFloat16, DType::kBfloat16})
    for (const char* name : {"int8", "int8+zstd"}) {
      SCOPED_TRACE(fmt::format("{} on {}", name, DTypeName(dtype)));
      const Tensor tensor = RandomTensor(dtype, {20000}, 9);
      const std::vector<float> in = AsFloats(tensor),
                               out = AsFloats(RoundTrip(Get(name, "t"), tensor));
      const float min = *std::min_element(in.begin(), in.end());
      const float max = *std::max_element(in.begin(), in.end());
      const double scale = (static_cast<double>(max) - min) / 255;
      // The decoded value is rounded to the tensor's dtype: half an ulp of it on top.
      const double ulp = dtype == DType::kFloat     ? 0x1p-24
                         : dtype == DType::kFloat16 ? 0x1p-11
                                                    : 0x1p-8;
      double worst_steps = 0;
      for (size_t i = 0; i < in.size(); ++i) {
        const double error = std::abs(static_cast<double>(out[i]) - in[i]);
        ASSERT_LE(error, scale / 2 + std::abs(in[i]) * ulp + 1e-30) << i << ": " << in[i];
        worst_steps = std::max(worst_steps, error / scale);
        if (in[i] == min || in[i] == max) {
          EXPECT_EQ(out[i], in[i]);
        }
      }
      EXPECT_GT(worst_steps, 0.4);  // it did quantize
    }
}

TEST(CodecInt8, PostReluZerosAndConstantTensorsDecodeExactly) {
  const Tensor relu = ReluTensor(10000, 4);
  const std::vector<float> in = Values<float>(relu);
  const std::vector<float> out = Values<float>(RoundTrip(Get("int8+zstd", "t"), relu));
  size_t zeros = 0;
  for (size_t i = 0; i < in.size(); ++i)
    if (in[i] == 0) {
      ++zeros;
      EXPECT_EQ(std::bit_cast<uint32_t>(out[i]), 0u);
    }
  EXPECT_GT(zeros, 4000u);
  for (float c : {3.14159f, -0.0f, 0.0f, -1e30f, 1e-40f}) {
    const Tensor constant = FloatTensor(std::vector<float>(1000, c));
    EXPECT_TRUE(RoundTrip(Get("int8", "t"), constant).data == constant.data) << c;
    const Tensor one = FloatTensor({c});
    EXPECT_TRUE(RoundTrip(Get("int8", "t"), one).data == one.data) << c;
  }
  for (DType dtype : {DType::kFloat16, DType::kBfloat16}) {
    const std::vector<uint16_t> bits(333, 0x4248);  // 3.14 in fp16, 50 in bf16
    const Tensor constant{{"t", dtype, {333}}, Bytes(bits)};
    EXPECT_TRUE(RoundTrip(Get("int8+zstd", "t"), constant).data == constant.data);
  }
}

TEST(CodecInt8, NanAndInfinitiesRoundTripAsThemselves) {
  std::vector<float> values = {NAN, INFINITY, -INFINITY, -NAN};
  for (int i = 0; i < 1000; ++i) values.push_back(static_cast<float>(i) / 10 - 20);
  const std::vector<float> out = Values<float>(RoundTrip(Get("int8", "t"), FloatTensor(values)));
  EXPECT_TRUE(std::isnan(out[0]));
  EXPECT_EQ(out[1], INFINITY);
  EXPECT_EQ(out[2], -INFINITY);
  EXPECT_TRUE(std::isnan(out[3]));  // the canonical quiet NaN: its sign is not kept
  // With non-finite values present the finite range has 252 steps instead of 255.
  const double scale = (79.9 - -20.0) / 252;
  for (size_t i = 4; i < values.size(); ++i)
    ASSERT_LE(std::abs(out[i] - values[i]), scale / 2 + 1e-5) << values[i];
  EXPECT_EQ(out[4], -20.0f);
  // No finite value at all.
  const std::vector<float> specials = {NAN, INFINITY, -INFINITY};
  const std::vector<float> back = Values<float>(RoundTrip(Get("int8", "t"), FloatTensor(specials)));
  EXPECT_TRUE(std::isnan(back[0]));
  EXPECT_EQ(back[1], INFINITY);
  EXPECT_EQ(back[2], -INFINITY);
  // fp16 infinities (0x7c00, 0xfc00) and NaN (0x7e00) too.
  const std::vector<uint16_t> halves = {0x7c00, 0xfc00, 0x7e00, 0x3c00, 0x0000};
  const Tensor half_tensor{{"t", DType::kFloat16, {5}}, Bytes(halves)};
  const std::vector<uint16_t> half_out = Values<uint16_t>(RoundTrip(Get("int8", "t"), half_tensor));
  EXPECT_EQ(half_out[0], 0x7c00);
  EXPECT_EQ(half_out[1], 0xfc00);
  EXPECT_EQ(half_out[2] & 0x7c00, 0x7c00);
  EXPECT_NE(half_out[2] & 0x3ff, 0);  // a NaN
  EXPECT_EQ(half_out[3], 0x3c00);
  EXPECT_EQ(half_out[4], 0x0000);
}

TEST(CodecInt8, TheWholeFloatRangeDoesNotOverflow) {
  const float big = std::numeric_limits<float>::max();
  const std::vector<float> values = {-big, big, 0.0f, big / 2, -big / 3};
  const std::vector<float> out = Values<float>(RoundTrip(Get("int8", "t"), FloatTensor(values)));
  EXPECT_EQ(out[0], -big);
  EXPECT_EQ(out[1], big);
  const double scale = 2.0 * big / 255;
  for (size_t i = 2; i < values.size(); ++i) {
    EXPECT_TRUE(std::isfinite(out[i]));
    EXPECT_LE(std::abs(static_cast<double>(out[i]) - values[i]), scale / 2 * 1.0001);
  }
}

// ---- Hostile payloads ---------------------------------------------------------------------------

TEST(CodecHostile, EmptyTruncatedAndOverlongPayloadsAreRefused) {
  const Tensor tensor = ReluTensor(4096, 12);
  for (const std::string& name : Names()) {
    SCOPED_TRACE(name);
    const Codec& codec = Get(name, "t");
    const std::vector<uint8_t> payload = codec.Encode(tensor);
    ExpectBadInput([&] { codec.Decode(tensor.spec, nullptr, 0, "tensor 't'"); }, "");
    for (size_t keep : {size_t{1}, size_t{4}, payload.size() / 2, payload.size() - 1})
      ExpectBadInput([&] { codec.Decode(tensor.spec, payload.data(), keep, "tensor 't'"); }, "");
    std::vector<uint8_t> longer = payload;
    longer.push_back(0);
    ExpectBadInput([&] { codec.Decode(tensor.spec, longer.data(), longer.size(), "tensor 't'"); },
                   "");
    longer = payload;
    longer.insert(longer.end(), payload.begin(), payload.end());  // the payload twice
    ExpectBadInput([&] { codec.Decode(tensor.spec, longer.data(), longer.size(), "tensor 't'"); },
                   "");
  }
}

TEST(CodecHostile, PayloadForAnotherSizeIsRefused) {
  const Tensor tensor = ReluTensor(4096, 13);
  for (const std::string& name : Names()) {
    SCOPED_TRACE(name);
    const Codec& codec = Get(name, "t");
    const std::vector<uint8_t> payload = codec.Encode(tensor);
    for (int64_t count : {4095, 4097, 2048, 8192, 0}) {
      const TensorSpec other{"t", DType::kFloat, {count}};
      ExpectBadInput([&] { codec.Decode(other, payload.data(), payload.size(), "tensor 't'"); },
                     "");
    }
    // As many elements of a dtype twice as wide.
    const TensorSpec doubles{"t", DType::kDouble, {4096}};
    ExpectBadInput([&] { codec.Decode(doubles, payload.data(), payload.size(), "tensor 't'"); },
                   "");
  }
  const std::vector<uint8_t> raw = tensor.data;
  ExpectBadInput(
      [&] {
        Get("none", "t").Decode({"t", DType::kFloat, {4095}}, raw.data(), raw.size(), "tensor 't'");
      },
      "payload of 16384 bytes, expected 16380");
}

TEST(CodecHostile, SpecsWithoutASizeAreRefused) {
  const std::vector<uint8_t> payload(16, 0);
  const TensorSpec unknown_dim{"t", DType::kFloat, {1, -1}};
  TensorSpec unknown_rank{"t", DType::kFloat, {}};
  unknown_rank.rank_known = false;
  const TensorSpec strings{"t", DType::kString, {4}};
  const TensorSpec overflow{"t", DType::kFloat, {int64_t{1} << 40, int64_t{1} << 40}};
  for (const std::string& name : Names())
    for (const TensorSpec* spec :
         std::vector<const TensorSpec*>{&unknown_dim, &unknown_rank, &strings, &overflow})
      ExpectBadInput(
          [&] { Get(name, "t").Decode(*spec, payload.data(), payload.size(), "tensor 't'"); },
          "has no known size");
}

TEST(CodecHostile, AHugeSpecWithASmallPayloadIsRefusedBeforeAllocating) {
  const TensorSpec huge{"t", DType::kFloat, {int64_t{1} << 40}};  // 4 TiB
  const Tensor small = ReluTensor(1000, 14);
  for (const std::string& name : Names()) {
    SCOPED_TRACE(name);
    const std::vector<uint8_t> payload = Get(name, "t").Encode(small);
    const size_t largest = LargestAllocation([&] {
      ExpectBadInput(
          [&] { Get(name, "t").Decode(huge, payload.data(), payload.size(), "tensor 't'"); }, "");
    });
    EXPECT_LT(largest, size_t{1} << 20);
  }
}

// A zstd frame of `total` zeros announcing its size, made without holding them all at once.
std::vector<uint8_t> ZstdZeros(size_t total, bool pledge) {
  ZSTD_CCtx* context = ZSTD_createCCtx();
  ZSTD_CCtx_setParameter(context, ZSTD_c_compressionLevel, 1);
  if (pledge) ZSTD_CCtx_setPledgedSrcSize(context, total);
  const std::vector<uint8_t> zeros(1 << 20, 0);
  std::vector<uint8_t> out;
  std::vector<uint8_t> buffer(ZSTD_CStreamOutSize());
  size_t fed = 0;
  bool done = false;
  while (!done) {
    const size_t chunk = std::min(zeros.size(), total - fed);
    const bool last = fed + chunk == total;
    ZSTD_inBuffer in{zeros.data(), chunk, 0};
    do {
      ZSTD_outBuffer o{buffer.data(), buffer.size(), 0};
      const size_t left =
          ZSTD_compressStream2(context, &o, &in, last ? ZSTD_e_end : ZSTD_e_continue);
      EXPECT_FALSE(ZSTD_isError(left)) << ZSTD_getErrorName(left);
      out.insert(out.end(), buffer.begin(), buffer.begin() + static_cast<ptrdiff_t>(o.pos));
      done = last && left == 0;
    } while (in.pos < in.size || (last && !done));
    fed += chunk;
  }
  ZSTD_freeCCtx(context);
  return out;
}

TEST(CodecHostile, ZstdBombOfOneGibIsRefusedWithoutAllocatingMoreThanTheSpec) {
  const std::vector<uint8_t> bomb = ZstdZeros(size_t{1} << 30, /*pledge=*/true);
  ASSERT_EQ(ZSTD_getFrameContentSize(bomb.data(), bomb.size()), 1ull << 30);
  ASSERT_LT(bomb.size(), size_t{1} << 20);
  const TensorSpec spec{"t", DType::kFloat, {256}};  // 1 KiB
  // The counter sees what a decoder allocates: a legitimate 1 MiB tensor needs 1 MiB.
  const Tensor mib = ReluTensor(1 << 18, 20);
  const std::vector<uint8_t> legit = Get("zstd", "t").Encode(mib);
  EXPECT_GE(
      LargestAllocation([&] {
        EXPECT_EQ(
            Get("zstd", "t").Decode(mib.spec, legit.data(), legit.size(), "tensor 't'").data.size(),
            size_t{1} << 20);
      }),
      size_t{1} << 20);
  for (const char* name : {"zstd", "fp16+zstd", "int8+zstd"}) {
    SCOPED_TRACE(name);
    const size_t largest = LargestAllocation([&] {
      ExpectBadInput([&] { Get(name, "t").Decode(spec, bomb.data(), bomb.size(), "tensor 't'"); },
                     "zstd frame declares 1073741824 bytes, expected");
    });
    EXPECT_LE(largest, static_cast<size_t>(spec.bytes()) + bomb.size());
  }
  // Without a declared size: refused as well (a sender of ours always declares it).
  const std::vector<uint8_t> unsized = ZstdZeros(size_t{1} << 24, /*pledge=*/false);
  ASSERT_EQ(ZSTD_getFrameContentSize(unsized.data(), unsized.size()), ZSTD_CONTENTSIZE_UNKNOWN);
  const size_t largest = LargestAllocation([&] {
    ExpectBadInput(
        [&] { Get("zstd", "t").Decode(spec, unsized.data(), unsized.size(), "tensor 't'"); },
        "zstd frame does not declare its decoded size");
  });
  EXPECT_LE(largest, static_cast<size_t>(spec.bytes()) + unsized.size());
}

// Where a frame's Frame_Content_Size field starts and how wide it is (RFC 8878 3.1.1.1).
std::pair<size_t, size_t> ContentSizeField(const std::vector<uint8_t>& frame) {
  const uint8_t descriptor = frame.at(4);
  const bool single_segment = descriptor & 0x20;
  const size_t dictionary_bytes[] = {0, 1, 2, 4};
  const size_t size_bytes[] = {single_segment ? 1u : 0u, 2, 4, 8};
  const size_t offset = 5 + (single_segment ? 0 : 1) + dictionary_bytes[descriptor & 3];
  return {offset, size_bytes[descriptor >> 6]};
}

TEST(CodecHostile, ZstdFrameThatDecodesToMoreThanItDeclaresIsRefused) {
  const std::vector<uint8_t> zeros(1 << 20, 0);
  std::vector<uint8_t> frame(ZSTD_compressBound(zeros.size()));
  frame.resize(ZSTD_compress(frame.data(), frame.size(), zeros.data(), zeros.size(), 1));
  const auto [offset, width] = ContentSizeField(frame);
  ASSERT_EQ(width, 4u);  // 1 MiB needs 4 bytes; 1024 fits them as well
  const uint32_t lie = 1024;
  std::memcpy(frame.data() + offset, &lie, 4);
  ASSERT_EQ(ZSTD_getFrameContentSize(frame.data(), frame.size()), 1024u);
  const TensorSpec spec{"t", DType::kUint8, {1024}};
  const size_t largest = LargestAllocation([&] {
    ExpectBadInput([&] { Get("zstd", "t").Decode(spec, frame.data(), frame.size(), "tensor 't'"); },
                   "zstd frame: ");
  });
  EXPECT_LE(largest, 1024 + frame.size());
}

TEST(CodecHostile, ZstdPayloadOfTwoFramesOrNotZstdIsRefused) {
  const Tensor tensor = ReluTensor(1000, 15);
  std::vector<uint8_t> payload = Get("zstd", "t").Encode(tensor);
  const std::vector<uint8_t> one = payload;
  payload.insert(payload.end(), one.begin(), one.end());
  ExpectBadInput(
      [&] { Get("zstd", "t").Decode(tensor.spec, payload.data(), payload.size(), "tensor 't'"); },
      "bytes after the end of the zstd frame");
  const std::vector<uint8_t> text = {'h', 'e', 'l', 'l', 'o', ' ', 'w', 'o', 'r', 'l', 'd', '!'};
  ExpectBadInput(
      [&] { Get("zstd", "t").Decode(tensor.spec, text.data(), text.size(), "tensor 't'"); },
      "is not a zstd frame");
}

// One lz4 block as the lz4 codec frames it: its compressed size, then the block.
std::vector<uint8_t> Lz4Framed(const std::vector<uint8_t>& bytes) {
  std::vector<uint8_t> out(4 +
                           static_cast<size_t>(LZ4_compressBound(static_cast<int>(bytes.size()))));
  const int written = LZ4_compress_default(
      reinterpret_cast<const char*>(bytes.data()), reinterpret_cast<char*>(out.data() + 4),
      static_cast<int>(bytes.size()), static_cast<int>(out.size() - 4));
  EXPECT_GT(written, 0);
  const uint32_t size = static_cast<uint32_t>(written);
  std::memcpy(out.data(), &size, 4);
  out.resize(4 + size);
  return out;
}

TEST(CodecHostile, Lz4BlocksThatExpandBeyondTheSpecAreRefused) {
  const TensorSpec spec{"t", DType::kUint8, {1024}};
  // 1 MiB of zeros in one block: larger than any block of 1 KiB can be.
  const std::vector<uint8_t> big = Lz4Framed(std::vector<uint8_t>(1 << 20, 0));
  // 64 KiB of zeros: small enough to look like a 1 KiB block, but it decodes to more.
  const std::vector<uint8_t> sneaky = Lz4Framed(std::vector<uint8_t>(1 << 16, 0));
  ASSERT_LT(sneaky.size() - 4, static_cast<size_t>(LZ4_compressBound(1024)));
  for (const auto& [payload, fragment] :
       {std::pair{&big, "lz4 block 0 announces"}, std::pair{&sneaky, "lz4 block 0 is corrupt"}}) {
    const size_t largest = LargestAllocation([&] {
      ExpectBadInput(
          [&] { Get("lz4", "t").Decode(spec, payload->data(), payload->size(), "tensor 't'"); },
          fragment);
    });
    EXPECT_LE(largest, 1024 + payload->size());
  }
}

TEST(CodecHostile, Int8HeadersThatMakeNoSenseAreRefused) {
  const Tensor tensor = ReluTensor(100, 16);
  const std::vector<uint8_t> good = Get("int8", "t").Encode(tensor);
  auto with = [&](size_t at, const void* bytes, size_t size) {
    std::vector<uint8_t> payload = good;
    std::memcpy(payload.data() + at, bytes, size);
    return payload;
  };
  const float nan = NAN, inf = INFINITY, minus_one = -1.0f;
  const uint8_t flags = 2, one = 1;
  for (const auto& payload : {with(0, &nan, 4), with(4, &inf, 4), with(0, &inf, 4),
                              with(4, &minus_one, 4),  // max below min
                              with(8, &flags, 1), with(9, &one, 1), with(11, &one, 1)}) {
    ExpectBadInput(
        [&] { Get("int8", "t").Decode(tensor.spec, payload.data(), payload.size(), "tensor 't'"); },
        "int8 payload header is invalid");
  }
}

// Every bit of the first 64 bytes and of 200 random positions flipped, and random garbage: a
// decode either refuses (BadInput) or gives a tensor of exactly the spec's size. Under the
// sanitizers this is also the check that nothing reads or writes out of bounds.
TEST(CodecHostile, FlippedBitsAndGarbageNeverCrash) {
  const Tensor relu = ReluTensor(3000, 17);
  std::mt19937 rng(18);
  for (const std::string& name : Names()) {
    SCOPED_TRACE(name);
    const Codec& codec = Get(name, "t");
    const std::vector<uint8_t> payload = codec.Encode(relu);
    size_t refused = 0, decoded = 0;
    auto attempt = [&](const std::vector<uint8_t>& bytes) {
      try {
        const Tensor out = codec.Decode(relu.spec, bytes.data(), bytes.size(), "tensor 't'");
        ASSERT_EQ(out.data.size(), relu.data.size());
        ++decoded;
      } catch (const Error& e) {
        ASSERT_EQ(e.kind(), ErrorKind::kBadInput) << e.what();
        ASSERT_THAT(e.what(), StartsWith("tensor 't': "));
        ++refused;
      }
    };
    std::vector<size_t> bits;
    for (size_t bit = 0; bit < std::min<size_t>(512, payload.size() * 8); ++bit)
      bits.push_back(bit);
    for (int i = 0; i < 200; ++i) bits.push_back(rng() % (payload.size() * 8));
    for (size_t bit : bits) {
      std::vector<uint8_t> flipped = payload;
      flipped[bit / 8] ^= static_cast<uint8_t>(1u << (bit % 8));
      attempt(flipped);
    }
    for (size_t size : {size_t{1}, size_t{7}, size_t{100}, payload.size(), size_t{20000}}) {
      std::vector<uint8_t> garbage(size);
      for (auto& b : garbage) b = static_cast<uint8_t>(rng());
      attempt(garbage);
    }
    EXPECT_EQ(refused + decoded, bits.size() + 5);
    // Framed payloads notice damage to their framing; raw ones have none to damage.
    // (Only the garbage of the payload's own size decodes.)
    if (name == "none" || name == "fp16")
      EXPECT_EQ(refused, 4u);
    else
      EXPECT_GT(refused, 5u);
  }
}

TEST(CodecEncode, AnInconsistentTensorIsTheCallersFault) {
  Tensor tensor = ReluTensor(10, 19);
  tensor.data.pop_back();
  for (const std::string& name : Names()) {
    try {
      Get(name, "t").Encode(tensor);
      ADD_FAILURE() << name << " encoded a tensor of 39 bytes for 40";
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::kInternal) << name;
      EXPECT_THAT(e.what(), HasSubstr("holds 39 bytes")) << name;
    }
  }
}

}  // namespace
}  // namespace scission::codec
