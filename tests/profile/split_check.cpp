#include "profile/split_check.h"

#include <algorithm>

#include <gtest/gtest.h>

#include "graph/segment.h"
#include "profile/benchmark.h"
#include "runtime/backend.h"

namespace scission::testing {

namespace {

std::vector<Tensor> RunModel(const onnx::ModelProto& model, const std::vector<Tensor>& available,
                             const std::string& label) {
  auto backend = runtime::CreateBackend("onnxruntime");
  auto session = backend->Prepare(model.SerializeAsString(), {.threads = 1}, label);
  std::vector<Tensor> ordered;
  for (const auto& spec : session->inputs()) {
    auto it = std::find_if(available.begin(), available.end(),
                           [&](const Tensor& t) { return t.spec.name == spec.name; });
    if (it == available.end()) {
      ADD_FAILURE() << label << " needs '" << spec.name << "', which nothing before produced";
      return {};
    }
    ordered.push_back(*it);
  }
  return runtime::RunOnce(*session, ordered);
}

}  // namespace

std::vector<Tensor> RandomInputs(const graph::LoadedModel& model, uint64_t seed) {
  auto backend = runtime::CreateBackend("onnxruntime");
  auto session = backend->Prepare(model.proto.SerializeAsString(), {.threads = 1}, model.label);
  std::vector<Tensor> inputs;
  for (size_t i = 0; i < session->inputs().size(); ++i)
    inputs.push_back(runtime::MakeRandomInput(session->inputs()[i], seed + i));
  return inputs;
}

std::vector<Tensor> RunWhole(const graph::LoadedModel& model, const std::vector<Tensor>& inputs) {
  return RunModel(model.proto, inputs, model.label);
}

int ExpectEveryBlockSplitReproduces(const graph::LoadedModel& model,
                                    const graph::GraphAnalysis& analysis,
                                    const std::vector<Tensor>& inputs) {
  const std::vector<Tensor> expected = RunWhole(model, inputs);
  auto backend = runtime::CreateBackend("onnxruntime");
  int checked = 0;
  const int blocks = static_cast<int>(analysis.blocks.size());
  for (int a = 0; a + 1 < blocks; ++a) {
    auto two = profile::RunSegments(model, analysis, {{0, a}, {a + 1, blocks - 1}}, inputs,
                                    *backend, {.threads = 1});
    auto c = profile::CompareOutputs(expected, two);
    EXPECT_TRUE(c.ok) << model.label << ": split after block " << a << ": " << c.max_abs_diff
                      << " > " << c.tolerance;
    ++checked;
  }
  return checked;
}

int ExpectEveryTwoWaySplitReproduces(const graph::LoadedModel& model,
                                     const graph::GraphAnalysis& analysis,
                                     const std::vector<Tensor>& inputs) {
  int checked = ExpectEveryBlockSplitReproduces(model, analysis, inputs);
  const std::vector<Tensor> expected = RunWhole(model, inputs);
  const int n = analysis.positions();
  for (int p = 1; p < n; ++p) {
    const std::string where = model.label + " split at position " + std::to_string(p);
    auto first = graph::ExtractPositions(model.proto, analysis, 0, p);
    auto second = graph::ExtractPositions(model.proto, analysis, p, n);
    std::vector<Tensor> carried = RunModel(first.model, inputs, where + " (first half)");
    // Graph inputs read after the cut are live there, so the first half passes them on.
    auto outputs = RunModel(second.model, carried, where + " (second half)");
    std::vector<Tensor> ordered;
    for (const auto& e : expected)
      for (const auto& t : outputs)
        if (t.spec.name == e.spec.name) ordered.push_back(t);
    auto c = profile::CompareOutputs(expected, ordered);
    EXPECT_TRUE(c.ok) << where << ": " << c.max_abs_diff << " > " << c.tolerance;
    ++checked;
  }
  return checked;
}

}  // namespace scission::testing
