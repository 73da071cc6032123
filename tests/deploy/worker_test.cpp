#include <filesystem>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "codec/codec.h"
#include "common/error.h"
#include "common/files.h"
#include "deploy/client.h"
#include "deploy/worker.h"
#include "graph/analysis.h"
#include "graph/graph_builder.h"
#include "graph/model.h"
#include "graph/partition.h"
#include "profile/benchmark.h"
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
    // Private to this process and worker: tests run in parallel and reuse resource names.
    static std::atomic<int> workers{0};
    o.cache_dir = ::testing::TempDir() + "/worker_cache_" + name + "_" +
                  std::to_string(::getpid()) + "_" + std::to_string(++workers);
    std::filesystem::remove_all(o.cache_dir);
    cache_dir = o.cache_dir;
    server = std::make_unique<WorkerServer>(o);
    port = server->Start();
    address = "127.0.0.1:" + std::to_string(port);
  }
  ~TestWorker() {
    server.reset();
    std::error_code ec;
    std::filesystem::remove_all(cache_dir, ec);
  }
  std::unique_ptr<WorkerServer> server;
  int port = 0;
  std::string address, cache_dir;
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
  static std::unique_ptr<v2::Worker::Stub> RawStub(const std::string& address) {
    return v2::Worker::NewStub(MakeChannel(address, {}));
  }
  static void Versioned(grpc::ClientContext* ctx) {
    ctx->AddMetadata(kProtocolHeader, std::to_string(kProtocolVersion));
  }
  // One raw Infer stream: `messages` exactly as given, then the status.
  static grpc::Status RawInfer(const std::string& address,
                               const std::vector<v2::InferRequest>& messages) {
    auto stub = RawStub(address);
    grpc::ClientContext ctx;
    Versioned(&ctx);
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    auto stream = stub->Infer(&ctx);
    for (const auto& m : messages) stream->Write(m);
    stream->WritesDone();
    v2::InferReply reply;
    while (stream->Read(&reply)) {
    }
    return stream->Finish();
  }
  // A well-formed request for the chain model's input, as one message.
  static v2::InferRequest GoodRequest(const std::string& segment) {
    v2::InferRequest req;
    req.set_segment_id(segment);
    Tensor t = runtime::MakeRandomInput({"x", DType::kFloat, {1, 4, 8, 8}}, 1);
    FillHeader(t, req.add_tensors());
    req.set_data(t.data.data(), t.data.size());
    return req;
  }

  // Infers `input` through the segments from `segment` on and expects the whole model's output.
  static void ExpectWholeModelOutput(WorkerClient& client, const std::string& segment,
                                     const std::string& model_bytes, const Tensor& input) {
    auto backend = runtime::CreateBackend("onnxruntime");
    auto expected = runtime::RunOnce(*backend->Prepare(model_bytes, {1}, "whole"), {input});
    auto reply = client.Infer(segment, 1, {input}, 10000);
    ASSERT_TRUE(reply.status.ok()) << reply.status.error_message();
    ASSERT_EQ(reply.outputs.size(), 1u);
    ASSERT_EQ(expected.size(), 1u);
    EXPECT_EQ(reply.outputs[0].data, expected[0].data);
  }

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
  v2::HelloRequest hello;
  hello.set_protocol_version(kProtocolVersion + 1);
  v2::HelloReply reply;
  auto status = stub->Hello(&ctx, hello, &reply);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(status.error_message(),
              HasSubstr(fmt::format("protocol version {}", kProtocolVersion + 1)));
  // A version-1 coordinator gets the same clear refusal on every other call.
  grpc::ClientContext old_header;
  old_header.AddMetadata(kProtocolHeader, "1");
  v2::Empty nothing;
  auto old = stub->Health(&old_header, nothing, &nothing);
  EXPECT_EQ(old.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(old.error_message(),
              HasSubstr(fmt::format("this worker speaks {}", kProtocolVersion)));

  grpc::ClientContext no_header;
  v2::Empty empty;
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
  EXPECT_THROW(WorkerClient(w.address, {"wrong", "", false, 5000}).Hello(), Error);
  EXPECT_EQ(WorkerClient(w.address, {"s3cret", "", false, 5000}).Hello().resource, "edge2");
  auto stub = RawStub(w.address);
  grpc::ClientContext ctx;
  Versioned(&ctx);
  v2::PingRequest ping;
  v2::PingReply pong;
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
  EXPECT_EQ(WorkerClient(w.address, {"tok", cert, false, 5000}).Hello().resource, "tls1");
  EXPECT_THROW(WorkerClient(w.address, {"tok", "", false, 3000}).Hello(),
               Error);  // plaintext to a TLS port
  EXPECT_THROW(WorkerClient(w.address, {"", cert, false, 3000}).Hello(),
               Error);  // TLS but no token
}

TEST_F(Deploy, UnreachableWorkerIsBadInput) {
  try {
    WorkerClient("127.0.0.1:1", {"", "", false, 2000}).Hello();
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
    v2::ModelRef reply;
    auto writer = stub->PutModel(&ctx, &reply);
    v2::ModelChunk chunk;
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

  auto reply = e.Infer(head.segment_id(), 42, {input}, 10000);
  ASSERT_TRUE(reply.status.ok()) << reply.status.error_message();
  ASSERT_EQ(reply.timings.size(), 2u);
  EXPECT_EQ(reply.timings[0].resource(), "edgeA");
  EXPECT_EQ(reply.timings[1].resource(), "cloudA");
  EXPECT_GE(reply.timings[0].server_ms(), reply.timings[0].forward_ms());
  EXPECT_GE(reply.timings[0].forward_ms(), reply.timings[1].server_ms());
  ASSERT_EQ(reply.outputs.size(), 1u);
  EXPECT_EQ(reply.outputs[0].data, expected[0].data);
  EXPECT_EQ(head.partition(), tail.partition());

  int progress_calls = 0;
  auto remote = c.Benchmark(sha_, 1, 3, 1, [&](int, int) { ++progress_calls; });
  EXPECT_EQ(remote.model.key, sha_);
  EXPECT_EQ(remote.model.path, "");  // the worker never tells its cache path
  EXPECT_EQ(remote.blocks.size(), 3u);
  EXPECT_EQ(remote.run.measurements.size(), 4u);  // whole + 3 blocks
  EXPECT_EQ(progress_calls, 4);
  for (const auto& m : remote.run.measurements) EXPECT_EQ(m.samples_ms.size(), 3u);
}

// A caller that cut the model otherwise (another --max-cut-tensors, costs at its --shape) sends
// its boundaries: the worker benchmarks and loads those blocks, not its own.
TEST_F(Deploy, WorkersFollowTheCallersBlocks) {
  TestWorker w("edgeF");
  WorkerClient client(w.address, {});
  client.EnsureModel(sha_, model_path_);
  auto model = graph::ParseModel(model_bytes_, "chain");
  auto own = graph::Analyze(model.proto);
  ASSERT_THAT(own.boundaries, ::testing::ElementsAre(0, 2, 4, 6));
  const std::vector<int> two = {0, 2, 6};
  auto callers = graph::Reblock(model.proto.graph(), own, two);

  auto remote = client.Benchmark(sha_, 1, 2, 1, {}, two, {{"x", DType::kFloat, {1, 4, 8, 8}}});
  ASSERT_EQ(remote.blocks.size(), 2u);
  EXPECT_EQ(remote.blocks[0].output_name, "r0");
  EXPECT_EQ(remote.blocks[1].output_name, "r2");
  EXPECT_EQ(remote.run.measurements.size(), 3u);  // whole + 2 blocks
  EXPECT_EQ(remote.run.chain_check, "passed");
  EXPECT_GE(remote.run.chain_tolerance, 0);

  auto tail = client.LoadSegment(sha_, 1, 1, 1, "", "", two);
  auto head = client.LoadSegment(sha_, 0, 0, 1, w.address, tail.segment_id(), two);
  EXPECT_EQ(tail.partition(), graph::PartitionFingerprint(callers));
  EXPECT_EQ(head.partition(), tail.partition());
  EXPECT_NE(tail.partition(), graph::PartitionFingerprint(own));
  ASSERT_EQ(tail.inputs_size(), 1);
  EXPECT_EQ(tail.inputs(0).name(), "r0");
  // Its own blocks under the same indices are another segment.
  auto default_cut = client.LoadSegment(sha_, 1, 1, 1, "", "");
  EXPECT_NE(default_cut.segment_id(), tail.segment_id());
  EXPECT_EQ(default_cut.inputs(0).name(), "r0");
  EXPECT_EQ(default_cut.outputs(0).name(), "r1");

  ExpectWholeModelOutput(client, head.segment_id(), model_bytes_,
                         runtime::MakeRandomInput({"x", DType::kFloat, {1, 4, 8, 8}}, 7));

  // Boundaries that are no cut of this model, and shapes that contradict it, are refused.
  for (const std::vector<int>& bad : std::vector<std::vector<int>>{
           {0, 4, 2, 6}, {0, 2, 5}, {1, 6}, {0, 6, 6}, {0, 2, 4, 6, 8}, {0, 2147483647, 6}}) {
    try {
      client.LoadSegment(sha_, 0, 0, 1, "", "", bad);
      ADD_FAILURE() << "accepted " << bad.size() << " boundaries";
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::kBadInput) << e.what();
      EXPECT_THAT(e.what(), HasSubstr("boundar")) << e.what();
    }
  }
  EXPECT_THROW(client.LoadSegment(sha_, 0, 2, 1, "", "", two), Error);  // 2 blocks, not 3
  EXPECT_THROW(client.Benchmark(sha_, 1, 1, 1, {}, {}, {{"x", DType::kFloat, {1, 4, 16, 16}}}),
               Error);
  EXPECT_TRUE(client.Hello().resource == "edgeF");  // still up
}

// A worker's chain check fails the call as a local benchmark fails (the reason reaches the
// caller, Internal: exit 1, nothing stored); skipped, the run says so.
TEST_F(Deploy, WorkerChainCheckFailsTheBenchmarkOrIsRecordedAsSkipped) {
  TestWorker w("edgeG");
  WorkerClient client(w.address, {});
  const std::string bytes = testing::RandomLikeModel().SerializeAsString();
  const std::string path = ::testing::TempDir() + "/deploy_noise.onnx";
  WriteFileAtomic(path, bytes);
  const std::string sha = Sha256Hex(bytes);
  client.EnsureModel(sha, path);
  try {
    client.Benchmark(sha, 1, 2, 1);
    ADD_FAILURE() << "a diverging chain was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kInternal) << e.what();
    EXPECT_THAT(e.what(), HasSubstr("chain check failed"));
    EXPECT_THAT(e.what(), HasSubstr("RandomUniformLike"));
  }
  auto skipped = client.Benchmark(sha, 1, 2, 1, {}, {}, {}, /*chain_check=*/false);
  EXPECT_EQ(skipped.run.chain_check, "skipped");
  EXPECT_EQ(client.Hello().resource, "edgeG");
}

// x[1,4,H,W] -> Relu -> Flatten -> MatMul(w[256,10]) -> y: runs only at H = W = 8, so the
// worker's probe at the declared shapes (dynamic dimensions as 1) fails and it learns the
// tensors at the shapes the caller sends; hostile shapes are refused before any allocation.
TEST_F(Deploy, ModelThatRunsOnlyAtRealSizesIsServedAtTheCallersShapes) {
  testing::GraphBuilder g;
  g.Input("x", {1, 4, 8, 8}).Weight("w", {256, 10});
  g.Node("Relu", {"x"}, {"a"}).Node("Exp", {"a"}, {"e"}).Node("Flatten", {"e"}, {"f"});
  g.Node("MatMul", {"f", "w"}, {"y"}).Output("y", {1, 10});
  auto proto = g.Build();
  auto* dims = proto.mutable_graph()
                   ->mutable_input(0)
                   ->mutable_type()
                   ->mutable_tensor_type()
                   ->mutable_shape();
  dims->mutable_dim(2)->set_dim_param("H");
  dims->mutable_dim(3)->set_dim_param("W");
  const std::string bytes = proto.SerializeAsString(), sha = Sha256Hex(bytes);
  const std::string path = ::testing::TempDir() + "/deploy_real_sizes.onnx";
  WriteFileAtomic(path, bytes);
  TestWorker w("edgeH");
  WorkerClient client(w.address, {});
  client.EnsureModel(sha, path);
  const std::vector<TensorSpec> shapes = {{"x", DType::kFloat, {1, 4, 8, 8}}};
  try {
    client.Benchmark(sha, 1, 2, 1);
    ADD_FAILURE() << "benchmarked at guessed shapes";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kBadInput) << e.what();
    EXPECT_THAT(e.what(), HasSubstr("send the input shapes (--shape)"));
  }
  auto remote = client.Benchmark(sha, 1, 2, 1, {}, {}, shapes);
  EXPECT_EQ(remote.run.input_shapes, "x=1x4x8x8");
  EXPECT_EQ(remote.run.chain_check, "passed");
  ASSERT_FALSE(remote.blocks.empty());
  const int last = static_cast<int>(remote.blocks.size()) - 1;
  EXPECT_THROW(client.LoadSegment(sha, 0, last, 1, "", ""), Error);
  auto segment = client.LoadSegment(sha, 0, last, 1, "", "", {}, shapes);
  EXPECT_EQ(segment.partition(), remote.run.partition);
  ExpectWholeModelOutput(client, segment.segment_id(), bytes,
                         runtime::MakeRandomInput(shapes[0], 3));

  const std::vector<std::vector<TensorSpec>> hostile = {
      {{"x", DType::kFloat, {1, 4, -8, 8}}},
      {{"x", DType::kFloat, {1, 4, 0, 8}}},
      {{"x", DType::kFloat, {1, 4, 2147483647, 2147483647}}},
      {{"x", DType::kFloat, {1, 4, 8192, 8192}}},  // 1 GiB, beyond --max-tensor-mb
      {{"x", DType::kFloat, {1, 4, 1LL << 40, 8}}},
      {{"nope", DType::kFloat, {1, 4, 8, 8}}},
      {{"x", DType::kFloat, {1, 4, 8}}},
      {{"x", DType::kInt64, {1, 4, 8, 8}}},
      {{"x", DType::kFloat, {1, 4, 8, 8}}, {"x", DType::kFloat, {1, 4, 8, 8}}},
  };
  for (const auto& bad : hostile) {
    try {
      client.Benchmark(sha, 1, 1, 1, {}, {}, bad);
      ADD_FAILURE() << "accepted " << bad[0].name << " " << ShapeString(bad[0].shape);
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::kBadInput) << e.what();
    }
    EXPECT_THROW(client.LoadSegment(sha, 0, last, 1, "", "", {}, bad), Error);
  }
  EXPECT_EQ(client.Hello().resource, "edgeH");
}

TEST_F(Deploy, MalformedInferRequestsAreRefusedAndTheWorkerStaysUp) {
  TestWorker w("edgeB");
  WorkerClient client(w.address, {});
  client.EnsureModel(sha_, model_path_);
  auto seg = client.LoadSegment(sha_, 0, 2, 1, "", "");
  auto infer = [&](const std::function<void(v2::InferRequest*)>& edit) {
    auto req = GoodRequest(seg.segment_id());
    edit(&req);
    return RawInfer(w.address, {req}).error_code();
  };
  using grpc::StatusCode;
  EXPECT_EQ(infer([](v2::InferRequest*) {}), StatusCode::OK);
  EXPECT_EQ(infer([](v2::InferRequest* r) { r->set_segment_id("nope"); }), StatusCode::NOT_FOUND);
  auto header = [](v2::InferRequest* r) { return r->mutable_tensors(0); };
  EXPECT_EQ(infer([&](v2::InferRequest* r) { header(r)->set_shape(3, 9); }),
            StatusCode::INVALID_ARGUMENT);  // wrong shape (declared bytes no longer match)
  EXPECT_EQ(infer([&](v2::InferRequest* r) {
              header(r)->set_shape(3, 9);
              header(r)->set_data_bytes(1 * 4 * 8 * 9 * 4);
              header(r)->set_payload_bytes(1 * 4 * 8 * 9 * 4);
            }),
            StatusCode::INVALID_ARGUMENT);  // wrong shape for the segment
  EXPECT_EQ(infer([](v2::InferRequest* r) { r->mutable_data()->resize(100); }),
            StatusCode::INVALID_ARGUMENT);  // truncated
  EXPECT_EQ(infer([](v2::InferRequest* r) { r->mutable_data()->append(10, 'x'); }),
            StatusCode::INVALID_ARGUMENT);  // more bytes than declared
  EXPECT_EQ(infer([&](v2::InferRequest* r) { header(r)->set_shape(1, 1LL << 40); }),
            StatusCode::INVALID_ARGUMENT);  // absurd
  EXPECT_EQ(infer([&](v2::InferRequest* r) { header(r)->set_shape(1, -4); }),
            StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(infer([&](v2::InferRequest* r) { header(r)->set_dtype(8); }),
            StatusCode::INVALID_ARGUMENT);  // string
  EXPECT_EQ(infer([&](v2::InferRequest* r) { header(r)->set_dtype(7); }),
            StatusCode::INVALID_ARGUMENT);  // int64: declared bytes do not match
  EXPECT_EQ(infer([&](v2::InferRequest* r) { header(r)->set_name("other"); }),
            StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(infer([&](v2::InferRequest* r) { *r->add_tensors() = *header(r); }),
            StatusCode::INVALID_ARGUMENT);  // the same tensor twice
  EXPECT_EQ(RawInfer(w.address, {}).error_code(), StatusCode::INVALID_ARGUMENT);  // empty stream
  EXPECT_THROW(client.LoadSegment(sha_, 2, 7, 1, "", ""), Error);
  EXPECT_THROW(client.LoadSegment(sha_, 0, 0, 1, "bad address", std::string(32, 'a')), Error);
  EXPECT_THROW(client.LoadSegment(std::string(64, 'a'), 0, 0, 1, "", ""), Error);  // not cached
  EXPECT_EQ(infer([](v2::InferRequest*) {}), StatusCode::OK);
  EXPECT_EQ(client.Hello().resource, "edgeB");
}

// Every hop in a codec: the caller's inputs in zstd, edge -> cloud in fp16+zstd, and the outputs
// back in lz4 (the cloud's output codec), passed on by the edge in the codec they came in.
TEST_F(Deploy, HopsTravelInTheirCodecsAndDecodedSizesAreChecked) {
  TestWorker edge("edgeC"), cloud("cloudC");
  WorkerClient e(edge.address, {}), c(cloud.address, {});
  e.EnsureModel(sha_, model_path_);
  c.EnsureModel(sha_, model_path_);
  auto tail = c.LoadSegment(sha_, 2, 2, 1, "", "", {}, {}, "lz4");
  auto head = e.LoadSegment(sha_, 0, 1, 1, cloud.address, tail.segment_id(), {}, {}, "fp16+zstd");
  auto backend = runtime::CreateBackend("onnxruntime");
  auto whole = backend->Prepare(model_bytes_, {1}, "whole");
  auto input = runtime::MakeRandomInput(whole->inputs()[0], 5);
  auto expected = runtime::RunOnce(*whole, {input});
  auto reply = e.Infer(head.segment_id(), 7, {input}, 10000, "zstd");
  ASSERT_TRUE(reply.status.ok()) << reply.status.error_message();
  EXPECT_EQ(reply.codec, "lz4");
  EXPECT_GT(reply.encode_ms, 0);
  EXPECT_GT(reply.decode_ms, 0);
  ASSERT_EQ(reply.timings.size(), 2u);
  EXPECT_GT(reply.timings[0].decode_ms(), 0);  // zstd from the caller
  EXPECT_GT(reply.timings[0].encode_ms(), 0);  // fp16+zstd to the cloud
  EXPECT_GT(reply.timings[1].decode_ms(), 0);
  ASSERT_EQ(reply.outputs.size(), 1u);
  // fp16 at the cut: close to the whole model's output, not equal.
  auto cmp = profile::CompareTensor(expected[0], reply.outputs[0]);
  EXPECT_GT(cmp.max_abs_diff, 0);
  EXPECT_LT(cmp.max_abs_diff, 100 * cmp.tolerance);  // within about 1% of the output's scale

  // Lossless all the way: exact.
  auto exact_tail = c.LoadSegment(sha_, 2, 2, 1, "", "", {}, {}, "zstd");
  auto exact_head =
      e.LoadSegment(sha_, 0, 1, 1, cloud.address, exact_tail.segment_id(), {}, {}, "lz4");
  auto exact = e.Infer(exact_head.segment_id(), 8, {input}, 10000, "lz4");
  ASSERT_TRUE(exact.status.ok()) << exact.status.error_message();
  EXPECT_EQ(exact.outputs[0].data, expected[0].data);
  EXPECT_THROW(c.LoadSegment(sha_, 2, 2, 1, "", "", {}, {}, "gzip"), Error);

  // Hostile headers: an unknown codec, a payload announced beyond any codec's bound, a raw
  // tensor whose payload size differs from its data size, a zstd bomb (1 MiB of zeros announced
  // as the segment's 1 KiB input), garbage in a codec: refused, and the worker stays up.
  auto seg = e.LoadSegment(sha_, 0, 2, 1, "", "");
  auto infer = [&](const std::function<void(v2::InferRequest*)>& edit) {
    auto req = GoodRequest(seg.segment_id());
    edit(&req);
    return RawInfer(edge.address, {req});
  };
  using grpc::StatusCode;
  auto header = [](v2::InferRequest* r) { return r->mutable_tensors(0); };
  EXPECT_EQ(infer([](v2::InferRequest*) {}).error_code(), StatusCode::OK);
  auto unknown = infer([&](v2::InferRequest* r) { header(r)->set_codec("gzip"); });
  EXPECT_EQ(unknown.error_code(), StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(unknown.error_message(), HasSubstr("codec 'gzip'"));
  EXPECT_EQ(infer([&](v2::InferRequest* r) {
              header(r)->set_codec("zstd");
              header(r)->set_payload_bytes(1ULL << 40);
            }).error_code(),
            StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(infer([&](v2::InferRequest* r) { header(r)->set_payload_bytes(12); }).error_code(),
            StatusCode::INVALID_ARGUMENT);
  const codec::Codec& zstd = codec::Get("zstd", "test");
  Tensor zeros;
  zeros.spec = {"x", DType::kFloat, {1, 4, 256, 256}};  // 1 MiB
  zeros.data.assign(static_cast<size_t>(zeros.spec.bytes()), 0);
  std::vector<uint8_t> bomb = zstd.Encode(zeros);
  auto bombed = infer([&](v2::InferRequest* r) {
    header(r)->set_codec("zstd");
    header(r)->set_payload_bytes(bomb.size());
    r->set_data(bomb.data(), bomb.size());
  });
  EXPECT_EQ(bombed.error_code(), StatusCode::INVALID_ARGUMENT) << bombed.error_message();
  auto garbage = infer([&](v2::InferRequest* r) {
    header(r)->set_codec("lz4");
    header(r)->set_payload_bytes(64);
    r->set_data(std::string(64, 'x'));
  });
  EXPECT_EQ(garbage.error_code(), StatusCode::INVALID_ARGUMENT) << garbage.error_message();
  EXPECT_EQ(infer([](v2::InferRequest*) {}).error_code(), StatusCode::OK);
  EXPECT_EQ(e.Hello().resource, "edgeC");
}

TEST_F(Deploy, EightConcurrentClientsTimesTwoHundredRequests) {
  TestWorker w("edgeE");
  WorkerClient setup(w.address, {});
  setup.EnsureModel(sha_, model_path_);
  auto seg = setup.LoadSegment(sha_, 0, 2, 1, "", "");
  std::vector<std::vector<double>> latencies(8);
  std::atomic<int> errors{0};
  std::vector<std::thread> clients;
  for (int c = 0; c < 8; ++c)
    clients.emplace_back([&, c] {
      WorkerClient client(w.address, {});
      auto input =
          runtime::MakeRandomInput({"x", DType::kFloat, {1, 4, 8, 8}}, static_cast<uint64_t>(c));
      for (int i = 0; i < 200; ++i) {
        auto start = std::chrono::steady_clock::now();
        auto reply =
            client.Infer(seg.segment_id(), static_cast<uint64_t>(c * 1000 + i), {input}, 30000);
        latencies[static_cast<size_t>(c)].push_back(
            std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
                .count());
        if (!reply.status.ok() || reply.outputs.size() != 1) ++errors;
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
