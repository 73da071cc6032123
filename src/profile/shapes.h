// Static shape inference cannot resolve every block output (vit_b_16's class-token Concat, whose
// shape comes from Expand/Where arithmetic; every model the ONNX library does not know, such as
// opset 18+ or com.microsoft operators). This fills the unknown ones from one real run.
#pragma once

#include <string>
#include <unordered_map>
#include <vector>

#include "common/cancel.h"
#include "graph/analysis.h"
#include "graph/model.h"
#include "runtime/backend.h"

namespace scission::profile {

// Runs the model once on a random input with every activation tensor whose type or shape is not
// fully known (block boundaries included) exposed as an extra graph output, and writes the
// observed specs into `analysis` (specs, block inputs and outputs). Does nothing when all are
// already static. Returns how many it resolved.
// A cancelled `cancel` stops the run (a worker's caller went away or its deadline passed).
int ResolveBlockShapes(const graph::LoadedModel& model, graph::GraphAnalysis& analysis,
                       const std::string& backend = runtime::kDefaultBackend,
                       CancelToken* cancel = nullptr);
// The same run on the given inputs (the model's input order), for models whose shapes depend on
// them: sizes at the user's --shape, not at a guessed 1.
int ResolveBlockShapes(const graph::LoadedModel& model, graph::GraphAnalysis& analysis,
                       const std::vector<Tensor>& inputs,
                       const std::string& backend = runtime::kDefaultBackend,
                       CancelToken* cancel = nullptr);

// Estimated node costs (graph/cost.h) at the given inputs' shapes, for a model whose declared
// inputs leave dimensions dynamic: its own inferred shapes would cost each node as if unknown (or
// at a guessed 1), and blocks would be formed from a wrong picture. One run on `inputs` with every
// activation tensor whose shape is not static exposed; the observed shapes feed
// EstimateNodeCosts. Empty when every input is static (the inferred shapes are the real ones).
std::vector<double> NodeCostsAtInputs(const graph::LoadedModel& model,
                                      const graph::GraphAnalysis& analysis,
                                      const std::vector<Tensor>& inputs,
                                      const std::string& backend = runtime::kDefaultBackend,
                                      CancelToken* cancel = nullptr);

// `model` with each of `names` that is not already a graph output added as one, so one run
// shows intermediate tensors. The element type comes from `specs` where known; otherwise it is
// left for ONNX Runtime to infer (a guessed type would make it refuse the model).
onnx::ModelProto ExposeTensors(const onnx::ModelProto& model, const std::vector<std::string>& names,
                               const std::unordered_map<std::string, TensorSpec>& specs);

}  // namespace scission::profile
