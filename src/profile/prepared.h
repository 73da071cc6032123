// A model made ready to measure or run at concrete inputs: loaded and checked, its inputs resolved
// (--shape, --input), analysed into blocks, and the block boundary sizes known at those inputs.
// Every verb that runs a model goes through this one path, so `inspect`, `benchmark`, `run` and
// the workers agree on shapes, partition and sizes.
#pragma once

#include <string>

#include "graph/analysis.h"
#include "graph/model.h"
#include "profile/inputs.h"
#include "runtime/backend.h"

namespace scission::profile {

struct PreparedModel {
  graph::LoadedModel model;
  graph::GraphAnalysis analysis;
  ResolvedInputs inputs;
  std::string partition;  // graph::PartitionFingerprint of `analysis`
};

// Loads with profile::OpenModel (ONNX Runtime must accept the model), then the rest.
PreparedModel PrepareModel(const std::string& path, const InputOptions& inputs,
                           const graph::AnalysisOptions& analysis_options = {},
                           const std::string& backend = runtime::kDefaultBackend);

}  // namespace scission::profile
