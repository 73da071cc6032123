// `scission serve` as applications see it: the Open Inference Protocol over gRPC, driven by an
// independent Python client generated from proto/inference.proto, and over HTTP with curl. The
// answers must equal the whole model run locally; malformed requests get the protocol's errors
// and the service stays up; a worker killed while serving leads to a re-plan that keeps every
// constraint of the request; measurements that contradict the profile move the plan while
// several clients keep sending, and nothing is lost or answered twice.
#include <signal.h>
#include <sys/wait.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <nlohmann/json.hpp>

#include "cli/run_binary.h"
#include "common/npy.h"
#include "graph/graph_builder.h"
#include "graph/model.h"
#include "profile/split_check.h"

namespace scission::testing {
namespace {

using ::testing::HasSubstr;

struct Http {
  int status = 0;
  std::string body;
};

std::string Shell(const std::string& command) {
  FILE* pipe = ::popen(command.c_str(), "r");
  std::string out;
  char buffer[65536];
  size_t n;
  while ((n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0) out.append(buffer, n);
  ::pclose(pipe);
  return out;
}

// curl, as a user would type it; `extra` are more curl arguments.
Http Curl(const std::string& url, const std::vector<std::string>& extra = {}) {
  std::string command = "curl -s -m 30 -w '\\n%{http_code}'";
  for (const auto& e : extra) command += " '" + e + "'";
  std::string out = Shell(command + " '" + url + "'");
  Http r;
  auto nl = out.rfind('\n');
  if (nl == std::string::npos) return r;
  r.status = std::atoi(out.c_str() + nl + 1);
  r.body = out.substr(0, nl);
  return r;
}

void ExpectClose(const Tensor& got, const Tensor& want) {
  ASSERT_EQ(got.spec.shape, want.spec.shape);
  ASSERT_EQ(got.data.size(), want.data.size());
  const float* a = reinterpret_cast<const float*>(got.data.data());
  const float* b = reinterpret_cast<const float*>(want.data.data());
  for (size_t i = 0; i < got.data.size() / 4; ++i)
    ASSERT_NEAR(a[i], b[i], 1e-4 + 1e-4 * std::abs(b[i])) << i;
}

class ServeCli : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "/servecli_" + std::to_string(::getpid()) + "_" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    env_ = {"SCISSION_DB=" + dir_ + "/s.db", "SCISSION_HOME=" + dir_ + "/home"};
    model_ = dir_ + "/chain.onnx";
    std::ofstream(model_, std::ios::binary) << ChainModel(8).SerializeAsString();
    loaded_ = graph::LoadModel(model_);
    input_ = RandomInputs(loaded_, 11);
    std::ofstream(dir_ + "/x.npy", std::ios::binary) << SerializeNpy(input_[0]);
    expected_ = RunWhole(loaded_, input_);
  }
  void TearDown() override {
    for (pid_t pid : pids_) {
      if (pid <= 0) continue;
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
  }
  // Waits for `marker` in a log and returns the number after it.
  int WaitFor(const std::string& log, const std::string& marker) {
    for (int i = 0; i < 300; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      std::string text = Slurp(log);
      auto at = text.find(marker);
      if (at != std::string::npos) return std::atoi(text.c_str() + at + marker.size());
    }
    ADD_FAILURE() << "no '" << marker << "' in " << log << ": " << Slurp(log);
    return 1;
  }
  std::string StartWorker(const std::string& name) {
    const std::string log = dir_ + "/" + name + ".log";
    pids_.push_back(SpawnScission({"worker", "--listen", "127.0.0.1:0", "--resource", name,
                                   "--tier", "edge", "--threads", "1"},
                                  env_, log));
    return "127.0.0.1:" + std::to_string(WaitFor(log, "(port "));
  }
  CommandResult Run(const std::vector<std::string>& args) { return RunScission(args, env_); }
  void Prepare(const std::map<std::string, std::string>& workers) {
    ASSERT_EQ(Run({"benchmark", model_, "--resource", "dev", "--tier", "device", "--repeats", "3",
                   "--warmup", "1", "--threads", "1"})
                  .exit_code,
              0);
    std::string list;
    for (const auto& [name, address] : workers) {
      list += (list.empty() ? "" : ",") + name + "=" + address;
      auto probe =
          Run({"probe", address, "--from", "dev", "--pings", "5", "--min-transfer-ms", "20"});
      ASSERT_EQ(probe.exit_code, 0) << probe.err;
    }
    auto fleet =
        Run({"fleet", "benchmark", model_, "--workers", list, "--repeats", "3", "--warmup", "1"});
    ASSERT_EQ(fleet.exit_code, 0) << fleet.err;
    workers_ = list;
  }
  // Starts `serve` with `args` and returns its log once it answers.
  std::string StartServe(const std::vector<std::string>& args) {
    const std::string log = dir_ + "/serve.log";
    std::vector<std::string> all = {"serve",     model_,        "--workers", workers_,
                                    "--listen",  "127.0.0.1:0", "--http",    "127.0.0.1:0",
                                    "--metrics", "127.0.0.1:0", "--name",    "chain"};
    all.insert(all.end(), args.begin(), args.end());
    pids_.push_back(SpawnScission(all, env_, log));
    grpc_ = WaitFor(log, "grpc port ");
    http_ = WaitFor(log, "http port ");
    metrics_ = WaitFor(log, "metrics port ");
    return log;
  }
  std::string HttpUrl(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(http_) + path;
  }
  std::string InferBody() const {
    nlohmann::json data = nlohmann::json::array();
    const float* v = reinterpret_cast<const float*>(input_[0].data.data());
    for (size_t i = 0; i < input_[0].data.size() / 4; ++i) data.push_back(v[i]);
    return nlohmann::json{
        {"id", "q1"},
        {"inputs",
         {{{"name", "x"}, {"datatype", "FP32"}, {"shape", input_[0].spec.shape}, {"data", data}}}}}
        .dump();
  }
  Http PostInfer(const std::string& body, const std::string& model = "chain") {
    std::ofstream(dir_ + "/body.json") << body;
    return Curl(
        HttpUrl("/v2/models/" + model + "/infer"),
        {"-H", "Content-Type: application/json", "--data-binary", "@" + dir_ + "/body.json"});
  }
  Tensor FromJsonOutput(const nlohmann::json& out) {
    Tensor t;
    t.spec.name = out["name"];
    t.spec.dtype = DType::kFloat;
    t.spec.shape = out["shape"].get<std::vector<int64_t>>();
    for (float f : out["data"].get<std::vector<float>>()) {
      auto* p = reinterpret_cast<uint8_t*>(&f);
      t.data.insert(t.data.end(), p, p + 4);
    }
    return t;
  }

  std::string dir_, model_, workers_;
  std::vector<std::string> env_;
  std::vector<pid_t> pids_;
  graph::LoadedModel loaded_;
  std::vector<Tensor> input_, expected_;
  int grpc_ = 0, http_ = 0, metrics_ = 0;
};

TEST_F(ServeCli, AnswersTheProtocolOverGrpcAndHttpLikeTheWholeModel) {
  Prepare({{"edge", StartWorker("edge")}});
  // Block 0 stays on the device and the edge must be used: a real split.
  auto log = StartServe({"--tiers", "device,edge", "--privacy", "1", "-e", "!-1", "--no-adapt"});
  EXPECT_THAT(Slurp(log), HasSubstr("dev 0-"));

  // An independent client generated from the .proto.
  auto report_text = Shell("/usr/bin/python3 " SCISSION_SOURCE_DIR
                           "/tests/cli/kserve_client.py --proto " SCISSION_SOURCE_DIR
                           "/proto --address 127.0.0.1:" +
                           std::to_string(grpc_) + " --model chain --input x=" + dir_ +
                           "/x.npy --out " + dir_ + " 2>&1");
  auto report = nlohmann::json::parse(report_text, nullptr, false);
  ASSERT_FALSE(report.is_discarded()) << report_text;
  EXPECT_TRUE(report["live"]);
  EXPECT_TRUE(report["ready"]);
  EXPECT_TRUE(report["model_ready"]);
  EXPECT_EQ(report["server"]["name"], "scission");
  EXPECT_EQ(report["metadata"]["name"], "chain");
  EXPECT_EQ(report["metadata"]["inputs"][0]["datatype"], "FP32");
  EXPECT_EQ(report["metadata"]["inputs"][0]["shape"], nlohmann::json({1, 4, 8, 8}));
  EXPECT_EQ(report["raw_id"], "req-1");
  const std::string out_name = expected_[0].spec.name;
  ASSERT_EQ(report["raw_outputs"], nlohmann::json({out_name}));
  ExpectClose(ReadNpy(dir_ + "/raw_" + out_name + ".npy"), expected_[0]);
  ExpectClose(ReadNpy(dir_ + "/typed_" + out_name + ".npy"), expected_[0]);
  const auto& errors = report["errors"];
  EXPECT_EQ(errors["unknown_model"], "NOT_FOUND");
  for (const char* c :
       {"unknown_input", "wrong_datatype", "wrong_shape", "short_raw", "raw_and_contents",
        "few_values", "unknown_datatype", "negative_dim", "input_twice", "no_inputs"})
    EXPECT_EQ(errors[c], "INVALID_ARGUMENT") << c;
  EXPECT_EQ(errors["huge_shape"], "RESOURCE_EXHAUSTED");
  EXPECT_TRUE(report["after_errors_equal"]);

  // HTTP/JSON with curl.
  EXPECT_EQ(Curl(HttpUrl("/v2/health/live")).status, 200);
  EXPECT_EQ(Curl(HttpUrl("/v2/health/ready")).status, 200);
  EXPECT_EQ(Curl(HttpUrl("/v2/models/chain/ready")).status, 200);
  auto meta = Curl(HttpUrl("/v2/models/chain"));
  ASSERT_EQ(meta.status, 200);
  EXPECT_EQ(nlohmann::json::parse(meta.body)["inputs"][0]["name"], "x");
  auto ok = PostInfer(InferBody());
  ASSERT_EQ(ok.status, 200) << ok.body;
  auto doc = nlohmann::json::parse(ok.body);
  EXPECT_EQ(doc["id"], "q1");
  EXPECT_EQ(doc["model_name"], "chain");
  ExpectClose(FromJsonOutput(doc["outputs"][0]), expected_[0]);
  // Nested data (row-major) is the same request.
  auto nested = nlohmann::json::parse(InferBody());
  nlohmann::json rows = nlohmann::json::array();
  const auto flat = nested["inputs"][0]["data"];
  for (size_t r = 0; r < flat.size(); r += 8)
    rows.push_back(nlohmann::json(std::vector<float>(flat.begin() + r, flat.begin() + r + 8)));
  nested["inputs"][0]["data"] = rows;
  auto nested_reply = PostInfer(nested.dump());
  ASSERT_EQ(nested_reply.status, 200) << nested_reply.body;
  ExpectClose(FromJsonOutput(nlohmann::json::parse(nested_reply.body)["outputs"][0]), expected_[0]);
  // Malformed requests: the protocol's error object, the right status, the service stays up.
  auto expect_error = [&](const Http& r, int status, const std::string& words) {
    EXPECT_EQ(r.status, status) << r.body;
    auto e = nlohmann::json::parse(r.body, nullptr, false);
    ASSERT_TRUE(e.is_object() && e.contains("error")) << r.body;
    EXPECT_THAT(e["error"].get<std::string>(), HasSubstr(words));
  };
  expect_error(PostInfer("{\"inputs\": ["), 400, "not JSON");
  expect_error(PostInfer("[1,2]"), 400, "JSON object");
  expect_error(PostInfer(InferBody(), "other"), 404, "unknown model 'other'");
  auto wrong = nlohmann::json::parse(InferBody());
  wrong["inputs"][0]["datatype"] = "INT64";
  expect_error(PostInfer(wrong.dump()), 400, "not INT64");
  wrong = nlohmann::json::parse(InferBody());
  wrong["inputs"][0]["shape"] = {1, 4, 8, 9};
  expect_error(PostInfer(wrong.dump()), 400, "data holds 256 values");
  wrong = nlohmann::json::parse(InferBody());
  wrong["inputs"][0]["data"].push_back("text");
  expect_error(PostInfer(wrong.dump()), 400, "more values than the shape");
  wrong = nlohmann::json::parse(InferBody());
  wrong["inputs"][0]["shape"] = {1 << 20, 1 << 20, 1 << 20};
  expect_error(PostInfer(wrong.dump()), 413, "larger than");
  expect_error(Curl(HttpUrl("/v2/nothing")), 404, "no such endpoint");
  EXPECT_EQ(PostInfer(InferBody()).status, 200);

  // Metrics: counts by protocol and code, latency histogram, the plan.
  auto metrics = Curl("http://127.0.0.1:" + std::to_string(metrics_) + "/metrics");
  ASSERT_EQ(metrics.status, 200);
  EXPECT_THAT(metrics.body, HasSubstr("scission_requests_total{protocol=\"http\",code=\"OK\"} 3"));
  EXPECT_THAT(metrics.body, HasSubstr("scission_requests_total{protocol=\"grpc\",code=\"OK\"} 3"));
  EXPECT_THAT(metrics.body,
              HasSubstr("scission_requests_total{protocol=\"grpc\",code=\"INVALID_ARGUMENT\"} 10"));
  EXPECT_THAT(metrics.body, HasSubstr("scission_request_duration_seconds_count 6"));
  EXPECT_THAT(metrics.body, HasSubstr("scission_plan_info{chain=\"1\",plan=\"dev 0-"));
  EXPECT_THAT(metrics.body, HasSubstr("scission_hop_seconds_count{hop=\"dev->edge\"} 6"));
  EXPECT_THAT(metrics.body, HasSubstr("scission_adaptive_switches_total 0"));
}

TEST_F(ServeCli, AKilledWorkerIsReplannedAroundUnderTheSameConstraints) {
  const std::string a = StartWorker("edge_a");
  const std::string b = StartWorker("edge_b");
  Prepare({{"edge_a", a}, {"edge_b", b}});
  // Privacy (block 0 on the device) and "the edge tier is used": every plan splits.
  auto log = StartServe({"--tiers", "device,edge", "--privacy", "1", "-e", "!-1", "--no-adapt"});
  ASSERT_EQ(PostInfer(InferBody()).status, 200);
  std::string text = Slurp(log);
  const bool on_a =
      text.find("edge_a") != std::string::npos && text.find("| edge_a") != std::string::npos;
  // Kill the worker the plan uses.
  pid_t victim = on_a ? pids_[0] : pids_[1];
  ::kill(victim, SIGKILL);
  ::waitpid(victim, nullptr, 0);
  (on_a ? pids_[0] : pids_[1]) = -1;
  auto after = PostInfer(InferBody());
  ASSERT_EQ(after.status, 200) << after.body << Slurp(log);
  ExpectClose(FromJsonOutput(nlohmann::json::parse(after.body)["outputs"][0]), expected_[0]);
  auto metrics = Curl("http://127.0.0.1:" + std::to_string(metrics_) + "/metrics").body;
  EXPECT_THAT(metrics, HasSubstr("scission_replans_total 1"));
  // The new plan keeps block 0 on the device and ends on the surviving edge.
  EXPECT_THAT(metrics, HasSubstr(std::string("plan=\"dev 0-")));
  EXPECT_THAT(metrics, HasSubstr(on_a ? "| edge_b " : "| edge_a "));
  EXPECT_THAT(Slurp(log),
              HasSubstr(on_a ? "re-planned without edge_a" : "re-planned without edge_b"));
}

// Makes the stored profile of `resource` claim `ms` per block, as if it had been benchmarked on
// a much slower machine: what serve measures then contradicts the profile.
void FakeBlockTimes(const std::string& db_path, const std::string& resource, double ms) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(db_path.c_str(), &db), SQLITE_OK);
  const std::string sql = fmt::format(
      "UPDATE measurements SET median_ms = {0}, mean_ms = {0}, p90_ms = {0}, p95_ms = {0}, "
      "min_ms = {0}, max_ms = {0} WHERE run_id IN (SELECT runs.id FROM runs JOIN resources ON "
      "runs.resource_id = resources.id WHERE resources.name = '{1}')",
      ms, resource);
  char* error = nullptr;
  EXPECT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &error), SQLITE_OK)
      << (error ? error : "");
  sqlite3_free(error);
  EXPECT_GT(sqlite3_changes(db), 0);
  sqlite3_close(db);
}

TEST_F(ServeCli, TheFirstStandbyPlanIsLoadedBeforeTheServiceAnswers) {
  const std::string a = StartWorker("edge_a");
  const std::string b = StartWorker("edge_b");
  Prepare({{"edge_a", a}, {"edge_b", b}});
  // Every plan splits onto one edge, so the standby is the best plan on the other one.
  StartServe({"--tiers", "device,edge", "--privacy", "1", "-e", "!-1"});
  // The first scrape, before any request: the ready line came after the standby was loaded.
  auto metrics = Curl("http://127.0.0.1:" + std::to_string(metrics_) + "/metrics");
  ASSERT_EQ(metrics.status, 200);
  EXPECT_THAT(metrics.body, HasSubstr("scission_standby_loads_total 1\n"));
  auto line_of = [&](const std::string& start) {
    const size_t at = metrics.body.find(start);
    if (at == std::string::npos) return std::string();
    return metrics.body.substr(at, metrics.body.find('\n', at) - at);
  };
  const std::string current = line_of("scission_plan_info{");
  const std::string standby = line_of("scission_standby_plan{");
  ASSERT_THAT(current, HasSubstr("plan=\"dev 0-")) << metrics.body;
  ASSERT_THAT(standby, HasSubstr("layout=\"dev 0-")) << metrics.body;
  const bool on_a = current.find("| edge_a ") != std::string::npos;
  EXPECT_THAT(current, HasSubstr(on_a ? "| edge_a " : "| edge_b "));
  EXPECT_THAT(standby, HasSubstr(on_a ? "| edge_b " : "| edge_a "));
  EXPECT_THAT(standby, ::testing::EndsWith("} 1"));
  // And it answers.
  auto reply = PostInfer(InferBody());
  ASSERT_EQ(reply.status, 200) << reply.body;
  ExpectClose(FromJsonOutput(nlohmann::json::parse(reply.body)["outputs"][0]), expected_[0]);
}

TEST_F(ServeCli, TheStandbyIsThePlanOnThisMachineAloneWhereTheConstraintsAllowIt) {
  Prepare({{"edge_a", StartWorker("edge_a")}, {"edge_b", StartWorker("edge_b")}});
  // A slow device profile: the plan splits onto an edge. Of the plans that avoid that edge, the
  // one on the other edge is predicted faster, but the standby is the device alone: it needs no
  // link, so it also covers the uplink dropping.
  FakeBlockTimes(dir_ + "/s.db", "dev", 5.0);
  auto log = StartServe({"--tiers", "device,edge", "--privacy", "1"});
  auto metrics = Curl("http://127.0.0.1:" + std::to_string(metrics_) + "/metrics");
  ASSERT_EQ(metrics.status, 200);
  EXPECT_THAT(metrics.body, HasSubstr("scission_plan_info{chain=\"1\",plan=\"dev 0-0 | edge_"));
  EXPECT_THAT(metrics.body, HasSubstr("scission_standby_plan{layout=\"dev 0-7\"} 1"))
      << metrics.body << Slurp(log);
  EXPECT_THAT(metrics.body, HasSubstr("scission_standby_loads_total 1\n"));
}

TEST_F(ServeCli, MeasurementsThatContradictTheProfileMoveThePlanUnderLoadLosingNothing) {
  Prepare({{"edge", StartWorker("edge")}});
  // The device's profile says 5 ms a block, so the first plan sends all but block 0 (privacy)
  // to the edge; measured, the device is far faster, and the whole model belongs on it.
  FakeBlockTimes(dir_ + "/s.db", "dev", 5.0);
  const std::string switch_log = dir_ + "/switches.jsonl";
  auto log = StartServe({"--tiers", "device,edge", "--privacy", "1", "--replan-ms", "200",
                         "--switch-window-ms", "500", "--switch-log", switch_log});
  ASSERT_THAT(Slurp(log), HasSubstr("plan: dev 0-0 | edge 1-7"));
  // Four clients send back to back while the plan switches under them.
  auto load = Run({"loadgen", "127.0.0.1:" + std::to_string(grpc_), "--model", "chain",
                   "--duration-s", "6", "--concurrency", "4", "--json"});
  ASSERT_EQ(load.exit_code, 0) << load.err;
  auto summary = nlohmann::json::parse(load.out);
  EXPECT_GT(summary["sent"].get<int>(), 40) << load.out;
  EXPECT_EQ(summary["ok"], summary["sent"]) << load.out;
  EXPECT_EQ(summary["lost"], 0) << load.out;
  EXPECT_EQ(summary["duplicates"], 0) << load.out;

  // One switch, to the device alone, logged with what triggered it and both predictions.
  std::vector<nlohmann::json> switches;
  for (int i = 0; i < 50 && switches.empty(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    std::istringstream lines(Slurp(switch_log));
    for (std::string line; std::getline(lines, line);)
      if (!line.empty()) switches.push_back(nlohmann::json::parse(line));
  }
  ASSERT_EQ(switches.size(), 1u) << Slurp(switch_log) << Slurp(log);
  EXPECT_EQ(switches[0]["from"], "dev 0-0 | edge 1-7");
  EXPECT_EQ(switches[0]["to"], "dev 0-7");
  // The plan on the device alone was the standby, loaded before serve answered: no load now.
  EXPECT_EQ(switches[0]["from_standby"], true) << switches[0].dump();
  EXPECT_THAT(switches[0]["trigger"].get<std::string>(), HasSubstr("compute dev"));
  EXPECT_GT(switches[0]["predicted_gain"].get<double>(), 0.1);
  EXPECT_LT(switches[0]["predicted_to_ms"].get<double>(),
            switches[0]["predicted_from_ms"].get<double>());
  EXPECT_TRUE(switches[0]["measured_after_ms"].is_number()) << switches[0].dump();
  EXPECT_THAT(Slurp(log), HasSubstr("switched plan: dev 0-0 | edge 1-7 -> dev 0-7"));

  // The answers after the switch are still the whole model's, and the metrics say so.
  auto after = PostInfer(InferBody());
  ASSERT_EQ(after.status, 200) << after.body;
  ExpectClose(FromJsonOutput(nlohmann::json::parse(after.body)["outputs"][0]), expected_[0]);
  auto metrics = Curl("http://127.0.0.1:" + std::to_string(metrics_) + "/metrics").body;
  EXPECT_THAT(metrics, HasSubstr("scission_adaptive_switches_total 1"));
  EXPECT_THAT(metrics, HasSubstr("plan=\"dev 0-7\""));
  EXPECT_THAT(metrics, HasSubstr("scission_resource_slowdown{resource=\"dev\",source=\"live\"}"));
  EXPECT_THAT(metrics, HasSubstr("scission_link_rtt_ms{link=\"dev->edge\"}"));
  EXPECT_THAT(metrics, HasSubstr("scission_probe_compute_seconds_total{resource=\"edge\"}"));
}

TEST_F(ServeCli, BadCommandLinesAreOneLineErrors) {
  ASSERT_EQ(Run({"benchmark", model_, "--resource", "dev", "--tier", "device", "--repeats", "2",
                 "--warmup", "1", "--threads", "1"})
                .exit_code,
            0);
  auto bad_name = Run({"serve", model_, "--name", "a/b", "--listen", "127.0.0.1:0"});
  EXPECT_EQ(bad_name.exit_code, 2);
  EXPECT_THAT(bad_name.err, HasSubstr("--name"));
  auto bad_listen = Run({"serve", model_, "--listen", "127.0.0.1:99999"});
  EXPECT_EQ(bad_listen.exit_code, 2);
  EXPECT_THAT(bad_listen.err, HasSubstr("--listen"));
  auto no_plan =
      Run({"serve", model_, "--tiers", "device,edge", "-e", "!-1", "--listen", "127.0.0.1:0"});
  EXPECT_EQ(no_plan.exit_code, 2);
  EXPECT_THAT(no_plan.err, HasSubstr("no plan"));
  for (const auto& [flag, value] :
       std::vector<std::pair<std::string, std::string>>{{"--switch-gain", "-1"},
                                                        {"--probe-duty", "0"},
                                                        {"--replan-ms", "5"},
                                                        {"--max-estimate-age-ms", "10"},
                                                        {"--plan", dir_ + "/missing.json"}}) {
    auto bad = Run({"serve", model_, flag, value, "--listen", "127.0.0.1:0"});
    EXPECT_EQ(bad.exit_code, 2) << flag;
    EXPECT_THAT(bad.err, HasSubstr(flag.substr(2))) << bad.err;
  }
  auto plan = Run({"plan", model_, "--json"});
  ASSERT_EQ(plan.exit_code, 0) << plan.err;
  std::ofstream(dir_ + "/plan.json") << plan.out;
  auto bad_rank =
      Run({"serve", "--plan", dir_ + "/plan.json", "--rank", "99", "--listen", "127.0.0.1:0"});
  EXPECT_EQ(bad_rank.exit_code, 2);
  EXPECT_THAT(bad_rank.err, HasSubstr("--rank 99"));
}

}  // namespace
}  // namespace scission::testing
