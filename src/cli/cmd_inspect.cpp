#include <fmt/ranges.h>

#include "cli/common.h"
#include "graph/analysis.h"
#include "graph/model.h"
#include "profile/prepared.h"
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
}  // namespace

void PrintInspection(const std::string& path, const graph::LoadedModel& model,
                     const graph::GraphAnalysis& analysis) {
  fmt::print("model   {}\nsha256  {}\n", path, model.sha256);
  // Users should know when shapes come from a run rather than from static inference.
  fmt::print("checks  {}\n", model.onnx_checked
                                 ? "ONNX checker, ONNX shape inference, ONNX Runtime"
                                 : "ONNX Runtime (the ONNX library does not know every opset or "
                                   "operator of this model; unknown shapes come from a run)");
  for (const auto& in : analysis.inputs)
    fmt::print("input   {} {} {}\n", in.name, DTypeName(in.dtype), ShapeString(in.shape));
  fmt::print("nodes   {} ({} activation, {} constant)\n", model.proto.graph().node_size(),
             analysis.order.size(), model.proto.graph().node_size() - analysis.order.size());
  fmt::print("cuts    {} single-tensor cut points -> {} blocks (trivial blocks merged)\n\n",
             analysis.single_cuts.size(), analysis.blocks.size());
  Table table(
      {"block", "nodes", "first node", "last node", "ops", "output", "shape", "dtype", "bytes"});
  for (const auto& b : analysis.blocks) {
    std::string names, shapes;
    std::string dtype = b.outputs.empty() ? "-" : DTypeName(b.outputs.front().dtype);
    for (const auto& o : b.outputs) {
      names += (names.empty() ? "" : ",") + o.name;
      shapes += (shapes.empty() ? "" : ",") + ShapeString(o.shape);
    }
    table.Add({std::to_string(b.index), std::to_string(b.nodes.size()), b.first_node, b.last_node,
               OpsSummary(b), names, shapes, dtype, SizeText(b.output_bytes())});
  }
  table.Print();
}

void RegisterInspect(CLI::App& app, GlobalOptions& global) {
  auto* cmd = app.add_subcommand("inspect", "cut points, blocks, tensor sizes");
  AddGlobalFlags(cmd, global);
  auto model_arg = std::make_shared<std::string>();
  auto flags = std::make_shared<InputFlags>();
  cmd->add_option("MODEL", *model_arg, ".onnx path or zoo name")->required();
  AddInputFlags(cmd, *flags);
  cmd->callback([model_arg, flags, &global] {
    std::string path = zoo::ResolveModel(*model_arg, [](const std::string& m) { Note(m); });
    auto prepared = profile::PrepareModel(path, flags->Options());
    const auto& model = prepared.model;
    const auto& analysis = prepared.analysis;
    if (!global.json)
      for (const auto& n : prepared.inputs.notes) Note("note: " + n);
    if (global.json) {
      nlohmann::ordered_json doc;
      doc["model"] = path;
      doc["sha256"] = model.sha256;
      doc["onnx_checked"] = model.onnx_checked;
      doc["inputs"] = nlohmann::ordered_json::array();
      for (const auto& in : analysis.inputs)
        doc["inputs"].push_back(
            {{"name", in.name}, {"shape", in.shape}, {"dtype", DTypeName(in.dtype)}});
      doc["nodes"] = model.proto.graph().node_size();
      doc["single_tensor_cuts"] = analysis.single_cuts.size();
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
        if (b.outputs.size() > 1) {
          out["tensors"] = nlohmann::ordered_json::array();
          for (const auto& t : b.outputs)
            out["tensors"].push_back({{"name", t.name},
                                      {"shape", t.shape},
                                      {"dtype", DTypeName(t.dtype)},
                                      {"bytes", SizeJson(t.bytes())}});
        }
        doc["blocks"].push_back({{"index", b.index},
                                 {"nodes", b.nodes.size()},
                                 {"first_node", b.first_node},
                                 {"last_node", b.last_node},
                                 {"ops", ops},
                                 {"output", out}});
      }
      PrintJson(doc);
      return;
    }
    PrintInspection(path, model, analysis);
  });
}

}  // namespace scission::cli
