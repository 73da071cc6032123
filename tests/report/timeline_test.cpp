// The adaptive-serving timeline: reading the demo's three files (good and malformed), the per-phase
// statistics, the SVG (bands, switch markers, bounded size) and the report section.
#include "report/timeline.h"

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/error.h"
#include "report/html.h"
#include "report/svg.h"
#include "store/store.h"

namespace scission::report {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr double kT0 = 1795568310000;  // the first phase's start, Unix ms

class TimelineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "/timeline_" + std::to_string(::getpid()) + "_" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  std::string Write(const std::string& name, const std::string& bytes) {
    std::string path = dir_ + "/" + name;
    std::ofstream(path, std::ios::binary) << bytes;
    return path;
  }
  // Three phases of 10 s, five requests (one failed with a time, one lost), two switches.
  void WriteGoodRun() {
    Write(kPhasesFile, fmt::format(R"({{"phases":[
      {{"name":"a: device link 100 Mbit/s","start_unix_ms":{0},"end_unix_ms":{1}}},
      {{"name":"b: device link 5 Mbit/s","start_unix_ms":{1},"end_unix_ms":{2}}},
      {{"name":"c: edge CPU <25%> & slow","start_unix_ms":{2},"end_unix_ms":{3}}}]}})",
                                   kT0, kT0 + 10000, kT0 + 20000, kT0 + 30000));
    std::string requests;
    auto line = [&](int i, double at_s, const std::string& latency, const std::string& code) {
      requests +=
          fmt::format(R"({{"id":"lg-1-{}","start_unix_ms":{:.3f},"latency_ms":{},"code":"{}"}})"
                      "\n",
                      i, kT0 + at_s * 1000, latency, code);
    };
    line(1, 1.5, "10.000", "OK");
    line(2, 2.5, "30.000", "OK");
    line(3, 3.0, "20.000", "OK");
    line(4, 12.0, "1500.000", "UNAVAILABLE");
    line(5, 14.0, "null", "LOST");
    line(6, 15.0, "900.000", "OK");
    Write(kRequestsFile, requests);
    Write(
        kSwitchesFile,
        fmt::format(
            R"({{"time_unix_ms":{},"trigger":"link device->edge 95.0 -> 4.9 Mbit/s","from":"device (input only) | edge 0-14","to":"device 0-14","predicted_from_ms":1040.9,"predicted_to_ms":92.8,"predicted_gain":0.91,"pending_ms":5789.4,"install_ms":4764.3,"measured_before_ms":1035.6,"measured_before_requests":2,"measured_after_ms":116.7,"measured_after_requests":20,"measured_gain":0.887}})"
            "\n"
            R"({{"time_unix_ms":{},"trigger":"edge slowdown 1.0 -> 4.0","from":"device 0-14","to":"device 0-3 | edge 4-14","predicted_from_ms":null,"predicted_to_ms":50.0,"predicted_gain":0.25,"pending_ms":1000,"install_ms":null,"measured_before_ms":null,"measured_before_requests":0,"measured_after_ms":null,"measured_after_requests":0,"measured_gain":null}})"
            "\n",
            kT0 + 19500, kT0 + 25000));
  }
  std::string ErrorOf(const std::function<void()>& f) {
    try {
      f();
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::kBadInput);
      return e.what();
    }
    return "(no error)";
  }
  static size_t Count(const std::string& text, const std::string& what) {
    size_t n = 0;
    for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
    return n;
  }
  std::string dir_;
};

TEST_F(TimelineTest, ReadsTheThreeFiles) {
  WriteGoodRun();
  Timeline t = ReadTimeline(dir_);
  EXPECT_EQ(t.source, dir_);
  ASSERT_EQ(t.requests.size(), 6u);
  EXPECT_DOUBLE_EQ(t.requests[0].start_unix_ms, kT0 + 1500);
  EXPECT_EQ(t.requests[0].latency_ms, 10.0);
  EXPECT_TRUE(t.requests[0].ok());
  EXPECT_EQ(t.requests[3].code, "UNAVAILABLE");
  EXPECT_FALSE(t.requests[3].ok());
  EXPECT_EQ(t.requests[3].latency_ms, 1500.0);
  EXPECT_EQ(t.requests[4].latency_ms, std::nullopt);  // LOST: no reply
  ASSERT_EQ(t.phases.size(), 3u);
  EXPECT_EQ(t.phases[1].name, "b: device link 5 Mbit/s");
  EXPECT_DOUBLE_EQ(t.phases[2].end_unix_ms, kT0 + 30000);
  EXPECT_DOUBLE_EQ(t.OriginUnixMs(), kT0);
  ASSERT_EQ(t.switches.size(), 2u);
  EXPECT_EQ(t.switches[0].to, "device 0-14");
  EXPECT_EQ(t.switches[0].from, "device (input only) | edge 0-14");
  EXPECT_EQ(t.switches[0].trigger, "link device->edge 95.0 -> 4.9 Mbit/s");
  EXPECT_EQ(t.switches[0].predicted_gain, 0.91);
  EXPECT_EQ(t.switches[0].measured_gain, 0.887);
  EXPECT_EQ(t.switches[0].install_ms, 4764.3);
  EXPECT_EQ(t.switches[1].measured_gain, std::nullopt);
  EXPECT_EQ(t.switches[1].install_ms, std::nullopt);
}

TEST_F(TimelineTest, SwitchesAndPhasesAreOptionalRequestsAreNot) {
  EXPECT_EQ(ErrorOf([&] { ReadTimeline(dir_); }),
            dir_ + "/" + kRequestsFile + ": no such file (scission loadgen --records writes it)");
  // Blank lines are skipped; the origin is then the first request.
  Write(kRequestsFile,
        "\n"
        R"({"id":"x","start_unix_ms":2000.5,"latency_ms":5,"code":"OK"})"
        "\n\n"
        R"({"id":"y","start_unix_ms":1000.25,"latency_ms":7,"code":"OK"})"
        "\n");
  Timeline t = ReadTimeline(dir_);
  EXPECT_EQ(t.requests.size(), 2u);
  EXPECT_TRUE(t.switches.empty());
  EXPECT_TRUE(t.phases.empty());
  EXPECT_DOUBLE_EQ(t.OriginUnixMs(), 1000.25);
  auto rows = SummarizePhases(t);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].name, "whole run");
  EXPECT_EQ(rows[0].requests, 2u);
}

TEST_F(TimelineTest, MalformedLinesNameTheFileAndLine) {
  const std::string good = R"({"id":"x","start_unix_ms":1000,"latency_ms":5,"code":"OK"})";
  const std::string requests = dir_ + "/" + kRequestsFile;
  struct Case {
    std::string bad_line, error;
  };
  const std::vector<Case> cases = {
      {R"({"id":"x","start_unix_ms":1000,"latency_ms":5,"code":"OK")", "not a JSON object"},
      {"[1,2]", "not a JSON object"},
      {R"({"start_unix_ms":"soon","latency_ms":5,"code":"OK"})",
       "'start_unix_ms' must be a number"},
      {R"({"latency_ms":5,"code":"OK"})", "'start_unix_ms' must be a number"},
      {R"({"start_unix_ms":1000,"latency_ms":"5","code":"OK"})", "'latency_ms' must be a number"},
      {R"({"start_unix_ms":1000,"latency_ms":-5,"code":"OK"})", "'latency_ms' is negative"},
      {R"({"start_unix_ms":1000,"latency_ms":null,"code":"OK"})",
       "an OK request needs 'latency_ms'"},
      {R"({"start_unix_ms":1000,"latency_ms":5,"code":7})", "'code' must be a string"},
      {R"({"start_unix_ms":1000,"latency_ms":5})", "'code' must be a string"},
  };
  for (const auto& c : cases) {
    // The bad line is line 3: blank lines count.
    Write(kRequestsFile, good + "\n\n" + c.bad_line + "\n" + good + "\n");
    EXPECT_EQ(ErrorOf([&] { ReadTimeline(dir_); }), requests + ":3: " + c.error) << c.bad_line;
  }
  Write(kRequestsFile, good + "\n");
  const std::string switches =
      Write(kSwitchesFile, R"({"time_unix_ms":1500,"to":"device 0-3","predicted_gain":0.5})"
                           "\n"
                           R"({"trigger":"t","to":"device 0-3"})"
                           "\n");
  EXPECT_EQ(ErrorOf([&] { ReadTimeline(dir_); }), switches + ":2: 'time_unix_ms' must be a number");
  Write(kSwitchesFile, R"({"time_unix_ms":1500,"to":"d","measured_gain":"big"})");
  EXPECT_EQ(ErrorOf([&] { ReadTimeline(dir_); }),
            switches + ":1: 'measured_gain' must be a number");
  Write(kSwitchesFile, "");
  const std::string phases = Write(kPhasesFile, R"({"phases":[{"name":"a"}]})");
  EXPECT_EQ(ErrorOf([&] { ReadTimeline(dir_); }),
            phases + ": phases[0]: 'start_unix_ms' must be a number");
  Write(kPhasesFile, R"({"phases":[{"name":"a","start_unix_ms":1,"end_unix_ms":2},)"
                     R"({"name":"b","start_unix_ms":3,"end_unix_ms":3}]})");
  EXPECT_EQ(ErrorOf([&] { ReadTimeline(dir_); }),
            phases + ": phases[1]: 'end_unix_ms' is not after 'start_unix_ms'");
  Write(kPhasesFile, R"({"phases":)");
  EXPECT_EQ(ErrorOf([&] { ReadTimeline(dir_); }), phases + ": not a JSON object");
  Write(kPhasesFile, R"({"phase":[]})");
  EXPECT_EQ(ErrorOf([&] { ReadTimeline(dir_); }), phases + ": 'phases' must be an array");
}

TEST_F(TimelineTest, PhaseStatisticsCountRequestsAndErrors) {
  WriteGoodRun();
  // One request before the first phase.
  std::ofstream(dir_ + "/" + kRequestsFile, std::ios::app)
      << fmt::format(R"({{"id":"early","start_unix_ms":{},"latency_ms":8,"code":"OK"}})", kT0 - 5)
      << "\n";
  auto rows = SummarizePhases(ReadTimeline(dir_));
  ASSERT_EQ(rows.size(), 4u);
  EXPECT_EQ(rows[0].name, "a: device link 100 Mbit/s");
  EXPECT_EQ(rows[0].requests, 3u);
  EXPECT_EQ(rows[0].errors, 0u);
  EXPECT_DOUBLE_EQ(rows[0].mean_ms, 20);
  EXPECT_DOUBLE_EQ(rows[0].p50_ms, 20);
  EXPECT_DOUBLE_EQ(rows[0].p95_ms, 29);  // 20 + 0.9 * (30 - 20), closest-rank interpolation
  EXPECT_EQ(rows[1].requests, 3u);
  EXPECT_EQ(rows[1].errors, 2u);
  EXPECT_DOUBLE_EQ(rows[1].mean_ms, 900);  // errors are not in the latency statistics
  EXPECT_EQ(rows[2].requests, 0u);
  EXPECT_TRUE(std::isnan(rows[2].mean_ms));
  EXPECT_EQ(rows[3].name, "outside the phases");
  EXPECT_EQ(rows[3].requests, 1u);
}

TEST_F(TimelineTest, SvgHasOneBandPerPhaseAndOneMarkerPerSwitch) {
  WriteGoodRun();
  std::string svg = TimelineSvg(ReadTimeline(dir_));
  EXPECT_EQ(Count(svg, "<g class='phase'>"), 3u);
  EXPECT_EQ(Count(svg, "<g class='switch'>"), 2u);
  EXPECT_EQ(Count(svg, "<svg"), 1u);
  EXPECT_EQ(Count(svg, "</svg>"), 1u);
  // Every successful request is drawn when there are few; the two failures are crosses.
  EXPECT_EQ(Count(svg, "r='1.8'"), 4u);
  EXPECT_EQ(Count(svg, "failed ("), 2u);
  EXPECT_THAT(svg, HasSubstr("c: edge CPU &lt;25%&gt; &amp; slow"));  // escaped
  EXPECT_THAT(svg, Not(HasSubstr("<25%>")));
  // The label: new layout and predicted gain; the tooltip: trigger and measured gain.
  EXPECT_THAT(svg, HasSubstr(">1: device 0-14 (+91%)</text>"));
  EXPECT_THAT(svg, HasSubstr("trigger: link device-&gt;edge 95.0 -&gt; 4.9 Mbit/s"));
  EXPECT_THAT(svg, HasSubstr("measured gain +89%"));
  EXPECT_THAT(svg, HasSubstr("measured gain n/a"));
  EXPECT_THAT(svg, HasSubstr("seconds since the first phase started"));
  // Decades 10 ms .. 1000 ms on the latency axis.
  EXPECT_THAT(svg, HasSubstr(">10 ms</text>"));
  EXPECT_THAT(svg, HasSubstr(">1000 ms</text>"));
}

TEST_F(TimelineTest, SvgSizeIsBoundedForManyRequests) {
  Timeline t;
  t.phases = {{"a", kT0, kT0 + 600000}, {"b", kT0 + 600000, kT0 + 1200000}};
  // 100k requests over 20 minutes, latencies 5 ms .. 5 s, every 100th failed.
  for (int i = 0; i < 100000; ++i) {
    RequestPoint r;
    r.start_unix_ms = kT0 + i * 12.0;
    r.latency_ms = 5 * std::pow(1000.0, static_cast<double>((i * 7919) % 1000) / 1000);
    r.code = i % 100 == 0 ? "UNAVAILABLE" : "OK";
    t.requests.push_back(r);
  }
  t.switches.push_back({kT0 + 300000, "trigger", "a", "b", 0.5, 0.4, 1000.0});
  std::string svg = TimelineSvg(t);
  EXPECT_LT(svg.size(), 250000u);
  // At most one dot and one range per pixel column, one cross per column.
  EXPECT_LE(Count(svg, "r='1.8'"), 1100u);
  EXPECT_GT(Count(svg, "r='1.8'"), 1000u);
  // The fastest-to-slowest lines: one path, one "M x y V y" per crowded column.
  const size_t ranges = svg.find("<path d='M");
  ASSERT_NE(ranges, std::string::npos);
  const std::string d = svg.substr(ranges, svg.find('\'', ranges + 10) - ranges);
  EXPECT_GT(Count(d, "V"), 1000u);
  EXPECT_LE(Count(d, "V"), 1100u);
  EXPECT_LE(Count(svg, "failed ("), 1100u);
  EXPECT_EQ(Count(svg, "<g class='phase'>"), 2u);
  EXPECT_EQ(Count(svg, "<g class='switch'>"), 1u);
}

TEST_F(TimelineTest, ReportHasTheSectionOnlyWhenAsked) {
  WriteGoodRun();
  const std::string db = dir_ + "/s.db";
  store::Store store(db, store::OpenMode::kWrite);
  ReportOptions options;
  std::string plain = RenderReport(store, options);
  EXPECT_THAT(plain, HasSubstr("Scission report"));
  EXPECT_THAT(plain, Not(HasSubstr("Adaptive serving")));
  options.timeline = ReadTimeline(dir_);
  std::string html = RenderReport(store, options);
  EXPECT_THAT(html, HasSubstr("<h2>Adaptive serving</h2>"));
  EXPECT_EQ(Count(html, "<g class='switch'>"), 2u);
  // The switch table: time since the first phase, trigger, from -> to, gains, install.
  EXPECT_THAT(html, HasSubstr("<td>1</td><td>19.5</td><td>link device-&gt;edge 95.0 -&gt; 4.9 "
                              "Mbit/s</td><td>device (input only) | edge 0-14 &rarr; device "
                              "0-14</td><td>+91.0</td><td>+88.7</td><td>4764</td>"));
  EXPECT_THAT(html, HasSubstr("<td>+25.0</td><td>&ndash;</td><td>&ndash;</td>"));
  // The phase table: requests, errors, mean, p50, p95.
  EXPECT_THAT(html, HasSubstr("<td>a: device link 100 Mbit/s</td><td>3</td><td>0</td><td>20.0</"
                              "td><td>20.0</td><td>29.0</td>"));
  EXPECT_THAT(html, HasSubstr("<td>b: device link 5 Mbit/s</td><td>3</td><td>2</td>"));
  EXPECT_EQ(html.find("<script"), std::string::npos);
}

}  // namespace
}  // namespace scission::report
