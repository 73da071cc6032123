#include "graph/model.h"

#include <charconv>
#include <climits>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <queue>
#include <set>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include <google/protobuf/io/coded_stream.h>
#include <onnx/checker.h>
#include <onnx/defs/schema.h>
#include <onnx/shape_inference/implementation.h>

#include "common/error.h"
#include "common/files.h"
#include "common/tensor.h"
#include "graph/analysis.h"

namespace scission::graph {

namespace {

namespace fs = std::filesystem;

constexpr int kMinOpset = 7;
// ONNX Runtime parses models with protobuf's default limit of 100 nested messages. Every subgraph
// level is three messages deeper (NodeProto, AttributeProto, GraphProto), so 24 levels reach
// depth 74 and leave room for the value types declared inside the deepest graph.
constexpr int kMaxSubgraphDepth = 24;
constexpr int kRuntimeRecursionLimit = 100;
// A second parse with this limit tells "nested too deep" (and how deep) from a corrupt file.
// Everything recursive that sees the model afterwards is bounded by the first limit.
constexpr int kDiagnosisRecursionLimit = 400;
// Protobuf cannot serialize 2 GiB or more, and segments and sessions are made from bytes.
constexpr int64_t kMaxModelBytes = INT_MAX;

bool IsDefaultDomain(const std::string& domain) { return domain.empty() || domain == "ai.onnx"; }

int DefaultOpset(const onnx::ModelProto& model, const std::string& label) {
  int version = -1;
  for (const auto& opset : model.opset_import())
    if (IsDefaultDomain(opset.domain())) version = static_cast<int>(opset.version());
  if (version < 0) throw BadInput("{}: no opset import for the default ONNX domain", label);
  return version;
}

// A string taken from the model, quoted, printable and bounded, for error messages.
std::string Quoted(std::string_view text) {
  constexpr size_t kShown = 120;
  std::string out = "'";
  for (unsigned char c : text.substr(0, kShown)) {
    if (c < 0x20 || c >= 0x7f || c == '\\' || c == '\'')
      out += fmt::format("\\x{:02x}", c);
    else
      out += static_cast<char>(c);
  }
  return out + (text.size() > kShown ? "'..." : "'");
}

// One tensor of the model and where it sits, for messages.
struct TensorSite {
  onnx::TensorProto* tensor = nullptr;
  const onnx::NodeProto* node = nullptr;  // holder of the attribute; null for initializers
  const std::string* attribute = nullptr;
};

std::string Describe(const TensorSite& site) {
  if (!site.tensor->name().empty()) return fmt::format("tensor {}", Quoted(site.tensor->name()));
  if (site.node == nullptr) return "unnamed initializer";
  return fmt::format("tensor in attribute {} of node {}", Quoted(*site.attribute),
                     Quoted(site.node->name().empty() ? site.node->op_type() : site.node->name()));
}

struct ModelTensors {
  std::vector<TensorSite> tensors;  // every TensorProto in every graph and subgraph
  int max_depth = 0;                // deepest subgraph (main graph 0)
};

// Walks the main graph, training graphs and every subgraph without recursion, so a model nested
// deeper than we accept is measured, not followed on the stack.
ModelTensors CollectTensors(onnx::ModelProto& model) {
  ModelTensors out;
  std::vector<std::pair<onnx::GraphProto*, int>> stack;
  if (model.has_graph()) stack.emplace_back(model.mutable_graph(), 0);
  for (auto& info : *model.mutable_training_info()) {
    if (info.has_initialization()) stack.emplace_back(info.mutable_initialization(), 0);
    if (info.has_algorithm()) stack.emplace_back(info.mutable_algorithm(), 0);
  }
  auto add_sparse = [&](onnx::SparseTensorProto* sparse, const TensorSite& site) {
    if (sparse->has_values())
      out.tensors.push_back({sparse->mutable_values(), site.node, site.attribute});
    if (sparse->has_indices())
      out.tensors.push_back({sparse->mutable_indices(), site.node, site.attribute});
  };
  while (!stack.empty()) {
    auto [graph, depth] = stack.back();
    stack.pop_back();
    out.max_depth = std::max(out.max_depth, depth);
    for (auto& init : *graph->mutable_initializer()) out.tensors.push_back({&init});
    for (auto& sparse : *graph->mutable_sparse_initializer()) add_sparse(&sparse, {});
    for (auto& node : *graph->mutable_node()) {
      for (auto& attr : *node.mutable_attribute()) {
        TensorSite site{nullptr, &node, &attr.name()};
        if (attr.has_t()) out.tensors.push_back({attr.mutable_t(), &node, &attr.name()});
        for (auto& t : *attr.mutable_tensors()) out.tensors.push_back({&t, &node, &attr.name()});
        if (attr.has_sparse_tensor()) add_sparse(attr.mutable_sparse_tensor(), site);
        for (auto& sparse : *attr.mutable_sparse_tensors()) add_sparse(&sparse, site);
        if (attr.has_g()) stack.emplace_back(attr.mutable_g(), depth + 1);
        for (auto& g : *attr.mutable_graphs()) stack.emplace_back(&g, depth + 1);
      }
    }
  }
  return out;
}

bool UsesExternalData(const onnx::TensorProto& tensor) {
  return (tensor.has_data_location() && tensor.data_location() == onnx::TensorProto::EXTERNAL) ||
         tensor.external_data_size() > 0;
}

std::string ExternalLocation(const onnx::TensorProto& tensor) {
  for (const auto& entry : tensor.external_data())
    if (entry.key() == "location") return entry.value();
  return "";
}

// The refusal names only what the model says, never what the file system holds, so it cannot
// tell a sender which paths exist on this machine.
void RefuseExternalData(const ModelTensors& all, const std::string& label) {
  for (const auto& site : all.tensors)
    if (UsesExternalData(*site.tensor))
      throw BadInput(
          "{}: {}: external data {} is not accepted in a model received as bytes (only a model "
          "file loaded from disk may keep tensor data in files beside it)",
          label, Describe(site), Quoted(ExternalLocation(*site.tensor)));
}

// Bytes the tensor's dims and type need; -1 when the type has no fixed size, -2 on overflow.
int64_t ExpectedTensorBytes(const onnx::TensorProto& tensor) {
  std::vector<int64_t> dims(tensor.dims().begin(), tensor.dims().end());
  TensorSpec spec{"", static_cast<DType>(tensor.data_type()), dims};
  return spec.bytes();
}

struct ExternalRef {
  std::string location;
  int64_t offset = 0;
  int64_t length = -1;  // -1: not given
};

ExternalRef ParseExternalRef(const TensorSite& site, const std::string& label) {
  const onnx::TensorProto& tensor = *site.tensor;
  ExternalRef ref;
  ref.location = ExternalLocation(tensor);
  auto fail = [&](const std::string& what) {
    return BadInput("{}: {}: external data {} {}", label, Describe(site), Quoted(ref.location),
                    what);
  };
  if (!tensor.has_data_location() || tensor.data_location() != onnx::TensorProto::EXTERNAL)
    throw fail("is listed but data_location is not EXTERNAL");
  for (const auto& entry : tensor.external_data()) {
    const std::string& key = entry.key();
    if (key == "location" || key == "checksum") continue;
    if (key != "offset" && key != "length")
      throw fail(fmt::format("has an unknown key {}", Quoted(key)));
    int64_t value = -1;
    const std::string& text = entry.value();
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || end != text.data() + text.size() || value < 0)
      throw fail(fmt::format("has {} {}, not a non-negative integer", key, Quoted(text)));
    (key == "offset" ? ref.offset : ref.length) = value;
  }
  if (ref.location.empty()) throw fail("has no location");
  if (ref.location.find('\0') != std::string::npos) throw fail("contains a NUL character");
  return ref;
}

// The file behind `ref`, resolved inside `dir` (canonical). Checks are on the path text first,
// then on the resolved file, so a symlink cannot lead outside the directory.
fs::path ResolveExternalFile(const ExternalRef& ref, const fs::path& dir,
                             const std::function<Error(const std::string&)>& fail) {
  fs::path relative(ref.location);
  if (relative.is_absolute())
    throw fail("is an absolute path; only files inside the model's directory are read");
  for (const auto& part : relative)
    if (part == "..") throw fail("leaves the model's directory ('..')");
  std::error_code ec;
  fs::path resolved = fs::canonical(dir / relative, ec);
  if (ec) throw fail("cannot be read: no such file in the model's directory");
  fs::path inside = resolved.lexically_relative(dir);
  if (inside.empty() || *inside.begin() == "..")
    throw fail("resolves (through a symbolic link) outside the model's directory");
  if (!fs::is_regular_file(resolved, ec)) throw fail("is not a regular file");
  return resolved;
}

// Reads every external tensor into raw_data, so the model no longer refers to any file.
void InlineExternalData(ModelTensors& all, const std::string& path, int64_t model_bytes,
                        const std::string& label) {
  fs::path dir;
  int64_t total = model_bytes;
  for (auto& site : all.tensors) {
    if (!UsesExternalData(*site.tensor)) continue;
    ExternalRef ref = ParseExternalRef(site, label);
    std::function<Error(const std::string&)> fail = [&](const std::string& what) {
      return BadInput("{}: {}: external data {} {}", label, Describe(site), Quoted(ref.location),
                      what);
    };
    if (dir.empty()) {
      fs::path parent = fs::path(path).parent_path();
      std::error_code ec;
      dir = fs::canonical(parent.empty() ? fs::path(".") : parent, ec);
      if (ec) throw fail("cannot be read: the model's directory cannot be resolved");
    }
    fs::path file = ResolveExternalFile(ref, dir, fail);
    int64_t expected = ExpectedTensorBytes(*site.tensor);
    if (expected == kSizeTooLarge) throw fail("is for a tensor whose size overflows 64 bits");
    if (expected < 0)
      throw fail(fmt::format("is for a tensor of type {}, which cannot be stored externally here",
                             DTypeName(static_cast<DType>(site.tensor->data_type()))));
    if (ref.length >= 0 && ref.length != expected)
      throw fail(
          fmt::format("has length {} but the tensor's shape needs {} bytes", ref.length, expected));
    std::error_code ec;
    const auto file_size = static_cast<int64_t>(fs::file_size(file, ec));
    if (ec) throw fail("cannot be read: its size is unknown");
    if (ref.offset > file_size || expected > file_size - ref.offset)
      throw fail(fmt::format("needs {} bytes at offset {} but the file holds {}", expected,
                             ref.offset, file_size));
    total += expected;
    if (total > kMaxModelBytes)
      throw fail("makes the model larger than 2 GiB with its data inlined, which is not supported");
    std::string bytes(static_cast<size_t>(expected), '\0');
    std::ifstream in(file, std::ios::binary);
    in.seekg(ref.offset);
    in.read(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    if (!in || in.gcount() != static_cast<std::streamsize>(bytes.size()))
      throw fail("cannot be read: read failed");
    onnx::TensorProto& tensor = *site.tensor;
    tensor.clear_external_data();
    tensor.clear_data_location();
    tensor.set_raw_data(std::move(bytes));
  }
}

// Tensors whose stored size disagrees with their dims crash runtimes later; catch them here.
void CheckTensorSizes(const ModelTensors& all, const std::string& label) {
  for (const auto& site : all.tensors) {
    const onnx::TensorProto& tensor = *site.tensor;
    for (int64_t d : tensor.dims())
      if (d < 0) throw BadInput("{}: {} has a negative dimension", label, Describe(site));
    int64_t expected = ExpectedTensorBytes(tensor);
    if (expected == kSizeTooLarge)
      throw BadInput("{}: {} is absurdly large (its size overflows 64 bits)", label,
                     Describe(site));
    if (tensor.has_raw_data() && expected >= 0 &&
        static_cast<int64_t>(tensor.raw_data().size()) != expected)
      throw BadInput("{}: {} holds {} bytes but its shape needs {}", label, Describe(site),
                     tensor.raw_data().size(), expected);
  }
}

// The checker accepts graphs whose outputs are never produced; a truncated file can look so.
void CheckOutputsProduced(const onnx::GraphProto& graph, const std::string& label) {
  std::unordered_set<std::string> produced;
  for (const auto& input : graph.input()) produced.insert(input.name());
  for (const auto& init : graph.initializer()) produced.insert(init.name());
  for (const auto& sparse : graph.sparse_initializer()) produced.insert(sparse.values().name());
  for (const auto& node : graph.node())
    for (const auto& out : node.output()) produced.insert(out);
  if (graph.output_size() == 0) throw BadInput("{}: graph has no outputs", label);
  for (const auto& out : graph.output())
    if (!produced.count(out.name()))
      throw BadInput("{}: graph output '{}' is produced by no node", label, out.name());
  if (graph.node_size() == 0) throw BadInput("{}: graph has no nodes", label);
}

bool ParseWithLimit(std::string_view bytes, int recursion_limit, onnx::ModelProto& proto) {
  google::protobuf::io::CodedInputStream input(reinterpret_cast<const uint8_t*>(bytes.data()),
                                               static_cast<int>(bytes.size()));
  input.SetRecursionLimit(recursion_limit);
  return proto.ParseFromCodedStream(&input) && input.ConsumedEntireMessage();
}

// Parses with ONNX Runtime's nesting limit, so every model accepted here is one it can read.
void ParseProto(std::string_view bytes, onnx::ModelProto& proto, const std::string& label) {
  if (ParseWithLimit(bytes, kRuntimeRecursionLimit, proto)) return;
  onnx::ModelProto deep;
  if (!ParseWithLimit(bytes, kDiagnosisRecursionLimit, deep))
    throw BadInput("{}: not an ONNX model (protobuf parse failed: truncated or corrupt file)",
                   label);
  int depth = CollectTensors(deep).max_depth;
  if (depth > kMaxSubgraphDepth)
    throw BadInput("{}: subgraphs nested {} deep; at most {} are supported", label, depth,
                   kMaxSubgraphDepth);
  throw BadInput(
      "{}: protobuf messages nested more than {} deep (deeply nested types), which ONNX Runtime "
      "cannot read",
      label, kRuntimeRecursionLimit);
}

// Scission's structural checks, in an order that lets nothing recursive see an unchecked model:
// nesting depth and external data before the ONNX checker (which would otherwise look up
// external files itself and answer differently for paths that exist).
void CheckStructure(onnx::ModelProto& proto, std::string_view bytes, const std::string& label,
                    ExternalData external, const std::string& model_path) {
  if (!proto.has_graph() || proto.ir_version() <= 0)
    throw BadInput("{}: not an ONNX model (no graph or IR version)", label);
  // ONNX Runtime inlines model-local functions at every call; functions calling functions
  // multiply without bound, and segments do not carry them either.
  if (proto.functions_size() > 0)
    throw BadInput("{}: model-local functions ({}) are not supported", label,
                   Quoted(proto.functions(0).name()));
  ModelTensors all = CollectTensors(proto);
  if (all.max_depth > kMaxSubgraphDepth)
    throw BadInput("{}: subgraphs nested {} deep; at most {} are supported", label, all.max_depth,
                   kMaxSubgraphDepth);
  if (external == ExternalData::kRefuse) RefuseExternalData(all, label);
  CheckTensorSizes(all, label);
  if (external == ExternalData::kFromModelDirectory)
    InlineExternalData(all, model_path, static_cast<int64_t>(bytes.size()), label);
}

// Every graph of the model: the main graph first, then subgraphs level by level.
std::vector<const onnx::GraphProto*> AllGraphs(const onnx::ModelProto& model) {
  std::vector<const onnx::GraphProto*> graphs = {&model.graph()};
  for (size_t i = 0; i < graphs.size(); ++i)
    for (const auto& node : graphs[i]->node())
      for (const auto& attr : node.attribute()) {
        if (attr.has_g()) graphs.push_back(&attr.g());
        for (const auto& g : attr.graphs()) graphs.push_back(&g);
      }
  return graphs;
}

std::string NormalDomain(const std::string& domain) {
  return IsDefaultDomain(domain) ? std::string(onnx::ONNX_DOMAIN) : domain;
}

// Every operator domain some node uses, in the main graph or any subgraph.
std::set<std::string> UsedDomains(const onnx::ModelProto& model) {
  std::set<std::string> used;
  for (const auto* graph : AllGraphs(model))
    for (const auto& node : graph->node()) used.insert(NormalDomain(node.domain()));
  return used;
}

// Exporters declare domains they never use (e.g. 'ai.onnx.training'); they mean nothing to the
// model, so they are dropped instead of refused (segments copy the imports that remain). The
// default domain stays: it fixes the meaning of the model's standard operators.
void DropUnusedOpsetImports(onnx::ModelProto& model) {
  std::set<std::string> used = UsedDomains(model);
  auto* imports = model.mutable_opset_import();
  for (int i = imports->size() - 1; i >= 0; --i) {
    const std::string& domain = imports->Get(i).domain();
    if (!IsDefaultDomain(domain) && !used.count(domain)) imports->DeleteSubrange(i, 1);
  }
}

// Puts the nodes of `graph` in Kahn order with ties broken by file index (the order Analyze
// uses), so an already sorted graph keeps its order. Only tensors produced by this graph's own
// nodes are dependencies; everything else comes from inputs, initializers or an outer scope.
// Returns false, leaving the graph as it is, when the nodes form a cycle.
bool SortNodes(onnx::GraphProto& graph) {
  const int count = graph.node_size();
  std::unordered_map<std::string, int> producer;
  for (int i = 0; i < count; ++i)
    for (const auto& out : graph.node(i).output())
      if (!out.empty()) producer.emplace(out, i);
  std::vector<int> pending(count, 0);
  std::vector<std::vector<int>> consumers(count);
  for (int i = 0; i < count; ++i) {
    std::unordered_set<int> seen;
    for (const auto& in : NodeInputs(graph.node(i))) {
      auto it = producer.find(in);
      if (in.empty() || it == producer.end() || !seen.insert(it->second).second) continue;
      ++pending[i];
      consumers[it->second].push_back(i);
    }
  }
  std::priority_queue<int, std::vector<int>, std::greater<>> ready;
  for (int i = 0; i < count; ++i)
    if (pending[i] == 0) ready.push(i);
  std::vector<int> order;
  while (!ready.empty()) {
    int i = ready.top();
    ready.pop();
    order.push_back(i);
    for (int c : consumers[i])
      if (--pending[c] == 0) ready.push(c);
  }
  if (static_cast<int>(order.size()) != count) return false;
  if (std::is_sorted(order.begin(), order.end())) return true;
  google::protobuf::RepeatedPtrField<onnx::NodeProto> sorted;
  for (int i : order) *sorted.Add() = std::move(*graph.mutable_node(i));
  graph.mutable_node()->Swap(&sorted);
  return true;
}

// Sorts every graph, innermost first: a node's reads include what its subgraphs read from
// outside them, which is only known once those subgraphs are in order.
void SortAllGraphs(onnx::ModelProto& model, const std::string& label) {
  std::vector<const onnx::GraphProto*> graphs = AllGraphs(model);
  for (auto it = graphs.rbegin(); it != graphs.rend(); ++it)
    // The graphs belong to `model`, which this function may change.
    if (!SortNodes(const_cast<onnx::GraphProto&>(**it)))
      throw BadInput("{}: {} has a cycle (its nodes cannot be put in an order)", label,
                     *it == &model.graph() ? std::string("graph")
                                           : fmt::format("subgraph {}", Quoted((*it)->name())));
}

// The checker and shape inference take the model as it is: a tensor written by two nodes would
// make the analysis pick one of them silently.
void CheckSingleAssignment(const onnx::GraphProto& graph, const std::string& label) {
  std::unordered_set<std::string> defined;
  for (const auto& input : graph.input()) defined.insert(input.name());
  for (const auto& init : graph.initializer()) defined.insert(init.name());
  for (const auto& sparse : graph.sparse_initializer()) defined.insert(sparse.values().name());
  for (const auto& node : graph.node())
    for (const auto& out : node.output())
      if (!out.empty() && !defined.insert(out).second)
        throw BadInput("{}: tensor {} is produced more than once", label, Quoted(out));
}

// `model_path` locates external data (kFromModelDirectory only).
LoadedModel ParseModelWith(std::string_view bytes, const std::string& label, ExternalData external,
                           const std::string& model_path) {
  LoadedModel loaded;
  loaded.label = label;
  loaded.file_bytes = bytes.size();
  if (bytes.empty()) throw BadInput("{}: file is empty", label);
  if (bytes.size() > static_cast<size_t>(kMaxModelBytes))
    throw BadInput("{}: larger than 2 GiB, which protobuf cannot hold", label);
  ParseProto(bytes, loaded.proto, label);
  CheckStructure(loaded.proto, bytes, label, external, model_path);

  // The newest opset is whatever ONNX Runtime accepts (profile::ValidateWithRuntime); the
  // oldest is the oldest it runs.
  int opset = DefaultOpset(loaded.proto, label);
  if (opset < kMinOpset)
    throw BadInput("{}: opset {} is older than the oldest supported ({})", label, opset, kMinOpset);
  DropUnusedOpsetImports(loaded.proto);
  SortAllGraphs(loaded.proto, label);
  loaded.onnx_checked = KnownToOnnxLibrary(loaded.proto);
  if (loaded.onnx_checked) CheckModel(loaded.proto, label);
  CheckSingleAssignment(loaded.proto.graph(), label);
  CheckOutputsProduced(loaded.proto.graph(), label);
  if (loaded.onnx_checked) InferShapes(loaded.proto, label);
  // A loaded model is one that can be split; say so now, with the file's name, rather than in
  // whichever verb analyzes it first.
  try {
    Analyze(loaded.proto);
  } catch (const Error& e) {
    throw BadInput("{}: {}", label, e.what());
  }
  loaded.sha256 = Sha256Hex(bytes);
  return loaded;
}

}  // namespace

void InferShapes(onnx::ModelProto& model, const std::string& label) {
  try {
    // Data propagation resolves Shape -> Gather -> Concat -> Reshape chains to static shapes.
    onnx::ShapeInferenceOptions options(/*check_type=*/false, /*strict_mode=*/0,
                                        /*data_prop=*/true);
    onnx::shape_inference::InferShapes(model, onnx::OpSchemaRegistry::Instance(), options);
  } catch (const std::exception& e) {
    throw BadInput("{}: shape inference failed: {}", label, e.what());
  }
}

int MinSupportedOpset() { return kMinOpset; }

int OnnxLibraryMaxOpset() {
  const auto& map = onnx::OpSchemaRegistry::DomainToVersionRange::Instance().Map();
  auto it = map.find(onnx::ONNX_DOMAIN);
  return it == map.end() ? 17 : it->second.second;
}

int MaxSubgraphDepth() { return kMaxSubgraphDepth; }

void CheckModel(const onnx::ModelProto& model, const std::string& label) {
  try {
    onnx::checker::check_model(model);
  } catch (const std::exception& e) {
    throw BadInput("{}: ONNX checker: {}", label, e.what());
  }
}

// Shape inference of the ONNX library (1.12) reads freed memory on nodes it has no schema for,
// and applies its own newest schema to operators whose signature changed in later opsets; the
// checker refuses what it does not know. Both run only where every operator is one it knows at
// the model's opset.
bool KnownToOnnxLibrary(const onnx::ModelProto& model) {
  if (model.ir_version() > onnx::Version::IR_VERSION) return false;
  const auto& ranges = onnx::OpSchemaRegistry::DomainToVersionRange::Instance().Map();
  std::unordered_map<std::string, int> imported;
  for (const auto& opset : model.opset_import()) {
    std::string domain = NormalDomain(opset.domain());
    auto range = ranges.find(domain);
    if (range == ranges.end() || opset.version() < range->second.first ||
        opset.version() > range->second.second)
      return false;
    imported[domain] = static_cast<int>(opset.version());
  }
  for (const auto* graph : AllGraphs(model))
    for (const auto& node : graph->node()) {
      std::string domain = NormalDomain(node.domain());
      auto version = imported.find(domain);
      if (version == imported.end() ||
          onnx::OpSchemaRegistry::Schema(node.op_type(), version->second, domain) == nullptr)
        return false;
    }
  return true;
}

LoadedModel ParseModel(std::string_view bytes, const std::string& label) {
  return ParseModelWith(bytes, label, ExternalData::kRefuse, "");
}

LoadedModel LoadModel(const std::string& path, ExternalData external) {
  std::string bytes = ReadFileBytes(path);
  return ParseModelWith(bytes, path, external, path);
}

}  // namespace scission::graph
