// What a model is run with. `--shape NAME=1x3x640x640` fixes an input's dynamic dimensions and
// `--input NAME=FILE.npy` gives its values (the array's shape may define the input's shape);
// everything else is generated (floats uniform in [0, 1), integers 0, bools false), and every
// input gets a note saying which. A dynamic dimension nobody gave is an error that lists every
// input and shows the flag — except a leading batch dimension, which becomes 1 with a note.
// The resolved shapes are the key of a profile: one model benchmarked at two shapes has two.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "common/tensor.h"

namespace scission::profile {

struct InputOptions {
  std::vector<std::pair<std::string, std::vector<int64_t>>> shapes;  // --shape
  std::vector<std::pair<std::string, std::string>> files;            // --input (.npy)
  uint64_t seed = 1;
  // From the repeatable flags' values; BadInput naming the flag and value.
  static InputOptions Parse(const std::vector<std::string>& shape_flags,
                            const std::vector<std::string>& input_flags);
  bool empty() const { return shapes.empty() && files.empty(); }
};

struct ResolvedInputs {
  std::vector<Tensor> tensors;  // in the model's input order; every shape static
  // Why the tensors could not be generated (an input beyond MakeRandomInput's bound), else "".
  // Verbs that only look at the model (inspect) go on; those that run it call Tensors().
  std::string unavailable;
  // `tensors`, or BadInput `unavailable`.
  const std::vector<Tensor>& Tensors() const;
  std::vector<std::string> notes;  // one per input (what it holds), plus a batch note if any
  std::string shape_key;           // "name=1x3x640x640;sr=1": identifies the profile
  int64_t bytes = 0;               // all inputs together
};

// `model_inputs` are the model's declared inputs (-1 = dynamic). `label` names the model in
// errors.
ResolvedInputs ResolveInputs(const std::vector<TensorSpec>& model_inputs,
                             const InputOptions& options, const std::string& label);

// More values for the inputs `base` holds, for measuring codecs' fidelity (benchmark
// --fidelity-input NAME=PATH, repeatable). PATH is one .npy file or a directory whose .npy files,
// in name order, are one set each; inputs not named keep base's values. Every array must have the
// dtype and shape of base's tensor of that name, and every name must give the same number of
// arrays (at most kMaxFidelitySets); BadInput naming the flag and file otherwise.
inline constexpr size_t kMaxFidelitySets = 256;
std::vector<std::vector<Tensor>> ResolveFidelityInputs(const std::vector<Tensor>& base,
                                                       const std::vector<std::string>& flags);

// Shape key of fully static specs, the same text ResolveInputs gives.
std::string ShapeKey(const std::vector<TensorSpec>& inputs);
// "1x3x640x640" <-> dims. BadInput for anything but positive integers joined by 'x' ("" = a
// scalar).
std::vector<int64_t> ParseDims(const std::string& text, const std::string& what);
std::string DimsText(const std::vector<int64_t>& dims);
// Parses a shape key back into (name, dims) pairs.
std::vector<std::pair<std::string, std::vector<int64_t>>> ParseShapeKey(const std::string& key);
// True when every (name, dims) of `wanted` appears in `key` with the same dims.
bool ShapeKeyMatches(const std::string& key,
                     const std::vector<std::pair<std::string, std::vector<int64_t>>>& wanted);

}  // namespace scission::profile
