#include "cli/common.h"
#include "common/files.h"
#include "common/text.h"
#include "report/html.h"

namespace scission::cli {

void RegisterReport(CLI::App& app, GlobalOptions& global) {
  auto* cmd = app.add_subcommand("report", "self-contained HTML report of benchmarks and plans");
  AddGlobalFlags(cmd, global);
  struct Options {
    std::string out = "report.html";
    std::string model;
    std::string tiers = "device,edge,cloud";
    int top = 3;
  };
  auto o = std::make_shared<Options>();
  cmd->add_option("--out", o->out, "output file (default report.html)");
  cmd->add_option("--model", o->model, "only this model");
  cmd->add_option("--tiers", o->tiers, "tiers for the plans (default device,edge,cloud)");
  cmd->add_option("--top", o->top, "plans per model (default 3)");
  cmd->callback([o, &global] {
    store::Store db(global.DbPath());
    report::ReportOptions options;
    options.top_k = o->top;
    options.tiers = SplitCommas(o->tiers);
    if (!o->model.empty()) options.only_model_key = ResolveStoredModel(db, o->model).key;
    std::string html = report::RenderReport(db, options);
    WriteFileAtomic(o->out, html);
    if (global.json)
      PrintJson({{"out", o->out}, {"bytes", html.size()}});
    else
      fmt::print("wrote {} ({} kB)\n", o->out, html.size() / 1000);
  });
}

}  // namespace scission::cli
