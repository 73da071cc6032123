// Inline SVG charts (no scripts, no external resources) for the CLI's --svg and the HTML report.
#pragma once

#include <string>
#include <vector>

#include "plan/problem.h"

namespace scission::report {

// One bar per block (compute ms, log scale) coloured by the tier that runs it, with a transfer bar
// between stages; `title` goes on top.
std::string PlanSvg(const plan::PlanProblem& problem, const plan::PlanCandidate& plan,
                    const std::string& title);

// Two aligned series per block for one resource: compute time (log scale) and output size.
std::string ProfileSvg(const std::string& title, const std::vector<double>& block_ms,
                       const std::vector<int64_t>& output_bytes);

std::string EscapeXml(const std::string& text);
// A stable colour per tier index.
std::string TierColor(int tier);

}  // namespace scission::report
