#include "profile/prepared.h"

#include "graph/partition.h"
#include "profile/open.h"
#include "profile/shapes.h"

namespace scission::profile {

PreparedModel PrepareModel(const std::string& path, const InputOptions& inputs,
                           const graph::AnalysisOptions& analysis_options,
                           const std::string& backend) {
  PreparedModel p;
  p.model = OpenModel(path, backend);
  p.analysis = graph::Analyze(p.model.proto, analysis_options);
  p.inputs = ResolveInputs(p.analysis.inputs, inputs, path);
  // Blocks are formed from costs at these inputs' shapes when the declared ones are dynamic.
  if (p.inputs.unavailable.empty() && analysis_options.node_costs.empty()) {
    auto costs = NodeCostsAtInputs(p.model, p.analysis, p.inputs.tensors, backend);
    if (!costs.empty()) {
      graph::AnalysisOptions at_shapes = analysis_options;
      at_shapes.node_costs = std::move(costs);
      p.analysis = graph::Analyze(p.model.proto, at_shapes);
    }
  }
  // Inputs too large to generate: only a run needs them (Tensors() says why); a model whose
  // shapes are all known needs no probe either.
  if (p.inputs.unavailable.empty())
    ResolveBlockShapes(p.model, p.analysis, p.inputs.tensors, backend);
  else
    ResolveBlockShapes(p.model, p.analysis, backend);
  p.partition = graph::PartitionFingerprint(p.analysis);
  return p;
}

}  // namespace scission::profile
