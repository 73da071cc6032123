// Integration tests on real torchvision exports (cached under $SCISSION_HOME/models; exported on
// first use with Debian's python3-torchvision, which `make test` installs).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "graph/analysis.h"
#include "graph/model.h"
#include "profile/benchmark.h"
#include "profile/shapes.h"
#include "zoo/zoo.h"

namespace scission {
namespace {

graph::LoadedModel LoadZoo(const std::string& name) {
  std::string path = zoo::Export(
      name, false, [](const std::string& m) { std::fprintf(stderr, "%s\n", m.c_str()); });
  return graph::LoadModel(path);
}

struct Expectation {
  const char* name;
  size_t single_cuts;                // DESIGN.md, measured on torchvision exports
  size_t min_blocks;                 // the foundation issue's floor
  bool splits_at_multi_tensor_cuts;  // long blocks between single-tensor cuts get split
};

class ZooCounts : public ::testing::TestWithParam<Expectation> {};

TEST_P(ZooCounts, CutPointsAndBlocks) {
  auto e = GetParam();
  auto model = LoadZoo(e.name);
  const graph::AnalysisOptions options;
  auto a = graph::Analyze(model.proto, options);
  profile::ResolveBlockShapes(model, a);
  EXPECT_EQ(a.single_cuts.size(), e.single_cuts);
  EXPECT_GE(a.blocks.size(), e.min_blocks);
  size_t multi = 0;
  for (const auto& b : a.blocks) {
    ASSERT_GE(b.outputs.size(), 1u) << "block " << b.index;
    ASSERT_LE(b.outputs.size(), static_cast<size_t>(options.max_cut_tensors))
        << "block " << b.index;
    if (b.outputs.size() > 1) ++multi;
    for (const auto& out : b.outputs)
      EXPECT_GT(out.bytes(), 0) << "block " << b.index << " " << out.name;
  }
  if (e.splits_at_multi_tensor_cuts)
    EXPECT_GT(multi, 0u);
  else
    EXPECT_EQ(multi, 0u);
}

INSTANTIATE_TEST_SUITE_P(Zoo, ZooCounts,
                         ::testing::Values(Expectation{"resnet50", 37, 16, false},
                                           Expectation{"mobilenet_v2", 49, 17, false},
                                           Expectation{"densenet121", 26, 8, true},
                                           Expectation{"inception_v3", 25, 10, true},
                                           Expectation{"vgg19", 43, 20, false},
                                           Expectation{"vit_b_16", 31, 12, false}),
                         [](const auto& param_info) { return std::string(param_info.param.name); });

class ZooSplits : public ::testing::TestWithParam<const char*> {};

// The chain of all single-block segments, every 2-way split and a spread of 3-way splits
// reproduce the whole model's output within 1e-4 * max|y| + 1e-5.
TEST_P(ZooSplits, SegmentsReproduceTheWholeModel) {
  auto model = LoadZoo(GetParam());
  auto a = graph::Analyze(model.proto);
  auto backend = runtime::CreateBackend("onnxruntime");
  auto whole = backend->Prepare(model.proto.SerializeAsString(), {}, GetParam());
  auto input = runtime::MakeRandomInput(whole->inputs()[0], 11);
  auto expected = runtime::RunOnce(*whole, {input});
  const int n = static_cast<int>(a.blocks.size());

  std::vector<std::pair<int, int>> singles;
  for (int b = 0; b < n; ++b) singles.emplace_back(b, b);
  auto chained = profile::RunSegments(model, a, singles, {input}, *backend);
  auto cmp = profile::CompareOutputs(expected, chained);
  EXPECT_TRUE(cmp.ok) << cmp.max_abs_diff << " > " << cmp.tolerance;

  for (int cut = 0; cut + 1 < n; ++cut) {
    auto two = profile::RunSegments(model, a, {{0, cut}, {cut + 1, n - 1}}, {input}, *backend);
    EXPECT_TRUE(profile::CompareOutputs(expected, two).ok) << "2-way after block " << cut;
  }
  for (int i = 0; i < 6; ++i) {
    int x = (i * 5 + 1) % (n - 2);
    int y = x + 1 + (i * 3) % (n - 2 - x);
    auto three =
        profile::RunSegments(model, a, {{0, x}, {x + 1, y}, {y + 1, n - 1}}, {input}, *backend);
    EXPECT_TRUE(profile::CompareOutputs(expected, three).ok) << "3-way " << x << "/" << y;
  }
}

INSTANTIATE_TEST_SUITE_P(Zoo, ZooSplits,
                         ::testing::Values("resnet18", "squeezenet1_1", "mobilenet_v2",
                                           "inception_v3"));

}  // namespace
}  // namespace scission
