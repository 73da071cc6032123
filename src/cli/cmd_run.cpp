#include <fmt/ranges.h>

#include "cli/common.h"
#include "common/files.h"
#include "deploy/runner.h"
#include "plan/document.h"

namespace scission::cli {

void PrintRunSummary(const deploy::RunSummary& s) {
  Table table({"part", "predicted ms", "median ms", "p90 ms", "error"});
  auto add = [&](const deploy::StageSummary& x) {
    double error = x.median_ms > 0 ? (x.predicted_ms - x.median_ms) / x.median_ms * 100 : 0;
    table.Add({x.name, fmt::format("{:.2f}", x.predicted_ms), fmt::format("{:.2f}", x.median_ms),
               fmt::format("{:.2f}", x.p90_ms), fmt::format("{:+.1f}%", error)});
  };
  for (size_t i = 0; i < s.stages.size(); ++i) {
    add(s.stages[i]);
    if (i < s.hops.size()) add(s.hops[i]);
  }
  add(s.total);
  table.Print();
  for (const auto& h : s.hops)
    if (!h.codec.empty() && h.codec != "none")
      fmt::print(
          "hop {} in {} ({} on the link): encode {:.2f} ms (predicted {:.2f}), decode {:.2f} ms "
          "(predicted {:.2f})\n",
          h.name, h.codec, FormatBytes(h.bytes), h.encode_ms, h.predicted_encode_ms, h.decode_ms,
          h.predicted_decode_ms);
  if (s.output_rel_l2 >= 0) {
    fmt::print(
        "output error of the lossy codecs: relative L2 {:.3g} (predicted {:.3g}), max abs "
        "{:.3g}",
        s.output_rel_l2, s.plan.output_error, s.output_max_abs);
    if (s.output_top1 >= 0) fmt::print(", top-1 agreement {:.0f}%", 100 * s.output_top1);
    fmt::print(" (one answer against the whole model run here)\n");
  }
  fmt::print("requests {}: {} ok, {} failed, {} re-plans; {:.1f} req/s measured", s.requests, s.ok,
             s.failed, s.replans, s.throughput_per_s);
  if (s.predicted_throughput_per_s > 0)
    fmt::print(" (pipelined bound {:.1f} req/s)", s.predicted_throughput_per_s);
  fmt::print("\n");
  for (const auto& [message, count] : s.errors) fmt::print("  {} x {}\n", count, message);
}

void RegisterRun(CLI::App& app, GlobalOptions& global) {
  auto* cmd = app.add_subcommand("run", "execute a plan across workers; predicted vs measured");
  AddGlobalFlags(cmd, global);
  struct Options {
    std::string plan, workers, fallback;
    ConnectFlags connect;
    InputFlags inputs;
    deploy::RunOptions run;
  };
  auto o = std::make_shared<Options>();
  cmd->add_option("--plan", o->plan, "plan.json from `scission plan --json`")->required();
  cmd->add_option("--workers", o->workers, "name=host:port,... for every remote resource")
      ->required();
  cmd->add_option("--requests", o->run.requests, "measured requests (default 20)");
  cmd->add_option("--warmup", o->run.warmup, "untimed requests first (default 2)");
  cmd->add_option("--concurrency", o->run.concurrency, "requests in flight (default 1)");
  cmd->add_option("--rank", o->run.rank, "which plan of the file (default 1)");
  cmd->add_option("--threads", o->run.threads,
                  "intra-op threads of the local segment (workers use their --threads)");
  cmd->add_option("--fallback", o->fallback, "replan: on a dead worker, re-plan over the rest");
  cmd->add_option("--timeout-ms", o->run.request_timeout_ms,
                  "per-request deadline (default 60000)");
  AddConnectFlags(cmd, o->connect);
  AddInputFlags(cmd, o->inputs);
  cmd->callback([o, &global] {
    if (!o->fallback.empty() && o->fallback != "replan")
      throw BadInput("--fallback supports only 'replan'");
    o->run.fallback_replan = o->fallback == "replan";
    o->run.db_path = global.DbPath();
    o->run.connect = o->connect.Resolve();
    o->run.inputs = o->inputs.Options();
    o->run.analysis = o->inputs.Analysis();
    auto text = ReadFileBytes(o->plan);
    auto json = nlohmann::json::parse(text, nullptr, false);
    if (json.is_discarded())
      throw BadInput("{}: not a plan file (expected `scission plan --json` output)", o->plan);
    o->run.plan_doc = plan::PlanDocumentFromJson(json, o->plan);
    o->run.workers = ParseWorkers(o->workers);
    auto summary = deploy::RunPlan(o->run, [](const std::string& m) { Note(m); });
    if (global.json) {
      auto doc = deploy::SummaryJson(summary);
      doc["plan"] = plan::ToJson(summary.plan);
      PrintJson(doc);
    } else {
      PrintRunSummary(summary);
    }
  });
}

}  // namespace scission::cli
