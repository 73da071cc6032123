#include "cli/common.h"
#include "common/files.h"
#include "store/records.h"
#include "store/store.h"

namespace scission::cli {

void RegisterImportRun(CLI::App& app, GlobalOptions& global) {
  auto* cmd = app.add_subcommand(
      "import-run", "store a benchmark run kept as JSON when the database was locked or read-only");
  AddGlobalFlags(cmd, global);
  auto file = std::make_shared<std::string>();
  cmd->add_option("FILE", *file, "the .json file named in the benchmark's error")->required();
  cmd->callback([file, &global] {
    auto doc = nlohmann::json::parse(ReadFileBytes(*file), nullptr, false);
    if (doc.is_discarded()) throw BadInput("{}: not valid JSON", *file);
    auto run = store::RunDocumentFromJson(doc, *file);
    if (run.resource.name.empty()) throw BadInput("{}: resource: missing", *file);
    store::Store db(global.DbPath(), store::OpenMode::kWrite);
    db.set_note_callback([](const std::string& m) { Note(m); });
    db.set_keep_unsaved_runs(false);  // the run is already in a file
    int64_t run_id = db.SaveRun(run);
    if (global.json) {
      PrintJson({{"run_id", run_id}, {"file", *file}, {"db", db.path()}});
      return;
    }
    fmt::print("stored run {} ({} on {}) from {} in {}; {} may now be deleted\n", run_id,
               run.model.name, run.resource.name, *file, db.path(), *file);
  });
}

}  // namespace scission::cli
