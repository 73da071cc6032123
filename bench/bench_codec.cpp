// Codec speed and ratio. BM_Encode/<codec>/<input>/<bytes> and BM_Decode/...: the throughput of
// every registered codec in bytes of the raw fp32 tensor per second, and `ratio` = raw bytes /
// payload bytes, on two synthetic activations of 64 KiB and 4 MiB: `relu` (channels of
// max(0, N(bias, scale)) with a bias and scale per channel: about half zeros, a long positive
// tail) and `gauss` (dense N(0, 1)).
// BM_ZstdLevel/<compress|decompress>/<input>:<form>/<bytes>/<level>: zstd alone at several levels
// on the raw tensors and on the fp16 and int8 forms of `relu` (bytes/s of the form), the numbers
// behind the zstd codec's level. Real activations are measured by `scission benchmark`; these are
// for comparing codecs and catching regressions.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>
#include <fmt/format.h>
#include <zstd.h>

#include "codec/codec.h"

namespace {

using scission::DType;
using scission::Tensor;

Tensor ReluActivation(size_t bytes) {
  const size_t count = bytes / 4, channels = 64, per_channel = count / channels;
  std::mt19937 rng(1);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> values(count);
  for (size_t c = 0; c < channels; ++c) {
    const float bias = 0.5f * normal(rng), scale = std::exp(0.5f * normal(rng));
    for (size_t i = c * per_channel; i < (c + 1) * per_channel; ++i)
      values[i] = std::max(0.0f, bias + scale * normal(rng));
  }
  Tensor tensor{{"relu", DType::kFloat, {static_cast<int64_t>(count)}}, {}};
  tensor.data.resize(count * 4);
  std::memcpy(tensor.data.data(), values.data(), tensor.data.size());
  return tensor;
}

Tensor GaussActivation(size_t bytes) {
  const size_t count = bytes / 4;
  std::mt19937 rng(2);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> values(count);
  for (auto& v : values) v = normal(rng);
  Tensor tensor{{"gauss", DType::kFloat, {static_cast<int64_t>(count)}}, {}};
  tensor.data.resize(count * 4);
  std::memcpy(tensor.data.data(), values.data(), tensor.data.size());
  return tensor;
}

Tensor MakeInput(const std::string& input, size_t bytes) {
  return input == "relu" ? ReluActivation(bytes) : GaussActivation(bytes);
}

void Encode(benchmark::State& state, const std::string& codec_name, const std::string& input,
            size_t bytes) {
  const scission::codec::Codec& codec = scission::codec::Get(codec_name, "bench");
  const Tensor tensor = MakeInput(input, bytes);
  size_t payload = 0;
  for (auto _ : state) {
    std::vector<uint8_t> encoded = codec.Encode(tensor);
    payload = encoded.size();
    benchmark::DoNotOptimize(encoded.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * tensor.data.size()));
  state.counters["ratio"] = static_cast<double>(tensor.data.size()) / static_cast<double>(payload);
}

void Decode(benchmark::State& state, const std::string& codec_name, const std::string& input,
            size_t bytes) {
  const scission::codec::Codec& codec = scission::codec::Get(codec_name, "bench");
  const Tensor tensor = MakeInput(input, bytes);
  const std::vector<uint8_t> payload = codec.Encode(tensor);
  for (auto _ : state) {
    Tensor decoded = codec.Decode(tensor.spec, payload.data(), payload.size(), "bench");
    benchmark::DoNotOptimize(decoded.data.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * tensor.data.size()));
  state.counters["ratio"] =
      static_cast<double>(tensor.data.size()) / static_cast<double>(payload.size());
}

// zstd alone at `level` on `form` of an input (its raw fp32 bytes or a lossy codec's payload):
// compressing, or decompressing what it compressed.
void ZstdLevel(benchmark::State& state, const std::string& input, const std::string& form,
               size_t bytes, int level, bool decompress) {
  const Tensor tensor = MakeInput(input, bytes);
  const std::vector<uint8_t> source =
      form == "fp32" ? tensor.data : scission::codec::Get(form, "bench").Encode(tensor);
  ZSTD_CCtx* compress_context = ZSTD_createCCtx();
  ZSTD_DCtx* decompress_context = ZSTD_createDCtx();
  std::vector<uint8_t> frame(ZSTD_compressBound(source.size()));
  frame.resize(ZSTD_compressCCtx(compress_context, frame.data(), frame.size(), source.data(),
                                 source.size(), level));
  std::vector<uint8_t> scratch(std::max(source.size(), ZSTD_compressBound(source.size())));
  for (auto _ : state) {
    const size_t result = decompress
                              ? ZSTD_decompressDCtx(decompress_context, scratch.data(),
                                                    source.size(), frame.data(), frame.size())
                              : ZSTD_compressCCtx(compress_context, scratch.data(), scratch.size(),
                                                  source.data(), source.size(), level);
    if (ZSTD_isError(result)) state.SkipWithError(ZSTD_getErrorName(result));
    benchmark::DoNotOptimize(scratch.data());
  }
  ZSTD_freeCCtx(compress_context);
  ZSTD_freeDCtx(decompress_context);
  // Per byte of the form compressed (what the zstd stage of a codec sees).
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * source.size()));
  state.counters["ratio"] = static_cast<double>(source.size()) / static_cast<double>(frame.size());
}

void RegisterAll() {
  for (size_t bytes : {size_t{64} << 10, size_t{4} << 20})
    for (const std::string input : {"relu", "gauss"})
      for (const std::string& codec : scission::codec::Names()) {
        const std::string suffix = fmt::format("{}/{}/{}", codec, input, bytes);
        benchmark::RegisterBenchmark(("BM_Encode/" + suffix).c_str(), Encode, codec, input, bytes);
        benchmark::RegisterBenchmark(("BM_Decode/" + suffix).c_str(), Decode, codec, input, bytes);
      }
  for (size_t bytes : {size_t{64} << 10, size_t{4} << 20})
    for (const auto& [input, form] :
         {std::pair{"relu", "fp32"}, {"gauss", "fp32"}, {"relu", "fp16"}, {"relu", "int8"}})
      for (int level : {-1, 1, 2, 3})
        for (bool decompress : {false, true})
          benchmark::RegisterBenchmark(
              fmt::format("BM_ZstdLevel/{}/{}:{}/{}/{}", decompress ? "decompress" : "compress",
                          input, form, bytes, level)
                  .c_str(),
              ZstdLevel, std::string(input), std::string(form), bytes, level, decompress);
}

}  // namespace

int main(int argc, char** argv) {
  RegisterAll();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
