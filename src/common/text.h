// Small text helpers shared by the parsers of several layers.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace scission {

// Without leading/trailing spaces and tabs.
std::string Strip(std::string_view text);
bool AllDigits(std::string_view text);
// Splits on ',' keeping empty items (callers decide whether an empty item is an error).
std::vector<std::string> SplitCommas(std::string_view text);
// "512 B", "3.1 kB", "1.20 MB" (decimal units); "?" for a negative count.
std::string FormatBytes(int64_t bytes);

}  // namespace scission
