#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/error.h"
#include "graph/analysis.h"
#include "graph/graph_builder.h"
#include "graph/model.h"

namespace scission::graph {
namespace {

using ::testing::ElementsAre;

GraphAnalysis AnalyzeChecked(const onnx::ModelProto& proto, AnalysisOptions options = {}) {
  auto model = ParseModel(proto.SerializeAsString(), "test.onnx");
  return Analyze(model.proto, options);
}

std::vector<std::string> BlockOutputs(const GraphAnalysis& a) {
  std::vector<std::string> names;
  for (const auto& b : a.blocks) names.push_back(b.outputs.at(0).name);
  return names;
}

TEST(Analyze, ChainHasACutAfterEveryNodeAndMergesRelus) {
  auto a = AnalyzeChecked(testing::ChainModel(3));
  EXPECT_EQ(a.positions(), 6);
  EXPECT_THAT(a.single_cuts, ElementsAre(1, 2, 3, 4, 5));
  EXPECT_THAT(BlockOutputs(a), ElementsAre("r0", "r1", "r2"));
  EXPECT_EQ(a.blocks[0].output_bytes(), 1 * 4 * 8 * 8 * 4);
  EXPECT_THAT(a.blocks[1].ops, ElementsAre(std::pair<std::string, int>("Conv", 1),
                                           std::pair<std::string, int>("Relu", 1)));
  auto raw = AnalyzeChecked(testing::ChainModel(3), {.merge_trivial_blocks = false});
  EXPECT_EQ(raw.blocks.size(), 6u);
}

TEST(Analyze, ResidualSkipKeepsTwoTensorsLive) {
  auto a = AnalyzeChecked(testing::ResidualModel(2));
  // Inside a residual block the skip input is live next to the main path: no cut there.
  EXPECT_THAT(a.single_cuts, ElementsAre(4, 5, 9));
  EXPECT_EQ(a.live[2].size(), 2u);
  EXPECT_THAT(BlockOutputs(a), ElementsAre("out0", "out1"));
}

TEST(Analyze, ConcatBranchesAndMultipleConsumers) {
  auto a = AnalyzeChecked(testing::ConcatModel());
  EXPECT_THAT(a.single_cuts, ElementsAre(1, 6, 7, 9));
  EXPECT_THAT(BlockOutputs(a), ElementsAre("stem", "cat", "mix", "gated", "pool"));
  EXPECT_EQ(a.live[4].size(), 3u);  // stem, br1, br2 while the max-pool branch waits
}

TEST(Analyze, ConstantsAndShapeArithmeticAreNotActivations) {
  auto a = AnalyzeChecked(testing::ShapeArithmeticModel());
  // Identity(weight), Shape(static tensor), Gather and Concat on shapes are constants.
  EXPECT_EQ(a.positions(), 4);
  EXPECT_TRUE(a.constant_tensors.count("w_id"));
  EXPECT_TRUE(a.constant_tensors.count("shape"));
  EXPECT_TRUE(a.constant_tensors.count("newshape"));
  EXPECT_THAT(a.single_cuts, ElementsAre(1, 2, 3));
  EXPECT_THAT(BlockOutputs(a), ElementsAre("flat", "logits"));  // Relu and Reshape merged
}

TEST(Analyze, OrderIsTopologicalEvenWhenFileIsNot) {
  testing::GraphBuilder b;
  b.Input("x", {1, 4});
  b.Node("Relu", {"a"}, {"y"});  // listed before its producer
  b.Node("Sigmoid", {"x"}, {"a"});
  b.Output("y", {1, 4});
  auto proto = b.Build();
  auto a = Analyze(proto);  // the checker rejects unsorted graphs, so analyze directly
  EXPECT_THAT(a.order, ElementsAre(1, 0));
}

TEST(Analyze, CycleIsBadInput) {
  testing::GraphBuilder b;
  b.Input("x", {1, 4});
  b.Node("Add", {"x", "b"}, {"a"});
  b.Node("Relu", {"a"}, {"b"});
  b.Output("b", {1, 4});
  auto proto = b.Build();
  EXPECT_THROW(Analyze(proto), Error);
}

}  // namespace
}  // namespace scission::graph
