#include "store/records.h"

#include <cmath>
#include <filesystem>
#include <limits>
#include <set>

#include <fmt/format.h>

#include "common/error.h"
#include "profile/inputs.h"
#include "store/validate.h"

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
    for (const auto& o : b.outputs)
      r.output_dtype += (r.output_dtype.empty() ? "" : ",") + DTypeName(o.dtype);
    r.output_bytes = std::max<int64_t>(b.output_bytes(), 0);
    r.first_layer = b.index;
    r.last_layer = b.index;
    r.begin_pos = b.begin;
    r.end_pos = b.end;
    records.push_back(std::move(r));
  }
  return records;
}

ModelRecord ModelRecordFor(const graph::LoadedModel& model, const graph::GraphAnalysis& analysis,
                           const std::string& name) {
  ModelRecord r;
  r.key = model.sha256;
  // A name taken from a file stem is made valid here; a name the user gave is checked by the store.
  r.name =
      name.empty() ? NameFromFileStem(std::filesystem::path(model.label).stem().string()) : name;
  r.path = model.label;
  r.origin = "onnx";
  r.file_bytes = static_cast<int64_t>(model.file_bytes);
  for (const auto& in : analysis.inputs) r.input_bytes += std::max<int64_t>(in.bytes(), 0);
  return r;
}

MeasurementRecord MeasurementFor(int block_index, double setup_ms, const profile::Timing& timing,
                                 int64_t output_bytes, const std::string& output_shapes) {
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
  m.output_shapes = output_shapes;
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
  if (!options.inputs.empty()) {
    std::vector<TensorSpec> specs;
    run.input_bytes = 0;
    for (const auto& t : options.inputs) {
      specs.push_back(t.spec);
      run.input_bytes += static_cast<int64_t>(t.data.size());
    }
    run.input_shapes = profile::ShapeKey(specs);
  }
  // "passed" or "skipped" (--no-chain-check); a failed check is never stored.
  run.chain_check = profile::ChainCheckStatusName(result.chain.status);
  run.chain_max_abs_diff = std::isfinite(result.chain.max_abs_diff) ? result.chain.max_abs_diff : 0;
  run.chain_tolerance = result.chain.tolerance;
  run.measurements.push_back(
      MeasurementFor(-1, result.whole_setup_ms, result.whole, result.whole_output_bytes, ""));
  for (const auto& b : result.blocks)
    run.measurements.push_back(
        MeasurementFor(b.index, b.setup_ms, b.timing, b.output_bytes, b.output_shapes));
  for (const auto& c : result.codecs)
    run.codecs.push_back({.boundary = c.boundary,
                          .codec = c.codec,
                          .raw_bytes = c.raw_bytes,
                          .bytes = c.bytes,
                          .encode_ms = c.encode_ms,
                          .decode_ms = c.decode_ms,
                          .max_abs_error = c.max_abs_error,
                          .rel_l2_error = c.rel_l2_error,
                          .top1_agreement = c.top1_agreement,
                          .fidelity_inputs = c.fidelity_inputs});
  return run;
}

namespace {

constexpr int64_t kIntMax = std::numeric_limits<int>::max();

// Typed access to one JSON object's fields; every error names the label and the field's path.
class JsonFields {
 public:
  JsonFields(const nlohmann::json& object, const std::string& label, std::string path)
      : object_(object), label_(label), path_(std::move(path)) {
    if (!object_.is_object()) throw BadInput("{}: {}: must be an object", label_, path_);
  }
  const nlohmann::json& At(const char* key) const {
    auto it = object_.find(key);
    if (it == object_.end()) throw BadInput("{}: {}: missing", label_, Path(key));
    return *it;
  }
  bool Has(const char* key) const { return object_.contains(key); }
  std::string Path(const std::string& key) const { return path_.empty() ? key : path_ + "." + key; }
  std::string Text(const char* key) const {
    const auto& v = At(key);
    if (!v.is_string()) throw BadInput("{}: {}: must be a string", label_, Path(key));
    return v.get<std::string>();
  }
  int64_t Integer(const char* key, int64_t min, int64_t max) const {
    const auto& v = At(key);
    if (!v.is_number_integer()) throw BadInput("{}: {}: must be an integer", label_, Path(key));
    bool too_big = v.is_number_unsigned() &&
                   v.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
    int64_t value = too_big ? max : v.get<int64_t>();
    if (too_big || value < min || value > max)
      throw BadInput("{}: {}: {} is not within {}..{}", label_, Path(key), v.dump(), min, max);
    return value;
  }
  // Fields added after the first run documents were written: absent means the default.
  std::string TextOr(const char* key, const std::string& fallback) const {
    return Has(key) ? Text(key) : fallback;
  }
  int64_t IntegerOr(const char* key, int64_t min, int64_t max, int64_t fallback) const {
    return Has(key) ? Integer(key, min, max) : fallback;
  }
  double NumberOr(const char* key, double fallback) const {
    return Has(key) ? Number(key) : fallback;
  }
  int Int(const char* key, int64_t min) const {
    return static_cast<int>(Integer(key, min, kIntMax));
  }
  double Number(const char* key) const { return NumberValue(At(key), Path(key)); }
  double NumberValue(const nlohmann::json& v, const std::string& path) const {
    if (!v.is_number()) throw BadInput("{}: {}: must be a number", label_, path);
    double value = v.get<double>();
    if (!std::isfinite(value)) throw BadInput("{}: {}: must be finite", label_, path);
    return value;
  }
  const nlohmann::json& Array(const char* key, size_t max_size) const {
    const auto& v = At(key);
    if (!v.is_array()) throw BadInput("{}: {}: must be an array", label_, Path(key));
    if (v.size() > max_size)
      throw BadInput("{}: {}: {} items (at most {})", label_, Path(key), v.size(), max_size);
    return v;
  }

 private:
  const nlohmann::json& object_;
  const std::string& label_;
  std::string path_;
};

MeasurementRecord MeasurementFromJson(const JsonFields& x) {
  MeasurementRecord m;
  m.block_index = static_cast<int>(x.Integer("block", -1, static_cast<int64_t>(kMaxBlocks)));
  m.setup_ms = x.Number("setup_ms");
  m.first_run_ms = x.Number("first_run_ms");
  m.n = x.Integer("n", 0, static_cast<int64_t>(kMaxSamples));
  m.median_ms = x.Number("median_ms");
  m.mean_ms = x.Number("mean_ms");
  m.p90_ms = x.Number("p90_ms");
  m.p95_ms = x.Number("p95_ms");
  m.stddev_ms = x.Number("stddev_ms");
  m.min_ms = x.Number("min_ms");
  m.max_ms = x.Number("max_ms");
  m.output_bytes = x.Integer("output_bytes", 0, kMaxBytes);
  m.output_shapes = x.TextOr("output_shapes", "");
  const auto& samples = x.Array("samples_ms", kMaxSamples);
  m.samples_ms.reserve(samples.size());
  for (size_t i = 0; i < samples.size(); ++i)
    m.samples_ms.push_back(
        x.NumberValue(samples[i], fmt::format("{}[{}]", x.Path("samples_ms"), i)));
  return m;
}

}  // namespace

nlohmann::json RunDocumentToJson(const RunDocument& document) {
  const auto& model = document.model;
  const auto& run = document.run;
  nlohmann::json doc;
  doc["resource"] = {{"name", document.resource.name}, {"tier", document.resource.tier}};
  doc["model"] = {{"key", model.key},
                  {"name", model.name},
                  {"path", model.path},
                  {"origin", model.origin},
                  {"file_bytes", model.file_bytes},
                  {"input_bytes", model.input_bytes}};
  doc["blocks"] = nlohmann::json::array();
  for (const auto& b : document.blocks)
    doc["blocks"].push_back({{"index", b.index},
                             {"nodes", b.nodes},
                             {"first_node", b.first_node},
                             {"last_node", b.last_node},
                             {"ops", b.ops},
                             {"output_name", b.output_name},
                             {"output_shape", b.output_shape},
                             {"output_dtype", b.output_dtype},
                             {"output_bytes", b.output_bytes},
                             {"first_layer", b.first_layer},
                             {"last_layer", b.last_layer},
                             {"begin_pos", b.begin_pos},
                             {"end_pos", b.end_pos}});
  nlohmann::json measurements = nlohmann::json::array();
  for (const auto& m : run.measurements)
    measurements.push_back({{"block", m.block_index},
                            {"setup_ms", m.setup_ms},
                            {"first_run_ms", m.first_run_ms},
                            {"n", m.n},
                            {"median_ms", m.median_ms},
                            {"mean_ms", m.mean_ms},
                            {"p90_ms", m.p90_ms},
                            {"p95_ms", m.p95_ms},
                            {"stddev_ms", m.stddev_ms},
                            {"min_ms", m.min_ms},
                            {"max_ms", m.max_ms},
                            {"output_bytes", m.output_bytes},
                            {"output_shapes", m.output_shapes},
                            {"samples_ms", m.samples_ms}});
  doc["run"] = {{"kind", run.kind},
                {"started_at", run.started_at},
                {"backend", run.backend},
                {"runtime_version", run.runtime_version},
                {"execution_provider", run.execution_provider},
                {"cpu_model", run.cpu_model},
                {"host", run.host},
                {"build_type", run.build_type},
                {"threads", run.threads},
                {"warmup", run.warmup},
                {"repeats", run.repeats},
                {"wall_ms", run.wall_ms},
                {"setup_ms", run.setup_ms},
                {"input_shapes", run.input_shapes},
                {"partition", run.partition},
                {"input_bytes", run.input_bytes},
                {"inputs", run.inputs},
                {"chain_check", run.chain_check},
                {"chain_max_abs_diff", run.chain_max_abs_diff},
                {"chain_tolerance", run.chain_tolerance},
                {"measurements", measurements}};
  if (!run.codecs.empty()) {
    nlohmann::json codecs = nlohmann::json::array();
    for (const auto& c : run.codecs)
      codecs.push_back({{"boundary", c.boundary},
                        {"codec", c.codec},
                        {"raw_bytes", c.raw_bytes},
                        {"bytes", c.bytes},
                        {"encode_ms", c.encode_ms},
                        {"decode_ms", c.decode_ms},
                        {"max_abs_error", c.max_abs_error},
                        {"rel_l2_error", c.rel_l2_error},
                        {"top1_agreement", c.top1_agreement},
                        {"fidelity_inputs", c.fidelity_inputs}});
    doc["run"]["codecs"] = std::move(codecs);
  }
  return doc;
}

RunDocument RunDocumentFromJson(const nlohmann::json& doc, const std::string& label) {
  RunDocument out;
  JsonFields top(doc, label, "");
  if (top.Has("resource")) {
    JsonFields r(top.At("resource"), label, "resource");
    out.resource = {r.Text("name"), r.Text("tier")};
    ValidateName(out.resource.name, label + ": resource.name");
    ValidateName(out.resource.tier, label + ": resource.tier");
  }
  JsonFields m(top.At("model"), label, "model");
  out.model = {m.Text("key"),
               m.Text("name"),
               m.Text("path"),
               m.Text("origin"),
               m.Integer("file_bytes", 0, kMaxBytes),
               m.Integer("input_bytes", 0, kMaxBytes)};
  const auto& blocks = top.Array("blocks", kMaxBlocks);
  for (size_t i = 0; i < blocks.size(); ++i) {
    JsonFields b(blocks[i], label, fmt::format("blocks[{}]", i));
    out.blocks.push_back({b.Int("index", 0), b.Int("nodes", 0), b.Text("first_node"),
                          b.Text("last_node"), b.Text("ops"), b.Text("output_name"),
                          b.Text("output_shape"), b.Text("output_dtype"),
                          b.Integer("output_bytes", 0, kMaxBytes), b.Int("first_layer", -1),
                          b.Int("last_layer", -1)});
    out.blocks.back().begin_pos = static_cast<int>(b.IntegerOr("begin_pos", -1, kIntMax, -1));
    out.blocks.back().end_pos = static_cast<int>(b.IntegerOr("end_pos", -1, kIntMax, -1));
  }
  JsonFields r(top.At("run"), label, "run");
  RunRecord& run = out.run;
  run.kind = r.Text("kind");
  run.started_at = r.Text("started_at");
  run.backend = r.Text("backend");
  run.runtime_version = r.Text("runtime_version");
  run.execution_provider = r.Text("execution_provider");
  run.cpu_model = r.Text("cpu_model");
  run.host = r.Text("host");
  run.build_type = r.Text("build_type");
  run.threads = r.Int("threads", 0);
  run.warmup = r.Int("warmup", 0);
  run.repeats = r.Int("repeats", 0);
  run.wall_ms = r.Number("wall_ms");
  run.setup_ms = r.Number("setup_ms");
  run.input_shapes = r.TextOr("input_shapes", "");
  run.partition = r.TextOr("partition", "");
  run.input_bytes = r.IntegerOr("input_bytes", -1, kMaxBytes, -1);
  run.inputs = r.TextOr("inputs", "");
  run.chain_check = r.TextOr("chain_check", "");
  run.chain_max_abs_diff = r.NumberOr("chain_max_abs_diff", 0);
  run.chain_tolerance = r.NumberOr("chain_tolerance", 0);
  const auto& measurements = r.Array("measurements", kMaxBlocks + 1);
  for (size_t i = 0; i < measurements.size(); ++i)
    run.measurements.push_back(MeasurementFromJson(
        JsonFields(measurements[i], label, fmt::format("run.measurements[{}]", i))));
  if (r.Has("codecs")) {
    const auto& codecs = r.Array("codecs", kMaxCodecRecords);
    for (size_t i = 0; i < codecs.size(); ++i) {
      JsonFields c(codecs[i], label, fmt::format("run.codecs[{}]", i));
      run.codecs.push_back({.boundary = c.Int("boundary", 0),
                            .codec = c.Text("codec"),
                            .raw_bytes = c.Integer("raw_bytes", 0, kMaxBytes),
                            .bytes = c.Integer("bytes", 0, kMaxBytes),
                            .encode_ms = c.Number("encode_ms"),
                            .decode_ms = c.Number("decode_ms"),
                            .max_abs_error = c.Number("max_abs_error"),
                            .rel_l2_error = c.Number("rel_l2_error"),
                            .top1_agreement = c.Number("top1_agreement"),
                            .fidelity_inputs = c.Int("fidelity_inputs", 0)});
    }
  }
  ValidateRunRecords(out.model, out.blocks, out.run, label);
  return out;
}

ImportSummary ImportScission(Store& store, const std::vector<ScissionSystem>& systems,
                             const std::vector<ScissionLink>& links, int64_t input_bytes) {
  ImportSummary summary;
  std::string now = NowIso8601();
  std::vector<RunDocument> documents;
  for (const auto& system : systems) {
    ++summary.systems;
    for (const auto& [model_name, blocks] : system.models) {
      RunDocument doc;
      doc.resource = {system.name, system.tier};
      doc.model = {"scission:" + model_name, model_name, system.path, "scission", 0, input_bytes};
      RunRecord& run = doc.run;
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
        doc.blocks.push_back(r);
        MeasurementRecord m;
        m.block_index = static_cast<int>(i);
        m.median_ms = m.mean_ms = m.p90_ms = m.p95_ms = m.min_ms = m.max_ms = b.seconds * 1000.0;
        m.output_bytes = b.output_size;
        total_ms += m.median_ms;
        run.measurements.push_back(m);
      }
      run.wall_ms = total_ms;
      ValidateRun(doc.resource, doc.model, doc.blocks, doc.run,
                  fmt::format("{}: model '{}'", system.path, PrintableText(model_name)));
      documents.push_back(std::move(doc));
    }
  }
  std::vector<LinkRecord> records;
  for (const auto& l : links) {
    records.push_back({l.source, l.destination, l.ping_ms, l.mbps, "csv", now});
    ValidateLink(records.back(), fmt::format("link {} -> {}", PrintableText(l.source),
                                             PrintableText(l.destination)));
  }
  for (const auto& doc : documents) {
    store.SaveRun(doc);
    ++summary.runs;
  }
  if (!records.empty()) store.UpsertLinks(records);
  summary.links = static_cast<int>(records.size());
  std::set<std::string> names;
  for (const auto& s : systems)
    for (const auto& [name, blocks] : s.models) names.insert(name);
  summary.models = static_cast<int>(names.size());
  return summary;
}

}  // namespace scission::store
