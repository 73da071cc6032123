// Runs the scission binary as a user would and captures exit code, stdout and stderr; BinaryTest
// is the fixture CLI tests share (a fresh store and home per test, the bad-input contract).
#pragma once

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace scission::testing {

struct CommandResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

inline std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Starts the binary in the background; stdout goes to `out`, stderr to `err` (same file when `err`
// is empty; "" for `out` = /dev/null).
inline pid_t SpawnScission(const std::vector<std::string>& args,
                           const std::vector<std::string>& env, const std::string& out,
                           const std::string& err = "") {
  pid_t pid = ::fork();
  if (pid == 0) {
    for (const auto& e : env) ::putenv(const_cast<char*>(e.c_str()));
    int fd = out.empty() ? ::open("/dev/null", O_WRONLY)
                         : ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int efd = err.empty() ? fd : ::open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(::open("/dev/null", O_RDONLY), 0);
    ::dup2(fd, 1);
    ::dup2(efd, 2);
    std::vector<char*> argv;
    std::string binary = SCISSION_BINARY;
    argv.push_back(binary.data());
    std::vector<std::string> copy = args;
    for (auto& a : copy) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv(binary.c_str(), argv.data());
    ::_exit(127);
  }
  return pid;
}

// `env` entries are NAME=VALUE added to the current environment.
inline CommandResult RunScission(const std::vector<std::string>& args,
                                 const std::vector<std::string>& env = {}) {
  static int counter = 0;
  std::string base =
      ::testing::TempDir() + "/run_" + std::to_string(::getpid()) + "_" + std::to_string(counter++);
  std::string out_path = base + ".out", err_path = base + ".err";
  pid_t pid = SpawnScission(args, env, out_path, err_path);
  int status = 0;
  ::waitpid(pid, &status, 0);
  CommandResult r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.out = Slurp(out_path);
  r.err = Slurp(err_path);
  std::filesystem::remove(out_path);
  std::filesystem::remove(err_path);
  return r;
}

// Each test gets its own directory `dir_` (named `<prefix>_<pid>_<test>`, emptied first) holding
// its store (SCISSION_DB) and SCISSION_HOME, so no test sees another's state; Run passes that
// environment to the binary.
class BinaryTest : public ::testing::Test {
 protected:
  explicit BinaryTest(std::string prefix) : prefix_(std::move(prefix)) {}
  void SetUp() override {
    dir_ = ::testing::TempDir() + "/" + prefix_ + "_" + std::to_string(::getpid()) + "_" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    env_ = {"SCISSION_DB=" + dir_ + "/s.db", "SCISSION_HOME=" + dir_ + "/home"};
  }
  CommandResult Run(const std::vector<std::string>& args) { return RunScission(args, env_); }
  // A bad-input run: exit 2 and exactly one `error: <prefix>...` line. Returns stderr.
  std::string ExpectBadInput(const std::vector<std::string>& args, const std::string& prefix) {
    std::string command = "scission";
    for (const auto& a : args) command += " " + a;
    SCOPED_TRACE(command);
    auto r = Run(args);
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_THAT(r.err, ::testing::StartsWith("error: " + prefix)) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    return r.err;
  }

  std::string dir_;
  std::vector<std::string> env_;

 private:
  std::string prefix_;
};

}  // namespace scission::testing
