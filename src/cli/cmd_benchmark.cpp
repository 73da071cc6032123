#include <algorithm>
#include <cstdio>

#include "cli/common.h"
#include "codec/codec.h"
#include "graph/analysis.h"
#include "graph/model.h"
#include "profile/benchmark.h"
#include "profile/inputs.h"
#include "profile/prepared.h"
#include "profile/stats.h"
#include "store/records.h"
#include "store/store.h"
#include "store/validate.h"
#include "zoo/zoo.h"

namespace scission::cli {

namespace {

// Redraws one line on stderr; only used when stderr is a terminal and --json is off.
class ProgressBar final : public profile::BenchmarkListener {
 public:
  void OnStart(int blocks) override {
    total_ = blocks + 1;
    Draw(0, "whole model");
  }
  void OnWholeModelDone(const profile::Timing&) override { Draw(1, "block 0"); }
  void OnBlockDone(const profile::BlockProfile& block, int) override {
    Draw(block.index + 2, block.index + 2 < total_ ? fmt::format("block {}", block.index + 1) : "");
    if (block.index + 2 == total_) std::fputs("\r\033[K", stderr);
  }

 private:
  void Draw(int done, const std::string& what) {
    constexpr int kWidth = 30;
    int filled = total_ > 0 ? done * kWidth / total_ : 0;
    std::fprintf(stderr, "\r\033[K[%s%s] %d/%d %s", std::string(filled, '#').c_str(),
                 std::string(kWidth - filled, '.').c_str(), done, total_, what.c_str());
    std::fflush(stderr);
  }
  int total_ = 0;
};

// Per codec over all boundaries: bytes, encode/decode throughput on this machine, and the worst
// and median fidelity of the lossy ones.
void PrintCodecSummary(const std::vector<profile::CodecMeasurement>& codecs,
                       const std::vector<std::string>& order) {
  Table table({"codec", "raw", "encoded", "ratio", "encode MB/s", "decode MB/s", "rel L2 median",
               "rel L2 worst", "top-1 worst"});
  for (const auto& name : order) {
    int64_t raw = 0, bytes = 0;
    double encode_ms = 0, decode_ms = 0, top1 = 2;
    std::vector<double> errors;
    for (const auto& m : codecs) {
      if (m.codec != name) continue;
      raw += m.raw_bytes;
      bytes += m.bytes;
      encode_ms += m.encode_ms;
      decode_ms += m.decode_ms;
      if (m.rel_l2_error >= 0) errors.push_back(m.rel_l2_error);
      if (m.top1_agreement >= 0) top1 = std::min(top1, m.top1_agreement);
    }
    auto rate = [&](double ms) {
      return ms > 0 ? fmt::format("{:.0f}", static_cast<double>(raw) / 1e3 / ms) : "-";
    };
    const bool lossy = codec::Get(name, "codec").lossy();
    table.Add({name, FormatBytes(raw), FormatBytes(bytes),
               bytes > 0 ? fmt::format("{:.2f}", static_cast<double>(raw) / bytes) : "-",
               rate(encode_ms), rate(decode_ms),
               lossy && !errors.empty() ? fmt::format("{:.2g}", profile::Median(errors)) : "-",
               lossy && !errors.empty()
                   ? fmt::format("{:.2g}", *std::max_element(errors.begin(), errors.end()))
                   : "-",
               lossy && top1 <= 1 ? fmt::format("{:.0f}%", 100 * top1) : "-"});
  }
  table.Print();
}

}  // namespace

void RegisterBenchmark(CLI::App& app, GlobalOptions& global) {
  auto* cmd = app.add_subcommand("benchmark", "time the whole model and every block; store it");
  AddGlobalFlags(cmd, global);
  auto c = std::make_shared<BenchmarkCommand>();
  c->options.harness.warmup_runs = 3;
  c->options.harness.min_runs = 20;
  cmd->add_option("MODEL", c->model, ".onnx path or zoo name")->required();
  cmd->add_option("--resource", c->resource, "name of this machine in the store")->required();
  cmd->add_option("--tier", c->tier, "tier of this resource (device, edge, cloud, ...)")
      ->required();
  cmd->add_option("--repeats", c->options.harness.min_runs, "measured runs per block (default 20)");
  cmd->add_option("--warmup", c->options.harness.warmup_runs,
                  "warm-up runs per block, first run included (default 3)");
  cmd->add_option("--min-time-ms", c->options.harness.min_time_ms,
                  "keep measuring each block at least this long");
  cmd->add_option("--threads", c->options.session.threads,
                  "intra-op threads (0 = ONNX Runtime default)");
  cmd->add_option("--backend", c->options.backend, "execution backend (default onnxruntime)");
  cmd->add_option("--name", c->name, "model name to store (default: file stem)");
  AddInputFlags(cmd, c->inputs);
  cmd->add_flag("!--no-chain-check", c->options.chain_check,
                "do not check that the chain of blocks reproduces the whole model (a run whose "
                "blocks diverge is otherwise refused)");
  cmd->add_option("--codecs", c->codecs,
                  "codecs to measure at every block boundary: comma-separated names, lossless "
                  "(default: none, lz4, zstd), all (the lossy ones too, with their fidelity: "
                  "slower) or none");
  cmd->add_option("--codec-repeats", c->options.codec_repeats,
                  "timed encode/decode runs per codec and boundary (default 3)");
  cmd->add_option("--fidelity-input", c->fidelity_inputs,
                  "NAME=FILE.npy or NAME=DIR: more values of an input to measure lossy codecs' "
                  "fidelity over (repeatable; a directory's .npy files are one set each)");
  cmd->callback([c, &global] { RunBenchmarkCommand(*c, global); });
}

void RunBenchmarkCommand(const BenchmarkCommand& command, const GlobalOptions& global) {
  const BenchmarkCommand* c = &command;
  {
    store::ValidateName(c->resource, "--resource");
    store::ValidateName(c->tier, "--tier");
    if (!c->name.empty()) store::ValidateName(c->name, "--name");
    c->options.Validate();
    std::string path = zoo::ResolveModel(c->model, [](const std::string& m) { Note(m); });
    auto prepared =
        profile::PrepareModel(path, c->inputs.Options(), c->inputs.Analysis(), c->options.backend);
    const auto& model = prepared.model;
    const auto& analysis = prepared.analysis;
    profile::BenchmarkOptions options = c->options;
    options.inputs = prepared.inputs.Tensors();  // before the notes: a failure is one line
    options.codecs = CodecsToMeasure(c->codecs);
    options.fidelity_inputs = profile::ResolveFidelityInputs(options.inputs, c->fidelity_inputs);
    if (options.codecs.empty() && !options.fidelity_inputs.empty())
      throw BadInput("--fidelity-input: no codec is measured (--codecs none)");
    if (!global.json)
      for (const auto& n : prepared.inputs.notes) Note("note: " + n);
    // Open for writing before measuring: a bad or read-only --db fails fast.
    store::Store db(global.DbPath(), store::OpenMode::kWrite);
    db.set_note_callback([](const std::string& m) { Note("note: " + m); });

    std::string started = store::NowIso8601();
    ProgressBar bar;
    bool show_bar = !global.json && StderrIsTerminal();
    auto result = profile::BenchmarkModel(model, analysis, options, show_bar ? &bar : nullptr);
    // Blocks that do not reproduce the model measure something else: exit 1, nothing stored.
    profile::ThrowIfChainCheckFailed(result, path);
    std::string name = c->name;
    if (name.empty() && zoo::Find(c->model)) name = c->model;
    auto model_record = store::ModelRecordFor(model, analysis, name);
    auto run = store::RunRecordFor(result, options, started);
    run.partition = prepared.partition;
    for (const auto& n : prepared.inputs.notes) run.inputs += (run.inputs.empty() ? "" : "; ") + n;
    model_record.input_bytes = prepared.inputs.bytes;
    int64_t run_id =
        db.SaveRun({c->resource, c->tier}, model_record, store::BlockRecordsFor(analysis), run);

    const int runs_per_block =
        static_cast<int>(result.whole.warmup_ms.size() + result.whole.samples_ms.size());
    // Whole model, whole segment, blocks: about three whole models' worth of runs.
    double floor_ms = 3.0 * runs_per_block * result.whole.stats.median;
    double measured_ms = result.wall_ms - result.setup_ms;
    if (global.json) {
      nlohmann::ordered_json doc;
      doc["run_id"] = run_id;
      doc["model"] = path;
      doc["sha256"] = model.sha256;
      doc["input_shapes"] = prepared.inputs.shape_key;
      doc["inputs"] = prepared.inputs.notes;
      doc["partition"] = prepared.partition;
      doc["resource"] = c->resource;
      doc["tier"] = c->tier;
      const auto& p = result.provenance;
      doc["provenance"] = {{"backend", p.backend},
                           {"onnxruntime_version", p.runtime_version},
                           {"execution_provider", p.execution_provider},
                           {"threads", p.threads},
                           {"cpu_model", p.cpu_model},
                           {"host", p.host},
                           {"build_type", p.build_type}};
      auto timing_json = [](const profile::Timing& t) {
        return nlohmann::ordered_json{{"first_run_ms", t.first_run_ms}, {"n", t.stats.n},
                                      {"median_ms", t.stats.median},    {"mean_ms", t.stats.mean},
                                      {"p90_ms", t.stats.p90},          {"p95_ms", t.stats.p95},
                                      {"stddev_ms", t.stats.stddev},    {"min_ms", t.stats.min},
                                      {"max_ms", t.stats.max}};
      };
      doc["whole"] = timing_json(result.whole);
      doc["whole"]["setup_ms"] = result.whole_setup_ms;
      doc["blocks"] = nlohmann::ordered_json::array();
      for (const auto& b : result.blocks) {
        auto j = timing_json(b.timing);
        j["index"] = b.index;
        j["setup_ms"] = b.setup_ms;
        j["output_bytes"] = b.output_bytes;
        doc["blocks"].push_back(j);
      }
      doc["sum_block_median_ms"] = result.sum_block_median_ms;
      doc["sum_blocks_over_whole"] = result.ratio();
      doc["whole_segment"] = timing_json(result.whole_segment);
      doc["whole_segment"]["setup_ms"] = result.whole_segment_setup_ms;
      doc["sum_blocks_over_whole_segment"] = result.segment_ratio();
      const auto& chain = result.chain;
      doc["chain_check"] = {{"status", profile::ChainCheckStatusName(chain.status)},
                            {"ok", !chain.failed()},
                            {"max_abs_diff", chain.max_abs_diff},
                            {"tolerance", chain.tolerance},
                            {"first_diverging_block", chain.first_diverging_block},
                            {"check_ms", chain.check_ms}};
      doc["codecs"] = nlohmann::ordered_json::array();
      for (const auto& m : result.codecs)
        doc["codecs"].push_back({{"boundary", m.boundary},
                                 {"codec", m.codec},
                                 {"raw_bytes", m.raw_bytes},
                                 {"bytes", m.bytes},
                                 {"encode_ms", m.encode_ms},
                                 {"decode_ms", m.decode_ms},
                                 {"max_abs_error", m.max_abs_error},
                                 {"rel_l2_error", m.rel_l2_error},
                                 {"top1_agreement", m.top1_agreement},
                                 {"fidelity_inputs", m.fidelity_inputs}});
      doc["codec_ms"] = result.codec_ms;
      doc["wall_ms"] = result.wall_ms;
      doc["setup_ms"] = result.setup_ms;
      doc["floor_ms"] = floor_ms;
      doc["wall_over_floor_excluding_setup"] = floor_ms > 0 ? measured_ms / floor_ms : 0;
      PrintJson(doc);
      return;
    }
    Table table(
        {"block", "ops", "output", "median ms", "p90 ms", "stddev", "n", "first ms", "setup ms"});
    for (const auto& b : result.blocks) {
      const auto& info = analysis.blocks[static_cast<size_t>(b.index)];
      std::string ops;
      for (const auto& [op, count] : info.ops)
        ops += fmt::format("{}{}{}", ops.empty() ? "" : " ", op,
                           count > 1 ? "x" + std::to_string(count) : "");
      if (ops.size() > 40) ops = ops.substr(0, 37) + "...";
      table.Add({std::to_string(b.index), ops, FormatBytes(b.output_bytes),
                 fmt::format("{:.3f}", b.timing.stats.median),
                 fmt::format("{:.3f}", b.timing.stats.p90),
                 fmt::format("{:.3f}", b.timing.stats.stddev), std::to_string(b.timing.stats.n),
                 fmt::format("{:.3f}", b.timing.first_run_ms), fmt::format("{:.1f}", b.setup_ms)});
    }
    table.Print();
    const auto& p = result.provenance;
    fmt::print("\nresource {} (tier {}), {} {} {}, threads {}, {}\n", c->resource, c->tier,
               p.backend, p.runtime_version, p.execution_provider,
               p.threads == 0 ? std::string("default") : std::to_string(p.threads), p.cpu_model);
    fmt::print(
        "whole model: median {:.3f} ms, p90 {:.3f} ms, first run {:.3f} ms, session {:.1f} ms\n",
        result.whole.stats.median, result.whole.stats.p90, result.whole.first_run_ms,
        result.whole_setup_ms);
    if (result.chain.ran())
      fmt::print("chain of blocks vs whole model: max abs diff {:.3g} (tolerance {:.3g}) ok\n",
                 result.chain.max_abs_diff, result.chain.tolerance);
    else
      fmt::print("chain of blocks vs whole model: not checked (--no-chain-check)\n");
    if (!result.codecs.empty()) {
      fmt::print(
          "\ncodecs over {} boundaries ({} input set{} for fidelity; {:.2f} s; per boundary: "
          "--json, or `scission inspect --codecs`):\n",
          result.blocks.size() + 1, 1 + options.fidelity_inputs.size(),
          options.fidelity_inputs.empty() ? "" : "s", result.codec_ms / 1000);
      PrintCodecSummary(result.codecs, options.codecs);
      fmt::print("\n");
    }
    fmt::print("stored as run {} in {}\n", run_id, db.path());
    fmt::print("sum of block medians / whole-model median = {:.3f} / {:.3f} ms = {:.3f}\n",
               result.sum_block_median_ms, result.whole.stats.median, result.ratio());
    fmt::print(
        "sum of block medians / blocks 0..{} as one segment (what a one-machine plan runs) = "
        "{:.3f} / {:.3f} ms = {:.3f}\n",
        result.blocks.size() - 1, result.sum_block_median_ms, result.whole_segment.stats.median,
        result.segment_ratio());
    fmt::print(
        "wall time {:.2f} s (setup: segment extraction + session creation {:.2f} s); "
        "floor 3x{}x{:.3f} ms = {:.2f} s; wall/floor excluding setup {:.2f}\n",
        result.wall_ms / 1000, result.setup_ms / 1000, runs_per_block, result.whole.stats.median,
        floor_ms / 1000, floor_ms > 0 ? measured_ms / floor_ms : 0.0);
  }
}

}  // namespace scission::cli
