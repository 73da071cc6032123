#include <optional>

#include <fmt/ranges.h>

#include "cli/common.h"
#include "common/files.h"
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
    std::string model, workers, plan_file;
    int rank = 1;
    PlanFlags flags;
    ConnectFlags connect;
    serve::ServeOptions serve;
    serve::AdaptOptions adapt;
    bool no_adapt = false, no_standby = false;
    int threads = 0, max_cut_tensors = graph::AnalysisOptions{}.max_cut_tensors;
    int64_t max_request_mb = 32;
  };
  auto o = std::make_shared<Options>();
  o->serve.grpc_listen = "127.0.0.1:8001";
  cmd->add_option("MODEL", o->model,
                  "stored model: .onnx path, zoo name, stored name or key (or --plan)");
  cmd->add_option("--plan", o->plan_file,
                  "serve this plan document (`scission plan --json`) instead of planning");
  cmd->add_option("--rank", o->rank, "which plan of --plan (default 1)");
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
  cmd->add_flag("--no-adapt", o->no_adapt,
                "serve the first plan only: never switch, no background probes");
  cmd->add_flag("--no-standby", o->no_standby,
                "keep no second plan loaded (a switch then loads its segments first)");
  cmd->add_option("--replan-ms", o->adapt.replan_ms, "re-plan on the estimates every MS (1000)");
  cmd->add_option("--switch-gain", o->adapt.switch_gain,
                  "predicted improvement needed to switch plans (0.10 = 10%)");
  cmd->add_option("--switch-window-ms", o->adapt.switch_window_ms,
                  "the gain must hold this long first (1000)");
  cmd->add_option("--probe-duty", o->adapt.probe_duty,
                  "background probes: share of one core per worker and of each link (0.05)");
  cmd->add_option("--max-estimate-age-ms", o->adapt.max_age_ms,
                  "older estimates fall back to the profile and stored links (15000)");
  cmd->add_option("--switch-log", o->adapt.switch_log,
                  "append each plan switch to FILE (JSON Lines)");
  AddConnectFlags(cmd, o->connect);
  cmd->callback([o, &global] {
    BlockStopSignals();

    if (o->max_request_mb < 1 || o->max_request_mb > 2000)
      throw BadInput("--max-request-mb must be 1..2000");
    o->serve.max_request_bytes = o->max_request_mb << 20;
    auto workers =
        o->workers.empty() ? std::map<std::string, std::string>{} : ParseWorkers(o->workers);
    store::Store db(global.DbPath());
    std::optional<plan::PlanDocument> given;
    if (!o->plan_file.empty()) {
      std::string text;
      try {
        text = ReadFileBytes(o->plan_file);
      } catch (const Error& e) {
        throw BadInput("--plan: {}", e.what());
      }
      auto json = nlohmann::json::parse(text, nullptr, false);
      if (json.is_discarded())
        throw BadInput("{}: not a plan file (expected `scission plan --json` output)",
                       o->plan_file);
      given = plan::PlanDocumentFromJson(json, o->plan_file);
      if (o->rank < 1 || o->rank > static_cast<int>(given->plans.size()))
        throw BadInput("--rank {}: {} has plans 1..{}", o->rank, o->plan_file, given->plans.size());
      if (o->model.empty()) o->model = given->model.key;
    }
    if (o->model.empty()) throw BadInput("MODEL or --plan is required");
    auto model = ResolveStoredModel(db, o->model);
    if (given && model.key != given->model.key)
      throw BadInput("{}: the plan is for another model ({})", o->plan_file, given->model.name);
    if (o->serve.name.empty()) o->serve.name = model.name;
    if (!ValidModelName(o->serve.name))
      throw BadInput("--name: '{}' is not a model name for the protocol (letters, digits, _ - .)",
                     o->serve.name);
    o->serve.Validate();
    o->adapt.adapt = !o->no_adapt;
    o->adapt.standby = !o->no_standby;
    o->adapt.Validate();
    auto req = given ? given->request : BuildPlanRequest(o->flags, db, model);
    req.top_k = 1;
    std::vector<std::string> notes;
    store::ProfileKey profile;
    if (given) req.profile = given->profile;
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
    if (plans.empty() && !given)
      throw BadInput("{}: no plan over this machine and --workers satisfies the constraints",
                     model.name);
    plan::PlanDocument doc;
    if (!given) {
      doc = MakePlanDocument(model, req, problem, plans, profile, notes,
                             plan::ObjectiveName(problem.objective));
    } else {
      doc = *given;
      doc.plans = {given->plans[static_cast<size_t>(o->rank - 1)]};
      for (const auto& s : doc.plans.front().stages)
        if (s.resource != doc.plans.front().stages.front().resource && !workers.count(s.resource))
          throw BadInput("--workers has no address for '{}', which plan {} of {} uses", s.resource,
                         o->rank, o->plan_file);
    }

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

    serve::Adapter adapter(o->adapt, pipeline, problem, [](const std::string& m) { Note(m); });
    serve::InferenceService service(
        o->serve, pipeline, [](const std::string& m) { Note(m); }, &adapter);
    // The adapter first: it loads the standby plan before anything is answered.
    adapter.Start();
    service.Start();
    const auto& best = doc.plans.front();
    if (global.json) {
      nlohmann::ordered_json ready = {{"model", o->serve.name},
                                      {"grpc_port", service.grpc_port()},
                                      {"http_port", service.http_port()},
                                      {"metrics_port", service.metrics_port()},
                                      {"plan", plan::ToJson(best)}};
      PrintJson(ready);
    } else {
      fmt::print("serving {} (plan: {}; {:.2f} ms predicted{}): grpc port {}", o->serve.name,
                 plan::PlanKey(best), best.latency_ms, o->no_adapt ? "; static" : "",
                 service.grpc_port());
      if (service.http_port() > 0) fmt::print(", http port {}", service.http_port());
      if (service.metrics_port() > 0) fmt::print(", metrics port {}", service.metrics_port());
      fmt::print("\n");
    }
    std::fflush(stdout);
    ServeUntilStopped(
        [&service, &adapter] {
          adapter.Stop();
          service.Shutdown();
        },
        [&service] { service.Wait(); });
  });
}

}  // namespace scission::cli
