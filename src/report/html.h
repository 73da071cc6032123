// The self-contained HTML report: every stored profile (time and output size per block) and the
// top plans per model. Inline CSS and SVG only; nothing is fetched when the page is opened.
#pragma once

#include <string>
#include <vector>

#include "store/store.h"

namespace scission::report {

struct ReportOptions {
  std::vector<std::string> tiers = {"device", "edge", "cloud"};
  int top_k = 3;
  std::string only_model_key;  // empty: every stored model
};

std::string RenderReport(store::Store& store, const ReportOptions& options);

}  // namespace scission::report
