#include "report/timeline.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <limits>
#include <string_view>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/files.h"
#include "profile/stats.h"

namespace scission::report {

namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

double Number(const Json& object, const char* key, const std::string& where) {
  auto it = object.find(key);
  if (it == object.end() || !it->is_number())
    throw BadInput("{}: '{}' must be a number", where, key);
  double value = it->get<double>();
  if (!std::isfinite(value)) throw BadInput("{}: '{}' is not finite", where, key);
  return value;
}

// Absent or null: nullopt; anything but a finite number otherwise is an error.
std::optional<double> OptionalNumber(const Json& object, const char* key,
                                     const std::string& where) {
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) return std::nullopt;
  return Number(object, key, where);
}

std::string Text(const Json& object, const char* key, const std::string& where, bool required) {
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) {
    if (required) throw BadInput("{}: '{}' must be a string", where, key);
    return "";
  }
  if (!it->is_string()) throw BadInput("{}: '{}' must be a string", where, key);
  return it->get<std::string>();
}

// Calls `each(object, where)` for every non-blank line, `where` being "<file>:<line>" (from 1)
// for the errors.
template <typename Each>
void ForEachJsonLine(const std::string& path, Each each) {
  const std::string bytes = ReadFileBytes(path);
  size_t line_number = 0;
  for (size_t begin = 0; begin < bytes.size();) {
    size_t end = bytes.find('\n', begin);
    if (end == std::string::npos) end = bytes.size();
    std::string_view line(bytes.data() + begin, end - begin);
    begin = end + 1;
    ++line_number;
    if (line.find_first_not_of(" \t\r") == std::string_view::npos) continue;
    const std::string where = fmt::format("{}:{}", path, line_number);
    Json object = Json::parse(line, nullptr, false);
    if (object.is_discarded() || !object.is_object())
      throw BadInput("{}: not a JSON object", where);
    each(object, where);
  }
}

RequestPoint ParseRequest(const Json& object, const std::string& where) {
  RequestPoint point;
  point.start_unix_ms = Number(object, "start_unix_ms", where);
  point.code = Text(object, "code", where, true);
  if (point.code.empty()) throw BadInput("{}: 'code' is empty", where);
  point.latency_ms = OptionalNumber(object, "latency_ms", where);
  if (point.latency_ms && *point.latency_ms < 0)
    throw BadInput("{}: 'latency_ms' is negative", where);
  // A reply without a time cannot be placed on the chart; only a lost request has none.
  if (point.ok() && !point.latency_ms)
    throw BadInput("{}: an OK request needs 'latency_ms'", where);
  return point;
}

SwitchMark ParseSwitch(const Json& object, const std::string& where) {
  SwitchMark mark;
  mark.time_unix_ms = Number(object, "time_unix_ms", where);
  mark.trigger = Text(object, "trigger", where, false);
  mark.from = Text(object, "from", where, false);
  mark.to = Text(object, "to", where, true);
  mark.predicted_gain = OptionalNumber(object, "predicted_gain", where);
  mark.measured_gain = OptionalNumber(object, "measured_gain", where);
  mark.install_ms = OptionalNumber(object, "install_ms", where);
  if (mark.install_ms && *mark.install_ms < 0)
    throw BadInput("{}: 'install_ms' is negative", where);
  return mark;
}

std::vector<PhaseSpan> ReadPhases(const std::string& path) {
  Json doc = Json::parse(ReadFileBytes(path), nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) throw BadInput("{}: not a JSON object", path);
  auto list = doc.find("phases");
  if (list == doc.end() || !list->is_array()) throw BadInput("{}: 'phases' must be an array", path);
  std::vector<PhaseSpan> phases;
  for (size_t i = 0; i < list->size(); ++i) {
    const Json& entry = (*list)[i];
    const std::string where = fmt::format("{}: phases[{}]", path, i);
    if (!entry.is_object()) throw BadInput("{}: not a JSON object", where);
    PhaseSpan phase{Text(entry, "name", where, true), Number(entry, "start_unix_ms", where),
                    Number(entry, "end_unix_ms", where)};
    if (phase.end_unix_ms <= phase.start_unix_ms)
      throw BadInput("{}: 'end_unix_ms' is not after 'start_unix_ms'", where);
    phases.push_back(std::move(phase));
  }
  return phases;
}

bool Exists(const std::string& path) {
  std::error_code ec;
  return fs::exists(path, ec);
}

}  // namespace

double Timeline::OriginUnixMs() const {
  if (!phases.empty()) return phases.front().start_unix_ms;
  double first = std::numeric_limits<double>::infinity();
  for (const auto& r : requests) first = std::min(first, r.start_unix_ms);
  return std::isfinite(first) ? first : 0;
}

Timeline ReadTimeline(const std::string& dir) {
  Timeline timeline;
  timeline.source = dir;
  const std::string requests = (fs::path(dir) / kRequestsFile).string();
  if (!Exists(requests))
    throw BadInput("{}: no such file (scission loadgen --records writes it)", requests);
  ForEachJsonLine(requests, [&](const Json& object, const std::string& where) {
    timeline.requests.push_back(ParseRequest(object, where));
  });
  const std::string switches = (fs::path(dir) / kSwitchesFile).string();
  if (Exists(switches))
    ForEachJsonLine(switches, [&](const Json& object, const std::string& where) {
      timeline.switches.push_back(ParseSwitch(object, where));
    });
  std::stable_sort(timeline.switches.begin(), timeline.switches.end(),
                   [](const auto& a, const auto& b) { return a.time_unix_ms < b.time_unix_ms; });
  const std::string phases = (fs::path(dir) / kPhasesFile).string();
  if (Exists(phases)) timeline.phases = ReadPhases(phases);
  std::stable_sort(timeline.phases.begin(), timeline.phases.end(),
                   [](const auto& a, const auto& b) { return a.start_unix_ms < b.start_unix_ms; });
  return timeline;
}

std::vector<PhaseStats> SummarizePhases(const Timeline& timeline) {
  const size_t n = timeline.phases.size();
  // Index n collects the requests outside every phase.
  std::vector<PhaseStats> rows(n + 1);
  std::vector<std::vector<double>> latencies(n + 1);
  for (size_t i = 0; i < n; ++i) rows[i].name = timeline.phases[i].name;
  rows[n].name = n == 0 ? "whole run" : "outside the phases";
  for (const auto& r : timeline.requests) {
    size_t i = 0;
    while (i < n && !(r.start_unix_ms >= timeline.phases[i].start_unix_ms &&
                      r.start_unix_ms < timeline.phases[i].end_unix_ms))
      ++i;
    ++rows[i].requests;
    if (r.ok())
      latencies[i].push_back(*r.latency_ms);
    else
      ++rows[i].errors;
  }
  const double nan = std::numeric_limits<double>::quiet_NaN();
  for (size_t i = 0; i <= n; ++i) {
    const bool any = !latencies[i].empty();
    rows[i].mean_ms = any ? profile::Mean(latencies[i]) : nan;
    rows[i].p50_ms = any ? profile::Percentile(latencies[i], 0.5) : nan;
    rows[i].p95_ms = any ? profile::Percentile(latencies[i], 0.95) : nan;
  }
  if (n > 0 && rows[n].requests == 0) rows.pop_back();
  return rows;
}

}  // namespace scission::report
