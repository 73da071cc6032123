#include "cli/common.h"
#include "profile/shapes.h"
#include "zoo/zoo.h"

namespace scission::cli {

void RegisterDemo(CLI::App& app, GlobalOptions& global) {
  auto* cmd = app.add_subcommand(
      "demo", "export a zoo model, inspect it, benchmark it as resource 'local' (tier edge)");
  AddGlobalFlags(cmd, global);
  auto c = std::make_shared<BenchmarkCommand>();
  c->model = "resnet18";
  c->resource = "local";
  c->tier = "edge";
  c->options.harness.warmup_runs = 3;
  c->options.harness.min_runs = 15;
  cmd->add_option("--model", c->model, "zoo name or .onnx path (default resnet18)");
  cmd->add_option("--repeats", c->options.harness.min_runs, "measured runs per block (default 15)");
  cmd->add_option("--threads", c->options.session.threads, "intra-op threads (0 = default)");
  cmd->callback([c, &global] {
    std::string path = zoo::ResolveModel(c->model, [](const std::string& m) { Note(m); });
    if (!global.json) {
      auto model = graph::LoadModel(path);
      auto analysis = graph::Analyze(model.proto);
      profile::ResolveBlockShapes(model, analysis);
      fmt::print("== inspect {}\n", c->model);
      PrintInspection(path, model, analysis);
      fmt::print("\n== benchmark {} as resource '{}' (tier {})\n", c->model, c->resource, c->tier);
    }
    BenchmarkCommand run = *c;
    run.model = path;
    if (zoo::Find(c->model)) run.name = c->model;
    RunBenchmarkCommand(run, global);
  });
}

}  // namespace scission::cli
