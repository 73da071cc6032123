#include <algorithm>
#include <filesystem>

#include <fmt/ranges.h>

#include "cli/common.h"
#include "codec/codec.h"
#include "common/files.h"
#include "common/text.h"
#include "graph/analysis.h"
#include "graph/model.h"
#include "plan/document.h"
#include "plan/from_store.h"
#include "plan/planner.h"
#include "profile/open.h"
#include "report/svg.h"
#include "zoo/zoo.h"

namespace scission::cli {

store::ModelRecord ResolveStoredModel(store::Store& db, const std::string& model) {
  namespace fs = std::filesystem;
  std::error_code ec;
  std::string path;
  if (fs::is_regular_file(model, ec))
    path = model;
  else if (zoo::Find(model) && zoo::IsExported(model) && !db.FindModel(model))
    path = zoo::CachedPath(model);
  if (!path.empty()) {
    std::string sha = Sha256Hex(ReadFileBytes(path));
    auto found = db.FindModel(sha);
    if (!found)
      throw BadInput("{}: no benchmark of this model in {}; run `scission benchmark` first", path,
                     db.path());
    return *found;
  }
  auto found = db.FindModel(model);
  if (!found)
    throw BadInput("{}: no such model in {} (a stored name, key, .onnx file or zoo name)", model,
                   db.path());
  return *found;
}

namespace {

std::vector<std::pair<std::string, std::string>> SplitPairs(const std::vector<std::string>& items,
                                                            const std::string& flag) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& item : items) {
    auto eq = item.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == item.size())
      throw BadInput("{} expects NAME=VALUE, got '{}'", flag, item);
    out.emplace_back(item.substr(0, eq), item.substr(eq + 1));
  }
  return out;
}

double ToNumber(const std::string& text, const std::string& flag) {
  try {
    size_t used = 0;
    double v = std::stod(text, &used);
    if (used != text.size()) throw std::invalid_argument(text);
    return v;
  } catch (const std::exception&) {
    throw BadInput("{}: '{}' is not a number", flag, text);
  }
}

// --codecs: names in the order given, each once; "lossless" and "all" stand for those sets.
// A local copy of the registry's names until the codec library (codec::ParseList) is merged.
std::string StageText(const plan::PlanProblem& p, const plan::Stage& s) {
  const auto& r = p.resources[static_cast<size_t>(s.resource)];
  if (s.last_block < s.first_block) return r.name + " (input only)";
  return fmt::format("{} {}-{} ({:.2f} ms)", r.name, s.first_block, s.last_block, s.compute_ms);
}

}  // namespace

void AddPlanFlags(CLI::App* cmd, PlanFlags& f) {
  cmd->add_option("--tiers", f.tiers, "ordered tiers (default device,edge,cloud)");
  cmd->add_option("--where", f.where, "TIER=CRIT: N, !N, -1, !-1, name, !name (N = block index)");
  cmd->add_option("-d", f.d, "criteria for the first tier");
  cmd->add_option("-e", f.e, "criteria for the second tier");
  cmd->add_option("-c", f.c, "criteria for the third tier");
  cmd->add_option("--privacy", f.privacy, "blocks 0..K-1 must run on the first tier");
  cmd->add_option("--max-upload", f.max_upload, "TIER=MB that may leave the tier");
  cmd->add_option("--max-time", f.max_time, "TIER=T compute cap: 0.5 (s), 250ms or 40%");
  cmd->add_option("--max-memory", f.max_memory, "RESOURCE=MB for segment weights + activations");
  cmd->add_flag("--return-result", f.return_result,
                "add the transfer of the result back to the first tier");
  cmd->add_option("--objective", f.objective, "latency (default), throughput or uplink");
  cmd->add_option("--statistic", f.statistic, "per-block time: mean (default) or median");
  cmd->add_option_function<std::string>(
      "--codecs", [&f](const std::string& v) { f.codecs = v; },
      "codecs hops may use: names (none,lz4,zstd,fp16,int8,fp16+zstd,int8+zstd), lossless "
      "(default), all, or none (raw only)");
  cmd->add_option_function<std::string>(
      "--max-output-error", [&f](const std::string& v) { f.max_output_error = v; },
      "also allow lossy codecs whose measured relative L2 output error is at most X (0 < X <= 1)");
  AddInputFlags(cmd, f.inputs, /*with_values=*/false, /*with_cuts=*/false);
}

plan::PlanRequest BuildPlanRequest(const PlanFlags& f, store::Store& db,
                                   const store::ModelRecord& model) {
  plan::PlanRequest req;
  req.model_key = model.key;
  req.tiers = SplitCommas(f.tiers);
  for (const auto& t : req.tiers)
    if (t.empty()) throw BadInput("--tiers: empty tier name in '{}'", f.tiers);
  req.where = SplitPairs(f.where, "--where");
  const char* shorthand[] = {"-d", "-e", "-c"};
  const std::string* texts[] = {&f.d, &f.e, &f.c};
  for (size_t i = 0; i < 3; ++i) {
    if (texts[i]->empty()) continue;
    if (i >= req.tiers.size())
      throw BadInput("{} refers to tier {} but --tiers has {}", shorthand[i], i + 1,
                     req.tiers.size());
    req.where.emplace_back(req.tiers[i], *texts[i]);
  }
  req.privacy_blocks = f.privacy;
  for (const auto& [tier, mb] : SplitPairs(f.max_upload, "--max-upload"))
    req.max_upload_mb.emplace_back(tier, ToNumber(mb, "--max-upload " + tier));
  req.max_time = SplitPairs(f.max_time, "--max-time");
  for (const auto& [res, mb] : SplitPairs(f.max_memory, "--max-memory"))
    req.max_memory_mb.emplace_back(res, ToNumber(mb, "--max-memory " + res));
  req.return_result = f.return_result;
  req.shapes = f.inputs.Options().shapes;
  req.statistic = f.statistic;
  req.objective = plan::ParseObjective(f.objective);
  req.top_k = f.top;
  if (f.codecs) req.codecs = codec::ParseList(*f.codecs, "--codecs");
  if (f.max_output_error) {
    const double x = ToNumber(*f.max_output_error, "--max-output-error");
    if (!(x > 0 && x <= 1))
      throw BadInput("--max-output-error: {} is not a relative error in (0, 1]", x);
    req.max_output_error = x;
  }
  if (!req.max_memory_mb.empty()) {
    if (model.origin != "onnx" || !std::filesystem::exists(model.path))
      throw BadInput("--max-memory needs the model's ONNX file for weight sizes ({} is {})",
                     model.name,
                     model.origin == "onnx" ? "missing at " + model.path : "imported data");
    // The weights of the blocks the profile was measured with (its stored positions), which
    // depend on the shapes and --max-cut-tensors it was benchmarked at, not on default options.
    auto views = db.LatestProfiles(model.key, plan::SelectProfile(db, req, nullptr));
    if (!views.empty()) {  // else BuildProblem says why there is nothing to plan
      std::vector<int> boundaries = {0};
      for (const auto& b : views.front().blocks) {
        if (b.begin_pos != boundaries.back() || b.end_pos <= b.begin_pos)
          throw BadInput(
              "--max-memory: the stored profile of {} has no block positions (stored by an "
              "older version); benchmark it again",
              model.name);
        boundaries.push_back(b.end_pos);
      }
      auto loaded = profile::OpenModel(model.path);
      if (loaded.sha256 != model.key)
        throw BadInput("--max-memory: {} has changed since it was benchmarked (hash)", model.path);
      try {
        req.block_weight_bytes = graph::BlockWeightBytes(
            loaded.proto,
            graph::Reblock(loaded.proto.graph(), graph::Analyze(loaded.proto), boundaries));
      } catch (const Error& e) {
        throw BadInput("--max-memory: the stored blocks of {} do not fit {} ({}); benchmark again",
                       model.name, model.path, e.what());
      }
    }
  }
  return req;
}

plan::PlanDocument MakePlanDocument(const store::ModelRecord& model, const plan::PlanRequest& req,
                                    const plan::PlanProblem& problem,
                                    const std::vector<plan::PlanCandidate>& plans,
                                    const store::ProfileKey& profile,
                                    const std::vector<std::string>& notes,
                                    const std::string& objective) {
  plan::PlanDocument doc;
  doc.model = {model.key, model.name, model.path, model.origin};
  doc.request = req;
  doc.profile = profile;
  doc.tiers = problem.tiers;
  doc.objective = objective;
  doc.blocks = problem.blocks;
  doc.input_bytes = problem.input_bytes;
  doc.output_bytes = problem.output_bytes;
  int rank = 1;
  for (const auto& c : plans) doc.plans.push_back(plan::ToPlannedRun(problem, c, rank++));
  doc.notes = notes;
  return doc;
}

void RegisterPlan(CLI::App& app, GlobalOptions& global) {
  auto* cmd = app.add_subcommand("plan", "exact top-k placements over stored profiles and links");
  AddGlobalFlags(cmd, global);
  struct Options {
    std::string model, pareto, svg;
    PlanFlags flags;
  };
  auto o = std::make_shared<Options>();
  cmd->add_option("MODEL", o->model,
                  "stored model: .onnx path, zoo name, stored name or key (scission:vgg19)")
      ->required();
  AddPlanFlags(cmd, o->flags);
  cmd->add_option("--pareto", o->pareto, "latency,uplink: list the Pareto front instead");
  cmd->add_option("--top", o->flags.top, "how many plans, 1..1000 (default 5)");
  cmd->add_option("--svg", o->svg, "write the best plan as an SVG chart");
  cmd->callback([o, &global] {
    store::Store db(global.DbPath());
    auto model = ResolveStoredModel(db, o->model);
    plan::PlanRequest req = BuildPlanRequest(o->flags, db, model);
    std::vector<std::string> notes;
    store::ProfileKey profile;
    auto problem = plan::BuildProblem(db, req, &notes, &profile);
    std::vector<plan::PlanCandidate> plans;
    if (!o->pareto.empty()) {
      if (o->pareto != "latency,uplink" && o->pareto != "uplink,latency")
        throw BadInput("--pareto supports latency,uplink, got '{}'", o->pareto);
      plans = plan::ParetoLatencyUplink(problem);
    } else {
      plans = plan::PlanTopK(problem);
    }
    if (!o->svg.empty() && !plans.empty())
      WriteFileAtomic(o->svg, report::PlanSvg(problem, plans.front(),
                                              fmt::format("{}: best plan, {:.2f} ms", model.name,
                                                          plans.front().latency_ms)));
    if (global.json) {
      auto doc = MakePlanDocument(
          model, req, problem, plans, profile, notes,
          o->pareto.empty() ? plan::ObjectiveName(problem.objective) : "pareto:latency,uplink");
      PrintJson(plan::ToJson(doc));
      return;
    }
    for (const auto& n : notes) Note("note: " + n);
    if (plans.empty()) {
      fmt::print("No plan satisfies the constraints.\n");
      return;
    }
    std::vector<std::string> header = {"rank", "total ms"};
    for (const auto& t : problem.tiers) header.push_back(t);
    header.push_back("transfers");
    header.push_back("uplink");
    if (problem.objective == plan::Objective::kThroughput) header.push_back("req/s");
    // Only lossy codecs cost output error; the column appears only then.
    const bool lossy = std::any_of(plans.begin(), plans.end(),
                                   [](const plan::PlanCandidate& c) { return c.output_error > 0; });
    if (lossy) header.push_back("output error");
    Table table(header);
    int rank = 1;
    for (const auto& c : plans) {
      std::vector<std::string> row = {std::to_string(rank++), fmt::format("{:.2f}", c.latency_ms)};
      for (size_t t = 0; t < problem.tiers.size(); ++t) {
        std::string cell = "-";
        for (const auto& s : c.stages)
          if (problem.resources[static_cast<size_t>(s.resource)].tier == static_cast<int>(t))
            cell = StageText(problem, s);
        row.push_back(cell);
      }
      std::vector<std::string> hops;
      for (const auto& h : plan::ToPlannedRun(problem, c, rank).hops)
        hops.push_back(plan::HopText(h));
      row.push_back(hops.empty() ? "-" : fmt::format("{}", fmt::join(hops, ", ")));
      row.push_back(FormatBytes(c.uplink_bytes));
      if (problem.objective == plan::Objective::kThroughput)
        row.push_back(fmt::format("{:.1f}", c.bottleneck_ms > 0 ? 1000.0 / c.bottleneck_ms : 0.0));
      if (lossy)
        row.push_back(c.output_error > 0 ? fmt::format("{:.3g} (rel. L2)", c.output_error) : "-");
      table.Add(row);
    }
    fmt::print(
        "model {} ({}), objective {}\n", model.name, model.key.substr(0, 16),
        o->pareto.empty() ? plan::ObjectiveName(problem.objective) : "Pareto front latency/uplink");
    table.Print();
  });
}

}  // namespace scission::cli
