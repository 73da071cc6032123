#include <set>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/error.h"
#include "graph/analysis.h"
#include "graph/graph_builder.h"
#include "graph/model.h"
#include "graph/segment.h"

namespace scission::graph {
namespace {

std::set<std::string> InitializerNames(const onnx::ModelProto& m) {
  std::set<std::string> names;
  for (const auto& i : m.graph().initializer()) names.insert(i.name());
  return names;
}

class SegmentAllModels : public ::testing::TestWithParam<int> {};

TEST_P(SegmentAllModels, EveryRangePassesTheChecker) {
  auto model = ParseModel(testing::GeneratedModel(GetParam()).SerializeAsString(), "m.onnx");
  auto a = Analyze(model.proto);
  const int n = static_cast<int>(a.blocks.size());
  for (int first = 0; first < n; ++first) {
    for (int last = first; last < n; ++last) {
      auto s = ExtractSegment(model.proto, a, first, last);
      EXPECT_NO_THROW(CheckModel(s.model, "segment")) << first << ".." << last;
      ASSERT_EQ(s.outputs.size(), a.blocks[last].outputs.size());
      EXPECT_EQ(s.outputs[0].name, a.blocks[last].outputs[0].name);
      if (first > 0) {
        EXPECT_EQ(s.inputs[0].name, a.blocks[first - 1].outputs[0].name);
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Graphs, SegmentAllModels, ::testing::Values(0, 1, 2, 3));

TEST(Segment, KeepsOnlyTheInitializersItUses) {
  auto model = ParseModel(testing::ChainModel(3).SerializeAsString(), "chain.onnx");
  auto a = Analyze(model.proto);
  auto s = ExtractSegment(model.proto, a, 1, 1);
  EXPECT_EQ(InitializerNames(s.model), (std::set<std::string>{"w1", "w1_b"}));
  ASSERT_EQ(s.inputs.size(), 1u);
  EXPECT_EQ(s.inputs[0].shape, (std::vector<int64_t>{1, 4, 8, 8}));
}

TEST(Segment, FoldsShapeOfStaticTensorAndCarriesConstantNodes) {
  auto model = ParseModel(testing::ShapeArithmeticModel().SerializeAsString(), "shape.onnx");
  auto a = Analyze(model.proto);
  auto s = ExtractSegment(model.proto, a, 0, 0);  // conv, relu, reshape
  auto inits = InitializerNames(s.model);
  EXPECT_TRUE(inits.count("shape"));  // Shape(r) became a literal
  EXPECT_FALSE(inits.count("fc"));    // belongs to the next block
  bool has_shape_node = false;
  for (const auto& n : s.model.graph().node()) has_shape_node |= n.op_type() == "Shape";
  EXPECT_FALSE(has_shape_node);
}

TEST(Segment, RejectsBadRanges) {
  auto model = ParseModel(testing::ChainModel(2).SerializeAsString(), "chain.onnx");
  auto a = Analyze(model.proto);
  EXPECT_THROW(ExtractSegment(model.proto, a, 1, 0), Error);
  EXPECT_THROW(ExtractSegment(model.proto, a, 0, 5), Error);
  EXPECT_THROW(ExtractSegment(model.proto, a, -1, 0), Error);
}

}  // namespace
}  // namespace scission::graph
