#include "report/html.h"

#include <cmath>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "common/error.h"
#include "plan/from_store.h"
#include "plan/planner.h"
#include "report/svg.h"

namespace scission::report {

namespace {

std::string PlanRow(const plan::PlanProblem& p, const plan::PlanCandidate& c, int rank) {
  std::string cells = fmt::format("<td>{}</td><td>{:.2f}</td><td>{:.2f}</td><td>{:.2f}</td>", rank,
                                  c.latency_ms, c.compute_ms, c.transfer_ms);
  std::string layout;
  for (const auto& s : c.stages) {
    const auto& r = p.resources[static_cast<size_t>(s.resource)];
    layout += fmt::format("<span class='t{}'>{} {}</span> ", r.tier, EscapeXml(r.name),
                          s.last_block < s.first_block
                              ? std::string("(input only)")
                              : fmt::format("{}&ndash;{}", s.first_block, s.last_block));
  }
  return "<tr>" + cells + "<td>" + layout +
         fmt::format("</td><td>{:.3f}</td></tr>", c.uplink_bytes / 1e6);
}

// "12.3" for a number, "&ndash;" where there is none.
std::string Cell(std::optional<double> value, int decimals = 1) {
  if (!value || std::isnan(*value)) return "&ndash;";
  return fmt::format("{:.{}f}", *value, decimals);
}

// A fraction as a signed percentage.
std::string Gain(std::optional<double> fraction) {
  return fraction ? fmt::format("{:+.1f}", *fraction * 100) : Cell(std::nullopt);
}

std::string PhaseTable(const Timeline& timeline) {
  std::string out =
      "<table><tr><th>phase</th><th>requests</th><th>errors</th><th>mean ms</th><th>p50 "
      "ms</th><th>p95 ms</th></tr>";
  for (const auto& row : SummarizePhases(timeline))
    out +=
        fmt::format("<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                    EscapeXml(row.name), row.requests, row.errors, Cell(row.mean_ms),
                    Cell(row.p50_ms), Cell(row.p95_ms));
  return out + "</table>";
}

std::string SwitchTable(const Timeline& timeline) {
  if (timeline.switches.empty()) return "<p>No plan switches.</p>";
  const double origin = timeline.OriginUnixMs();
  std::string out =
      "<table><tr><th>#</th><th>time s</th><th>trigger</th><th>from &rarr; to</th><th>predicted "
      "gain %</th><th>measured gain %</th><th>install ms</th></tr>";
  for (size_t i = 0; i < timeline.switches.size(); ++i) {
    const auto& s = timeline.switches[i];
    out += fmt::format(
        "<tr><td>{}</td><td>{:.1f}</td><td>{}</td><td>{} &rarr; {}</td><td>{}</td><td>{}</td>"
        "<td>{}</td></tr>",
        i + 1, (s.time_unix_ms - origin) / 1000, EscapeXml(s.trigger), EscapeXml(s.from),
        EscapeXml(s.to), Gain(s.predicted_gain), Gain(s.measured_gain), Cell(s.install_ms, 0));
  }
  return out + "</table>";
}

std::string TimelineSection(const Timeline& timeline) {
  size_t errors = 0;
  for (const auto& r : timeline.requests) errors += r.ok() ? 0 : 1;
  return fmt::format(
      "<section id='adaptive'><h2>Adaptive serving</h2><p class='meta'>{} &middot; {} requests "
      "({} failed) &middot; {} phases &middot; {} plan switches</p><figure>{}</figure>"
      "<h3>Phases</h3>{}<p class='note'>Latency statistics over the successful requests; a "
      "request belongs to the phase its start falls in; percentiles interpolate between closest "
      "ranks.</p><h3>Plan switches</h3>{}</section>",
      EscapeXml(timeline.source), timeline.requests.size(), errors, timeline.phases.size(),
      timeline.switches.size(), TimelineSvg(timeline), PhaseTable(timeline), SwitchTable(timeline));
}

}  // namespace

std::string RenderReport(store::Store& store, const ReportOptions& options) {
  std::string body;
  int models_shown = 0;
  for (const auto& model : store.Models()) {
    if (!options.only_model_key.empty() && model.key != options.only_model_key) continue;
    auto views = store.LatestProfiles(model.key);
    if (views.empty()) continue;
    ++models_shown;
    body += fmt::format(
        "<section><h2>{}</h2><p class='meta'>{} &middot; {} blocks &middot; origin {}</p>",
        EscapeXml(model.name), EscapeXml(model.key), views.front().blocks.size(),
        EscapeXml(model.origin));
    body += "<h3>Block profiles</h3><div class='grid'>";
    for (const auto& v : views) {
      std::vector<double> ms;
      std::vector<int64_t> bytes;
      for (const auto& m : v.block_measurements) ms.push_back(m.median_ms);
      for (const auto& b : v.blocks) bytes.push_back(b.output_bytes);
      body += "<figure>" + ProfileSvg(fmt::format("{} ({})", v.resource, v.tier), ms, bytes) +
              "</figure>";
    }
    body += "</div>";
    plan::PlanRequest request;
    request.model_key = model.key;
    request.tiers = options.tiers;
    request.top_k = options.top_k;
    try {
      auto problem = plan::BuildProblem(store, request, nullptr);
      auto plans = plan::PlanTopK(problem);
      body += fmt::format("<h3>Top plans ({})</h3>",
                          EscapeXml(fmt::format("tiers {}", fmt::join(options.tiers, " → "))));
      if (plans.empty()) {
        body += "<p>No plan: links between the tiers are missing.</p>";
      } else {
        body +=
            "<table><tr><th>rank</th><th>total ms</th><th>compute ms</th><th>transfer "
            "ms</th><th>layout</th><th>uplink MB</th></tr>";
        int rank = 1;
        for (const auto& c : plans) body += PlanRow(problem, c, rank++);
        body += "</table><figure>" +
                PlanSvg(problem, plans.front(), "best plan, per block (log scale)") + "</figure>";
      }
    } catch (const Error& e) {
      body += fmt::format("<p class='note'>No plans: {}</p>", EscapeXml(e.what()));
    }
    body += "</section>";
  }
  if (models_shown == 0)
    body =
        "<p>The store holds no benchmarks yet. Run <code>scission benchmark</code> or "
        "<code>scission import-scission</code>.</p>";
  std::string links =
      "<table><tr><th>from</th><th>to</th><th>RTT ms</th><th>Mbit/s</th><th>origin</th></tr>";
  for (const auto& l : store.Links())
    links += fmt::format("<tr><td>{}</td><td>{}</td><td>{:g}</td><td>{:g}</td><td>{}</td></tr>",
                         EscapeXml(l.source), EscapeXml(l.destination), l.rtt_ms, l.mbps,
                         EscapeXml(l.origin));
  links += "</table>";
  return fmt::format(R"(<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Scission report</title>
<style>
body {{ font-family: sans-serif; margin: 24px; color: #222; }}
h1 {{ margin-bottom: 4px; }} h2 {{ border-bottom: 1px solid #ccc; padding-bottom: 4px; }}
.meta, .note {{ color: #666; font-size: 13px; }}
.grid {{ display: flex; flex-wrap: wrap; gap: 12px; }}
figure {{ margin: 0; overflow-x: auto; max-width: 100%; }}
table {{ border-collapse: collapse; font-size: 13px; margin: 8px 0; }}
td, th {{ border: 1px solid #ddd; padding: 3px 8px; text-align: left; }}
.t0 {{ color: #d62728; }} .t1 {{ color: #2ca02c; }} .t2 {{ color: #1f77b4; }} .t3 {{ color: #9467bd; }}
</style></head><body>
<h1>Scission report</h1><p class="meta">store {} &middot; generated {}</p>
{}{}
<h2>Links</h2>{}
</body></html>
)",
                     EscapeXml(store.path()), store::NowIso8601(),
                     options.timeline ? TimelineSection(*options.timeline) : std::string(), body,
                     links);
}

}  // namespace scission::report
