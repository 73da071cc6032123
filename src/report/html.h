// The self-contained HTML report: every stored profile (time and output size per block) and the
// top plans per model, and optionally an adaptive-serving run (timeline, phases, switches). Inline
// CSS and SVG only; nothing is fetched when the page is opened.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "report/timeline.h"
#include "store/store.h"

namespace scission::report {

struct ReportOptions {
  std::vector<std::string> tiers = {"device", "edge", "cloud"};
  int top_k = 3;
  std::string only_model_key;  // empty: every stored model
  // Set: an "Adaptive serving" section (timeline chart, per-phase table, switch table) first.
  std::optional<Timeline> timeline;
};

std::string RenderReport(store::Store& store, const ReportOptions& options);

}  // namespace scission::report
