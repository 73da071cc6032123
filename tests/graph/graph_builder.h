// Builds tiny ONNX models in code for tests (no committed binaries).
#pragma once

#include <string>
#include <vector>

#include <onnx/onnx_pb.h>

namespace scission::testing {

class GraphBuilder {
 public:
  explicit GraphBuilder(int opset = 17);
  GraphBuilder& Input(const std::string& name, std::vector<int64_t> shape);
  // Float initializer filled with a deterministic pattern.
  GraphBuilder& Weight(const std::string& name, std::vector<int64_t> shape, float scale = 0.1f);
  GraphBuilder& Int64Initializer(const std::string& name, std::vector<int64_t> values);
  GraphBuilder& Node(const std::string& op, std::vector<std::string> inputs,
                     std::vector<std::string> outputs, const std::string& name = "");
  GraphBuilder& IntAttr(const std::string& name, int64_t value);  // on the last node
  GraphBuilder& IntsAttr(const std::string& name, std::vector<int64_t> values);
  GraphBuilder& Output(const std::string& name, std::vector<int64_t> shape);  // float
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

}  // namespace scission::testing
