#include <fmt/ranges.h>

#include <filesystem>

#include "cli/common.h"
#include "common/files.h"
#include "graph/analysis.h"
#include "graph/model.h"
#include "profile/prepared.h"
#include "store/store.h"
#include "zoo/zoo.h"

namespace scission::cli {

namespace {
std::string OpsSummary(const graph::BlockInfo& block) {
  std::vector<std::string> parts;
  for (const auto& [op, count] : block.ops)
    parts.push_back(count > 1 ? fmt::format("{}x{}", op, count) : op);
  return fmt::format("{}", fmt::join(parts, " "));
}

// Sizes that overflow int64 (declared shapes such as [2^40, 2^40]) say so instead of wrapping.
std::string SizeText(int64_t bytes) {
  return bytes == kSizeTooLarge ? "too large" : FormatBytes(bytes);
}

nlohmann::ordered_json SizeJson(int64_t bytes) {
  if (bytes == kSizeTooLarge) return "too large";
  return bytes;
}

// "cut points: 37 with 1 live tensor, 12 with 2, 0 with 3, 5 with 4".
std::string CutPointsLine(const graph::GraphAnalysis& analysis) {
  std::vector<std::string> parts;
  const auto& counts = analysis.cut_points_by_tensors;
  for (size_t k = 1; k <= counts.size(); ++k)
    parts.push_back(fmt::format("{} with {}{}", counts[k - 1], k, k == 1 ? " live tensor" : ""));
  return fmt::format("cut points: {}", fmt::join(parts, ", "));
}

double CostShare(const graph::BlockInfo& block, const graph::GraphAnalysis& analysis) {
  return analysis.total_cost() > 0 ? block.cost / analysis.total_cost() : 0;
}

// Specs as they are now: profile::ResolveBlockShapes fills analysis.specs (and block outputs)
// from a real run, after the blocks' copies were taken.
TensorSpec CurrentSpec(const graph::GraphAnalysis& analysis, const TensorSpec& spec) {
  auto it = analysis.specs.find(spec.name);
  return it == analysis.specs.end() || spec.bytes() >= 0 ? spec : it->second;
}

nlohmann::ordered_json TensorJson(const TensorSpec& t) {
  return {{"name", t.name},
          {"shape", t.shape},
          {"dtype", DTypeName(t.dtype)},
          {"bytes", SizeJson(t.bytes())}};
}

std::vector<TensorSpec> CurrentSpecs(const graph::GraphAnalysis& analysis,
                                     const std::vector<TensorSpec>& tensors) {
  std::vector<TensorSpec> current;
  for (const auto& t : tensors) current.push_back(CurrentSpec(analysis, t));
  return current;
}

nlohmann::ordered_json TensorsJson(const std::vector<TensorSpec>& tensors) {
  auto list = nlohmann::ordered_json::array();
  for (const auto& t : tensors) list.push_back(TensorJson(t));
  return list;
}

// One row per boundary tensor: the block's columns on the first, a total row when several.
void AddBlockRows(Table& table, const graph::BlockInfo& b, const graph::GraphAnalysis& analysis) {
  std::vector<std::string> block_columns = {std::to_string(b.index),
                                            std::to_string(b.nodes.size()),
                                            fmt::format("{:.1f}%", 100 * CostShare(b, analysis)),
                                            b.first_node,
                                            b.last_node,
                                            OpsSummary(b)};
  for (size_t i = 0; i < b.outputs.size(); ++i) {
    const TensorSpec& o = b.outputs[i];
    std::vector<std::string> row =
        i == 0 ? block_columns : std::vector<std::string>(block_columns.size());
    for (auto cell : {o.name, ShapeString(o.shape), DTypeName(o.dtype), SizeText(o.bytes())})
      row.push_back(std::move(cell));
    table.Add(std::move(row));
  }
  if (b.outputs.size() > 1) {
    std::vector<std::string> total(block_columns.size());
    for (auto cell : {fmt::format("({} tensors)", b.outputs.size()), std::string(), std::string(),
                      SizeText(b.output_bytes())})
      total.push_back(std::move(cell));
    table.Add(std::move(total));
  }
}
// The default domain's opset version, 0 when the model imports none.
int64_t DefaultOpset(const onnx::ModelProto& proto) {
  for (const auto& op : proto.opset_import())
    if (op.domain().empty() || op.domain() == "ai.onnx") return op.version();
  return 0;
}

// What the boundary's tensor is: "input", block b - 1's output, or "output".
std::string BoundaryTensor(const store::ProfileView& view, int boundary) {
  if (boundary == 0) return "input";
  if (boundary >= static_cast<int>(view.blocks.size())) return "output";
  return view.blocks[static_cast<size_t>(boundary - 1)].output_name;
}

nlohmann::ordered_json Measured(double value) {
  return value < 0 ? nlohmann::ordered_json() : nlohmann::ordered_json(value);
}

// `inspect --codecs`: what `benchmark --codecs` stored for the model, per profile and resource (its
// latest run there), boundary and codec. BadInput when nothing was stored.
void PrintStoredCodecs(const std::string& path, const std::string& db_path, bool json) {
  const std::string sha = Sha256Hex(ReadFileBytes(path));
  std::vector<store::ProfileView> views;
  if (std::filesystem::exists(db_path)) {
    store::Store db(db_path);
    // Every profile (input shapes, partition) of the model: the latest run of each resource in it.
    if (db.FindModel(sha))
      for (const auto& profile : db.Profiles(sha))
        for (auto& v : db.LatestProfiles(sha, profile.key))
          if (!v.codecs.empty()) views.push_back(std::move(v));
  }
  if (views.empty())
    throw BadInput(
        "no codec measurements of {} in the latest run of any resource in {} "
        "(measure them with `scission benchmark MODEL --codecs all`)",
        path, db_path);
  if (json) {
    nlohmann::ordered_json doc = {{"model", path}, {"sha256", sha}};
    doc["codecs"] = nlohmann::ordered_json::array();
    for (const auto& v : views) {
      nlohmann::ordered_json records = nlohmann::ordered_json::array();
      for (const auto& c : v.codecs)
        records.push_back({{"boundary", c.boundary},
                           {"tensor", BoundaryTensor(v, c.boundary)},
                           {"codec", c.codec},
                           {"raw_bytes", c.raw_bytes},
                           {"bytes", c.bytes},
                           {"encode_ms", c.encode_ms},
                           {"decode_ms", c.decode_ms},
                           {"max_abs_error", Measured(c.max_abs_error)},
                           {"rel_l2_error", Measured(c.rel_l2_error)},
                           {"top1_agreement", Measured(c.top1_agreement)},
                           {"fidelity_inputs", c.fidelity_inputs}});
      doc["codecs"].push_back({{"resource", v.resource},
                               {"tier", v.tier},
                               {"run_id", v.run_id},
                               {"input_shapes", v.key.input_shapes},
                               {"records", std::move(records)}});
    }
    PrintJson(doc);
    return;
  }
  fmt::print("model   {}\nsha256  {}\n", path, sha);
  for (const auto& v : views) {
    int fidelity_inputs = 0;
    for (const auto& c : v.codecs) fidelity_inputs = std::max(fidelity_inputs, c.fidelity_inputs);
    fmt::print("\ncodecs on {} ({}; run {}; inputs {}; {} input set{} for fidelity)\n", v.resource,
               v.tier, v.run_id, v.key.input_shapes.empty() ? "-" : v.key.input_shapes,
               fidelity_inputs, fidelity_inputs == 1 ? "" : "s");
    Table table({"boundary", "tensor", "codec", "raw", "encoded", "ratio", "encode ms", "decode ms",
                 "rel L2", "max abs", "top-1"});
    auto error = [](double e) { return e < 0 ? std::string("-") : fmt::format("{:.2g}", e); };
    for (const auto& c : v.codecs)
      table.Add(
          {std::to_string(c.boundary), BoundaryTensor(v, c.boundary), c.codec,
           FormatBytes(c.raw_bytes), FormatBytes(c.bytes),
           c.bytes > 0 ? fmt::format("{:.2f}", static_cast<double>(c.raw_bytes) / c.bytes) : "-",
           fmt::format("{:.3f}", c.encode_ms), fmt::format("{:.3f}", c.decode_ms),
           error(c.rel_l2_error), error(c.max_abs_error),
           c.top1_agreement < 0 ? "-" : fmt::format("{:.0f}%", 100 * c.top1_agreement)});
    table.Print();
  }
}
}  // namespace

void PrintInspection(const std::string& path, const graph::LoadedModel& model,
                     const graph::GraphAnalysis& analysis) {
  fmt::print("model   {}\nsha256  {}\nopset   {}\n", path, model.sha256, DefaultOpset(model.proto));
  // Users should know when shapes come from a run rather than from static inference.
  fmt::print("checks  {}\n", model.onnx_checked
                                 ? "ONNX checker, ONNX shape inference, ONNX Runtime"
                                 : "ONNX Runtime (the ONNX library does not know every opset or "
                                   "operator of this model; unknown shapes come from a run)");
  for (const auto& in : analysis.inputs)
    fmt::print("input   {} {} {}\n", in.name, DTypeName(in.dtype), ShapeString(in.shape));
  fmt::print("nodes   {} ({} activation, {} constant)\n", model.proto.graph().node_size(),
             analysis.order.size(), model.proto.graph().node_size() - analysis.order.size());
  fmt::print("cuts    {} single-tensor cut points -> {} blocks (trivial blocks merged)\n",
             analysis.single_cuts.size(), analysis.blocks.size());
  fmt::print("{}\n", CutPointsLine(analysis));
  fmt::print("cost    {:.3g} MACs estimated (cost: each block's share)\n\n", analysis.total_cost());
  Table table({"block", "nodes", "cost", "first node", "last node", "ops", "output", "shape",
               "dtype", "bytes"});
  for (const auto& b : analysis.blocks) AddBlockRows(table, b, analysis);
  table.Print();
}

void RegisterInspect(CLI::App& app, GlobalOptions& global) {
  auto* cmd = app.add_subcommand("inspect", "cut points, blocks, tensor sizes");
  AddGlobalFlags(cmd, global);
  auto model_arg = std::make_shared<std::string>();
  auto flags = std::make_shared<InputFlags>();
  auto codecs = std::make_shared<bool>(false);
  cmd->add_option("MODEL", *model_arg, ".onnx path or zoo name")->required();
  AddInputFlags(cmd, *flags);
  cmd->add_flag("--codecs", *codecs,
                "instead of the blocks: what `benchmark --codecs` stored for this model, per "
                "resource, block boundary and codec (bytes, times, fidelity)");
  cmd->callback([model_arg, flags, codecs, &global] {
    std::string path = zoo::ResolveModel(*model_arg, [](const std::string& m) { Note(m); });
    if (*codecs) {
      PrintStoredCodecs(path, global.DbPath(), global.json);
      return;
    }
    auto prepared = profile::PrepareModel(path, flags->Options(), flags->Analysis());
    const auto& model = prepared.model;
    const auto& analysis = prepared.analysis;
    if (!global.json)
      for (const auto& n : prepared.inputs.notes) Note("note: " + n);
    if (global.json) {
      nlohmann::ordered_json doc;
      doc["model"] = path;
      doc["sha256"] = model.sha256;
      doc["opset"] = DefaultOpset(model.proto);
      doc["onnx_checked"] = model.onnx_checked;
      doc["inputs"] = nlohmann::ordered_json::array();
      for (const auto& in : analysis.inputs)
        doc["inputs"].push_back(
            {{"name", in.name}, {"shape", in.shape}, {"dtype", DTypeName(in.dtype)}});
      doc["nodes"] = model.proto.graph().node_size();
      doc["single_tensor_cuts"] = analysis.single_cuts.size();
      doc["cut_points_by_tensors"] = nlohmann::ordered_json::object();
      for (size_t k = 1; k <= analysis.cut_points_by_tensors.size(); ++k)
        doc["cut_points_by_tensors"][std::to_string(k)] = analysis.cut_points_by_tensors[k - 1];
      doc["estimated_macs"] = analysis.total_cost();
      doc["blocks"] = nlohmann::ordered_json::array();
      for (const auto& b : analysis.blocks) {
        nlohmann::ordered_json ops = nlohmann::ordered_json::object();
        for (const auto& [op, count] : b.ops) ops[op] = count;
        // Analyze guarantees every block an output; an empty one would be an internal fault.
        if (b.outputs.empty()) throw Internal("block {} has no output tensor", b.index);
        nlohmann::ordered_json out;
        const TensorSpec& o = b.outputs.front();
        out = {{"name", o.name},
               {"shape", o.shape},
               {"dtype", DTypeName(o.dtype)},
               {"bytes", SizeJson(b.output_bytes())}};
        if (b.outputs.size() > 1) out["tensors"] = TensorsJson(b.outputs);
        auto inputs = CurrentSpecs(analysis, b.inputs);
        doc["blocks"].push_back({{"index", b.index},
                                 {"nodes", b.nodes.size()},
                                 {"first_node", b.first_node},
                                 {"last_node", b.last_node},
                                 {"ops", ops},
                                 {"output", out},
                                 {"cost_share", CostShare(b, analysis)},
                                 {"inputs", TensorsJson(inputs)},
                                 {"input_bytes", SizeJson(graph::BoundaryBytes(inputs))},
                                 {"outputs", TensorsJson(b.outputs)}});
      }
      PrintJson(doc);
      return;
    }
    PrintInspection(path, model, analysis);
  });
}

}  // namespace scission::cli
