// `scission loadgen` as a user runs it: against `scission serve` (a local-only plan), and against
// a fake Open Inference Protocol server in this process whose replies can be wrong on purpose
// (ids, byte counts), slow, or whose model declares variable dimensions and other datatypes.
#include <signal.h>
#include <sys/wait.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <set>
#include <thread>

#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "cli/run_binary.h"
#include "graph/graph_builder.h"
#include "inference.grpc.pb.h"

namespace scission::testing {
namespace {

using ::testing::HasSubstr;

// What the fake server does with ModelInfer.
enum class Reply { kGood, kWrongIdEverySecond, kShortOutput, kSlow };

// Declares one model, "fake"; answers ModelInfer with one FP32 [1, 2] output "y".
class FakeServer final : public inference::GRPCInferenceService::Service {
 public:
  explicit FakeServer(Reply mode) : mode_(mode) {
    auto* x = metadata_.add_inputs();
    x->set_name("x");
    x->set_datatype("FP32");
    x->add_shape(1);
    x->add_shape(4);
    auto* y = metadata_.add_outputs();
    y->set_name("y");
    y->set_datatype("FP32");
    y->add_shape(1);
    y->add_shape(2);
  }
  ~FakeServer() override {
    if (server_) server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  }
  inference::ModelMetadataResponse& metadata() { return metadata_; }
  std::string Start() {
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(this);
    server_ = builder.BuildAndStart();
    return "127.0.0.1:" + std::to_string(port);
  }
  inference::ModelInferRequest last_request() {
    std::lock_guard lock(mutex_);
    return last_;
  }

  grpc::Status ModelMetadata(grpc::ServerContext*, const inference::ModelMetadataRequest* request,
                             inference::ModelMetadataResponse* reply) override {
    if (request->name() != "fake") return {grpc::StatusCode::NOT_FOUND, "unknown model"};
    *reply = metadata_;
    reply->set_name("fake");
    return grpc::Status::OK;
  }
  grpc::Status ModelInfer(grpc::ServerContext* context, const inference::ModelInferRequest* request,
                          inference::ModelInferResponse* reply) override {
    int n = 0;
    {
      std::lock_guard lock(mutex_);
      last_ = *request;
      n = ++count_;
    }
    if (mode_ == Reply::kSlow)
      for (int i = 0; i < 500 && !context->IsCancelled(); ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    reply->set_model_name("fake");
    reply->set_id(mode_ == Reply::kWrongIdEverySecond && n % 2 == 0 ? "someone-else"
                                                                    : request->id());
    auto* y = reply->add_outputs();
    y->set_name("y");
    y->set_datatype("FP32");
    y->add_shape(1);
    y->add_shape(2);
    reply->add_raw_output_contents(std::string(mode_ == Reply::kShortOutput ? 4 : 8, '\0'));
    return grpc::Status::OK;
  }

 private:
  Reply mode_;
  inference::ModelMetadataResponse metadata_;
  std::unique_ptr<grpc::Server> server_;
  std::mutex mutex_;
  inference::ModelInferRequest last_;
  int count_ = 0;
};

struct Record {
  std::string id, code;
  double start_unix_ms = 0;
  nlohmann::json latency_ms;
};

std::vector<Record> ReadRecords(const std::string& path) {
  std::vector<Record> out;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) {
    auto j = nlohmann::json::parse(line);
    out.push_back({j.at("id"), j.at("code"), j.at("start_unix_ms"), j.at("latency_ms")});
  }
  return out;
}

double UnixMs() {
  return std::chrono::duration<double, std::milli>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

class LoadgenCli : public BinaryTest {
 protected:
  LoadgenCli() : BinaryTest("loadgencli") {}
  void TearDown() override {
    for (pid_t pid : pids_) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
  }
  // `scission serve` of a benchmarked 8-block chain on this machine alone; its gRPC address.
  std::string StartServe() {
    const std::string model = dir_ + "/chain.onnx";
    std::ofstream(model, std::ios::binary) << ChainModel(8).SerializeAsString();
    auto bench = Run({"benchmark", model, "--resource", "dev", "--tier", "device", "--repeats", "2",
                      "--warmup", "1", "--threads", "1"});
    EXPECT_EQ(bench.exit_code, 0) << bench.err;
    const std::string log = dir_ + "/serve.log";
    pids_.push_back(SpawnScission(
        {"serve", model, "--listen", "127.0.0.1:0", "--name", "chain", "--threads", "1"}, env_,
        log));
    for (int i = 0; i < 300; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      std::string text = Slurp(log);
      auto at = text.find("grpc port ");
      if (at != std::string::npos) return "127.0.0.1:" + std::to_string(std::atoi(&text[at + 10]));
    }
    ADD_FAILURE() << "serve did not start: " << Slurp(log);
    return "127.0.0.1:1";
  }
  // Waits (bounded) for a background loadgen to exit; its exit code.
  int Reap(pid_t pid, int timeout_ms) {
    for (int waited = 0; waited < timeout_ms; waited += 20) {
      int status = 0;
      if (::waitpid(pid, &status, WNOHANG) == pid) {
        std::erase(pids_, pid);
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return -1;
  }
  void WaitForLines(const std::string& path, size_t lines) {
    for (int i = 0; i < 500; ++i) {
      std::string text = Slurp(path);
      if (static_cast<size_t>(std::count(text.begin(), text.end(), '\n')) >= lines) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    ADD_FAILURE() << "fewer than " << lines << " lines in " << path;
  }

  std::vector<pid_t> pids_;
};

TEST_F(LoadgenCli, DrivesServeWithConcurrentLoopsAndRecordsEveryRequest) {
  const std::string address = StartServe();
  const std::string records = dir_ + "/records.jsonl";
  const double before = UnixMs();
  auto r = Run({"loadgen", address, "--model", "chain", "--requests", "30", "--concurrency", "3",
                "--records", records, "--json"});
  const double after = UnixMs();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto doc = nlohmann::json::parse(r.out);
  EXPECT_EQ(doc["sent"], 30);
  EXPECT_EQ(doc["ok"], 30);
  EXPECT_EQ(doc["lost"], 0);
  EXPECT_EQ(doc["duplicates"], 0);
  EXPECT_TRUE(doc["errors"].empty()) << doc["errors"];
  EXPECT_GT(doc["latency_ms"]["median"].get<double>(), 0);
  EXPECT_LE(doc["latency_ms"]["median"].get<double>(), doc["latency_ms"]["p90"].get<double>());
  EXPECT_LE(doc["latency_ms"]["p99"].get<double>(), doc["latency_ms"]["max"].get<double>());
  EXPECT_GT(doc["requests_per_s"].get<double>(), 0);
  EXPECT_GT(doc["duration_s"].get<double>(), 0);

  auto lines = ReadRecords(records);
  ASSERT_EQ(lines.size(), 30u);
  std::set<std::string> ids;
  for (const auto& line : lines) {
    ids.insert(line.id);
    EXPECT_EQ(line.code, "OK");
    EXPECT_GT(line.latency_ms.get<double>(), 0);
    EXPECT_GE(line.start_unix_ms, before - 1);
    EXPECT_LE(line.start_unix_ms + line.latency_ms.get<double>(), after + 1);
  }
  EXPECT_EQ(ids.size(), 30u);
  // Ids number the requests in the order they started.
  std::sort(lines.begin(), lines.end(), [](const Record& a, const Record& b) {
    auto number = [](const std::string& id) { return std::stoll(id.substr(id.rfind('-') + 1)); };
    return number(a.id) < number(b.id);
  });
  for (size_t i = 1; i < lines.size(); ++i)
    EXPECT_GE(lines[i].start_unix_ms, lines[i - 1].start_unix_ms) << lines[i].id;

  // The human summary.
  auto human = Run({"loadgen", address, "--model", "chain", "--requests", "4"});
  ASSERT_EQ(human.exit_code, 0) << human.err;
  EXPECT_THAT(human.out, HasSubstr("4 requests to 'chain' at " + address));
  EXPECT_THAT(human.out, HasSubstr("ok 4, errors 0, lost 0, duplicates 0 ("));
  EXPECT_THAT(human.out, HasSubstr("latency ms: mean "));

  ExpectBadInput({"loadgen", address, "--model", "nope", "--requests", "1"},
                 "--model nope: " + address + " does not serve it");
}

TEST_F(LoadgenCli, PacesEachLoopAndStopsAtItsDuration) {
  FakeServer fake(Reply::kGood);
  const std::string address = fake.Start();
  const std::string records = dir_ + "/paced.jsonl";
  auto paced = Run({"loadgen", address, "--model", "fake", "--requests", "5", "--interval-ms",
                    "100", "--records", records, "--json"});
  ASSERT_EQ(paced.exit_code, 0) << paced.err;
  EXPECT_EQ(nlohmann::json::parse(paced.out)["ok"], 5);
  auto lines = ReadRecords(records);
  ASSERT_EQ(lines.size(), 5u);
  for (size_t i = 1; i < lines.size(); ++i)
    EXPECT_GE(lines[i].start_unix_ms - lines[i - 1].start_unix_ms, 95) << i;

  auto timed = Run({"loadgen", address, "--model", "fake", "--duration-s", "0.6", "--interval-ms",
                    "50", "--json"});
  ASSERT_EQ(timed.exit_code, 0) << timed.err;
  auto doc = nlohmann::json::parse(timed.out);
  // 12 starts fit in 0.6 s at one per 50 ms; a loaded machine may fit fewer.
  EXPECT_GE(doc["sent"].get<int>(), 5);
  EXPECT_LE(doc["sent"].get<int>(), 13);
  EXPECT_EQ(doc["ok"], doc["sent"]);
  EXPECT_GE(doc["duration_s"].get<double>(), 0.55);
  EXPECT_LT(doc["duration_s"].get<double>(), 5);
}

TEST_F(LoadgenCli, ChecksEveryReplysIdAndOutputs) {
  FakeServer wrong_ids(Reply::kWrongIdEverySecond);
  auto r = Run({"loadgen", wrong_ids.Start(), "--model", "fake", "--requests", "10", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto doc = nlohmann::json::parse(r.out);
  EXPECT_EQ(doc["ok"], 5);
  EXPECT_EQ(doc["duplicates"], 5);
  EXPECT_THAT(doc["first_errors"]["DUPLICATE"].get<std::string>(), HasSubstr("someone-else"));

  FakeServer short_output(Reply::kShortOutput);
  r = Run({"loadgen", short_output.Start(), "--model", "fake", "--requests", "3", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  doc = nlohmann::json::parse(r.out);
  EXPECT_EQ(doc["ok"], 0);
  EXPECT_EQ(doc["errors"]["BAD_OUTPUTS"], 3);
  EXPECT_THAT(doc["first_errors"]["BAD_OUTPUTS"].get<std::string>(),
              HasSubstr("output 'y' (FP32 [1,2]) carries 4 bytes, not 8"));
  EXPECT_TRUE(doc["latency_ms"].is_null());
}

TEST_F(LoadgenCli, GeneratesInputsOfEveryDatatypeAtTheGivenShapes) {
  FakeServer fake(Reply::kGood);
  auto& meta = fake.metadata();
  meta.clear_inputs();
  auto add = [&](const std::string& name, const std::string& type, std::vector<int64_t> shape) {
    auto* t = meta.add_inputs();
    t->set_name(name);
    t->set_datatype(type);
    for (int64_t d : shape) t->add_shape(d);
  };
  add("h", "FP16", {-1, 3});
  add("i", "INT64", {2});
  add("b", "BOOL", {1});
  const std::string address = fake.Start();
  ExpectBadInput({"loadgen", address, "--model", "fake", "--requests", "1"},
                 "input 'h' has shape [?,3], with a dimension of variable size: give it with "
                 "--shape h=");
  ExpectBadInput({"loadgen", address, "--model", "fake", "--requests", "1", "--shape", "h=2x4"},
                 "--shape h=2x4: the model declares [?,3]");
  ExpectBadInput({"loadgen", address, "--model", "fake", "--requests", "1", "--shape", "zz=1"},
                 "--shape zz: the model has no such input (it has: h, i, b)");

  auto r =
      Run({"loadgen", address, "--model", "fake", "--requests", "1", "--shape", "h=2x3", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out)["ok"], 1);
  auto sent = fake.last_request();
  ASSERT_EQ(sent.inputs_size(), 3);
  ASSERT_EQ(sent.raw_input_contents_size(), 3);
  EXPECT_EQ(sent.model_name(), "fake");
  EXPECT_EQ(sent.inputs(0).datatype(), "FP16");
  EXPECT_EQ(std::vector<int64_t>(sent.inputs(0).shape().begin(), sent.inputs(0).shape().end()),
            (std::vector<int64_t>{2, 3}));
  const std::string& halves = sent.raw_input_contents(0);
  ASSERT_EQ(halves.size(), 12u);
  bool some_nonzero = false;
  for (size_t k = 0; k < 6; ++k) {
    uint16_t h = 0;
    std::memcpy(&h, halves.data() + 2 * k, 2);
    EXPECT_LT(h, 0x3C00) << "half " << k << " is not in [0, 1)";  // 0x3C00 is 1.0
    some_nonzero = some_nonzero || h != 0;
  }
  EXPECT_TRUE(some_nonzero);
  EXPECT_EQ(sent.raw_input_contents(1), std::string(16, '\0'));
  EXPECT_EQ(sent.raw_input_contents(2), std::string(1, '\0'));

  add("s", "BYTES", {1});
  ExpectBadInput({"loadgen", address, "--model", "fake", "--requests", "1", "--shape", "h=2x3"},
                 "input 's' is BYTES: loadgen generates numeric and BOOL inputs only");
}

TEST_F(LoadgenCli, SigtermStopsSendingAndASecondAbandonsWhatIsInFlight) {
  FakeServer fake(Reply::kGood);
  const std::string address = fake.Start();
  const std::string records = dir_ + "/stopped.jsonl";
  pid_t pid = SpawnScission({"loadgen", address, "--model", "fake", "--duration-s", "60",
                             "--interval-ms", "20", "--records", records, "--json"},
                            env_, dir_ + "/stopped.out", dir_ + "/stopped.err");
  pids_.push_back(pid);
  WaitForLines(records, 3);
  ::kill(pid, SIGTERM);
  ASSERT_EQ(Reap(pid, 15000), 0) << Slurp(dir_ + "/stopped.err");
  auto doc = nlohmann::json::parse(Slurp(dir_ + "/stopped.out"));
  EXPECT_GE(doc["sent"].get<int>(), 3);
  EXPECT_EQ(doc["ok"], doc["sent"]);
  EXPECT_EQ(doc["lost"], 0);
  EXPECT_LT(doc["duration_s"].get<double>(), 30);
  EXPECT_EQ(ReadRecords(records).size(), doc["sent"].get<size_t>());

  // A request the server sits on: the first signal waits for it, the second abandons it.
  FakeServer slow(Reply::kSlow);
  const std::string slow_address = slow.Start();
  const std::string lost_records = dir_ + "/lost.jsonl";
  pid = SpawnScission({"loadgen", slow_address, "--model", "fake", "--requests", "1", "--records",
                       lost_records, "--json"},
                      env_, dir_ + "/lost.out", dir_ + "/lost.err");
  pids_.push_back(pid);
  for (int i = 0; i < 500 && slow.last_request().id().empty(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  ::kill(pid, SIGTERM);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  ::kill(pid, SIGTERM);
  ASSERT_EQ(Reap(pid, 3000), 0) << Slurp(dir_ + "/lost.err");
  doc = nlohmann::json::parse(Slurp(dir_ + "/lost.out"));
  EXPECT_EQ(doc["sent"], 1);
  EXPECT_EQ(doc["lost"], 1);
  EXPECT_EQ(doc["ok"], 0);
  auto lines = ReadRecords(lost_records);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0].code, "LOST");
  EXPECT_TRUE(lines[0].latency_ms.is_null());
}

TEST_F(LoadgenCli, BadCommandLinesAreOneLineErrors) {
  FakeServer fake(Reply::kGood);
  const std::string address = fake.Start();
  ExpectBadInput({"loadgen", address, "--model", "fake", "--requests", "5", "--concurrency", "0"},
                 "--concurrency must be 1..64, got 0");
  ExpectBadInput({"loadgen", address, "--model", "fake", "--requests", "5", "--concurrency", "65"},
                 "--concurrency must be 1..64");
  ExpectBadInput({"loadgen", address, "--model", "fake"}, "give --duration-s or --requests");
  ExpectBadInput({"loadgen", address, "--model", "fake", "--requests", "0"},
                 "--requests must be 1..1000000");
  ExpectBadInput({"loadgen", address, "--model", "fake", "--duration-s", "3601"},
                 "--duration-s must be in (0, 3600]");
  ExpectBadInput({"loadgen", address, "--model", "fake", "--requests", "1", "--timeout-ms", "0"},
                 "--timeout-ms must be 1..600000");
  ExpectBadInput({"loadgen", address, "--model", "fake", "--requests", "1", "--interval-ms", "-5"},
                 "--interval-ms must be 0..3600000");
  ExpectBadInput({"loadgen", address, "--requests", "1"}, "--model is required");
  ExpectBadInput(
      {"loadgen", address, "--model", "fake", "--requests", "1", "--records", dir_ + "/no/such"},
      "--records " + dir_ + "/no/such: cannot write it");
  ExpectBadInput({"loadgen", address, "--model", "nope", "--requests", "1"},
                 "--model nope: " + address + " does not serve it");
  ExpectBadInput({"loadgen", "127.0.0.1:1", "--model", "fake", "--requests", "1"},
                 "127.0.0.1:1: no inference server answers there");
}

}  // namespace
}  // namespace scission::testing
