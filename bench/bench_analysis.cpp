// Graph analysis speed on graphs built in code. BM_AnalyzeWide/k: k branches of one input joined by
// a Sum, so k tensors are live at once (the shape that made the old analysis quadratic: 16000
// branches took 98 s and 4 GB). BM_AnalyzeLong/n: a chain of n nodes, n blocks.
// BM_ExtractEveryBlock/n: every block of the chain as a segment, which a benchmark run does.
#include <string>
#include <vector>

#include <benchmark/benchmark.h>
#include <onnx/onnx_pb.h>

#include "graph/analysis.h"
#include "graph/segment.h"

namespace {

void Declare(onnx::ValueInfoProto* info, const std::string& name) {
  info->set_name(name);
  auto* tensor = info->mutable_type()->mutable_tensor_type();
  tensor->set_elem_type(onnx::TensorProto::FLOAT);
  tensor->mutable_shape()->add_dim()->set_dim_value(1);
  tensor->mutable_shape()->add_dim()->set_dim_value(4);
}

void AddNode(onnx::GraphProto* graph, const std::string& op, const std::vector<std::string>& inputs,
             const std::string& output) {
  auto* node = graph->add_node();
  node->set_op_type(op);
  node->set_name(output + "_node");
  for (const auto& in : inputs) node->add_input(in);
  node->add_output(output);
}

onnx::ModelProto EmptyModel() {
  onnx::ModelProto model;
  model.set_ir_version(8);
  model.add_opset_import()->set_version(17);
  Declare(model.mutable_graph()->add_input(), "x");
  return model;
}

onnx::ModelProto WideModel(int branches) {
  onnx::ModelProto model = EmptyModel();
  auto* graph = model.mutable_graph();
  std::vector<std::string> names;
  for (int i = 0; i < branches; ++i) {
    names.push_back("b" + std::to_string(i));
    AddNode(graph, "Relu", {"x"}, names.back());
  }
  AddNode(graph, "Sum", names, "y");
  Declare(graph->add_output(), "y");
  return model;
}

onnx::ModelProto LongModel(int nodes) {
  onnx::ModelProto model = EmptyModel();
  auto* graph = model.mutable_graph();
  std::string previous = "x";
  for (int i = 0; i < nodes; ++i) {
    std::string name = "t" + std::to_string(i);
    AddNode(graph, i % 2 ? "Neg" : "Exp", {previous}, name);  // not trivial: one block each
    previous = name;
  }
  Declare(graph->add_output(), previous);
  return model;
}

void BM_AnalyzeWide(benchmark::State& state) {
  const auto model = WideModel(static_cast<int>(state.range(0)));
  for (auto _ : state) benchmark::DoNotOptimize(scission::graph::Analyze(model));
  state.SetComplexityN(state.range(0));
}
BENCHMARK(BM_AnalyzeWide)
    ->Arg(1000)
    ->Arg(4000)
    ->Arg(16000)
    ->Arg(64000)
    ->Unit(benchmark::kMillisecond)
    ->Complexity(benchmark::oNLogN);

void BM_AnalyzeLong(benchmark::State& state) {
  const auto model = LongModel(static_cast<int>(state.range(0)));
  for (auto _ : state) benchmark::DoNotOptimize(scission::graph::Analyze(model));
  state.SetComplexityN(state.range(0));
}
BENCHMARK(BM_AnalyzeLong)
    ->Arg(1000)
    ->Arg(4000)
    ->Arg(16000)
    ->Arg(64000)
    ->Unit(benchmark::kMillisecond)
    ->Complexity(benchmark::oNLogN);

void BM_ExtractEveryBlock(benchmark::State& state) {
  const auto model = LongModel(static_cast<int>(state.range(0)));
  const auto analysis = scission::graph::Analyze(model);
  const int blocks = static_cast<int>(analysis.blocks.size());
  for (auto _ : state)
    for (int b = 0; b < blocks; ++b)
      benchmark::DoNotOptimize(scission::graph::ExtractSegment(model, analysis, b, b));
  state.SetComplexityN(state.range(0));
}
BENCHMARK(BM_ExtractEveryBlock)
    ->Arg(1000)
    ->Arg(4000)
    ->Arg(16000)
    ->Unit(benchmark::kMillisecond)
    ->Complexity(benchmark::oNLogN);

}  // namespace

BENCHMARK_MAIN();
