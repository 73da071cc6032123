// Estimated work per node, used to form blocks of comparable cost before anything is measured
// (DESIGN.md "Cut points and blocks"). The unit is one multiply-accumulate (MAC): compute-bound
// ops count their MACs; memory-bound ops count kElementCost per element they read or write; every
// node adds kNodeCost for dispatch. Only ratios matter to block formation, except for the floor
// below which a block is too small to time (AnalysisOptions::min_block_cost), which is expressed
// in the same unit.
#pragma once

#include <string>
#include <unordered_map>
#include <vector>

#include <onnx/onnx_pb.h>

#include "common/tensor.h"

namespace scission::graph {

// A node's fixed cost: ONNX Runtime's kernel dispatch and allocation, about 1 µs on one core,
// which runs ~10^4 MACs of a convolution in that time.
inline constexpr double kNodeCost = 1e4;
// One element read or written by a memory-bound op costs about as much as 4 MACs of a
// convolution on one core (measured on the zoo: MLAS convolutions reach ~4x the element rate
// of element-wise kernels).
inline constexpr double kElementCost = 4.0;

// Estimated cost of every node of model.graph(), by node index, in MACs (see above).
//   Conv, ConvInteger, QLinearConv     output elements x kernel elements x input channels / group
//   ConvTranspose                      input elements x kernel elements x output channels / group
//   Gemm, MatMul (and quantized forms) M x N x K
//   Attention, MultiHeadAttention      projections plus 2 x batch x heads x S x L x head size
//   LSTM, GRU, RNN                     steps x batch x (|W| + |R|)
//   If / Loop / Scan                   the costlier branch / body x trip count (an initializer M,
//                                      else 1) / body x scan length
//   MaxPool, AveragePool, LpPool       output elements x kernel elements
//   view ops (Reshape, Squeeze, ...)   nothing beyond kNodeCost: ONNX Runtime aliases the buffer
//   everything else                    kElementCost x elements read and written
// Shapes come from `specs` (e.g. GraphAnalysis::specs, or specs resolved from a real run at the
// user's input shapes), then from the model's initializers and subgraph value_info. A node whose
// shapes are not known gets the median cost of the nodes whose cost is known: the best guess of a
// typical node. When no node's cost is known, every node costs the same (kUnknownNodeCost), so
// blocks balance by node count.
std::vector<double> EstimateNodeCosts(const onnx::ModelProto& model,
                                      const std::unordered_map<std::string, TensorSpec>& specs);

// The cost of a node whose shapes are unknown in a model where no node's shapes are known. Set
// so that a block needs 8 such nodes to reach the default AnalysisOptions::min_block_cost.
inline constexpr double kUnknownNodeCost = 2.5e5;

}  // namespace scission::graph
