#include <filesystem>

#include "cli/common.h"
#include "common/files.h"
#include "deploy/client.h"
#include "profile/prepared.h"
#include "store/records.h"
#include "store/validate.h"
#include "zoo/zoo.h"

namespace scission::cli {
namespace {
// What fits in one request beside its other fields (deploy::kMaxMessageBytes is 1 MiB).
constexpr int64_t kMaxInlineInputBytes = 960 << 10;
}  // namespace

void RegisterFleet(CLI::App& app, GlobalOptions& global) {
  auto* fleet = app.add_subcommand("fleet", "operate on several workers");
  fleet->require_subcommand(1);
  auto* cmd =
      fleet->add_subcommand("benchmark", "benchmark a model on every worker into the local store");
  AddGlobalFlags(cmd, global);
  struct Options {
    std::string model, workers;
    int warmup = 3, repeats = 20, threads = 0;
    bool chain_check = true;
    std::string codecs = "lossless";
    ConnectFlags connect;
    InputFlags inputs;
  };
  auto o = std::make_shared<Options>();
  cmd->add_option("MODEL", o->model, ".onnx path or zoo name")->required();
  cmd->add_option("--workers", o->workers, "name=host:port,...")->required();
  cmd->add_option("--warmup", o->warmup, "warm-up runs per block (default 3)");
  cmd->add_option("--repeats", o->repeats, "measured runs per block (default 20)");
  cmd->add_option("--threads", o->threads, "intra-op threads on the workers (0 = their default)");
  cmd->add_flag("!--no-chain-check", o->chain_check,
                "do not check that the workers' chains of blocks compute the whole model");
  cmd->add_option("--codecs", o->codecs,
                  "codecs the workers measure at every block boundary: comma-separated names, "
                  "lossless (default), all (with the lossy ones' fidelity) or none");
  AddConnectFlags(cmd, o->connect);
  AddInputFlags(cmd, o->inputs);
  cmd->callback([o, &global] {
    if (o->repeats < 1 || o->warmup < 1)
      throw BadInput("--repeats and --warmup must be at least 1");
    auto workers = ParseWorkers(o->workers);
    auto connect = o->connect.Resolve();
    const std::vector<std::string> codecs = CodecsToMeasure(o->codecs);
    std::string path = zoo::ResolveModel(o->model, [](const std::string& m) { Note(m); });
    std::string sha = Sha256Hex(ReadFileBytes(path));
    // The profile — input shapes and partition — is worked out here, the way a local benchmark
    // would, and sent with the request: every worker runs these shapes and these blocks.
    profile::PreparedModel prepared =
        profile::PrepareModel(path, o->inputs.Options(), o->inputs.Analysis());
    if (!prepared.inputs.unavailable.empty()) throw BadInput("{}", prepared.inputs.unavailable);
    std::vector<TensorSpec> input_shapes;
    for (const auto& t : prepared.inputs.tensors) input_shapes.push_back(t.spec);
    // --input values travel inline in the request (one message); without --input the workers
    // generate the same values this machine would (floats uniform in [0, 1), integers 0).
    std::string input_values;
    if (!o->inputs.files.empty()) {
      for (const auto& t : prepared.inputs.tensors)
        input_values.append(reinterpret_cast<const char*>(t.data.data()), t.data.size());
      if (input_values.size() > kMaxInlineInputBytes)
        throw BadInput(
            "--input: fleet benchmark sends the input values inside the request, at most {} in "
            "all; these take {} — benchmark such a model on each machine with `scission "
            "benchmark --input`",
            FormatBytes(kMaxInlineInputBytes),
            FormatBytes(static_cast<int64_t>(input_values.size())));
    }
    std::string inputs_text;
    for (const auto& n : prepared.inputs.notes)
      inputs_text += (inputs_text.empty() ? "" : "; ") + n;
    store::Store db(global.DbPath(), store::OpenMode::kWrite);
    db.set_note_callback([](const std::string& m) { Note("note: " + m); });
    nlohmann::ordered_json doc = nlohmann::ordered_json::array();
    for (const auto& [name, address] : workers) {
      deploy::WorkerClient client(address, connect);
      auto info = client.Hello();
      if (info.resource != name)
        throw BadInput("worker at {} is '{}', not '{}'", address, info.resource, name);
      if (client.EnsureModel(sha, path)) Note(fmt::format("sent {} to {}", path, name));
      if (!global.json)
        Note(fmt::format("benchmarking on {} ({}, {})", name, info.tier, info.cpu_model));
      auto remote =
          client.Benchmark(sha, o->warmup, o->repeats, o->threads, {}, prepared.analysis.boundaries,
                           input_shapes, o->chain_check, input_values, codecs);
      remote.model.path = path;
      // The name is ours to choose, as for a local benchmark: the zoo name or the file stem.
      remote.model.name =
          zoo::Find(o->model)
              ? o->model
              : store::NameFromFileStem(std::filesystem::path(path).stem().string());
      if (remote.model.key != sha) throw BadInput("worker {} benchmarked a different model", name);
      if (remote.blocks.size() != prepared.analysis.blocks.size())
        throw BadInput(
            "worker {} cut {} into {} blocks, not the {} it was sent (another Scission version?)",
            name, path, remote.blocks.size(), prepared.analysis.blocks.size());
      // The blocks as this machine cut them (with their positions, which the wire does not
      // carry), once every boundary agrees with the worker's.
      auto local_blocks = store::BlockRecordsFor(prepared.analysis);
      for (size_t b = 0; b < local_blocks.size(); ++b)
        if (local_blocks[b].output_name != remote.blocks[b].output_name)
          throw BadInput(
              "worker {} ends block {} at '{}', this machine at '{}' (another Scission "
              "version?)",
              name, b, remote.blocks[b].output_name, local_blocks[b].output_name);
      remote.blocks = std::move(local_blocks);
      // The worker says what it ran; anything but the profile asked for is not stored under it.
      if (remote.run.input_shapes != prepared.inputs.shape_key ||
          remote.run.partition != prepared.partition)
        throw BadInput(
            "worker {} ran {} (blocks {}), not the profile asked for, {} (blocks {}) — another "
            "Scission version?",
            name, remote.run.input_shapes.empty() ? "unreported shapes" : remote.run.input_shapes,
            remote.run.partition.empty() ? "unreported" : remote.run.partition.substr(0, 12),
            prepared.inputs.shape_key, prepared.partition.substr(0, 12));
      remote.model.input_bytes = prepared.inputs.bytes;
      remote.run.input_shapes = prepared.inputs.shape_key;
      remote.run.partition = prepared.partition;
      remote.run.input_bytes = prepared.inputs.bytes;
      remote.run.inputs = inputs_text;
      int64_t id = db.SaveRun({info.resource, info.tier}, remote.model, remote.blocks, remote.run);
      double sum = 0, whole = 0;
      for (const auto& m : remote.run.measurements)
        (m.block_index < 0 ? whole : sum) += m.median_ms;
      doc.push_back({{"resource", name},
                     {"tier", info.tier},
                     {"run_id", id},
                     {"whole_median_ms", whole},
                     {"sum_block_median_ms", sum},
                     {"chain_check", remote.run.chain_check}});
      if (!global.json)
        fmt::print(
            "{} ({}): whole model {:.2f} ms, sum of blocks {:.2f} ms, chain check {}, stored as "
            "run {}\n",
            name, info.tier, whole, sum,
            remote.run.chain_check.empty() ? "not reported" : remote.run.chain_check, id);
    }
    if (global.json) PrintJson(doc);
  });
}

}  // namespace scission::cli
