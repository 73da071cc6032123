#include "common/error.h"

#include <cctype>

namespace scission {

std::string OneLine(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  bool space = false;
  for (char c : text) {
    if (std::isspace(static_cast<unsigned char>(c))) {
      space = true;
      continue;
    }
    if (space && !out.empty()) out.push_back(' ');
    space = false;
    out.push_back(c);
  }
  return out;
}

Error::Error(ErrorKind kind, std::string message)
    : std::runtime_error(OneLine(message)), kind_(kind) {}

}  // namespace scission
