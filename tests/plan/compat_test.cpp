#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "cli/run_binary.h"
#include "common/error.h"
#include "plan/scission_compat.h"

namespace scission::plan {
namespace {

using ::testing::HasSubstr;

// Splits a shell-quoted line (single quotes only, as the golden file uses).
std::vector<std::string> ShellWords(const std::string& line) {
  std::vector<std::string> words;
  std::string word;
  bool quoted = false, any = false;
  for (char c : line) {
    if (c == '\'') {
      quoted = !quoted;
      any = true;
    } else if (c == ' ' && !quoted) {
      if (any) words.push_back(word);
      word.clear();
      any = false;
    } else {
      word.push_back(c);
      any = true;
    }
  }
  if (any) words.push_back(word);
  return words;
}

std::string WithoutRank(const std::string& line) {
  auto pos = line.find("] ");
  return line[0] == '[' && pos != std::string::npos ? line.substr(pos + 2) : line;
}

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);)
    if (!l.empty()) lines.push_back(l);
  return lines;
}

// The original orders equal latencies by Python set iteration (random per process), so lines
// with the same latency may swap; everything else must match exactly.
void ExpectSameAnswer(const std::vector<std::string>& expected,
                      const std::vector<std::string>& actual, const std::string& query) {
  ASSERT_EQ(actual.size(), expected.size()) << query;
  std::vector<std::string> e, a;
  for (size_t i = 0; i < expected.size(); ++i) {
    e.push_back(WithoutRank(expected[i]));
    a.push_back(WithoutRank(actual[i]));
    EXPECT_EQ(expected[i].substr(0, expected[i].find("s - ")),
              actual[i].substr(0, actual[i].find("s - ")))
        << query << " rank " << i + 1;
  }
  std::sort(e.begin(), e.end());
  std::sort(a.begin(), a.end());
  EXPECT_EQ(a, e) << query;
}

TEST(ScissionPredict, MatchesTheOriginalToolOnRecordedQueries) {
  std::ifstream golden(std::string(SCISSION_SOURCE_DIR) + "/tests/plan/predict_golden.txt");
  ASSERT_TRUE(golden.good());
  std::string line, query;
  std::vector<std::string> expected;
  int cases = 0;
  auto check = [&] {
    if (query.empty()) return;
    std::vector<std::string> args = {"predict", SCISSION_DATA_DIR};
    for (auto& w : ShellWords(query)) args.push_back(w);
    auto r = testing::RunScission(args);
    ASSERT_EQ(r.exit_code, 0) << query << ": " << r.err;
    ExpectSameAnswer(expected, Lines(r.out), query);
    ++cases;
  };
  while (std::getline(golden, line)) {
    if (line.rfind("#", 0) == 0) continue;
    if (line.rfind("$ ", 0) == 0) {
      check();
      query = line.substr(2);
      expected.clear();
    } else if (!line.empty()) {
      expected.push_back(line);
    }
  }
  check();
  EXPECT_GE(cases, 40);
}

TEST(ScissionPredict, ReadmeExampleExactly) {
  auto r = testing::RunScission({"predict", SCISSION_DATA_DIR, "network_stats.csv", "vgg19", "-d",
                                 "!-1", "-e", "10", "-c", "16"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out,
            "[1] 9.0106s - 2.4087MB - Device(raspi4) = 0 - 6, Edge(vm2Core) = 7 - 11, "
            "Cloud(6700k(GPU)) = 12 - 25\n"
            "[2] 9.0594s - 2.4087MB - Device(raspi4) = 0 - 6, Edge(2500) = 7 - 11, "
            "Cloud(6700k(GPU)) = 12 - 25\n"
            "[3] 9.0721s - 2.4087MB - Device(raspi4) = 0 - 6, Edge(vm2Core) = 7 - 11, "
            "Cloud(6700k(NoGPU)) = 12 - 25\n"
            "[4] 9.1209s - 2.4087MB - Device(raspi4) = 0 - 6, Edge(2500) = 7 - 11, "
            "Cloud(6700k(NoGPU)) = 12 - 25\n"
            "[5] 9.1511s - 3.2115MB - Device(raspi4) = 0 - 6, Edge(vm2Core) = 7 - 12, "
            "Cloud(6700k(GPU)) = 13 - 25\n");
}

TEST(ScissionPredict, CriteriaErrorsAreBadInput) {
  auto error = [](std::vector<std::string> extra) {
    std::vector<std::string> args = {"predict", SCISSION_DATA_DIR, "network_stats.csv", "vgg19"};
    args.insert(args.end(), extra.begin(), extra.end());
    auto r = testing::RunScission(args);
    EXPECT_EQ(r.exit_code, 2) << r.out;
    return r.err;
  };
  EXPECT_THAT(error({"-d", "3,,x!"}), HasSubstr("-d: empty criterion"));
  EXPECT_THAT(error({"-d", "x!"}), HasSubstr("-d: unknown system 'x!'"));
  EXPECT_THAT(error({"-e", "nosuch"}),
              HasSubstr("-e: unknown system 'nosuch' (this tier has: 2500, vm2Core)"));
  EXPECT_THAT(error({"-c", "99"}), HasSubstr("-c: layer 99 is beyond the model's last layer 25"));
  EXPECT_THAT(error({"-c", "!"}), HasSubstr("'!' without"));
  EXPECT_THAT(error({"--device-time", "fast"}), HasSubstr("--device-time"));
  EXPECT_THAT(error({"--result-count", "0"}), HasSubstr("--result-count"));
  auto r = testing::RunScission({"predict", SCISSION_DATA_DIR, "network_stats.csv", "nosuchmodel"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("model 'nosuchmodel' is not in"));
}

TEST(ScissionPredict, InputSizeMustBeFiniteAndSane) {
  auto systems = store::LoadScissionDirectory(SCISSION_DATA_DIR);
  auto links = store::LoadNetworkCsv(std::string(SCISSION_DATA_DIR) + "/network_stats.csv");
  for (double bad : {std::nan(""), HUGE_VAL, 1e308, -0.5}) {
    CompatQuery query;
    query.model = "vgg19";
    query.input_mb = bad;
    // inf and 1e308 used to rank plans with an infinite transfer time instead of refusing.
    EXPECT_THAT([&] { PredictCompat(systems, links, query); },
                ::testing::ThrowsMessage<Error>(HasSubstr("-i: ")))
        << bad;
  }
}

TEST(ScissionPredict, NoResultsLine) {
  auto r = testing::RunScission({"predict", SCISSION_DATA_DIR, "network_stats.csv", "vgg19", "-d",
                                 "-1", "-c", "-1", "-e", "-1"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.out, "No results for the specified configuration\n");
}

TEST(ScissionPredict, ModelNameIsCaseInsensitiveAndJsonHasEveryTier) {
  auto r = testing::RunScission({"predict", SCISSION_DATA_DIR, "network_stats.csv", "VGG19",
                                 "--result-count", "2", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("\"latency_s\""));
  EXPECT_THAT(r.out, HasSubstr("\"cloud\""));
}

}  // namespace
}  // namespace scission::plan
