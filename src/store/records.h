// Conversions from measured results (graph + profile layers) and imported Scission data into
// store records.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "graph/analysis.h"
#include "graph/model.h"
#include "profile/benchmark.h"
#include "store/scission_data.h"
#include "store/store.h"

namespace scission::store {

std::vector<BlockRecord> BlockRecordsFor(const graph::GraphAnalysis& analysis);
ModelRecord ModelRecordFor(const graph::LoadedModel& model, const graph::GraphAnalysis& analysis,
                           const std::string& name);
RunRecord RunRecordFor(const profile::ModelBenchmark& result,
                       const profile::BenchmarkOptions& options, const std::string& started_at);
MeasurementRecord MeasurementFor(int block_index, double setup_ms, const profile::Timing& timing,
                                 int64_t output_bytes, const std::string& output_shapes = "");

// A run document as JSON: {"resource": {name, tier}, "model": {...}, "blocks": [...],
// "run": {..., "measurements": [...]}} with the records' field names (a measurement's block index
// is "block"). Used for runs kept aside when the store is locked (`scission import-run`) and for
// benchmark results sent by workers.
nlohmann::json RunDocumentToJson(const RunDocument& document);
// The inverse; BadInput "<label>: <field path>: <what>" for a missing field, a wrong type, an
// integer out of range, a number that is not finite, or anything ValidateRun refuses. Without a
// "resource" object the resource stays empty (a worker's results name it in its handshake).
RunDocument RunDocumentFromJson(const nlohmann::json& doc, const std::string& label);

struct ImportSummary {
  int systems = 0;
  int models = 0;
  int runs = 0;
  int links = 0;
};
// Stores every (system, model) of the original tool's data as a run of kind "scission-import";
// the model key is "scission:<name>", input_bytes `input_bytes` (0.15 MB by default).
// Everything is parsed and validated before anything is written.
ImportSummary ImportScission(Store& store, const std::vector<ScissionSystem>& systems,
                             const std::vector<ScissionLink>& links, int64_t input_bytes = 150000);

}  // namespace scission::store
