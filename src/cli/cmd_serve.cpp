#include <fmt/ranges.h>

#include "cli/common.h"
#include "deploy/pipeline.h"
#include "plan/from_store.h"
#include "plan/planner.h"
#include "serve/service.h"

namespace scission::cli {

namespace {

bool ValidModelName(const std::string& name) {
  if (name.empty() || name.size() > 128) return false;
  for (char c : name)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-' && c != '.')
      return false;
  return true;
}

}  // namespace

void RegisterServe(CLI::App& app, GlobalOptions& global) {
  auto* cmd = app.add_subcommand(
      "serve", "plan, deploy and answer the Open Inference Protocol (KServe v2) with the split");
  AddGlobalFlags(cmd, global);
  struct Options {
    std::string model, workers;
    PlanFlags flags;
    ConnectFlags connect;
    serve::ServeOptions serve;
    int threads = 0, max_cut_tensors = graph::AnalysisOptions{}.max_cut_tensors;
    int64_t max_request_mb = 32;
  };
  auto o = std::make_shared<Options>();
  o->serve.grpc_listen = "127.0.0.1:8001";
  cmd->add_option("MODEL", o->model, "stored model: .onnx path, zoo name, stored name or key")
      ->required();
  cmd->add_option("--workers", o->workers, "name=host:port,... for the remote resources to use");
  AddPlanFlags(cmd, o->flags);
  cmd->add_option("--max-cut-tensors", o->max_cut_tensors,
                  "as the model was benchmarked with (default 4)");
  cmd->add_option("--listen", o->serve.grpc_listen,
                  "gRPC address of the inference service (default 127.0.0.1:8001; port 0: any)");
  cmd->add_option("--http", o->serve.http_listen, "HTTP/JSON address of the inference service");
  cmd->add_option("--metrics", o->serve.metrics_listen, "address of /metrics (Prometheus)");
  cmd->add_option("--name", o->serve.name, "the model's name in the protocol (default: its name)");
  cmd->add_option("--threads", o->threads, "intra-op threads of this machine's segment");
  cmd->add_option("--max-request-mb", o->max_request_mb,
                  "largest request's tensors (default 32; a JSON body may be 6x)");
  cmd->add_option("--timeout-ms", o->serve.timeout_ms, "per-request deadline (default 60000)");
  AddConnectFlags(cmd, o->connect);
  cmd->callback([o, &global] {
    BlockStopSignals();

    if (o->max_request_mb < 1 || o->max_request_mb > 2000)
      throw BadInput("--max-request-mb must be 1..2000");
    o->serve.max_request_bytes = o->max_request_mb << 20;
    auto workers =
        o->workers.empty() ? std::map<std::string, std::string>{} : ParseWorkers(o->workers);
    store::Store db(global.DbPath());
    auto model = ResolveStoredModel(db, o->model);
    if (o->serve.name.empty()) o->serve.name = model.name;
    if (!ValidModelName(o->serve.name))
      throw BadInput("--name: '{}' is not a model name for the protocol (letters, digits, _ - .)",
                     o->serve.name);
    o->serve.Validate();
    auto req = BuildPlanRequest(o->flags, db, model);
    req.top_k = 1;
    std::vector<std::string> notes;
    store::ProfileKey profile;
    auto problem = plan::BuildProblem(db, req, &notes, &profile);
    // Only resources this service can reach: the first tier (this machine) and --workers.
    std::vector<std::string> unreachable;
    std::erase_if(problem.resources, [&](const plan::ResourceProfile& r) {
      bool drop = r.tier > 0 && !workers.count(r.name);
      if (drop) unreachable.push_back(r.name);
      return drop;
    });
    if (!unreachable.empty())
      notes.push_back(
          fmt::format("not in --workers, so not planned on: {}", fmt::join(unreachable, ", ")));
    auto plans = plan::PlanTopK(problem);
    for (const auto& n : notes) Note("note: " + n);
    if (plans.empty())
      throw BadInput("{}: no plan over this machine and --workers satisfies the constraints",
                     model.name);
    auto doc = MakePlanDocument(model, req, problem, plans, profile, notes,
                                plan::ObjectiveName(problem.objective));

    deploy::PipelineOptions po;
    po.plan_doc = doc;
    po.workers = workers;
    po.threads = o->threads;
    po.inputs.shapes = req.shapes;
    po.analysis.max_cut_tensors = o->max_cut_tensors;
    po.analysis.Validate();
    po.db_path = global.DbPath();
    po.connect = o->connect.Resolve();
    deploy::Pipeline pipeline(po, [](const std::string& m) { Note(m); });
    pipeline.Install(doc.plans.front());

    serve::InferenceService service(o->serve, pipeline, [](const std::string& m) { Note(m); });
    service.Start();
    const auto& best = doc.plans.front();
    std::vector<std::string> stages;
    for (const auto& s : best.stages)
      stages.push_back(s.last_block < s.first_block
                           ? s.resource + " (input only)"
                           : fmt::format("{} {}-{}", s.resource, s.first_block, s.last_block));
    if (global.json) {
      nlohmann::ordered_json ready = {{"model", o->serve.name},
                                      {"grpc_port", service.grpc_port()},
                                      {"http_port", service.http_port()},
                                      {"metrics_port", service.metrics_port()},
                                      {"plan", plan::ToJson(best)}};
      PrintJson(ready);
    } else {
      fmt::print("serving {} (plan: {}; {:.2f} ms predicted): grpc port {}", o->serve.name,
                 fmt::join(stages, " | "), best.latency_ms, service.grpc_port());
      if (service.http_port() > 0) fmt::print(", http port {}", service.http_port());
      if (service.metrics_port() > 0) fmt::print(", metrics port {}", service.metrics_port());
      fmt::print("\n");
    }
    std::fflush(stdout);
    ServeUntilStopped([&service] { service.Shutdown(); }, [&service] { service.Wait(); });
  });
}

}  // namespace scission::cli
