// deploy::Pipeline switching plans while requests run (what `scission serve` does live): every
// request must be answered once, by one chain, with the whole model's outputs for its own input;
// an old chain must give its worker segments back once its last request is done; a failed
// Install must leave the current chain serving and nothing loaded behind it.
//
// The Pipeline does not expose the segment ids it loads, so the tests that look at the workers put
// a recording proxy (a v2::Worker service forwarding every call to the real worker) between the
// Pipeline and each worker: it sees every LoadSegment reply and UnloadSegment call, and can hold
// one Infer call to keep a request in flight on an old chain.
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <filesystem>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/error.h"
#include "common/files.h"
#include "deploy/client.h"
#include "deploy/pipeline.h"
#include "deploy/worker.h"
#include "graph/analysis.h"
#include "graph/graph_builder.h"
#include "runtime/backend.h"

namespace scission::deploy {
namespace {

using ::testing::HasSubstr;
using Clock = std::chrono::steady_clock;

constexpr int kBlocks = 6;

// x[1,8,16,16] -> 5 x (Conv 3x3 -> Relu) -> Conv 3x3 -> Tanh -> y: six blocks whose output
// depends on every input value, so an answer computed from another request's input shows.
onnx::ModelProto SixBlockModel() {
  testing::GraphBuilder b;
  b.Input("x", {1, 8, 16, 16});
  std::string prev = "x";
  for (int i = 0; i < kBlocks; ++i) {
    const std::string s = std::to_string(i), w = "w" + s, c = "c" + s;
    b.Weight(w, {8, 8, 3, 3}, 0.3f).Weight(w + "_b", {8}, 0.05f);
    b.Node("Conv", {prev, w, w + "_b"}, {c})
        .IntsAttr("pads", {1, 1, 1, 1})
        .IntsAttr("kernel_shape", {3, 3});
    const std::string a = i + 1 < kBlocks ? "r" + s : "y";
    b.Node(i + 1 < kBlocks ? "Relu" : "Tanh", {c}, {a});
    prev = a;
  }
  b.Output("y", {1, 8, 16, 16});
  return b.Build();
}

// A worker on a free loopback port, its cache private to this test process.
struct TestWorker {
  explicit TestWorker(const std::string& resource) {
    WorkerOptions o;
    o.listen = "127.0.0.1:0";
    o.resource = resource;
    o.tier = resource;
    o.threads = 1;
    o.cache_dir =
        ::testing::TempDir() + "/switch_worker_" + resource + "_" + std::to_string(::getpid());
    std::filesystem::remove_all(o.cache_dir);
    server = std::make_unique<WorkerServer>(o);
    address = "127.0.0.1:" + std::to_string(server->Start());
  }
  std::unique_ptr<WorkerServer> server;
  std::string address;
};

// Stands in for a worker: forwards Hello, Health, HasModel, LoadSegment, UnloadSegment and Infer
// to it (PutModel is not forwarded: the tests ship the model to the worker directly), and records
// the segment ids loaded and unloaded through it.
class RecordingProxy final : public v2::Worker::Service {
 public:
  explicit RecordingProxy(std::string target)
      : target_(std::move(target)), stub_(v2::Worker::NewStub(MakeChannel(target_, {}))) {
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(this);
    server_ = builder.BuildAndStart();
    address_ = "127.0.0.1:" + std::to_string(port);
  }
  ~RecordingProxy() override {
    Release();
    server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
  }
  const std::string& address() const { return address_; }

  struct Unload {
    std::string id;
    grpc::StatusCode code;
  };
  std::vector<std::string> loaded() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return loaded_;
  }
  std::vector<Unload> unloaded() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return unloaded_;
  }
  // The next Infer call waits (at most 30 s) until Release().
  void HoldNextInfer() {
    std::lock_guard<std::mutex> lock(mutex_);
    hold_next_ = true;
  }
  // True once a held call is waiting, within `ms`.
  bool WaitUntilHolding(int ms) {
    std::unique_lock<std::mutex> lock(mutex_);
    return changed_.wait_for(lock, std::chrono::milliseconds(ms), [&] { return holding_; });
  }
  // Every UnloadSegment answers `ms` late, as a worker across a slow or broken link does.
  void DelayUnloads(int ms) {
    std::lock_guard<std::mutex> lock(mutex_);
    unload_delay_ms_ = ms;
  }
  void Release() {
    std::lock_guard<std::mutex> lock(mutex_);
    hold_next_ = false;
    released_ = true;
    changed_.notify_all();
  }

  grpc::Status Hello(grpc::ServerContext* ctx, const v2::HelloRequest* req,
                     v2::HelloReply* reply) override {
    return stub_->Hello(Outgoing(ctx).get(), *req, reply);
  }
  grpc::Status Health(grpc::ServerContext* ctx, const v2::Empty* req, v2::Empty* reply) override {
    return stub_->Health(Outgoing(ctx).get(), *req, reply);
  }
  grpc::Status HasModel(grpc::ServerContext* ctx, const v2::ModelRef* req,
                        v2::HasModelReply* reply) override {
    return stub_->HasModel(Outgoing(ctx).get(), *req, reply);
  }
  grpc::Status LoadSegment(grpc::ServerContext* ctx, const v2::LoadSegmentRequest* req,
                           v2::LoadSegmentReply* reply) override {
    auto status = stub_->LoadSegment(Outgoing(ctx).get(), *req, reply);
    if (status.ok()) {
      std::lock_guard<std::mutex> lock(mutex_);
      loaded_.push_back(reply->segment_id());
    }
    return status;
  }
  grpc::Status UnloadSegment(grpc::ServerContext* ctx, const v2::SegmentRef* req,
                             v2::Empty* reply) override {
    int delay_ms;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      delay_ms = unload_delay_ms_;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
    auto status = stub_->UnloadSegment(Outgoing(ctx).get(), *req, reply);
    std::lock_guard<std::mutex> lock(mutex_);
    unloaded_.push_back({req->segment_id(), status.error_code()});
    return status;
  }
  // The caller writes its whole request before it reads (CallInfer), so the stream is forwarded
  // in two halves.
  grpc::Status Infer(grpc::ServerContext* ctx,
                     grpc::ServerReaderWriter<v2::InferReply, v2::InferRequest>* stream) override {
    std::vector<v2::InferRequest> requests;
    v2::InferRequest request;
    while (stream->Read(&request)) requests.push_back(request);
    {
      std::unique_lock<std::mutex> lock(mutex_);
      if (hold_next_) {
        hold_next_ = false;
        released_ = false;
        holding_ = true;
        changed_.notify_all();
        changed_.wait_for(lock, std::chrono::seconds(30), [&] { return released_; });
        holding_ = false;
      }
    }
    auto out = Outgoing(ctx);
    auto call = stub_->Infer(out.get());
    for (const auto& m : requests)
      if (!call->Write(m)) break;
    call->WritesDone();
    v2::InferReply reply;
    while (call->Read(&reply)) stream->Write(reply);
    return call->Finish();
  }

 private:
  // The caller's deadline and cancellation, and the protocol's metadata.
  static std::unique_ptr<grpc::ClientContext> Outgoing(grpc::ServerContext* ctx) {
    auto out = grpc::ClientContext::FromServerContext(*ctx);
    for (const auto& [key, value] : ctx->client_metadata()) {
      std::string k(key.data(), key.size());
      if (k.rfind("scission-", 0) == 0 || k == "authorization")
        out->AddMetadata(k, std::string(value.data(), value.size()));
    }
    return out;
  }

  std::string target_, address_;
  std::unique_ptr<v2::Worker::Stub> stub_;
  std::unique_ptr<grpc::Server> server_;
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<std::string> loaded_;
  std::vector<Unload> unloaded_;
  bool hold_next_ = false, holding_ = false, released_ = false;
  int unload_delay_ms_ = 0;
};

// One stage: resource, first and last block (last < first: the stage only sends the input).
struct StageSpec {
  std::string resource;
  int first, last;
};

plan::PlannedRun Layout(const std::vector<StageSpec>& stages) {
  plan::PlannedRun run;
  for (const auto& s : stages) {
    plan::PlannedStage stage;
    stage.tier = s.resource;
    stage.resource = s.resource;
    stage.first_block = s.first;
    stage.last_block = s.last;
    run.stages.push_back(stage);
  }
  return run;
}

// Layouts in rotation: three tiers, input-only first stage, all local, two tiers, three tiers
// with a one-block middle.
std::vector<plan::PlannedRun> Layouts() {
  return {
      Layout({{"device", 0, 1}, {"edge", 2, 3}, {"cloud", 4, 5}}),
      Layout({{"device", 0, -1}, {"cloud", 0, 5}}),
      Layout({{"device", 0, 5}}),
      Layout({{"device", 0, 2}, {"edge", 3, 5}}),
      Layout({{"device", 0, -1}, {"edge", 0, 0}, {"cloud", 1, 5}}),
  };
}

struct Answer {
  uint64_t request_id = 0;
  ChainResult result;
};

struct LoadRun {
  std::vector<std::vector<Answer>> per_client;  // in the order each client sent them
  std::vector<uint64_t> installed;              // chain numbers, the first layout's included
  double wall_s = 0;
};

class PipelineSwitch : public ::testing::Test {
 protected:
  void SetUp() override {
    model_bytes_ = SixBlockModel().SerializeAsString();
    sha_ = Sha256Hex(model_bytes_);
    model_path_ = ::testing::TempDir() + "/pipeline_switch_" + std::to_string(::getpid()) + ".onnx";
    WriteFileAtomic(model_path_, model_bytes_);
    auto analysis = graph::Analyze(SixBlockModel());
    ASSERT_EQ(analysis.blocks.size(), static_cast<size_t>(kBlocks));
    whole_ = runtime::CreateBackend(runtime::kDefaultBackend)->Prepare(model_bytes_, {1}, "whole");
  }
  void TearDown() override { std::filesystem::remove(model_path_); }

  PipelineOptions Options(std::map<std::string, std::string> workers) const {
    PipelineOptions o;
    o.plan_doc.model = {sha_, "six_blocks", model_path_, "onnx"};
    o.plan_doc.blocks = kBlocks;
    o.workers = std::move(workers);
    o.threads = 1;
    o.connect.timeout_ms = 10000;
    return o;
  }

  // Request `id`'s input: distinct per id.
  Tensor InputFor(uint64_t id) const { return runtime::MakeRandomInput(whole_->inputs()[0], id); }

  // The answer to request `id` is the whole model's output for that request's input.
  void ExpectWholeModelOutput(const Answer& a) const {
    ASSERT_TRUE(a.result.ok) << "request " << a.request_id << ": " << a.result.error;
    auto expected = runtime::RunOnce(*whole_, {InputFor(a.request_id)});
    ASSERT_EQ(a.result.outputs.size(), expected.size()) << "request " << a.request_id;
    for (size_t i = 0; i < expected.size(); ++i) {
      const auto& got = a.result.outputs[i];
      ASSERT_EQ(got.spec.name, expected[i].spec.name);
      ASSERT_EQ(got.spec.shape, expected[i].spec.shape);
      ASSERT_EQ(got.data.size(), expected[i].data.size());
      const float* g = reinterpret_cast<const float*>(got.data.data());
      const float* w = reinterpret_cast<const float*>(expected[i].data.data());
      float worst = 0;
      for (size_t k = 0; k < got.data.size() / sizeof(float); ++k)
        worst = std::max(worst, std::fabs(g[k] - w[k]));
      ASSERT_LE(worst, 1e-4f) << "request " << a.request_id << " (chain " << a.result.chain
                              << ") got another answer than its own input's";
    }
  }

  // `clients` threads send `per_client` requests each (ids client * 10000 + i) while this thread
  // installs `installs` layouts in rotation, spread over the run. Bounded by `cap` in time.
  LoadRun SwitchUnderLoad(Pipeline& pipeline, const std::vector<plan::PlannedRun>& layouts,
                          int installs, int clients, int per_client,
                          std::chrono::seconds cap) const {
    LoadRun run;
    run.per_client.resize(static_cast<size_t>(clients));
    pipeline.Install(layouts[0]);
    run.installed.push_back(pipeline.current_chain());
    const auto start = Clock::now(), deadline = start + cap;
    std::atomic<int> done{0}, finished{0};
    std::vector<std::thread> threads;
    for (int c = 0; c < clients; ++c)
      threads.emplace_back([&, c] {
        auto& answers = run.per_client[static_cast<size_t>(c)];
        for (int i = 0; i < per_client && Clock::now() < deadline; ++i) {
          const uint64_t id = static_cast<uint64_t>(c) * 10000 + static_cast<uint64_t>(i) + 1;
          answers.push_back({id, pipeline.Infer({InputFor(id)}, id, 30000)});
          ++done;
        }
        ++finished;
      });
    const int total = clients * per_client;
    for (int i = 1; i <= installs; ++i) {
      // Switch when the clients are i/(installs+1) of the way through, so switches meet requests.
      while (done.load() < i * total / (installs + 1) && finished.load() < clients &&
             Clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      pipeline.Install(layouts[static_cast<size_t>(i) % layouts.size()]);
      run.installed.push_back(pipeline.current_chain());
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    for (auto& t : threads) t.join();
    run.wall_s = std::chrono::duration<double>(Clock::now() - start).count();
    return run;
  }

  // Every request answered exactly once, correctly, chains never going back; returns the chains
  // that answered.
  std::set<uint64_t> CheckAnswers(const LoadRun& run, int per_client) const {
    std::map<uint64_t, int> per_id;
    std::set<uint64_t> chains;
    for (size_t c = 0; c < run.per_client.size(); ++c) {
      const auto& answers = run.per_client[c];
      EXPECT_EQ(answers.size(), static_cast<size_t>(per_client))
          << "client " << c << " ran out of time (" << run.wall_s << " s)";
      uint64_t last_chain = 0;
      for (const auto& a : answers) {
        ++per_id[a.request_id];
        chains.insert(a.result.chain);
        EXPECT_GE(a.result.chain, last_chain) << "client " << c << " went back to an old chain";
        last_chain = a.result.chain;
        ExpectWholeModelOutput(a);
      }
    }
    EXPECT_EQ(per_id.size(), run.per_client.size() * static_cast<size_t>(per_client));
    for (const auto& [id, count] : per_id) EXPECT_EQ(count, 1) << "request " << id;
    return chains;
  }

  std::string model_bytes_, sha_, model_path_;
  std::unique_ptr<runtime::Session> whole_;
};

TEST_F(PipelineSwitch, SwitchesUnderConcurrentLoadLoseAndDuplicateNothing) {
  // The test's premise: different inputs give outputs further apart than the tolerance.
  auto a = runtime::RunOnce(*whole_, {InputFor(1)}), b = runtime::RunOnce(*whole_, {InputFor(2)});
  const float* fa = reinterpret_cast<const float*>(a[0].data.data());
  const float* fb = reinterpret_cast<const float*>(b[0].data.data());
  float apart = 0;
  for (size_t k = 0; k < a[0].data.size() / sizeof(float); ++k)
    apart = std::max(apart, std::fabs(fa[k] - fb[k]));
  ASSERT_GT(apart, 1e-2f);

  TestWorker edge("edge"), cloud("cloud");
  Pipeline pipeline(Options({{"edge", edge.address}, {"cloud", cloud.address}}),
                    [](const std::string&) {});
  constexpr int kClients = 4, kPerClient = 150, kInstalls = 20;
  auto run = SwitchUnderLoad(pipeline, Layouts(), kInstalls, kClients, kPerClient,
                             std::chrono::seconds(60));
  ASSERT_EQ(run.installed.size(), static_cast<size_t>(kInstalls + 1));
  for (size_t i = 1; i < run.installed.size(); ++i)
    EXPECT_EQ(run.installed[i], run.installed[i - 1] + 1);
  auto chains = CheckAnswers(run, kPerClient);
  EXPECT_GE(chains.size(), 3u) << "the switches did not meet the requests";
  for (uint64_t c : chains) {
    EXPECT_GE(c, run.installed.front());
    EXPECT_LE(c, run.installed.back());
  }
  std::printf("%d clients x %d requests over %d installs: %.2f s, %zu chains answered\n", kClients,
              kPerClient, kInstalls, run.wall_s, chains.size());
}

// `layout` with the hops' codecs, one per hop in order (the last one past the stages' hops is
// the return hop).
plan::PlannedRun WithCodecs(plan::PlannedRun run, const std::vector<std::string>& codecs) {
  for (size_t i = 0; i < codecs.size(); ++i) {
    plan::PlannedHop hop;
    hop.from = run.stages[i].resource;
    hop.to = i + 1 < run.stages.size() ? run.stages[i + 1].resource : run.stages[0].resource;
    hop.codec = codecs[i];
    run.hops.push_back(hop);
  }
  return run;
}

// A switch that changes only a hop's codec is a switch like any other (serve re-plans codecs
// with the cut): under load, every request is answered once, exactly (the codecs are lossless),
// and each chain's hops really travel in its codecs.
TEST_F(PipelineSwitch, CodecOnlySwitchesUnderLoadAreExactAndLoseNothing) {
  TestWorker edge("edge"), cloud("cloud");
  Pipeline pipeline(Options({{"edge", edge.address}, {"cloud", cloud.address}}),
                    [](const std::string&) {});
  const auto three = Layout({{"device", 0, 1}, {"edge", 2, 3}, {"cloud", 4, 5}});
  const std::vector<plan::PlannedRun> layouts = {
      WithCodecs(three, {"none", "none"}),
      WithCodecs(three, {"lz4", "zstd"}),
      WithCodecs(three, {"zstd", "lz4", "lz4"}),
      WithCodecs(Layout({{"device", 0, 2}, {"edge", 3, 5}}), {"lz4", "zstd"}),
      WithCodecs(three, {"none", "zstd"}),
  };
  std::set<std::string> keys;
  for (const auto& l : layouts) keys.insert(plan::PlanKey(l));
  ASSERT_EQ(keys.size(), layouts.size()) << "the codecs are not part of what makes a chain";
  EXPECT_EQ(plan::PlanKey(layouts[0]), plan::LayoutText(three));
  EXPECT_EQ(plan::PlanKey(layouts[2]), plan::LayoutText(three) + " [zstd,lz4,lz4]");

  constexpr int kClients = 3, kPerClient = 100, kInstalls = 12;
  auto run =
      SwitchUnderLoad(pipeline, layouts, kInstalls, kClients, kPerClient, std::chrono::seconds(60));
  auto chains = CheckAnswers(run, kPerClient);
  EXPECT_GE(chains.size(), 3u) << "the switches did not meet the requests";
  // Each answer's timings belong to its own chain's codecs: a coded hop spent time encoding
  // and decoding, a raw one none.
  std::set<std::string> seen;
  for (const auto& answers : run.per_client)
    for (const auto& a : answers) {
      const auto& hops = a.result.plan.hops;
      ASSERT_EQ(a.result.hop_encode_ms.size(), a.result.hop_ms.size());
      seen.insert(plan::PlanKey(a.result.plan));
      // The return hop (a hop past the stages' ones) is decoded here, and only when coded.
      const bool coded_return =
          hops.size() == a.result.plan.stages.size() && hops.back().codec != "none";
      if (coded_return) {
        EXPECT_GT(a.result.return_decode_ms, 0.0) << plan::PlanKey(a.result.plan);
      } else {
        EXPECT_EQ(a.result.return_decode_ms, 0.0) << plan::PlanKey(a.result.plan);
      }
      for (size_t h = 0; h < a.result.hop_ms.size() && h < hops.size(); ++h) {
        if (hops[h].codec == "none") {
          EXPECT_EQ(a.result.hop_encode_ms[h] + a.result.hop_decode_ms[h], 0.0)
              << plan::PlanKey(a.result.plan) << " hop " << h;
        } else {
          EXPECT_GT(a.result.hop_encode_ms[h] + a.result.hop_decode_ms[h], 0.0)
              << plan::PlanKey(a.result.plan) << " hop " << h;
        }
      }
    }
  EXPECT_GE(seen.size(), 3u);
  for (const auto& k : seen) EXPECT_TRUE(keys.count(k)) << k;
}

TEST_F(PipelineSwitch, OldChainReleasesItsWorkerSegmentsAfterItsLastRequest) {
  TestWorker edge("edge"), cloud("cloud");
  for (const auto* w : {&edge, &cloud}) WorkerClient(w->address, {}).EnsureModel(sha_, model_path_);
  RecordingProxy edge_proxy(edge.address), cloud_proxy(cloud.address);
  const std::map<std::string, RecordingProxy*> proxies = {{"edge", &edge_proxy},
                                                          {"cloud", &cloud_proxy}};
  const std::map<std::string, std::string> real = {{"edge", edge.address},
                                                   {"cloud", cloud.address}};
  auto pipeline = std::make_unique<Pipeline>(
      Options({{"edge", edge_proxy.address()}, {"cloud", cloud_proxy.address()}}),
      [](const std::string&) {});
  auto loaded_count = [&] {
    std::map<std::string, size_t> n;
    for (const auto& [name, p] : proxies) n[name] = p->loaded().size();
    return n;
  };
  // Ids a worker answers NOT_FOUND for: no longer loaded there (a request to them fails before
  // any tensor is read).
  auto not_loaded = [&](const std::string& resource, const std::string& id) {
    auto reply = WorkerClient(real.at(resource), {}).Infer(id, 1, {InputFor(1)}, 10000);
    return reply.status.error_code() == grpc::StatusCode::NOT_FOUND;
  };

  // 1. A request in flight keeps its chain's segments loaded across a switch; they go when it
  // ends, and it is answered by the chain it started on.
  const auto three_tiers = Layout({{"device", 0, 1}, {"edge", 2, 3}, {"cloud", 4, 5}});
  pipeline->Install(three_tiers);
  const uint64_t first_chain = pipeline->current_chain();
  std::vector<std::pair<std::string, std::string>> first_ids;  // resource, id
  for (const auto& [name, p] : proxies)
    for (const auto& id : p->loaded()) first_ids.emplace_back(name, id);
  ASSERT_EQ(first_ids.size(), 2u);
  edge_proxy.HoldNextInfer();
  Answer held{777, {}};
  std::thread in_flight([&] { held.result = pipeline->Infer({InputFor(777)}, 777, 30000); });
  ASSERT_TRUE(edge_proxy.WaitUntilHolding(10000)) << "the request never reached the edge worker";
  auto before = loaded_count();
  pipeline->Install(Layout({{"device", 0, -1}, {"cloud", 0, 5}}));
  EXPECT_EQ(loaded_count()["cloud"], before["cloud"] + 1);
  Answer during{778, pipeline->Infer({InputFor(778)}, 778, 30000)};
  EXPECT_EQ(during.result.chain, first_chain + 1);
  ExpectWholeModelOutput(during);
  EXPECT_TRUE(edge_proxy.unloaded().empty()) << "unloaded under a request in flight";
  EXPECT_TRUE(cloud_proxy.unloaded().empty()) << "unloaded under a request in flight";
  edge_proxy.Release();
  in_flight.join();
  EXPECT_EQ(held.result.chain, first_chain);
  ExpectWholeModelOutput(held);
  // The old chain is released once the request that ended it is done (on a thread of its own,
  // so that request does not wait for it).
  for (const auto& [resource, id] : first_ids) {
    bool gone = false;
    for (int i = 0; i < 100 && !gone; ++i) {
      gone = not_loaded(resource, id);
      if (!gone) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    EXPECT_TRUE(gone) << resource << " still holds " << id;
    // The worker drops the segment before the proxy records the reply it forwards: wait for it.
    auto unloaded_here = [&] {
      auto unloads = proxies.at(resource)->unloaded();
      return std::count_if(unloads.begin(), unloads.end(),
                           [&](const auto& u) { return u.id == id; });
    };
    for (int i = 0; i < 100 && unloaded_here() == 0; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    EXPECT_EQ(unloaded_here(), 1);
  }

  // 2. After switching under load, every chain but the current one has given back its segments:
  // loaded - unloaded is exactly the current chain's, each unloaded once and found (not evicted).
  LoadRun run;
  std::map<std::string, size_t> last_install;  // loaded() size on each proxy before it
  {
    auto layouts = Layouts();
    // SwitchUnderLoad installs the layouts in rotation; the current chain is the last one's.
    constexpr int kInstalls = 10;
    const auto& last_layout = layouts[kInstalls % layouts.size()];
    ASSERT_GT(last_layout.stages.size(), 1u) << "the last layout must hold worker segments";
    run = SwitchUnderLoad(*pipeline, layouts, kInstalls, 4, 60, std::chrono::seconds(60));
    // The last Install loaded one segment per remote stage, last on each proxy.
    for (const auto& [name, p] : proxies) {
      size_t n = 0;
      for (const auto& s : last_layout.stages)
        if (s.resource == name) ++n;
      last_install[name] = p->loaded().size() - n;
    }
  }
  auto chains = CheckAnswers(run, 60);
  EXPECT_GE(chains.size(), 3u);
  // Unloads run on their own thread after an old chain's last request: give them a moment.
  for (int i = 0; i < 100; ++i) {
    bool all = true;
    for (const auto& [name, p] : proxies) all &= p->unloaded().size() >= last_install[name];
    if (all) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  std::set<std::string> current;
  for (const auto& [name, p] : proxies) {
    auto loaded = p->loaded();
    auto unloads = p->unloaded();
    std::map<std::string, int> unload_count;
    for (const auto& u : unloads) {
      ++unload_count[u.id];
      EXPECT_EQ(u.code, grpc::StatusCode::OK) << name << " " << u.id << " was gone already";
    }
    for (size_t i = 0; i < loaded.size(); ++i) {
      const auto& id = loaded[i];
      if (i >= last_install[name]) {
        current.insert(id);
        EXPECT_EQ(unload_count[id], 0) << name << ": the current chain's " << id << " unloaded";
        EXPECT_FALSE(not_loaded(name, id)) << name << ": the current chain's " << id << " gone";
      } else {
        EXPECT_EQ(unload_count[id], 1) << name << ": old segment " << id << " (load " << i << ")";
        EXPECT_TRUE(not_loaded(name, id)) << name << " still holds old segment " << id;
      }
    }
    EXPECT_EQ(unloads.size(), last_install[name]) << name;
  }
  EXPECT_FALSE(current.empty());
  Answer after{999999, pipeline->Infer({InputFor(999999)}, 999999, 30000)};
  ExpectWholeModelOutput(after);
  EXPECT_EQ(after.result.chain, run.installed.back());

  // 3. Destroying the pipeline releases the current chain too.
  pipeline.reset();
  for (const auto& [name, p] : proxies)
    for (const auto& id : p->loaded()) {
      if (!current.count(id)) continue;
      bool gone = false;
      for (int i = 0; i < 100 && !gone; ++i) {
        gone = not_loaded(name, id);
        if (!gone) std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
      EXPECT_TRUE(gone) << name << " still holds " << id << " after the pipeline";
    }
}

TEST_F(PipelineSwitch, InstallFailureKeepsTheCurrentChain) {
  TestWorker edge("edge"), cloud("cloud");
  WorkerClient(cloud.address, {}).EnsureModel(sha_, model_path_);
  RecordingProxy cloud_proxy(cloud.address);
  // "ghost" has an address where nothing listens.
  auto options =
      Options({{"edge", edge.address}, {"cloud", cloud_proxy.address()}, {"ghost", "127.0.0.1:1"}});
  options.connect.timeout_ms = 5000;
  Pipeline pipeline(options, [](const std::string&) {});
  pipeline.Install(Layout({{"device", 0, 1}, {"edge", 2, 3}, {"cloud", 4, 5}}));
  const uint64_t good = pipeline.current_chain();
  const size_t good_loads = cloud_proxy.loaded().size();
  ASSERT_EQ(good_loads, 1u);

  // Requests run all along the failing installs.
  std::atomic<bool> stop{false};
  std::vector<Answer> answers;
  std::thread client([&] {
    const auto deadline = Clock::now() + std::chrono::seconds(30);
    // At least 50 requests, so some overlap the installs however fast they fail.
    for (uint64_t id = 1; id <= 400 && (id <= 50 || !stop.load()) && Clock::now() < deadline; ++id)
      answers.push_back({id, pipeline.Infer({InputFor(id)}, id, 30000)});
  });
  auto expect_refused = [&](const plan::PlannedRun& plan, const std::string& why) {
    try {
      pipeline.Install(plan);
      ADD_FAILURE() << "installed a plan that cannot run (" << why << ")";
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::kBadInput) << e.what();
      EXPECT_THAT(e.what(), HasSubstr(why));
    }
    EXPECT_EQ(pipeline.current_chain(), good);
  };
  expect_refused(Layout({{"device", 0, 1}, {"nowhere", 2, 5}}),
                 "--workers has no address for resource 'nowhere'");
  expect_refused(Layout({{"device", 0, 1}, {"ghost", 2, 5}}), "unreachable");
  // The cloud segment is loaded before the ghost fails: it must not stay behind.
  expect_refused(Layout({{"device", 0, 1}, {"ghost", 2, 3}, {"cloud", 4, 5}}), "unreachable");
  expect_refused(Layout({}), "plan has no stages");
  stop = true;
  client.join();

  ASSERT_GE(answers.size(), 50u);
  for (const auto& a : answers) {
    EXPECT_EQ(a.result.chain, good);
    ExpectWholeModelOutput(a);
  }
  auto loads = cloud_proxy.loaded();
  ASSERT_EQ(loads.size(), good_loads + 1);
  auto unloads = cloud_proxy.unloaded();
  ASSERT_EQ(unloads.size(), 1u) << "the failed install left its cloud segment loaded";
  EXPECT_EQ(unloads[0].id, loads.back());
  EXPECT_EQ(unloads[0].code, grpc::StatusCode::OK);
  Answer after{5000, pipeline.Infer({InputFor(5000)}, 5000, 30000)};
  EXPECT_EQ(after.result.chain, good);
  ExpectWholeModelOutput(after);
}

// Giving an old chain's segments back is housekeeping: no request may wait for it. An unload that
// takes 1 s (a worker behind a slow link, or a dead one that does not refuse the connection)
// must not show in any request's latency, whether the old chain ends in Install (nothing in
// flight) or with the last request that used it.
// A staged chain is installed without loading anything, answers like any other, and the chain it
// replaces stays loaded as the next staged one when asked (a switch back costs no load either).
TEST_F(PipelineSwitch, StagedChainIsInstalledWithoutLoadingAndTheLeftOneStaysStaged) {
  TestWorker edge("edge"), cloud("cloud");
  for (const auto* w : {&edge, &cloud}) WorkerClient(w->address, {}).EnsureModel(sha_, model_path_);
  RecordingProxy edge_proxy(edge.address), cloud_proxy(cloud.address);
  Pipeline pipeline(Options({{"edge", edge_proxy.address()}, {"cloud", cloud_proxy.address()}}),
                    [](const std::string&) {});
  const auto via_edge = Layout({{"device", 0, 1}, {"edge", 2, 5}});
  const auto via_cloud = Layout({{"device", 0, -1}, {"cloud", 0, 5}});
  EXPECT_FALSE(pipeline.Install(via_edge));
  EXPECT_TRUE(pipeline.staged_layouts().empty());
  pipeline.Stage(via_cloud);
  EXPECT_EQ(pipeline.staged_layouts(), std::vector<std::string>{plan::LayoutText(via_cloud)});
  ASSERT_EQ(cloud_proxy.loaded().size(), 1u);
  // Staging the current plan or the staged one again loads nothing.
  pipeline.Stage(via_edge);
  pipeline.Stage(via_cloud);
  EXPECT_EQ(edge_proxy.loaded().size(), 1u);
  EXPECT_EQ(cloud_proxy.loaded().size(), 1u);
  EXPECT_EQ(pipeline.current_chain(), 1u);

  EXPECT_TRUE(pipeline.Install(via_cloud, /*keep_previous=*/true));
  EXPECT_EQ(cloud_proxy.loaded().size(), 1u) << "the staged chain was loaded again";
  EXPECT_EQ(pipeline.current_chain(), 2u);
  EXPECT_EQ(plan::LayoutText(pipeline.current_plan()), plan::LayoutText(via_cloud));
  EXPECT_EQ(pipeline.staged_layouts(), std::vector<std::string>{plan::LayoutText(via_edge)});
  Answer a{11, pipeline.Infer({InputFor(11)}, 11, 30000)};
  EXPECT_EQ(a.result.chain, 2u);
  ExpectWholeModelOutput(a);

  // Back: the left chain is taken as it is, renumbered, and answers.
  EXPECT_TRUE(pipeline.Install(via_edge));
  EXPECT_EQ(edge_proxy.loaded().size(), 1u);
  EXPECT_EQ(pipeline.current_chain(), 3u);
  Answer b{12, pipeline.Infer({InputFor(12)}, 12, 30000)};
  EXPECT_EQ(b.result.chain, 3u);
  ExpectWholeModelOutput(b);
  // Without keep_previous the left chain is released, and nothing stays staged.
  EXPECT_TRUE(pipeline.staged_layouts().empty());
  bool released = false;
  for (int i = 0; i < 100 && !released; ++i) {
    released = !cloud_proxy.unloaded().empty();
    if (!released) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_TRUE(released) << "the chain left without keep_previous kept its cloud segment";
  // Both slots at once: the chain left by a switch and the one staged, each taken by its layout.
  const auto three = Layout({{"device", 0, 1}, {"edge", 2, 3}, {"cloud", 4, 5}});
  pipeline.Stage(via_cloud);
  EXPECT_TRUE(pipeline.Install(via_cloud, true));
  pipeline.Stage(three);
  EXPECT_EQ(pipeline.staged_layouts(),
            (std::vector<std::string>{plan::LayoutText(via_edge), plan::LayoutText(three)}));
  EXPECT_TRUE(pipeline.Install(via_edge, true));
  EXPECT_EQ(pipeline.staged_layouts(),
            (std::vector<std::string>{plan::LayoutText(via_cloud), plan::LayoutText(three)}));
  EXPECT_TRUE(pipeline.Install(three, true));
  Answer c{13, pipeline.Infer({InputFor(13)}, 13, 30000)};
  ExpectWholeModelOutput(c);
}

// A staged chain whose worker has gone is not installed: the plan is loaded afresh, which fails
// like any install on a dead worker, and the current chain stays.
TEST_F(PipelineSwitch, StagedChainOnAWorkerThatWentIsNotInstalled) {
  auto edge = std::make_unique<TestWorker>("edge");
  TestWorker cloud("cloud");
  for (const auto* w : {edge.get(), &cloud})
    WorkerClient(w->address, {}).EnsureModel(sha_, model_path_);
  Pipeline pipeline(Options({{"edge", edge->address}, {"cloud", cloud.address}}),
                    [](const std::string&) {});
  const auto via_cloud = Layout({{"device", 0, -1}, {"cloud", 0, 5}});
  const auto via_edge = Layout({{"device", 0, 1}, {"edge", 2, 5}});
  pipeline.Install(via_cloud);
  pipeline.Stage(via_edge);
  ASSERT_EQ(pipeline.staged_layouts(), std::vector<std::string>{plan::LayoutText(via_edge)});
  edge.reset();
  EXPECT_THROW(pipeline.Install(via_edge), Error);
  EXPECT_EQ(plan::LayoutText(pipeline.current_plan()), plan::LayoutText(via_cloud));
  Answer a{21, pipeline.Infer({InputFor(21)}, 21, 30000)};
  ExpectWholeModelOutput(a);
}

TEST_F(PipelineSwitch, ReleasingAnOldChainDelaysNoRequest) {
  TestWorker edge("edge"), cloud("cloud");
  for (const auto* w : {&edge, &cloud}) WorkerClient(w->address, {}).EnsureModel(sha_, model_path_);
  RecordingProxy edge_proxy(edge.address), cloud_proxy(cloud.address);
  Pipeline pipeline(Options({{"edge", edge_proxy.address()}, {"cloud", cloud_proxy.address()}}),
                    [](const std::string&) {});
  auto layouts = Layouts();
  pipeline.Install(layouts[0]);
  edge_proxy.DelayUnloads(1000);
  cloud_proxy.DelayUnloads(1000);
  std::atomic<bool> stop{false};
  std::vector<double> latency_ms;
  std::thread client([&] {
    const auto deadline = Clock::now() + std::chrono::seconds(30);
    for (uint64_t id = 1; id <= 2000 && !stop.load() && Clock::now() < deadline; ++id) {
      auto start = Clock::now();
      Answer a{id, pipeline.Infer({InputFor(id)}, id, 30000)};
      latency_ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - start).count());
      EXPECT_TRUE(a.result.ok) << a.result.error;
    }
  });
  for (int i = 1; i <= 3; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    pipeline.Install(layouts[static_cast<size_t>(i) % 2]);  // three tiers, then cloud only
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  stop = true;
  client.join();
  ASSERT_FALSE(latency_ms.empty());
  const double worst = *std::max_element(latency_ms.begin(), latency_ms.end());
  EXPECT_LT(worst, 500) << latency_ms.size() << " requests; the slowest waited for an unload";
}

}  // namespace
}  // namespace scission::deploy
