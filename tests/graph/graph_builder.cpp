#include "graph/graph_builder.h"

#include <algorithm>
#include <cstring>

namespace scission::testing {

GraphBuilder::GraphBuilder(int opset) {
  model_.set_ir_version(8);
  auto* op = model_.add_opset_import();
  op->set_domain("");
  op->set_version(opset);
  model_.mutable_graph()->set_name("test");
}

GraphBuilder& GraphBuilder::Input(const std::string& name, std::vector<int64_t> shape,
                                  int elem_type) {
  auto* in = model_.mutable_graph()->add_input();
  in->set_name(name);
  auto* t = in->mutable_type()->mutable_tensor_type();
  t->set_elem_type(elem_type);
  t->mutable_shape();
  for (int64_t d : shape) t->mutable_shape()->add_dim()->set_dim_value(d);
  return *this;
}

GraphBuilder& GraphBuilder::Weight(const std::string& name, std::vector<int64_t> shape,
                                   float scale) {
  auto* init = model_.mutable_graph()->add_initializer();
  init->set_name(name);
  init->set_data_type(onnx::TensorProto::FLOAT);
  int64_t n = 1;
  for (int64_t d : shape) {
    init->add_dims(d);
    n *= d;
  }
  for (int64_t i = 0; i < n; ++i)
    init->add_float_data(scale * static_cast<float>((i * 7919) % 13 - 6) / 6.0f);
  return *this;
}

GraphBuilder& GraphBuilder::Int64Initializer(const std::string& name, std::vector<int64_t> values) {
  auto* init = model_.mutable_graph()->add_initializer();
  init->set_name(name);
  init->set_data_type(onnx::TensorProto::INT64);
  init->add_dims(static_cast<int64_t>(values.size()));
  for (int64_t v : values) init->add_int64_data(v);
  return *this;
}

GraphBuilder& GraphBuilder::Node(const std::string& op, std::vector<std::string> inputs,
                                 std::vector<std::string> outputs, const std::string& name) {
  auto* node = model_.mutable_graph()->add_node();
  node->set_op_type(op);
  node->set_name(name.empty() ? outputs.front() + "_node" : name);
  for (auto& i : inputs) node->add_input(i);
  for (auto& o : outputs) node->add_output(o);
  return *this;
}

GraphBuilder& GraphBuilder::IntAttr(const std::string& name, int64_t value) {
  auto* node = model_.mutable_graph()->mutable_node(model_.graph().node_size() - 1);
  auto* attr = node->add_attribute();
  attr->set_name(name);
  attr->set_type(onnx::AttributeProto::INT);
  attr->set_i(value);
  return *this;
}

GraphBuilder& GraphBuilder::IntsAttr(const std::string& name, std::vector<int64_t> values) {
  auto* node = model_.mutable_graph()->mutable_node(model_.graph().node_size() - 1);
  auto* attr = node->add_attribute();
  attr->set_name(name);
  attr->set_type(onnx::AttributeProto::INTS);
  for (int64_t v : values) attr->add_ints(v);
  return *this;
}

GraphBuilder& GraphBuilder::FloatAttr(const std::string& name, float value) {
  auto* node = model_.mutable_graph()->mutable_node(model_.graph().node_size() - 1);
  auto* attr = node->add_attribute();
  attr->set_name(name);
  attr->set_type(onnx::AttributeProto::FLOAT);
  attr->set_f(value);
  return *this;
}

GraphBuilder& GraphBuilder::TensorAttr(const std::string& name, const onnx::TensorProto& value) {
  auto* node = model_.mutable_graph()->mutable_node(model_.graph().node_size() - 1);
  auto* attr = node->add_attribute();
  attr->set_name(name);
  attr->set_type(onnx::AttributeProto::TENSOR);
  *attr->mutable_t() = value;
  return *this;
}

GraphBuilder& GraphBuilder::GraphAttr(const std::string& name, const onnx::GraphProto& value) {
  auto* node = model_.mutable_graph()->mutable_node(model_.graph().node_size() - 1);
  auto* attr = node->add_attribute();
  attr->set_name(name);
  attr->set_type(onnx::AttributeProto::GRAPH);
  *attr->mutable_g() = value;
  return *this;
}

GraphBuilder& GraphBuilder::StringAttr(const std::string& name, const std::string& value) {
  auto* node = model_.mutable_graph()->mutable_node(model_.graph().node_size() - 1);
  auto* attr = node->add_attribute();
  attr->set_name(name);
  attr->set_type(onnx::AttributeProto::STRING);
  attr->set_s(value);
  return *this;
}

GraphBuilder& GraphBuilder::Domain(const std::string& domain) {
  model_.mutable_graph()->mutable_node(model_.graph().node_size() - 1)->set_domain(domain);
  return *this;
}

GraphBuilder& GraphBuilder::Import(const std::string& domain, int version) {
  auto* op = model_.add_opset_import();
  op->set_domain(domain);
  op->set_version(version);
  return *this;
}

GraphBuilder& GraphBuilder::ValueInfo(const std::string& name, int elem_type, bool rank_known,
                                      std::vector<int64_t> shape,
                                      std::vector<std::string> symbols) {
  auto* info = model_.mutable_graph()->add_value_info();
  info->set_name(name);
  auto* t = info->mutable_type()->mutable_tensor_type();
  t->set_elem_type(elem_type);
  if (!rank_known) return *this;
  t->mutable_shape();
  for (size_t i = 0; i < shape.size(); ++i) {
    auto* dim = t->mutable_shape()->add_dim();
    if (i < symbols.size() && !symbols[i].empty())
      dim->set_dim_param(symbols[i]);
    else if (shape[i] >= 0)
      dim->set_dim_value(shape[i]);
  }
  return *this;
}

GraphBuilder& GraphBuilder::RawInitializer(const std::string& name, int elem_type,
                                           std::vector<int64_t> dims, const std::string& raw) {
  auto* init = model_.mutable_graph()->add_initializer();
  init->set_name(name);
  init->set_data_type(elem_type);
  for (int64_t d : dims) init->add_dims(d);
  init->set_raw_data(raw);
  return *this;
}

GraphBuilder& GraphBuilder::Output(const std::string& name, std::vector<int64_t> shape,
                                   int elem_type) {
  auto* out = model_.mutable_graph()->add_output();
  out->set_name(name);
  auto* t = out->mutable_type()->mutable_tensor_type();
  t->set_elem_type(elem_type);
  t->mutable_shape();
  for (int64_t d : shape) t->mutable_shape()->add_dim()->set_dim_value(d);
  return *this;
}

namespace {
void Conv(GraphBuilder& b, const std::string& in, const std::string& out, const std::string& w,
          int channels_in = 4, int channels_out = 4) {
  b.Weight(w, {channels_out, channels_in, 3, 3}).Weight(w + "_b", {channels_out}, 0.01f);
  b.Node("Conv", {in, w, w + "_b"}, {out})
      .IntsAttr("pads", {1, 1, 1, 1})
      .IntsAttr("kernel_shape", {3, 3});
}
}  // namespace

onnx::ModelProto ChainModel(int layers) {
  GraphBuilder b;
  b.Input("x", {1, 4, 8, 8});
  std::string prev = "x";
  for (int i = 0; i < layers; ++i) {
    std::string c = "c" + std::to_string(i), r = "r" + std::to_string(i);
    Conv(b, prev, c, "w" + std::to_string(i));
    b.Node("Relu", {c}, {r});
    prev = r;
  }
  b.Output(prev, {1, 4, 8, 8});
  return b.Build();
}

onnx::ModelProto ResidualModel(int blocks) {
  GraphBuilder b;
  b.Input("x", {1, 4, 8, 8});
  std::string prev = "x";
  for (int i = 0; i < blocks; ++i) {
    std::string s = std::to_string(i);
    Conv(b, prev, "a" + s, "wa" + s);
    b.Node("Relu", {"a" + s}, {"ar" + s});
    Conv(b, "ar" + s, "b" + s, "wb" + s);
    b.Node("Add", {"b" + s, prev}, {"sum" + s});
    b.Node("Relu", {"sum" + s}, {"out" + s});
    prev = "out" + s;
  }
  b.Output(prev, {1, 4, 8, 8});
  return b.Build();
}

onnx::ModelProto ConcatModel() {
  GraphBuilder b;
  b.Input("x", {1, 4, 8, 8});
  Conv(b, "x", "stem", "ws");
  Conv(b, "stem", "br1", "w1");
  Conv(b, "stem", "br2a", "w2a");
  Conv(b, "br2a", "br2", "w2b");
  b.Node("MaxPool", {"stem"}, {"br3"})
      .IntsAttr("kernel_shape", {3, 3})
      .IntsAttr("pads", {1, 1, 1, 1});
  b.Node("Concat", {"br1", "br2", "br3"}, {"cat"}).IntAttr("axis", 1);
  Conv(b, "cat", "mix", "wm", 12, 4);
  // Two consumers of `mix`, joined again.
  b.Node("Sigmoid", {"mix"}, {"gate"});
  b.Node("Mul", {"mix", "gate"}, {"gated"});
  b.Node("GlobalAveragePool", {"gated"}, {"pool"});
  b.Output("pool", {1, 4, 1, 1});
  return b.Build();
}

onnx::ModelProto ShapeArithmeticModel() {
  GraphBuilder b;
  b.Input("x", {1, 4, 8, 8});
  b.Weight("w", {4, 4, 3, 3});
  b.Weight("wb", {4}, 0.01f);
  b.Node("Identity", {"w"}, {"w_id"});  // exporters emit Identity of weights
  b.Node("Conv", {"x", "w_id", "wb"}, {"c"}).IntsAttr("pads", {1, 1, 1, 1});
  b.Node("Relu", {"c"}, {"r"});
  b.Node("Shape", {"r"}, {"shape"});  // Shape-derived arithmetic on a static tensor
  b.Int64Initializer("idx0", {0});
  b.Node("Gather", {"shape", "idx0"}, {"batch"}).IntAttr("axis", 0);
  b.Int64Initializer("minus1", {-1});
  b.Node("Concat", {"batch", "minus1"}, {"newshape"}).IntAttr("axis", 0);
  b.Node("Reshape", {"r", "newshape"}, {"flat"});
  b.Weight("fc", {256, 10});
  b.Node("MatMul", {"flat", "fc"}, {"logits"});
  b.Output("logits", {1, 10});
  return b.Build();
}

namespace {
// A branch body: Identity(x) -> out, with a declared [1,4] float output.
onnx::GraphProto IdentityBranch(const std::string& name, const std::string& out) {
  GraphBuilder b;
  b.Node("Identity", {"x"}, {out}).Output(out, {1, 4});
  onnx::GraphProto g = b.graph();
  g.set_name(name);
  return g;
}
}  // namespace

onnx::ModelProto NestedIfModel(int depth) {
  // Built from the inside out: level d's then-branch holds the If of level d + 1.
  onnx::GraphProto inner =
      IdentityBranch("then" + std::to_string(depth), "o" + std::to_string(depth));
  for (int level = depth - 1; level >= 1; --level) {
    std::string s = std::to_string(level);
    GraphBuilder b;
    b.Node("If", {"cond"}, {"o" + s})
        .GraphAttr("then_branch", inner)
        .GraphAttr("else_branch", IdentityBranch("else" + s, "e" + s))
        .Output("o" + s, {1, 4});
    inner = b.graph();
    inner.set_name("then" + s);
  }
  GraphBuilder b;
  b.Input("x", {1, 4}).Input("cond", {}, onnx::TensorProto::BOOL);
  b.Node("Relu", {"x"}, {"r"});
  if (depth == 0) {
    b.Node("Identity", {"r"}, {"y"});
  } else {
    b.Node("If", {"cond"}, {"branch"})
        .GraphAttr("then_branch", inner)
        .GraphAttr("else_branch", IdentityBranch("else0", "e0"));
    b.Node("Add", {"r", "branch"}, {"y"});
  }
  b.Output("y", {1, 4});
  return b.Build();
}

onnx::TensorProto ExternalTensor(const std::string& name, int64_t count,
                                 const std::string& location, int64_t offset) {
  onnx::TensorProto t;
  t.set_name(name);
  t.set_data_type(onnx::TensorProto::FLOAT);
  t.add_dims(count);
  t.set_data_location(onnx::TensorProto::EXTERNAL);
  auto* entry = t.add_external_data();
  entry->set_key("location");
  entry->set_value(location);
  if (offset != 0) {
    entry = t.add_external_data();
    entry->set_key("offset");
    entry->set_value(std::to_string(offset));
  }
  return t;
}

onnx::ModelProto ExternalConstantModel(const std::string& location, bool in_subgraph) {
  GraphBuilder b;
  b.Input("x", {1, 4}).Node("Relu", {"x"}, {"r"});
  if (!in_subgraph) {
    b.Node("Constant", {}, {"k"}).TensorAttr("value", ExternalTensor("k", 4, location));
  } else {
    GraphBuilder then;
    then.Node("Constant", {}, {"k_then"}).TensorAttr("value", ExternalTensor("", 4, location));
    then.Output("k_then", {4});
    GraphBuilder otherwise;
    otherwise.Node("Constant", {}, {"k_else"}).TensorAttr("value", [] {
      onnx::TensorProto t;
      t.set_data_type(onnx::TensorProto::FLOAT);
      t.add_dims(4);
      for (int i = 0; i < 4; ++i) t.add_float_data(1.0f);
      return t;
    }());
    otherwise.Output("k_else", {4});
    b.Input("cond", {}, onnx::TensorProto::BOOL);
    b.Node("If", {"cond"}, {"k"})
        .GraphAttr("then_branch", then.graph())
        .GraphAttr("else_branch", otherwise.graph());
  }
  b.Node("Add", {"r", "k"}, {"y"}).Output("y", {1, 4});
  return b.Build();
}

onnx::ModelProto EyeLikeModel() {
  GraphBuilder b;
  b.Input("x", {4, 4});
  b.Node("Relu", {"x"}, {"r"});
  b.Node("EyeLike", {"x"}, {"eye"});
  b.Node("Exp", {"r"}, {"a"});
  b.Node("Add", {"a", "eye"}, {"b"});
  b.Node("Neg", {"b"}, {"y"});
  b.Output("y", {4, 4});
  return b.Build();
}

onnx::ModelProto RandomNoiseModel() {
  GraphBuilder b;
  b.Input("x", {4, 4});
  b.Node("Relu", {"x"}, {"r"});
  b.Node("RandomNormal", {}, {"noise"}).IntsAttr("shape", {4, 4});
  b.Node("Add", {"r", "noise"}, {"a"});
  b.Node("Exp", {"a"}, {"e"});
  b.Node("Mul", {"e", "noise"}, {"m"});
  b.Node("Neg", {"m"}, {"y"});
  b.Output("y", {4, 4});
  return b.Build();
}

onnx::ModelProto ConstantOutputsModel() {
  GraphBuilder b;
  b.Input("x", {1, 4}).Weight("w", {1, 4});
  b.Node("Exp", {"x"}, {"a"});
  b.Node("Shape", {"a"}, {"shape"});
  b.Node("Neg", {"a"}, {"n"});
  b.Node("Softmax", {"n"}, {"y"});
  b.Node("Relu", {"w"}, {"k"});
  b.Output("y", {1, 4}).Output("k", {1, 4}).Output("shape", {2}, onnx::TensorProto::INT64);
  return b.Build();
}

namespace {

template <typename T>
std::string RawBytes(const std::vector<T>& values) {
  return std::string(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(T));
}

// IEEE half precision, rounded to nearest even; enough for the small normal values used here.
uint16_t HalfBits(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, sizeof(bits));
  const uint32_t sign = (bits >> 16) & 0x8000;
  const int exponent = static_cast<int>((bits >> 23) & 0xff) - 127 + 15;
  uint32_t mantissa = bits & 0x7fffff;
  if (exponent <= 0) return static_cast<uint16_t>(sign);  // tiny values flush to zero
  uint32_t half = sign | (static_cast<uint32_t>(exponent) << 10) | (mantissa >> 13);
  const uint32_t rest = mantissa & 0x1fff;
  if (rest > 0x1000 || (rest == 0x1000 && (half & 1))) ++half;
  return static_cast<uint16_t>(half);
}

// A float16 weight with GraphBuilder::Weight's pattern.
void HalfWeight(GraphBuilder& b, const std::string& name, std::vector<int64_t> shape,
                float scale = 0.1f) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  std::vector<uint16_t> values;
  for (int64_t i = 0; i < n; ++i)
    values.push_back(HalfBits(scale * static_cast<float>((i * 7919) % 13 - 6) / 6.0f));
  b.RawInitializer(name, onnx::TensorProto::FLOAT16, shape, RawBytes(values));
}

onnx::GraphProto Named(onnx::GraphProto graph, const std::string& name) {
  graph.set_name(name);
  return graph;
}

}  // namespace

onnx::ModelProto ReduceMeanModel(int opset) {
  GraphBuilder b(opset);
  b.Input("x", {1, 4, 8, 8});
  Conv(b, "x", "c0", "w0");
  b.Node("Relu", {"c0"}, {"r"});
  b.Int64Initializer("axes", {2, 3});
  b.Node("ReduceMean", {"r", "axes"}, {"mean"}).IntAttr("keepdims", 1);
  b.Node("Mul", {"r", "mean"}, {"scaled"});
  Conv(b, "scaled", "c1", "w1");
  b.Node("Relu", {"c1"}, {"y"});
  b.Output("y", {1, 4, 8, 8});
  return b.Build();
}

onnx::ModelProto ContribModel() {
  GraphBuilder b;
  b.Import("com.microsoft", 1);
  b.Input("x", {1, 4, 8, 8});
  b.Weight("wf", {4, 4, 3, 3}).Weight("wf_b", {4}, 0.01f);
  b.Node("FusedConv", {"x", "wf", "wf_b"}, {"fused"})
      .Domain("com.microsoft")
      .StringAttr("activation", "Relu")
      .IntsAttr("pads", {1, 1, 1, 1})
      .IntsAttr("kernel_shape", {3, 3});
  b.Node("Gelu", {"fused"}, {"gelu"}).Domain("com.microsoft");
  Conv(b, "gelu", "c1", "w1");
  b.Node("Sigmoid", {"c1"}, {"y"});
  b.Output("y", {1, 4, 8, 8});
  return b.Build();
}

onnx::ModelProto QuantizedModel() {
  GraphBuilder b(13);
  b.Input("x", {1, 4, 8, 8});
  auto scalar_float = [&](const std::string& name, float value) {
    b.RawInitializer(name, onnx::TensorProto::FLOAT, {}, RawBytes(std::vector<float>{value}));
  };
  auto scalar_u8 = [&](const std::string& name, uint8_t value) {
    b.RawInitializer(name, onnx::TensorProto::UINT8, {}, RawBytes(std::vector<uint8_t>{value}));
  };
  scalar_float("x_scale", 1.0f / 255);
  scalar_u8("x_zero", 0);
  scalar_float("w_scale", 0.01f);
  b.RawInitializer("w_zero", onnx::TensorProto::INT8, {}, RawBytes(std::vector<int8_t>{0}));
  scalar_float("y_scale", 0.02f);
  scalar_u8("y_zero", 128);
  std::vector<int8_t> weights;
  for (int i = 0; i < 4 * 4 * 3 * 3; ++i)
    weights.push_back(static_cast<int8_t>((i * 37) % 61 - 30));
  b.RawInitializer("wq", onnx::TensorProto::INT8, {4, 4, 3, 3}, RawBytes(weights));
  b.RawInitializer("bias", onnx::TensorProto::INT32, {4},
                   RawBytes(std::vector<int32_t>{100, -50, 25, 0}));
  b.Node("QuantizeLinear", {"x", "x_scale", "x_zero"}, {"xq"});
  b.Node("QLinearConv",
         {"xq", "x_scale", "x_zero", "wq", "w_scale", "w_zero", "y_scale", "y_zero", "bias"},
         {"q1"})
      .IntsAttr("pads", {1, 1, 1, 1});
  b.Node("DequantizeLinear", {"q1", "y_scale", "y_zero"}, {"d1"});
  b.Node("Relu", {"d1"}, {"r1"});
  b.Node("QuantizeLinear", {"r1", "y_scale", "y_zero"}, {"q2"});
  b.Node("QLinearConv",
         {"q2", "y_scale", "y_zero", "wq", "w_scale", "w_zero", "y_scale", "y_zero", "bias"},
         {"q3"})
      .IntsAttr("pads", {1, 1, 1, 1});
  b.Node("DequantizeLinear", {"q3", "y_scale", "y_zero"}, {"y"});
  b.Output("y", {1, 4, 8, 8});
  return b.Build();
}

onnx::ModelProto ReversedChainModel() {
  onnx::ModelProto model = ChainModel(3);
  auto* nodes = model.mutable_graph()->mutable_node();
  std::reverse(nodes->begin(), nodes->end());
  return model;
}

onnx::ModelProto UntypedShapeModel(bool symbolic) {
  GraphBuilder b(18);
  b.Input("x", {1, 4, 8, 8});
  Conv(b, "x", "c", "w");
  b.Node("Relu", {"c"}, {"a"});
  if (symbolic)
    b.ValueInfo("a", onnx::TensorProto::FLOAT, true, {-1, 4, 8, 8}, {"N", "", "", ""});
  else
    b.ValueInfo("a", onnx::TensorProto::FLOAT, false);
  b.Node("Shape", {"a"}, {"shape"});
  b.Int64Initializer("idx0", {0});
  b.Node("Gather", {"shape", "idx0"}, {"batch"}).IntAttr("axis", 0);
  b.Int64Initializer("minus1", {-1});
  b.Node("Concat", {"batch", "minus1"}, {"newshape"}).IntAttr("axis", 0);
  b.Node("Reshape", {"a", "newshape"}, {"flat"});
  b.Weight("fc", {256, 10});
  b.Node("MatMul", {"flat", "fc"}, {"y"});
  b.Output("y", {1, 10});
  return b.Build();
}

onnx::ModelProto Float16Model() {
  GraphBuilder b;
  b.Input("x", {1, 4, 8, 8});
  b.Node("Cast", {"x"}, {"xh"}).IntAttr("to", onnx::TensorProto::FLOAT16);
  for (int i = 0; i < 2; ++i) {
    std::string s = std::to_string(i), in = i == 0 ? "xh" : "r0";
    HalfWeight(b, "w" + s, {4, 4, 3, 3});
    HalfWeight(b, "b" + s, {4}, 0.01f);
    b.Node("Conv", {in, "w" + s, "b" + s}, {"c" + s})
        .IntsAttr("pads", {1, 1, 1, 1})
        .IntsAttr("kernel_shape", {3, 3});
    b.Node("Relu", {"c" + s}, {"r" + s});
  }
  b.Node("Flatten", {"r1"}, {"flat"});
  HalfWeight(b, "fc", {256, 10});
  b.Node("MatMul", {"flat", "fc"}, {"logits"});
  b.Node("Cast", {"logits"}, {"y"}).IntAttr("to", onnx::TensorProto::FLOAT);
  b.Output("y", {1, 10});
  return b.Build();
}

onnx::ModelProto RandomLikeModel() {
  GraphBuilder b;
  b.Input("x", {4, 4});
  b.Node("Relu", {"x"}, {"r"});
  b.Node("RandomUniformLike", {"r"}, {"noise"});
  b.Node("Add", {"r", "noise"}, {"a"});
  b.Node("Exp", {"a"}, {"y"});
  b.Output("y", {4, 4});
  return b.Build();
}

namespace {
// A branch body computing op(c, a) -> out, [1,4,8,8] float.
onnx::GraphProto BinaryBranch(const std::string& op, const std::string& left,
                              const std::string& right, const std::string& out) {
  GraphBuilder b;
  b.Node(op, {left, right}, {out}).Output(out, {1, 4, 8, 8});
  return b.graph();
}
}  // namespace

onnx::ModelProto IfOuterReadModel(float threshold) {
  GraphBuilder b;
  b.Input("x", {1, 4, 8, 8});
  Conv(b, "x", "c0", "w0");
  b.Node("Relu", {"c0"}, {"a"});
  Conv(b, "a", "c1", "w1");
  b.Node("Relu", {"c1"}, {"b"});
  Conv(b, "b", "c2", "w2");
  b.Node("Relu", {"c2"}, {"c"});
  b.Node("ReduceMean", {"c"}, {"mean"}).IntAttr("keepdims", 0);
  b.RawInitializer("threshold", onnx::TensorProto::FLOAT, {},
                   RawBytes(std::vector<float>{threshold}));
  b.Node("Greater", {"mean", "threshold"}, {"cond"});
  b.Node("If", {"cond"}, {"branch"})
      .GraphAttr("then_branch", Named(BinaryBranch("Add", "c", "a", "then_out"), "then"))
      .GraphAttr("else_branch", Named(BinaryBranch("Sub", "c", "a", "else_out"), "else"));
  b.Node("Relu", {"branch"}, {"y"});
  b.Output("y", {1, 4, 8, 8});
  return b.Build();
}

onnx::ModelProto LoopOuterReadModel() {
  GraphBuilder body;
  body.Input("iteration", {}, onnx::TensorProto::INT64)
      .Input("cond_in", {}, onnx::TensorProto::BOOL)
      .Input("v_in", {1, 4, 8, 8});
  body.RawInitializer("half", onnx::TensorProto::FLOAT, {}, RawBytes(std::vector<float>{0.5f}));
  body.Node("Mul", {"v_in", "half"}, {"v_half"});
  // Nested: the If's branches read `a` from the main graph, two scopes out.
  body.Node("If", {"cond_in"}, {"v_out"})
      .GraphAttr("then_branch", Named(BinaryBranch("Add", "v_half", "a", "v_then"), "then"))
      .GraphAttr("else_branch", Named(BinaryBranch("Sub", "v_half", "a", "v_else"), "else"));
  body.Node("Identity", {"cond_in"}, {"cond_out"});
  body.Output("cond_out", {}, onnx::TensorProto::BOOL).Output("v_out", {1, 4, 8, 8});

  GraphBuilder b;
  b.Input("x", {1, 4, 8, 8});
  Conv(b, "x", "c0", "w0");
  b.Node("Relu", {"c0"}, {"a"});
  Conv(b, "a", "c1", "w1");
  b.Node("Relu", {"c1"}, {"b"});
  b.RawInitializer("trips", onnx::TensorProto::INT64, {}, RawBytes(std::vector<int64_t>{3}));
  b.RawInitializer("keep_going", onnx::TensorProto::BOOL, {}, RawBytes(std::vector<uint8_t>{1}));
  b.Node("Loop", {"trips", "keep_going", "b"}, {"v_final"})
      .GraphAttr("body", Named(body.graph(), "body"));
  b.Node("Relu", {"v_final"}, {"y"});
  b.Output("y", {1, 4, 8, 8});
  return b.Build();
}

onnx::ModelProto ScanOuterReadModel() {
  GraphBuilder body;
  body.Input("s_in", {32}).Input("e", {32});
  body.Node("Mul", {"e", "g"}, {"eg"});  // g: from the main graph
  body.Node("Add", {"s_in", "eg"}, {"s_out"});
  body.Output("s_out", {32});

  GraphBuilder b;
  b.Input("x", {1, 4, 8, 8});
  Conv(b, "x", "c0", "w0");
  b.Node("Relu", {"c0"}, {"a"});
  b.Int64Initializer("rows", {8, 32});
  b.Node("Reshape", {"a", "rows"}, {"seq"});
  b.Node("ReduceMean", {"seq"}, {"mean"}).IntsAttr("axes", {0}).IntAttr("keepdims", 0);
  b.Node("Sigmoid", {"mean"}, {"g"});
  b.RawInitializer("s0", onnx::TensorProto::FLOAT, {32}, RawBytes(std::vector<float>(32, 0.0f)));
  b.Node("Scan", {"s0", "seq"}, {"s_final"})
      .IntAttr("num_scan_inputs", 1)
      .GraphAttr("body", Named(body.graph(), "scan_body"));
  b.Node("Relu", {"s_final"}, {"y"});
  b.Output("y", {32});
  return b.Build();
}

namespace {

// Conv(3x3, pad 1) + Relu from `in` to `out`.
void ConvRelu(GraphBuilder& b, const std::string& in, const std::string& out, int channels_in,
              int channels_out) {
  Conv(b, in, out + "_conv", "w_" + out, channels_in, channels_out);
  b.Node("Relu", {out + "_conv"}, {out});
}

void MaxPool2(GraphBuilder& b, const std::string& in, const std::string& out) {
  b.Node("MaxPool", {in}, {out}).IntsAttr("kernel_shape", {2, 2}).IntsAttr("strides", {2, 2});
}

// Doubles height and width: ConvTranspose(2x2, stride 2) from `channels_in` to `channels_out`.
void UpConv(GraphBuilder& b, const std::string& in, const std::string& out, int channels_in,
            int channels_out) {
  b.Weight("w_" + out, {channels_in, channels_out, 2, 2});
  b.Node("ConvTranspose", {in, "w_" + out}, {out})
      .IntsAttr("kernel_shape", {2, 2})
      .IntsAttr("strides", {2, 2});
}

// Nearest-neighbour upsampling by `factor` in height and width.
void Upsample(GraphBuilder& b, const std::string& in, const std::string& out, float factor) {
  const std::string scales = out + "_scales";
  onnx::TensorProto t;
  t.set_name(scales);
  t.set_data_type(onnx::TensorProto::FLOAT);
  t.add_dims(4);
  for (float v : {1.0f, 1.0f, factor, factor}) t.add_float_data(v);
  *b.graph().add_initializer() = t;
  b.Node("Resize", {in, "", scales}, {out});
}
}  // namespace

onnx::ModelProto UNetModel(int levels, int channels, int size) {
  GraphBuilder b;
  b.Input("x", {1, 3, size, size});
  std::string current = "x";
  int c_in = 3;
  for (int level = 1; level <= levels; ++level) {  // encoder: skips e1..eL
    std::string l = std::to_string(level);
    int c = channels << (level - 1);
    ConvRelu(b, current, "enc" + l + "a", c_in, c);
    ConvRelu(b, "enc" + l + "a", "e" + l, c, c);
    MaxPool2(b, "e" + l, "pool" + l);
    current = "pool" + l;
    c_in = c;
  }
  const int bottom = channels << levels;
  ConvRelu(b, current, "mid_a", c_in, bottom);
  ConvRelu(b, "mid_a", "mid", bottom, bottom);
  current = "mid";
  c_in = bottom;
  for (int level = levels; level >= 1; --level) {  // decoder: each level reads its skip
    std::string l = std::to_string(level);
    int c = channels << (level - 1);
    UpConv(b, current, "up" + l, c_in, c);
    b.Node("Concat", {"up" + l, "e" + l}, {"cat" + l}).IntAttr("axis", 1);
    ConvRelu(b, "cat" + l, "dec" + l + "a", 2 * c, c);
    ConvRelu(b, "dec" + l + "a", "d" + l, c, c);
    current = "d" + l;
    c_in = c;
  }
  b.Weight("w_head", {1, channels, 1, 1});
  b.Node("Conv", {current, "w_head"}, {"logits"});
  b.Node("Sigmoid", {"logits"}, {"mask"});
  b.Output("mask", {1, 1, size, size});
  return b.Build();
}

onnx::ModelProto FpnModel(int size, int channels) {
  GraphBuilder b;
  b.Input("x", {1, 3, size, size});
  std::string current = "x";
  int c_in = 3;
  for (int level = 1; level <= 4; ++level) {  // backbone: c1..c4, each half the size
    std::string l = std::to_string(level);
    int c = channels << (level - 1);
    ConvRelu(b, current, "stage" + l, c_in, c);
    ConvRelu(b, "stage" + l, "c" + l + "_full", c, c);
    MaxPool2(b, "c" + l + "_full", "c" + l);
    current = "c" + l;
    c_in = c;
  }
  // Top-down: p4 = lateral(c4); p_l = lateral(c_l) + upsample(p_{l+1}).
  for (int level = 4; level >= 1; --level) {
    std::string l = std::to_string(level);
    int c = channels << (level - 1);
    b.Weight("w_lat" + l, {channels, c, 1, 1});
    std::string lateral = level == 4 ? "p4" : "lat" + l;
    b.Node("Conv", {"c" + l, "w_lat" + l}, {lateral});
    if (level < 4) {
      Upsample(b, "p" + std::to_string(level + 1), "td" + l, 2.0f);
      b.Node("Add", {lateral, "td" + l}, {"p" + l});
    }
  }
  // Head (DB-style): every level smoothed, brought to p1's size and concatenated.
  std::vector<std::string> heads;
  for (int level = 1; level <= 4; ++level) {
    std::string l = std::to_string(level);
    ConvRelu(b, "p" + l, "smooth" + l, channels, channels);
    std::string head = "smooth" + l;
    if (level > 1) {
      Upsample(b, head, "head" + l, static_cast<float>(1 << (level - 1)));
      head = "head" + l;
    }
    heads.push_back(head);
  }
  b.Node("Concat", heads, {"fused"}).IntAttr("axis", 1);
  ConvRelu(b, "fused", "fused_conv", 4 * channels, channels);
  b.Weight("w_out", {1, channels, 1, 1});
  b.Node("Conv", {"fused_conv", "w_out"}, {"prob_logits"});
  b.Node("Sigmoid", {"prob_logits"}, {"prob"});
  b.Output("prob", {1, 1, size / 2, size / 2});
  return b.Build();
}

onnx::ModelProto GeneratedModel(int number) {
  switch (number) {
    case 0:
      return ChainModel(4);
    case 1:
      return ResidualModel(3);
    case 2:
      return ConcatModel();
    default:
      return ShapeArithmeticModel();
  }
}

}  // namespace scission::testing
