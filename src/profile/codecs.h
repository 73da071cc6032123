// What each codec does to the tensors at each block boundary of a benchmark (DESIGN.md "Codecs"):
// bytes on the wire, encode and decode time on this machine, and for lossy codecs the fidelity of
// the model's final outputs when that codec is applied at that cut.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "codec/codec.h"
#include "common/tensor.h"

namespace scission::profile {

struct CodecMeasurement {
  int boundary = 0;  // 0 = the model inputs, b = the outputs of block b - 1, blocks = final outputs
  std::string codec;
  int64_t raw_bytes = 0, bytes = 0;     // the boundary's tensors before and after encoding
  double encode_ms = 0, decode_ms = 0;  // medians of `repeats` runs over all its tensors
  // Fidelity of the model's final outputs with the codec at this cut; -1 = not measured
  // (lossless codecs are exact: 0). max_abs_error is the worst over inputs and outputs;
  // rel_l2_error the worst over outputs of each output's error pooled over the inputs
  // (sqrt(Σ‖ŷ − y‖² / Σ‖y‖²)), so an input whose output is near zero everywhere (a detector's map
  // of a photograph with nothing in it) does not make a tiny absolute error look huge.
  double max_abs_error = -1;
  double rel_l2_error = -1;
  // Fraction of inputs (and rows) whose arg-max class agrees, over outputs that look like class
  // scores (float, rank 2, at least 2 columns); -1 when no output looks like that.
  double top1_agreement = -1;
  int fidelity_inputs = 0;  // input sets the fidelity is over
};

// Bytes, encode and decode time of `codec` on `tensors` (one boundary), medians of `repeats`
// timed runs after one untimed run. Internal error if decoding does not give the tensors back
// (lossless) or their specs (lossy): the codec itself would be broken.
CodecMeasurement MeasureCodec(const codec::Codec& codec, const std::vector<Tensor>& tensors,
                              int repeats);

// decode(encode(t)) for every tensor: what the receiver of a hop with this codec sees.
std::vector<Tensor> RoundTrip(const codec::Codec& codec, const std::vector<Tensor>& tensors);

// Accumulates the fidelity of approximate final outputs against exact ones over several input
// sets: worst max abs error, relative L2 error per float output pooled over the sets (worst
// output), other outputs an error of +inf when they differ; arg-max agreement of class scores.
class FidelityAccumulator {
 public:
  void Add(const std::vector<Tensor>& exact, const std::vector<Tensor>& approx);
  // Writes max_abs_error, rel_l2_error, top1_agreement and fidelity_inputs.
  void Fill(CodecMeasurement& m) const;

 private:
  double max_abs_ = 0, broken_ = 0;    // broken_: +inf once an output does not match
  std::vector<double> diff2_, norm2_;  // per output, summed over the sets
  int64_t rows_ = 0, agree_ = 0;
  int inputs_ = 0;
};

}  // namespace scission::profile
