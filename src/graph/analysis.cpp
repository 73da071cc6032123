#include "graph/analysis.h"

#include <algorithm>
#include <bit>
#include <climits>
#include <cmath>
#include <functional>
#include <queue>
#include <tuple>

#include "common/error.h"
#include "graph/cost.h"

namespace scission::graph {

TensorSpec SpecFromValueInfo(const onnx::ValueInfoProto& info) {
  TensorSpec spec;
  spec.name = info.name();
  if (!info.type().has_tensor_type()) {
    spec.rank_known = false;  // nothing known, not a scalar
    return spec;
  }
  const auto& tensor = info.type().tensor_type();
  spec.dtype = static_cast<DType>(tensor.elem_type());
  if (tensor.has_shape())
    for (const auto& dim : tensor.shape().dim())
      spec.shape.push_back(dim.has_dim_value() ? dim.dim_value() : -1);
  else
    spec.rank_known = false;
  return spec;
}

namespace {

TensorSpec SpecFromTensor(const onnx::TensorProto& tensor) {
  TensorSpec spec;
  spec.name = tensor.name();
  spec.dtype = static_cast<DType>(tensor.data_type());
  spec.shape.assign(tensor.dims().begin(), tensor.dims().end());
  return spec;
}

// Names `graph` reads from the scopes around it: what its nodes (and, recursively, their own
// subgraphs) read that the graph does not define itself. Its inputs and initializers shadow outer
// names. Everything the graph defines counts, whatever the order of its nodes: a name read
// before the node that writes it is still that node's output, not an outer tensor.
void CollectSubgraphReads(const onnx::GraphProto& graph, std::vector<std::string>& reads) {
  std::unordered_set<std::string> defined;
  for (const auto& init : graph.initializer()) defined.insert(init.name());
  for (const auto& sparse : graph.sparse_initializer()) defined.insert(sparse.values().name());
  for (const auto& in : graph.input()) defined.insert(in.name());
  for (const auto& node : graph.node())
    for (const auto& out : node.output()) defined.insert(out);
  for (const auto& node : graph.node())
    for (const auto& in : NodeInputs(node))
      if (!in.empty() && !defined.count(in)) reads.push_back(in);
}

// Only a fully known shape may be folded into a constant: a tensor with a type but no shape
// (rank unknown) is not a scalar, and a symbolic (dim_param) or unknown dimension varies.
bool StaticShape(const TensorSpec& spec) {
  return spec.dtype != DType::kUndefined && spec.rank_known && ElementCount(spec.shape) >= 0;
}

bool IsRandomOp(const std::string& op) {
  static const std::unordered_set<std::string> kRandom = {"RandomNormal",     "RandomUniform",
                                                          "RandomNormalLike", "RandomUniformLike",
                                                          "Multinomial",      "Bernoulli"};
  return kRandom.count(op) > 0;
}

// The node, or any node in its subgraphs, draws random numbers. Iterative: nesting depth comes
// from the model.
bool DrawsRandomNumbers(const onnx::NodeProto& node) {
  std::vector<const onnx::NodeProto*> stack = {&node};
  while (!stack.empty()) {
    const onnx::NodeProto* current = stack.back();
    stack.pop_back();
    if (IsRandomOp(current->op_type())) return true;
    for (const auto& attr : current->attribute()) {
      if (attr.has_g())
        for (const auto& inner : attr.g().node()) stack.push_back(&inner);
      for (const auto& g : attr.graphs())
        for (const auto& inner : g.node()) stack.push_back(&inner);
    }
  }
  return false;
}

// Specs of initializers, declared values and inputs; fills `inputs` and the initializer indices.
void CollectSpecs(const onnx::GraphProto& graph, GraphAnalysis& a,
                  std::unordered_set<std::string>& graph_inputs) {
  for (int i = 0; i < graph.initializer_size(); ++i) {
    const auto& init = graph.initializer(i);
    a.initializer_index[init.name()] = i;
    a.specs[init.name()] = SpecFromTensor(init);
  }
  for (int i = 0; i < graph.sparse_initializer_size(); ++i) {
    const auto& sparse = graph.sparse_initializer(i);
    const std::string& name = sparse.values().name();
    a.sparse_initializer_index[name] = i;
    TensorSpec spec = SpecFromTensor(sparse.values());
    spec.shape.assign(sparse.dims().begin(), sparse.dims().end());  // the dense shape
    a.specs[name] = spec;
  }
  for (const auto& vi : graph.value_info()) a.specs[vi.name()] = SpecFromValueInfo(vi);
  for (const auto& vi : graph.output()) a.specs[vi.name()] = SpecFromValueInfo(vi);
  for (const auto& vi : graph.input()) {
    if (a.initializer_index.count(vi.name()) || a.sparse_initializer_index.count(vi.name()))
      continue;
    a.specs[vi.name()] = SpecFromValueInfo(vi);
    a.inputs.push_back(a.specs[vi.name()]);
    graph_inputs.insert(vi.name());
  }
}

bool IsWeight(const GraphAnalysis& a, const std::string& name) {
  return a.initializer_index.count(name) || a.sparse_initializer_index.count(name);
}

// Kahn's algorithm, ties broken by file index; fills producer, reads, all_order and topo_rank.
void TopologicalOrder(const onnx::GraphProto& graph,
                      const std::unordered_set<std::string>& graph_inputs, GraphAnalysis& a) {
  const int node_count = graph.node_size();
  a.reads.resize(node_count);
  for (int i = 0; i < node_count; ++i) {
    for (const auto& out : graph.node(i).output())
      if (!out.empty()) a.producer[out] = i;
    a.reads[i] = NodeInputs(graph.node(i));
  }
  std::vector<int> pending(node_count, 0);
  std::vector<std::vector<int>> consumers(node_count);
  for (int i = 0; i < node_count; ++i) {
    std::unordered_set<int> seen;
    for (const auto& in : a.reads[i]) {
      if (in.empty() || IsWeight(a, in) || graph_inputs.count(in)) continue;
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
  a.topo_rank.assign(node_count, 0);
  for (int rank = 0; rank < node_count; ++rank) a.topo_rank[a.all_order[rank]] = rank;
}

// Splits nodes into constants and activation nodes (which get positions, in `order`).
void ClassifyConstants(const onnx::GraphProto& graph, GraphAnalysis& a) {
  a.constant_node.assign(graph.node_size(), false);
  for (const auto& [name, index] : a.initializer_index) a.constant_tensors.insert(name);
  for (const auto& [name, index] : a.sparse_initializer_index) a.constant_tensors.insert(name);
  for (int i : a.all_order) {
    const auto& node = graph.node(i);
    const auto& reads = a.reads[i];
    bool constant;
    if (DrawsRandomNumbers(node)) {
      constant = false;
    } else if ((node.op_type() == "Shape" || node.op_type() == "Size") && node.input_size() == 1 &&
               a.specs.count(node.input(0)) && StaticShape(a.specs[node.input(0)])) {
      constant = true;
    } else {
      // Also true for nodes that read nothing (Constant).
      constant = std::all_of(reads.begin(), reads.end(), [&](const std::string& in) {
        return in.empty() || a.constant_tensors.count(in) > 0;
      });
    }
    a.constant_node[i] = constant;
    if (constant)
      for (const auto& out : node.output()) a.constant_tensors.insert(out);
    else
      a.order.push_back(i);
  }
  std::unordered_set<std::string> listed;
  bool any_activation_output = false;
  for (const auto& out : graph.output()) {
    if (!a.constant_tensors.count(out.name()))
      any_activation_output = true;
    else if (listed.insert(out.name()).second)
      a.constant_outputs.push_back(out.name());
  }
  if (!any_activation_output)
    throw BadInput("nothing to split: every output is computed from constants");
  if (a.order.empty()) throw BadInput("nothing to split: no node computes from the inputs");
}

// Max of last_use over ranges of `intervals`, as an implicit binary tree (node 1 is the root,
// leaves start at the first power of two >= the interval count).
void BuildIntervalSearch(GraphAnalysis& a) {
  size_t leaves = 1;
  while (leaves < a.intervals.size()) leaves *= 2;
  a.interval_search.assign(2 * leaves, INT_MIN);
  for (size_t i = 0; i < a.intervals.size(); ++i)
    a.interval_search[leaves + i] = a.intervals[i].last_use;
  for (size_t node = leaves - 1; node >= 1; --node)
    a.interval_search[node] =
        std::max(a.interval_search[2 * node], a.interval_search[2 * node + 1]);
}

// Live intervals of activation tensors, live counts per position and the single-tensor cuts.
void ComputeLiveness(const onnx::GraphProto& graph,
                     const std::unordered_set<std::string>& graph_inputs, GraphAnalysis& a) {
  const int n = a.positions();
  std::unordered_map<std::string, int> produced_at, last_use;
  for (const auto& name : graph_inputs) produced_at[name] = -1;
  for (int p = 0; p < n; ++p) {
    int node = a.order[p];
    for (const auto& in : a.reads[node])
      if (!in.empty() && !a.constant_tensors.count(in)) last_use[in] = p;
    for (const auto& out : graph.node(node).output())
      if (!out.empty()) produced_at[out] = p;
  }
  for (const auto& out : graph.output())
    if (!a.constant_tensors.count(out.name())) last_use[out.name()] = n;
  for (const auto& [name, at] : produced_at) {
    auto it = last_use.find(name);
    if (it != last_use.end() && it->second > at) a.intervals.push_back({name, at, it->second});
  }
  std::sort(a.intervals.begin(), a.intervals.end(), [](const auto& x, const auto& y) {
    return x.produced_at != y.produced_at ? x.produced_at < y.produced_at : x.name < y.name;
  });
  std::vector<int> delta(n + 2, 0);
  for (const auto& interval : a.intervals) {
    ++delta[interval.produced_at + 1];
    --delta[interval.last_use + 1];
  }
  a.live_count.assign(n + 1, 0);
  int live = 0;
  for (int p = 0; p <= n; ++p) a.live_count[p] = live += delta[p];
  // Values that are not tensors: outputs of sequence/optional/map ops, or declared so.
  static const std::unordered_set<std::string> kNonTensorOps = {
      "SplitToSequence", "SequenceConstruct", "SequenceInsert", "SequenceErase",
      "SequenceEmpty",   "SequenceMap",       "Optional",       "ZipMap"};
  auto& not_tensors = a.non_tensors;
  for (const auto* list : {&graph.value_info(), &graph.output()})
    for (const auto& info : *list)
      if (info.has_type() && !info.type().has_tensor_type()) not_tensors.insert(info.name());
  for (int node : a.order)
    if (kNonTensorOps.count(graph.node(node).op_type()))
      for (const auto& out : graph.node(node).output()) not_tensors.insert(out);
  std::vector<int> blocked(n + 2, 0);
  for (const auto& interval : a.intervals)
    if (not_tensors.count(interval.name)) {
      ++blocked[interval.produced_at + 1];
      --blocked[interval.last_use + 1];
    }
  a.uncuttable.assign(n + 1, 0);
  int inside = 0;
  for (int p = 0; p <= n; ++p) a.uncuttable[p] = (inside += blocked[p]) > 0;
  for (int p = 1; p < n; ++p)
    if (a.live_count[p] == 1 && !a.uncuttable[p]) a.single_cuts.push_back(p);
  BuildIntervalSearch(a);
}

// Raw boundaries at the single cuts, then trivial blocks merged into a neighbour.
void MergeBlocks(const onnx::GraphProto& graph, const AnalysisOptions& options, GraphAnalysis& a) {
  const int n = a.positions();
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
}

// Node costs (given or estimated) and their prefix sums over positions.
void ComputeCosts(const onnx::ModelProto& model, const AnalysisOptions& options, GraphAnalysis& a) {
  const int node_count = model.graph().node_size();
  a.node_costs =
      options.node_costs.empty() ? EstimateNodeCosts(model, a.specs) : options.node_costs;
  if (static_cast<int>(a.node_costs.size()) != node_count)
    throw Internal("{} node costs for {} nodes", a.node_costs.size(), node_count);
  a.cost_before.assign(1, 0.0);
  for (int node : a.order) {
    double cost = a.node_costs[node];
    if (!std::isfinite(cost) || cost < 0) throw Internal("node {} has cost {}", node, cost);
    a.cost_before.push_back(a.cost_before.back() + cost);
  }
}

void CountCutPoints(const AnalysisOptions& options, GraphAnalysis& a) {
  a.cut_points_by_tensors.assign(options.max_cut_tensors, 0);
  for (int p = 1; p < a.positions(); ++p) {
    int live = a.live_count[p];
    if (live >= 1 && live <= options.max_cut_tensors && !a.uncuttable[p])
      ++a.cut_points_by_tensors[live - 1];
  }
}

// A multi-tensor cut at p: 2..K live tensors (single-tensor cuts were step 1's, and the ones
// left inside a block were merged away on purpose), and the node at p is not an element-wise
// node reading what the node just before produced, which ONNX Runtime would fuse.
bool MultiTensorCutAt(const onnx::GraphProto& graph, const GraphAnalysis& a, int p, int max_live) {
  if (a.live_count[p] < 2 || a.live_count[p] > max_live || a.uncuttable[p]) return false;
  const auto& node = graph.node(a.order[p]);
  if (!IsElementwiseOp(node.op_type())) return true;
  const auto& before = graph.node(a.order[p - 1]).output();
  for (const auto& in : a.reads[a.order[p]])
    if (!in.empty() && std::find(before.begin(), before.end(), in) != before.end()) return false;
  return true;
}

// The split of [begin, end) with the fewest live tensors, then the smallest larger piece, then the
// lowest position; -1 when no cut leaves both pieces at or above `floor`.
int BestSplit(const onnx::GraphProto& graph, const GraphAnalysis& a, int begin, int end,
              int max_live, double floor) {
  const auto& cost = a.cost_before;
  int best = -1;
  std::pair<int, double> best_key;
  for (int p = begin + 1; p < end; ++p) {
    double left = cost[p] - cost[begin], right = cost[end] - cost[p];
    if (left < floor || right < floor || !MultiTensorCutAt(graph, a, p, max_live)) continue;
    std::pair<int, double> key = {a.live_count[p], std::max(left, right)};
    if (best < 0 || key < best_key) {
      best = p;
      best_key = key;
    }
  }
  return best;
}

// Step 2: blocks above split_share of the model are split, recursively, left to right.
void SplitLargeBlocks(const onnx::GraphProto& graph, const AnalysisOptions& options,
                      GraphAnalysis& a) {
  if (options.max_cut_tensors < 2) return;
  const double total = a.total_cost();
  const double limit = options.split_share * total;
  const double floor = std::max(options.min_block_share * total, options.min_block_cost);
  std::vector<int> boundaries = {0};
  std::vector<std::pair<int, int>> pending;  // blocks still to look at, the next one on top
  for (size_t b = a.boundaries.size() - 1; b >= 1; --b)
    pending.emplace_back(a.boundaries[b - 1], a.boundaries[b]);
  while (!pending.empty()) {
    auto [begin, end] = pending.back();
    pending.pop_back();
    int cut = -1;
    if (a.cost_before[end] - a.cost_before[begin] > limit)
      cut = BestSplit(graph, a, begin, end, options.max_cut_tensors, floor);
    if (cut < 0) {
      boundaries.push_back(end);
      continue;
    }
    pending.emplace_back(cut, end);
    pending.emplace_back(begin, cut);
  }
  a.boundaries = std::move(boundaries);
}

// Step 3: blocks estimated below both min_block_share of the model and merge_cost join a
// neighbour, since timing them separately measures ONNX Runtime's fixed cost per Run() more than
// their work. The boundary removed is the one carrying more tensors, then more bytes (the cut
// after a pool outlives the one before it), then the one toward the cheaper neighbour; the
// smallest block goes first, until none is below the floor or one block is left.
std::vector<TensorSpec> LiveSpecs(const GraphAnalysis& a, int position);

void MergeSmallBlocks(const AnalysisOptions& options, GraphAnalysis& a) {
  const double total = a.total_cost();
  const double floor = std::min(options.min_block_share * total, options.merge_cost);
  if (!options.merge_trivial_blocks || !(total > 0) || a.boundaries.size() <= 2) return;
  // Boundaries as a linked list (block = a boundary and the next live one), blocks in a heap by
  // cost with stale entries skipped: O(B log B) in blocks.
  const std::vector<int>& at = a.boundaries;
  const int m = static_cast<int>(at.size());
  std::vector<int> prev(m), next(m);
  std::vector<char> gone(m, 0);
  for (int i = 0; i < m; ++i) {
    prev[i] = i - 1;
    next[i] = i + 1;
  }
  auto cost = [&](int start) { return a.cost_before[at[next[start]]] - a.cost_before[at[start]]; };
  using Entry = std::tuple<double, int, int>;  // cost, start, end (boundary indices)
  std::priority_queue<Entry, std::vector<Entry>, std::greater<>> heap;
  for (int i = 0; i + 1 < m; ++i) heap.emplace(cost(i), i, i + 1);
  int blocks = m - 1;
  auto remove = [&](int boundary) {  // joins the blocks on either side of an interior boundary
    gone[boundary] = 1;
    next[prev[boundary]] = next[boundary];
    prev[next[boundary]] = prev[boundary];
    --blocks;
    heap.emplace(cost(prev[boundary]), prev[boundary], next[boundary]);
  };
  while (blocks > 1 && !heap.empty()) {
    auto [c, start, end] = heap.top();
    heap.pop();
    if (gone[start] || next[start] != end) continue;  // stale
    if (c >= floor) break;
    const bool first = start == 0, last = end == m - 1;
    int drop;
    if (first) {
      drop = end;
    } else if (last) {
      drop = start;
    } else {
      const int before = a.live_count[at[start]], after = a.live_count[at[end]];
      // Unknown sizes (dynamic dimensions) count as equal.
      const int64_t bytes_before = std::max<int64_t>(0, BoundaryBytes(LiveSpecs(a, at[start])));
      const int64_t bytes_after = std::max<int64_t>(0, BoundaryBytes(LiveSpecs(a, at[end])));
      if (before != after)
        drop = before > after ? start : end;
      else if (bytes_before != bytes_after && bytes_before > 0 && bytes_after > 0)
        drop = bytes_before > bytes_after ? start : end;
      else
        drop = cost(prev[start]) <= cost(end) ? start : end;
    }
    remove(drop);
  }
  std::vector<int> kept;
  for (int i = 0; i < m; ++i)
    if (!gone[i]) kept.push_back(at[i]);
  a.boundaries = std::move(kept);
}

std::vector<TensorSpec> LiveSpecs(const GraphAnalysis& a, int position) {
  std::vector<TensorSpec> specs;
  for (const auto& name : LiveAt(a, position)) {
    auto it = a.specs.find(name);
    TensorSpec spec;
    if (it != a.specs.end()) spec = it->second;
    spec.name = name;
    specs.push_back(std::move(spec));
  }
  return specs;
}

void DescribeBlocks(const onnx::GraphProto& graph, GraphAnalysis& a) {
  for (size_t b = 0; b + 1 < a.boundaries.size(); ++b) {
    BlockInfo block;
    block.index = static_cast<int>(b);
    block.begin = a.boundaries[b];
    block.end = a.boundaries[b + 1];
    std::unordered_map<std::string, size_t> op_slot;  // op type -> index in block.ops
    for (int p = block.begin; p < block.end; ++p) {
      int node = a.order[p];
      block.nodes.push_back(node);
      const auto& op = graph.node(node).op_type();
      auto [it, added] = op_slot.try_emplace(op, block.ops.size());
      if (added)
        block.ops.emplace_back(op, 1);
      else
        ++block.ops[it->second].second;
    }
    block.first_node = NodeLabel(graph.node(block.nodes.front()), block.nodes.front());
    block.last_node = NodeLabel(graph.node(block.nodes.back()), block.nodes.back());
    block.inputs = LiveSpecs(a, block.begin);
    block.outputs = LiveSpecs(a, block.end);
    block.cost = a.cost_before[block.end] - a.cost_before[block.begin];
    a.blocks.push_back(std::move(block));
  }
}

// Bytes a weight occupies in the model.
int64_t WeightBytes(const onnx::TensorProto& tensor) {
  if (tensor.has_raw_data()) return static_cast<int64_t>(tensor.raw_data().size());
  return std::max<int64_t>(SpecFromTensor(tensor).bytes(), 0);
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
    for (const auto* g : graphs) CollectSubgraphReads(*g, inputs);
  }
  return inputs;
}

bool IsElementwiseOp(const std::string& op) {
  static const std::unordered_set<std::string> kArithmetic = {"Add",
                                                              "Sub",
                                                              "Mul",
                                                              "Div",
                                                              "Sum",
                                                              "Pow",
                                                              "Sqrt",
                                                              "Erf",
                                                              "Gelu",
                                                              "PRelu",
                                                              "BatchNormalization"};
  return IsTrivialOp(op) || kArithmetic.count(op) > 0;
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
  // Weights by id: dense initializers first, then sparse ones.
  std::vector<int64_t> weight_bytes;
  std::unordered_map<std::string, int> weight_id;
  for (const auto& init : graph.initializer()) {
    weight_id.try_emplace(init.name(), static_cast<int>(weight_bytes.size()));
    weight_bytes.push_back(WeightBytes(init));
  }
  for (const auto& sparse : graph.sparse_initializer()) {
    weight_id.try_emplace(sparse.values().name(), static_cast<int>(weight_bytes.size()));
    weight_bytes.push_back(WeightBytes(sparse.values()) + WeightBytes(sparse.indices()));
  }

  // The weights a constant tensor is computed from, found once per tensor that activation nodes
  // read (a constant chain shared by every block is walked once, not once per block).
  std::unordered_map<std::string, std::vector<int>> weights_of;
  std::vector<int> node_seen(graph.node_size(), -1), weight_seen(weight_bytes.size(), -1);
  int walk = 0;
  auto weights_behind = [&](const std::string& tensor) -> const std::vector<int>& {
    auto [slot, added] = weights_of.try_emplace(tensor);
    if (!added) return slot->second;
    ++walk;
    std::vector<std::string> stack = {tensor};
    while (!stack.empty()) {
      std::string name = std::move(stack.back());
      stack.pop_back();
      if (auto w = weight_id.find(name); w != weight_id.end()) {
        if (weight_seen[w->second] != walk) slot->second.push_back(w->second);
        weight_seen[w->second] = walk;
        continue;
      }
      auto producer = analysis.producer.find(name);
      if (producer == analysis.producer.end() || node_seen[producer->second] == walk) continue;
      node_seen[producer->second] = walk;
      for (const auto& in : analysis.reads[producer->second])
        if (!in.empty() && analysis.constant_tensors.count(in)) stack.push_back(in);
    }
    return slot->second;
  };

  std::vector<int> counted(weight_bytes.size(), -1);  // block that last counted a weight
  std::vector<int64_t> out;
  for (const auto& block : analysis.blocks) {
    int64_t total = 0;
    for (int node : block.nodes)
      for (const auto& in : analysis.reads[node]) {
        if (in.empty() || !analysis.constant_tensors.count(in)) continue;
        for (int w : weights_behind(in)) {
          if (counted[w] == block.index) continue;
          counted[w] = block.index;
          total += weight_bytes[w];
        }
      }
    out.push_back(total);
  }
  return out;
}

int64_t BoundaryBytes(const std::vector<TensorSpec>& tensors) {
  int64_t total = 0;
  bool unknown = false;
  for (const auto& t : tensors) {
    int64_t bytes = t.bytes();
    if (bytes == kSizeTooLarge || (bytes >= 0 && __builtin_add_overflow(total, bytes, &total)))
      return kSizeTooLarge;
    unknown |= bytes < 0;
  }
  return unknown ? kSizeUnknown : total;
}

int64_t BlockInfo::input_bytes() const { return BoundaryBytes(inputs); }
int64_t BlockInfo::output_bytes() const { return BoundaryBytes(outputs); }

void AnalysisOptions::Validate() const {
  if (max_cut_tensors < 1 || max_cut_tensors > 64)
    throw BadInput("--max-cut-tensors: {} is not within 1..64", max_cut_tensors);
  for (double share : {split_share, min_block_share})
    if (!(share >= 0 && share <= 1)) throw BadInput("block share {} is not within 0..1", share);
  if (!(min_block_cost >= 0) || !std::isfinite(min_block_cost))
    throw BadInput("minimum block cost {} is not a finite number >= 0", min_block_cost);
  if (!(merge_cost >= 0)) throw BadInput("merge cost {} is not a number >= 0", merge_cost);
}

std::vector<std::string> LiveAt(const GraphAnalysis& analysis, int position) {
  std::vector<std::string> live;
  if (position < 0 || position > analysis.positions() || analysis.intervals.empty()) return live;
  // Candidates were produced before `position`: a prefix of the sorted intervals. Among them,
  // descend only into subtrees whose latest last_use reaches `position`.
  const auto& intervals = analysis.intervals;
  const size_t prefix = static_cast<size_t>(
      std::partition_point(intervals.begin(), intervals.end(),
                           [&](const LiveInterval& x) { return x.produced_at < position; }) -
      intervals.begin());
  const auto& tree = analysis.interval_search;
  const size_t leaves = tree.size() / 2;
  std::vector<std::pair<size_t, size_t>> stack = {{1, 0}};  // (tree node, first leaf under it)
  while (!stack.empty()) {
    auto [node, first] = stack.back();
    stack.pop_back();
    if (first >= prefix || tree[node] < position) continue;
    if (node >= leaves) {
      live.push_back(intervals[first].name);
      continue;
    }
    size_t half = leaves >> (std::bit_width(node) - 1) >> 1;  // leaves under each child
    stack.emplace_back(2 * node + 1, first + half);           // right after left: left pops first
    stack.emplace_back(2 * node, first);
  }
  return live;
}

GraphAnalysis Analyze(const onnx::ModelProto& model, const AnalysisOptions& options) {
  options.Validate();
  const auto& graph = model.graph();
  GraphAnalysis a;
  std::unordered_set<std::string> graph_inputs;
  CollectSpecs(graph, a, graph_inputs);
  TopologicalOrder(graph, graph_inputs, a);
  ClassifyConstants(graph, a);
  ComputeLiveness(graph, graph_inputs, a);
  ComputeCosts(model, options, a);
  CountCutPoints(options, a);
  MergeBlocks(graph, options, a);
  SplitLargeBlocks(graph, options, a);
  MergeSmallBlocks(options, a);
  DescribeBlocks(graph, a);
  return a;
}

GraphAnalysis Reblock(const onnx::GraphProto& graph, const GraphAnalysis& base,
                      const std::vector<int>& boundaries, int max_cut_tensors) {
  const int n = base.positions();
  if (boundaries.size() < 2 || boundaries.front() != 0 || boundaries.back() != n)
    throw BadInput("block boundaries must run from 0 to {} (the model's positions)", n);
  for (size_t b = 1; b < boundaries.size(); ++b) {
    const int p = boundaries[b];
    if (p <= boundaries[b - 1])
      throw BadInput("block boundaries must increase ({} after {})", p, boundaries[b - 1]);
    if (p > n) throw BadInput("block boundary {} is past the model's {} positions", p, n);
    if (p == n) continue;
    if (base.live_count[p] < 1 || base.live_count[p] > max_cut_tensors || base.uncuttable[p])
      throw BadInput("position {} is not a cut point with 1..{} live tensors", p, max_cut_tensors);
  }
  GraphAnalysis a = base;
  a.boundaries = boundaries;
  a.blocks.clear();
  DescribeBlocks(graph, a);
  return a;
}

}  // namespace scission::graph
