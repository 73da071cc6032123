#include "graph/model.h"

#include <limits>
#include <unordered_set>

#include <onnx/checker.h>
#include <onnx/defs/schema.h>
#include <onnx/shape_inference/implementation.h>

#include "common/error.h"
#include "common/files.h"
#include "common/tensor.h"

namespace scission::graph {

namespace {

constexpr int kMinOpset = 7;

bool IsDefaultDomain(const std::string& domain) { return domain.empty() || domain == "ai.onnx"; }

int DefaultOpset(const onnx::ModelProto& model, const std::string& label) {
  int version = -1;
  for (const auto& opset : model.opset_import())
    if (IsDefaultDomain(opset.domain())) version = static_cast<int>(opset.version());
  if (version < 0) throw BadInput("{}: no opset import for the default ONNX domain", label);
  return version;
}

// Initializers whose stored size disagrees with their dims crash runtimes later; catch them here.
void CheckInitializerSizes(const onnx::GraphProto& graph, const std::string& label) {
  for (const auto& init : graph.initializer()) {
    if (init.has_data_location() && init.data_location() == onnx::TensorProto::EXTERNAL)
      throw BadInput("{}: initializer '{}' uses external data, which is not supported", label,
                     init.name());
    int64_t count = 1;
    for (int64_t d : init.dims()) {
      if (d < 0)
        throw BadInput("{}: initializer '{}' has a negative dimension", label, init.name());
      if (d != 0 && count > std::numeric_limits<int64_t>::max() / d)
        throw BadInput("{}: initializer '{}' is absurdly large", label, init.name());
      count *= d;
    }
    size_t elem = DTypeSize(static_cast<DType>(init.data_type()));
    if (init.has_raw_data() && elem != 0 &&
        static_cast<int64_t>(init.raw_data().size()) != count * static_cast<int64_t>(elem))
      throw BadInput("{}: initializer '{}' holds {} bytes but its shape needs {}", label,
                     init.name(), init.raw_data().size(), count * static_cast<int64_t>(elem));
  }
}

// The checker accepts graphs whose outputs are never produced; a truncated file can look so.
void CheckOutputsProduced(const onnx::GraphProto& graph, const std::string& label) {
  std::unordered_set<std::string> produced;
  for (const auto& input : graph.input()) produced.insert(input.name());
  for (const auto& init : graph.initializer()) produced.insert(init.name());
  for (const auto& node : graph.node())
    for (const auto& out : node.output()) produced.insert(out);
  if (graph.output_size() == 0) throw BadInput("{}: graph has no outputs", label);
  for (const auto& out : graph.output())
    if (!produced.count(out.name()))
      throw BadInput("{}: graph output '{}' is produced by no node", label, out.name());
  if (graph.node_size() == 0) throw BadInput("{}: graph has no nodes", label);
}

}  // namespace

int MinSupportedOpset() { return kMinOpset; }

int MaxSupportedOpset() {
  const auto& map = onnx::OpSchemaRegistry::DomainToVersionRange::Instance().Map();
  auto it = map.find(onnx::ONNX_DOMAIN);
  return it == map.end() ? 17 : it->second.second;
}

void CheckModel(const onnx::ModelProto& model, const std::string& label) {
  try {
    onnx::checker::check_model(model);
  } catch (const std::exception& e) {
    throw BadInput("{}: ONNX checker: {}", label, e.what());
  }
}

LoadedModel ParseModel(std::string_view bytes, const std::string& label) {
  LoadedModel loaded;
  loaded.label = label;
  loaded.file_bytes = bytes.size();
  if (bytes.empty()) throw BadInput("{}: file is empty", label);
  if (bytes.size() > static_cast<size_t>(std::numeric_limits<int>::max()))
    throw BadInput("{}: larger than 2 GiB; models with external data are not supported", label);
  if (!loaded.proto.ParseFromArray(bytes.data(), static_cast<int>(bytes.size())))
    throw BadInput("{}: not an ONNX model (protobuf parse failed: truncated or corrupt file)",
                   label);
  if (!loaded.proto.has_graph() || loaded.proto.ir_version() <= 0)
    throw BadInput("{}: not an ONNX model (no graph or IR version)", label);

  int opset = DefaultOpset(loaded.proto, label);
  if (opset < kMinOpset || opset > MaxSupportedOpset())
    throw BadInput("{}: unsupported opset {} (supported: {}..{})", label, opset, kMinOpset,
                   MaxSupportedOpset());
  for (const auto& op : loaded.proto.opset_import())
    if (!IsDefaultDomain(op.domain()) && op.domain() != "ai.onnx.ml" &&
        op.domain() != "com.microsoft")
      throw BadInput("{}: unsupported operator domain '{}'", label, op.domain());

  CheckModel(loaded.proto, label);
  CheckInitializerSizes(loaded.proto.graph(), label);
  CheckOutputsProduced(loaded.proto.graph(), label);
  try {
    // Data propagation resolves Shape -> Gather -> Concat -> Reshape chains to static shapes.
    onnx::ShapeInferenceOptions options(/*check_type=*/false, /*strict_mode=*/0,
                                        /*data_prop=*/true);
    onnx::shape_inference::InferShapes(loaded.proto, onnx::OpSchemaRegistry::Instance(), options);
  } catch (const std::exception& e) {
    throw BadInput("{}: shape inference failed: {}", label, e.what());
  }
  loaded.sha256 = Sha256Hex(bytes);
  return loaded;
}

LoadedModel LoadModel(const std::string& path) {
  std::string bytes = ReadFileBytes(path);
  return ParseModel(bytes, path);
}

}  // namespace scission::graph
