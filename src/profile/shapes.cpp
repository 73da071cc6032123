#include "profile/shapes.h"

#include <map>
#include <set>

#include "common/error.h"
#include "graph/cost.h"

namespace scission::profile {

onnx::ModelProto ExposeTensors(const onnx::ModelProto& model, const std::vector<std::string>& names,
                               const std::unordered_map<std::string, TensorSpec>& specs) {
  onnx::ModelProto exposed = model;
  std::set<std::string> existing;
  for (const auto& out : exposed.graph().output()) existing.insert(out.name());
  for (const auto& name : names) {
    if (!existing.insert(name).second) continue;
    auto* out = exposed.mutable_graph()->add_output();
    out->set_name(name);
    auto it = specs.find(name);
    if (it != specs.end() && it->second.dtype != DType::kUndefined)
      out->mutable_type()->mutable_tensor_type()->set_elem_type(
          static_cast<int32_t>(it->second.dtype));
  }
  return exposed;
}

namespace {

// `inputs` ordered like the session's inputs, by name.
std::vector<Tensor> InSessionOrder(const runtime::Session& session,
                                   const std::vector<Tensor>& inputs) {
  std::vector<Tensor> ordered;
  for (const auto& spec : session.inputs())
    for (const auto& t : inputs)
      if (t.spec.name == spec.name) ordered.push_back(t);
  return ordered;
}

bool AnyDynamicInput(const graph::GraphAnalysis& analysis) {
  for (const auto& in : analysis.inputs) {
    if (!in.rank_known) return true;
    for (int64_t d : in.shape)
      if (d < 0) return true;
  }
  return false;
}

int Probe(const graph::LoadedModel& model, graph::GraphAnalysis& analysis,
          const std::vector<Tensor>* given, const std::string& backend_name, CancelToken* cancel) {
  // Block outputs to measure, by name (one tensor can end several blocks): those whose size is
  // unknown, and with given inputs to a model with dynamic inputs every one, since sizes then
  // depend on the inputs. Sizes known but too large to count stay: a run could not fill them.
  const bool all = given && AnyDynamicInput(analysis);
  std::map<std::string, std::vector<TensorSpec*>> unknown;
  for (auto& block : analysis.blocks) {
    for (auto& out : block.outputs)
      if (out.bytes() == kSizeUnknown || (all && out.bytes() >= 0))
        unknown[out.name].push_back(&out);
    for (auto& in : block.inputs)
      if (in.bytes() == kSizeUnknown || (all && in.bytes() >= 0)) unknown[in.name].push_back(&in);
  }
  // Every activation tensor without a known type and rank too (models the ONNX library could not
  // infer, tensors with a type but no shape): a segment may start or end at any of them, and its
  // inputs need both. Values that are not tensors (sequences, maps, optionals) stay out: ONNX
  // Runtime cannot hand them over as tensors, and no cut carries them.
  const auto& graph = model.proto.graph();
  for (int node : analysis.order) {
    for (const auto& name : graph.node(node).output()) {
      if (name.empty() || analysis.non_tensors.count(name)) continue;
      auto it = analysis.specs.find(name);
      const bool known = it != analysis.specs.end() && it->second.dtype != DType::kUndefined &&
                         it->second.rank_known;
      if (!known) unknown[name];
    }
  }
  if (unknown.empty()) return 0;

  std::vector<std::string> names;
  for (const auto& [name, places] : unknown) names.push_back(name);
  onnx::ModelProto probe = ExposeTensors(model.proto, names, analysis.specs);
  auto backend = runtime::CreateBackend(backend_name);
  auto session = backend->Prepare(probe.SerializeAsString(), {}, model.label + " (shape probe)");
  std::vector<Tensor> inputs;
  if (given) {
    inputs = InSessionOrder(*session, *given);
  } else {
    for (size_t i = 0; i < session->inputs().size(); ++i)
      inputs.push_back(runtime::MakeRandomInput(session->inputs()[i], 1 + i));
  }
  int resolved = 0;
  for (const auto& t : session->Infer(inputs, cancel)) {
    auto it = unknown.find(t.spec.name);
    if (it == unknown.end()) continue;
    // Blocks get the observed spec: their sizes are those of this profile's inputs. The graph's
    // own spec stays as declared or inferred (a dynamic batch stays dynamic, so segments cut from
    // it take any batch); where it had no type or no shape, it gets the observed type and rank
    // with every dimension dynamic (ONNX Runtime shows an input without a shape as a scalar).
    auto& spec = analysis.specs[t.spec.name];
    if (spec.dtype == DType::kUndefined || !spec.rank_known) {
      spec.name = t.spec.name;
      spec.dtype = t.spec.dtype;
      spec.shape.assign(t.spec.shape.size(), -1);
      spec.rank_known = true;
    }
    for (TensorSpec* out : it->second) *out = t.spec;
    ++resolved;
  }
  return resolved;
}

}  // namespace

std::vector<double> NodeCostsAtInputs(const graph::LoadedModel& model,
                                      const graph::GraphAnalysis& analysis,
                                      const std::vector<Tensor>& inputs,
                                      const std::string& backend_name, CancelToken* cancel) {
  if (!AnyDynamicInput(analysis)) return {};
  auto specs = analysis.specs;
  if (model.onnx_checked) {
    // ONNX shape inference with the inputs' dimensions fixed costs no run and no memory; what it
    // leaves unknown (data-dependent shapes) the run below fills in.
    onnx::ModelProto fixed = model.proto;
    fixed.mutable_graph()->clear_value_info();
    for (auto& in : *fixed.mutable_graph()->mutable_input())
      for (const auto& t : inputs) {
        if (t.spec.name != in.name() || !in.type().has_tensor_type()) continue;
        auto* shape = in.mutable_type()->mutable_tensor_type()->mutable_shape();
        shape->clear_dim();
        for (int64_t d : t.spec.shape) shape->add_dim()->set_dim_value(d);
      }
    try {
      graph::InferShapes(fixed, model.label);
      for (const auto& info : fixed.graph().value_info())
        if (TensorSpec spec = graph::SpecFromValueInfo(info); spec.bytes() >= 0)
          specs[info.name()] = spec;
    } catch (const Error&) {
      // Shape inference refused the fixed shapes: the run below measures them all.
    }
  }
  for (const auto& t : inputs) specs[t.spec.name] = t.spec;
  std::vector<std::string> names;
  const auto& graph = model.proto.graph();
  for (int node : analysis.order)
    for (const auto& name : graph.node(node).output()) {
      if (name.empty() || analysis.non_tensors.count(name)) continue;
      auto it = specs.find(name);
      if (it == specs.end() || it->second.bytes() < 0) names.push_back(name);
    }
  if (!names.empty()) {
    onnx::ModelProto probe = ExposeTensors(model.proto, names, analysis.specs);
    auto backend = runtime::CreateBackend(backend_name);
    auto session = backend->Prepare(probe.SerializeAsString(), {}, model.label + " (cost probe)");
    for (const auto& t : session->Infer(InSessionOrder(*session, inputs), cancel)) {
      TensorSpec spec = t.spec;
      spec.rank_known = true;
      specs[t.spec.name] = spec;
    }
  }
  return graph::EstimateNodeCosts(model.proto, specs);
}

int ResolveBlockShapes(const graph::LoadedModel& model, graph::GraphAnalysis& analysis,
                       const std::string& backend_name, CancelToken* cancel) {
  return Probe(model, analysis, nullptr, backend_name, cancel);
}

int ResolveBlockShapes(const graph::LoadedModel& model, graph::GraphAnalysis& analysis,
                       const std::vector<Tensor>& inputs, const std::string& backend_name,
                       CancelToken* cancel) {
  return Probe(model, analysis, &inputs, backend_name, cancel);
}

}  // namespace scission::profile
