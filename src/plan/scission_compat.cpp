#include "plan/scission_compat.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <map>
#include <unordered_set>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "common/error.h"
#include "common/text.h"
#include "store/validate.h"

namespace scission::plan {

namespace {

std::string Lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

int ParseLayer(const std::string& text, const std::string& flag, int last_layer,
               const std::vector<std::string>& tier_systems) {
  int value = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || ptr != text.data() + text.size())
    throw BadInput("{}: layer '{}' is not a number", flag, text);
  if (value > last_layer) {
    bool is_system =
        std::find(tier_systems.begin(), tier_systems.end(), text) != tier_systems.end();
    throw BadInput("{}: layer {} is beyond the model's last layer {}{}", flag, value, last_layer,
                   is_system ? " (an all-digit criterion is a layer, as in the original tool, even "
                               "though a system has that name)"
                             : "");
  }
  return value;
}

bool InRange(int layer, int first, int last) { return layer >= first && layer <= last; }

// Passes every criterion of one tier?
bool Matches(const CompatCriteria& c, const std::string& system, bool used, int first, int last) {
  if (!c.systems_in.empty() &&
      !(used && std::find(c.systems_in.begin(), c.systems_in.end(), system) != c.systems_in.end()))
    return false;
  if (!c.systems_not_in.empty() &&
      !(used && std::find(c.systems_not_in.begin(), c.systems_not_in.end(), system) ==
                    c.systems_not_in.end()))
    return false;
  for (int layer : c.layers_in)
    if (!InRange(layer, first, last)) return false;
  for (int layer : c.layers_not_in)
    if (InRange(layer, first, last)) return false;
  return true;
}

bool WithinTime(const std::optional<CompatTimeLimit>& limit, double tier_time, double total) {
  if (!limit) return true;
  if (!limit->percent) return tier_time <= limit->value;
  if (total == 0) return tier_time == 0;
  return tier_time / total * 100.0 <= limit->value;
}

struct Link {
  double ping_s;
  double bytes_per_s;
};

}  // namespace

CompatCriteria ParseCompatCriteria(const std::string& text, const std::string& flag,
                                   const std::vector<std::string>& tier_systems, int last_layer) {
  CompatCriteria c;
  if (text.empty()) return c;
  for (const auto& raw : SplitCommas(text)) {
    std::string item = Strip(raw);
    if (item.empty()) throw BadInput("{}: empty criterion in '{}'", flag, text);
    if (AllDigits(item) || item == "-1") {
      c.layers_in.push_back(ParseLayer(item, flag, last_layer, tier_systems));
    } else if (item[0] == '!' && (AllDigits(item.substr(1)) || item.substr(1) == "-1")) {
      c.layers_not_in.push_back(ParseLayer(item.substr(1), flag, last_layer, tier_systems));
    } else {
      bool negate = item[0] == '!';
      std::string name = negate ? item.substr(1) : item;
      if (name.empty()) throw BadInput("{}: '!' without a layer or system in '{}'", flag, text);
      if (std::find(tier_systems.begin(), tier_systems.end(), name) == tier_systems.end())
        throw BadInput("{}: unknown system '{}' (this tier has: {})", flag, name,
                       tier_systems.empty() ? std::string("none")
                                            : fmt::format("{}", fmt::join(tier_systems, ", ")));
      (negate ? c.systems_not_in : c.systems_in).push_back(name);
    }
  }
  return c;
}

CompatTimeLimit ParseCompatTimeLimit(const std::string& text, const std::string& flag) {
  CompatTimeLimit limit;
  std::string number = text;
  if (!number.empty() && number.back() == '%') {
    limit.percent = true;
    number.pop_back();
  }
  number = Strip(number);
  auto [ptr, ec] = std::from_chars(number.data(), number.data() + number.size(), limit.value);
  if (number.empty() || ec != std::errc() || ptr != number.data() + number.size() ||
      !std::isfinite(limit.value) || limit.value < 0)
    throw BadInput("{}: '{}' is not a time in seconds or a percentage like 40%", flag, text);
  return limit;
}

std::vector<CompatScenario> PredictCompat(const std::vector<store::ScissionSystem>& systems,
                                          const std::vector<store::ScissionLink>& links,
                                          const CompatQuery& query) {
  if (query.result_count < 1) throw BadInput("--result-count must be at least 1");
  store::InputBytesFromMb(query.input_mb, "-i");  // finite and in range; the value stays in MB
  const std::string model = Lower(query.model);
  std::vector<const store::ScissionSystem*> devices, edges, clouds;
  for (const auto& s : systems) {
    if (!s.models.count(model)) {
      std::vector<std::string> names;
      for (const auto& [name, blocks] : s.models) names.push_back(name);
      throw BadInput("model '{}' is not in {} (it has: {})", query.model, s.path,
                     fmt::join(names, ", "));
    }
    (s.tier == "device" ? devices : s.tier == "edge" ? edges : clouds).push_back(&s);
  }
  if (systems.empty()) throw BadInput("no .dat benchmark files");
  const size_t n = systems.front().models.at(model).size();
  for (const auto& s : systems)
    if (s.models.at(model).size() != n)
      throw BadInput("{}: model '{}' has {} blocks but {} has {}", s.path, model,
                     s.models.at(model).size(), systems.front().path, n);
  const int last_layer = systems.front().models.at(model).back().output_layer;

  auto names_of = [](const std::vector<const store::ScissionSystem*>& tier) {
    std::vector<std::string> names;
    for (const auto* s : tier) names.push_back(s->name);
    return names;
  };
  auto dc = ParseCompatCriteria(query.device_criteria, "-d", names_of(devices), last_layer);
  auto ec = ParseCompatCriteria(query.edge_criteria, "-e", names_of(edges), last_layer);
  auto cc = ParseCompatCriteria(query.cloud_criteria, "-c", names_of(clouds), last_layer);
  std::optional<CompatTimeLimit> dt, et, ct;
  if (query.device_time) dt = ParseCompatTimeLimit(*query.device_time, "--device-time");
  if (query.edge_time) et = ParseCompatTimeLimit(*query.edge_time, "--edge-time");
  if (query.cloud_time) ct = ParseCompatTimeLimit(*query.cloud_time, "--cloud-time");
  for (const auto& [flag, mb] : {std::pair{"--device-upload", query.device_upload_mb},
                                 std::pair{"--edge-upload", query.edge_upload_mb}})
    if (mb && !(*mb >= 0)) throw BadInput("{}: must not be negative", flag);

  std::map<std::pair<std::string, std::string>, Link> link_map;
  for (const auto& l : links)
    link_map[{l.source, l.destination}] = {l.ping_ms / 1000.0, std::nearbyint(l.mbps * 125000.0)};
  auto link = [&](const std::string& a, const std::string& b) -> const Link& {
    auto it = link_map.find({a, b});
    if (it == link_map.end()) throw BadInput("network CSV has no link {} -> {}", a, b);
    if (it->second.bytes_per_s <= 0)
      throw BadInput("network CSV: link {} -> {} has no bandwidth", a, b);
    return it->second;
  };

  const double input_bytes = query.input_mb * 1000.0 * 1000.0;
  const double device_upload = query.device_upload_mb.value_or(-1) * 1e6;
  const double edge_upload = query.edge_upload_mb.value_or(-1) * 1e6;
  const int ni = static_cast<int>(n);
  std::unordered_set<std::string> seen;
  std::vector<CompatScenario> kept;
  for (const auto* d : devices)
    for (const auto* e : edges)
      for (const auto* c : clouds)
        for (int x = -1; x < ni; ++x)
          for (int y = -1; y < ni; ++y) {
            if (!(y > x || y == -1)) continue;
            CompatScenario s;
            s.device = d->name;
            s.edge = "None";
            s.cloud = "None";
            s.device_output = input_bytes;
            const auto& db = d->models.at(model);
            const auto& eb = e->models.at(model);
            const auto& cb = c->models.at(model);
            if (x != -1) {
              for (int b = 0; b <= x; ++b) s.device_time += db[b].seconds;
              s.device_output = static_cast<double>(db[x].output_size);
              s.device_first = db[0].input_layer;
              s.device_last = db[x].output_layer;
            }
            if (y != -1) {
              for (int b = x + 1; b <= y; ++b) s.edge_time += eb[b].seconds;
              s.edge = e->name;
              s.edge_output = static_cast<double>(eb[y].output_size);
              s.edge_first = eb[x + 1].input_layer;
              s.edge_last = eb[y].output_layer;
            }
            if (x != ni - 1 && y != ni - 1) {
              int from = std::max(x, y) + 1;
              for (int b = from; b < ni; ++b) s.cloud_time += cb[b].seconds;
              s.cloud = c->name;
              s.cloud_first = cb[from].input_layer;
              s.cloud_last = cb[ni - 1].output_layer;
            }
            if (s.edge_time == 0 && s.cloud_time == 0)
              s.device_output = 0;
            else if (s.cloud_time == 0)
              s.edge_output = 0;
            s.config = fmt::format("Device({}) = {} - {}, Edge({}) = {} - {}, Cloud({}) = {} - {}",
                                   s.device, s.device_first, s.device_last, s.edge, s.edge_first,
                                   s.edge_last, s.cloud, s.cloud_first, s.cloud_last);
            if (!seen.insert(s.config).second) continue;

            const double total_compute = s.device_time + s.edge_time + s.cloud_time;
            const bool edge_used = y != -1, cloud_used = s.cloud != "None";
            if (!Matches(dc, s.device, x != -1, s.device_first, s.device_last)) continue;
            if (query.device_upload_mb && !(s.device_output <= device_upload)) continue;
            if (!WithinTime(dt, s.device_time, total_compute)) continue;
            if (!Matches(ec, s.edge, edge_used, s.edge_first, s.edge_last)) continue;
            if (query.edge_upload_mb && !(s.edge_output <= edge_upload)) continue;
            if (!WithinTime(et, s.edge_time, total_compute)) continue;
            if (!Matches(cc, s.cloud, cloud_used, s.cloud_first, s.cloud_last)) continue;
            if (!WithinTime(ct, s.cloud_time, total_compute)) continue;

            if (edge_used) {
              const Link& de = link(s.device, s.edge);
              s.transfer += de.ping_s + s.device_output / de.bytes_per_s;
              if (cloud_used) {
                const Link& ecl = link(s.edge, s.cloud);
                s.transfer += ecl.ping_s + s.edge_output / ecl.bytes_per_s;
              }
            } else if (cloud_used) {
              const Link& dcl = link(s.device, s.cloud);
              s.transfer += dcl.ping_s + s.device_output / dcl.bytes_per_s;
            }
            s.latency = total_compute + s.transfer;
            kept.push_back(std::move(s));
          }
  // Stable: equal latencies keep generation order, as the original's insertion does.
  std::stable_sort(kept.begin(), kept.end(), [](const CompatScenario& a, const CompatScenario& b) {
    return a.latency < b.latency;
  });
  if (kept.size() > static_cast<size_t>(query.result_count))
    kept.resize(static_cast<size_t>(query.result_count));
  return kept;
}

std::string FormatCompatLine(int rank, const CompatScenario& s) {
  return fmt::format("[{}] {:.4f}s - {:.4f}MB - {}", rank, s.latency,
                     (s.device_output + s.edge_output) / 1000.0 / 1000.0, s.config);
}

}  // namespace scission::plan
