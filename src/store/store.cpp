#include "store/store.h"

#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <filesystem>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/files.h"
#include "store/records.h"
#include "store/validate.h"

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
    // 2: a profile belongs to (model, input shapes, partition); blocks are kept per partition and
    // carry their positions; runs record their inputs and the chain check.
    R"sql(
ALTER TABLE runs ADD COLUMN input_shapes TEXT NOT NULL DEFAULT '';
ALTER TABLE runs ADD COLUMN partition TEXT NOT NULL DEFAULT '';
ALTER TABLE runs ADD COLUMN input_bytes INTEGER NOT NULL DEFAULT -1;
ALTER TABLE runs ADD COLUMN inputs TEXT NOT NULL DEFAULT '';
ALTER TABLE runs ADD COLUMN chain_check TEXT NOT NULL DEFAULT '';
ALTER TABLE runs ADD COLUMN chain_max_abs_diff REAL NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN chain_tolerance REAL NOT NULL DEFAULT 0;
ALTER TABLE measurements ADD COLUMN output_shapes TEXT NOT NULL DEFAULT '';
CREATE TABLE blocks_v2 (
  model_id INTEGER NOT NULL REFERENCES models(id),
  partition TEXT NOT NULL,
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
  begin_pos INTEGER NOT NULL DEFAULT -1,
  end_pos INTEGER NOT NULL DEFAULT -1,
  PRIMARY KEY (model_id, partition, idx)
);
INSERT INTO blocks_v2(model_id, partition, idx, nodes, first_node, last_node, ops, output_name,
                      output_shape, output_dtype, output_bytes, first_layer, last_layer)
  SELECT model_id, '', idx, nodes, first_node, last_node, ops, output_name, output_shape,
         output_dtype, output_bytes, first_layer, last_layer FROM blocks;
DROP TABLE blocks;
ALTER TABLE blocks_v2 RENAME TO blocks;
CREATE INDEX runs_by_profile ON runs(model_id, input_shapes, partition, id);
)sql",
    // 3: what each codec does at each block boundary (DESIGN.md "Codecs").
    R"sql(
CREATE TABLE codec_measurements (
  run_id INTEGER NOT NULL REFERENCES runs(id),
  boundary INTEGER NOT NULL,
  codec TEXT NOT NULL,
  raw_bytes INTEGER NOT NULL,
  bytes INTEGER NOT NULL,
  encode_ms REAL NOT NULL,
  decode_ms REAL NOT NULL,
  max_abs_error REAL NOT NULL,
  rel_l2_error REAL NOT NULL,
  top1_agreement REAL NOT NULL,
  fidelity_inputs INTEGER NOT NULL,
  PRIMARY KEY (run_id, boundary, codec)
);
)sql",
};
constexpr int kMigrationCount = sizeof(kMigrations) / sizeof(kMigrations[0]);
static_assert(kMigrationCount == kSchemaVersion);

// The tables of schema 1. Databases written before the application_id was set are recognised as
// Scission's by exactly this set together with user_version 1.
const std::vector<std::string> kSchema1Tables = {"blocks", "links",     "measurements",
                                                 "models", "resources", "runs"};

namespace fs = std::filesystem;

// Read-write when the file (or, for a new file, its directory) and the directory can be written:
// SQLite needs the directory for the WAL and its index. Otherwise read-only, and immutable when
// not even the WAL index can be created.
OpenFlags ChooseOpenFlags(const std::string& path, OpenMode mode) {
  fs::path file(path);
  fs::path dir = file.has_parent_path() ? file.parent_path() : fs::path(".");
  std::error_code ec;
  bool exists = fs::exists(file, ec);
  // The default location (~/.local/share/scission) may not exist yet.
  if (!exists && !fs::exists(dir, ec)) fs::create_directories(dir, ec);
  bool dir_writable = ::access(dir.c_str(), W_OK | X_OK) == 0;
  if (!exists) {
    if (!dir_writable)
      throw BadInput("{}: cannot create the database: directory {} is not writable", path,
                     dir.string());
    return OpenFlags::kReadWriteCreate;
  }
  if (fs::is_directory(file, ec)) return OpenFlags::kReadWriteCreate;  // Connection says so
  bool file_writable = ::access(path.c_str(), W_OK) == 0;
  if (file_writable && dir_writable) return OpenFlags::kReadWriteCreate;
  if (mode == OpenMode::kWrite)
    throw BadInput(
        "{}: the database is read-only ({} is not writable) and this command writes to it", path,
        file_writable ? "its directory" : "the file");
  if (dir_writable || fs::exists(path + "-shm", ec)) return OpenFlags::kReadOnly;
  return OpenFlags::kReadOnlyImmutable;
}

// "20240131T120000Z" (no ':' for file names).
std::string CompactTimestamp() {
  std::string stamp = NowIso8601();
  std::erase(stamp, ':');
  std::erase(stamp, '-');
  return stamp;
}

// Restores the connection's busy timeout when SaveRun's waiting ends.
class BusyTimeoutGuard {
 public:
  BusyTimeoutGuard(Connection& db, int ms) : db_(db), ms_(ms) {}
  ~BusyTimeoutGuard() { db_.set_busy_timeout_ms(ms_); }
  BusyTimeoutGuard(const BusyTimeoutGuard&) = delete;
  BusyTimeoutGuard& operator=(const BusyTimeoutGuard&) = delete;

 private:
  Connection& db_;
  int ms_;
};

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

const char* MigrationSql(int from) {
  if (from < 0 || from >= kMigrationCount) throw Internal("no migration from schema {}", from);
  return kMigrations[from];
}

std::string NowIso8601() {
  auto now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm utc{};
  gmtime_r(&now, &utc);
  char buffer[32];
  std::strftime(buffer, sizeof(buffer), "%Y-%m-%dT%H:%M:%SZ", &utc);
  return buffer;
}

Store::Store(const std::string& path, OpenMode mode) : db_(path, ChooseOpenFlags(path, mode)) {
  CheckIdentity();  // before anything that writes, so a foreign file is left as it was
  if (!read_only()) {
    db_.Exec("PRAGMA journal_mode=WAL");
    db_.Exec("PRAGMA synchronous=NORMAL");
  }
  db_.Exec("PRAGMA foreign_keys=ON");
  Migrate();
}

int Store::schema_version() {
  auto s = db_.Prepare("PRAGMA user_version");
  s.Step();
  return static_cast<int>(s.Int(0));
}

void Store::set_lock_wait(const LockWait& wait) {
  lock_wait_ = wait;
  db_.set_busy_timeout_ms(wait.busy_timeout_ms);
}

void Store::CheckIdentity() {
  int64_t application_id = 0, version = 0;
  std::vector<std::string> tables;
  try {
    auto id = db_.Prepare("PRAGMA application_id");
    id.Step();
    application_id = id.Int(0);
    auto v = db_.Prepare("PRAGMA user_version");
    v.Step();
    version = v.Int(0);
    // Views and triggers count as tables here: a file holding only those is not empty.
    auto t = db_.Prepare(
        "SELECT name FROM sqlite_master WHERE type IN ('table', 'view', 'trigger') "
        "AND name NOT LIKE 'sqlite@_%' ESCAPE '@' ORDER BY name");
    while (t.Step()) tables.push_back(t.Text(0));
  } catch (const Error&) {
    throw BadInput("{}: not a Scission database ({})", path(), sqlite3_errmsg(db_.raw()));
  }
  if (version < 0)
    throw BadInput("{}: schema version {} is not one Scission writes", path(), version);
  if (application_id == kApplicationId) {
    if (version > kSchemaVersion)
      throw BadInput("{}: database schema version {} is newer than this Scission's ({})", path(),
                     version, kSchemaVersion);
    return;
  }
  bool empty = application_id == 0 && version == 0 && tables.empty();
  bool schema1 = application_id == 0 && version == 1 && tables == kSchema1Tables;
  if (empty || schema1) return;
  std::vector<std::string> shown;
  for (size_t i = 0; i < tables.size() && i < 5; ++i) shown.push_back(PrintableText(tables[i]));
  if (tables.size() > 5) shown.push_back("...");
  throw BadInput(
      "{}: not a Scission database (application_id {:#x}, user_version {}, tables: {}); "
      "left unchanged",
      path(), static_cast<uint32_t>(application_id), version,
      shown.empty() ? std::string("none") : fmt::format("{}", fmt::join(shown, ", ")));
}

void Store::Migrate() {
  auto application_id = [&] {
    auto s = db_.Prepare("PRAGMA application_id");
    s.Step();
    return s.Int(0);
  };
  int version = schema_version();
  if (version == kSchemaVersion && application_id() == kApplicationId) return;
  if (read_only()) {
    if (version == 0)
      throw BadInput("{}: the database is empty and read-only, so there is nothing to read",
                     path());
    if (version < kSchemaVersion)
      throw BadInput(
          "{}: schema version {} needs an upgrade, which a read-only database cannot take; "
          "open it once with write access",
          path(), version);
    return;  // a schema-1 database from before the application_id: readable as it is
  }
  Transaction tx(db_);
  version = schema_version();  // another process may have migrated while this one waited
  CheckIdentity();
  for (int v = version; v < kSchemaVersion; ++v) db_.Exec(kMigrations[v]);
  db_.Exec("PRAGMA user_version = " + std::to_string(kSchemaVersion));
  db_.Exec("PRAGMA application_id = " + std::to_string(kApplicationId));
  tx.Commit();
}

void Store::RequireWritable(const char* what) {
  if (read_only())
    throw BadInput(
        "{}: the database is open read-only (the file or its directory is not writable), so "
        "cannot {}",
        path(), what);
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

void Store::ReplaceBlocks(int64_t model_id, const std::string& partition,
                          const std::vector<BlockRecord>& blocks) {
  auto del = db_.Prepare("DELETE FROM blocks WHERE model_id = ?1 AND partition = ?2");
  del.Bind(1, model_id).Bind(2, partition).Run();
  auto ins = db_.Prepare(
      "INSERT INTO blocks(model_id, partition, idx, nodes, first_node, last_node, ops, "
      "output_name, output_shape, output_dtype, output_bytes, first_layer, last_layer, "
      "begin_pos, end_pos) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, "
      "?15)");
  for (const auto& b : blocks) {
    ins.Bind(1, model_id).Bind(2, partition).Bind(3, b.index).Bind(4, b.nodes);
    ins.Bind(5, b.first_node).Bind(6, b.last_node).Bind(7, b.ops).Bind(8, b.output_name);
    ins.Bind(9, b.output_shape).Bind(10, b.output_dtype).Bind(11, b.output_bytes);
    ins.Bind(12, b.first_layer).Bind(13, b.last_layer).Bind(14, b.begin_pos).Bind(15, b.end_pos);
    ins.Run();
    ins.Reset();
  }
}

int64_t Store::SaveRun(const ResourceRecord& resource, const ModelRecord& model,
                       const std::vector<BlockRecord>& blocks, const RunRecord& run) {
  ValidateRun(resource, model, blocks, run, "cannot store the run");
  try {
    return WriteRun(resource, model, blocks, run);
  } catch (const Error& e) {
    if (!keep_unsaved_runs_) throw;
    std::string kept;
    try {
      kept = KeepUnsavedRun({resource, model, blocks, run});
    } catch (const Error& k) {
      throw Error(e.kind(),
                  fmt::format("{}; the run could not be kept either: {}", e.what(), k.what()));
    }
    throw Error(e.kind(),
                fmt::format("{}; the run was kept in {}: store it later with `scission import-run "
                            "{}`",
                            e.what(), kept, kept));
  }
}

int64_t Store::WriteRun(const ResourceRecord& resource, const ModelRecord& model,
                        const std::vector<BlockRecord>& blocks, const RunRecord& run) {
  RequireWritable("store a run");
  // Another writer holds the lock for the length of its own transaction; wait in busy-timeout
  // steps (saying so once) until LockWait::save_run_ms, never discarding the measurement.
  const auto start = std::chrono::steady_clock::now();
  BusyTimeoutGuard restore(db_, lock_wait_.busy_timeout_ms);
  for (bool noted = false;;) {
    Transaction tx(db_, WhenLocked::kGiveUp);
    if (tx.active()) {
      int64_t run_id = WriteRunRows(resource, model, blocks, run);
      tx.Commit();
      return run_id;
    }
    auto waited_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                         std::chrono::steady_clock::now() - start)
                         .count();
    int64_t remaining_ms = lock_wait_.save_run_ms - waited_ms;
    if (remaining_ms <= 0)
      throw BadInput("{}: the database stayed locked by another process for {:.0f} s", path(),
                     waited_ms / 1000.0);
    if (!noted && note_)
      note_(fmt::format(
          "{}: the database is locked by another process ({:.0f} s so far); waiting up to {:.0f} "
          "s more to store the run",
          path(), waited_ms / 1000.0, remaining_ms / 1000.0));
    noted = true;
    db_.set_busy_timeout_ms(
        static_cast<int>(std::min<int64_t>(remaining_ms, lock_wait_.busy_timeout_ms)));
  }
}

int64_t Store::WriteRunRows(const ResourceRecord& resource, const ModelRecord& model,
                            const std::vector<BlockRecord>& blocks, const RunRecord& run) {
  int64_t resource_id = UpsertResource(resource);
  int64_t model_id = UpsertModel(model);
  ReplaceBlocks(model_id, run.partition, blocks);
  auto s = db_.Prepare(
      "INSERT INTO runs(model_id, resource_id, kind, started_at, backend, runtime_version, "
      "execution_provider, threads, cpu_model, host, build_type, warmup, repeats, wall_ms, "
      "setup_ms, input_shapes, partition, input_bytes, inputs, chain_check, chain_max_abs_diff, "
      "chain_tolerance) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, "
      "?16, ?17, ?18, ?19, ?20, ?21, ?22)");
  s.Bind(1, model_id).Bind(2, resource_id).Bind(3, run.kind).Bind(4, run.started_at);
  s.Bind(5, run.backend).Bind(6, run.runtime_version).Bind(7, run.execution_provider);
  s.Bind(8, run.threads).Bind(9, run.cpu_model).Bind(10, run.host).Bind(11, run.build_type);
  s.Bind(12, run.warmup).Bind(13, run.repeats).Bind(14, run.wall_ms).Bind(15, run.setup_ms);
  s.Bind(16, run.input_shapes).Bind(17, run.partition).Bind(18, run.input_bytes);
  s.Bind(19, run.inputs).Bind(20, run.chain_check).Bind(21, run.chain_max_abs_diff);
  s.Bind(22, run.chain_tolerance);
  s.Run();
  int64_t run_id = db_.LastInsertId();
  if (mid_transaction_hook_) mid_transaction_hook_();
  auto m = db_.Prepare(
      "INSERT INTO measurements(run_id, block_idx, setup_ms, first_run_ms, n, median_ms, mean_ms, "
      "p90_ms, p95_ms, stddev_ms, min_ms, max_ms, output_bytes, samples_ms, output_shapes) "
      "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)");
  for (const auto& x : run.measurements) {
    m.Bind(1, run_id).Bind(2, x.block_index).Bind(3, x.setup_ms).Bind(4, x.first_run_ms);
    m.Bind(5, x.n).Bind(6, x.median_ms).Bind(7, x.mean_ms).Bind(8, x.p90_ms).Bind(9, x.p95_ms);
    m.Bind(10, x.stddev_ms).Bind(11, x.min_ms).Bind(12, x.max_ms).Bind(13, x.output_bytes);
    m.Bind(14, nlohmann::json(x.samples_ms).dump()).Bind(15, x.output_shapes);
    m.Run();
    m.Reset();
  }
  auto c = db_.Prepare(
      "INSERT INTO codec_measurements(run_id, boundary, codec, raw_bytes, bytes, encode_ms, "
      "decode_ms, max_abs_error, rel_l2_error, top1_agreement, fidelity_inputs) "
      "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)");
  for (const auto& x : run.codecs) {
    c.Bind(1, run_id).Bind(2, x.boundary).Bind(3, x.codec).Bind(4, x.raw_bytes).Bind(5, x.bytes);
    c.Bind(6, x.encode_ms).Bind(7, x.decode_ms).Bind(8, x.max_abs_error);
    c.Bind(9, x.rel_l2_error).Bind(10, x.top1_agreement).Bind(11, x.fidelity_inputs);
    c.Run();
    c.Reset();
  }
  return run_id;
}

std::string Store::KeepUnsavedRun(const RunDocument& document) {
  std::string json =
      RunDocumentToJson(document).dump(2, ' ', false, nlohmann::json::error_handler_t::replace);
  fs::path db(path());
  std::string name =
      fmt::format("{}.unsaved-run-{}-{}", db.filename().string(), CompactTimestamp(), ::getpid());
  std::error_code ec;
  std::vector<fs::path> dirs = {db.has_parent_path() ? db.parent_path() : fs::path(".")};
  if (auto tmp = fs::temp_directory_path(ec); !ec) dirs.push_back(tmp);
  std::string last_error;
  for (const auto& dir : dirs) {
    fs::path file = dir / (name + ".json");
    for (int i = 2; fs::exists(file, ec) && i < 100; ++i)
      file = dir / fmt::format("{}-{}.json", name, i);
    try {
      WriteFileAtomic(file.string(), json);
      return file.string();
    } catch (const Error& e) {
      last_error = e.what();
    }
  }
  throw BadInput("{}", last_error);
}

void Store::UpsertLink(const LinkRecord& link) { UpsertLinks({link}); }

void Store::UpsertLinks(const std::vector<LinkRecord>& links) {
  for (const auto& l : links) ValidateLink(l, "link");
  RequireWritable("store links");
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

std::vector<ProfileSummary> Store::Profiles(const std::string& model_key) {
  std::vector<ProfileSummary> out;
  auto s = db_.Prepare(
      "SELECT r.input_shapes, r.partition, MAX(r.id) FROM runs r JOIN models m ON m.id = "
      "r.model_id WHERE m.key = ?1 GROUP BY r.input_shapes, r.partition ORDER BY MAX(r.id) DESC");
  s.Bind(1, model_key);
  while (s.Step()) out.push_back({{s.Text(0), s.Text(1)}, {}, s.Int(2)});
  for (auto& p : out) {
    auto names = db_.Prepare(
        "SELECT DISTINCT res.name FROM runs r JOIN models m ON m.id = r.model_id "
        "JOIN resources res ON res.id = r.resource_id WHERE m.key = ?1 AND r.input_shapes = ?2 "
        "AND r.partition = ?3 ORDER BY res.name");
    names.Bind(1, model_key).Bind(2, p.key.input_shapes).Bind(3, p.key.partition);
    while (names.Step()) p.resources.push_back(names.Text(0));
  }
  return out;
}

std::vector<ProfileView> Store::LatestProfiles(const std::string& model_key) {
  auto profiles = Profiles(model_key);
  if (profiles.empty()) return {};
  return LatestProfiles(model_key, profiles.front().key);
}

std::vector<ProfileView> Store::LatestProfiles(const std::string& model_key,
                                               const ProfileKey& key) {
  std::vector<ProfileView> views;
  // Each resource's latest run at these input shapes, kept only when it used this partition.
  auto runs = db_.Prepare(
      "SELECT r.id, res.name, res.tier, m.key, m.name, "
      "CASE WHEN r.input_bytes >= 0 THEN r.input_bytes ELSE m.input_bytes END, m.id, "
      "r.partition FROM runs r "
      "JOIN resources res ON res.id = r.resource_id JOIN models m ON m.id = r.model_id "
      "WHERE m.key = ?1 AND r.input_shapes = ?2 AND r.id = (SELECT MAX(id) FROM runs r2 WHERE "
      "r2.model_id = r.model_id AND r2.resource_id = r.resource_id AND r2.input_shapes = ?2) "
      "ORDER BY res.tier, res.name");
  runs.Bind(1, model_key).Bind(2, key.input_shapes);
  int64_t model_id = -1;
  while (runs.Step()) {
    if (runs.Text(7) != key.partition) continue;
    ProfileView v;
    v.run_id = runs.Int(0);
    v.resource = runs.Text(1);
    v.tier = runs.Text(2);
    v.model_key = runs.Text(3);
    v.model_name = runs.Text(4);
    v.input_bytes = runs.Int(5);
    model_id = runs.Int(6);
    v.key = key;
    views.push_back(std::move(v));
  }
  if (views.empty()) return views;
  std::vector<BlockRecord> blocks;
  auto b = db_.Prepare(
      "SELECT idx, nodes, first_node, last_node, ops, output_name, output_shape, output_dtype, "
      "output_bytes, first_layer, last_layer, begin_pos, end_pos FROM blocks "
      "WHERE model_id = ?1 AND partition = ?2 ORDER BY idx");
  b.Bind(1, model_id).Bind(2, key.partition);
  while (b.Step()) {
    BlockRecord r{static_cast<int>(b.Int(0)),
                  static_cast<int>(b.Int(1)),
                  b.Text(2),
                  b.Text(3),
                  b.Text(4),
                  b.Text(5),
                  b.Text(6),
                  b.Text(7),
                  b.Int(8),
                  static_cast<int>(b.Int(9)),
                  static_cast<int>(b.Int(10))};
    r.begin_pos = static_cast<int>(b.Int(11));
    r.end_pos = static_cast<int>(b.Int(12));
    blocks.push_back(std::move(r));
  }
  for (auto& v : views) {
    v.blocks = blocks;
    auto m = db_.Prepare(
        "SELECT block_idx, setup_ms, first_run_ms, n, median_ms, mean_ms, p90_ms, p95_ms, "
        "stddev_ms, min_ms, max_ms, output_bytes, samples_ms, output_shapes FROM measurements "
        "WHERE run_id = ?1 ORDER BY block_idx");
    m.Bind(1, v.run_id);
    while (m.Step()) {
      auto record = ReadMeasurement(m, 0);
      record.output_shapes = m.Text(13);
      if (record.block_index < 0)
        v.whole = record;
      else
        v.block_measurements.push_back(std::move(record));
    }
    v.codecs = RunCodecs(v.run_id);
  }
  return views;
}

std::vector<CodecRecord> Store::RunCodecs(int64_t run_id) {
  std::vector<CodecRecord> codecs;
  auto c = db_.Prepare(
      "SELECT boundary, codec, raw_bytes, bytes, encode_ms, decode_ms, max_abs_error, "
      "rel_l2_error, top1_agreement, fidelity_inputs FROM codec_measurements WHERE run_id = ?1 "
      "ORDER BY boundary, rowid");
  c.Bind(1, run_id);
  while (c.Step())
    codecs.push_back({.boundary = static_cast<int>(c.Int(0)),
                      .codec = c.Text(1),
                      .raw_bytes = c.Int(2),
                      .bytes = c.Int(3),
                      .encode_ms = c.Double(4),
                      .decode_ms = c.Double(5),
                      .max_abs_error = c.Double(6),
                      .rel_l2_error = c.Double(7),
                      .top1_agreement = c.Double(8),
                      .fidelity_inputs = static_cast<int>(c.Int(9))});
  return codecs;
}

int64_t Store::CountRuns() {
  auto s = db_.Prepare("SELECT COUNT(*) FROM runs");
  s.Step();
  return s.Int(0);
}

}  // namespace scission::store
