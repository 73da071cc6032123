#include "profile/shapes.h"

#include <set>

namespace scission::profile {

int ResolveBlockShapes(const graph::LoadedModel& model, graph::GraphAnalysis& analysis,
                       const std::string& backend_name) {
  std::set<std::string> unknown;
  for (const auto& block : analysis.blocks)
    for (const auto& out : block.outputs)
      if (out.bytes() < 0) unknown.insert(out.name);
  if (unknown.empty()) return 0;

  onnx::ModelProto probe = model.proto;
  std::set<std::string> existing;
  for (const auto& out : probe.graph().output()) existing.insert(out.name());
  for (const auto& name : unknown) {
    if (existing.count(name)) continue;
    auto* out = probe.mutable_graph()->add_output();
    out->set_name(name);
    auto it = analysis.specs.find(name);
    out->mutable_type()->mutable_tensor_type()->set_elem_type(
        it != analysis.specs.end() ? static_cast<int32_t>(it->second.dtype) : 1);
  }
  auto backend = runtime::CreateBackend(backend_name);
  auto session = backend->Prepare(probe.SerializeAsString(), {}, model.label + " (shape probe)");
  std::vector<Tensor> inputs;
  for (size_t i = 0; i < session->inputs().size(); ++i)
    inputs.push_back(runtime::MakeRandomInput(session->inputs()[i], 1 + i));
  int resolved = 0;
  for (const auto& t : runtime::RunOnce(*session, inputs)) {
    if (!unknown.count(t.spec.name)) continue;
    TensorSpec spec = t.spec;
    analysis.specs[spec.name] = spec;
    for (auto& block : analysis.blocks)
      for (auto& out : block.outputs)
        if (out.name == spec.name) out = spec;
    ++resolved;
  }
  return resolved;
}

}  // namespace scission::profile
