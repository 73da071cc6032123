// Builds tiny ONNX models in code for tests (no committed binaries).
#pragma once

#include <string>
#include <vector>

#include <onnx/onnx_pb.h>

namespace scission::testing {

class GraphBuilder {
 public:
  explicit GraphBuilder(int opset = 17);
  GraphBuilder& Input(const std::string& name, std::vector<int64_t> shape,
                      int elem_type = onnx::TensorProto::FLOAT);
  // Float initializer filled with a deterministic pattern.
  GraphBuilder& Weight(const std::string& name, std::vector<int64_t> shape, float scale = 0.1f);
  GraphBuilder& Int64Initializer(const std::string& name, std::vector<int64_t> values);
  GraphBuilder& Node(const std::string& op, std::vector<std::string> inputs,
                     std::vector<std::string> outputs, const std::string& name = "");
  GraphBuilder& IntAttr(const std::string& name, int64_t value);  // on the last node
  GraphBuilder& IntsAttr(const std::string& name, std::vector<int64_t> values);
  GraphBuilder& FloatAttr(const std::string& name, float value);
  GraphBuilder& TensorAttr(const std::string& name, const onnx::TensorProto& value);
  GraphBuilder& GraphAttr(const std::string& name, const onnx::GraphProto& value);
  GraphBuilder& Output(const std::string& name, std::vector<int64_t> shape,
                       int elem_type = onnx::TensorProto::FLOAT);
  onnx::GraphProto& graph() { return *model_.mutable_graph(); }
  onnx::ModelProto Build() const { return model_; }
  std::string Bytes() const { return model_.SerializeAsString(); }

 private:
  onnx::ModelProto model_;
};

// Conv(3x3, pad 1) + Relu chain: in -> c1 -> r1 -> ... ; channels stay 4.
onnx::ModelProto ChainModel(int layers);
// Residual block: x -> conv -> relu -> conv -> add(x) -> relu, repeated `blocks` times.
onnx::ModelProto ResidualModel(int blocks);
// Inception-like: branches of conv concatenated, then a conv consumed by two nodes.
onnx::ModelProto ConcatModel();
// The four generated graphs above, by number 0..3 (chain, residual, concat, shape arithmetic).
onnx::ModelProto GeneratedModel(int number);
// A model whose reshape uses Shape-derived arithmetic and an Identity of a weight.
onnx::ModelProto ShapeArithmeticModel();
// x[1,4] -> If(cond) nested `depth` deep (the main graph is depth 0; the innermost branch is at
// `depth`), each level's then-branch holding the next If, else-branches an Identity of x.
onnx::ModelProto NestedIfModel(int depth);
// x[1,4] -> Relu -> Add(Constant k) -> y, where the Constant's tensor names `location` as external
// data (length 16 bytes: four floats), optionally inside an If branch.
onnx::ModelProto ExternalConstantModel(const std::string& location, bool in_subgraph = false);
// EyeLike of the input x[4,4], read only two blocks later: x -> Relu, Exp, Add(EyeLike(x)), Neg.
onnx::ModelProto EyeLikeModel();
// One RandomNormal [4,4] read by two nodes in different places: x -> Relu, Add(noise), Exp,
// Mul(noise), Neg.
onnx::ModelProto RandomNoiseModel();
// Two activation outputs' worth of work plus outputs computed from constants only: y (activation),
// k = Relu(weight) and shape = Shape(an activation with a static shape).
onnx::ModelProto ConstantOutputsModel();
// A float tensor [count] whose data lives in `location` at `offset`.
onnx::TensorProto ExternalTensor(const std::string& name, int64_t count,
                                 const std::string& location, int64_t offset = 0);

}  // namespace scission::testing
