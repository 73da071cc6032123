#include <filesystem>
#include <set>

#include "cli/common.h"
#include "common/files.h"
#include "common/text.h"
#include "report/html.h"
#include "store/validate.h"

namespace scission::cli {

void RegisterReport(CLI::App& app, GlobalOptions& global) {
  auto* cmd = app.add_subcommand("report", "self-contained HTML report of benchmarks and plans");
  AddGlobalFlags(cmd, global);
  struct Options {
    std::string out = "report.html";
    std::string model;
    std::string tiers = "device,edge,cloud";
    int top = 3;
    std::string timeline;
  };
  auto o = std::make_shared<Options>();
  cmd->add_option("--out", o->out, "output file (default report.html)");
  cmd->add_option("--model", o->model, "only this model");
  cmd->add_option("--tiers", o->tiers, "tiers for the plans (default device,edge,cloud)");
  cmd->add_option("--top", o->top, "plans per model, 1..100 (default 3)");
  cmd->add_option("--timeline", o->timeline,
                  "add an adaptive-serving section from DIR (adaptive-requests.jsonl, "
                  "adaptive-switches.jsonl, adaptive-phases.json; scission demo --scenario "
                  "adaptive writes them)")
      ->type_name("DIR");
  cmd->callback([o, &global] {
    // Checked here: the report turns a planning error into a note in the page, not an exit code.
    constexpr int kMaxTop = 100;
    if (o->top < 1 || o->top > kMaxTop)
      throw BadInput("--top: {} is not within 1..{}", o->top, kMaxTop);
    report::ReportOptions options;
    options.top_k = o->top;
    options.tiers = SplitCommas(o->tiers);
    for (const auto& tier : options.tiers) store::ValidateName(tier, "--tiers");
    if (std::set<std::string>(options.tiers.begin(), options.tiers.end()).size() !=
        options.tiers.size())
      throw BadInput("--tiers: '{}' lists a tier twice", o->tiers);
    std::error_code ec;
    if (std::filesystem::is_directory(o->out, ec))
      throw BadInput("--out: {} is a directory; name the HTML file", o->out);
    if (!o->timeline.empty()) {
      if (!std::filesystem::is_directory(o->timeline, ec))
        throw BadInput("--timeline: {} is not a directory", o->timeline);
      options.timeline = report::ReadTimeline(o->timeline);
    }
    store::Store db(global.DbPath());
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
