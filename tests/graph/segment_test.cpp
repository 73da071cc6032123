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

TEST(Segment, ShapeOfATensorWithUnknownShapeStaysANode) {
  // Before: Shape(a), a declared with a type but no shape, became an empty int64 initializer and
  // ONNX Runtime refused the segment ("Gather ... indices out of bounds").
  for (bool symbolic : {false, true}) {
    SCOPED_TRACE(symbolic ? "dim_param" : "no shape");
    auto model = ParseModel(testing::UntypedShapeModel(symbolic).SerializeAsString(), "u.onnx");
    auto a = Analyze(model.proto);
    const int n = static_cast<int>(a.blocks.size());
    for (int first = 0; first < n; ++first) {
      auto s = ExtractSegment(model.proto, a, first, n - 1);
      EXPECT_FALSE(InitializerNames(s.model).count("shape")) << first;
    }
    bool has_shape_node = false;
    auto whole = ExtractSegment(model.proto, a, 0, n - 1);
    for (const auto& node : whole.model.graph().node()) has_shape_node |= node.op_type() == "Shape";
    EXPECT_TRUE(has_shape_node);
  }
}

TEST(Segment, RejectsBadRanges) {
  auto model = ParseModel(testing::ChainModel(2).SerializeAsString(), "chain.onnx");
  auto a = Analyze(model.proto);
  EXPECT_THROW(ExtractSegment(model.proto, a, 1, 0), Error);
  EXPECT_THROW(ExtractSegment(model.proto, a, 0, 5), Error);
  EXPECT_THROW(ExtractSegment(model.proto, a, -1, 0), Error);
}

std::vector<std::string> OutputNames(const Segment& s) {
  std::vector<std::string> names;
  for (const auto& o : s.outputs) names.push_back(o.name);
  return names;
}

TEST(Segment, LastSegmentAlsoComputesOutputsThatComeFromConstants) {
  auto model = ParseModel(testing::ConstantOutputsModel().SerializeAsString(), "two.onnx");
  auto a = Analyze(model.proto, {.merge_trivial_blocks = false});
  const int n = static_cast<int>(a.blocks.size());
  ASSERT_GE(n, 2);
  for (int first = 0; first < n; ++first) {
    auto s = ExtractSegment(model.proto, a, first, n - 1);
    EXPECT_THAT(OutputNames(s), ::testing::ElementsAre("y", "k", "shape")) << first;
    EXPECT_NO_THROW(CheckModel(s.model, "segment")) << first;
    if (first < n - 1) {
      auto earlier = ExtractSegment(model.proto, a, 0, first);
      EXPECT_THAT(OutputNames(earlier), ::testing::Not(::testing::Contains("k")));
    }
  }
}

TEST(Segment, EyeLikeOfAnActivationBelongsToItsBlock) {
  auto model = ParseModel(testing::EyeLikeModel().SerializeAsString(), "eye.onnx");
  for (bool merge : {true, false}) {
    auto a = Analyze(model.proto, {.merge_trivial_blocks = merge});
    const int n = static_cast<int>(a.blocks.size());
    ASSERT_GE(n, 2);
    for (int first = 0; first < n; ++first)
      for (int last = first; last < n; ++last)
        EXPECT_NO_THROW(CheckModel(ExtractSegment(model.proto, a, first, last).model, "segment"))
            << first << ".." << last << (merge ? " merged" : "");
  }
}

TEST(Segment, RandomNodeRunsInExactlyOneSegmentOfAChain) {
  auto model = ParseModel(testing::RandomNoiseModel().SerializeAsString(), "noise.onnx");
  auto a = Analyze(model.proto, {.merge_trivial_blocks = false});
  int copies = 0;
  for (int b = 0; b < static_cast<int>(a.blocks.size()); ++b) {
    auto s = ExtractSegment(model.proto, a, b, b);
    EXPECT_NO_THROW(CheckModel(s.model, "segment")) << b;
    for (const auto& node : s.model.graph().node()) copies += node.op_type() == "RandomNormal";
  }
  EXPECT_EQ(copies, 1);
}

TEST(Segment, CarriesSparseInitializers) {
  auto proto = testing::ChainModel(2);
  auto* sparse = proto.mutable_graph()->add_sparse_initializer();
  auto* values = sparse->mutable_values();
  values->set_name("bias");
  values->set_data_type(onnx::TensorProto::FLOAT);
  values->add_dims(1);
  values->add_float_data(2.0f);
  auto* indices = sparse->mutable_indices();
  indices->set_data_type(onnx::TensorProto::INT64);
  indices->add_dims(1);
  indices->add_int64_data(3);
  sparse->add_dims(4);
  // r1 + bias: read in the last block only.
  auto* add = proto.mutable_graph()->add_node();
  add->set_op_type("Add");
  add->add_input("r1");
  add->add_input("bias");
  add->add_output("biased");
  proto.mutable_graph()->mutable_output(0)->set_name("biased");
  auto model = ParseModel(proto.SerializeAsString(), "sparse.onnx");
  auto a = Analyze(model.proto);
  const int n = static_cast<int>(a.blocks.size());
  auto last = ExtractSegment(model.proto, a, n - 1, n - 1);
  ASSERT_EQ(last.model.graph().sparse_initializer_size(), 1);
  EXPECT_EQ(last.model.graph().sparse_initializer(0).values().name(), "bias");
  EXPECT_NO_THROW(CheckModel(last.model, "segment"));
  EXPECT_EQ(ExtractSegment(model.proto, a, 0, 0).model.graph().sparse_initializer_size(), 0);
  EXPECT_THAT(BlockWeightBytes(model.proto, a).back(), ::testing::Gt(0));
}

}  // namespace
}  // namespace scission::graph
