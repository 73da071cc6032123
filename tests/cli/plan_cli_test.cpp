#include <cstdlib>
#include <filesystem>
#include <regex>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "cli/run_binary.h"

namespace scission::testing {
namespace {

using ::testing::HasSubstr;

class PlanCli : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "/plancli_" + std::to_string(::getpid()) + "_" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    env_ = {"SCISSION_DB=" + dir_ + "/s.db", "SCISSION_HOME=" + dir_ + "/home"};
    auto r = RunScission({"import-scission", SCISSION_DATA_DIR, "--network",
                          std::string(SCISSION_DATA_DIR) + "/network_stats.csv"},
                         env_);
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  CommandResult Run(const std::vector<std::string>& args) { return RunScission(args, env_); }
  std::string dir_;
  std::vector<std::string> env_;
};

TEST_F(PlanCli, JsonPlansAreRankedAndRespectConstraints) {
  auto r = Run({"plan", "scission:vgg19", "--top", "6", "--privacy", "3", "--max-upload",
                "device=1.7", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto doc = nlohmann::json::parse(r.out);
  ASSERT_EQ(doc["plans"].size(), 6u);
  double previous = 0;
  for (const auto& p : doc["plans"]) {
    double latency = p["latency_ms"];
    EXPECT_GE(latency, previous);
    previous = latency;
    EXPECT_EQ(p["stages"][0]["tier"], "device");
    EXPECT_GE(p["stages"][0]["last_block"].get<int>(), 2);  // privacy: blocks 0..2 on the device
    if (p["hops"].size() > 0) {
      EXPECT_LE(p["hops"][0]["bytes"].get<int64_t>(), 1700000);
    }
    double sum = p["compute_ms"].get<double>() + p["transfer_ms"].get<double>();
    EXPECT_NEAR(sum, latency, 1e-6);
  }
}

TEST_F(PlanCli, ObjectivesParetoAndSvg) {
  auto t = Run({"plan", "scission:resnet50", "--objective", "throughput", "--top", "3", "--json"});
  ASSERT_EQ(t.exit_code, 0) << t.err;
  auto doc = nlohmann::json::parse(t.out);
  ASSERT_EQ(doc["plans"].size(), 3u);
  EXPECT_LE(doc["plans"][0]["bottleneck_ms"].get<double>(),
            doc["plans"][1]["bottleneck_ms"].get<double>());
  auto u = Run({"plan", "scission:resnet50", "--objective", "uplink", "--top", "2", "--json"});
  ASSERT_EQ(u.exit_code, 0) << u.err;
  EXPECT_EQ(nlohmann::json::parse(u.out)["plans"][0]["uplink_bytes"], 0);  // all on the device
  auto p = Run({"plan", "scission:resnet50", "--pareto", "latency,uplink", "--json"});
  ASSERT_EQ(p.exit_code, 0) << p.err;
  auto front = nlohmann::json::parse(p.out)["plans"];
  ASSERT_GE(front.size(), 2u);
  for (size_t i = 1; i < front.size(); ++i) {
    EXPECT_GT(front[i]["uplink_bytes"].get<int64_t>(), front[i - 1]["uplink_bytes"].get<int64_t>());
    EXPECT_LT(front[i]["latency_ms"].get<double>(), front[i - 1]["latency_ms"].get<double>());
  }
  std::string svg = dir_ + "/best.svg";
  auto s = Run({"plan", "scission:resnet50", "--svg", svg});
  ASSERT_EQ(s.exit_code, 0) << s.err;
  auto text = Slurp(svg);
  EXPECT_THAT(text, HasSubstr("<svg"));
  EXPECT_GT(std::count(text.begin(), text.end(), '<'), 20);
}

TEST_F(PlanCli, BadConstraintsAreBadInput) {
  auto expect_error = [&](std::vector<std::string> args, const std::string& what) {
    auto r = Run(args);
    EXPECT_EQ(r.exit_code, 2) << r.out;
    EXPECT_THAT(r.err, HasSubstr(what));
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1);
  };
  expect_error({"plan", "scission:vgg19", "--where", "edge=3,,x"}, "empty criterion");
  expect_error({"plan", "scission:vgg19", "--where", "fog=3"}, "unknown tier 'fog'");
  expect_error({"plan", "scission:vgg19", "-e", "nosuch"}, "unknown resource 'nosuch'");
  expect_error({"plan", "scission:vgg19", "-c", "99"}, "beyond the model's last block 24");
  expect_error({"plan", "scission:vgg19", "--max-time", "edge=soon"}, "is not a time");
  expect_error({"plan", "scission:vgg19", "--objective", "joy"}, "--objective");
  expect_error({"plan", "scission:vgg19", "--max-memory", "raspi4=10"},
               "--max-memory needs the model's ONNX file");
  expect_error({"plan", "nosuchmodel"}, "nosuchmodel: no such model");
  expect_error({"plan", "scission:vgg19", "--privacy", "99"}, "--privacy");
}

// --codecs and --max-output-error fill the request the plan document carries (the store has no
// codec measurements here, so every hop stays raw).
TEST_F(PlanCli, CodecFlagsGoIntoTheRequest) {
  auto r = Run({"plan", "scission:vgg19", "--codecs", "lossless,fp16,zstd", "--max-output-error",
                "0.02", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto doc = nlohmann::json::parse(r.out);
  EXPECT_EQ(doc["request"]["codecs"], nlohmann::json({"none", "lz4", "zstd", "fp16"}));
  EXPECT_EQ(doc["request"]["max_output_error"], 0.02);
  ASSERT_FALSE(doc["plans"].empty());
  for (const auto& hop : doc["plans"][0]["hops"]) {
    EXPECT_EQ(hop["codec"], "none");
    EXPECT_EQ(hop["raw_bytes"], hop["bytes"]);
  }
  EXPECT_EQ(doc["plans"][0]["output_error"], 0);
  auto plain = Run({"plan", "scission:vgg19", "--json"});
  ASSERT_EQ(plain.exit_code, 0) << plain.err;
  auto request = nlohmann::json::parse(plain.out)["request"];
  EXPECT_EQ(request["codecs"], nlohmann::json::array());
  EXPECT_TRUE(request["max_output_error"].is_null());
}

TEST_F(PlanCli, BadCodecFlagsAreBadInput) {
  auto expect_error = [&](std::vector<std::string> args, const std::string& what) {
    auto r = Run(args);
    EXPECT_EQ(r.exit_code, 2) << r.out;
    EXPECT_THAT(r.err, HasSubstr(what));
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1);
  };
  expect_error({"plan", "scission:vgg19", "--codecs", "brotli"},
               "--codecs: unknown codec 'brotli'");
  expect_error({"plan", "scission:vgg19", "--codecs", "zstd,,lz4"}, "--codecs: empty codec name");
  expect_error({"plan", "scission:vgg19", "--codecs", ""}, "--codecs: empty codec name");
  expect_error({"plan", "scission:vgg19", "--max-output-error", "0"}, "--max-output-error: 0 is");
  expect_error({"plan", "scission:vgg19", "--max-output-error", "1.5"}, "(0, 1]");
  expect_error({"plan", "scission:vgg19", "--max-output-error", "nan"}, "--max-output-error");
  expect_error({"plan", "scission:vgg19", "--max-output-error", "x"}, "'x' is not a number");
}

TEST_F(PlanCli, ReportRendersInHeadlessChromium) {
  std::string out = dir_ + "/report.html";
  auto r = Run({"report", "--out", out});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::string html = Slurp(out);
  EXPECT_THAT(html, HasSubstr("Scission report"));
  EXPECT_EQ(html.find("http://") == std::string::npos ||
                html.find("http://www.w3.org/2000/svg") != std::string::npos,
            true);
  EXPECT_EQ(html.find("<script"), std::string::npos);  // self-contained, static
  const char* chromium = "/usr/bin/chromium";
  if (!std::filesystem::exists(chromium)) {
    if (std::getenv("CI")) FAIL() << "chromium is required in CI (scripts/setup.sh installs it)";
    GTEST_SKIP() << "chromium not installed";
  }
  std::string flags =
      "--headless --no-sandbox --disable-gpu --disable-quic --no-first-run "
      "--disable-background-networking --disable-component-update --disable-sync "
      "--user-data-dir=" +
      dir_ + "/chrome ";
  std::string dom = dir_ + "/dom.html", png = dir_ + "/report.png";
  int rc = std::system(("timeout 120 " + std::string(chromium) + " " + flags +
                        "--dump-dom file://" + out + " > " + dom + " 2>/dev/null")
                           .c_str());
  ASSERT_EQ(rc, 0);
  std::string rendered = Slurp(dom);
  // 18 models x 5 resources of profiles plus a best-plan chart per model.
  std::regex svg("<svg");
  auto count = std::distance(std::sregex_iterator(rendered.begin(), rendered.end(), svg),
                             std::sregex_iterator());
  EXPECT_GE(count, 18 * 5 + 18);
  EXPECT_THAT(rendered, HasSubstr("Top plans"));
  EXPECT_THAT(rendered, HasSubstr("raspi4"));
  rc = std::system(("timeout 120 " + std::string(chromium) + " " + flags +
                    "--window-size=1280,2000 --screenshot=" + png + " file://" + out +
                    " >/dev/null 2>&1")
                       .c_str());
  ASSERT_EQ(rc, 0);
  EXPECT_GT(std::filesystem::file_size(png), 20000u);
}

}  // namespace
}  // namespace scission::testing
