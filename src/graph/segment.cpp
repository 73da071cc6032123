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
onnx::TensorProto FoldStaticShape(const onnx::NodeProto& node, const TensorSpec& input) {
  onnx::TensorProto value;
  value.set_name(node.output(0));
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

  std::unordered_set<int> include;
  std::set<std::string> folded_shapes;  // ordered: segments serialize the same way every time
  std::vector<int> stack;
  for (int p = begin; p < end; ++p) {
    include.insert(analysis.order[p]);
    stack.push_back(analysis.order[p]);
  }
  std::unordered_set<std::string> initializers_read;
  std::unordered_set<std::string> initializer_names;
  for (const auto& init : graph.initializer()) initializer_names.insert(init.name());
  while (!stack.empty()) {
    int node_index = stack.back();
    stack.pop_back();
    for (const auto& in : NodeInputs(graph.node(node_index))) {
      if (in.empty() || !analysis.constant_tensors.count(in)) continue;
      if (initializer_names.count(in)) {
        initializers_read.insert(in);
        continue;
      }
      int producer = analysis.producer.at(in);
      if (include.count(producer)) continue;
      const auto& pnode = graph.node(producer);
      bool static_shape = (pnode.op_type() == "Shape" || pnode.op_type() == "Size") &&
                          !analysis.constant_tensors.count(pnode.input(0));
      if (static_shape) {
        folded_shapes.insert(in);
        continue;
      }
      include.insert(producer);
      stack.push_back(producer);
    }
  }

  Segment segment;
  onnx::ModelProto& out = segment.model;
  out.set_ir_version(model.ir_version());
  *out.mutable_opset_import() = model.opset_import();
  out.set_producer_name("scission");
  out.set_producer_version("0.1");
  auto* g = out.mutable_graph();
  g->set_name(fmt::format("{}_p{}_{}", graph.name().empty() ? "model" : graph.name(), begin, end));

  for (const auto& name : analysis.live[begin]) {
    segment.inputs.push_back(SpecOf(analysis, name));
    *g->add_input() = ValueInfoFor(segment.inputs.back());
  }
  for (const auto& name : analysis.live[end]) {
    segment.outputs.push_back(SpecOf(analysis, name));
    *g->add_output() = ValueInfoFor(segment.outputs.back());
  }
  for (const auto& init : graph.initializer())
    if (initializers_read.count(init.name())) *g->add_initializer() = init;
  for (const auto& name : folded_shapes) {
    const auto& pnode = graph.node(analysis.producer.at(name));
    *g->add_initializer() = FoldStaticShape(pnode, SpecOf(analysis, pnode.input(0)));
  }
  for (int node_index : analysis.all_order)
    if (include.count(node_index)) *g->add_node() = graph.node(node_index);
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
