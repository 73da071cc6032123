// Inline SVG charts (no scripts, no external resources) for the CLI's --svg and the HTML report.
#pragma once

#include <string>
#include <vector>

#include "plan/problem.h"
#include "report/timeline.h"

namespace scission::report {

// One bar per block (compute ms, log scale) coloured by the tier that runs it, with a transfer bar
// between stages; `title` goes on top.
std::string PlanSvg(const plan::PlanProblem& problem, const plan::PlanCandidate& plan,
                    const std::string& title);

// Two aligned series per block for one resource: compute time (log scale) and output size.
std::string ProfileSvg(const std::string& title, const std::vector<double>& block_ms,
                       const std::vector<int64_t>& output_bytes);

// An adaptive-serving run: the latency of each request over time (log scale; errors as red
// crosses in a strip above), the phases as alternating shaded bands named at the top, and each
// plan switch as a dashed line labelled "<n>: <to-layout> <predicted gain>" whose tooltip gives
// the trigger and the measured gain, with its install time shaded before it. The width is fixed,
// so the size is bounded whatever the number of requests (the thinning rule is in svg.cpp).
std::string TimelineSvg(const Timeline& timeline);

std::string EscapeXml(const std::string& text);
// A stable colour per tier index.
std::string TierColor(int tier);

}  // namespace scission::report
