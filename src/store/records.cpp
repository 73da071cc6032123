#include "store/records.h"

#include <filesystem>
#include <set>

#include <fmt/format.h>

namespace scission::store {

std::vector<BlockRecord> BlockRecordsFor(const graph::GraphAnalysis& analysis) {
  std::vector<BlockRecord> records;
  for (const auto& b : analysis.blocks) {
    BlockRecord r;
    r.index = b.index;
    r.nodes = static_cast<int>(b.nodes.size());
    r.first_node = b.first_node;
    r.last_node = b.last_node;
    for (const auto& [op, count] : b.ops)
      r.ops += fmt::format("{}{}:{}", r.ops.empty() ? "" : ",", op, count);
    for (const auto& o : b.outputs) {
      r.output_name += (r.output_name.empty() ? "" : ",") + o.name;
      r.output_shape += (r.output_shape.empty() ? "" : ",") + ShapeString(o.shape);
    }
    r.output_dtype = DTypeName(b.outputs.front().dtype);
    r.output_bytes = b.output_bytes();
    r.first_layer = b.index;
    r.last_layer = b.index;
    records.push_back(std::move(r));
  }
  return records;
}

ModelRecord ModelRecordFor(const graph::LoadedModel& model, const graph::GraphAnalysis& analysis,
                           const std::string& name) {
  ModelRecord r;
  r.key = model.sha256;
  r.name = name.empty() ? std::filesystem::path(model.label).stem().string() : name;
  r.path = model.label;
  r.origin = "onnx";
  r.file_bytes = static_cast<int64_t>(model.file_bytes);
  for (const auto& in : analysis.inputs) r.input_bytes += std::max<int64_t>(in.bytes(), 0);
  return r;
}

MeasurementRecord MeasurementFor(int block_index, double setup_ms, const profile::Timing& timing,
                                 int64_t output_bytes) {
  MeasurementRecord m;
  m.block_index = block_index;
  m.setup_ms = setup_ms;
  m.first_run_ms = timing.first_run_ms;
  m.n = static_cast<int64_t>(timing.stats.n);
  m.median_ms = timing.stats.median;
  m.mean_ms = timing.stats.mean;
  m.p90_ms = timing.stats.p90;
  m.p95_ms = timing.stats.p95;
  m.stddev_ms = timing.stats.stddev;
  m.min_ms = timing.stats.min;
  m.max_ms = timing.stats.max;
  m.output_bytes = output_bytes;
  m.samples_ms = timing.samples_ms;
  return m;
}

RunRecord RunRecordFor(const profile::ModelBenchmark& result,
                       const profile::BenchmarkOptions& options, const std::string& started_at) {
  RunRecord run;
  run.kind = "benchmark";
  run.started_at = started_at;
  const auto& p = result.provenance;
  run.backend = p.backend;
  run.runtime_version = p.runtime_version;
  run.execution_provider = p.execution_provider;
  run.cpu_model = p.cpu_model;
  run.host = p.host;
  run.build_type = p.build_type;
  run.threads = p.threads;
  run.warmup = options.harness.warmup_runs;
  run.repeats = options.harness.min_runs;
  run.wall_ms = result.wall_ms;
  run.setup_ms = result.setup_ms;
  run.measurements.push_back(
      MeasurementFor(-1, result.whole_setup_ms, result.whole, result.whole_output_bytes));
  for (const auto& b : result.blocks)
    run.measurements.push_back(MeasurementFor(b.index, b.setup_ms, b.timing, b.output_bytes));
  return run;
}

ImportSummary ImportScission(Store& store, const std::vector<ScissionSystem>& systems,
                             const std::vector<ScissionLink>& links, int64_t input_bytes) {
  ImportSummary summary;
  std::string now = NowIso8601();
  for (const auto& system : systems) {
    ++summary.systems;
    for (const auto& [model_name, blocks] : system.models) {
      ModelRecord model{
          "scission:" + model_name, model_name, system.path, "scission", 0, input_bytes};
      std::vector<BlockRecord> block_records;
      RunRecord run;
      run.kind = "scission-import";
      run.started_at = now;
      run.backend = "scission-keras";
      run.host = system.name;
      double total_ms = 0;
      for (size_t i = 0; i < blocks.size(); ++i) {
        const auto& b = blocks[i];
        BlockRecord r;
        r.index = static_cast<int>(i);
        r.first_layer = b.input_layer;
        r.last_layer = b.output_layer;
        r.first_node = fmt::format("layer {}", b.input_layer);
        r.last_node = fmt::format("layer {}", b.output_layer);
        r.output_bytes = b.output_size;
        r.output_dtype = "float32";
        block_records.push_back(r);
        MeasurementRecord m;
        m.block_index = static_cast<int>(i);
        m.median_ms = m.mean_ms = m.p90_ms = m.p95_ms = m.min_ms = m.max_ms = b.seconds * 1000.0;
        m.output_bytes = b.output_size;
        total_ms += m.median_ms;
        run.measurements.push_back(m);
      }
      run.wall_ms = total_ms;
      store.SaveRun({system.name, system.tier}, model, block_records, run);
      ++summary.runs;
    }
  }
  std::vector<LinkRecord> records;
  for (const auto& l : links)
    records.push_back({l.source, l.destination, l.ping_ms, l.mbps, "csv", now});
  if (!records.empty()) store.UpsertLinks(records);
  summary.links = static_cast<int>(records.size());
  std::set<std::string> names;
  for (const auto& s : systems)
    for (const auto& [name, blocks] : s.models) names.insert(name);
  summary.models = static_cast<int>(names.size());
  return summary;
}

}  // namespace scission::store
