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
  GraphBuilder& StringAttr(const std::string& name, const std::string& value);
  GraphBuilder& Domain(const std::string& domain);  // of the last node
  // Adds an opset import (e.g. "com.microsoft", 1).
  GraphBuilder& Import(const std::string& domain, int version);
  // A value_info entry: dtype and, unless `rank_known` is false, a shape whose negative dims
  // are unknown and whose dims named in `symbols` (same length, "" for none) are symbolic.
  GraphBuilder& ValueInfo(const std::string& name, int elem_type, bool rank_known,
                          std::vector<int64_t> shape = {}, std::vector<std::string> symbols = {});
  // An initializer of any type from raw little-endian bytes.
  GraphBuilder& RawInitializer(const std::string& name, int elem_type, std::vector<int64_t> dims,
                               const std::string& raw);
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
// U-Net: `levels` encoder levels (two Conv+Relu, channels << (level - 1), skip e<level>, MaxPool),
// a bottleneck, and decoder levels (ConvTranspose up, Concat with the skip, two Conv+Relu), then a
// 1x1 Conv and Sigmoid. Inside level l (encoder or decoder) l tensors are live; in the
// bottleneck levels + 1. Input [1, 3, size, size]; size divisible by 2^levels.
onnx::ModelProto UNetModel(int levels, int channels, int size);
// FPN with a DB-style head: backbone levels c1..c4 (channels << (level - 1), halving the size),
// lateral 1x1 convs, top-down Resize + Add, every level smoothed, resized to p1 and concatenated.
// Input [1, 3, size, size]; size divisible by 16; output [1, 1, size / 2, size / 2].
onnx::ModelProto FpnModel(int size, int channels);
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
// --- Models that ONNX Runtime runs but the ONNX library (1.12) does not know -----------------

// x[1,4,8,8] -> Conv -> Relu -> r; ReduceMean(r, axes [2,3] as an input, the opset 18 form);
// Mul(r, mean) -> Conv -> Relu -> y[1,4,8,8]. At `opset` >= 18, with IR version 8.
onnx::ModelProto ReduceMeanModel(int opset);
// x[1,4,8,8] -> com.microsoft FusedConv(Relu) -> com.microsoft Gelu -> Conv -> y (opset 17).
onnx::ModelProto ContribModel();
// x[1,4,8,8] float -> QuantizeLinear -> QLinearConv -> DequantizeLinear -> Relu -> QuantizeLinear
// -> QLinearConv -> DequantizeLinear -> y (opset 13, uint8 activations, int8 weights).
onnx::ModelProto QuantizedModel();
// ChainModel(3) with the nodes in reverse file order.
onnx::ModelProto ReversedChainModel();
// x[1,4,8,8] -> Conv -> Relu -> a, declared in value_info as float with no shape (or, with
// `symbolic`, as [N,4,8,8] with a dim_param); Shape(a) -> Gather(0) -> Concat(-1) -> Reshape(a)
// -> MatMul -> y[1,10]. Opset 18, so the ONNX library's shape inference does not fill `a` in.
onnx::ModelProto UntypedShapeModel(bool symbolic = false);
// The same graph as x (float [1,4,8,8]) -> Cast(float16) -> Conv -> Relu -> Conv -> Relu ->
// Flatten -> MatMul -> Cast(float) -> y[1,10], weights in float16.
onnx::ModelProto Float16Model();
// x[4,4] -> Relu -> RandomUniformLike -> Add -> Exp -> y: two runs never agree.
onnx::ModelProto RandomLikeModel();

// --- Control flow: subgraphs reading tensors of the outer graph ---------------------------------

// x[1,4,8,8] -> Conv0 -> Relu -> a -> Conv1 -> Relu -> b -> Conv2 -> Relu -> c; cond =
// ReduceMean(c) > `threshold`; If(cond): then Add(c, a), else Sub(c, a) (a is read only inside the
// branches, two blocks after it was made) -> Relu -> y.
onnx::ModelProto IfOuterReadModel(float threshold = 0.0f);
// x -> Conv -> Relu -> a -> Conv -> Relu -> b; Loop(3 times, v = b): v = 0.5 * v + a, with an
// If inside the body whose branches also read `a` (nested outer read) -> Relu -> y.
onnx::ModelProto LoopOuterReadModel();
// x[1,4,8,8] -> Conv -> Relu -> a -> Reshape [8,32] -> seq; g = Sigmoid(ReduceMean(a, rows)) [32];
// Scan over seq with state s[32] = 0: s = s + e * g (g read from the outer graph); -> Relu -> y.
onnx::ModelProto ScanOuterReadModel();

// A float tensor [count] whose data lives in `location` at `offset`.
onnx::TensorProto ExternalTensor(const std::string& name, int64_t count,
                                 const std::string& location, int64_t offset = 0);

}  // namespace scission::testing
