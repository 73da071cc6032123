#include "report/svg.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

namespace scission::report {

namespace {

constexpr int kBar = 14, kGap = 4, kHeight = 220, kTop = 34, kLeft = 56, kBottom = 40;

struct LogScale {
  double lo, hi;
  double Y(double v) const {
    double x = std::log10(std::max(v, lo));
    double f = (x - std::log10(lo)) / (std::log10(hi) - std::log10(lo));
    return kTop + kHeight * (1.0 - std::clamp(f, 0.0, 1.0));
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

}  // namespace scission::report
