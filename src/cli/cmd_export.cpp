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
        "r.execution_provider, r.threads, r.cpu_model, r.host, r.build_type, r.input_shapes, "
        "r.partition, r.inputs, r.chain_check, ms.output_shapes "
        "FROM measurements ms JOIN runs r ON r.id = ms.run_id "
        "JOIN resources res ON res.id = r.resource_id JOIN models m ON m.id = r.model_id "
        "ORDER BY r.id, ms.block_idx");
    enum Kind { kText, kInt, kReal };
    struct Column {
      const char* name;
      Kind kind;
    };
    // Same order as the SELECT above.
    static const Column kColumns[] = {{"run_id", kInt},
                                      {"kind", kText},
                                      {"started_at", kText},
                                      {"resource", kText},
                                      {"tier", kText},
                                      {"model", kText},
                                      {"model_key", kText},
                                      {"block", kInt},
                                      {"n", kInt},
                                      {"median_ms", kReal},
                                      {"mean_ms", kReal},
                                      {"p90_ms", kReal},
                                      {"p95_ms", kReal},
                                      {"stddev_ms", kReal},
                                      {"min_ms", kReal},
                                      {"max_ms", kReal},
                                      {"first_run_ms", kReal},
                                      {"setup_ms", kReal},
                                      {"output_bytes", kInt},
                                      {"backend", kText},
                                      {"runtime_version", kText},
                                      {"execution_provider", kText},
                                      {"threads", kInt},
                                      {"cpu_model", kText},
                                      {"host", kText},
                                      {"build_type", kText},
                                      {"input_shapes", kText},
                                      {"partition", kText},
                                      {"inputs", kText},
                                      {"chain_check", kText},
                                      {"output_shapes", kText}};
    constexpr int kCount = sizeof(kColumns) / sizeof(kColumns[0]);
    bool json = *format == "json" || global.json;
    nlohmann::ordered_json rows = nlohmann::ordered_json::array();
    if (!json) {
      for (int c = 0; c < kCount; ++c) std::cout << (c ? "," : "") << kColumns[c].name;
      std::cout << "\n";
    }
    while (s.Step()) {
      nlohmann::ordered_json row;
      for (int c = 0; c < kCount; ++c) {
        const Column& col = kColumns[c];
        if (json) {
          if (col.kind == kText)
            row[col.name] = s.Text(c);
          else if (col.kind == kInt)
            row[col.name] = s.Int(c);
          else
            row[col.name] = s.Double(c);
        } else {
          std::cout << (c ? "," : "")
                    << (col.kind == kText  ? CsvCell(s.Text(c))
                        : col.kind == kInt ? std::to_string(s.Int(c))
                                           : fmt::format("{:.6g}", s.Double(c)));
        }
      }
      if (json)
        rows.push_back(row);
      else
        std::cout << "\n";
    }
    if (json) {
      nlohmann::ordered_json doc;
      doc["measurements"] = rows;
      doc["links"] = nlohmann::ordered_json::array();
      for (const auto& l : db.Links())
        doc["links"].push_back({{"source", l.source},
                                {"destination", l.destination},
                                {"rtt_ms", l.rtt_ms},
                                {"mbps", l.mbps},
                                {"origin", l.origin}});
      PrintJson(doc);
    }
  });
}

}  // namespace scission::cli
