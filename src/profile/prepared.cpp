#include "profile/prepared.h"

#include "graph/partition.h"
#include "profile/shapes.h"

namespace scission::profile {

PreparedModel PrepareModel(const std::string& path, const InputOptions& inputs,
                           const graph::AnalysisOptions& analysis_options) {
  PreparedModel p;
  p.model = graph::LoadModel(path);
  p.analysis = graph::Analyze(p.model.proto, analysis_options);
  p.inputs = ResolveInputs(p.analysis.inputs, inputs, path);
  ResolveBlockShapes(p.model, p.analysis, p.inputs.tensors);
  p.partition = graph::PartitionFingerprint(p.analysis);
  return p;
}

}  // namespace scission::profile
