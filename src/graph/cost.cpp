#include "graph/cost.h"

#include <algorithm>
#include <functional>
#include <optional>

namespace scission::graph {

namespace {

using Shape = std::vector<int64_t>;

// Subgraph bodies nest at most 24 levels in a loaded model; deeper ones (only possible for a
// model that was never loaded) count one node cost per body node.
constexpr int kMaxDepth = 32;

// Known shapes of one graph, falling back to the enclosing graph's for outer-scope names.
class Scope {
 public:
  Scope(const onnx::GraphProto& graph, const Scope* outer) : graph_(graph), outer_(outer) {}

  void Add(const std::string& name, Shape shape) {
    shapes_.insert_or_assign(name, std::move(shape));
  }
  void AddDeclared(const onnx::GraphProto& graph);

  // The shape when every dimension is known.
  std::optional<Shape> Find(const std::string& name) const {
    if (auto it = shapes_.find(name); it != shapes_.end()) return it->second;
    return outer_ ? outer_->Find(name) : std::nullopt;
  }
  std::optional<double> Elements(const std::string& name) const {
    auto shape = Find(name);
    if (!shape) return std::nullopt;
    double count = 1;
    for (int64_t d : *shape) count *= static_cast<double>(d);
    return count;
  }
  // The value of a scalar int64 initializer (a Loop's trip count), if the graph has one.
  std::optional<int64_t> ScalarInitializer(const std::string& name) const;
  const Scope* outer() const { return outer_; }

 private:
  const onnx::GraphProto& graph_;
  const Scope* outer_;
  std::unordered_map<std::string, Shape> shapes_;
};

bool FullyKnown(const onnx::TypeProto& type) {
  if (!type.has_tensor_type() || !type.tensor_type().has_shape()) return false;
  for (const auto& dim : type.tensor_type().shape().dim())
    if (!dim.has_dim_value() || dim.dim_value() < 0) return false;
  return true;
}

Shape ShapeOf(const onnx::TypeProto& type) {
  Shape shape;
  for (const auto& dim : type.tensor_type().shape().dim()) shape.push_back(dim.dim_value());
  return shape;
}

void Scope::AddDeclared(const onnx::GraphProto& graph) {
  for (const auto& init : graph.initializer())
    shapes_.try_emplace(init.name(), Shape(init.dims().begin(), init.dims().end()));
  for (const auto* list : {&graph.input(), &graph.output(), &graph.value_info()})
    for (const auto& info : *list)
      if (FullyKnown(info.type())) shapes_.try_emplace(info.name(), ShapeOf(info.type()));
}

std::optional<int64_t> Scope::ScalarInitializer(const std::string& name) const {
  for (const auto& init : graph_.initializer()) {
    if (init.name() != name) continue;
    if (init.data_type() != onnx::TensorProto::INT64) return std::nullopt;
    if (init.int64_data_size() == 1) return init.int64_data(0);
    if (init.raw_data().size() == sizeof(int64_t)) {
      int64_t value = 0;
      std::copy_n(init.raw_data().data(), sizeof(value), reinterpret_cast<char*>(&value));
      return value;  // ONNX raw data is little-endian, as is every host Scission builds for
    }
    return std::nullopt;
  }
  return outer_ ? outer_->ScalarInitializer(name) : std::nullopt;
}

int64_t IntAttr(const onnx::NodeProto& node, const std::string& name, int64_t fallback) {
  for (const auto& attr : node.attribute())
    if (attr.name() == name) return attr.i();
  return fallback;
}

const onnx::AttributeProto* FindAttr(const onnx::NodeProto& node, const std::string& name) {
  for (const auto& attr : node.attribute())
    if (attr.name() == name) return &attr;
  return nullptr;
}

std::string Input(const onnx::NodeProto& node, int i) {
  return i < node.input_size() ? node.input(i) : std::string();
}

double Product(const Shape& shape, size_t from) {
  double p = 1;
  for (size_t i = from; i < shape.size(); ++i) p *= static_cast<double>(shape[i]);
  return p;
}

using Estimate = std::optional<double>;

// Elements every input and output holds; an unknown output is taken to be as large as the
// largest input (element-wise ops keep or broadcast to it).
Estimate ElementsTouched(const onnx::NodeProto& node, const Scope& scope) {
  double total = 0, largest_input = -1;
  for (const auto& in : node.input()) {
    if (in.empty()) continue;
    auto count = scope.Elements(in);
    if (!count) continue;
    total += *count;
    largest_input = std::max(largest_input, *count);
  }
  for (const auto& out : node.output()) {
    if (out.empty()) continue;
    auto count = scope.Elements(out);
    if (!count && largest_input < 0) return std::nullopt;
    total += count ? *count : largest_input;
  }
  return kElementCost * total;
}

// Weight [M, C/group, k...]: each output element reads C/group x k... inputs.
Estimate ConvCost(const onnx::NodeProto& node, const Scope& scope, int weight_input) {
  auto weight = scope.Find(Input(node, weight_input));
  auto out = scope.Elements(node.output(0));
  if (!weight || weight->size() < 2 || !out) return std::nullopt;
  return *out * Product(*weight, 1);
}

// Weight [C, M/group, k...]: each input element is scattered to M/group x k... outputs.
Estimate ConvTransposeCost(const onnx::NodeProto& node, const Scope& scope) {
  auto weight = scope.Find(Input(node, 1));
  auto in = scope.Elements(Input(node, 0));
  if (!weight || weight->size() < 2 || !in) return std::nullopt;
  return *in * Product(*weight, 1);
}

// Output elements (M x N, batched) x K, K being A's inner dimension.
Estimate MatMulCost(const onnx::NodeProto& node, const Scope& scope, int a_input, bool gemm) {
  auto a = scope.Find(Input(node, a_input));
  auto out = scope.Elements(node.output(0));
  if (!a || a->empty() || !out) return std::nullopt;
  bool transposed = gemm && IntAttr(node, "transA", 0) != 0 && a->size() == 2;
  return *out * static_cast<double>(transposed ? (*a)[0] : a->back());
}

// Sequence length of [B, S, D] or [B, heads, S, d].
std::optional<double> SequenceLength(const Shape& shape) {
  if (shape.size() == 3) return static_cast<double>(shape[1]);
  if (shape.size() == 4) return static_cast<double>(shape[2]);
  return std::nullopt;
}

// Scores and weighted sum: 2 x |Q| x L for a key length L.
Estimate AttentionCore(const Scope& scope, const std::string& query, const std::string& key) {
  auto q = scope.Elements(query);
  auto k = scope.Find(key);
  auto length = k ? SequenceLength(*k) : std::nullopt;
  if (!q || !length) return std::nullopt;
  return 2 * *q * *length;
}

// com.microsoft Attention: input [B, S, D] x packed QKV weight [D, 3H], then the core.
Estimate PackedAttentionCost(const onnx::NodeProto& node, const Scope& scope) {
  auto in = scope.Find(Input(node, 0));
  auto weight = scope.Find(Input(node, 1));
  if (!in || in->size() != 3 || !weight || weight->size() != 2) return std::nullopt;
  double tokens = static_cast<double>((*in)[0] * (*in)[1]);
  double projections = tokens * static_cast<double>((*weight)[0] * (*weight)[1]);
  double core = 2 * tokens * static_cast<double>((*in)[1]) * static_cast<double>((*weight)[1]) / 3;
  return projections + core;
}

// X [steps, batch, input] (or batch first); per step and batch every W and R weight is used.
Estimate RecurrentCost(const onnx::NodeProto& node, const Scope& scope) {
  auto x = scope.Find(Input(node, 0));
  auto w = scope.Elements(Input(node, 1));
  auto r = scope.Elements(Input(node, 2));
  if (!x || x->size() != 3 || !w || !r) return std::nullopt;
  return static_cast<double>((*x)[0] * (*x)[1]) * (*w + *r);
}

Estimate PoolCost(const onnx::NodeProto& node, const Scope& scope) {
  auto out = scope.Elements(node.output(0));
  const auto* kernel = FindAttr(node, "kernel_shape");
  if (!out || !kernel) return std::nullopt;
  double window = 1;
  for (int64_t k : kernel->ints()) window *= static_cast<double>(k);
  return kElementCost * *out * window;
}

double GraphCost(const onnx::GraphProto& graph, const Scope* outer, int depth);

// If runs one branch: the costlier one. Loop and Scan run the body once per iteration.
Estimate ControlFlowCost(const onnx::NodeProto& node, const Scope& scope, int depth) {
  double body = 0;
  for (const auto& attr : node.attribute())
    if (attr.has_g()) body = std::max(body, GraphCost(attr.g(), &scope, depth + 1));
  if (node.op_type() == "Loop") {
    auto trips = scope.ScalarInitializer(Input(node, 0));
    return body * static_cast<double>(trips && *trips > 0 ? *trips : 1);
  }
  if (node.op_type() == "Scan") {
    const int scan_inputs = static_cast<int>(IntAttr(node, "num_scan_inputs", 1));
    auto first = scope.Find(Input(node, node.input_size() - scan_inputs));
    int64_t axis = 0;
    if (const auto* axes = FindAttr(node, "scan_input_axes"); axes && axes->ints_size() > 0)
      axis = axes->ints(0);
    if (first && axis < 0) axis += static_cast<int64_t>(first->size());
    if (first && axis >= 0 && axis < static_cast<int64_t>(first->size()))
      return body * static_cast<double>((*first)[static_cast<size_t>(axis)]);
  }
  return body;
}

bool IsViewOp(const std::string& op) {
  static const std::unordered_set<std::string> kViews = {
      "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity", "Dropout", "Shape", "Size"};
  return kViews.count(op) > 0;
}

// The work of one node beyond kNodeCost; nullopt when its shapes are not known.
Estimate NodeWork(const onnx::NodeProto& node, const Scope& scope, int depth) {
  const std::string& op = node.op_type();
  if (op == "Conv" || op == "ConvInteger") return ConvCost(node, scope, 1);
  if (op == "QLinearConv") return ConvCost(node, scope, 3);
  if (op == "ConvTranspose") return ConvTransposeCost(node, scope);
  if (op == "Gemm") return MatMulCost(node, scope, 0, true);
  if (op == "MatMul" || op == "MatMulInteger" || op == "FusedMatMul" || op == "QLinearMatMul")
    return MatMulCost(node, scope, 0, false);
  if (op == "Attention" && node.domain() == "com.microsoft")
    return PackedAttentionCost(node, scope);
  if (op == "Attention" || op == "MultiHeadAttention")
    return AttentionCore(scope, Input(node, 0), Input(node, 1));
  if (op == "LSTM" || op == "GRU" || op == "RNN") return RecurrentCost(node, scope);
  if (op == "If" || op == "Loop" || op == "Scan") {
    if (depth >= kMaxDepth) return 0.0;
    return ControlFlowCost(node, scope, depth);
  }
  if (op == "MaxPool" || op == "AveragePool" || op == "LpPool") return PoolCost(node, scope);
  if (IsViewOp(op)) return 0.0;
  return ElementsTouched(node, scope);
}

double Median(std::vector<double> values) {
  auto middle = values.begin() + static_cast<std::ptrdiff_t>(values.size() / 2);
  std::nth_element(values.begin(), middle, values.end());
  return *middle;
}

// Costs of a graph's nodes; unknown ones get the median known work (see the header).
std::vector<double> NodeCosts(const onnx::GraphProto& graph, const Scope& scope, int depth) {
  std::vector<Estimate> work;
  std::vector<double> known;
  for (const auto& node : graph.node()) {
    work.push_back(NodeWork(node, scope, depth));
    if (work.back()) known.push_back(*work.back());
  }
  const double fallback = known.empty() ? kUnknownNodeCost - kNodeCost : Median(known);
  std::vector<double> costs;
  for (const auto& w : work) costs.push_back(kNodeCost + w.value_or(fallback));
  return costs;
}

double GraphCost(const onnx::GraphProto& graph, const Scope* outer, int depth) {
  Scope scope(graph, outer);
  scope.AddDeclared(graph);
  double total = 0;
  for (double cost : NodeCosts(graph, scope, depth)) total += cost;
  return total;
}

}  // namespace

std::vector<double> EstimateNodeCosts(const onnx::ModelProto& model,
                                      const std::unordered_map<std::string, TensorSpec>& specs) {
  const auto& graph = model.graph();
  Scope scope(graph, nullptr);
  for (const auto& [name, spec] : specs)
    if (spec.rank_known && ElementCount(spec.shape) >= 0) scope.Add(name, spec.shape);
  scope.AddDeclared(graph);  // what `specs` leaves out: weights, declared shapes
  return NodeCosts(graph, scope, 0);
}

}  // namespace scission::graph
