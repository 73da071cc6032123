// `scission report --timeline DIR` as a user runs it: the adaptive-serving section from the demo's
// files, and the one-line exit-2 contract for a bad directory or a malformed file.

#include <filesystem>
#include <fstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "cli/run_binary.h"

namespace scission::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

class ReportCli : public BinaryTest {
 protected:
  ReportCli() : BinaryTest("report_cli") {}
  void SetUp() override {
    BinaryTest::SetUp();
    std::filesystem::create_directories(dir_ + "/run");
  }
  std::string Write(const std::string& name, const std::string& bytes) {
    std::string path = dir_ + "/" + name;
    std::ofstream(path, std::ios::binary) << bytes;
    return path;
  }
};

TEST_F(ReportCli, TimelineOfAnAdaptiveRun) {
  Write("run/adaptive-phases.json",
        R"({"phases":[{"name":"a: fast link","start_unix_ms":1000000,"end_unix_ms":1010000},)"
        R"({"name":"b: slow link","start_unix_ms":1010000,"end_unix_ms":1020000}]})");
  std::string requests;
  for (int i = 0; i < 200; ++i)
    requests += "{\"id\":\"lg-" + std::to_string(i) +
                "\",\"start_unix_ms\":" + std::to_string(1000000 + i * 100) +
                ".5,\"latency_ms\":" + (i < 100 ? "12.5" : "480.25") + ",\"code\":\"" +
                (i % 50 == 7 ? "UNAVAILABLE" : "OK") + "\"}\n";
  Write("run/adaptive-requests.jsonl", requests);
  Write("run/adaptive-switches.jsonl",
        R"({"time_unix_ms":1013000,"trigger":"link device->edge 95.0 -> 4.9 Mbit/s",)"
        R"("from":"device (input only) | edge 0-14","to":"device 0-14","predicted_gain":0.91,)"
        R"("install_ms":1200,"measured_gain":null})"
        "\n");
  const std::string out = dir_ + "/report.html";
  auto r = Run({"report", "--out", out, "--timeline", dir_ + "/run"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::string html = Slurp(out);
  EXPECT_THAT(html, HasSubstr("<h2>Adaptive serving</h2>"));
  EXPECT_THAT(html,
              HasSubstr("200 requests (4 failed) &middot; 2 phases &middot; 1 plan switches"));
  EXPECT_THAT(html, HasSubstr("<g class='switch'>"));
  EXPECT_THAT(html, HasSubstr("<td>a: fast link</td><td>100</td><td>2</td><td>12.5</td>"));
  EXPECT_THAT(html, HasSubstr("<td>1</td><td>13.0</td>"));
  // Without --timeline, the report is as before.
  r = Run({"report", "--out", out});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(Slurp(out), Not(HasSubstr("Adaptive serving")));
}

TEST_F(ReportCli, BadTimelineGetsOneLineAndExitTwo) {
  const std::string out = dir_ + "/report.html";
  ExpectBadInput({"report", "--out", out, "--timeline", "/nonexistent_scission_test"},
                 "--timeline: /nonexistent_scission_test is not a directory");
  ExpectBadInput({"report", "--out", out, "--timeline", dir_ + "/run"},
                 dir_ + "/run/adaptive-requests.jsonl: no such file");
  Write("run/adaptive-requests.jsonl",
        "{\"id\":\"a\",\"start_unix_ms\":1,\"latency_ms\":2,\"code\":\"OK\"}\n{\"id\":\"b\",\n");
  ExpectBadInput({"report", "--out", out, "--timeline", dir_ + "/run"},
                 dir_ + "/run/adaptive-requests.jsonl:2: not a JSON object");
  Write("run/adaptive-requests.jsonl",
        "{\"id\":\"a\",\"start_unix_ms\":1,\"latency_ms\":2,\"code\":\"OK\"}\n");
  Write("run/adaptive-switches.jsonl", "{\"to\":\"x\"}\n");
  ExpectBadInput({"report", "--out", out, "--timeline", dir_ + "/run"},
                 dir_ + "/run/adaptive-switches.jsonl:1: 'time_unix_ms' must be a number");
  EXPECT_FALSE(std::filesystem::exists(out));  // nothing written on bad input
}

}  // namespace
}  // namespace scission::testing
