#include "cli/common.h"
#include "zoo/zoo.h"

namespace scission::cli {

namespace {

// A concrete shape for a zoo input: each dynamic dimension at the size the export traced.
std::string ExampleShape(const zoo::ZooEntry& entry) {
  std::string text;
  for (int64_t d : entry.input().shape)
    text += (text.empty() ? "" : "x") + std::to_string(d < 0 ? entry.input_size : d);
  return text;
}

}  // namespace

void RegisterModels(CLI::App& app, GlobalOptions& global) {
  auto* cmd = app.add_subcommand("models", "zoo names, input shapes, whether exported");
  AddGlobalFlags(cmd, global);
  cmd->callback([&global] {
    if (global.json) {
      nlohmann::ordered_json doc;
      doc["models_dir"] = zoo::ModelsDir();
      doc["models"] = nlohmann::ordered_json::array();
      for (const auto& e : zoo::Entries()) {
        auto input = e.input();
        // A dynamic dimension appears by its name ("seq"), so the shape is never a made-up size.
        nlohmann::ordered_json shape = nlohmann::ordered_json::array();
        for (size_t i = 0; i < input.shape.size(); ++i)
          shape.push_back(input.shape[i] < 0 ? nlohmann::ordered_json(input.names[i])
                                             : nlohmann::ordered_json(input.shape[i]));
        doc["models"].push_back({{"name", e.name},
                                 {"input_name", input.name},
                                 {"input_dtype", DTypeName(input.dtype)},
                                 {"input_shape", shape},
                                 {"dynamic", input.dynamic()},
                                 {"in_scission_paper", e.in_scission_paper},
                                 {"exported", zoo::IsExported(e.name)},
                                 {"path", zoo::CachedPath(e.name)}});
      }
      PrintJson(doc);
      return;
    }
    Table table({"name", "input", "exported", "scission paper"});
    std::vector<std::string> notes;
    for (const auto& e : zoo::Entries()) {
      auto input = e.input();
      if (input.dynamic())
        notes.push_back(
            fmt::format("{}: {} {} has dynamic dimensions; give them, e.g. --shape {}={}", e.name,
                        input.name, input.ShapeText(), input.name, ExampleShape(e)));
      table.Add({e.name,
                 fmt::format("{} {} {}", input.name, input.ShapeText(), DTypeName(input.dtype)),
                 zoo::IsExported(e.name) ? "yes" : "no", e.in_scission_paper ? "yes" : ""});
    }
    table.Print();
    for (const auto& n : notes) fmt::print("{}\n", n);
    fmt::print("models cached in {}\n", zoo::ModelsDir());
  });
}

void RegisterZoo(CLI::App& app, GlobalOptions& global) {
  auto* zoo_cmd = app.add_subcommand("zoo", "manage the model zoo");
  zoo_cmd->require_subcommand(1);
  auto* exp =
      zoo_cmd->add_subcommand("export", "export zoo models to ONNX (needs python3-torchvision)");
  AddGlobalFlags(exp, global);
  struct Options {
    std::vector<std::string> names;
    bool all = false;
    bool force = false;
  };
  auto opts = std::make_shared<Options>();
  exp->add_option("names", opts->names, "zoo model names");
  exp->add_flag("--all", opts->all, "export every zoo model");
  exp->add_flag("--force", opts->force, "export again even if cached");
  exp->callback([opts, &global] {
    std::vector<std::string> names = opts->names;
    if (opts->all)
      for (const auto& e : zoo::Entries()) names.push_back(e.name);
    if (names.empty()) throw BadInput("zoo export: name a model or pass --all");
    for (const auto& n : names)
      if (!zoo::Find(n)) throw BadInput("'{}' is not a zoo model (see `scission models`)", n);
    nlohmann::ordered_json doc = nlohmann::ordered_json::array();
    for (const auto& n : names) {
      std::string path = zoo::Export(n, opts->force, [](const std::string& m) { Note(m); });
      doc.push_back({{"name", n}, {"path", path}});
      if (!global.json) fmt::print("{}  {}\n", n, path);
    }
    if (global.json) PrintJson(doc);
  });
}

}  // namespace scission::cli
