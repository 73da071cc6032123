// Issue 8, deliverable 7: If/Loop/Scan are atomic, and what their subgraphs read from the outer
// graph counts as read by the node, so the live sets, and with them every segment, carry it.
#include <algorithm>

#include <gtest/gtest.h>

#include "graph/graph_builder.h"
#include "graph/model.h"
#include "profile/shapes.h"
#include "profile/split_check.h"

namespace scission::profile {
namespace {

graph::LoadedModel Parse(const onnx::ModelProto& model, const std::string& label) {
  return graph::ParseModel(model.SerializeAsString(), label);
}

// Position of the node that writes `tensor`, in the activation order.
int PositionOf(const graph::GraphAnalysis& a, const onnx::ModelProto& model,
               const std::string& tensor) {
  for (int p = 0; p < a.positions(); ++p)
    for (const auto& out : model.graph().node(a.order[p]).output())
      if (out == tensor) return p;
  return -1;
}

// `tensor` is live at every position after its producer up to and including `reader`'s.
void ExpectLiveUntil(const graph::GraphAnalysis& a, const onnx::ModelProto& model,
                     const std::string& tensor, const std::string& reader_output) {
  const int from = PositionOf(a, model, tensor), to = PositionOf(a, model, reader_output);
  ASSERT_GE(from, 0);
  ASSERT_GT(to, from) << "the reader must come after the producer";
  for (int p = from + 1; p <= to; ++p) {
    auto live = graph::LiveAt(a, p);
    EXPECT_NE(std::find(live.begin(), live.end(), tensor), live.end())
        << tensor << " not live at position " << p;
  }
}

TEST(ControlFlow, IfBranchesReadingATensorMadeTwoBlocksEarlierKeepItLive) {
  for (float threshold : {0.0f, 1e9f}) {  // then branch (Add), else branch (Sub)
    SCOPED_TRACE(threshold);
    auto model = Parse(testing::IfOuterReadModel(threshold), "if.onnx");
    auto a = graph::Analyze(model.proto);
    ResolveBlockShapes(model, a);
    ResolveBlockShapes(model, a);  // as every verb does: types and shapes the library left open
    ExpectLiveUntil(a, model.proto, "a", "branch");
    // Every position between `a` and the If carries it, so a cut there carries two tensors.
    EXPECT_GE(testing::ExpectEveryTwoWaySplitReproduces(model, a, testing::RandomInputs(model)), 5);
  }
}

TEST(ControlFlow, LoopWithCarriedStateReadingAnOuterTensorThroughANestedIf) {
  auto model = Parse(testing::LoopOuterReadModel(), "loop.onnx");
  auto a = graph::Analyze(model.proto);
  ResolveBlockShapes(model, a);  // as every verb does: types and shapes the library left open
  ExpectLiveUntil(a, model.proto, "a", "v_final");
  EXPECT_GE(testing::ExpectEveryTwoWaySplitReproduces(model, a, testing::RandomInputs(model)), 3);
}

TEST(ControlFlow, ScanReadingAnOuterTensor) {
  auto model = Parse(testing::ScanOuterReadModel(), "scan.onnx");
  auto a = graph::Analyze(model.proto);
  ResolveBlockShapes(model, a);  // as every verb does: types and shapes the library left open
  ExpectLiveUntil(a, model.proto, "g", "s_final");
  EXPECT_GE(testing::ExpectEveryTwoWaySplitReproduces(model, a, testing::RandomInputs(model)), 3);
}

}  // namespace
}  // namespace scission::profile
