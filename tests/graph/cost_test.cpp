#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "graph/analysis.h"
#include "graph/cost.h"
#include "graph/graph_builder.h"
#include "graph/model.h"

namespace scission::graph {
namespace {

// Costs with the model's own inferred shapes, as Analyze computes them by default.
std::vector<double> Costs(const onnx::ModelProto& proto) {
  auto model = ParseModel(proto.SerializeAsString(), "cost.onnx");
  return EstimateNodeCosts(model.proto, Analyze(model.proto).specs);
}

TEST(EstimateNodeCosts, ConvAndMatMulCountMacs) {
  auto costs = Costs(testing::ShapeArithmeticModel());
  // Nodes: Identity(w), Conv, Relu, Shape, Gather, Concat, Reshape, MatMul.
  ASSERT_EQ(costs.size(), 8u);
  EXPECT_DOUBLE_EQ(costs[1], kNodeCost + 4 * 8 * 8 * (4 * 3 * 3));  // out x kernel x C_in
  EXPECT_DOUBLE_EQ(costs[2], kNodeCost + kElementCost * 2 * 256);   // Relu reads and writes
  EXPECT_DOUBLE_EQ(costs[6], kNodeCost);                            // Reshape aliases
  EXPECT_DOUBLE_EQ(costs[7], kNodeCost + 10 * 256);                 // M x N x K
}

TEST(EstimateNodeCosts, GemmConvTransposeAndPools) {
  testing::GraphBuilder b;
  b.Input("x", {1, 8, 4, 4}).Input("v", {3, 16});
  b.Weight("up", {8, 2, 2, 2}).Weight("g", {5, 16});
  b.Node("ConvTranspose", {"x", "up"}, {"u"}).IntsAttr("strides", {2, 2});
  b.Node("MaxPool", {"u"}, {"p"}).IntsAttr("kernel_shape", {3, 3}).IntsAttr("pads", {1, 1, 1, 1});
  b.Node("Gemm", {"v", "g"}, {"y"}).IntAttr("transB", 1);
  b.Output("p", {1, 2, 8, 8}).Output("y", {3, 5});
  auto costs = Costs(b.Build());
  EXPECT_DOUBLE_EQ(costs[0], kNodeCost + 8 * 4 * 4 * (2 * 2 * 2));  // in x M/group x kernel
  EXPECT_DOUBLE_EQ(costs[1], kNodeCost + kElementCost * 2 * 8 * 8 * 9);
  EXPECT_DOUBLE_EQ(costs[2], kNodeCost + 3 * 5 * 16);
}

TEST(EstimateNodeCosts, RecurrentOpsCountEveryStep) {
  testing::GraphBuilder b;
  b.Input("x", {7, 2, 3});  // steps, batch, input
  b.Weight("w", {1, 4 * 5, 3}).Weight("r", {1, 4 * 5, 5});
  b.Node("LSTM", {"x", "w", "r"}, {"h"}).IntAttr("hidden_size", 5);
  b.Output("h", {7, 1, 2, 5});
  auto costs = Costs(b.Build());
  EXPECT_DOUBLE_EQ(costs[0], kNodeCost + 7 * 2 * (4 * 5 * 3 + 4 * 5 * 5));
}

TEST(EstimateNodeCosts, AttentionFromItsDimensions) {
  onnx::ModelProto model;
  auto* graph = model.mutable_graph();
  auto* node = graph->add_node();
  node->set_op_type("Attention");
  node->set_domain("com.microsoft");
  node->add_input("x");
  node->add_input("qkv");
  node->add_output("y");
  std::unordered_map<std::string, TensorSpec> specs = {{"x", {"x", DType::kFloat, {2, 10, 8}}},
                                                       {"qkv", {"qkv", DType::kFloat, {8, 24}}},
                                                       {"y", {"y", DType::kFloat, {2, 10, 8}}}};
  // Projections 2*10 tokens x 8 x 24, then scores and sum: 2 x tokens x S x H (H = 24 / 3).
  EXPECT_DOUBLE_EQ(EstimateNodeCosts(model, specs)[0], kNodeCost + 20 * 8 * 24 + 2.0 * 20 * 10 * 8);
}

TEST(EstimateNodeCosts, ControlFlowCostsItsBodies) {
  testing::GraphBuilder heavy;
  heavy.Weight("k", {16, 16});
  heavy.Node("MatMul", {"x", "k"}, {"t"}).Output("t", {4, 16});
  testing::GraphBuilder light;
  light.Node("Identity", {"x"}, {"e"}).Output("e", {4, 16});
  testing::GraphBuilder b;
  b.Input("x", {4, 16}).Input("cond", {}, onnx::TensorProto::BOOL);
  b.Node("If", {"cond"}, {"y"})
      .GraphAttr("then_branch", heavy.graph())
      .GraphAttr("else_branch", light.graph());
  b.Output("y", {4, 16});
  auto costs = Costs(b.Build());
  EXPECT_DOUBLE_EQ(costs[0], kNodeCost + (kNodeCost + 4 * 16 * 16));  // the costlier branch
}

TEST(EstimateNodeCosts, LoopRunsItsBodyTripCountTimes) {
  testing::GraphBuilder body;
  body.Input("i", {}, onnx::TensorProto::INT64).Input("c", {}, onnx::TensorProto::BOOL);
  body.Input("acc", {1, 64});
  body.Node("Identity", {"c"}, {"c_out"});
  body.Node("Exp", {"acc"}, {"acc_out"});
  body.Output("c_out", {}, onnx::TensorProto::BOOL).Output("acc_out", {1, 64});
  testing::GraphBuilder b;
  b.Input("x", {1, 64});
  b.graph().add_initializer()->CopyFrom([] {
    onnx::TensorProto t;
    t.set_name("trips");
    t.set_data_type(onnx::TensorProto::INT64);
    t.add_int64_data(5);
    return t;
  }());
  b.Node("Loop", {"trips", "", "x"}, {"y"}).GraphAttr("body", body.graph());
  b.Output("y", {1, 64});
  auto costs = Costs(b.Build());
  const double body_cost = kNodeCost + (kNodeCost + kElementCost * 2 * 64);
  EXPECT_DOUBLE_EQ(costs[0], kNodeCost + 5 * body_cost);
}

TEST(EstimateNodeCosts, UnknownShapesTakeTheMedianOfKnownNodes) {
  testing::GraphBuilder b;
  b.Input("x", {1, 4, 8, 8});
  b.Node("Exp", {"x"}, {"a"}).Node("Neg", {"a"}, {"b"}).Node("Tanh", {"b"}, {"y"});
  b.Output("y", {1, 4, 8, 8});
  onnx::ModelProto proto = b.Build();
  // Only x and y are known: Exp's output is taken as large as x; Neg knows none of its tensors.
  std::unordered_map<std::string, TensorSpec> specs = {{"x", {"x", DType::kFloat, {1, 4, 8, 8}}},
                                                       {"y", {"y", DType::kFloat, {1, 4, 8, 8}}},
                                                       {"a", {"a", DType::kFloat, {1, -1, 8, 8}}}};
  proto.mutable_graph()->clear_output();
  auto costs = EstimateNodeCosts(proto, specs);
  EXPECT_DOUBLE_EQ(costs[0], kNodeCost + kElementCost * 2 * 256);
  EXPECT_DOUBLE_EQ(costs[2], kNodeCost + kElementCost * 256);  // y only; b is unknown
  EXPECT_DOUBLE_EQ(costs[1], costs[0]);                        // median of the known two
}

TEST(EstimateNodeCosts, NothingKnownCostsTheSameForEveryNode) {
  testing::GraphBuilder b;
  b.Input("x", {1, 4});
  b.Node("Exp", {"x"}, {"a"}).Node("MatMul", {"a", "a"}, {"y"});
  auto costs = EstimateNodeCosts(b.Build(), {});
  // Inputs are declared in the graph: Exp knows x. Drop them to know nothing at all.
  onnx::ModelProto bare = b.Build();
  bare.mutable_graph()->clear_input();
  EXPECT_THAT(EstimateNodeCosts(bare, {}),
              ::testing::ElementsAre(kUnknownNodeCost, kUnknownNodeCost));
  EXPECT_GT(costs[0], kNodeCost);
}

}  // namespace
}  // namespace scission::graph
