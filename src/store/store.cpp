#include "store/store.h"

#include <chrono>
#include <ctime>

#include <nlohmann/json.hpp>

#include "common/error.h"

namespace scission::store {

namespace {

// Migration i brings user_version from i to i+1. Never edit a shipped entry; append.
const char* const kMigrations[] = {
    R"sql(
CREATE TABLE resources (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  tier TEXT NOT NULL
);
CREATE TABLE models (
  id INTEGER PRIMARY KEY,
  key TEXT NOT NULL UNIQUE,
  name TEXT NOT NULL,
  path TEXT NOT NULL DEFAULT '',
  origin TEXT NOT NULL,
  file_bytes INTEGER NOT NULL DEFAULT 0,
  input_bytes INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE blocks (
  model_id INTEGER NOT NULL REFERENCES models(id),
  idx INTEGER NOT NULL,
  nodes INTEGER NOT NULL,
  first_node TEXT NOT NULL,
  last_node TEXT NOT NULL,
  ops TEXT NOT NULL,
  output_name TEXT NOT NULL,
  output_shape TEXT NOT NULL,
  output_dtype TEXT NOT NULL,
  output_bytes INTEGER NOT NULL,
  first_layer INTEGER NOT NULL,
  last_layer INTEGER NOT NULL,
  PRIMARY KEY (model_id, idx)
);
CREATE TABLE runs (
  id INTEGER PRIMARY KEY,
  model_id INTEGER NOT NULL REFERENCES models(id),
  resource_id INTEGER NOT NULL REFERENCES resources(id),
  kind TEXT NOT NULL,
  started_at TEXT NOT NULL,
  backend TEXT NOT NULL,
  runtime_version TEXT NOT NULL,
  execution_provider TEXT NOT NULL,
  threads INTEGER NOT NULL,
  cpu_model TEXT NOT NULL,
  host TEXT NOT NULL,
  build_type TEXT NOT NULL,
  warmup INTEGER NOT NULL,
  repeats INTEGER NOT NULL,
  wall_ms REAL NOT NULL,
  setup_ms REAL NOT NULL
);
CREATE TABLE measurements (
  run_id INTEGER NOT NULL REFERENCES runs(id),
  block_idx INTEGER NOT NULL,
  setup_ms REAL NOT NULL,
  first_run_ms REAL NOT NULL,
  n INTEGER NOT NULL,
  median_ms REAL NOT NULL,
  mean_ms REAL NOT NULL,
  p90_ms REAL NOT NULL,
  p95_ms REAL NOT NULL,
  stddev_ms REAL NOT NULL,
  min_ms REAL NOT NULL,
  max_ms REAL NOT NULL,
  output_bytes INTEGER NOT NULL,
  samples_ms TEXT NOT NULL,
  PRIMARY KEY (run_id, block_idx)
);
CREATE TABLE links (
  source TEXT NOT NULL,
  destination TEXT NOT NULL,
  rtt_ms REAL NOT NULL,
  mbps REAL NOT NULL,
  origin TEXT NOT NULL,
  updated_at TEXT NOT NULL,
  PRIMARY KEY (source, destination)
);
CREATE INDEX runs_by_model ON runs(model_id, resource_id, id);
)sql",
};
constexpr int kMigrationCount = sizeof(kMigrations) / sizeof(kMigrations[0]);
static_assert(kMigrationCount == kSchemaVersion);

MeasurementRecord ReadMeasurement(Statement& s, int first_column) {
  MeasurementRecord m;
  int c = first_column;
  m.block_index = static_cast<int>(s.Int(c++));
  m.setup_ms = s.Double(c++);
  m.first_run_ms = s.Double(c++);
  m.n = s.Int(c++);
  m.median_ms = s.Double(c++);
  m.mean_ms = s.Double(c++);
  m.p90_ms = s.Double(c++);
  m.p95_ms = s.Double(c++);
  m.stddev_ms = s.Double(c++);
  m.min_ms = s.Double(c++);
  m.max_ms = s.Double(c++);
  m.output_bytes = s.Int(c++);
  auto samples = nlohmann::json::parse(s.Text(c), nullptr, false);
  if (samples.is_array())
    for (const auto& v : samples)
      if (v.is_number()) m.samples_ms.push_back(v.get<double>());
  return m;
}

}  // namespace

std::string NowIso8601() {
  auto now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm utc{};
  gmtime_r(&now, &utc);
  char buffer[32];
  std::strftime(buffer, sizeof(buffer), "%Y-%m-%dT%H:%M:%SZ", &utc);
  return buffer;
}

Store::Store(const std::string& path) : db_(path) {
  try {
    db_.Exec("PRAGMA journal_mode=WAL");
  } catch (const Error& e) {
    throw BadInput("{}: not a Scission database ({})", path, e.what());
  }
  db_.Exec("PRAGMA synchronous=NORMAL");
  db_.Exec("PRAGMA foreign_keys=ON");
  Migrate();
}

int Store::schema_version() {
  auto s = db_.Prepare("PRAGMA user_version");
  s.Step();
  return static_cast<int>(s.Int(0));
}

void Store::Migrate() {
  int version = schema_version();
  if (version > kSchemaVersion)
    throw BadInput("{}: database schema version {} is newer than this Scission's ({})", path(),
                   version, kSchemaVersion);
  if (version == kSchemaVersion) return;
  Transaction tx(db_);
  for (int v = version; v < kSchemaVersion; ++v) db_.Exec(kMigrations[v]);
  db_.Exec("PRAGMA user_version = " + std::to_string(kSchemaVersion));
  tx.Commit();
}

int64_t Store::UpsertResource(const ResourceRecord& resource) {
  auto s = db_.Prepare(
      "INSERT INTO resources(name, tier) VALUES(?1, ?2) "
      "ON CONFLICT(name) DO UPDATE SET tier = excluded.tier RETURNING id");
  s.Bind(1, resource.name).Bind(2, resource.tier);
  if (!s.Step()) throw Internal("{}: resource upsert returned nothing", path());
  return s.Int(0);
}

int64_t Store::UpsertModel(const ModelRecord& model) {
  auto s = db_.Prepare(
      "INSERT INTO models(key, name, path, origin, file_bytes, input_bytes) "
      "VALUES(?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT(key) DO UPDATE SET name = excluded.name, "
      "path = excluded.path, input_bytes = excluded.input_bytes RETURNING id");
  s.Bind(1, model.key).Bind(2, model.name).Bind(3, model.path).Bind(4, model.origin);
  s.Bind(5, model.file_bytes).Bind(6, model.input_bytes);
  if (!s.Step()) throw Internal("{}: model upsert returned nothing", path());
  return s.Int(0);
}

void Store::ReplaceBlocks(int64_t model_id, const std::vector<BlockRecord>& blocks) {
  auto del = db_.Prepare("DELETE FROM blocks WHERE model_id = ?1");
  del.Bind(1, model_id).Run();
  auto ins = db_.Prepare(
      "INSERT INTO blocks(model_id, idx, nodes, first_node, last_node, ops, output_name, "
      "output_shape, output_dtype, output_bytes, first_layer, last_layer) "
      "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)");
  for (const auto& b : blocks) {
    ins.Bind(1, model_id).Bind(2, b.index).Bind(3, b.nodes).Bind(4, b.first_node);
    ins.Bind(5, b.last_node).Bind(6, b.ops).Bind(7, b.output_name).Bind(8, b.output_shape);
    ins.Bind(9, b.output_dtype).Bind(10, b.output_bytes).Bind(11, b.first_layer);
    ins.Bind(12, b.last_layer);
    ins.Run();
    ins.Reset();
  }
}

int64_t Store::SaveRun(const ResourceRecord& resource, const ModelRecord& model,
                       const std::vector<BlockRecord>& blocks, const RunRecord& run) {
  Transaction tx(db_);
  int64_t resource_id = UpsertResource(resource);
  int64_t model_id = UpsertModel(model);
  ReplaceBlocks(model_id, blocks);
  auto s = db_.Prepare(
      "INSERT INTO runs(model_id, resource_id, kind, started_at, backend, runtime_version, "
      "execution_provider, threads, cpu_model, host, build_type, warmup, repeats, wall_ms, "
      "setup_ms) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)");
  s.Bind(1, model_id).Bind(2, resource_id).Bind(3, run.kind).Bind(4, run.started_at);
  s.Bind(5, run.backend).Bind(6, run.runtime_version).Bind(7, run.execution_provider);
  s.Bind(8, run.threads).Bind(9, run.cpu_model).Bind(10, run.host).Bind(11, run.build_type);
  s.Bind(12, run.warmup).Bind(13, run.repeats).Bind(14, run.wall_ms).Bind(15, run.setup_ms);
  s.Run();
  int64_t run_id = db_.LastInsertId();
  if (mid_transaction_hook_) mid_transaction_hook_();
  auto m = db_.Prepare(
      "INSERT INTO measurements(run_id, block_idx, setup_ms, first_run_ms, n, median_ms, mean_ms, "
      "p90_ms, p95_ms, stddev_ms, min_ms, max_ms, output_bytes, samples_ms) "
      "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)");
  for (const auto& x : run.measurements) {
    m.Bind(1, run_id).Bind(2, x.block_index).Bind(3, x.setup_ms).Bind(4, x.first_run_ms);
    m.Bind(5, x.n).Bind(6, x.median_ms).Bind(7, x.mean_ms).Bind(8, x.p90_ms).Bind(9, x.p95_ms);
    m.Bind(10, x.stddev_ms).Bind(11, x.min_ms).Bind(12, x.max_ms).Bind(13, x.output_bytes);
    m.Bind(14, nlohmann::json(x.samples_ms).dump());
    m.Run();
    m.Reset();
  }
  tx.Commit();
  return run_id;
}

void Store::UpsertLink(const LinkRecord& link) { UpsertLinks({link}); }

void Store::UpsertLinks(const std::vector<LinkRecord>& links) {
  Transaction tx(db_);
  auto s = db_.Prepare(
      "INSERT INTO links(source, destination, rtt_ms, mbps, origin, updated_at) "
      "VALUES(?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT(source, destination) DO UPDATE SET "
      "rtt_ms = excluded.rtt_ms, mbps = excluded.mbps, origin = excluded.origin, "
      "updated_at = excluded.updated_at");
  for (const auto& l : links) {
    s.Bind(1, l.source).Bind(2, l.destination).Bind(3, l.rtt_ms).Bind(4, l.mbps);
    s.Bind(5, l.origin).Bind(6, l.updated_at.empty() ? NowIso8601() : l.updated_at);
    s.Run();
    s.Reset();
  }
  tx.Commit();
}

std::vector<LinkRecord> Store::Links() {
  std::vector<LinkRecord> links;
  auto s = db_.Prepare(
      "SELECT source, destination, rtt_ms, mbps, origin, updated_at FROM links "
      "ORDER BY source, destination");
  while (s.Step())
    links.push_back({s.Text(0), s.Text(1), s.Double(2), s.Double(3), s.Text(4), s.Text(5)});
  return links;
}

std::optional<LinkRecord> Store::FindLink(const std::string& source,
                                          const std::string& destination) {
  auto s = db_.Prepare(
      "SELECT source, destination, rtt_ms, mbps, origin, updated_at FROM links "
      "WHERE source = ?1 AND destination = ?2");
  s.Bind(1, source).Bind(2, destination);
  if (!s.Step()) return std::nullopt;
  return LinkRecord{s.Text(0), s.Text(1), s.Double(2), s.Double(3), s.Text(4), s.Text(5)};
}

std::vector<ResourceRecord> Store::Resources() {
  std::vector<ResourceRecord> out;
  auto s = db_.Prepare("SELECT name, tier FROM resources ORDER BY tier, name");
  while (s.Step()) out.push_back({s.Text(0), s.Text(1)});
  return out;
}

std::vector<ModelRecord> Store::Models() {
  std::vector<ModelRecord> out;
  auto s = db_.Prepare(
      "SELECT key, name, path, origin, file_bytes, input_bytes FROM models ORDER BY name");
  while (s.Step()) out.push_back({s.Text(0), s.Text(1), s.Text(2), s.Text(3), s.Int(4), s.Int(5)});
  return out;
}

std::optional<ModelRecord> Store::FindModel(const std::string& key_or_name) {
  auto s = db_.Prepare(
      "SELECT key, name, path, origin, file_bytes, input_bytes FROM models "
      "WHERE key = ?1 OR name = ?1 ORDER BY (key = ?1) DESC, id DESC LIMIT 1");
  s.Bind(1, key_or_name);
  if (!s.Step()) return std::nullopt;
  return ModelRecord{s.Text(0), s.Text(1), s.Text(2), s.Text(3), s.Int(4), s.Int(5)};
}

std::vector<ProfileView> Store::LatestProfiles(const std::string& model_key) {
  std::vector<ProfileView> views;
  auto runs = db_.Prepare(
      "SELECT r.id, res.name, res.tier, m.key, m.name, m.input_bytes, m.id FROM runs r "
      "JOIN resources res ON res.id = r.resource_id JOIN models m ON m.id = r.model_id "
      "WHERE m.key = ?1 AND r.id = (SELECT MAX(id) FROM runs r2 WHERE r2.model_id = r.model_id "
      "AND r2.resource_id = r.resource_id) ORDER BY res.tier, res.name");
  runs.Bind(1, model_key);
  int64_t model_id = -1;
  while (runs.Step()) {
    ProfileView v;
    v.run_id = runs.Int(0);
    v.resource = runs.Text(1);
    v.tier = runs.Text(2);
    v.model_key = runs.Text(3);
    v.model_name = runs.Text(4);
    v.input_bytes = runs.Int(5);
    model_id = runs.Int(6);
    views.push_back(std::move(v));
  }
  if (views.empty()) return views;
  std::vector<BlockRecord> blocks;
  auto b = db_.Prepare(
      "SELECT idx, nodes, first_node, last_node, ops, output_name, output_shape, output_dtype, "
      "output_bytes, first_layer, last_layer FROM blocks WHERE model_id = ?1 ORDER BY idx");
  b.Bind(1, model_id);
  while (b.Step())
    blocks.push_back({static_cast<int>(b.Int(0)), static_cast<int>(b.Int(1)), b.Text(2), b.Text(3),
                      b.Text(4), b.Text(5), b.Text(6), b.Text(7), b.Int(8),
                      static_cast<int>(b.Int(9)), static_cast<int>(b.Int(10))});
  for (auto& v : views) {
    v.blocks = blocks;
    auto m = db_.Prepare(
        "SELECT block_idx, setup_ms, first_run_ms, n, median_ms, mean_ms, p90_ms, p95_ms, "
        "stddev_ms, min_ms, max_ms, output_bytes, samples_ms FROM measurements "
        "WHERE run_id = ?1 ORDER BY block_idx");
    m.Bind(1, v.run_id);
    while (m.Step()) {
      auto record = ReadMeasurement(m, 0);
      if (record.block_index < 0)
        v.whole = record;
      else
        v.block_measurements.push_back(std::move(record));
    }
  }
  return views;
}

int64_t Store::CountRuns() {
  auto s = db_.Prepare("SELECT COUNT(*) FROM runs");
  s.Step();
  return s.Int(0);
}

}  // namespace scission::store
