// The one exception type of the project. Library code throws it with a message a user can act on
// ("model.onnx: node 'conv3' reads 'x' which no node produces"); the CLI prints it as one
// `error:` line and maps the kind to the exit code (bad input 2, internal 1). Exceptions from
// ONNX Runtime, protobuf and SQLite are converted at each layer's boundary.
#pragma once

#include <stdexcept>
#include <string>

#include <fmt/format.h>

namespace scission {

enum class ErrorKind { kBadInput, kInternal };

class Error : public std::runtime_error {
 public:
  Error(ErrorKind kind, std::string message);
  ErrorKind kind() const { return kind_; }
  int exit_code() const { return kind_ == ErrorKind::kBadInput ? 2 : 1; }

 private:
  ErrorKind kind_;
};

// Collapses whitespace runs and newlines so every error fits on one line.
std::string OneLine(std::string_view text);

template <typename... Args>
Error BadInput(fmt::format_string<Args...> format, Args&&... args) {
  return Error(ErrorKind::kBadInput, fmt::format(format, std::forward<Args>(args)...));
}

template <typename... Args>
Error Internal(fmt::format_string<Args...> format, Args&&... args) {
  return Error(ErrorKind::kInternal, fmt::format(format, std::forward<Args>(args)...));
}

}  // namespace scission
