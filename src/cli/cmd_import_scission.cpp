#include <filesystem>

#include "cli/common.h"
#include "store/records.h"
#include "store/scission_data.h"
#include "store/validate.h"

namespace scission::cli {

void RegisterImportScission(CLI::App& app, GlobalOptions& global) {
  auto* cmd =
      app.add_subcommand("import-scission", "Scission .dat files + network CSVs into the store");
  AddGlobalFlags(cmd, global);
  struct Options {
    std::string dir;
    std::vector<std::string> csvs;
    double input_mb = 0.15;
  };
  auto opts = std::make_shared<Options>();
  cmd->add_option("DIR", opts->dir, "directory with <tier>-<name>.dat files (and *.csv)")
      ->required();
  cmd->add_option("--network", opts->csvs, "network CSVs (default: every *.csv in DIR)");
  cmd->add_option("-i,--input-mb", opts->input_mb, "model input size in MB (default 0.15)");
  cmd->callback([opts, &global] {
    int64_t input_bytes = store::InputBytesFromMb(opts->input_mb, "--input-mb");
    // Parse everything before touching the store, so bad input changes nothing.
    auto systems = store::LoadScissionDirectory(opts->dir);
    std::vector<std::string> csvs = opts->csvs;
    if (csvs.empty()) {
      std::error_code ec;
      for (const auto& e : std::filesystem::directory_iterator(opts->dir, ec))
        if (e.path().extension() == ".csv") csvs.push_back(e.path().string());
      if (ec) throw BadInput("{}: cannot list: {}", opts->dir, ec.message());
      std::sort(csvs.begin(), csvs.end());
    }
    std::vector<store::ScissionLink> links;
    for (const auto& csv : csvs) {
      auto parsed = store::LoadNetworkCsv(csv);
      links.insert(links.end(), parsed.begin(), parsed.end());  // later files win on duplicates
    }
    store::Store db(global.DbPath(), store::OpenMode::kWrite);
    auto summary = store::ImportScission(db, systems, links, input_bytes);
    if (global.json) {
      PrintJson({{"systems", summary.systems},
                 {"models", summary.models},
                 {"runs", summary.runs},
                 {"links", summary.links},
                 {"db", db.path()}});
      return;
    }
    fmt::print(
        "imported {} systems, {} models ({} profiles) and {} links from {} CSV files into {}\n",
        summary.systems, summary.models, summary.runs, summary.links, csvs.size(), db.path());
  });
}

}  // namespace scission::cli
