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

namespace {

enum Kind { kText, kInt, kReal };
struct Column {
  const char* name;
  Kind kind;
};

// Runs `sql` (its columns in `columns` order) and prints CSV rows (with a header) or returns them
// as JSON objects.
nlohmann::ordered_json ExportRows(store::Store& db, const std::string& sql,
                                  const std::vector<Column>& columns, bool json) {
  auto s = db.connection().Prepare(sql);
  nlohmann::ordered_json rows = nlohmann::ordered_json::array();
  const int count = static_cast<int>(columns.size());
  if (!json) {
    for (int c = 0; c < count; ++c) std::cout << (c ? "," : "") << columns[c].name;
    std::cout << "\n";
  }
  while (s.Step()) {
    nlohmann::ordered_json row;
    for (int c = 0; c < count; ++c) {
      const Column& col = columns[c];
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
  return rows;
}

const char* const kMeasurementsSql =
    "SELECT r.id, r.kind, r.started_at, res.name, res.tier, m.name, m.key, ms.block_idx, "
    "ms.n, ms.median_ms, ms.mean_ms, ms.p90_ms, ms.p95_ms, ms.stddev_ms, ms.min_ms, ms.max_ms, "
    "ms.first_run_ms, ms.setup_ms, ms.output_bytes, r.backend, r.runtime_version, "
    "r.execution_provider, r.threads, r.cpu_model, r.host, r.build_type, r.input_shapes, "
    "r.partition, r.inputs, r.chain_check, ms.output_shapes "
    "FROM measurements ms JOIN runs r ON r.id = ms.run_id "
    "JOIN resources res ON res.id = r.resource_id JOIN models m ON m.id = r.model_id "
    "ORDER BY r.id, ms.block_idx";
// Same order as the SELECT above.
const std::vector<Column> kMeasurementColumns = {{"run_id", kInt},
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

const char* const kCodecsSql =
    "SELECT r.id, res.name, res.tier, m.name, m.key, r.input_shapes, r.partition, r.inputs, "
    "c.boundary, c.codec, c.raw_bytes, c.bytes, c.encode_ms, c.decode_ms, c.max_abs_error, "
    "c.rel_l2_error, c.top1_agreement, c.fidelity_inputs "
    "FROM codec_measurements c JOIN runs r ON r.id = c.run_id "
    "JOIN resources res ON res.id = r.resource_id JOIN models m ON m.id = r.model_id "
    "ORDER BY r.id, c.boundary, c.rowid";
const std::vector<Column> kCodecColumns = {
    {"run_id", kInt},        {"resource", kText},       {"tier", kText},
    {"model", kText},        {"model_key", kText},      {"input_shapes", kText},
    {"partition", kText},    {"inputs", kText},         {"boundary", kInt},
    {"codec", kText},        {"raw_bytes", kInt},       {"bytes", kInt},
    {"encode_ms", kReal},    {"decode_ms", kReal},      {"max_abs_error", kReal},
    {"rel_l2_error", kReal}, {"top1_agreement", kReal}, {"fidelity_inputs", kInt}};

}  // namespace

void RegisterExport(CLI::App& app, GlobalOptions& global) {
  auto* cmd = app.add_subcommand("export", "dump stored measurements as CSV or JSON");
  AddGlobalFlags(cmd, global);
  auto format = std::make_shared<std::string>("csv");
  auto what = std::make_shared<std::string>("measurements");
  cmd->add_option("--format", *format, "csv or json")->check(CLI::IsMember({"csv", "json"}));
  cmd->add_option("--what", *what,
                  "CSV: measurements (default; one row per block) or codecs (one row per "
                  "boundary and codec); JSON holds both")
      ->check(CLI::IsMember({"measurements", "codecs"}));
  cmd->callback([format, what, &global] {
    store::Store db(global.DbPath());
    const bool json = *format == "json" || global.json;
    // A read-only database of an older schema has no codec table (nothing to export from it).
    auto table = db.connection().Prepare(
        "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'codec_measurements'");
    table.Step();
    const bool has_codecs = table.Int(0) > 0;
    const char* codecs_sql = has_codecs ? kCodecsSql : "SELECT 1 WHERE 0";
    if (!json) {
      if (*what == "codecs")
        ExportRows(db, codecs_sql, kCodecColumns, false);
      else
        ExportRows(db, kMeasurementsSql, kMeasurementColumns, false);
      return;
    }
    nlohmann::ordered_json doc;
    doc["measurements"] = ExportRows(db, kMeasurementsSql, kMeasurementColumns, true);
    doc["codecs"] = ExportRows(db, codecs_sql, kCodecColumns, true);
    doc["links"] = nlohmann::ordered_json::array();
    for (const auto& l : db.Links())
      doc["links"].push_back({{"source", l.source},
                              {"destination", l.destination},
                              {"rtt_ms", l.rtt_ms},
                              {"mbps", l.mbps},
                              {"origin", l.origin}});
    PrintJson(doc);
  });
}

}  // namespace scission::cli
