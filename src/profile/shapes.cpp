#include "profile/shapes.h"

#include <map>
#include <set>

namespace scission::profile {

int ResolveBlockShapes(const graph::LoadedModel& model, graph::GraphAnalysis& analysis,
                       const std::string& backend_name, CancelToken* cancel) {
  // Every block output whose size is unknown, by name (one tensor can end several blocks). Sizes
  // that are known but too large to count stay as they are: a run could not fill them anyway.
  std::map<std::string, std::vector<TensorSpec*>> unknown;
  for (auto& block : analysis.blocks)
    for (auto& out : block.outputs)
      if (out.bytes() == kSizeUnknown) unknown[out.name].push_back(&out);
  if (unknown.empty()) return 0;

  onnx::ModelProto probe = model.proto;
  std::set<std::string> existing;
  for (const auto& out : probe.graph().output()) existing.insert(out.name());
  for (const auto& [name, places] : unknown) {
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
  for (const auto& t : session->Infer(inputs, cancel)) {
    auto it = unknown.find(t.spec.name);
    if (it == unknown.end()) continue;
    analysis.specs[t.spec.name] = t.spec;
    for (TensorSpec* out : it->second) *out = t.spec;
    ++resolved;
  }
  return resolved;
}

}  // namespace scission::profile
