// Process-level tests of the distributed verbs on loopback: probe, fleet benchmark, plan, run,
// and killing a worker in the middle of a run.
#include <fcntl.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <set>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "cli/run_binary.h"
#include "common/npy.h"
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

// Benchmarks (local and fleet) measure every codec; on a slow link the planner sends the cut in a
// codec, and `run` applies it on the wire and reports its encode/decode beside the prediction.
TEST_F(DeployCli, CodecsPlannedForASlowLinkAreAppliedOnTheWire) {
  auto edge = StartWorker("edge", "edge"), cloud = StartWorker("cloud", "cloud");
  Prepare(edge, cloud);  // lossless codecs (the default) measured everywhere
  auto exported = nlohmann::json::parse(Run({"export", "--format", "json"}).out);
  std::set<std::string> measured_on, codecs;
  for (const auto& c : exported["codecs"]) {
    measured_on.insert(c["resource"].get<std::string>());
    codecs.insert(c["codec"].get<std::string>());
  }
  EXPECT_EQ(measured_on, (std::set<std::string>{"cloud", "dev", "edge"}));
  EXPECT_EQ(codecs, (std::set<std::string>{"lz4", "zstd"}));
  // The lossy ones too, with their fidelity, on the device and the edge.
  ASSERT_EQ(Run({"benchmark", model_, "--resource", "dev", "--tier", "device", "--repeats", "2",
                 "--warmup", "1", "--threads", "1", "--codecs", "all"})
                .exit_code,
            0);
  auto fleet = Run({"fleet", "benchmark", model_, "--workers", "edge=" + edge, "--repeats", "2",
                    "--warmup", "1", "--codecs", "all"});
  ASSERT_EQ(fleet.exit_code, 0) << fleet.err;
  ASSERT_EQ(Run({"network", "set", "dev", "edge", "--rtt-ms", "0.2", "--mbps", "2"}).exit_code, 0);
  // The device runs the first block, the edge the rest: the cut crosses the 2 Mbit/s link.
  auto plan = Run({"plan", model_, "-d", "0,!1", "-e", "!-1", "-c", "-1", "--top", "1",
                   "--max-output-error", "0.05", "--json"});
  ASSERT_EQ(plan.exit_code, 0) << plan.err;
  auto doc = nlohmann::json::parse(plan.out);
  ASSERT_EQ(doc["plans"][0]["hops"].size(), 1u);
  const auto& hop = doc["plans"][0]["hops"][0];
  const std::string codec = hop["codec"];
  EXPECT_NE(codec, "none");
  EXPECT_LT(hop["bytes"].get<int64_t>(), hop["raw_bytes"].get<int64_t>());
  std::ofstream(dir_ + "/plan.json") << plan.out;
  auto run = Run({"run", "--plan", dir_ + "/plan.json", "--workers", "edge=" + edge, "--requests",
                  "5", "--json"});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  auto r = nlohmann::json::parse(run.out);
  EXPECT_EQ(r["ok"], 5);
  ASSERT_EQ(r["hops"].size(), 1u);
  EXPECT_EQ(r["hops"][0]["codec"], codec);
  EXPECT_GT(r["hops"][0]["encode_ms"].get<double>(), 0);
  EXPECT_GT(r["hops"][0]["decode_ms"].get<double>(), 0);
  EXPECT_GT(r["hops"][0]["predicted_encode_ms"].get<double>(), 0);
  auto text =
      Run({"run", "--plan", dir_ + "/plan.json", "--workers", "edge=" + edge, "--requests", "2"});
  EXPECT_THAT(text.out, HasSubstr("hop dev->edge in " + codec));
  // A plan file naming a codec this Scission does not know: one line, exit 2, nothing loaded.
  auto forged = doc;
  forged["plans"][0]["hops"][0]["codec"] = "gzip";
  std::ofstream(dir_ + "/forged.json") << forged.dump();
  auto refused =
      Run({"run", "--plan", dir_ + "/forged.json", "--workers", "edge=" + edge, "--requests", "1"});
  EXPECT_EQ(refused.exit_code, 2) << refused.err;
  EXPECT_THAT(refused.err, HasSubstr("unknown codec 'gzip'"));
  // Raw only: the same layout sends raw bytes.
  auto raw = Run({"plan", model_, "-d", "0,!1", "-e", "!-1", "-c", "-1", "--top", "1", "--codecs",
                  "none", "--json"});
  ASSERT_EQ(raw.exit_code, 0) << raw.err;
  EXPECT_EQ(nlohmann::json::parse(raw.out)["plans"][0]["hops"][0]["codec"], "none");
  // A lossless hop costs the outputs nothing, and run measures nothing.
  if (codec == "lz4" || codec == "zstd") {
    EXPECT_FALSE(r.contains("measured_output_error")) << run.out;
  }
  // int8 where it is asked for: run measures what it cost the model's outputs, one answer against
  // the whole model run locally, next to the benchmark's prediction.
  auto int8 = Run({"plan", model_, "-d", "0,!1", "-e", "!-1", "-c", "-1", "--top", "1", "--codecs",
                   "int8", "--json"});
  ASSERT_EQ(int8.exit_code, 0) << int8.err;
  auto int8_doc = nlohmann::json::parse(int8.out);
  ASSERT_EQ(int8_doc["plans"][0]["hops"][0]["codec"], "int8");
  const double predicted = int8_doc["plans"][0]["output_error"];
  EXPECT_GT(predicted, 0);
  std::ofstream(dir_ + "/int8.json") << int8.out;
  auto lossy_run = Run({"run", "--plan", dir_ + "/int8.json", "--workers", "edge=" + edge,
                        "--requests", "3", "--json"});
  ASSERT_EQ(lossy_run.exit_code, 0) << lossy_run.err;
  auto measured = nlohmann::json::parse(lossy_run.out)["measured_output_error"];
  ASSERT_TRUE(measured.is_object()) << lossy_run.out;
  EXPECT_EQ(measured["predicted_rel_l2"], predicted);
  EXPECT_GT(measured["rel_l2"].get<double>(), 0);
  EXPECT_LT(measured["rel_l2"].get<double>(), 0.05);
  // The benchmark measured the prediction on the same generated input: they agree.
  EXPECT_NEAR(measured["rel_l2"].get<double>(), predicted, 0.1 * predicted);
  EXPECT_GT(measured["max_abs"].get<double>(), 0);
  std::printf("int8 at the cut: output relative L2 %.3g measured, %.3g predicted\n",
              measured["rel_l2"].get<double>(), predicted);
  auto lossy_text =
      Run({"run", "--plan", dir_ + "/int8.json", "--workers", "edge=" + edge, "--requests", "1"});
  EXPECT_THAT(lossy_text.out, HasSubstr("output error of the lossy codecs: relative L2"));
}

// A worker's limits out of range are one-line errors (exit 2) before it listens.
TEST_F(DeployCli, WorkerLimitsOutOfRangeAreOneLineErrors) {
  const std::vector<std::string> base = {"worker", "--listen", "127.0.0.1:0", "--resource",
                                         "w",      "--tier",   "edge"};
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"--max-transport-mb", "2"}, "--max-transport-mb must be at least 4"},
      {{"--max-transport-mb", "0"}, "--max-transport-mb must be 1..2^30"},
      {{"--max-tensor-mb", "0"}, "--max-tensor-mb must be 1..2^30"},
      {{"--max-segments", "0"}, "--max-segments must be 1..4096"},
  };
  for (const auto& [flags, message] : cases) {
    auto args = base;
    args.insert(args.end(), flags.begin(), flags.end());
    auto r = Run(args);
    EXPECT_EQ(r.exit_code, 2) << flags[0] << " " << flags[1];
    EXPECT_THAT(r.err, HasSubstr(message));
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  }
}

// A `run` whose edge worker was killed 1.5 s in: its JSON summary and stderr.
struct KilledRun {
  nlohmann::json doc;
  std::string err;
};

// A model with dynamic height and width, benchmarked on a worker at --shape: the worker runs
// those shapes and this machine's blocks, the profile is stored under the shapes, and `run` loads
// the same blocks there.
TEST_F(DeployCli, FleetBenchmarkAndRunAtAGivenShape) {
  auto proto = ChainModel(8);
  for (auto* value :
       {proto.mutable_graph()->mutable_input(0), proto.mutable_graph()->mutable_output(0)})
    for (int d : {2, 3})
      value->mutable_type()->mutable_tensor_type()->mutable_shape()->mutable_dim(d)->set_dim_param(
          d == 2 ? "H" : "W");
  const std::string model = dir_ + "/dynamic.onnx";
  std::ofstream(model, std::ios::binary) << proto.SerializeAsString();
  auto edge = StartWorker("edge", "edge");
  const std::string workers = "edge=" + edge;
  auto unshaped = Run({"fleet", "benchmark", model, "--workers", workers, "--repeats", "2"});
  EXPECT_EQ(unshaped.exit_code, 2);
  EXPECT_THAT(unshaped.err, HasSubstr("--shape"));
  EXPECT_EQ(std::count(unshaped.err.begin(), unshaped.err.end(), '\n'), 1) << unshaped.err;

  ASSERT_EQ(Run({"benchmark", model, "--resource", "dev", "--tier", "device", "--repeats", "2",
                 "--warmup", "1", "--threads", "1", "--shape", "x=1x4x24x24"})
                .exit_code,
            0);
  auto fleet = Run({"fleet", "benchmark", model, "--workers", workers, "--repeats", "2", "--warmup",
                    "1", "--shape", "x=1x4x24x24", "--max-cut-tensors", "1", "--json"});
  ASSERT_EQ(fleet.exit_code, 0) << fleet.err;
  auto exported = Run({"export", "--format", "json"});
  ASSERT_EQ(exported.exit_code, 0) << exported.err;
  int edge_rows = 0;
  std::set<std::string> partitions;
  const auto rows = nlohmann::json::parse(exported.out)["measurements"];
  for (const auto& row : rows) {
    EXPECT_EQ(row["input_shapes"], "x=1x4x24x24");
    partitions.insert(row["partition"].get<std::string>());
    edge_rows += row["resource"] == "edge";
  }
  EXPECT_GT(edge_rows, 2);
  // --max-cut-tensors 1 leaves this chain's blocks as they are: one partition for both runs.
  EXPECT_EQ(partitions.size(), 1u);
  ASSERT_EQ(
      Run({"probe", edge, "--from", "dev", "--pings", "3", "--min-transfer-ms", "10"}).exit_code,
      0);
  auto plan = Run({"plan", model, "--shape", "x=1x4x24x24", "-e", "!-1", "--top", "1", "--json"});
  ASSERT_EQ(plan.exit_code, 0) << plan.err;
  std::ofstream(dir_ + "/plan.json") << plan.out;
  auto run = Run(
      {"run", "--plan", dir_ + "/plan.json", "--workers", workers, "--requests", "4", "--json"});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  auto doc = nlohmann::json::parse(run.out);
  EXPECT_EQ(doc["ok"], 4);
  EXPECT_EQ(doc["failed"], 0);
}

// --input values reach the workers: here they decide an output's size (Tile by `reps`), which
// the worker's measurements report; generated values (zeros) would give an empty output.
TEST_F(DeployCli, FleetBenchmarkSendsInputValues) {
  GraphBuilder g;
  g.Input("x", {1, 4}).Input("reps", {2}, onnx::TensorProto::INT64);
  g.Node("Relu", {"x"}, {"r"}).Node("Tile", {"r", "reps"}, {"t"}).Node("Exp", {"t"}, {"y"});
  g.Output("y", {-1, -1});
  auto proto = g.Build();
  proto.mutable_graph()
      ->mutable_input(0)
      ->mutable_type()
      ->mutable_tensor_type()
      ->mutable_shape()
      ->mutable_dim(1)
      ->set_dim_param("N");
  const std::string model = dir_ + "/tile.onnx";
  std::ofstream(model, std::ios::binary) << proto.SerializeAsString();
  Tensor reps{{"reps", DType::kInt64, {2}}, {}};
  const int64_t values[2] = {3, 5};
  reps.data.assign(reinterpret_cast<const uint8_t*>(values),
                   reinterpret_cast<const uint8_t*>(values) + sizeof(values));
  std::ofstream(dir_ + "/reps.npy", std::ios::binary) << SerializeNpy(reps);
  auto edge = StartWorker("edge", "edge");
  auto fleet =
      Run({"fleet", "benchmark", model, "--workers", "edge=" + edge, "--repeats", "2", "--warmup",
           "1", "--shape", "x=1x4", "--input", "reps=" + dir_ + "/reps.npy", "--json"});
  ASSERT_EQ(fleet.exit_code, 0) << fleet.err;
  auto exported = Run({"export", "--format", "json"});
  ASSERT_EQ(exported.exit_code, 0) << exported.err;
  const auto rows = nlohmann::json::parse(exported.out)["measurements"];
  ASSERT_FALSE(rows.empty());
  int last_block = -1;
  int64_t last_bytes = 0;
  for (const auto& row : rows) {
    EXPECT_THAT(row["inputs"].get<std::string>(), HasSubstr("reps.npy"));
    if (row["block"].get<int>() > last_block) {
      last_block = row["block"];
      last_bytes = row["output_bytes"];
    }
  }
  EXPECT_GE(last_block, 0);
  EXPECT_EQ(last_bytes, 3 * 20 * 4);  // y is [3, 20] floats as measured on the worker
  // Values beyond what one request carries: said, with the way out.
  Tensor big{{"x", DType::kFloat, {1, 300000}}, std::vector<uint8_t>(1200000, 0)};
  std::ofstream(dir_ + "/x.npy", std::ios::binary) << SerializeNpy(big);
  auto too_big = Run({"fleet", "benchmark", model, "--workers", "edge=" + edge, "--input",
                      "x=" + dir_ + "/x.npy", "--input", "reps=" + dir_ + "/reps.npy"});
  EXPECT_EQ(too_big.exit_code, 2);
  EXPECT_THAT(too_big.err, HasSubstr("scission benchmark --input"));
}

TEST_F(DeployCli, KillingTheEdgeWorkerMidRunLosesNoRequestAndReplansWithinTheConstraints) {
  auto edge = StartWorker("edge", "edge"), cloud = StartWorker("cloud", "cloud");
  Prepare(edge, cloud);
  const int kPrivacy = 3;
  // Make the device slow (50 ms a block) so that, without constraints, the best plan sends the
  // raw input away: a re-plan that forgot --privacy would then break it.
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open((dir_ + "/s.db").c_str(), &db), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(db,
                           "UPDATE measurements SET mean_ms = 50, median_ms = 50 WHERE run_id IN "
                           "(SELECT r.id FROM runs r JOIN resources s ON s.id = r.resource_id "
                           "WHERE s.name = 'dev')",
                           nullptr, nullptr, nullptr),
              SQLITE_OK);
    sqlite3_close(db);
  }
  // The fastest plan that uses the edge, under the privacy constraint.
  auto plans =
      Run({"plan", model_, "--privacy", std::to_string(kPrivacy), "--top", "20", "--json"});
  ASSERT_EQ(plans.exit_code, 0) << plans.err;
  std::ofstream(dir_ + "/plan.json") << plans.out;
  int rank = 0;
  const auto plans_doc = nlohmann::json::parse(plans.out);
  for (const auto& p : plans_doc["plans"]) {
    for (const auto& s : p["stages"]) {
      if (s["resource"] == "edge" && rank == 0) rank = p["rank"].get<int>();
    }
  }
  ASSERT_GT(rank, 0) << "no plan uses the edge: " << plans.out;
  auto unconstrained = Run({"plan", model_, "--where", "edge=-1", "--top", "1", "--json"});
  ASSERT_EQ(unconstrained.exit_code, 0);
  ASSERT_LT(
      nlohmann::json::parse(unconstrained.out)["plans"][0]["stages"][0]["last_block"].get<int>(),
      kPrivacy - 1)
      << "without --privacy the best plan without the edge must break it, or this test shows "
         "nothing";
  // A plan whose request requires the edge (-e !-1): no re-plan may do without it.
  auto pinned = Run({"plan", model_, "-e", "!-1", "--top", "1", "--json"});
  ASSERT_EQ(pinned.exit_code, 0) << pinned.err;
  std::ofstream(dir_ + "/pinned.json") << pinned.out;

  auto killed_run = [&](const std::string& plan, int plan_rank, bool fallback) {
    std::vector<std::string> args = {"run",
                                     "--plan",
                                     plan,
                                     "--rank",
                                     std::to_string(plan_rank),
                                     "--workers",
                                     "edge=" + edge + ",cloud=" + cloud,
                                     "--requests",
                                     "20000",
                                     "--timeout-ms",
                                     "5000",
                                     "--json"};
    if (fallback) {
      args.push_back("--fallback");
      args.push_back("replan");
    }
    std::string out = dir_ + "/run" + std::to_string(workers_.size()) + ".json";
    std::string err = out + ".err";
    pid_t runner = SpawnScission(args, env_, out, err);
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    pid_t& victim = workers_[workers_.size() - 1];  // the newest edge worker
    ::kill(victim, SIGKILL);
    ::waitpid(victim, nullptr, 0);
    victim = -1;
    int status = 0;
    ::waitpid(runner, &status, 0);
    KilledRun r;
    r.err = Slurp(err);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << r.err;
    std::string text = Slurp(out);
    r.doc =
        nlohmann::json::parse(text.substr(std::min(text.find('{'), text.size())), nullptr, false);
    EXPECT_FALSE(r.doc.is_discarded()) << text << r.err;
    if (!r.doc.is_discarded()) {
      EXPECT_EQ(r.doc["ok"].get<int>() + r.doc["failed"].get<int>(), 20000)
          << "every request ends with a result or an error";
    }
    return r;
  };
  auto restart_edge = [&] {
    workers_.pop_back();  // the dead edge worker (cloud stays at the front)
    edge = StartWorker("edge", "edge");
  };
  std::swap(workers_[0], workers_[1]);  // [cloud, edge]: the edge is always the newest

  // Without a fallback: requests fail explicitly, none is lost.
  auto plain = killed_run(dir_ + "/plan.json", rank, false);
  if (!plain.doc.is_discarded()) {
    EXPECT_GT(plain.doc["failed"].get<int>(), 0);
    EXPECT_FALSE(plain.doc["errors"].empty());
  }

  // With a fallback: one re-plan over device and cloud that still keeps the raw input and the
  // first kPrivacy blocks on the device.
  restart_edge();
  auto replanned = killed_run(dir_ + "/plan.json", rank, true);
  if (!replanned.doc.is_discarded()) {
    EXPECT_GE(replanned.doc["replans"].get<int>(), 1) << replanned.err;
    EXPECT_LE(replanned.doc["failed"].get<int>(), 1);  // at most the request in flight
    ASSERT_FALSE(replanned.doc["replanned"].empty());
    for (const auto& p : replanned.doc["replanned"]) {
      EXPECT_GE(p["stages"][0]["last_block"].get<int>(), kPrivacy - 1) << p.dump();
      for (const auto& s : p["stages"]) EXPECT_NE(s["resource"], "edge");
    }
  }

  // The request requires the edge: without it no plan is allowed, so requests fail rather than
  // run somewhere the user excluded.
  restart_edge();
  auto pinned_run = killed_run(dir_ + "/pinned.json", 1, true);  // edge required
  if (!pinned_run.doc.is_discarded()) {
    EXPECT_EQ(pinned_run.doc["replans"].get<int>(), 0);
    EXPECT_GT(pinned_run.doc["failed"].get<int>(), 0);
    EXPECT_THAT(pinned_run.err, HasSubstr("no plan without edge satisfies the plan's constraints"));
  }
}

}  // namespace
}  // namespace scission::testing
