#include "cli/common.h"
#include "zoo/zoo.h"

namespace scission::cli {

void RegisterModels(CLI::App& app, GlobalOptions& global) {
  auto* cmd = app.add_subcommand("models", "zoo names, input shapes, whether exported");
  AddGlobalFlags(cmd, global);
  cmd->callback([&global] {
    if (global.json) {
      nlohmann::ordered_json doc;
      doc["models_dir"] = zoo::ModelsDir();
      doc["models"] = nlohmann::ordered_json::array();
      for (const auto& e : zoo::Entries())
        doc["models"].push_back({{"name", e.name},
                                 {"input_shape", {1, 3, e.input_size, e.input_size}},
                                 {"in_scission_paper", e.in_scission_paper},
                                 {"exported", zoo::IsExported(e.name)},
                                 {"path", zoo::CachedPath(e.name)}});
      PrintJson(doc);
      return;
    }
    Table table({"name", "input", "exported", "scission paper"});
    for (const auto& e : zoo::Entries())
      table.Add({e.name, fmt::format("[1,3,{},{}]", e.input_size, e.input_size),
                 zoo::IsExported(e.name) ? "yes" : "no", e.in_scission_paper ? "yes" : ""});
    table.Print();
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
