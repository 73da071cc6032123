#include "cli/common.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <iostream>
#include <thread>

#include <fmt/format.h>

#include "codec/codec.h"
#include "common/files.h"

namespace scission::cli {

std::string GlobalOptions::DbPath() const { return db.empty() ? DefaultDbPath() : db; }

void AddGlobalFlags(CLI::App* command, GlobalOptions& global) {
  command->add_flag("--json", global.json, "print one JSON document on stdout");
  command->add_option("--db", global.db,
                      "database (default $SCISSION_DB or ~/.local/share/scission/scission.db)");
}

void AddInputFlags(CLI::App* cmd, InputFlags& flags, bool with_values, bool with_cuts) {
  if (with_cuts)
    cmd->add_option("--max-cut-tensors", flags.max_cut_tensors,
                    "most live tensors a block boundary may carry (1..64, default 4; 1 = "
                    "single-tensor cuts only; benchmark and run must agree)");
  cmd->add_option("--shape", flags.shapes,
                  "NAME=1x3x640x640: an input's shape (repeatable; fixes dynamic dimensions)");
  if (with_values)
    cmd->add_option("--input", flags.files,
                    "NAME=FILE.npy: an input's values (repeatable; NumPy .npy, C order; "
                    "otherwise floats uniform in [0, 1), integers 0, bools false)");
}

std::vector<std::string> CodecsToMeasure(const std::string& text) {
  std::vector<std::string> names;
  for (auto& name : codec::ParseList(text, "--codecs"))
    if (name != "none") names.push_back(std::move(name));
  return names;
}

void Table::Print() const {
  std::vector<size_t> width(header_.size(), 0);
  auto measure = [&](const std::vector<std::string>& row) {
    for (size_t i = 0; i < row.size() && i < width.size(); ++i)
      width[i] = std::max(width[i], row[i].size());
  };
  measure(header_);
  for (const auto& row : rows_) measure(row);
  auto print = [&](const std::vector<std::string>& row) {
    std::string line;
    for (size_t i = 0; i < row.size() && i < width.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line += std::string(width[i] - row[i].size() + 2, ' ');
    }
    std::cout << line << "\n";
  };
  print(header_);
  for (const auto& row : rows_) print(row);
}

// Text from the store or a model file may hold invalid UTF-8; print U+FFFD instead of failing.
void PrintJson(const nlohmann::ordered_json& doc) {
  std::cout << doc.dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace) << "\n";
}

void Note(const std::string& message) { std::cerr << message << "\n"; }

bool StderrIsTerminal() { return ::isatty(STDERR_FILENO) == 1; }

namespace {
sigset_t StopSignals() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  return signals;
}
}  // namespace

void BlockStopSignals() {
  sigset_t signals = StopSignals();
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
}

void ServeUntilStopped(const std::function<void()>& stop, const std::function<void()>& wait) {
  std::thread stopper([stop] {
    sigset_t signals = StopSignals();
    int sig = 0;
    sigwait(&signals, &sig);
    stop();
  });
  wait();
  stopper.detach();
}

}  // namespace scission::cli
