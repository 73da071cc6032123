// Shared pieces of the thin CLI: global options, table printing, progress output.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/text.h"
#include "deploy/wire.h"
#include "graph/analysis.h"
#include "graph/model.h"
#include "plan/document.h"
#include "plan/planner.h"
#include "plan/problem.h"
#include "profile/benchmark.h"
#include "profile/inputs.h"
#include "store/store.h"

namespace scission::cli {

struct GlobalOptions {
  std::string db;     // --db; empty = $SCISSION_DB or the default path
  bool json = false;  // --json: one JSON document on stdout
  std::string DbPath() const;
};

// Adds --json and --db to a subcommand (each verb accepts both, before or after its arguments).
void AddGlobalFlags(CLI::App* command, GlobalOptions& global);

// Left-aligned text table with a header row; numbers should be pre-formatted.
class Table {
 public:
  explicit Table(std::vector<std::string> header) : header_(std::move(header)) {}
  void Add(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  void Print() const;

 private:
  std::vector<std::string> header_;
  std::vector<std::vector<std::string>> rows_;
};

void PrintJson(const nlohmann::ordered_json& doc);
// Progress messages go to stderr (never stdout, which may carry JSON).
void Note(const std::string& message);
bool StderrIsTerminal();

// --shape NAME=1x3x640x640 and --input NAME=FILE.npy (both repeatable), for every verb that runs
// a model or picks its profile.
struct InputFlags {
  std::vector<std::string> shapes, files;
  int max_cut_tensors = graph::AnalysisOptions{}.max_cut_tensors;  // --max-cut-tensors
  profile::InputOptions Options() const { return profile::InputOptions::Parse(shapes, files); }
  graph::AnalysisOptions Analysis() const {
    graph::AnalysisOptions a;
    a.max_cut_tensors = max_cut_tensors;
    a.Validate();
    return a;
  }
};
// `with_values`: --input too (not for plan); `with_cuts`: --max-cut-tensors too (verbs that cut the
// model themselves).
void AddInputFlags(CLI::App* cmd, InputFlags& flags, bool with_values = true,
                   bool with_cuts = true);

// A benchmark's --codecs: registry names; "none" measures nothing (raw bytes need no measurement).
std::vector<std::string> CodecsToMeasure(const std::string& text);

struct BenchmarkCommand {
  std::string model;
  std::string resource;
  std::string tier;
  std::string name;
  InputFlags inputs;
  profile::BenchmarkOptions options;
  std::string codecs = "lossless";           // --codecs: measured at every boundary; none: skip
  std::vector<std::string> fidelity_inputs;  // --fidelity-input NAME=FILE.npy|DIR
};
// Benchmarks, stores and prints (table or JSON); shared by `benchmark` and `demo`.
void RunBenchmarkCommand(const BenchmarkCommand& command, const GlobalOptions& global);
void PrintInspection(const std::string& path, const graph::LoadedModel& model,
                     const graph::GraphAnalysis& analysis);

// MODEL for verbs over the store: an .onnx file or exported zoo name (by SHA-256), else a stored
// model name or key. BadInput when nothing matches.
store::ModelRecord ResolveStoredModel(store::Store& db, const std::string& model);

// The planning options of `plan`, shared by `serve` (which plans the same way).
struct PlanFlags {
  std::string tiers = "device,edge,cloud", objective = "latency", statistic = "mean";
  std::vector<std::string> where, max_upload, max_time, max_memory;
  std::string d, e, c;
  int privacy = 0, top = 5;
  bool return_result = false;
  InputFlags inputs;  // --shape: which profile
  // --codecs LIST and --max-output-error X as given (nullopt: not given).
  std::optional<std::string> codecs, max_output_error;
};
void AddPlanFlags(CLI::App* cmd, PlanFlags& flags);
plan::PlanRequest BuildPlanRequest(const PlanFlags& flags, store::Store& db,
                                   const store::ModelRecord& model);
plan::PlanDocument MakePlanDocument(const store::ModelRecord& model, const plan::PlanRequest& req,
                                    const plan::PlanProblem& problem,
                                    const std::vector<plan::PlanCandidate>& plans,
                                    const store::ProfileKey& profile,
                                    const std::vector<std::string>& notes,
                                    const std::string& objective);

// Servers (`worker`, `serve`): call BlockStopSignals() first, before any thread starts, so SIGINT
// and SIGTERM reach no thread; ServeUntilStopped() then runs `wait` (the server's Wait) while one
// thread waits for either signal and calls `stop`.
void BlockStopSignals();
void ServeUntilStopped(const std::function<void()>& stop, const std::function<void()>& wait);

// name=host:port,... (BadInput for anything else).
std::map<std::string, std::string> ParseWorkers(const std::string& text);
// --token, --token-file, --tls-ca, --tls of the verbs that call workers.
struct ConnectFlags {
  std::string token, token_file, tls_ca;
  bool tls = false;
  // The token from --token-file, else $SCISSION_TOKEN, else --token (with a note that a token on
  // the command line is visible to every user of the machine).
  deploy::ConnectOptions Resolve() const;
};
void AddConnectFlags(CLI::App* cmd, ConnectFlags& flags);

// Registration of each verb (one file each: cmd_<verb>.cpp).
void RegisterModels(CLI::App& app, GlobalOptions& global);
void RegisterZoo(CLI::App& app, GlobalOptions& global);
void RegisterInspect(CLI::App& app, GlobalOptions& global);
void RegisterBenchmark(CLI::App& app, GlobalOptions& global);
void RegisterImportScission(CLI::App& app, GlobalOptions& global);
void RegisterImportRun(CLI::App& app, GlobalOptions& global);
void RegisterExport(CLI::App& app, GlobalOptions& global);
void RegisterNetwork(CLI::App& app, GlobalOptions& global);
void RegisterDemo(CLI::App& app, GlobalOptions& global);
void RegisterPredict(CLI::App& app, GlobalOptions& global);
void RegisterPlan(CLI::App& app, GlobalOptions& global);
void RegisterReport(CLI::App& app, GlobalOptions& global);
void RegisterWorker(CLI::App& app, GlobalOptions& global);
void RegisterProbe(CLI::App& app, GlobalOptions& global);
void RegisterFleet(CLI::App& app, GlobalOptions& global);
void RegisterRun(CLI::App& app, GlobalOptions& global);
void RegisterServe(CLI::App& app, GlobalOptions& global);
void RegisterLoadgen(CLI::App& app, GlobalOptions& global);

}  // namespace scission::cli
