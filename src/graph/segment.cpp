#include "graph/segment.h"

#include <algorithm>
#include <set>
#include <unordered_set>

#include <fmt/format.h>

#include "common/error.h"

namespace scission::graph {

namespace {

onnx::ValueInfoProto ValueInfoFor(const TensorSpec& spec) {
  onnx::ValueInfoProto info;
  info.set_name(spec.name);
  // Nothing known (a model the ONNX library could not infer, not probed): no type at all, which
  // ONNX Runtime infers for outputs (a type of 0 it refuses).
  if (spec.dtype == DType::kUndefined) return info;
  auto* tensor = info.mutable_type()->mutable_tensor_type();
  tensor->set_elem_type(static_cast<int32_t>(spec.dtype));
  if (!spec.rank_known) return info;
  auto* shape = tensor->mutable_shape();
  for (int64_t d : spec.shape) {
    auto* dim = shape->add_dim();
    if (d >= 0) dim->set_dim_value(d);
  }
  return info;
}

int64_t IntAttr(const onnx::NodeProto& node, const std::string& name, int64_t fallback) {
  for (const auto& attr : node.attribute())
    if (attr.name() == name) return attr.i();
  return fallback;
}

// Shape/Size of a tensor with a static shape, as an initializer named like the node's output.
onnx::TensorProto FoldStaticShape(const std::string& name, const onnx::NodeProto& node,
                                  const TensorSpec& input) {
  onnx::TensorProto value;
  value.set_name(name);
  value.set_data_type(onnx::TensorProto::INT64);
  if (node.op_type() == "Size") {
    value.add_int64_data(ElementCount(input.shape));
    return value;
  }
  const int64_t rank = static_cast<int64_t>(input.shape.size());
  int64_t start = IntAttr(node, "start", 0), end = IntAttr(node, "end", rank);
  if (start < 0) start += rank;
  if (end < 0) end += rank;
  start = std::clamp<int64_t>(start, 0, rank);
  end = std::clamp<int64_t>(end, 0, rank);
  value.add_dims(std::max<int64_t>(end - start, 0));
  for (int64_t i = start; i < end; ++i) value.add_int64_data(input.shape[static_cast<size_t>(i)]);
  return value;
}

TensorSpec SpecOf(const GraphAnalysis& analysis, const std::string& name) {
  auto it = analysis.specs.find(name);
  TensorSpec spec;
  if (it != analysis.specs.end()) spec = it->second;
  spec.name = name;
  return spec;
}

}  // namespace

Segment ExtractPositions(const onnx::ModelProto& model, const GraphAnalysis& analysis, int begin,
                         int end) {
  const auto& graph = model.graph();
  if (begin < 0 || end > analysis.positions() || begin >= end)
    throw BadInput("segment positions [{}, {}) outside 0..{}", begin, end, analysis.positions());

  // Work is proportional to the segment (its nodes, what they read, its live sets), not to the
  // whole graph: a benchmark extracts every block of a long model.
  std::unordered_set<int> include;
  std::vector<int> stack;
  std::set<std::string> folded_shapes;    // ordered: segments serialize the same way every time
  std::set<int> dense_read, sparse_read;  // indices, so weights keep their order in the file
  auto need_constant = [&](const std::string& name) {
    if (auto it = analysis.initializer_index.find(name); it != analysis.initializer_index.end()) {
      dense_read.insert(it->second);
      return;
    }
    if (auto it = analysis.sparse_initializer_index.find(name);
        it != analysis.sparse_initializer_index.end()) {
      sparse_read.insert(it->second);
      return;
    }
    auto producer = analysis.producer.find(name);
    if (producer == analysis.producer.end() || include.count(producer->second)) return;
    const auto& pnode = graph.node(producer->second);
    bool static_shape = (pnode.op_type() == "Shape" || pnode.op_type() == "Size") &&
                        pnode.input_size() > 0 && !analysis.constant_tensors.count(pnode.input(0));
    if (static_shape) {
      folded_shapes.insert(name);
      return;
    }
    include.insert(producer->second);
    stack.push_back(producer->second);
  };
  for (int p = begin; p < end; ++p) {
    include.insert(analysis.order[p]);
    stack.push_back(analysis.order[p]);
  }
  // Graph outputs computed from constants are live nowhere; the last segment computes them.
  const bool last = end == analysis.positions();
  if (last)
    for (const auto& name : analysis.constant_outputs) need_constant(name);
  while (!stack.empty()) {
    int node_index = stack.back();
    stack.pop_back();
    for (const auto& in : analysis.reads[node_index])
      if (!in.empty() && analysis.constant_tensors.count(in)) need_constant(in);
  }

  Segment segment;
  onnx::ModelProto& out = segment.model;
  out.set_ir_version(model.ir_version());
  *out.mutable_opset_import() = model.opset_import();
  out.set_producer_name("scission");
  out.set_producer_version("0.1");
  auto* g = out.mutable_graph();
  g->set_name(fmt::format("{}_p{}_{}", graph.name().empty() ? "model" : graph.name(), begin, end));

  for (const auto& name : LiveAt(analysis, begin)) {
    segment.inputs.push_back(SpecOf(analysis, name));
    *g->add_input() = ValueInfoFor(segment.inputs.back());
  }
  std::vector<std::string> outputs = LiveAt(analysis, end);
  if (last)
    outputs.insert(outputs.end(), analysis.constant_outputs.begin(),
                   analysis.constant_outputs.end());
  for (const auto& name : outputs) {
    segment.outputs.push_back(SpecOf(analysis, name));
    *g->add_output() = ValueInfoFor(segment.outputs.back());
  }
  for (int index : dense_read) *g->add_initializer() = graph.initializer(index);
  for (int index : sparse_read) *g->add_sparse_initializer() = graph.sparse_initializer(index);
  for (const auto& name : folded_shapes) {
    const auto& pnode = graph.node(analysis.producer.at(name));
    *g->add_initializer() = FoldStaticShape(name, pnode, SpecOf(analysis, pnode.input(0)));
  }
  std::vector<int> nodes(include.begin(), include.end());
  std::sort(nodes.begin(), nodes.end(),
            [&](int x, int y) { return analysis.topo_rank[x] < analysis.topo_rank[y]; });
  for (int node_index : nodes) *g->add_node() = graph.node(node_index);
  return segment;
}

Segment ExtractSegment(const onnx::ModelProto& model, const GraphAnalysis& analysis,
                       int first_block, int last_block) {
  const int blocks = static_cast<int>(analysis.blocks.size());
  if (first_block < 0 || last_block >= blocks || first_block > last_block)
    throw BadInput("block range [{}..{}] is not within 0..{}", first_block, last_block, blocks - 1);
  Segment segment = ExtractPositions(model, analysis, analysis.blocks[first_block].begin,
                                     analysis.blocks[last_block].end);
  segment.first_block = first_block;
  segment.last_block = last_block;
  return segment;
}

}  // namespace scission::graph
