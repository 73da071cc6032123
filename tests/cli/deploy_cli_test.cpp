// Process-level tests of the distributed verbs on loopback: probe, fleet benchmark, plan, run,
// and killing a worker in the middle of a run.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "cli/run_binary.h"
#include "graph/graph_builder.h"

namespace scission::testing {
namespace {

using ::testing::HasSubstr;

class DeployCli : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "/deploycli_" + std::to_string(::getpid()) + "_" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    env_ = {"SCISSION_DB=" + dir_ + "/s.db", "SCISSION_HOME=" + dir_ + "/home"};
    model_ = dir_ + "/chain.onnx";
    std::ofstream(model_, std::ios::binary) << ChainModel(8).SerializeAsString();
  }
  void TearDown() override {
    for (pid_t pid : workers_) {
      if (pid <= 0) continue;
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
  }
  pid_t Spawn(const std::vector<std::string>& args, const std::string& log) {
    return SpawnScission(args, env_, log);
  }
  // Starts a worker on a free port (port 0: the kernel picks one, so parallel runs of these
  // tests never collide) and returns its address once it listens.
  std::string StartWorker(const std::string& name, const std::string& tier) {
    const std::string log = dir_ + "/" + name + "." + std::to_string(workers_.size()) + ".log";
    workers_.push_back(Spawn(
        {"worker", "--listen", "127.0.0.1:0", "--resource", name, "--tier", tier, "--threads", "1"},
        log));
    for (int i = 0; i < 100; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      std::string text = Slurp(log);
      auto at = text.find("(port ");
      if (at != std::string::npos)
        return "127.0.0.1:" + std::to_string(std::atoi(text.c_str() + at + 6));
    }
    ADD_FAILURE() << "worker " << name << " did not start: " << Slurp(log);
    return "127.0.0.1:1";
  }
  CommandResult Run(const std::vector<std::string>& args) { return RunScission(args, env_); }
  void Prepare(const std::string& edge, const std::string& cloud) {
    ASSERT_EQ(Run({"benchmark", model_, "--resource", "dev", "--tier", "device", "--repeats", "3",
                   "--warmup", "1", "--threads", "1"})
                  .exit_code,
              0);
    auto fleet = Run({"fleet", "benchmark", model_, "--workers", "edge=" + edge + ",cloud=" + cloud,
                      "--repeats", "3", "--warmup", "1", "--json"});
    ASSERT_EQ(fleet.exit_code, 0) << fleet.err;
    auto probe =
        Run({"probe", edge, "--from", "dev", "--pings", "5", "--min-transfer-ms", "20", "--json"});
    ASSERT_EQ(probe.exit_code, 0) << probe.err;
    auto link = nlohmann::json::parse(probe.out);
    EXPECT_GT(link["upload_mbps"].get<double>(), 10.0);
    EXPECT_GT(link["rtt_ms"].get<double>(), 0.0);
    ASSERT_EQ(
        Run({"probe", cloud, "--from", "dev", "--pings", "5", "--min-transfer-ms", "20"}).exit_code,
        0);
    ASSERT_EQ(
        Run({"network", "set", "edge", "cloud", "--rtt-ms", "0.2", "--mbps", "1000"}).exit_code, 0);
  }
  std::string dir_, model_;
  std::vector<std::string> env_;
  std::vector<pid_t> workers_;
};

TEST_F(DeployCli, PlanRunsAcrossWorkersWithPredictedAndMeasured) {
  auto edge = StartWorker("edge", "edge"), cloud = StartWorker("cloud", "cloud");
  Prepare(edge, cloud);
  auto plan = Run({"plan", model_, "-e", "!-1", "-c", "!-1", "--top", "2", "--json"});
  ASSERT_EQ(plan.exit_code, 0) << plan.err;
  std::ofstream(dir_ + "/plan.json") << plan.out;
  auto run =
      Run({"run", "--plan", dir_ + "/plan.json", "--workers", "edge=" + edge + ",cloud=" + cloud,
           "--requests", "20", "--concurrency", "2", "--json"});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  auto doc = nlohmann::json::parse(run.out);
  EXPECT_EQ(doc["ok"], 20);
  EXPECT_EQ(doc["failed"], 0);
  ASSERT_EQ(doc["stages"].size(), 3u);
  ASSERT_EQ(doc["hops"].size(), 2u);
  for (const auto& s : doc["stages"]) {
    if (s["predicted_ms"].get<double>() > 0) {  // an input-only device stage computes nothing
      EXPECT_GT(s["median_ms"].get<double>(), 0.0);
    }
  }
  EXPECT_GT(doc["total"]["median_ms"].get<double>(), 0.0);
  EXPECT_GT(doc["throughput_per_s"].get<double>(), 0.0);
  auto text = Run({"run", "--plan", dir_ + "/plan.json", "--workers",
                   "edge=" + edge + ",cloud=" + cloud, "--requests", "5"});
  EXPECT_THAT(text.out, HasSubstr("predicted ms"));
  EXPECT_THAT(text.out, HasSubstr("5 ok, 0 failed"));
  // A worker missing from --workers, and an unreachable one, are one-line errors.
  auto missing = Run({"run", "--plan", dir_ + "/plan.json", "--workers", "edge=" + edge});
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_THAT(missing.err, HasSubstr("no address for resource 'cloud'"));
  auto dead = Run({"probe", "127.0.0.1:1", "--from", "dev"});
  EXPECT_EQ(dead.exit_code, 2);
  EXPECT_THAT(dead.err, HasSubstr("unreachable"));
}

TEST_F(DeployCli, KillingTheEdgeWorkerMidRunLosesNoRequest) {
  auto edge = StartWorker("edge", "edge"), cloud = StartWorker("cloud", "cloud");
  Prepare(edge, cloud);
  auto plan = Run({"plan", model_, "-e", "!-1", "--top", "1", "--json"});
  ASSERT_EQ(plan.exit_code, 0) << plan.err;
  std::ofstream(dir_ + "/plan.json") << plan.out;
  for (bool fallback : {false, true}) {
    if (fallback) edge = StartWorker("edge", "edge");  // the first edge worker is dead
    std::vector<std::string> args = {"run",
                                     "--plan",
                                     dir_ + "/plan.json",
                                     "--workers",
                                     "edge=" + edge + ",cloud=" + cloud,
                                     "--requests",
                                     "60000",
                                     "--timeout-ms",
                                     "5000",
                                     "--json"};
    if (fallback) {
      args.push_back("--fallback");
      args.push_back("replan");
    }
    std::string out = dir_ + (fallback ? "/run_fallback.json" : "/run.json");
    std::vector<std::string> with_db = args;
    pid_t runner = Spawn(with_db, out);
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    pid_t& victim = workers_[fallback ? workers_.size() - 1 : 0];  // the current edge worker
    ::kill(victim, SIGKILL);
    ::waitpid(victim, nullptr, 0);
    victim = -1;
    int status = 0;
    ::waitpid(runner, &status, 0);
    ASSERT_TRUE(WIFEXITED(status)) << Slurp(out);
    ASSERT_EQ(WEXITSTATUS(status), 0) << Slurp(out);
    std::string text = Slurp(out);
    auto doc = nlohmann::json::parse(text.substr(text.find('{')));
    EXPECT_EQ(doc["ok"].get<int>() + doc["failed"].get<int>(), 60000)
        << "every request ends with a result or an error";
    if (fallback) {
      EXPECT_GE(doc["replans"].get<int>(), 1);
      EXPECT_GT(doc["ok"].get<int>(), 0);
      EXPECT_LE(doc["failed"].get<int>(), 1);  // at most the request in flight when it died
    } else {
      EXPECT_GT(doc["failed"].get<int>(), 0) << text;
      EXPECT_FALSE(doc["errors"].empty());
    }
  }
}

}  // namespace
}  // namespace scission::testing
