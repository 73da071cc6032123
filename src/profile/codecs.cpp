#include "profile/codecs.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "common/error.h"
#include "common/half.h"
#include "profile/harness.h"
#include "profile/stats.h"

namespace scission::profile {

namespace {

using Clock = std::chrono::steady_clock;

bool IsFloat(DType dtype) {
  return dtype == DType::kFloat || dtype == DType::kDouble || dtype == DType::kFloat16 ||
         dtype == DType::kBfloat16;
}

// Every element of a float tensor as a double.
std::vector<double> FloatValues(const Tensor& t) {
  const size_t width = DTypeSize(t.spec.dtype);
  std::vector<double> values;
  values.reserve(width ? t.data.size() / width : 0);
  for (size_t offset = 0; offset + width <= t.data.size(); offset += width) {
    const uint8_t* p = t.data.data() + offset;
    switch (t.spec.dtype) {
      case DType::kFloat: {
        float v;
        std::memcpy(&v, p, sizeof v);
        values.push_back(v);
        break;
      }
      case DType::kDouble: {
        double v;
        std::memcpy(&v, p, sizeof v);
        values.push_back(v);
        break;
      }
      case DType::kFloat16:
      case DType::kBfloat16: {
        uint16_t v;
        std::memcpy(&v, p, sizeof v);
        values.push_back(t.spec.dtype == DType::kFloat16 ? HalfToFloat(v) : Bfloat16ToFloat(v));
        break;
      }
      default:
        break;
    }
  }
  return values;
}

}  // namespace

std::vector<Tensor> RoundTrip(const codec::Codec& codec, const std::vector<Tensor>& tensors) {
  std::vector<Tensor> out;
  out.reserve(tensors.size());
  for (const auto& t : tensors) {
    std::vector<uint8_t> payload = codec.Encode(t);
    out.push_back(codec.Decode(t.spec, payload.data(), payload.size(),
                               "codec " + codec.name() + " on '" + t.spec.name + "'"));
  }
  return out;
}

CodecMeasurement MeasureCodec(const codec::Codec& codec, const std::vector<Tensor>& tensors,
                              int repeats) {
  CodecMeasurement m;
  m.codec = codec.name();
  for (const auto& t : tensors) m.raw_bytes += static_cast<int64_t>(t.data.size());
  std::vector<std::vector<uint8_t>> payloads(tensors.size());
  std::vector<double> encode_ms, decode_ms;
  // One untimed run first (allocators, caches), then `repeats` timed ones.
  for (int run = 0; run <= std::max(repeats, 1); ++run) {
    auto start = Clock::now();
    for (size_t i = 0; i < tensors.size(); ++i) payloads[i] = codec.Encode(tensors[i]);
    double encoded = ElapsedMs(start);
    start = Clock::now();
    std::vector<Tensor> decoded;
    decoded.reserve(tensors.size());
    for (size_t i = 0; i < tensors.size(); ++i)
      decoded.push_back(codec.Decode(tensors[i].spec, payloads[i].data(), payloads[i].size(),
                                     "codec " + codec.name()));
    double took = ElapsedMs(start);
    if (run == 0) {
      for (size_t i = 0; i < tensors.size(); ++i) {
        const bool exact = !codec.LossyFor(tensors[i].spec.dtype);
        if (decoded[i].spec.shape != tensors[i].spec.shape ||
            decoded[i].data.size() != tensors[i].data.size() ||
            (exact && decoded[i].data != tensors[i].data))
          throw Internal("codec {} did not give '{}' back{}", codec.name(), tensors[i].spec.name,
                         exact ? " exactly" : " at its size");
      }
      continue;
    }
    encode_ms.push_back(encoded);
    decode_ms.push_back(took);
  }
  for (const auto& p : payloads) m.bytes += static_cast<int64_t>(p.size());
  m.encode_ms = Median(encode_ms);
  m.decode_ms = Median(decode_ms);
  bool lossy = false;
  for (const auto& t : tensors) lossy = lossy || codec.LossyFor(t.spec.dtype);
  if (!lossy) {
    m.max_abs_error = 0;
    m.rel_l2_error = 0;
  }
  return m;
}

void FidelityAccumulator::Add(const std::vector<Tensor>& exact, const std::vector<Tensor>& approx) {
  constexpr double kInf = std::numeric_limits<double>::infinity();
  ++inputs_;
  if (exact.size() != approx.size()) {
    max_abs_ = broken_ = kInf;
    return;
  }
  if (diff2_.size() < exact.size()) {
    diff2_.resize(exact.size(), 0);
    norm2_.resize(exact.size(), 0);
  }
  for (size_t i = 0; i < exact.size(); ++i) {
    const Tensor &e = exact[i], &a = approx[i];
    if (e.spec.dtype != a.spec.dtype || e.spec.shape != a.spec.shape ||
        e.data.size() != a.data.size()) {
      max_abs_ = broken_ = kInf;
      continue;
    }
    if (!IsFloat(e.spec.dtype)) {
      if (e.data != a.data) max_abs_ = broken_ = kInf;
      continue;
    }
    std::vector<double> ev = FloatValues(e), av = FloatValues(a);
    double diff2 = 0, norm2 = 0, max_abs = 0;
    for (size_t k = 0; k < ev.size(); ++k) {
      double d = std::isnan(ev[k]) && std::isnan(av[k]) ? 0 : av[k] - ev[k];
      if (std::isinf(ev[k]) && ev[k] == av[k]) d = 0;
      if (std::isnan(d)) d = kInf;
      max_abs = std::max(max_abs, std::fabs(d));
      diff2 += d * d;
      if (std::isfinite(ev[k])) norm2 += ev[k] * ev[k];
    }
    max_abs_ = std::max(max_abs_, max_abs);
    diff2_[i] += diff2;
    norm2_[i] += norm2;
    // Class scores: [rows, classes] with at least two classes.
    if (e.spec.shape.size() == 2 && e.spec.shape[1] >= 2 && e.spec.shape[0] >= 1) {
      const size_t cols = static_cast<size_t>(e.spec.shape[1]);
      for (size_t row = 0; row + cols <= ev.size(); row += cols) {
        auto arg = [&](const std::vector<double>& v) {
          return std::max_element(v.begin() + static_cast<std::ptrdiff_t>(row),
                                  v.begin() + static_cast<std::ptrdiff_t>(row + cols)) -
                 v.begin();
        };
        ++rows_;
        if (arg(ev) == arg(av)) ++agree_;
      }
    }
  }
}

void FidelityAccumulator::Fill(CodecMeasurement& m) const {
  // An infinite error (an overflow to inf, a NaN that was a number) is kept as the largest double,
  // which every format Scission writes can hold.
  constexpr double kHuge = std::numeric_limits<double>::max();
  double rel_l2 = broken_;
  for (size_t i = 0; i < diff2_.size(); ++i)
    rel_l2 = std::max(rel_l2, diff2_[i] == 0  ? 0
                              : norm2_[i] > 0 ? std::sqrt(diff2_[i] / norm2_[i])
                                              : std::numeric_limits<double>::infinity());
  m.max_abs_error = std::min(max_abs_, kHuge);
  m.rel_l2_error = std::min(rel_l2, kHuge);
  m.top1_agreement = rows_ > 0 ? static_cast<double>(agree_) / static_cast<double>(rows_) : -1;
  m.fidelity_inputs = inputs_;
}

}  // namespace scission::profile
