#include "deploy/worker.h"

#include <chrono>
#include <filesystem>
#include <map>
#include <mutex>

#include "common/error.h"
#include "common/files.h"
#include "deploy/wire.h"
#include "graph/analysis.h"
#include "graph/model.h"
#include "graph/segment.h"
#include "profile/benchmark.h"
#include "profile/shapes.h"
#include "runtime/onnxruntime_backend.h"
#include "store/records.h"

namespace scission::deploy {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

void WorkerOptions::Validate() const {
  CheckListenAddress(listen);
  if (resource.empty()) throw BadInput("--resource must not be empty");
  if (tier.empty()) throw BadInput("--tier must not be empty");
  if (tls_cert.empty() != tls_key.empty()) throw BadInput("--tls-cert and --tls-key go together");
  if (threads < 0) throw BadInput("--threads must not be negative");
}

namespace {

double Ms(Clock::time_point since) {
  return std::chrono::duration<double, std::milli>(Clock::now() - since).count();
}

grpc::Status ToStatus(const Error& e) {
  return grpc::Status(e.kind() == ErrorKind::kBadInput ? grpc::StatusCode::INVALID_ARGUMENT
                                                       : grpc::StatusCode::INTERNAL,
                      e.what());
}

bool IsSha256(const std::string& s) {
  return s.size() == 64 && std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

struct ModelEntry {
  graph::LoadedModel model;
  graph::GraphAnalysis analysis;
};

struct SegmentEntry {
  std::unique_ptr<runtime::Session> session;
  std::string next_address;
  std::string next_segment_id;
  std::unique_ptr<v1::Worker::Stub> next;
};

class Service final : public v1::Worker::Service {
 public:
  explicit Service(const WorkerOptions& o)
      : options_(o), backend_(runtime::CreateBackend(runtime::kDefaultBackend)) {
    cache_dir_ = o.cache_dir.empty() ? ScissionHome() + "/worker" : o.cache_dir;
    fs::create_directories(cache_dir_);
    forward_.token = o.token;
    forward_.tls_ca = o.tls_ca;
  }

  grpc::Status Hello(grpc::ServerContext* ctx, const v1::HelloRequest* req,
                     v1::HelloReply* reply) override {
    if (auto s = CheckToken(ctx); !s.ok()) return s;
    reply->set_protocol_version(kProtocolVersion);
    reply->set_resource(options_.resource);
    reply->set_tier(options_.tier);
    reply->set_runtime_version(runtime::OnnxRuntimeVersion());
    reply->set_cpu_model(runtime::CpuModel());
    reply->set_host(runtime::HostName());
    if (req->protocol_version() != kProtocolVersion)
      return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                          fmt::format("protocol version {} is not supported; this worker speaks {}",
                                      req->protocol_version(), kProtocolVersion));
    return grpc::Status::OK;
  }

  grpc::Status Health(grpc::ServerContext* ctx, const v1::Empty*, v1::Empty*) override {
    return Check(ctx);
  }

  grpc::Status Ping(grpc::ServerContext* ctx, const v1::PingRequest* req,
                    v1::PingReply* reply) override {
    if (auto s = Check(ctx); !s.ok()) return s;
    if (req->payload().size() > 65536)
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "ping payload over 64 KiB");
    reply->set_payload(req->payload());
    return grpc::Status::OK;
  }

  grpc::Status Upload(grpc::ServerContext* ctx, grpc::ServerReader<v1::BulkChunk>* reader,
                      v1::BulkReply* reply) override {
    if (auto s = Check(ctx); !s.ok()) return s;
    v1::BulkChunk chunk;
    uint64_t total = 0;
    Clock::time_point first{};
    bool started = false;
    while (reader->Read(&chunk)) {
      if (!started) {
        first = Clock::now();
        started = true;
      }
      total += chunk.data().size();
    }
    reply->set_bytes(total);
    reply->set_server_ms(started ? Ms(first) : 0.0);
    return grpc::Status::OK;
  }

  grpc::Status Download(grpc::ServerContext* ctx, const v1::BulkRequest* req,
                        grpc::ServerWriter<v1::BulkChunk>* writer) override {
    if (auto s = Check(ctx); !s.ok()) return s;
    constexpr uint64_t kMaxBulk = 1ULL << 30;
    if (req->bytes() > kMaxBulk)
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                          "bulk transfers are limited to 1 GiB");
    uint32_t chunk_bytes =
        req->chunk_bytes() == 0 ? 65536 : std::min<uint32_t>(req->chunk_bytes(), 4u << 20);
    v1::BulkChunk chunk;
    chunk.set_data(std::string(chunk_bytes, 'x'));
    for (uint64_t sent = 0; sent < req->bytes(); sent += chunk_bytes) {
      if (req->bytes() - sent < chunk_bytes) chunk.set_data(std::string(req->bytes() - sent, 'x'));
      if (!writer->Write(chunk)) break;
    }
    return grpc::Status::OK;
  }

  grpc::Status HasModel(grpc::ServerContext* ctx, const v1::ModelRef* req,
                        v1::HasModelReply* reply) override {
    if (auto s = Check(ctx); !s.ok()) return s;
    if (!IsSha256(req->sha256()))
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                          "sha256 must be 64 lowercase hex digits");
    reply->set_present(fs::exists(CachePath(req->sha256())));
    return grpc::Status::OK;
  }

  grpc::Status PutModel(grpc::ServerContext* ctx, grpc::ServerReader<v1::ModelChunk>* reader,
                        v1::ModelRef* reply) override {
    if (auto s = Check(ctx); !s.ok()) return s;
    constexpr uint64_t kMaxModel = 4ULL << 30;
    v1::ModelChunk chunk;
    std::string sha, bytes;
    uint64_t total = 0;
    bool first = true;
    while (reader->Read(&chunk)) {
      if (first) {
        sha = chunk.sha256();
        total = chunk.total_bytes();
        if (!IsSha256(sha))
          return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                              "first chunk needs the model's sha256");
        if (total == 0 || total > kMaxModel)
          return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                              "model size must be 1 byte .. 4 GiB");
        bytes.reserve(
            std::min<uint64_t>(total, 64u << 20));  // an announced size is not yet a promise
        first = false;
      }
      if (bytes.size() + chunk.data().size() > total)
        return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                            "model chunks exceed the announced size");
      bytes += chunk.data();
    }
    if (first) return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "no model chunks");
    if (bytes.size() != total)
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "model truncated in transfer");
    if (Sha256Hex(bytes) != sha)
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                          "model bytes do not match their sha256");
    try {
      graph::ParseModel(bytes, "uploaded model " + sha.substr(0, 12));
      WriteFileAtomic(CachePath(sha), bytes);
    } catch (const Error& e) {
      return ToStatus(e);
    }
    reply->set_sha256(sha);
    return grpc::Status::OK;
  }

  grpc::Status Benchmark(grpc::ServerContext* ctx, const v1::BenchmarkRequest* req,
                         v1::BenchmarkReply* reply) override {
    if (auto s = Check(ctx); !s.ok()) return s;
    try {
      auto entry = Model(req->sha256());
      profile::BenchmarkOptions o;
      o.harness.warmup_runs = req->warmup() > 0 ? req->warmup() : 3;
      o.harness.min_runs = req->repeats() > 0 ? req->repeats() : 20;
      o.session.threads = req->threads() > 0 ? req->threads() : options_.threads;
      std::lock_guard<std::mutex> lock(
          benchmark_mutex_);  // one benchmark at a time: timings stay clean
      std::string started = store::NowIso8601();
      auto result = profile::BenchmarkModel(entry->model, entry->analysis, o, nullptr);
      auto doc = RecordsToJson(store::ModelRecordFor(entry->model, entry->analysis, ""),
                               store::BlockRecordsFor(entry->analysis),
                               store::RunRecordFor(result, o, started));
      reply->set_records_json(doc.dump());
    } catch (const Error& e) {
      return ToStatus(e);
    }
    return grpc::Status::OK;
  }

  grpc::Status LoadSegment(grpc::ServerContext* ctx, const v1::LoadSegmentRequest* req,
                           v1::LoadSegmentReply* reply) override {
    if (auto s = Check(ctx); !s.ok()) return s;
    try {
      auto entry = Model(req->sha256());
      const int blocks = static_cast<int>(entry->analysis.blocks.size());
      if (req->first_block() < 0 || req->last_block() < req->first_block() ||
          req->last_block() >= blocks)
        return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                            fmt::format("block range {}..{} is not within 0..{}",
                                        req->first_block(), req->last_block(), blocks - 1));
      if (!req->next_address().empty()) CheckAddress(req->next_address());
      auto segment = graph::ExtractSegment(entry->model.proto, entry->analysis, req->first_block(),
                                           req->last_block());
      auto seg = std::make_shared<SegmentEntry>();
      runtime::SessionOptions so;
      so.threads = req->threads() > 0 ? req->threads() : options_.threads;
      std::string id = fmt::format("{}:{}-{}", req->sha256().substr(0, 16), req->first_block(),
                                   req->last_block());
      seg->session = backend_->Prepare(segment.model.SerializeAsString(), so,
                                       options_.resource + " segment " + id);
      seg->next_address = req->next_address();
      seg->next_segment_id = req->next_segment_id();
      if (!seg->next_address.empty()) {
        seg->next = v1::Worker::NewStub(MakeChannel(seg->next_address, forward_));
        id += "->" + seg->next_address + "/" + seg->next_segment_id;
      }
      for (const auto& in : seg->session->inputs()) {
        auto* spec = reply->add_inputs();
        spec->set_name(in.name);
        spec->set_dtype(static_cast<int32_t>(in.dtype));
        for (auto d : in.shape) spec->add_shape(d);
      }
      for (const auto& out : seg->session->outputs()) {
        auto* spec = reply->add_outputs();
        spec->set_name(out.name);
        spec->set_dtype(static_cast<int32_t>(out.dtype));
        for (auto d : out.shape) spec->add_shape(d);
      }
      std::lock_guard<std::mutex> lock(mutex_);
      segments_[id] = seg;
      reply->set_segment_id(id);
    } catch (const Error& e) {
      return ToStatus(e);
    }
    return grpc::Status::OK;
  }

  grpc::Status Infer(grpc::ServerContext* ctx, const v1::InferRequest* req,
                     v1::InferReply* reply) override {
    const auto start = Clock::now();
    if (auto s = Check(ctx); !s.ok()) return s;
    std::shared_ptr<SegmentEntry> seg;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      auto it = segments_.find(req->segment_id());
      if (it == segments_.end())
        return grpc::Status(grpc::StatusCode::NOT_FOUND,
                            "no segment '" + req->segment_id() + "' loaded here");
      seg = it->second;
    }
    if (req->inputs_size() > kMaxTensors)
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "too many tensors");
    std::vector<Tensor> inputs;
    std::vector<Tensor> outputs;
    double compute_ms = 0;
    try {
      // Inputs are matched by name to the segment's inputs, then checked by the session.
      for (const auto& spec : seg->session->inputs()) {
        const v1::Tensor* found = nullptr;
        for (const auto& t : req->inputs())
          if (t.name() == spec.name) found = &t;
        if (!found)
          return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                              "missing input tensor '" + spec.name + "'");
        inputs.push_back(FromWire(*found, "infer request"));
      }
      auto compute_start = Clock::now();
      outputs = seg->session->Infer(inputs);
      compute_ms = Ms(compute_start);
    } catch (const Error& e) {
      return ToStatus(e);
    }
    reply->set_request_id(req->request_id());
    auto* own = reply->add_timings();
    own->set_resource(options_.resource);
    own->set_compute_ms(compute_ms);
    if (seg->next) {
      v1::InferRequest next;
      next.set_segment_id(seg->next_segment_id);
      next.set_request_id(req->request_id());
      for (const auto& t : outputs) ToWire(t, next.add_inputs());
      v1::InferReply downstream;
      grpc::ClientContext next_ctx;
      PrepareContext(&next_ctx, forward_, 120000);
      auto forward_start = Clock::now();
      grpc::Status status = seg->next->Infer(&next_ctx, next, &downstream);
      own->set_forward_ms(Ms(forward_start));
      if (!status.ok())
        return grpc::Status(
            status.error_code() == grpc::StatusCode::INVALID_ARGUMENT
                ? grpc::StatusCode::INVALID_ARGUMENT
                : grpc::StatusCode::UNAVAILABLE,
            fmt::format("next hop {}: {}", seg->next_address, status.error_message()));
      for (const auto& t : downstream.timings()) *reply->add_timings() = t;
      *reply->mutable_outputs() = downstream.outputs();
    } else {
      for (const auto& t : outputs) ToWire(t, reply->add_outputs());
    }
    reply->mutable_timings(0)->set_server_ms(Ms(start));
    return grpc::Status::OK;
  }

 private:
  std::string CachePath(const std::string& sha) const { return cache_dir_ + "/" + sha + ".onnx"; }

  grpc::Status CheckToken(grpc::ServerContext* ctx) const {
    if (options_.token.empty()) return grpc::Status::OK;
    auto it = ctx->client_metadata().find("authorization");
    if (it == ctx->client_metadata().end() ||
        std::string(it->second.data(), it->second.size()) != "Bearer " + options_.token)
      return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "missing or wrong token");
    return grpc::Status::OK;
  }

  grpc::Status Check(grpc::ServerContext* ctx) const {
    if (auto s = CheckToken(ctx); !s.ok()) return s;
    auto it = ctx->client_metadata().find(kProtocolHeader);
    std::string version =
        it == ctx->client_metadata().end() ? "" : std::string(it->second.data(), it->second.size());
    if (version != std::to_string(kProtocolVersion))
      return grpc::Status(
          grpc::StatusCode::FAILED_PRECONDITION,
          fmt::format("protocol version '{}' is not supported; this worker speaks {}", version,
                      kProtocolVersion));
    return grpc::Status::OK;
  }

  std::shared_ptr<ModelEntry> Model(const std::string& sha) {
    if (!IsSha256(sha)) throw BadInput("sha256 must be 64 lowercase hex digits");
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = models_.find(sha);
    if (it != models_.end()) return it->second;
    if (!fs::exists(CachePath(sha)))
      throw BadInput("model {} is not cached here; send it with PutModel", sha.substr(0, 12));
    auto entry = std::make_shared<ModelEntry>();
    entry->model = graph::LoadModel(CachePath(sha));
    entry->analysis = graph::Analyze(entry->model.proto);
    profile::ResolveBlockShapes(entry->model, entry->analysis);
    models_[sha] = entry;
    return entry;
  }

  WorkerOptions options_;
  std::unique_ptr<runtime::Backend> backend_;
  std::string cache_dir_;
  ConnectOptions forward_;
  std::mutex mutex_;
  std::mutex benchmark_mutex_;
  std::map<std::string, std::shared_ptr<ModelEntry>> models_;
  std::map<std::string, std::shared_ptr<SegmentEntry>> segments_;
};

}  // namespace

struct WorkerServer::Impl {
  WorkerOptions options;
  std::unique_ptr<Service> service;
  std::unique_ptr<grpc::Server> server;
};

WorkerServer::WorkerServer(const WorkerOptions& options) : impl_(std::make_unique<Impl>()) {
  options.Validate();
  impl_->options = options;
  impl_->service = std::make_unique<Service>(options);
}

WorkerServer::~WorkerServer() { Shutdown(); }

int WorkerServer::Start() {
  grpc::ServerBuilder builder;
  std::shared_ptr<grpc::ServerCredentials> creds;
  if (!impl_->options.tls_cert.empty()) {
    grpc::SslServerCredentialsOptions ssl;
    ssl.pem_key_cert_pairs.push_back(
        {ReadFileBytes(impl_->options.tls_key), ReadFileBytes(impl_->options.tls_cert)});
    creds = grpc::SslServerCredentials(ssl);
  } else {
    creds = grpc::InsecureServerCredentials();
  }
  int port = 0;
  builder.AddListeningPort(impl_->options.listen, creds, &port);
  builder.SetMaxReceiveMessageSize(kMaxMessageBytes);
  builder.SetMaxSendMessageSize(kMaxMessageBytes);
  builder.RegisterService(impl_->service.get());
  impl_->server = builder.BuildAndStart();
  if (!impl_->server || port == 0)
    throw BadInput("{}: cannot listen (address in use or not local)", impl_->options.listen);
  return port;
}

void WorkerServer::Wait() {
  if (impl_->server) impl_->server->Wait();
}

void WorkerServer::Shutdown() {
  if (impl_ && impl_->server)
    impl_->server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
}

}  // namespace scission::deploy
