// Checks shared by tests that split models built in code: every way of cutting a model in two
// must give segments ONNX Runtime loads and whose chain reproduces the whole model.
#pragma once

#include <string>
#include <vector>

#include "common/tensor.h"
#include "graph/analysis.h"
#include "graph/model.h"

namespace scission::testing {

// Random inputs (MakeRandomInput) for every input of the model, seeded from `seed`.
std::vector<Tensor> RandomInputs(const graph::LoadedModel& model, uint64_t seed = 7);

// The whole model's outputs on `inputs` (ONNX Runtime, one thread).
std::vector<Tensor> RunWhole(const graph::LoadedModel& model, const std::vector<Tensor>& inputs);

// Splits the model in two at every block boundary (RunSegments) and at every position of the
// activation order (ExtractPositions: boundaries that carry several live tensors too), runs both
// halves and expects the whole model's outputs back (CompareOutputs). Returns the number of
// splits checked.
int ExpectEveryTwoWaySplitReproduces(const graph::LoadedModel& model,
                                     const graph::GraphAnalysis& analysis,
                                     const std::vector<Tensor>& inputs);

// Only the splits at block boundaries (what a plan can choose), for models too large to split at
// every position. Returns the number of splits checked.
int ExpectEveryBlockSplitReproduces(const graph::LoadedModel& model,
                                    const graph::GraphAnalysis& analysis,
                                    const std::vector<Tensor>& inputs);

}  // namespace scission::testing
