#include "plan/document.h"

#include <algorithm>
#include <cmath>
#include <type_traits>

#include <fmt/format.h>

#include "common/error.h"
#include "common/text.h"

namespace scission::plan {

namespace {

using Json = nlohmann::json;

const Json& Field(const Json& doc, const char* name, const std::string& what) {
  if (!doc.is_object() || !doc.contains(name)) throw BadInput("{}: missing field '{}'", what, name);
  return doc.at(name);
}

std::string Text(const Json& doc, const char* name, const std::string& what) {
  const Json& v = Field(doc, name, what);
  if (!v.is_string()) throw BadInput("{}: '{}' must be a string", what, name);
  return v.get<std::string>();
}

double Number(const Json& doc, const char* name, const std::string& what) {
  const Json& v = Field(doc, name, what);
  if (!v.is_number() || !std::isfinite(v.get<double>()) || v.get<double>() < 0)
    throw BadInput("{}: '{}' must be a finite non-negative number", what, name);
  return v.get<double>();
}

int64_t Integer(const Json& doc, const char* name, const std::string& what, int64_t min,
                int64_t max) {
  const Json& v = Field(doc, name, what);
  if (!v.is_number_integer()) throw BadInput("{}: '{}' must be an integer", what, name);
  int64_t x = v.get<int64_t>();
  if (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)) x = -1;
  if (x < min || x > max) throw BadInput("{}: '{}' must be {}..{}", what, name, min, max);
  return x;
}

bool Flag(const Json& doc, const char* name, const std::string& what) {
  const Json& v = Field(doc, name, what);
  if (!v.is_boolean()) throw BadInput("{}: '{}' must be true or false", what, name);
  return v.get<bool>();
}

std::vector<std::string> Texts(const Json& doc, const char* name, const std::string& what) {
  const Json& v = Field(doc, name, what);
  if (!v.is_array()) throw BadInput("{}: '{}' must be an array of strings", what, name);
  std::vector<std::string> out;
  for (const auto& x : v) {
    if (!x.is_string()) throw BadInput("{}: '{}' must be an array of strings", what, name);
    out.push_back(x.get<std::string>());
  }
  return out;
}

// [[key, value], ...] with string keys.
template <typename Value>
std::vector<std::pair<std::string, Value>> Pairs(const Json& doc, const char* name,
                                                 const std::string& what) {
  const Json& v = Field(doc, name, what);
  if (!v.is_array()) throw BadInput("{}: '{}' must be an array of [name, value] pairs", what, name);
  std::vector<std::pair<std::string, Value>> out;
  for (const auto& pair : v) {
    bool ok = pair.is_array() && pair.size() == 2 && pair[0].is_string();
    if constexpr (std::is_same_v<Value, std::string>)
      ok = ok && pair[1].is_string();
    else
      ok = ok && pair[1].is_number() && std::isfinite(pair[1].get<double>());
    if (!ok) throw BadInput("{}: '{}' must be an array of [name, value] pairs", what, name);
    out.emplace_back(pair[0].get<std::string>(), pair[1].get<Value>());
  }
  return out;
}

// A hop; its codec fields are optional (documents written before codecs have none of them).
PlannedHop PlannedHopFromJson(const Json& h, const std::string& w) {
  PlannedHop hop;
  hop.from = Text(h, "from", w);
  hop.to = Text(h, "to", w);
  hop.bytes = Integer(h, "bytes", w, 0, INT64_MAX);
  hop.ms = Number(h, "ms", w);
  hop.raw_bytes = hop.bytes;
  if (h.contains("codec")) hop.codec = Text(h, "codec", w);
  if (hop.codec.empty()) throw BadInput("{}: hop {} -> {}: empty 'codec'", w, hop.from, hop.to);
  if (h.contains("raw_bytes")) hop.raw_bytes = Integer(h, "raw_bytes", w, 0, INT64_MAX);
  if (hop.codec == "none" && hop.raw_bytes != hop.bytes)
    throw BadInput("{}: hop {} -> {} without a codec moves {} bytes of {}", w, hop.from, hop.to,
                   hop.bytes, hop.raw_bytes);
  for (auto [name, field] :
       {std::pair{"encode_ms", &hop.encode_ms}, std::pair{"decode_ms", &hop.decode_ms},
        std::pair{"output_error", &hop.output_error}})
    if (h.contains(name)) *field = Number(h, name, w);
  return hop;
}

}  // namespace

std::string LayoutText(const PlannedRun& run) {
  std::string out;
  for (const auto& s : run.stages) {
    if (!out.empty()) out += " | ";
    out += s.last_block < s.first_block
               ? s.resource + " (input only)"
               : fmt::format("{} {}-{}", s.resource, s.first_block, s.last_block);
  }
  return out;
}

std::string HopText(const PlannedHop& h) {
  if (h.codec == "none") return fmt::format("{}->{} {:.2f} ms", h.from, h.to, h.ms);
  return fmt::format("{}->{} {} ({}, raw {}) {:.2f} ms", h.from, h.to, FormatBytes(h.bytes),
                     h.codec, FormatBytes(h.raw_bytes), h.ms);
}

std::string PlanKey(const PlannedRun& run) {
  const bool coded = std::any_of(run.hops.begin(), run.hops.end(),
                                 [](const PlannedHop& h) { return h.codec != "none"; });
  if (!coded) return LayoutText(run);
  std::string codecs;
  for (const auto& h : run.hops) codecs += (codecs.empty() ? "" : ",") + h.codec;
  return LayoutText(run) + " [" + codecs + "]";
}

PlannedRun ToPlannedRun(const PlanProblem& p, const PlanCandidate& c, int rank) {
  PlannedRun run;
  run.rank = rank;
  run.latency_ms = c.latency_ms;
  run.compute_ms = c.compute_ms;
  run.transfer_ms = c.transfer_ms;
  run.bottleneck_ms = c.bottleneck_ms;
  run.uplink_bytes = c.uplink_bytes;
  run.output_error = c.output_error;
  for (const auto& s : c.stages) {
    const auto& r = p.resources[static_cast<size_t>(s.resource)];
    run.stages.push_back(
        {p.tiers[static_cast<size_t>(r.tier)], r.name, s.first_block, s.last_block, s.compute_ms});
  }
  for (const auto& h : c.hops)
    run.hops.push_back({p.resources[static_cast<size_t>(h.from)].name,
                        p.resources[static_cast<size_t>(h.to)].name, h.bytes, h.ms, h.codec,
                        h.raw_bytes, h.encode_ms, h.decode_ms, h.output_error});
  return run;
}

nlohmann::ordered_json ToJson(const PlannedRun& c) {
  nlohmann::ordered_json stages = nlohmann::ordered_json::array();
  for (const auto& s : c.stages)
    stages.push_back({{"tier", s.tier},
                      {"resource", s.resource},
                      {"first_block", s.first_block},
                      {"last_block", s.last_block},
                      {"compute_ms", s.compute_ms}});
  nlohmann::ordered_json hops = nlohmann::ordered_json::array();
  for (const auto& h : c.hops)
    hops.push_back({{"from", h.from},
                    {"to", h.to},
                    {"bytes", h.bytes},
                    {"ms", h.ms},
                    {"codec", h.codec},
                    {"raw_bytes", h.raw_bytes},
                    {"encode_ms", h.encode_ms},
                    {"decode_ms", h.decode_ms},
                    {"output_error", h.output_error}});
  return {{"rank", c.rank},
          {"latency_ms", c.latency_ms},
          {"compute_ms", c.compute_ms},
          {"transfer_ms", c.transfer_ms},
          {"bottleneck_ms", c.bottleneck_ms},
          {"throughput_per_s", c.bottleneck_ms > 0 ? 1000.0 / c.bottleneck_ms : 0.0},
          {"uplink_bytes", c.uplink_bytes},
          {"output_error", c.output_error},
          {"stages", stages},
          {"hops", hops}};
}

nlohmann::ordered_json ToJson(const PlanRequest& r) {
  auto pairs = [](const auto& items) {
    nlohmann::ordered_json out = nlohmann::ordered_json::array();
    for (const auto& [k, v] : items) out.push_back({k, v});
    return out;
  };
  nlohmann::ordered_json shapes = nlohmann::ordered_json::array();
  for (const auto& [name, dims] : r.shapes) shapes.push_back({name, dims});
  return {{"model_key", r.model_key},
          {"shapes", shapes},
          {"tiers", r.tiers},
          {"where", pairs(r.where)},
          {"privacy_blocks", r.privacy_blocks},
          {"max_upload_mb", pairs(r.max_upload_mb)},
          {"max_time", pairs(r.max_time)},
          {"max_memory_mb", pairs(r.max_memory_mb)},
          {"return_result", r.return_result},
          {"statistic", r.statistic},
          {"objective", ObjectiveName(r.objective)},
          {"top_k", r.top_k},
          {"codecs", r.codecs},
          {"max_output_error", r.max_output_error ? nlohmann::ordered_json(*r.max_output_error)
                                                  : nlohmann::ordered_json()}};
}

nlohmann::ordered_json ToJson(const PlanDocument& d) {
  nlohmann::ordered_json doc;
  doc["model"] = {{"key", d.model.key},
                  {"name", d.model.name},
                  {"path", d.model.path},
                  {"origin", d.model.origin}};
  doc["request"] = ToJson(d.request);
  doc["profile"] = {{"input_shapes", d.profile.input_shapes}, {"partition", d.profile.partition}};
  doc["tiers"] = d.tiers;
  doc["objective"] = d.objective;
  doc["statistic"] = d.request.statistic;
  doc["blocks"] = d.blocks;
  doc["input_bytes"] = d.input_bytes;
  doc["output_bytes"] = d.output_bytes;
  doc["plans"] = nlohmann::ordered_json::array();
  for (const auto& p : d.plans) doc["plans"].push_back(ToJson(p));
  doc["notes"] = d.notes;
  return doc;
}

PlanRequest PlanRequestFromJson(const Json& doc, const std::string& what) {
  const std::string w = what + ": request";
  PlanRequest r;
  r.model_key = Text(doc, "model_key", w);
  if (doc.contains("shapes")) {
    const Json& shapes = doc.at("shapes");
    if (!shapes.is_array()) throw BadInput("{}: 'shapes' must be an array", w);
    for (const auto& item : shapes) {
      bool ok = item.is_array() && item.size() == 2 && item[0].is_string() && item[1].is_array() &&
                item[1].size() <= 16;
      std::vector<int64_t> dims;
      for (size_t i = 0; ok && i < item[1].size(); ++i) {
        ok = item[1][i].is_number_integer() && item[1][i].get<int64_t>() >= 1;
        if (ok) dims.push_back(item[1][i].get<int64_t>());
      }
      if (!ok) throw BadInput("{}: 'shapes' must hold [name, [dims...]] pairs", w);
      r.shapes.emplace_back(item[0].get<std::string>(), dims);
    }
  }
  r.tiers = Texts(doc, "tiers", w);
  r.where = Pairs<std::string>(doc, "where", w);
  r.privacy_blocks = static_cast<int>(Integer(doc, "privacy_blocks", w, 0, 1 << 30));
  r.max_upload_mb = Pairs<double>(doc, "max_upload_mb", w);
  r.max_time = Pairs<std::string>(doc, "max_time", w);
  r.max_memory_mb = Pairs<double>(doc, "max_memory_mb", w);
  r.return_result = Flag(doc, "return_result", w);
  r.statistic = Text(doc, "statistic", w);
  if (r.statistic != "mean" && r.statistic != "median")
    throw BadInput("{}: 'statistic' must be mean or median", w);
  try {
    r.objective = ParseObjective(Text(doc, "objective", w));
  } catch (const Error& e) {
    throw BadInput("{}: {}", w, e.what());
  }
  r.top_k = static_cast<int>(Integer(doc, "top_k", w, 1, 1000));
  // Codecs came later: a request without them allows what the defaults allow.
  if (doc.contains("codecs")) {
    r.codecs = Texts(doc, "codecs", w);
    for (const auto& name : r.codecs)
      if (name.empty()) throw BadInput("{}: 'codecs' holds an empty name", w);
  }
  if (doc.contains("max_output_error") && !doc.at("max_output_error").is_null()) {
    const double x = Number(doc, "max_output_error", w);
    if (!(x > 0 && x <= 1)) throw BadInput("{}: 'max_output_error' must be in (0, 1]", w);
    r.max_output_error = x;
  }
  return r;
}

PlannedRun PlannedRunFromJson(const Json& doc, const std::string& what) {
  PlannedRun run;
  run.rank = static_cast<int>(Integer(doc, "rank", what, 1, 1000000));
  const std::string w = fmt::format("{}: plan {}", what, run.rank);
  run.latency_ms = Number(doc, "latency_ms", w);
  run.compute_ms = Number(doc, "compute_ms", w);
  run.transfer_ms = Number(doc, "transfer_ms", w);
  run.bottleneck_ms = Number(doc, "bottleneck_ms", w);
  run.uplink_bytes = Integer(doc, "uplink_bytes", w, 0, INT64_MAX);
  const Json& stages = Field(doc, "stages", w);
  if (!stages.is_array() || stages.empty())
    throw BadInput("{}: 'stages' must be a non-empty array", w);
  for (const auto& s : stages)
    run.stages.push_back({Text(s, "tier", w), Text(s, "resource", w),
                          static_cast<int>(Integer(s, "first_block", w, 0, 1 << 30)),
                          static_cast<int>(Integer(s, "last_block", w, -1, 1 << 30)),
                          Number(s, "compute_ms", w)});
  const Json& hops = Field(doc, "hops", w);
  if (!hops.is_array()) throw BadInput("{}: 'hops' must be an array", w);
  for (const auto& h : hops) run.hops.push_back(PlannedHopFromJson(h, w));
  if (doc.contains("output_error")) run.output_error = Number(doc, "output_error", w);
  // Stages must cover the blocks in order: the source from block 0, each next one where the
  // previous ended; a later stage runs at least one block.
  int next = 0;
  for (size_t i = 0; i < run.stages.size(); ++i) {
    const auto& s = run.stages[i];
    if (s.first_block != next || (i > 0 && s.last_block < s.first_block) ||
        s.last_block < s.first_block - 1)
      throw BadInput("{}: stage {} ({}) does not continue where the one before ended", w, i,
                     s.resource);
    next = s.last_block + 1;
  }
  if (run.hops.size() + 1 < run.stages.size())
    throw BadInput("{}: {} hops for {} stages", w, run.hops.size(), run.stages.size());
  return run;
}

PlanDocument PlanDocumentFromJson(const Json& doc, const std::string& what) {
  if (!doc.is_object())
    throw BadInput("{}: not a plan file (expected `scission plan --json`)", what);
  PlanDocument d;
  const Json& model = Field(doc, "model", what);
  d.model = {Text(model, "key", what), Text(model, "name", what), Text(model, "path", what),
             Text(model, "origin", what)};
  d.request = PlanRequestFromJson(Field(doc, "request", what), what);
  if (doc.contains("profile")) {
    const Json& profile = doc.at("profile");
    d.profile = {Text(profile, "input_shapes", what), Text(profile, "partition", what)};
  }
  d.tiers = Texts(doc, "tiers", what);
  d.objective = Text(doc, "objective", what);
  d.blocks = static_cast<int>(Integer(doc, "blocks", what, 1, 1 << 30));
  d.input_bytes = Integer(doc, "input_bytes", what, 0, INT64_MAX);
  if (doc.contains("output_bytes")) {
    const Json& out = doc.at("output_bytes");
    if (!out.is_array() || static_cast<int>(out.size()) != d.blocks)
      throw BadInput("{}: 'output_bytes' must be an array of {} sizes", what, d.blocks);
    for (const auto& bytes : out) {
      const bool ok =
          bytes.is_number_integer() &&
          (bytes.is_number_unsigned() ? bytes.get<uint64_t>() <= static_cast<uint64_t>(INT64_MAX)
                                      : bytes.get<int64_t>() >= 0);
      if (!ok) throw BadInput("{}: 'output_bytes' must hold sizes >= 0", what);
      d.output_bytes.push_back(bytes.get<int64_t>());
    }
  }
  const Json& plans = Field(doc, "plans", what);
  if (!plans.is_array()) throw BadInput("{}: 'plans' must be an array", what);
  for (const auto& p : plans) {
    d.plans.push_back(PlannedRunFromJson(p, what));
    if (d.plans.back().stages.back().last_block != d.blocks - 1)
      throw BadInput("{}: plan {} does not end at the model's last block {}", what,
                     d.plans.back().rank, d.blocks - 1);
  }
  if (d.request.model_key != d.model.key)
    throw BadInput("{}: the request is for another model", what);
  return d;
}

}  // namespace scission::plan
