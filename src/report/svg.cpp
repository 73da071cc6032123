#include "report/svg.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <iterator>
#include <limits>
#include <map>

#include <fmt/format.h>

namespace scission::report {

namespace {

constexpr int kBar = 14, kGap = 4, kHeight = 220, kTop = 34, kLeft = 56, kBottom = 40;

struct LogScale {
  double lo, hi;
  double top = kTop, height = kHeight;  // the plot area, px
  double Y(double v) const {
    double x = std::log10(std::max(v, lo));
    double f = (x - std::log10(lo)) / (std::log10(hi) - std::log10(lo));
    return top + height * (1.0 - std::clamp(f, 0.0, 1.0));
  }
};

LogScale ScaleFor(const std::vector<double>& values) {
  double lo = 1e9, hi = 0;
  for (double v : values)
    if (v > 0) {
      lo = std::min(lo, v);
      hi = std::max(hi, v);
    }
  if (hi <= 0) return {0.001, 1};
  lo = std::pow(10, std::floor(std::log10(lo)));
  hi = std::pow(10, std::ceil(std::log10(hi)));
  if (hi <= lo) hi = lo * 10;
  return {lo, hi};
}

std::string Axis(const LogScale& s, int width, const std::string& unit) {
  std::string out;
  for (double v = s.lo; v <= s.hi * 1.0001; v *= 10) {
    double y = s.Y(v);
    out += fmt::format("<line x1='{}' y1='{:.1f}' x2='{}' y2='{:.1f}' stroke='#ddd'/>", kLeft, y,
                       width - 8, y);
    out += fmt::format("<text x='{}' y='{:.1f}' font-size='10' text-anchor='end'>{:g} {}</text>",
                       kLeft - 4, y + 3, v, unit);
  }
  return out;
}

}  // namespace

std::string EscapeXml(const std::string& text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '&':
        out += "&amp;";
        break;
      case '\'':
        out += "&apos;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out.push_back(c);
    }
  }
  return out;
}

std::string TierColor(int tier) {
  static const char* kColors[] = {"#d62728", "#2ca02c", "#1f77b4", "#9467bd", "#8c564b", "#e377c2"};
  return kColors[static_cast<size_t>(tier) % 6];
}

std::string PlanSvg(const plan::PlanProblem& problem, const plan::PlanCandidate& plan,
                    const std::string& title) {
  struct Bar {
    double ms;
    std::string color, label, tip;
  };
  std::vector<Bar> bars;
  for (size_t s = 0; s < plan.stages.size(); ++s) {
    const auto& stage = plan.stages[s];
    const auto& res = problem.resources[static_cast<size_t>(stage.resource)];
    if (s > 0) {
      const auto& hop = plan.hops[s - 1];
      bars.push_back({hop.ms, "#f2c200", "net",
                      fmt::format("{} -> {}: {} bytes, {:.3f} ms",
                                  problem.resources[static_cast<size_t>(hop.from)].name, res.name,
                                  hop.bytes, hop.ms)});
    }
    for (int b = stage.first_block; b <= stage.last_block; ++b)
      bars.push_back({res.block_ms[static_cast<size_t>(b)], TierColor(res.tier), std::to_string(b),
                      fmt::format("block {} on {} ({}): {:.3f} ms", b, res.name,
                                  problem.tiers[static_cast<size_t>(res.tier)],
                                  res.block_ms[static_cast<size_t>(b)])});
  }
  if (problem.return_result && plan.hops.size() >= plan.stages.size())
    bars.push_back({plan.hops.back().ms, "#f2c200", "ret", "return of the result"});
  std::vector<double> values;
  for (const auto& b : bars) values.push_back(b.ms);
  LogScale scale = ScaleFor(values);
  int width = kLeft + static_cast<int>(bars.size()) * (kBar + kGap) + 16;
  width = std::max(width, 420);
  int height = kTop + kHeight + kBottom + 20;
  std::string svg = fmt::format(
      "<svg xmlns='http://www.w3.org/2000/svg' width='{}' height='{}' font-family='sans-serif'>"
      "<text x='{}' y='18' font-size='13' font-weight='bold'>{}</text>",
      width, height, kLeft, EscapeXml(title));
  svg += Axis(scale, width, "ms");
  for (size_t i = 0; i < bars.size(); ++i) {
    int x = kLeft + static_cast<int>(i) * (kBar + kGap) + kGap;
    double y = scale.Y(bars[i].ms);
    svg += fmt::format(
        "<rect x='{}' y='{:.1f}' width='{}' height='{:.1f}' fill='{}'><title>{}</title></rect>", x,
        y, kBar, kTop + kHeight - y, bars[i].color, EscapeXml(bars[i].tip));
    svg += fmt::format("<text x='{}' y='{}' font-size='8' text-anchor='middle'>{}</text>",
                       x + kBar / 2, kTop + kHeight + 12, EscapeXml(bars[i].label));
  }
  int lx = kLeft;
  for (size_t t = 0; t < problem.tiers.size(); ++t) {
    svg += fmt::format(
        "<rect x='{}' y='{}' width='10' height='10' fill='{}'/><text x='{}' y='{}' "
        "font-size='11'>{}</text>",
        lx, height - 14, TierColor(static_cast<int>(t)), lx + 14, height - 5,
        EscapeXml(problem.tiers[t]));
    lx += 90;
  }
  svg += fmt::format(
      "<rect x='{}' y='{}' width='10' height='10' fill='#f2c200'/><text x='{}' y='{}' "
      "font-size='11'>transfer</text>",
      lx, height - 14, lx + 14, height - 5);
  return svg + "</svg>";
}

std::string ProfileSvg(const std::string& title, const std::vector<double>& block_ms,
                       const std::vector<int64_t>& output_bytes) {
  LogScale time_scale = ScaleFor(block_ms);
  std::vector<double> sizes;
  for (int64_t b : output_bytes) sizes.push_back(static_cast<double>(b) / 1000.0);
  LogScale size_scale = ScaleFor(sizes);
  int n = static_cast<int>(block_ms.size());
  int width = std::max(kLeft + n * (kBar + kGap) + 16, 420);
  int panel = kTop + kHeight + kBottom;
  std::string svg = fmt::format(
      "<svg xmlns='http://www.w3.org/2000/svg' width='{}' height='{}' font-family='sans-serif'>"
      "<text x='{}' y='18' font-size='13' font-weight='bold'>{}</text>",
      width, 2 * panel, kLeft, EscapeXml(title));
  svg += Axis(time_scale, width, "ms");
  for (int i = 0; i < n; ++i) {
    int x = kLeft + i * (kBar + kGap) + kGap;
    double y = time_scale.Y(block_ms[static_cast<size_t>(i)]);
    svg += fmt::format(
        "<rect x='{}' y='{:.1f}' width='{}' height='{:.1f}' fill='#1f77b4'><title>block {}: {:.3f} "
        "ms</title></rect>",
        x, y, kBar, kTop + kHeight - y, i, block_ms[static_cast<size_t>(i)]);
    svg += fmt::format("<text x='{}' y='{}' font-size='8' text-anchor='middle'>{}</text>",
                       x + kBar / 2, kTop + kHeight + 12, i);
  }
  svg += fmt::format("<g transform='translate(0,{})'>", panel - 20);
  svg += Axis(size_scale, width, "kB");
  for (int i = 0; i < n && i < static_cast<int>(sizes.size()); ++i) {
    int x = kLeft + i * (kBar + kGap) + kGap;
    double y = size_scale.Y(sizes[static_cast<size_t>(i)]);
    svg += fmt::format(
        "<rect x='{}' y='{:.1f}' width='{}' height='{:.1f}' fill='#ff7f0e'><title>block {} output: "
        "{} bytes</title></rect>",
        x, y, kBar, kTop + kHeight - y, i, output_bytes[static_cast<size_t>(i)]);
  }
  svg += fmt::format("<text x='{}' y='{}' font-size='11'>output size per block</text></g>", kLeft,
                     kTop + kHeight + 30);
  return svg + "</svg>";
}

namespace {

// The timeline's geometry, px: phase names at the top of their bands, the error strip, the plot.
constexpr int kTlWidth = 1100, kTlRight = 16, kTlBandTop = 24, kTlErrorY = 50, kTlPlotTop = 64,
              kTlPlotHeight = 300, kTlHeight = 440;
constexpr int kTlPlotWidth = kTlWidth - kLeft - kTlRight;
constexpr int kTlBottom = kTlPlotTop + kTlPlotHeight;
// Beyond this many switches the lines keep their tooltips but lose their labels, which would only
// overlap.
constexpr size_t kMaxSwitchLabels = 40;
constexpr double kCharPx = 6.0;  // rough width of a character at font-size 10-11

// Unix ms to px; labels are seconds since `origin_ms`.
struct TimeAxis {
  double lo_ms, hi_ms, origin_ms;
  double X(double unix_ms) const {
    return kLeft + kTlPlotWidth * (unix_ms - lo_ms) / (hi_ms - lo_ms);
  }
  size_t Column(double unix_ms) const {
    return static_cast<size_t>(std::clamp(X(unix_ms) - kLeft, 0.0, kTlPlotWidth - 1.0));
  }
  double Seconds(double unix_ms) const { return (unix_ms - origin_ms) / 1000; }
  // The start of a pixel column, Unix ms.
  double ColumnStart(size_t column) const {
    return lo_ms + static_cast<double>(column) / kTlPlotWidth * (hi_ms - lo_ms);
  }
};

// Covers everything in the run, so nothing falls off the chart (a request started before the
// first phase shows at a negative time).
TimeAxis TimeAxisFor(const Timeline& timeline) {
  double lo = std::numeric_limits<double>::infinity(), hi = -lo;
  auto cover = [&](double ms) {
    lo = std::min(lo, ms);
    hi = std::max(hi, ms);
  };
  for (const auto& p : timeline.phases) {
    cover(p.start_unix_ms);
    cover(p.end_unix_ms);
  }
  for (const auto& r : timeline.requests) cover(r.start_unix_ms);
  for (const auto& s : timeline.switches) {
    cover(s.time_unix_ms);
    if (s.install_ms) cover(s.time_unix_ms - *s.install_ms);
  }
  const double origin = timeline.OriginUnixMs();
  if (!std::isfinite(lo)) lo = hi = origin;
  if (hi - lo < 1000) hi = lo + 1000;
  return {lo, hi, origin};
}

std::string TimeTicks(const TimeAxis& axis, const std::string& title) {
  static constexpr double kSteps[] = {0.1, 0.2, 0.5, 1,   2,    5,    10,   15,    30,   60,
                                      120, 300, 600, 900, 1800, 3600, 7200, 21600, 86400};
  const double first = axis.Seconds(axis.lo_ms), last = axis.Seconds(axis.hi_ms);
  double step = kSteps[std::size(kSteps) - 1];
  for (double candidate : kSteps)
    if ((last - first) / candidate <= 12) {
      step = candidate;
      break;
    }
  std::string out;
  for (auto k = static_cast<int64_t>(std::ceil(first / step - 1e-9)); k * step <= last + 1e-9;
       ++k) {
    const double x = axis.X(axis.origin_ms + static_cast<double>(k) * step * 1000);
    out += fmt::format(
        "<line x1='{0:.1f}' y1='{1}' x2='{0:.1f}' y2='{2}' stroke='#666'/>"
        "<text x='{0:.1f}' y='{3}' font-size='10' text-anchor='middle'>{4:g}</text>",
        x, kTlBottom, kTlBottom + 4, kTlBottom + 15, static_cast<double>(k) * step);
  }
  return out + fmt::format("<text x='{}' y='{}' font-size='11' text-anchor='middle'>{}</text>",
                           kLeft + kTlPlotWidth / 2, kTlBottom + 32, EscapeXml(title));
}

// The 1-2-5 steps (1, 2, 5, 10, 20, ... ms) around the successful requests' latencies: a
// run's latencies often span less than two decades, which whole decades would squash.
constexpr double kOneTwoFive[] = {1, 2, 5};

LogScale LatencyScale(const std::vector<double>& ok_ms) {
  double low = std::numeric_limits<double>::infinity(), high = 0;
  for (double v : ok_ms)
    if (v > 0) {
      low = std::min(low, v);
      high = std::max(high, v);
    }
  if (high <= 0) return {1, 1000, kTlPlotTop, kTlPlotHeight};
  double lo = 0, hi = 0;
  const double low_decade = std::pow(10, std::floor(std::log10(low)));
  for (double m : kOneTwoFive)
    if (m * low_decade <= low) lo = m * low_decade;
  const double high_decade = std::pow(10, std::floor(std::log10(high)));
  for (double m : {1.0, 2.0, 5.0, 10.0})
    if (hi == 0 && m * high_decade >= high) hi = m * high_decade;
  if (hi <= lo * 2) hi = lo * 10;
  return {lo, hi, kTlPlotTop, kTlPlotHeight};
}

// A labelled grid line at every 1-2-5 step within the scale.
std::string LatencyTicks(const LogScale& scale) {
  std::string out;
  for (double decade = std::pow(10, std::floor(std::log10(scale.lo))); decade <= scale.hi;
       decade *= 10)
    for (double m : kOneTwoFive) {
      const double v = m * decade;
      if (v < scale.lo * 0.999 || v > scale.hi * 1.001) continue;
      const double y = scale.Y(v);
      out += fmt::format(
          "<line x1='{}' y1='{:.1f}' x2='{}' y2='{:.1f}' stroke='{}'/><text x='{}' y='{:.1f}' "
          "font-size='10' text-anchor='end'>{:g} ms</text>",
          kLeft, y, kLeft + kTlPlotWidth, y, m == 1 ? "#ccc" : "#e4e4e4", kLeft - 4, y + 3, v);
    }
  return out;
}

// At most `max_chars` characters (never cutting a UTF-8 sequence), with an ellipsis when cut.
std::string Shorten(const std::string& text, double max_chars) {
  if (static_cast<double>(text.size()) <= max_chars) return text;
  if (max_chars < 2) return "";
  size_t cut = static_cast<size_t>(max_chars - 1);
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
  return text.substr(0, cut) + "…";
}

std::string PhaseBands(const Timeline& timeline, const TimeAxis& axis) {
  std::string out;
  for (size_t i = 0; i < timeline.phases.size(); ++i) {
    const auto& p = timeline.phases[i];
    const double x0 = axis.X(p.start_unix_ms), x1 = axis.X(p.end_unix_ms);
    out += fmt::format(
        "<g class='phase'><title>{} ({:g}..{:g} s)</title><rect x='{:.1f}' y='{}' width='{:.1f}' "
        "height='{}' fill='{}'/><text x='{:.1f}' y='{}' font-size='11' fill='#333'>{}</text></g>",
        EscapeXml(p.name), axis.Seconds(p.start_unix_ms), axis.Seconds(p.end_unix_ms), x0,
        kTlBandTop, x1 - x0, kTlBottom - kTlBandTop, i % 2 == 0 ? "#e4ecf7" : "#f3f3f3", x0 + 4,
        kTlBandTop + 13, EscapeXml(Shorten(p.name, (x1 - x0 - 8) / kCharPx)));
  }
  return out;
}

// Thinning: requests are grouped by the pixel column their start falls in (kTlPlotWidth columns).
// A column with up to three successful requests draws each as a dot; a fuller one draws a thin
// line from its fastest to its slowest request and a dot at its median (the lower middle one, a
// real request), so spikes and the typical level both survive. The chart never holds more than
// 3 x kTlPlotWidth dots or one line and one dot per column (~3,000 elements, ~100 kB), whatever
// the number of requests.
std::string RequestDots(const Timeline& timeline, const TimeAxis& axis, const LogScale& scale) {
  std::vector<std::vector<double>> columns(kTlPlotWidth);
  for (const auto& r : timeline.requests)
    if (r.ok()) columns[axis.Column(r.start_unix_ms)].push_back(*r.latency_ms);
  std::string ranges, dots;
  for (size_t c = 0; c < columns.size(); ++c) {
    auto& ms = columns[c];
    const double x = kLeft + static_cast<double>(c) + 0.5;
    if (ms.size() > 3) {
      const auto [fastest, slowest] = std::minmax_element(ms.begin(), ms.end());
      ranges += fmt::format("M{:.1f} {:.1f}V{:.1f}", x, scale.Y(*slowest), scale.Y(*fastest));
      auto middle = ms.begin() + static_cast<std::ptrdiff_t>((ms.size() - 1) / 2);
      std::nth_element(ms.begin(), middle, ms.end());
      ms = {*middle};
    }
    for (double v : ms)
      dots += fmt::format("<circle cx='{:.1f}' cy='{:.1f}' r='1.8'/>", x, scale.Y(v));
  }
  if (!ranges.empty())
    ranges =
        fmt::format("<path d='{}' stroke='#1f77b4' stroke-opacity='0.35' fill='none'/>", ranges);
  return ranges + "<g fill='#1f77b4' fill-opacity='0.75'>" + dots + "</g>";
}

// One cross per pixel column with failed requests; its tooltip counts them by code.
std::string ErrorCrosses(const Timeline& timeline, const TimeAxis& axis) {
  std::vector<std::map<std::string, int>> columns(kTlPlotWidth);
  for (const auto& r : timeline.requests)
    if (!r.ok()) ++columns[axis.Column(r.start_unix_ms)][r.code];
  std::string out = fmt::format(
      "<text x='{}' y='{}' font-size='10' text-anchor='end' fill='#d62728'>errors</text>",
      kLeft - 4, kTlErrorY + 3);
  for (size_t c = 0; c < columns.size(); ++c) {
    if (columns[c].empty()) continue;
    int total = 0;
    std::string codes;
    for (const auto& [code, n] : columns[c]) {
      total += n;
      codes += fmt::format("{}{} {}", codes.empty() ? "" : ", ", code, n);
    }
    const double x = kLeft + static_cast<double>(c) + 0.5;
    out += fmt::format(
        "<path d='M{:.1f} {}l6 6m0-6l-6 6' stroke='#d62728' stroke-width='1.5'><title>{:.1f} s: "
        "{} failed ({})</title></path>",
        x - 3, kTlErrorY - 3, axis.Seconds(axis.ColumnStart(c)), total, EscapeXml(codes));
  }
  return out;
}

std::string Percent(const std::optional<double>& fraction) {
  return fraction ? fmt::format("{:+.0f}%", *fraction * 100) : std::string("n/a");
}

std::string SwitchMarks(const Timeline& timeline, const TimeAxis& axis) {
  std::string out;
  for (size_t i = 0; i < timeline.switches.size(); ++i) {
    const auto& s = timeline.switches[i];
    const double x = axis.X(s.time_unix_ms);
    if (s.install_ms)
      out += fmt::format(
          "<rect x='{:.1f}' y='{}' width='{:.1f}' height='{}' fill='#9467bd' "
          "fill-opacity='0.15'/>",
          axis.X(s.time_unix_ms - *s.install_ms), kTlPlotTop,
          x - axis.X(s.time_unix_ms - *s.install_ms), kTlPlotHeight);
    const std::string tip = fmt::format(
        "switch {} at {:.1f} s: {} → {}\ntrigger: {}\npredicted gain {}, measured gain {}\n"
        "install {}",
        i + 1, axis.Seconds(s.time_unix_ms), s.from, s.to, s.trigger, Percent(s.predicted_gain),
        Percent(s.measured_gain),
        s.install_ms ? fmt::format("{:.0f} ms", *s.install_ms) : std::string("n/a"));
    out += fmt::format(
        "<g class='switch'><title>{0}</title><line x1='{1:.1f}' y1='{2}' x2='{1:.1f}' y2='{3}' "
        "stroke='#6a3d9a' stroke-width='1.5' stroke-dasharray='5 3'/><line x1='{1:.1f}' "
        "y1='{2}' x2='{1:.1f}' y2='{3}' stroke='transparent' stroke-width='8'/>",
        EscapeXml(tip), x, kTlBandTop + 18, kTlBottom);
    if (i < kMaxSwitchLabels) {
      const std::string label =
          fmt::format("{}: {} ({})", i + 1, Shorten(s.to, 40), Percent(s.predicted_gain));
      // Staggered over four rows so that close switches do not print over each other; flipped
      // to the left of the line near the right edge.
      const bool left = x + 3 + kCharPx * static_cast<double>(label.size()) > kTlWidth - kTlRight;
      out += fmt::format(
          "<text x='{:.1f}' y='{}' font-size='10' fill='#6a3d9a' text-anchor='{}' "
          "stroke='#fff' stroke-width='3' paint-order='stroke'>{}</text>",
          left ? x - 3 : x + 3, kTlPlotTop + 12 + static_cast<int>(i % 4) * 13,
          left ? "end" : "start", EscapeXml(label));
    }
    out += "</g>";
  }
  return out;
}

std::string TimelineLegend() {
  const int y = kTlHeight - 14;  // the text's baseline; icons sit just above it
  double x = kLeft;
  std::string out = "<g font-size='11'>";
  auto item = [&](const std::string& icon, const std::string& text) {
    out += icon + fmt::format("<text x='{:.0f}' y='{}'>{}</text>", x + 12, y, text);
    x += 12 + kCharPx * static_cast<double>(text.size()) + 24;
  };
  item(fmt::format("<circle cx='{:.0f}' cy='{}' r='3' fill='#1f77b4'/>", x + 4, y - 4),
       "request latency");
  item(fmt::format("<line x1='{0:.0f}' y1='{1}' x2='{0:.0f}' y2='{2}' stroke='#1f77b4' "
                   "stroke-opacity='0.5'/><circle cx='{0:.0f}' cy='{3}' r='2' fill='#1f77b4'/>",
                   x + 4, y - 10, y + 2, y - 4),
       "crowded pixel column: fastest to slowest, median dot");
  item(fmt::format("<path d='M{:.0f} {}l6 6m0-6l-6 6' stroke='#d62728' stroke-width='1.5'/>", x + 1,
                   y - 8),
       "failed request");
  item(fmt::format("<line x1='{0:.0f}' y1='{1}' x2='{0:.0f}' y2='{2}' stroke='#6a3d9a' "
                   "stroke-width='1.5' stroke-dasharray='4 2'/>",
                   x + 4, y - 10, y + 2),
       "plan switch: n: new layout (predicted gain)");
  item(fmt::format("<rect x='{:.0f}' y='{}' width='10' height='10' fill='#9467bd' "
                   "fill-opacity='0.25'/>",
                   x, y - 9),
       "install");
  return out + "</g>";
}

}  // namespace

std::string TimelineSvg(const Timeline& timeline) {
  const TimeAxis axis = TimeAxisFor(timeline);
  std::vector<double> ok_ms;
  for (const auto& r : timeline.requests)
    if (r.ok()) ok_ms.push_back(*r.latency_ms);
  LogScale scale = LatencyScale(ok_ms);
  std::string svg = fmt::format(
      "<svg xmlns='http://www.w3.org/2000/svg' width='{}' height='{}' font-family='sans-serif'>"
      "<text x='{}' y='16' font-size='13' font-weight='bold'>latency per request (log "
      "scale)</text>",
      kTlWidth, kTlHeight, kLeft);
  svg += PhaseBands(timeline, axis);
  svg += LatencyTicks(scale);
  svg += fmt::format("<rect x='{}' y='{}' width='{}' height='{}' fill='none' stroke='#999'/>",
                     kLeft, kTlPlotTop, kTlPlotWidth, kTlPlotHeight);
  svg += TimeTicks(axis, timeline.phases.empty() ? "seconds since the first request"
                                                 : "seconds since the first phase started");
  if (timeline.requests.empty())
    svg += fmt::format(
        "<text x='{}' y='{}' font-size='13' text-anchor='middle'>no requests in "
        "this run</text>",
        kLeft + kTlPlotWidth / 2, kTlPlotTop + kTlPlotHeight / 2);
  svg += RequestDots(timeline, axis, scale);
  svg += ErrorCrosses(timeline, axis);
  svg += SwitchMarks(timeline, axis);
  svg += TimelineLegend();
  return svg + "</svg>";
}

}  // namespace scission::report
