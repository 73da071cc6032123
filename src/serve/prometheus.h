// Pieces of the Prometheus text exposition format (version 0.0.4) that more than one metrics
// page needs.
#pragma once

#include <string>

namespace scission::serve {

// `value` as the inside of a label value's double quotes: backslash, double quote and line feed
// become \\, \" and \n, as the format requires; every other byte is kept, so a scraper reads back
// exactly `value` (resource names, hops and plan layouts reach labels unchanged).
std::string PromLabel(const std::string& value);

}  // namespace scission::serve
