// Scission's SQLite store: resources, models (by SHA-256), blocks, benchmark runs with provenance,
// per-block measurements with raw samples, and links. Schema versioned by PRAGMA user_version with
// forward-only migrations; PRAGMA application_id marks the file as Scission's; WAL journal. Every
// benchmark run is written in one transaction, so a process killed mid-write leaves earlier data
// intact. Every record is validated (store/validate.h) before it is written.
// Units: milliseconds, bytes, Mbit/s.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "store/sqlite.h"

namespace scission::store {

inline constexpr int kSchemaVersion = 3;
// The SQL that brings a database from schema `from` to `from + 1` (tests build old databases).
const char* MigrationSql(int from);
// PRAGMA application_id of a Scission database: "Scis" in ASCII.
inline constexpr int32_t kApplicationId = 0x53636973;

struct ResourceRecord {
  std::string name;
  std::string tier;
};

struct ModelRecord {
  std::string key;     // SHA-256 of the ONNX file, or "scission:<name>" for imported data
  std::string name;    // file stem or zoo/imported name
  std::string path;    // where it was read from (informational)
  std::string origin;  // "onnx" or "scission"
  int64_t file_bytes = 0;
  int64_t input_bytes = 0;  // bytes of the model input (what leaves a tier that runs nothing)
};

struct BlockRecord {
  int index = 0;
  int nodes = 0;
  std::string first_node, last_node;
  std::string ops;  // "Conv:3,Relu:2"
  std::string output_name;
  std::string output_shape;  // "[1,64,56,56]"
  std::string output_dtype;
  int64_t output_bytes = 0;
  int first_layer = -1;  // Scission layer numbers for imported data; else block index
  int last_layer = -1;
  // Positions [begin_pos, end_pos) of the block in the model's activation order (the partition a
  // coordinator sends to workers); -1 for imported data and schema-1 rows.
  int begin_pos = -1, end_pos = -1;
};

struct MeasurementRecord {
  int block_index = -1;  // -1 = whole model
  double setup_ms = 0;
  double first_run_ms = 0;
  int64_t n = 0;
  double median_ms = 0, mean_ms = 0, p90_ms = 0, p95_ms = 0, stddev_ms = 0, min_ms = 0, max_ms = 0;
  int64_t output_bytes = 0;
  std::string output_shapes;  // this run's boundary tensor shapes: "[1,64,56,56];[1,32,8,8]"
  std::vector<double> samples_ms;
};

// What one codec did at one block boundary in a run (profile/codecs.h, DESIGN.md "Codecs").
struct CodecRecord {
  int boundary = 0;  // 0 = the model inputs, b = the outputs of block b - 1, blocks = final outputs
  std::string codec;
  int64_t raw_bytes = 0, bytes = 0;
  double encode_ms = 0, decode_ms = 0;
  double max_abs_error = -1, rel_l2_error = -1, top1_agreement = -1;  // -1 = not measured
  int fidelity_inputs = 0;
};

struct RunRecord {
  std::string kind = "benchmark";  // or "scission-import"
  std::string started_at;          // ISO 8601 UTC
  std::string backend, runtime_version, execution_provider, cpu_model, host, build_type;
  int threads = 0, warmup = 0, repeats = 0;
  double wall_ms = 0, setup_ms = 0;
  // The profile this run belongs to: the input shapes it ran at (profile::ShapeKey, "" for data
  // imported or stored by schema 1) and the partition its blocks come from (a fingerprint).
  std::string input_shapes, partition;
  int64_t input_bytes = -1;  // bytes of the inputs it ran with; -1 = the model's input_bytes
  std::string inputs;        // what the inputs held ("x: float32 [1,3,224,224] uniform ...")
  std::string chain_check;   // "passed", "skipped" (--no-chain-check), or "" (not recorded)
  double chain_max_abs_diff = 0, chain_tolerance = 0;
  std::vector<MeasurementRecord> measurements;
  std::vector<CodecRecord> codecs;  // by boundary, then codec; empty: none measured
};

struct LinkRecord {
  std::string source, destination;
  double rtt_ms = 0;
  double mbps = 0;
  std::string origin;  // "set", "csv", "probe"
  std::string updated_at;
};

// One benchmark run with everything needed to store it later (`scission import-run`).
struct RunDocument {
  ResourceRecord resource;
  ModelRecord model;
  std::vector<BlockRecord> blocks;
  RunRecord run;
};

// Which profile of a model: its input shapes and partition (see RunRecord).
struct ProfileKey {
  std::string input_shapes, partition;
  bool operator==(const ProfileKey&) const = default;
};

// One profile of a model and the resources with a run in it, newest run first.
struct ProfileSummary {
  ProfileKey key;
  std::vector<std::string> resources;
  int64_t newest_run = 0;
};

// The latest measured profile of one model on one resource (what the planner consumes).
struct ProfileView {
  std::string resource, tier, model_key, model_name;
  int64_t run_id = 0;
  int64_t input_bytes = 0;
  ProfileKey key;
  std::vector<BlockRecord> blocks;
  std::vector<MeasurementRecord> block_measurements;  // by block index
  std::optional<MeasurementRecord> whole;
  std::vector<CodecRecord> codecs;  // the run's, by boundary then codec
};

enum class OpenMode {
  // Reading verbs: read-write when the file and its directory are writable (so migrations can
  // run), else read-only; the write methods then fail with a clear BadInput.
  kRead,
  // Writing verbs: BadInput at once when the database cannot be written.
  kWrite,
};

// How long writes wait for another process's lock.
struct LockWait {
  int busy_timeout_ms = 10'000;  // any statement
  int save_run_ms = 120'000;     // SaveRun in total, before keeping the run aside
};

class Store {
 public:
  // Opens or creates the database and applies migrations. BadInput when the file is not a
  // Scission database (nothing in it is changed then), has a schema version this Scission cannot
  // read, or cannot be opened as `mode` needs.
  explicit Store(const std::string& path, OpenMode mode = OpenMode::kRead);
  const std::string& path() const { return db_.path(); }
  bool read_only() const { return db_.read_only(); }
  int schema_version();

  // Notes for the user (e.g. "waiting for a lock"); the store never prints.
  void set_note_callback(std::function<void(const std::string&)> note) { note_ = std::move(note); }
  void set_lock_wait(const LockWait& wait);
  // When SaveRun cannot store a validated run (locked past LockWait::save_run_ms, read-only, disk
  // full), it writes the run as JSON next to the database (else in the temporary directory) and
  // names that file in its error, so a finished measurement is never lost. `import-run` turns this
  // off: its run is already in a file.
  void set_keep_unsaved_runs(bool keep) { keep_unsaved_runs_ = keep; }

  // Saves a complete benchmark (resource, model, blocks, run, measurements) in one transaction.
  // Returns the run id. BadInput for records that break the rules of store/validate.h.
  int64_t SaveRun(const ResourceRecord& resource, const ModelRecord& model,
                  const std::vector<BlockRecord>& blocks, const RunRecord& run);
  int64_t SaveRun(const RunDocument& document) {
    return SaveRun(document.resource, document.model, document.blocks, document.run);
  }
  // Test hook: called inside SaveRun's transaction after the run row is written.
  void set_mid_transaction_hook(void (*hook)()) { mid_transaction_hook_ = hook; }

  // Every link is validated (ValidateLink) before any is written.
  void UpsertLink(const LinkRecord& link);
  void UpsertLinks(const std::vector<LinkRecord>& links);  // one transaction
  std::vector<LinkRecord> Links();
  std::optional<LinkRecord> FindLink(const std::string& source, const std::string& destination);

  std::vector<ResourceRecord> Resources();
  std::vector<ModelRecord> Models();
  std::optional<ModelRecord> FindModel(const std::string& key_or_name);
  // Latest run per resource for a model.
  std::vector<ProfileView> LatestProfiles(const std::string& model_key);
  // The latest run of each resource within one profile; a resource whose latest run at these
  // input shapes used another partition is left out.
  std::vector<ProfileView> LatestProfiles(const std::string& model_key, const ProfileKey& key);
  // Every profile with runs, newest first.
  std::vector<ProfileSummary> Profiles(const std::string& model_key);

  // The codec measurements of one run, by boundary then codec in measured order.
  std::vector<CodecRecord> RunCodecs(int64_t run_id);

  int64_t CountRuns();
  Connection& connection() { return db_; }

 private:
  void CheckIdentity();
  void Migrate();
  void RequireWritable(const char* what);
  int64_t WriteRun(const ResourceRecord& resource, const ModelRecord& model,
                   const std::vector<BlockRecord>& blocks, const RunRecord& run);
  int64_t WriteRunRows(const ResourceRecord& resource, const ModelRecord& model,
                       const std::vector<BlockRecord>& blocks, const RunRecord& run);
  std::string KeepUnsavedRun(const RunDocument& document);
  int64_t UpsertResource(const ResourceRecord& resource);
  int64_t UpsertModel(const ModelRecord& model);
  void ReplaceBlocks(int64_t model_id, const std::string& partition,
                     const std::vector<BlockRecord>& blocks);

  Connection db_;
  LockWait lock_wait_;
  std::function<void(const std::string&)> note_;
  bool keep_unsaved_runs_ = true;
  void (*mid_transaction_hook_)() = nullptr;
};

std::string NowIso8601();

}  // namespace scission::store
