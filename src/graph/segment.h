// Extracting a contiguous range of blocks as a standalone ONNX model.
#pragma once

#include <string>
#include <vector>

#include <onnx/onnx_pb.h>

#include "common/tensor.h"
#include "graph/analysis.h"

namespace scission::graph {

struct Segment {
  int first_block = 0;
  int last_block = 0;
  onnx::ModelProto model;  // passes the ONNX checker
  std::vector<TensorSpec> inputs;
  std::vector<TensorSpec> outputs;
};

// Blocks [first_block .. last_block] (inclusive). The segment holds exactly the activation nodes of
// those blocks, the constant nodes they need (Shape of a static tensor becomes an initializer),
// and only the initializers it reads. The segment ending at the last block also computes the
// graph outputs that come from constants alone. Throws BadInput for an empty or out-of-range
// block range.
Segment ExtractSegment(const onnx::ModelProto& model, const GraphAnalysis& analysis,
                       int first_block, int last_block);

// The same for positions [begin, end) of analysis.order; inputs/outputs are the live sets there.
// Costs O(segment size · log), not O(graph size).
Segment ExtractPositions(const onnx::ModelProto& model, const GraphAnalysis& analysis, int begin,
                         int end);

}  // namespace scission::graph
