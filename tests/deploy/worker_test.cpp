#include <filesystem>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/error.h"
#include "common/files.h"
#include "deploy/client.h"
#include "deploy/worker.h"
#include "graph/analysis.h"
#include "graph/graph_builder.h"
#include "graph/model.h"
#include "profile/stats.h"
#include "runtime/backend.h"

namespace scission::deploy {
namespace {

using ::testing::HasSubstr;

struct TestWorker {
  explicit TestWorker(const std::string& name, const std::string& token = "",
                      const std::string& cert = "", const std::string& key = "") {
    WorkerOptions o;
    o.tls_cert = cert;
    o.tls_key = key;
    o.listen = "127.0.0.1:0";
    o.resource = name;
    o.tier = "edge";
    o.token = token;
    o.threads = 1;
    o.cache_dir = ::testing::TempDir() + "/worker_cache_" + name;
    std::filesystem::remove_all(o.cache_dir);
    server = std::make_unique<WorkerServer>(o);
    port = server->Start();
    address = "127.0.0.1:" + std::to_string(port);
  }
  std::unique_ptr<WorkerServer> server;
  int port = 0;
  std::string address;
};

class Deploy : public ::testing::Test {
 protected:
  void SetUp() override {
    model_bytes_ = testing::ChainModel(3).SerializeAsString();
    sha_ = Sha256Hex(model_bytes_);
    model_path_ = ::testing::TempDir() + "/deploy_chain.onnx";
    WriteFileAtomic(model_path_, model_bytes_);
  }
  // Raw stub with full control over metadata, for malformed calls.
  static std::unique_ptr<v1::Worker::Stub> RawStub(const std::string& address) {
    return v1::Worker::NewStub(MakeChannel(address, {}));
  }
  static void Versioned(grpc::ClientContext* ctx) { ctx->AddMetadata(kProtocolHeader, "1"); }

  std::string model_bytes_, sha_, model_path_;
};

TEST_F(Deploy, HandshakeRejectsOtherVersions) {
  TestWorker w("edge1");
  WorkerClient client(w.address, {});
  auto info = client.Hello();
  EXPECT_EQ(info.resource, "edge1");
  EXPECT_THAT(info.runtime_version, ::testing::StartsWith("1.30"));

  auto stub = RawStub(w.address);
  grpc::ClientContext ctx;
  v1::HelloRequest hello;
  hello.set_protocol_version(2);
  v1::HelloReply reply;
  auto status = stub->Hello(&ctx, hello, &reply);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(status.error_message(), HasSubstr("protocol version 2"));

  grpc::ClientContext no_header;
  v1::Empty empty;
  EXPECT_EQ(stub->Health(&no_header, empty, &empty).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
  grpc::ClientContext wrong_header;
  wrong_header.AddMetadata(kProtocolHeader, "7");
  EXPECT_EQ(stub->Health(&wrong_header, empty, &empty).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
}

TEST_F(Deploy, TokenIsRequiredWhenSet) {
  TestWorker w("edge2", "s3cret");
  EXPECT_THROW(WorkerClient(w.address, {}).Hello(), Error);
  EXPECT_THROW(WorkerClient(w.address, {"wrong", "", 5000}).Hello(), Error);
  EXPECT_EQ(WorkerClient(w.address, {"s3cret", "", 5000}).Hello().resource, "edge2");
  auto stub = RawStub(w.address);
  grpc::ClientContext ctx;
  Versioned(&ctx);
  v1::PingRequest ping;
  v1::PingReply pong;
  EXPECT_EQ(stub->Ping(&ctx, ping, &pong).error_code(), grpc::StatusCode::UNAUTHENTICATED);
}

TEST_F(Deploy, TlsWorkerAcceptsOnlyVerifiedClients) {
  std::string dir = ::testing::TempDir() + "/tls";
  std::filesystem::create_directories(dir);
  std::string cert = dir + "/cert.pem", key = dir + "/key.pem";
  int rc =
      std::system(("openssl req -x509 -newkey rsa:2048 -nodes -keyout " + key + " -out " + cert +
                   " -days 2 -subj /CN=localhost -addext subjectAltName=IP:127.0.0.1,DNS:localhost"
                   " >/dev/null 2>&1")
                      .c_str());
  ASSERT_EQ(rc, 0) << "openssl is needed to make a test certificate";
  TestWorker w("tls1", "tok", cert, key);
  EXPECT_EQ(WorkerClient(w.address, {"tok", cert, 5000}).Hello().resource, "tls1");
  EXPECT_THROW(WorkerClient(w.address, {"tok", "", 3000}).Hello(),
               Error);  // plaintext to a TLS port
  EXPECT_THROW(WorkerClient(w.address, {"", cert, 3000}).Hello(), Error);  // TLS but no token
}

TEST_F(Deploy, UnreachableWorkerIsBadInput) {
  try {
    WorkerClient("127.0.0.1:1", {"", "", 2000}).Hello();
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kBadInput);
    EXPECT_THAT(e.what(), HasSubstr("unreachable"));
  }
  EXPECT_THROW(WorkerClient("no-port", {}), Error);
}

TEST_F(Deploy, ModelUploadIsVerified) {
  TestWorker w("edge3");
  WorkerClient client(w.address, {});
  EXPECT_TRUE(client.EnsureModel(sha_, model_path_));
  EXPECT_FALSE(client.EnsureModel(sha_, model_path_));  // cached by hash: not sent again

  auto put = [&](const std::string& sha, uint64_t total, const std::string& data) {
    auto stub = RawStub(w.address);
    grpc::ClientContext ctx;
    Versioned(&ctx);
    v1::ModelRef reply;
    auto writer = stub->PutModel(&ctx, &reply);
    v1::ModelChunk chunk;
    chunk.set_sha256(sha);
    chunk.set_total_bytes(total);
    chunk.set_data(data);
    writer->Write(chunk);
    writer->WritesDone();
    return writer->Finish();
  };
  std::string other = testing::ChainModel(2).SerializeAsString();
  EXPECT_EQ(put(sha_, other.size(), other).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);  // hash mismatch
  EXPECT_EQ(put(Sha256Hex(other), other.size() + 10, other).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);  // truncated
  std::string junk(100, 'j');
  auto s = put(Sha256Hex(junk), junk.size(), junk);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);  // not ONNX
  EXPECT_EQ(put("nothex", 10, "x").error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(put(Sha256Hex(junk), 1ULL << 40, junk).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);  // absurd size
  EXPECT_EQ(client.Hello().resource, "edge3");    // still up
}

TEST_F(Deploy, ChainOfWorkersReproducesTheModelAndBenchmarks) {
  TestWorker edge("edgeA"), cloud("cloudA");
  WorkerClient e(edge.address, {}), c(cloud.address, {});
  e.EnsureModel(sha_, model_path_);
  c.EnsureModel(sha_, model_path_);
  auto tail = c.LoadSegment(sha_, 2, 2, 1, "", "");
  auto head = e.LoadSegment(sha_, 0, 1, 1, cloud.address, tail.segment_id());
  ASSERT_EQ(head.inputs_size(), 1);

  auto model = graph::ParseModel(model_bytes_, "chain");
  auto backend = runtime::CreateBackend("onnxruntime");
  auto whole = backend->Prepare(model_bytes_, {1}, "whole");
  auto input = runtime::MakeRandomInput(whole->inputs()[0], 5);
  auto expected = runtime::RunOnce(*whole, {input});

  v1::InferRequest req;
  req.set_segment_id(head.segment_id());
  req.set_request_id(42);
  ToWire(input, req.add_inputs());
  v1::InferReply reply;
  ASSERT_TRUE(e.Infer(req, &reply, 10000).ok());
  EXPECT_EQ(reply.request_id(), 42u);
  ASSERT_EQ(reply.timings_size(), 2);
  EXPECT_EQ(reply.timings(0).resource(), "edgeA");
  EXPECT_EQ(reply.timings(1).resource(), "cloudA");
  EXPECT_GE(reply.timings(0).server_ms(), reply.timings(0).forward_ms());
  EXPECT_GE(reply.timings(0).forward_ms(), reply.timings(1).server_ms());
  ASSERT_EQ(reply.outputs_size(), 1);
  auto got = FromWire(reply.outputs(0), "reply");
  EXPECT_EQ(got.data, expected[0].data);

  auto records = nlohmann::json::parse(c.Benchmark(sha_, 1, 3, 1));
  store::ModelRecord m;
  std::vector<store::BlockRecord> blocks;
  store::RunRecord run;
  RecordsFromJson(records, &m, &blocks, &run);
  EXPECT_EQ(m.key, sha_);
  EXPECT_EQ(blocks.size(), 3u);
  EXPECT_EQ(run.measurements.size(), 4u);  // whole + 3 blocks
}

TEST_F(Deploy, MalformedInferRequestsAreRefusedAndTheWorkerStaysUp) {
  TestWorker w("edgeB");
  WorkerClient client(w.address, {});
  client.EnsureModel(sha_, model_path_);
  auto seg = client.LoadSegment(sha_, 0, 2, 1, "", "");
  auto infer = [&](const std::function<void(v1::Tensor*)>& edit, const std::string& segment) {
    v1::InferRequest req;
    req.set_segment_id(segment);
    Tensor t = runtime::MakeRandomInput({"x", DType::kFloat, {1, 4, 8, 8}}, 1);
    auto* wire = req.add_inputs();
    ToWire(t, wire);
    edit(wire);
    v1::InferReply reply;
    return client.Infer(req, &reply, 10000);
  };
  EXPECT_TRUE(infer([](v1::Tensor*) {}, seg.segment_id()).ok());
  EXPECT_EQ(infer([](v1::Tensor*) {}, "nope").error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(infer([](v1::Tensor* t) { t->set_shape(3, 9); }, seg.segment_id()).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);  // wrong shape
  EXPECT_EQ(
      infer([](v1::Tensor* t) { t->mutable_data()->resize(100); }, seg.segment_id()).error_code(),
      grpc::StatusCode::INVALID_ARGUMENT);  // truncated
  EXPECT_EQ(infer([](v1::Tensor* t) { t->set_shape(1, 1LL << 40); }, seg.segment_id()).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);  // absurd
  EXPECT_EQ(infer([](v1::Tensor* t) { t->set_shape(1, -4); }, seg.segment_id()).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(infer([](v1::Tensor* t) { t->set_dtype(8); }, seg.segment_id()).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);  // string
  EXPECT_EQ(infer([](v1::Tensor* t) { t->set_dtype(7); }, seg.segment_id()).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);  // int64, wrong size
  EXPECT_EQ(infer([](v1::Tensor* t) { t->set_name("other"); }, seg.segment_id()).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THROW(client.LoadSegment(sha_, 2, 7, 1, "", ""), Error);
  EXPECT_THROW(client.LoadSegment(sha_, 0, 0, 1, "bad address", ""), Error);
  EXPECT_THROW(client.LoadSegment(std::string(64, 'a'), 0, 0, 1, "", ""), Error);  // not cached
  EXPECT_TRUE(infer([](v1::Tensor*) {}, seg.segment_id()).ok());
  EXPECT_EQ(client.Hello().resource, "edgeB");
}

TEST_F(Deploy, EightConcurrentClientsTimesTwoHundredRequests) {
  TestWorker w("edgeC");
  WorkerClient setup(w.address, {});
  setup.EnsureModel(sha_, model_path_);
  auto seg = setup.LoadSegment(sha_, 0, 2, 1, "", "");
  std::vector<std::vector<double>> latencies(8);
  std::atomic<int> errors{0};
  std::vector<std::thread> clients;
  for (int c = 0; c < 8; ++c)
    clients.emplace_back([&, c] {
      WorkerClient client(w.address, {});
      v1::InferRequest req;
      req.set_segment_id(seg.segment_id());
      ToWire(runtime::MakeRandomInput({"x", DType::kFloat, {1, 4, 8, 8}}, static_cast<uint64_t>(c)),
             req.add_inputs());
      for (int i = 0; i < 200; ++i) {
        req.set_request_id(static_cast<uint64_t>(c * 1000 + i));
        v1::InferReply reply;
        auto start = std::chrono::steady_clock::now();
        auto status = client.Infer(req, &reply, 30000);
        latencies[static_cast<size_t>(c)].push_back(
            std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
                .count());
        if (!status.ok() || reply.request_id() != req.request_id() || reply.outputs_size() != 1)
          ++errors;
      }
    });
  for (auto& t : clients) t.join();
  EXPECT_EQ(errors.load(), 0);
  std::vector<double> all;
  for (const auto& l : latencies) all.insert(all.end(), l.begin(), l.end());
  ASSERT_EQ(all.size(), 1600u);
  auto stats = profile::Summarize(all);
  RecordProperty("median_ms", std::to_string(stats.median));
  RecordProperty("p90_ms", std::to_string(stats.p90));
  RecordProperty("max_ms", std::to_string(stats.max));
  std::printf("8 clients x 200 requests: median %.3f ms, p90 %.3f ms, p95 %.3f ms, max %.3f ms\n",
              stats.median, stats.p90, stats.p95, stats.max);
}

}  // namespace
}  // namespace scission::deploy
