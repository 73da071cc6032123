#include "graph/analysis.h"

#include <algorithm>
#include <queue>

#include "common/error.h"

namespace scission::graph {

namespace {

TensorSpec SpecFromValueInfo(const onnx::ValueInfoProto& info) {
  TensorSpec spec;
  spec.name = info.name();
  if (!info.type().has_tensor_type()) return spec;
  const auto& tensor = info.type().tensor_type();
  spec.dtype = static_cast<DType>(tensor.elem_type());
  if (tensor.has_shape())
    for (const auto& dim : tensor.shape().dim())
      spec.shape.push_back(dim.has_dim_value() ? dim.dim_value() : -1);
  else
    spec.rank_known = false;
  return spec;
}

void CollectSubgraphReads(const onnx::GraphProto& graph, std::unordered_set<std::string>& defined,
                          std::vector<std::string>& reads) {
  for (const auto& init : graph.initializer()) defined.insert(init.name());
  for (const auto& in : graph.input()) defined.insert(in.name());
  for (const auto& node : graph.node()) {
    for (const auto& in : NodeInputs(node))
      if (!in.empty() && !defined.count(in)) reads.push_back(in);
    for (const auto& out : node.output()) defined.insert(out);
  }
}

bool StaticShape(const TensorSpec& spec) {
  return spec.dtype != DType::kUndefined && ElementCount(spec.shape) >= 0;
}

bool HasNoSideInputs(const std::string& op) {
  // Ops with no inputs that still produce run-time values are treated as constants too: their
  // placement does not change what a segment computes.
  return op == "Constant" || op == "RandomNormal" || op == "RandomUniform" || op == "EyeLike";
}

}  // namespace

std::string NodeLabel(const onnx::NodeProto& node, int index) {
  return node.name().empty() ? node.op_type() + "#" + std::to_string(index) : node.name();
}

std::vector<std::string> NodeInputs(const onnx::NodeProto& node) {
  std::vector<std::string> inputs(node.input().begin(), node.input().end());
  for (const auto& attr : node.attribute()) {
    std::vector<const onnx::GraphProto*> graphs;
    if (attr.has_g()) graphs.push_back(&attr.g());
    for (const auto& g : attr.graphs()) graphs.push_back(&g);
    for (const auto* g : graphs) {
      std::unordered_set<std::string> defined;
      CollectSubgraphReads(*g, defined, inputs);
    }
  }
  return inputs;
}

bool IsTrivialOp(const std::string& op) {
  static const std::unordered_set<std::string> kTrivial = {
      "Relu",    "LeakyRelu", "Clip",    "Sigmoid",   "HardSigmoid", "HardSwish",
      "Tanh",    "Elu",       "Selu",    "Softplus",  "Identity",    "Dropout",
      "Flatten", "Reshape",   "Squeeze", "Unsqueeze", "Cast"};
  return kTrivial.count(op) > 0;
}

std::vector<int64_t> BlockWeightBytes(const onnx::ModelProto& model,
                                      const GraphAnalysis& analysis) {
  const auto& graph = model.graph();
  std::unordered_map<std::string, int64_t> init_bytes;
  for (const auto& init : graph.initializer()) {
    int64_t count = 1;
    for (int64_t d : init.dims()) count *= d;
    int64_t size =
        init.has_raw_data()
            ? static_cast<int64_t>(init.raw_data().size())
            : count * static_cast<int64_t>(DTypeSize(static_cast<DType>(init.data_type())));
    init_bytes[init.name()] = size;
  }
  std::vector<int64_t> out;
  for (const auto& block : analysis.blocks) {
    std::unordered_set<std::string> seen;
    std::unordered_set<int> visited;
    std::vector<int> stack(block.nodes.begin(), block.nodes.end());
    int64_t total = 0;
    while (!stack.empty()) {
      int node = stack.back();
      stack.pop_back();
      for (const auto& in : NodeInputs(graph.node(node))) {
        if (in.empty() || !seen.insert(in).second) continue;
        auto it = init_bytes.find(in);
        if (it != init_bytes.end()) {
          total += it->second;
        } else if (analysis.constant_tensors.count(in)) {
          auto producer = analysis.producer.find(in);
          if (producer != analysis.producer.end() && visited.insert(producer->second).second)
            stack.push_back(producer->second);
        }
      }
    }
    out.push_back(total);
  }
  return out;
}

int64_t BlockInfo::output_bytes() const {
  int64_t total = 0;
  for (const auto& out : outputs) {
    if (out.bytes() < 0) return -1;
    total += out.bytes();
  }
  return total;
}

GraphAnalysis Analyze(const onnx::ModelProto& model, const AnalysisOptions& options) {
  const auto& graph = model.graph();
  GraphAnalysis a;
  const int node_count = graph.node_size();

  std::unordered_set<std::string> initializers;
  for (const auto& init : graph.initializer()) {
    initializers.insert(init.name());
    TensorSpec spec;
    spec.name = init.name();
    spec.dtype = static_cast<DType>(init.data_type());
    spec.shape.assign(init.dims().begin(), init.dims().end());
    a.specs[init.name()] = spec;
  }
  for (const auto& vi : graph.value_info()) a.specs[vi.name()] = SpecFromValueInfo(vi);
  for (const auto& vi : graph.output()) a.specs[vi.name()] = SpecFromValueInfo(vi);
  std::unordered_set<std::string> graph_inputs;
  for (const auto& vi : graph.input()) {
    if (initializers.count(vi.name())) continue;
    a.specs[vi.name()] = SpecFromValueInfo(vi);
    a.inputs.push_back(a.specs[vi.name()]);
    graph_inputs.insert(vi.name());
  }

  // Topological order, ties broken by file index.
  std::vector<std::vector<std::string>> reads(node_count);
  for (int i = 0; i < node_count; ++i) {
    for (const auto& out : graph.node(i).output())
      if (!out.empty()) a.producer[out] = i;
    reads[i] = NodeInputs(graph.node(i));
  }
  std::vector<int> pending(node_count, 0);
  std::vector<std::vector<int>> consumers(node_count);
  for (int i = 0; i < node_count; ++i) {
    std::unordered_set<int> seen;
    for (const auto& in : reads[i]) {
      if (in.empty() || initializers.count(in) || graph_inputs.count(in)) continue;
      auto it = a.producer.find(in);
      if (it == a.producer.end())
        throw BadInput("node '{}' reads '{}', which no node, input or initializer provides",
                       NodeLabel(graph.node(i), i), in);
      if (seen.insert(it->second).second) {
        ++pending[i];
        consumers[it->second].push_back(i);
      }
    }
  }
  std::priority_queue<int, std::vector<int>, std::greater<>> ready;
  for (int i = 0; i < node_count; ++i)
    if (pending[i] == 0) ready.push(i);
  while (!ready.empty()) {
    int i = ready.top();
    ready.pop();
    a.all_order.push_back(i);
    for (int c : consumers[i])
      if (--pending[c] == 0) ready.push(c);
  }
  if (static_cast<int>(a.all_order.size()) != node_count)
    throw BadInput("graph has a cycle ({} of {} nodes cannot be ordered)",
                   node_count - static_cast<int>(a.all_order.size()), node_count);

  // Constants.
  a.constant_node.assign(node_count, false);
  for (const auto& name : initializers) a.constant_tensors.insert(name);
  for (int i : a.all_order) {
    const auto& node = graph.node(i);
    bool constant;
    if (reads[i].empty() || HasNoSideInputs(node.op_type())) {
      constant = true;
    } else if ((node.op_type() == "Shape" || node.op_type() == "Size") && node.input_size() == 1 &&
               a.specs.count(node.input(0)) && StaticShape(a.specs[node.input(0)])) {
      constant = true;
    } else {
      constant = std::all_of(reads[i].begin(), reads[i].end(), [&](const std::string& in) {
        return in.empty() || a.constant_tensors.count(in) > 0;
      });
    }
    a.constant_node[i] = constant;
    if (constant)
      for (const auto& out : node.output()) a.constant_tensors.insert(out);
    else
      a.order.push_back(i);
  }

  // Live sets: tensor live at p iff produced before p and last used at or after p.
  const int n = a.positions();
  std::unordered_map<std::string, int> produced_at, last_use;
  for (const auto& name : graph_inputs) produced_at[name] = -1;
  for (int p = 0; p < n; ++p) {
    int node = a.order[p];
    for (const auto& in : reads[node])
      if (!in.empty() && !a.constant_tensors.count(in)) last_use[in] = p;
    for (const auto& out : graph.node(node).output())
      if (!out.empty()) produced_at[out] = p;
  }
  for (const auto& out : graph.output())
    if (!a.constant_tensors.count(out.name())) last_use[out.name()] = n;
  std::vector<std::vector<std::string>> starts(n + 2), stops(n + 2);
  for (const auto& [name, at] : produced_at) {
    auto it = last_use.find(name);
    if (it == last_use.end() || it->second <= at) continue;
    starts[at + 1].push_back(name);         // live from position at+1 ...
    stops[it->second + 1].push_back(name);  // ... through position last_use
  }
  a.live.resize(n + 1);
  std::vector<std::string> current;
  for (int p = 0; p <= n; ++p) {
    for (const auto& name : stops[p]) std::erase(current, name);
    for (const auto& name : starts[p]) current.push_back(name);
    std::vector<std::string> sorted = current;
    std::sort(sorted.begin(), sorted.end(), [&](const std::string& x, const std::string& y) {
      return produced_at[x] < produced_at[y] || (produced_at[x] == produced_at[y] && x < y);
    });
    a.live[p] = std::move(sorted);
  }
  for (int p = 1; p < n; ++p)
    if (a.live[p].size() == 1) a.single_cuts.push_back(p);

  // Raw boundaries, then merge trivial blocks.
  std::vector<int> raw = {0};
  raw.insert(raw.end(), a.single_cuts.begin(), a.single_cuts.end());
  raw.push_back(n);
  auto trivial = [&](int begin, int end) {
    for (int p = begin; p < end; ++p)
      if (!IsTrivialOp(graph.node(a.order[p]).op_type())) return false;
    return true;
  };
  a.boundaries = {0};
  for (size_t b = 0; b + 1 < raw.size(); ++b) {
    int begin = raw[b], end = raw[b + 1];
    bool merge = options.merge_trivial_blocks && trivial(begin, end);
    if (merge && a.boundaries.size() > 1) {
      a.boundaries.back() = end;  // extend the previous block
    } else if (merge && b + 2 < raw.size()) {
      continue;  // first block is trivial: it becomes part of the next one
    } else {
      a.boundaries.push_back(end);
    }
  }
  if (n == 0) a.boundaries = {0};

  for (size_t b = 0; b + 1 < a.boundaries.size(); ++b) {
    BlockInfo block;
    block.index = static_cast<int>(b);
    block.begin = a.boundaries[b];
    block.end = a.boundaries[b + 1];
    for (int p = block.begin; p < block.end; ++p) {
      int node = a.order[p];
      block.nodes.push_back(node);
      const auto& op = graph.node(node).op_type();
      auto it = std::find_if(block.ops.begin(), block.ops.end(),
                             [&](const auto& entry) { return entry.first == op; });
      if (it == block.ops.end())
        block.ops.emplace_back(op, 1);
      else
        ++it->second;
    }
    block.first_node = NodeLabel(graph.node(block.nodes.front()), block.nodes.front());
    block.last_node = NodeLabel(graph.node(block.nodes.back()), block.nodes.back());
    for (const auto& name : a.live[block.end]) {
      auto it = a.specs.find(name);
      TensorSpec spec;
      if (it != a.specs.end()) spec = it->second;
      spec.name = name;
      block.outputs.push_back(spec);
    }
    a.blocks.push_back(std::move(block));
  }
  return a;
}

}  // namespace scission::graph
