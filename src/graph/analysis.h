// Cut points and blocks of an ONNX graph (DESIGN.md "Vocabulary", "Cut points and blocks").
//
// Nodes are put in one fixed topological order (Kahn's algorithm, ties broken by the node's index
// in the file, so an already sorted graph keeps its order). Constant nodes (Constant, anything
// computed only from initializers/constants, Shape/Size of a tensor whose shape is static) are set
// aside; the remaining "activation" nodes define positions 0..n. Nodes that draw random numbers
// are never constants: a copy in each segment that needs one would draw different numbers. The
// live set at position p holds the activation tensors produced before p and consumed at or after
// p (graph outputs count as consumed at n). A single-tensor cut point is an interior position (0 <
// p < n) whose live set has exactly one tensor.
//
// Blocks are formed in three steps. (1) Blocks lie between consecutive single-tensor cut points;
// trivial blocks (only cheap element-wise or shape ops such as a lone Relu after its Conv) are
// merged into their predecessor because ONNX Runtime fuses them in the whole model, so timing them
// apart would not be honest. (2) A block whose estimated cost (graph/cost.h) is above
// split_share of the model is split at a multi-tensor cut point (2..max_cut_tensors live
// tensors): fewest tensors first, then the most balanced split, recursively. (3) No split leaves a
// piece below the timing floor (min_block_share of the model, and min_block_cost), and no split
// separates an element-wise node from the node just before it that produces its input (ONNX
// Runtime fuses those). The same model, costs and options always give the same blocks.
#pragma once

#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include <onnx/onnx_pb.h>

#include "common/tensor.h"

namespace scission::graph {

struct AnalysisOptions {
  bool merge_trivial_blocks = true;
  // Most live activation tensors a block boundary may carry; 1 keeps single-tensor cuts only.
  int max_cut_tensors = 4;
  // A block estimated above this share of the model's cost is split where a cut allows it.
  double split_share = 0.10;
  // Timing floor: a split never leaves a piece below this share of the model's cost, nor below
  // min_block_cost (MACs, graph/cost.h), which is ~0.1 ms on one core: a block that small would
  // be dominated by ONNX Runtime's fixed cost per Run() (input binding, output allocation,
  // thread-pool wake-up, tens of microseconds), which the whole model pays once.
  double min_block_share = 0.02;
  double min_block_cost = 2e6;
  // After splitting, a block below both min_block_share of the model and merge_cost (MACs) joins a
  // neighbour (with merge_trivial_blocks): too small to time honestly on its own. Both, so that a
  // small model keeps its blocks and a large one keeps its cheap but useful cuts (after a pool).
  double merge_cost = 2e6;
  // Estimated cost per node index (graph/cost.h units). Empty: EstimateNodeCosts on the model's
  // own inferred shapes. Callers that know the real input shapes pass costs computed from those.
  std::vector<double> node_costs = {};
  // Throws BadInput naming the option (max_cut_tensors 1..64, shares in [0, 1], floors >= 0).
  void Validate() const;
};

struct BlockInfo {
  int index = 0;
  int begin = 0;           // first position (index into GraphAnalysis::order)
  int end = 0;             // one past the last position
  std::vector<int> nodes;  // indices into graph.node(), in topological order
  std::string first_node, last_node;
  std::vector<std::pair<std::string, int>> ops;  // op type -> count, in order of first appearance
  std::vector<TensorSpec> inputs;   // live tensors at `begin` (graph inputs for block 0)
  std::vector<TensorSpec> outputs;  // live tensors at `end` (1..max_cut_tensors for interior ones)
  double cost = 0;                  // estimated, in MACs (graph/cost.h)
  int64_t input_bytes() const;      // BoundaryBytes(inputs)
  int64_t output_bytes() const;
};

// An activation tensor's lifetime in positions: live at p iff produced_at < p <= last_use.
struct LiveInterval {
  std::string name;
  int produced_at = -1;  // position of its producer; -1 for graph inputs
  int last_use = 0;      // last position reading it; positions() for graph outputs
};

struct GraphAnalysis {
  std::vector<int> all_order;       // every node, topological
  std::vector<int> topo_rank;       // by node index: its place in all_order
  std::vector<int> order;           // activation nodes only, topological
  std::vector<bool> constant_node;  // by node index
  std::unordered_set<std::string> constant_tensors;
  std::unordered_map<std::string, int> producer;  // tensor name -> node index
  // Tensor name -> index in graph.initializer() / graph.sparse_initializer().
  std::unordered_map<std::string, int> initializer_index, sparse_initializer_index;
  std::unordered_map<std::string, TensorSpec> specs;
  std::vector<TensorSpec> inputs;               // graph inputs that are not initializers
  std::vector<std::vector<std::string>> reads;  // by node index: NodeInputs(node)
  std::vector<std::string> constant_outputs;    // graph outputs computed from constants only
  std::vector<LiveInterval> intervals;          // sorted by (produced_at, name)
  std::vector<int> live_count;                  // live tensors at positions 0..n
  // Positions where a live value is not a tensor (a sequence, map or optional): no cut there, since
  // ONNX Runtime cannot hand such a value over between segments.
  std::vector<char> uncuttable;
  std::unordered_set<std::string> non_tensors;  // those values, by name
  std::vector<int> interval_search;             // LiveAt's index over `intervals`
  std::vector<int> single_cuts;                 // interior positions with one live tensor
  // [k - 1]: interior positions with k live tensors, k = 1..max_cut_tensors.
  std::vector<int> cut_points_by_tensors;
  std::vector<double> node_costs;   // by node index, MACs (graph/cost.h); constants included
  std::vector<double> cost_before;  // by position 0..n: cost of the activation nodes before it
  std::vector<int> boundaries;      // block boundaries after merging: 0 .. n
  std::vector<BlockInfo> blocks;

  int positions() const { return static_cast<int>(order.size()); }
  // Estimated cost of the activation nodes (what the blocks share), MACs.
  double total_cost() const { return cost_before.empty() ? 0 : cost_before.back(); }
};

// Throws BadInput for graphs with cycles or tensors read but never produced, and for graphs with
// nothing to split (no activation node, or every output computed from constants).
// Near-linear: O(N log N) in nodes and tensors, plus the sizes of the live sets it reports.
GraphAnalysis Analyze(const onnx::ModelProto& model, const AnalysisOptions& options = {});

// `base` with its blocks formed at `boundaries` instead (positions: 0, the interior cuts, then
// positions()), as another machine that analysed the same model with other options or costs sends
// them; specs, liveness and costs stay. BadInput unless they run from 0 to positions(), increase,
// and every interior one is a cut with 1..max_cut_tensors live tensors.
GraphAnalysis Reblock(const onnx::GraphProto& graph, const GraphAnalysis& base,
                      const std::vector<int>& boundaries, int max_cut_tensors = 64);

// A declared value's spec: dtype and shape (-1 for unknown dimensions); rank_known false without a
// shape, dtype undefined without a tensor type.
TensorSpec SpecFromValueInfo(const onnx::ValueInfoProto& info);

// The live activation tensors at `position` (0..positions()), ordered by producer position then
// name. O(log T + k log T) for k live tensors among T intervals.
std::vector<std::string> LiveAt(const GraphAnalysis& analysis, int position);

// Bytes a boundary carries: the sum over its tensors; kSizeTooLarge if any is too large or the sum
// overflows, else kSizeUnknown if any is unknown.
int64_t BoundaryBytes(const std::vector<TensorSpec>& tensors);

// Bytes of the initializers each block reads (directly or through constant nodes); a weight shared
// by several blocks counts in each.
std::vector<int64_t> BlockWeightBytes(const onnx::ModelProto& model, const GraphAnalysis& analysis);

// Node name for display: its name, or "<OpType>#<index>" when unnamed.
std::string NodeLabel(const onnx::NodeProto& node, int index);
// Inputs a node reads, including outer-scope names used inside its subgraphs (If/Loop/Scan).
std::vector<std::string> NodeInputs(const onnx::NodeProto& node);
// Ops counted as trivial for block merging.
bool IsTrivialOp(const std::string& op_type);
// Element-wise ops ONNX Runtime may fuse into the node producing their input (trivial ops and
// arithmetic such as Add, Mul, BatchNormalization); multi-tensor splits never separate them.
bool IsElementwiseOp(const std::string& op_type);

}  // namespace scission::graph
