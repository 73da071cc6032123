#include <iostream>

#include "cli/common.h"
#include "store/store.h"

namespace scission::cli {

namespace {
std::string CsvCell(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}
}  // namespace

void RegisterExport(CLI::App& app, GlobalOptions& global) {
  auto* cmd = app.add_subcommand("export", "dump stored measurements as CSV or JSON");
  AddGlobalFlags(cmd, global);
  auto format = std::make_shared<std::string>("csv");
  cmd->add_option("--format", *format, "csv or json")->check(CLI::IsMember({"csv", "json"}));
  cmd->callback([format, &global] {
    store::Store db(global.DbPath());
    auto s = db.connection().Prepare(
        "SELECT r.id, r.kind, r.started_at, res.name, res.tier, m.name, m.key, ms.block_idx, "
        "ms.n, ms.median_ms, ms.mean_ms, ms.p90_ms, ms.p95_ms, ms.stddev_ms, ms.min_ms, ms.max_ms, "
        "ms.first_run_ms, ms.setup_ms, ms.output_bytes, r.backend, r.runtime_version, "
        "r.execution_provider, r.threads, r.cpu_model, r.host, r.build_type "
        "FROM measurements ms JOIN runs r ON r.id = ms.run_id "
        "JOIN resources res ON res.id = r.resource_id JOIN models m ON m.id = r.model_id "
        "ORDER BY r.id, ms.block_idx");
    static const char* kColumns[] = {
        "run_id", "kind", "started_at", "resource", "tier", "model", "model_key", "block",
        "n", "median_ms", "mean_ms", "p90_ms", "p95_ms", "stddev_ms", "min_ms", "max_ms",
        "first_run_ms", "setup_ms", "output_bytes", "backend", "runtime_version",
        "execution_provider", "threads", "cpu_model", "host", "build_type"};
    constexpr int kCount = sizeof(kColumns) / sizeof(kColumns[0]);
    auto is_text = [](int c) { return c == 1 || c == 2 || c == 3 || c == 4 || c == 5 || c == 6 || (c >= 19 && c != 22); };
    auto is_int = [](int c) { return c == 0 || c == 7 || c == 8 || c == 18 || c == 22; };
    bool json = *format == "json" || global.json;
    nlohmann::ordered_json rows = nlohmann::ordered_json::array();
    if (!json) {
      for (int c = 0; c < kCount; ++c) std::cout << (c ? "," : "") << kColumns[c];
      std::cout << "\n";
    }
    while (s.Step()) {
      nlohmann::ordered_json row;
      for (int c = 0; c < kCount; ++c) {
        if (json) {
          if (is_text(c)) row[kColumns[c]] = s.Text(c);
          else if (is_int(c)) row[kColumns[c]] = s.Int(c);
          else row[kColumns[c]] = s.Double(c);
        } else {
          std::cout << (c ? "," : "")
                    << (is_text(c) ? CsvCell(s.Text(c)) : is_int(c) ? std::to_string(s.Int(c)) : fmt::format("{:.6g}", s.Double(c)));
        }
      }
      if (json) rows.push_back(row);
      else std::cout << "\n";
    }
    if (json) {
      nlohmann::ordered_json doc;
      doc["measurements"] = rows;
      doc["links"] = nlohmann::ordered_json::array();
      for (const auto& l : db.Links())
        doc["links"].push_back({{"source", l.source}, {"destination", l.destination},
                                {"rtt_ms", l.rtt_ms}, {"mbps", l.mbps}, {"origin", l.origin}});
      PrintJson(doc);
    }
  });
}

}  // namespace scission::cli
