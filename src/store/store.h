// Scission's SQLite store: resources, models (by SHA-256), blocks, benchmark runs with provenance,
// per-block measurements with raw samples, and links. Schema versioned by PRAGMA user_version with
// forward-only migrations; WAL journal. Every benchmark run is written in one transaction, so a
// process killed mid-write leaves earlier data intact.
// Units: milliseconds, bytes, Mbit/s.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "store/sqlite.h"

namespace scission::store {

inline constexpr int kSchemaVersion = 1;

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
};

struct MeasurementRecord {
  int block_index = -1;  // -1 = whole model
  double setup_ms = 0;
  double first_run_ms = 0;
  int64_t n = 0;
  double median_ms = 0, mean_ms = 0, p90_ms = 0, p95_ms = 0, stddev_ms = 0, min_ms = 0, max_ms = 0;
  int64_t output_bytes = 0;
  std::vector<double> samples_ms;
};

struct RunRecord {
  std::string kind = "benchmark";  // or "scission-import"
  std::string started_at;          // ISO 8601 UTC
  std::string backend, runtime_version, execution_provider, cpu_model, host, build_type;
  int threads = 0, warmup = 0, repeats = 0;
  double wall_ms = 0, setup_ms = 0;
  std::vector<MeasurementRecord> measurements;
};

struct LinkRecord {
  std::string source, destination;
  double rtt_ms = 0;
  double mbps = 0;
  std::string origin;  // "set", "csv", "probe"
  std::string updated_at;
};

// The latest measured profile of one model on one resource (what the planner consumes).
struct ProfileView {
  std::string resource, tier, model_key, model_name;
  int64_t run_id = 0;
  int64_t input_bytes = 0;
  std::vector<BlockRecord> blocks;
  std::vector<MeasurementRecord> block_measurements;  // by block index
  std::optional<MeasurementRecord> whole;
};

class Store {
 public:
  // Opens or creates the database and applies migrations. BadInput when the file is not a
  // Scission database or was written by a newer schema.
  explicit Store(const std::string& path);
  const std::string& path() const { return db_.path(); }
  int schema_version();

  // Saves a complete benchmark (resource, model, blocks, run, measurements) in one transaction.
  // Returns the run id.
  int64_t SaveRun(const ResourceRecord& resource, const ModelRecord& model,
                  const std::vector<BlockRecord>& blocks, const RunRecord& run);
  // Test hook: called inside SaveRun's transaction after the run row is written.
  void set_mid_transaction_hook(void (*hook)()) { mid_transaction_hook_ = hook; }

  void UpsertLink(const LinkRecord& link);
  void UpsertLinks(const std::vector<LinkRecord>& links);  // one transaction
  std::vector<LinkRecord> Links();
  std::optional<LinkRecord> FindLink(const std::string& source, const std::string& destination);

  std::vector<ResourceRecord> Resources();
  std::vector<ModelRecord> Models();
  std::optional<ModelRecord> FindModel(const std::string& key_or_name);
  // Latest run per resource for a model.
  std::vector<ProfileView> LatestProfiles(const std::string& model_key);

  int64_t CountRuns();
  Connection& connection() { return db_; }

 private:
  void Migrate();
  int64_t UpsertResource(const ResourceRecord& resource);
  int64_t UpsertModel(const ModelRecord& model);
  void ReplaceBlocks(int64_t model_id, const std::vector<BlockRecord>& blocks);

  Connection db_;
  void (*mid_transaction_hook_)() = nullptr;
};

std::string NowIso8601();

}  // namespace scission::store
