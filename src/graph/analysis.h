// Cut points and blocks of an ONNX graph (DESIGN.md "Vocabulary").
//
// Nodes are put in one fixed topological order (Kahn's algorithm, ties broken by the node's index
// in the file, so an already sorted graph keeps its order). Constant nodes (Constant, anything
// computed only from initializers/constants, Shape/Size of a tensor whose shape is static) are set
// aside; the remaining "activation" nodes define positions 0..n. The live set at position p holds
// the activation tensors produced before p and consumed at or after p (graph outputs count as
// consumed at n). A single-tensor cut point is an interior position (0 < p < n) whose live set has
// exactly one tensor. Blocks lie between consecutive cut points; trivial blocks (only cheap
// element-wise or shape ops such as a lone Relu after its Conv) are merged into their predecessor
// because ONNX Runtime fuses them in the whole model, so timing them apart would not be honest.
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
};

struct BlockInfo {
  int index = 0;
  int begin = 0;           // first position (index into GraphAnalysis::order)
  int end = 0;             // one past the last position
  std::vector<int> nodes;  // indices into graph.node(), in topological order
  std::string first_node, last_node;
  std::vector<std::pair<std::string, int>> ops;  // op type -> count, in order of first appearance
  std::vector<TensorSpec> outputs;               // live tensors at `end` (one for interior blocks)
  int64_t output_bytes() const;                  // sum over outputs, -1 if any is unknown
};

struct GraphAnalysis {
  std::vector<int> all_order;       // every node, topological
  std::vector<int> order;           // activation nodes only, topological
  std::vector<bool> constant_node;  // by node index
  std::unordered_set<std::string> constant_tensors;
  std::unordered_map<std::string, int> producer;  // tensor name -> node index
  std::unordered_map<std::string, TensorSpec> specs;
  std::vector<TensorSpec> inputs;              // graph inputs that are not initializers
  std::vector<std::vector<std::string>> live;  // live activation tensors at positions 0..n
  std::vector<int> single_cuts;                // interior positions with one live tensor
  std::vector<int> boundaries;                 // block boundaries after merging: 0 .. n
  std::vector<BlockInfo> blocks;

  int positions() const { return static_cast<int>(order.size()); }
};

// Throws BadInput for graphs with cycles or tensors read but never produced.
GraphAnalysis Analyze(const onnx::ModelProto& model, const AnalysisOptions& options = {});

// Bytes of the initializers each block reads (directly or through constant nodes); a weight shared
// by several blocks counts in each.
std::vector<int64_t> BlockWeightBytes(const onnx::ModelProto& model, const GraphAnalysis& analysis);

// Node name for display: its name, or "<OpType>#<index>" when unnamed.
std::string NodeLabel(const onnx::NodeProto& node, int index);
// Inputs a node reads, including outer-scope names used inside its subgraphs (If/Loop/Scan).
std::vector<std::string> NodeInputs(const onnx::NodeProto& node);
// Ops counted as trivial for block merging.
bool IsTrivialOp(const std::string& op_type);

}  // namespace scission::graph
