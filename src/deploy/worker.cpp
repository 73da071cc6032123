#include "deploy/worker.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <openssl/crypto.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <list>
#include <mutex>
#include <thread>

#include <grpcpp/resource_quota.h>

#include "codec/codec.h"
#include "common/error.h"
#include "common/files.h"
#include "deploy/client.h"
#include "deploy/wire.h"
#include "graph/partition.h"
#include "graph/segment.h"
#include "profile/benchmark.h"
#include "profile/inputs.h"
#include "profile/shapes.h"
#include "runtime/onnxruntime_backend.h"
#include "store/records.h"
#include "store/validate.h"

namespace scission::deploy {

namespace {

using Clock = std::chrono::steady_clock;

double Ms(Clock::time_point since) {
  return std::chrono::duration<double, std::milli>(Clock::now() - since).count();
}

// An RPC refused with a specific status code.
struct Refusal : std::runtime_error {
  Refusal(grpc::StatusCode c, const std::string& message) : std::runtime_error(message), code(c) {}
  grpc::StatusCode code;
};

template <typename... Args>
[[noreturn]] void Refuse(grpc::StatusCode code, fmt::format_string<Args...> format,
                         Args&&... args) {
  throw Refusal(code, fmt::format(format, std::forward<Args>(args)...));
}

// A counting limit on calls of one kind in progress; Acquire fails at once when full.
class Slots {
 public:
  explicit Slots(int capacity) : free_(capacity) {}
  class Held {
   public:
    explicit Held(Slots* slots) : slots_(slots) {}
    Held(Held&& other) noexcept : slots_(std::exchange(other.slots_, nullptr)) {}
    ~Held() {
      if (slots_) slots_->free_.fetch_add(1);
    }

   private:
    Slots* slots_;
  };
  Held Acquire(const char* what) {
    int free = free_.load();
    while (true) {
      if (free <= 0)
        Refuse(grpc::StatusCode::RESOURCE_EXHAUSTED, "too many {} in progress; retry later", what);
      if (free_.compare_exchange_weak(free, free - 1)) return Held(this);
    }
  }

 private:
  std::atomic<int> free_;
};

// Cancels the token of every watched call whose caller went away or whose deadline passed, so
// long work (a benchmark, an ONNX Runtime run that loops) stops instead of outliving its caller.
class Watchdog {
 public:
  Watchdog() : thread_([this] { Loop(); }) {}
  ~Watchdog() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
    }
    wake_.notify_all();
    thread_.join();
  }

  struct Entry {
    grpc::ServerContext* ctx;
    CancelToken* token;
    Clock::time_point deadline;
    std::string limit;  // what the deadline is, for the message
  };

  class Watch {
   public:
    Watch(Watchdog* dog, std::list<Entry>::iterator it) : dog_(dog), it_(it) {}
    Watch(const Watch&) = delete;
    ~Watch() {
      std::lock_guard<std::mutex> lock(dog_->mutex_);
      dog_->calls_.erase(it_);
    }

   private:
    Watchdog* dog_;
    std::list<Entry>::iterator it_;
  };

  // Watches the call until the returned object dies. `max_s` caps the caller's own deadline.
  std::unique_ptr<Watch> Add(grpc::ServerContext* ctx, CancelToken* token, double max_s,
                             const std::string& limit) {
    auto now_system = std::chrono::system_clock::now();
    auto caller = ctx->deadline();
    auto deadline = Clock::now() + std::chrono::milliseconds(static_cast<int64_t>(max_s * 1000));
    std::string why = limit;
    if (caller < now_system + std::chrono::milliseconds(static_cast<int64_t>(max_s * 1000))) {
      deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(caller - now_system);
      why = "the caller's deadline passed";
    }
    std::lock_guard<std::mutex> lock(mutex_);
    calls_.push_front(Entry{ctx, token, deadline, why});
    return std::make_unique<Watch>(this, calls_.begin());
  }

 private:
  void Loop() {
    std::unique_lock<std::mutex> lock(mutex_);
    while (!stop_) {
      wake_.wait_for(lock, std::chrono::milliseconds(20));
      auto now = Clock::now();
      for (auto& e : calls_) {
        if (e.token->cancelled()) continue;
        if (e.ctx->IsCancelled())
          e.token->Cancel("the caller cancelled");
        else if (now >= e.deadline)
          e.token->Cancel(e.limit);
      }
    }
  }

  std::mutex mutex_;
  std::condition_variable wake_;
  std::list<Entry> calls_;
  bool stop_ = false;
  std::thread thread_;
};

// Where this worker may forward activations, and the channels to go there. A next hop must be
// on --peers or pass the Hello handshake (and, when this worker has a token, prove it holds the
// same one); only then does it get the token. Every refusal reads the same and takes the same
// time, so the worker cannot be used to learn which ports answer.
class PeerPolicy {
 public:
  PeerPolicy(const WorkerOptions& o) : peers_(o.peers), token_(o.token) {
    forward_.token = o.token;
    forward_.tls_ca = o.tls_ca;
    forward_.tls = !o.tls_cert.empty();  // same transport security as our own
  }

  std::shared_ptr<grpc::Channel> ChannelTo(const std::string& address) {
    CheckAddress(address);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (auto it = channels_.find(address); it != channels_.end()) return it->second;
    }
    bool listed = std::find(peers_.begin(), peers_.end(), address) != peers_.end();
    if (!peers_.empty() && !listed) Deny(address, Clock::now());
    auto channel = MakeChannel(address, forward_);
    if (!listed) Handshake(address, channel);
    std::lock_guard<std::mutex> lock(mutex_);
    channels_[address] = channel;
    return channel;
  }

  const ConnectOptions& forward() const { return forward_; }

 private:
  static constexpr int kHandshakeMs = 3000;

  [[noreturn]] void Deny(const std::string& address, Clock::time_point started) {
    std::this_thread::sleep_until(started + std::chrono::milliseconds(kHandshakeMs));
    Refuse(grpc::StatusCode::PERMISSION_DENIED,
           "next hop {} is not a peer this worker may forward to (list it in the worker's "
           "--peers, or run it as a Scission worker with the same token)",
           address);
  }

  void Handshake(const std::string& address, const std::shared_ptr<grpc::Channel>& channel) {
    const auto started = Clock::now();
    std::string challenge(32, '\0');
    if (RAND_bytes(reinterpret_cast<unsigned char*>(challenge.data()), 32) != 1)
      throw Internal("no random bytes for a handshake");
    grpc::ClientContext ctx;
    ConnectOptions no_token = forward_;
    no_token.token.clear();  // never sent before the peer has proved it holds it
    PrepareContext(&ctx, no_token, kHandshakeMs);
    // A worker with a token reads no stranger's Hello body; the challenge goes as metadata (and in
    // the body for workers that read it there).
    ctx.AddMetadata(kChallengeHeader, challenge);
    v2::HelloRequest req;
    req.set_protocol_version(kProtocolVersion);
    req.set_client("scission-worker");
    req.set_challenge(challenge);
    v2::HelloReply reply;
    auto status = v2::Worker::NewStub(channel)->Hello(&ctx, req, &reply);
    bool ok = status.ok() && reply.protocol_version() == kProtocolVersion;
    if (ok && !token_.empty()) {
      std::string expected = PeerProof(token_, challenge);
      ok = reply.proof().size() == expected.size() &&
           CRYPTO_memcmp(reply.proof().data(), expected.data(), expected.size()) == 0;
    }
    if (ok && token_.empty()) ok = !reply.token_required();
    if (!ok) Deny(address, started);
  }

  std::vector<std::string> peers_;
  std::string token_;
  ConnectOptions forward_;
  std::mutex mutex_;
  std::map<std::string, std::shared_ptr<grpc::Channel>> channels_;
};

void FillSpecs(const std::vector<TensorSpec>& specs,
               google::protobuf::RepeatedPtrField<v2::TensorSpec>* out) {
  for (const auto& s : specs) {
    auto* spec = out->Add();
    spec->set_name(s.name);
    spec->set_dtype(static_cast<int32_t>(s.dtype));
    for (auto d : s.shape) spec->add_shape(d);
  }
}

// Orders received tensors like the session's inputs and checks them against its specs, before
// any data is read.
std::vector<size_t> MatchHeaders(const std::vector<TensorSpec>& received,
                                 const std::vector<TensorSpec>& wanted) {
  if (received.size() != wanted.size())
    Refuse(grpc::StatusCode::INVALID_ARGUMENT, "the segment takes {} input tensors, got {}",
           wanted.size(), received.size());
  std::vector<size_t> order;
  for (const auto& want : wanted) {
    auto it = std::find_if(received.begin(), received.end(),
                           [&](const TensorSpec& t) { return t.name == want.name; });
    if (it == received.end())
      Refuse(grpc::StatusCode::INVALID_ARGUMENT, "missing input tensor '{}'", want.name);
    bool shape_ok = it->dtype == want.dtype && it->shape.size() == want.shape.size();
    for (size_t d = 0; shape_ok && d < want.shape.size(); ++d)
      shape_ok = want.shape[d] < 0 || want.shape[d] == it->shape[d];
    if (!shape_ok)
      Refuse(grpc::StatusCode::INVALID_ARGUMENT, "input '{}' must be {} {}, got {} {}", want.name,
             DTypeName(want.dtype), ShapeString(want.shape), DTypeName(it->dtype),
             ShapeString(it->shape));
    order.push_back(static_cast<size_t>(it - received.begin()));
  }
  return order;
}

// gRPC reads a unary or server-streaming request's whole body before a plain handler runs, and
// gRPC 1.51 applies the message size limit only once the body is buffered: a caller without the
// token could make the worker hold a message of any size (4 x 400 MiB Pings: +1 GiB RSS). These
// methods are registered "streamed" instead: the handler runs on the request's metadata and reads
// the body only after the token and version passed (AdmitThenRead). Hello answers strangers
// without reading their body at all (StreamedHello); gRPC's streamed-unary handler refuses to
// reply before a read, so Hello is registered as a plain bidi handler (wire-compatible with a
// unary client: one reply message, then the status).
using StreamedWorker = v2::Worker::WithStreamedUnaryMethod_Health<
    v2::Worker::WithStreamedUnaryMethod_Ping<v2::Worker::WithSplitStreamingMethod_Download<
        v2::Worker::WithStreamedUnaryMethod_HasModel<v2::Worker::WithSplitStreamingMethod_Benchmark<
            v2::Worker::WithStreamedUnaryMethod_LoadSegment<
                v2::Worker::WithStreamedUnaryMethod_UnloadSegment<v2::Worker::Service>>>>>>>;

template <typename Message>
using Writer = grpc::internal::WriterInterface<Message>;

class Service final : public StreamedWorker {
 public:
  explicit Service(const WorkerOptions& o)
      : options_(o),
        backend_(runtime::CreateBackend(runtime::kDefaultBackend)),
        models_(o.cache_dir, o.models),
        segments_(o.segments),
        peers_(o),
        uploads_(o.max_uploads),
        bulk_(o.max_bulk_transfers) {
    constexpr int kHelloMethod = 0;  // index in proto/scission.proto's service
    MarkMethodStreamed(
        kHelloMethod,
        new grpc::internal::BidiStreamingHandler<Service, v2::HelloRequest, v2::HelloReply>(
            [](Service* service, grpc::ServerContext* ctx,
               grpc::ServerReaderWriter<v2::HelloReply, v2::HelloRequest>* stream) {
              return service->StreamedHello(ctx, stream);
            },
            this));
  }

  // A worker with a token reads no stranger's body: a stranger's protocol version and peer
  // challenge come from its metadata (kProtocolHeader, kChallengeHeader), whose size gRPC bounds
  // before buffering. Callers with the token, and everyone on a worker without one, send a body.
  grpc::Status StreamedHello(grpc::ServerContext* ctx,
                             grpc::ServerReaderWriter<v2::HelloReply, v2::HelloRequest>* stream) {
    v2::HelloRequest request;
    if (TokenOk(ctx)) {
      if (!stream->Read(&request))
        return {grpc::StatusCode::INVALID_ARGUMENT, "no request message"};
    } else {
      const auto& metadata = ctx->client_metadata();
      request.set_protocol_version(kProtocolVersion);
      if (auto it = metadata.find(kProtocolHeader); it != metadata.end()) {
        const std::string version(it->second.data(), it->second.size());
        request.set_protocol_version(version == std::to_string(kProtocolVersion) ? kProtocolVersion
                                                                                 : 0);
      }
      if (auto it = metadata.find(kChallengeHeader); it != metadata.end())
        request.set_challenge(std::string(it->second.data(), it->second.size()));
    }
    v2::HelloReply reply;
    grpc::Status status = HandleHello(ctx, &request, &reply);
    if (status.ok()) stream->Write(reply);
    return status;
  }

  grpc::Status HandleHello(grpc::ServerContext* ctx, const v2::HelloRequest* req,
                           v2::HelloReply* reply) {
    return Guarded(ctx, "Hello", /*needs_token=*/false, nullptr, [&] {
      reply->set_protocol_version(kProtocolVersion);
      reply->set_token_required(!options_.token.empty());
      if (!req->challenge().empty() && !options_.token.empty()) {
        if (req->challenge().size() < 16 || req->challenge().size() > 64)
          Refuse(grpc::StatusCode::INVALID_ARGUMENT, "a challenge has 16..64 bytes");
        reply->set_proof(PeerProof(options_.token, req->challenge()));
      }
      if (req->protocol_version() != kProtocolVersion)
        Refuse(grpc::StatusCode::FAILED_PRECONDITION,
               "protocol version {} is not supported; this worker speaks {}",
               req->protocol_version(), kProtocolVersion);
      if (!TokenOk(ctx)) return grpc::Status::OK;  // nothing more for strangers
      reply->set_authenticated(true);
      reply->set_resource(options_.resource);
      reply->set_tier(options_.tier);
      reply->set_runtime_version(runtime::OnnxRuntimeVersion());
      reply->set_cpu_model(runtime::CpuModel());
      reply->set_host(runtime::HostName());
      reply->set_max_tensor_bytes(static_cast<uint64_t>(options_.max_tensor_bytes));
      reply->set_max_segments(static_cast<uint32_t>(options_.segments.max_segments));
      return grpc::Status::OK;
    });
  }

  grpc::Status StreamedHealth(grpc::ServerContext* ctx,
                              grpc::ServerUnaryStreamer<v2::Empty, v2::Empty>* stream) override {
    return AdmitThenRead(ctx, stream, &Service::HandleHealth);
  }
  grpc::Status StreamedPing(
      grpc::ServerContext* ctx,
      grpc::ServerUnaryStreamer<v2::PingRequest, v2::PingReply>* stream) override {
    return AdmitThenRead(ctx, stream, &Service::HandlePing);
  }
  grpc::Status StreamedDownload(
      grpc::ServerContext* ctx,
      grpc::ServerSplitStreamer<v2::BulkRequest, v2::BulkChunk>* stream) override {
    return AdmitThenRead(ctx, stream, &Service::HandleDownload);
  }
  grpc::Status StreamedHasModel(
      grpc::ServerContext* ctx,
      grpc::ServerUnaryStreamer<v2::ModelRef, v2::HasModelReply>* stream) override {
    return AdmitThenRead(ctx, stream, &Service::HandleHasModel);
  }
  grpc::Status StreamedBenchmark(
      grpc::ServerContext* ctx,
      grpc::ServerSplitStreamer<v2::BenchmarkRequest, v2::BenchmarkEvent>* stream) override {
    return AdmitThenRead(ctx, stream, &Service::HandleBenchmark);
  }
  grpc::Status StreamedLoadSegment(
      grpc::ServerContext* ctx,
      grpc::ServerUnaryStreamer<v2::LoadSegmentRequest, v2::LoadSegmentReply>* stream) override {
    return AdmitThenRead(ctx, stream, &Service::HandleLoadSegment);
  }
  grpc::Status StreamedUnloadSegment(
      grpc::ServerContext* ctx,
      grpc::ServerUnaryStreamer<v2::SegmentRef, v2::Empty>* stream) override {
    return AdmitThenRead(ctx, stream, &Service::HandleUnloadSegment);
  }

  grpc::Status HandleHealth(grpc::ServerContext* ctx, const v2::Empty*, v2::Empty*) {
    return Guarded(ctx, "Health", true, nullptr, [] { return grpc::Status::OK; });
  }

  grpc::Status HandlePing(grpc::ServerContext* ctx, const v2::PingRequest* req,
                          v2::PingReply* reply) {
    return Guarded(ctx, "Ping", true, nullptr, [&] {
      if (req->payload().size() > 65536)
        Refuse(grpc::StatusCode::INVALID_ARGUMENT, "ping payload over 64 KiB");
      reply->set_payload(req->payload());
      return grpc::Status::OK;
    });
  }

  grpc::Status Upload(grpc::ServerContext* ctx, grpc::ServerReader<v2::BulkChunk>* reader,
                      v2::BulkReply* reply) override {
    return Guarded(ctx, "Upload", true, nullptr, [&] {
      auto slot = bulk_.Acquire("probe transfers");
      v2::BulkChunk chunk;
      uint64_t total = 0;
      Clock::time_point first{};
      bool started = false;
      while (reader->Read(&chunk)) {
        if (!started) {
          first = Clock::now();
          started = true;
        }
        total += chunk.data().size();
        if (total > static_cast<uint64_t>(options_.max_bulk_bytes))
          Refuse(grpc::StatusCode::INVALID_ARGUMENT, "probe transfers are limited to {} bytes",
                 options_.max_bulk_bytes);
      }
      reply->set_bytes(total);
      reply->set_server_ms(started ? Ms(first) : 0.0);
      return grpc::Status::OK;
    });
  }

  grpc::Status HandleDownload(grpc::ServerContext* ctx, const v2::BulkRequest* req,
                              Writer<v2::BulkChunk>* writer) {
    return Guarded(ctx, "Download", true, nullptr, [&] {
      auto slot = bulk_.Acquire("probe transfers");
      if (req->bytes() > static_cast<uint64_t>(options_.max_bulk_bytes))
        Refuse(grpc::StatusCode::INVALID_ARGUMENT, "probe transfers are limited to {} bytes",
               options_.max_bulk_bytes);
      const uint64_t chunk_bytes =
          req->chunk_bytes() == 0 ? 65536 : std::min<uint64_t>(req->chunk_bytes(), kChunkBytes);
      v2::BulkChunk chunk;
      chunk.set_data(std::string(chunk_bytes, 'x'));
      for (uint64_t sent = 0; sent < req->bytes(); sent += chunk_bytes) {
        if (req->bytes() - sent < chunk_bytes)
          chunk.set_data(std::string(req->bytes() - sent, 'x'));
        if (!writer->Write(chunk)) break;  // the caller went away
      }
      return grpc::Status::OK;
    });
  }

  grpc::Status HandleHasModel(grpc::ServerContext* ctx, const v2::ModelRef* req,
                              v2::HasModelReply* reply) {
    return Guarded(ctx, "HasModel", true, nullptr, [&] {
      if (!IsSha256Hex(req->sha256()))
        Refuse(grpc::StatusCode::INVALID_ARGUMENT, "sha256 must be 64 lowercase hex digits");
      reply->set_present(models_.Has(req->sha256()));
      return grpc::Status::OK;
    });
  }

  grpc::Status PutModel(grpc::ServerContext* ctx, grpc::ServerReader<v2::ModelChunk>* reader,
                        v2::ModelRef* reply) override {
    return Guarded(ctx, "PutModel", true, nullptr, [&] {
      auto slot = uploads_.Acquire("model uploads");
      v2::ModelChunk chunk;
      if (!reader->Read(&chunk)) Refuse(grpc::StatusCode::INVALID_ARGUMENT, "no model chunks");
      const std::string sha = chunk.sha256();
      const auto total = static_cast<int64_t>(std::min<uint64_t>(chunk.total_bytes(), INT64_MAX));
      auto upload = models_.BeginUpload(sha, total);
      upload->Append(chunk.data());
      while (reader->Read(&chunk)) upload->Append(chunk.data());
      if (ctx->IsCancelled()) Refuse(grpc::StatusCode::CANCELLED, "upload cancelled");
      upload->Commit();
      reply->set_sha256(sha);
      return grpc::Status::OK;
    });
  }

  // The model's blocks as the caller cut them (its boundaries), or the worker's own cut.
  graph::GraphAnalysis CallersCut(const CachedModel& model,
                                  const google::protobuf::RepeatedField<int32_t>& boundaries) {
    if (boundaries.empty()) return model.analysis;
    if (boundaries.size() > model.analysis.positions() + 1)
      Refuse(grpc::StatusCode::INVALID_ARGUMENT, "{} block boundaries for a model of {} positions",
             boundaries.size(), model.analysis.positions());
    try {
      return graph::Reblock(model.model.proto.graph(), model.analysis,
                            std::vector<int>(boundaries.begin(), boundaries.end()));
    } catch (const Error& e) {
      Refuse(grpc::StatusCode::INVALID_ARGUMENT, "{}", e.what());
    }
  }

  // Inputs at the caller's shapes, checked and bounded before anything is allocated: each name a
  // model input at most once, its dtype (or 0) and declared rank, dimensions 1..2^31-1, and all
  // inputs together (the others at their declared shapes, a dynamic dimension as 1) within
  // --max-tensor-mb. Values generated as for a local benchmark without --input.
  profile::ResolvedInputs CallersInputs(
      const graph::GraphAnalysis& cut,
      const google::protobuf::RepeatedPtrField<v2::TensorSpec>& shapes) const {
    if (shapes.size() > static_cast<int>(cut.inputs.size()))
      Refuse(grpc::StatusCode::INVALID_ARGUMENT, "{} input shapes for a model of {} inputs",
             shapes.size(), cut.inputs.size());
    std::vector<TensorSpec> planned = cut.inputs;
    std::vector<char> given(planned.size(), 0);
    profile::InputOptions options;
    for (const auto& spec : shapes) {
      size_t i = 0;
      while (i < planned.size() && planned[i].name != spec.name()) ++i;
      if (i == planned.size())
        Refuse(grpc::StatusCode::INVALID_ARGUMENT, "input_shapes names an input the model lacks");
      TensorSpec& s = planned[i];
      if (given[i]++)
        Refuse(grpc::StatusCode::INVALID_ARGUMENT, "input_shapes names '{}' twice", s.name);
      if (spec.dtype() != 0 && spec.dtype() != static_cast<int32_t>(s.dtype))
        Refuse(grpc::StatusCode::INVALID_ARGUMENT, "input '{}' has dtype {}, not {}", s.name,
               static_cast<int>(s.dtype), spec.dtype());
      if (spec.shape_size() != static_cast<int>(s.shape.size()))
        Refuse(grpc::StatusCode::INVALID_ARGUMENT, "input '{}' has rank {}, not {}", s.name,
               s.shape.size(), spec.shape_size());
      for (int64_t d : spec.shape())
        if (d < 1 || d > INT32_MAX)
          Refuse(grpc::StatusCode::INVALID_ARGUMENT,
                 "input '{}': dimensions must be 1..2^31-1, got {}", s.name, d);
      s.shape.assign(spec.shape().begin(), spec.shape().end());
      options.shapes.emplace_back(s.name, s.shape);
    }
    int64_t total = 0;
    for (auto& s : planned) {
      for (auto& d : s.shape)
        if (d < 0) d = 1;
      const int64_t bytes = s.bytes();
      if (bytes < 0 || __builtin_add_overflow(total, bytes, &total) ||
          total > options_.max_tensor_bytes)
        Refuse(grpc::StatusCode::INVALID_ARGUMENT,
               "the model's inputs at these shapes take more than this worker's --max-tensor-mb");
    }
    auto resolved = profile::ResolveInputs(cut.inputs, options, "the model");
    resolved.Tensors();  // BadInput if they could not be generated
    return resolved;
  }

  // A model whose probe at its declared shapes failed learns its tensors' types at the caller's
  // shapes (profile::ResolveBlockShapes on the caller's cut); without shapes, the caller is told.
  static void RequireShapesIfUnprobed(
      const CachedModel& model, const google::protobuf::RepeatedPtrField<v2::TensorSpec>& shapes) {
    if (!model.probe_error.empty() && shapes.empty())
      Refuse(grpc::StatusCode::FAILED_PRECONDITION,
             "the model does not run at its declared shapes with dynamic dimensions as 1 ({}); "
             "send the input shapes (--shape)",
             model.probe_error);
  }

  // The caller's values into `inputs` (the model's inputs in its order, at the request's shapes):
  // names, dtypes and sizes must match exactly.
  static void SetInputValues(const v2::BenchmarkRequest& req, std::vector<Tensor>& inputs) {
    const std::string& values = req.input_values();
    if (req.input_shapes_size() != static_cast<int>(inputs.size()))
      Refuse(grpc::StatusCode::INVALID_ARGUMENT, "input_values for {} inputs, the model has {}",
             req.input_shapes_size(), inputs.size());
    size_t offset = 0;
    for (size_t i = 0; i < inputs.size(); ++i) {
      const auto& spec = req.input_shapes(static_cast<int>(i));
      Tensor& t = inputs[i];
      if (spec.name() != t.spec.name || spec.dtype() != static_cast<int32_t>(t.spec.dtype))
        Refuse(grpc::StatusCode::INVALID_ARGUMENT,
               "input_values: input {} must be '{}' of dtype {} (the model's order)", i,
               t.spec.name, static_cast<int>(t.spec.dtype));
      if (t.data.size() > values.size() - offset)
        Refuse(grpc::StatusCode::INVALID_ARGUMENT,
               "input_values: {} bytes, fewer than the inputs take", values.size());
      std::memcpy(t.data.data(), values.data() + offset, t.data.size());
      offset += t.data.size();
    }
    if (offset != values.size())
      Refuse(grpc::StatusCode::INVALID_ARGUMENT, "input_values: {} bytes, the inputs take {}",
             values.size(), offset);
  }

  grpc::Status HandleBenchmark(grpc::ServerContext* ctx, const v2::BenchmarkRequest* req,
                               Writer<v2::BenchmarkEvent>* writer) {
    CancelToken token;
    return Guarded(ctx, "Benchmark", true, &token, [&] {
      if (req->warmup() < 0 || req->warmup() > options_.max_warmup)
        Refuse(grpc::StatusCode::INVALID_ARGUMENT, "warmup must be 0..{} (0 = 3)",
               options_.max_warmup);
      if (req->repeats() < 0 || req->repeats() > options_.max_repeats)
        Refuse(grpc::StatusCode::INVALID_ARGUMENT, "repeats must be 0..{} (0 = 20)",
               options_.max_repeats);
      const int threads = SegmentThreads(req->threads());
      auto watch =
          watchdog_.Add(ctx, &token, options_.max_benchmark_s,
                        fmt::format("benchmarks stop after {} s", options_.max_benchmark_s));
      auto entry = models_.Get(req->sha256(), &token);
      // One benchmark at a time keeps timings clean; a waiting caller may give up.
      std::unique_lock<std::timed_mutex> lock(benchmark_mutex_, std::defer_lock);
      while (!lock.try_lock_for(std::chrono::milliseconds(100)))
        token.ThrowIfCancelled("benchmark");
      graph::GraphAnalysis cut = CallersCut(*entry, req->boundaries());
      RequireShapesIfUnprobed(*entry, req->input_shapes());
      profile::BenchmarkOptions o;
      // Always resolved here, so that no input (a declared static one included) is generated
      // beyond --max-tensor-mb.
      auto inputs = CallersInputs(cut, req->input_shapes());
      o.inputs = std::move(inputs.tensors);
      if (!req->input_values().empty()) {
        if (req->input_shapes().empty())
          Refuse(grpc::StatusCode::INVALID_ARGUMENT, "input_values need input_shapes");
        SetInputValues(*req, o.inputs);
      }
      if (!entry->probe_error.empty())
        profile::ResolveBlockShapes(entry->model, cut, o.inputs, runtime::kDefaultBackend, &token);
      o.harness.warmup_runs = req->warmup() > 0 ? req->warmup() : 3;
      o.harness.min_runs = req->repeats() > 0 ? req->repeats() : 20;
      o.harness.cancel = &token;
      o.session.threads = threads;
      o.chain_check = !req->skip_chain_check();
      if (req->codecs_size() > 64)
        Refuse(grpc::StatusCode::INVALID_ARGUMENT, "{} codecs to measure (at most 64)",
               req->codecs_size());
      for (const auto& name : req->codecs()) {
        if (!codec::Find(name))
          Refuse(grpc::StatusCode::INVALID_ARGUMENT, "unknown codec '{}'",
                 store::PrintableText(name.substr(0, 64)));
        if (std::find(o.codecs.begin(), o.codecs.end(), name) == o.codecs.end())
          o.codecs.push_back(name);
      }
      const std::string started = store::NowIso8601();
      v2::BenchmarkEvent event;
      ToWire(store::ModelRecordFor(entry->model, cut, ""), event.mutable_model());
      if (!writer->Write(event)) return grpc::Status::OK;
      for (const auto& b : store::BlockRecordsFor(cut)) {
        event.Clear();
        ToWire(b, event.mutable_block());
        if (!writer->Write(event)) return grpc::Status::OK;
      }
      StreamingListener listener(writer, &token);
      o.whole_segment = false;  // the reply has no field for it
      auto result = profile::BenchmarkModel(entry->model, cut, o, &listener);
      // As a local benchmark: a chain that does not compute the model is an error, not a run
      // (ABORTED: the caller gets the reason, and exits 1 as a local benchmark would).
      try {
        profile::ThrowIfChainCheckFailed(result, "model " + req->sha256().substr(0, 12));
      } catch (const Error& e) {
        Refuse(grpc::StatusCode::ABORTED, "{}", e.what());
      }
      event.Clear();
      auto run = store::RunRecordFor(result, o, started);
      // What this worker ran, so that the caller can check it is what it asked for.
      run.partition = graph::PartitionFingerprint(cut);
      run.input_shapes = inputs.shape_key;
      ToWire(run, event.mutable_run());
      writer->Write(event);
      return grpc::Status::OK;
    });
  }

  grpc::Status HandleLoadSegment(grpc::ServerContext* ctx, const v2::LoadSegmentRequest* req,
                                 v2::LoadSegmentReply* reply) {
    CancelToken token;
    return Guarded(ctx, "LoadSegment", true, &token, [&] {
      const int threads = SegmentThreads(req->threads());
      if (req->next_address().empty() != req->next_segment_id().empty())
        Refuse(grpc::StatusCode::INVALID_ARGUMENT, "next_address and next_segment_id go together");
      if (!req->next_segment_id().empty() && !IsSegmentId(req->next_segment_id()))
        Refuse(grpc::StatusCode::INVALID_ARGUMENT,
               "next_segment_id must be an id a worker returned (32 hex digits)");
      // Loading a model with dynamic shapes runs it once: the caller's deadline (or the worker's
      // request limit) stops a runaway one.
      auto watch = watchdog_.Add(ctx, &token, options_.max_request_s,
                                 fmt::format("requests stop after {} s", options_.max_request_s));
      auto model = models_.Get(req->sha256(), &token);
      graph::GraphAnalysis cut = CallersCut(*model, req->boundaries());
      RequireShapesIfUnprobed(*model, req->input_shapes());
      if (!model->probe_error.empty())
        profile::ResolveBlockShapes(model->model, cut,
                                    CallersInputs(cut, req->input_shapes()).tensors,
                                    runtime::kDefaultBackend, &token);
      const std::string partition =
          req->boundaries().empty() ? model->partition : graph::PartitionFingerprint(cut);
      const int blocks = static_cast<int>(cut.blocks.size());
      if (req->first_block() < 0 || req->last_block() < req->first_block() ||
          req->last_block() >= blocks)
        Refuse(grpc::StatusCode::INVALID_ARGUMENT, "block range {}..{} is not within 0..{}",
               req->first_block(), req->last_block(), blocks - 1);
      SegmentEntry entry;
      if (!req->output_codec().empty()) {
        const codec::Codec* c = codec::Find(req->output_codec());
        if (!c)
          Refuse(grpc::StatusCode::INVALID_ARGUMENT, "unknown output codec '{}'",
                 store::PrintableText(req->output_codec().substr(0, 64)));
        entry.output_codec = c->name();
      }
      if (!req->next_address().empty()) {
        entry.next_channel = peers_.ChannelTo(req->next_address());
        entry.next_address = req->next_address();
        entry.next_segment_id = req->next_segment_id();
      }
      entry.key = {req->sha256(), req->first_block(), req->last_block(), threads, partition};
      auto segment =
          graph::ExtractSegment(model->model.proto, cut, req->first_block(), req->last_block());
      std::string bytes = segment.model.SerializeAsString();
      const std::string label = fmt::format("model {} blocks {}..{}", req->sha256().substr(0, 12),
                                            req->first_block(), req->last_block());
      const int owned = threads > 0 ? threads : HardwareThreads();
      entry.prepared = segments_.Session(entry.key, static_cast<int64_t>(bytes.size()), owned, [&] {
        return backend_->Prepare(bytes, runtime::SessionOptions{threads}, label);
      });
      bytes.clear();
      auto added = segments_.Add(std::move(entry));
      reply->set_segment_id(added->id);
      FillSpecs(added->prepared->session->inputs(), reply->mutable_inputs());
      FillSpecs(added->prepared->session->outputs(), reply->mutable_outputs());
      reply->set_partition(partition);
      return grpc::Status::OK;
    });
  }

  grpc::Status HandleUnloadSegment(grpc::ServerContext* ctx, const v2::SegmentRef* req,
                                   v2::Empty*) {
    return Guarded(ctx, "UnloadSegment", true, nullptr, [&] {
      if (!segments_.Remove(req->segment_id()))
        Refuse(grpc::StatusCode::NOT_FOUND, "no segment '{}' is loaded here",
               Printable(req->segment_id()));
      return grpc::Status::OK;
    });
  }

  grpc::Status Infer(grpc::ServerContext* ctx,
                     grpc::ServerReaderWriter<v2::InferReply, v2::InferRequest>* stream) override {
    CancelToken token;
    return Guarded(ctx, "Infer", true, &token, [&] {
      auto watch = watchdog_.Add(ctx, &token, options_.max_request_s,
                                 fmt::format("requests stop after {} s", options_.max_request_s));
      v2::InferRequest first;
      if (!stream->Read(&first)) Refuse(grpc::StatusCode::INVALID_ARGUMENT, "empty request");
      auto seg = segments_.Find(first.segment_id());
      if (!seg)
        Refuse(grpc::StatusCode::NOT_FOUND,
               "no segment '{}' is loaded here (never loaded, unloaded, or evicted to make room: "
               "load it again)",
               Printable(first.segment_id()));
      const auto& wanted = seg->prepared->session->inputs();
      if (first.synthetic_inputs()) return SyntheticInfer(stream, first, *seg, &token);
      TensorLimits limits{options_.max_tensor_bytes, InputBudget(wanted)};
      auto headers = CheckHeaders(first.tensors(), "infer request", limits);
      auto order = MatchHeaders(headers, wanted);
      double decode_ms = 0;
      auto received = ReadTensorStream(stream, first, headers, "infer request", &decode_ms);
      const auto start = Clock::now();  // all input bytes are here, decoded
      std::vector<Tensor> inputs;
      for (size_t i : order) inputs.push_back(std::move(received[i]));
      received.clear();
      auto compute_start = Clock::now();
      std::vector<Tensor> outputs = seg->prepared->session->Infer(inputs, &token);
      const double compute_ms = Ms(compute_start);
      inputs.clear();

      v2::InferReply reply;
      reply.set_request_id(first.request_id());
      auto* own = reply.add_timings();
      own->set_resource(options_.resource);
      own->set_compute_ms(compute_ms);
      own->set_decode_ms(decode_ms);
      std::string return_codec = seg->output_codec;
      if (seg->next_channel) {
        auto next_ctx = grpc::ClientContext::FromServerContext(*ctx);
        PrepareContext(next_ctx.get(), peers_.forward(),
                       static_cast<int>(options_.max_request_s * 1000));
        auto forward_start = Clock::now();
        auto result = CallInfer(*v2::Worker::NewStub(seg->next_channel), next_ctx.get(),
                                seg->next_segment_id, first.request_id(), outputs,
                                {options_.max_tensor_bytes, options_.max_tensor_bytes * 4},
                                seg->output_codec);
        own->set_forward_ms(Ms(forward_start));
        own->set_encode_ms(result.encode_ms);
        if (!result.status.ok())
          Refuse(result.status.error_code() == grpc::StatusCode::INVALID_ARGUMENT
                     ? grpc::StatusCode::INVALID_ARGUMENT
                     : grpc::StatusCode::UNAVAILABLE,
                 "next hop {}: {}", seg->next_address, OneLine(result.status.error_message()));
        for (const auto& t : result.timings) *reply.add_timings() = t;
        outputs = std::move(result.outputs);
        return_codec = result.codec;
      }
      for (const auto& t : outputs)
        if (static_cast<int64_t>(t.data.size()) > options_.max_tensor_bytes)
          Refuse(grpc::StatusCode::RESOURCE_EXHAUSTED, "output '{}' exceeds {} bytes", t.spec.name,
                 options_.max_tensor_bytes);
      reply.mutable_timings(0)->set_server_ms(Ms(start));
      // The model's outputs travel back in the codec of the plan's return hop: the last segment
      // encodes them, and each worker before it passes them on in the codec they came in.
      WriteTensorStream(stream, std::move(reply), outputs, return_codec);
      return grpc::Status::OK;
    });
  }

 private:
  // A compute probe (InferRequest.synthetic_inputs): inputs made here, nothing forwarded, only
  // this worker's timing back.
  grpc::Status SyntheticInfer(grpc::ServerReaderWriter<v2::InferReply, v2::InferRequest>* stream,
                              const v2::InferRequest& first, const SegmentEntry& seg,
                              CancelToken* token) {
    if (first.tensors_size() > 0 || !first.data().empty())
      Refuse(grpc::StatusCode::INVALID_ARGUMENT, "a synthetic-input request carries no tensors");
    const auto start = Clock::now();
    std::vector<Tensor> inputs;
    for (const auto& spec : seg.prepared->session->inputs()) {
      const int64_t bytes = spec.bytes();
      if (bytes < 0 || bytes > options_.max_tensor_bytes)
        Refuse(grpc::StatusCode::FAILED_PRECONDITION,
               "input '{}' of this segment has no static size within {} bytes; send real inputs",
               spec.name, options_.max_tensor_bytes);
      inputs.push_back(runtime::MakeRandomInput(spec, 1));
    }
    auto compute_start = Clock::now();
    seg.prepared->session->Infer(inputs, token);
    v2::InferReply reply;
    reply.set_request_id(first.request_id());
    auto* own = reply.add_timings();
    own->set_resource(options_.resource);
    own->set_compute_ms(Ms(compute_start));
    own->set_server_ms(Ms(start));
    WriteTensorStream(stream, std::move(reply), {});
    return grpc::Status::OK;
  }

  class StreamingListener final : public profile::BenchmarkListener {
   public:
    StreamingListener(Writer<v2::BenchmarkEvent>* writer, CancelToken* token)
        : writer_(writer), token_(token) {}
    void OnWholeModelDone(const profile::Timing& timing) override {
      Send(store::MeasurementFor(-1, 0, timing, 0));
    }
    void OnBlockDone(const profile::BlockProfile& b, int) override {
      Send(store::MeasurementFor(b.index, b.setup_ms, b.timing, b.output_bytes));
    }

   private:
    void Send(const store::MeasurementRecord& m) {
      v2::BenchmarkEvent event;
      ToWire(m, event.mutable_measurement());
      if (!writer_->Write(event)) token_->Cancel("the caller went away");
    }
    Writer<v2::BenchmarkEvent>* writer_;
    CancelToken* token_;
  };

  static int HardwareThreads() {
    return std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  }

  int SegmentThreads(int requested) const {
    if (requested < 0 || requested > options_.max_threads_per_segment)
      Refuse(grpc::StatusCode::INVALID_ARGUMENT, "threads must be 0..{} on this worker",
             options_.max_threads_per_segment);
    return requested > 0 ? requested : options_.threads;
  }

  // What one request to a segment may carry: its static inputs' bytes, and the tensor limit for
  // each input with a dynamic dimension.
  int64_t InputBudget(const std::vector<TensorSpec>& inputs) const {
    int64_t total = 0;
    for (const auto& in : inputs) {
      int64_t bytes = in.bytes();
      total += bytes >= 0 ? bytes : options_.max_tensor_bytes;
    }
    return total;
  }

  static std::string Printable(const std::string& text) {
    std::string out;
    for (unsigned char c : text.substr(0, 64)) out.push_back(c >= 0x20 && c < 0x7f ? c : '?');
    return out;
  }

  bool TokenOk(grpc::ServerContext* ctx) const {
    if (options_.token.empty()) return true;
    const std::string expected = "Bearer " + options_.token;
    auto range = ctx->client_metadata().equal_range("authorization");
    for (auto it = range.first; it != range.second; ++it)
      if (it->second.size() == expected.size() &&
          CRYPTO_memcmp(it->second.data(), expected.data(), expected.size()) == 0)
        return true;
    return false;
  }

  // The caller's token and protocol version; OK when both are right.
  grpc::Status Admit(grpc::ServerContext* ctx) const {
    if (!TokenOk(ctx)) return {grpc::StatusCode::UNAUTHENTICATED, "missing or wrong token"};
    auto it = ctx->client_metadata().find(kProtocolHeader);
    std::string version =
        it == ctx->client_metadata().end() ? "" : std::string(it->second.data(), it->second.size());
    if (version != std::to_string(kProtocolVersion))
      return {grpc::StatusCode::FAILED_PRECONDITION,
              fmt::format("protocol version '{}' is not supported; this worker speaks {}",
                          Printable(version), kProtocolVersion)};
    return grpc::Status::OK;
  }

  // A streamed unary method: admit the caller, read its one request, run the handler, send the
  // one reply.
  template <typename Request, typename Reply>
  grpc::Status AdmitThenRead(grpc::ServerContext* ctx,
                             grpc::ServerUnaryStreamer<Request, Reply>* stream,
                             grpc::Status (Service::*handle)(grpc::ServerContext*, const Request*,
                                                             Reply*)) {
    if (auto refused = Admit(ctx); !refused.ok()) return refused;
    Request request;
    if (!stream->Read(&request)) return {grpc::StatusCode::INVALID_ARGUMENT, "no request message"};
    Reply reply;
    grpc::Status status = (this->*handle)(ctx, &request, &reply);
    if (status.ok()) stream->Write(reply);
    return status;
  }
  // A streamed server-streaming method: admit, read the one request, let the handler write.
  template <typename Request, typename Event>
  grpc::Status AdmitThenRead(grpc::ServerContext* ctx,
                             grpc::ServerSplitStreamer<Request, Event>* stream,
                             grpc::Status (Service::*handle)(grpc::ServerContext*, const Request*,
                                                             Writer<Event>*)) {
    if (auto refused = Admit(ctx); !refused.ok()) return refused;
    Request request;
    if (!stream->Read(&request)) return {grpc::StatusCode::INVALID_ARGUMENT, "no request message"};
    return (this->*handle)(ctx, &request, stream);
  }

  // Every handler runs inside this: token and protocol version first (before a streaming call
  // reads its first message), then the body, whose every exception becomes a proper status.
  // Messages of internal faults go to the log, not to the caller.
  template <typename Body>
  grpc::Status Guarded(grpc::ServerContext* ctx, const char* rpc, bool needs_token,
                       CancelToken* token, Body&& body) {
    if (needs_token)
      if (auto refused = Admit(ctx); !refused.ok()) return refused;
    try {
      return body();
    } catch (const Refusal& r) {
      return {r.code, r.what()};
    } catch (const Error& e) {
      if (token && token->cancelled())
        return {
            ctx->IsCancelled() ? grpc::StatusCode::CANCELLED : grpc::StatusCode::DEADLINE_EXCEEDED,
            fmt::format("{} stopped: {}", rpc, token->reason())};
      if (e.kind() == ErrorKind::kBadInput) return {grpc::StatusCode::INVALID_ARGUMENT, e.what()};
      Log(fmt::format("{}: internal error: {}", rpc, e.what()));
      return {grpc::StatusCode::INTERNAL, fmt::format("internal error in {}", rpc)};
    } catch (const std::bad_alloc&) {
      Log(fmt::format("{}: out of memory", rpc));
      return {grpc::StatusCode::RESOURCE_EXHAUSTED, fmt::format("{}: out of memory", rpc)};
    } catch (const std::exception& e) {
      Log(fmt::format("{}: internal error: {}", rpc, OneLine(e.what())));
      return {grpc::StatusCode::INTERNAL, fmt::format("internal error in {}", rpc)};
    }
  }

  void Log(const std::string& message) const {
    if (options_.log) options_.log(message);
  }

  WorkerOptions options_;
  std::unique_ptr<runtime::Backend> backend_;
  ModelCache models_;
  SegmentManager segments_;
  PeerPolicy peers_;
  Slots uploads_, bulk_;
  std::timed_mutex benchmark_mutex_;
  Watchdog watchdog_;
};

// ---- Start-up checks ----------------------------------------------------------------------------

// PEM certificate and key that parse and belong together; BadInput naming the file otherwise.
void CheckTlsFiles(const std::string& cert_path, const std::string& key_path, std::string* cert_pem,
                   std::string* key_pem) {
  auto read = [](const std::string& flag, const std::string& path) {
    try {
      return ReadFileBytes(path);
    } catch (const Error& e) {
      throw BadInput("{} {}", flag, e.what());
    }
  };
  *cert_pem = read("--tls-cert", cert_path);
  *key_pem = read("--tls-key", key_path);
  BIO* cert_bio = BIO_new_mem_buf(cert_pem->data(), static_cast<int>(cert_pem->size()));
  X509* cert = PEM_read_bio_X509(cert_bio, nullptr, nullptr, nullptr);
  BIO_free(cert_bio);
  BIO* key_bio = BIO_new_mem_buf(key_pem->data(), static_cast<int>(key_pem->size()));
  EVP_PKEY* key = PEM_read_bio_PrivateKey(key_bio, nullptr, nullptr, nullptr);
  BIO_free(key_bio);
  bool match = cert && key && X509_check_private_key(cert, key) == 1;
  X509_free(cert);
  EVP_PKEY_free(key);
  if (!cert) throw BadInput("--tls-cert {}: not a PEM certificate", cert_path);
  if (!key) throw BadInput("--tls-key {}: not a PEM private key (or it is encrypted)", key_path);
  if (!match) throw BadInput("--tls-key {} does not belong to --tls-cert {}", key_path, cert_path);
}

// Why a listen address cannot be bound, in words (gRPC only says that it failed).
std::string WhyCannotListen(const std::string& listen) {
  auto colon = listen.rfind(':');
  std::string host = listen.substr(0, colon), port = listen.substr(colon + 1);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  addrinfo* found = nullptr;
  if (getaddrinfo(host.c_str(), port.c_str(), &hints, &found) != 0 || !found)
    return "cannot resolve the host";
  std::string why = "cannot listen";
  int fd = ::socket(found->ai_family, found->ai_socktype, found->ai_protocol);
  if (fd >= 0) {
    if (::bind(fd, found->ai_addr, found->ai_addrlen) != 0) why = std::strerror(errno);
    ::close(fd);
  }
  freeaddrinfo(found);
  return why;
}

}  // namespace

void WorkerOptions::Validate() {
  CheckListenAddress(listen);
  if (resource.empty()) throw BadInput("--resource must not be empty");
  if (tier.empty()) throw BadInput("--tier must not be empty");
  if (tls_cert.empty() != tls_key.empty()) throw BadInput("--tls-cert and --tls-key go together");
  const int hardware = std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  if (max_threads_per_segment <= 0) max_threads_per_segment = hardware;
  if (threads < 0 || threads > max_threads_per_segment)
    throw BadInput("--threads must be 0..{}", max_threads_per_segment);
  for (const auto& peer : peers) CheckAddress(peer);
  if (cache_dir.empty()) cache_dir = ScissionHome() + "/worker";
  if (segments.max_segments < 1 || segments.max_segments > 4096)
    throw BadInput("--max-segments must be 1..4096");
  if (segments.max_session_bytes < (1 << 20)) throw BadInput("--max-segment-mb must be at least 1");
  if (segments.max_total_threads < 1) segments.max_total_threads = 16 * hardware;
  if (models.max_disk_bytes < (1 << 20)) throw BadInput("--max-cache-mb must be at least 1");
  if (max_tensor_bytes < 1 || max_tensor_bytes > (4LL << 30))
    throw BadInput("--max-tensor-mb must be 1..4096");
  if (max_transport_bytes < (4 << 20)) throw BadInput("--max-transport-mb must be at least 4");
  if (max_uploads < 1 || max_bulk_transfers < 1 || max_rpc_threads < 4)
    throw BadInput("worker concurrency limits must be positive");
  if (!(max_benchmark_s > 0) || !(max_request_s > 0))
    throw BadInput("worker time limits must be positive");
}

struct WorkerServer::Impl {
  WorkerOptions options;
  std::unique_ptr<Service> service;
  std::unique_ptr<grpc::Server> server;
};

WorkerServer::WorkerServer(WorkerOptions options) : impl_(std::make_unique<Impl>()) {
  options.Validate();
  impl_->options = std::move(options);
  impl_->service = std::make_unique<Service>(impl_->options);
}

WorkerServer::~WorkerServer() { Shutdown(); }

int WorkerServer::Start() {
  const auto& o = impl_->options;
  grpc::ServerBuilder builder;
  std::shared_ptr<grpc::ServerCredentials> creds;
  if (!o.tls_cert.empty()) {
    grpc::SslServerCredentialsOptions ssl;
    std::string cert, key;
    CheckTlsFiles(o.tls_cert, o.tls_key, &cert, &key);
    ssl.pem_key_cert_pairs.push_back({key, cert});
    creds = grpc::SslServerCredentials(ssl);
  } else {
    creds = grpc::InsecureServerCredentials();
  }
  int port = 0;
  builder.AddListeningPort(o.listen, creds, &port);
  // No port sharing: with SO_REUSEPORT a second worker could start on a port in use and take
  // half of its connections.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS, 32);
  builder.SetMaxReceiveMessageSize(kMaxMessageBytes);
  builder.SetMaxSendMessageSize(kMaxMessageBytes);
  grpc::ResourceQuota quota("scission-worker");
  quota.SetMaxThreads(o.max_rpc_threads);
  // What gRPC may buffer for all connections together: streams of callers with the token, every
  // caller of a worker without one, and the data each refused stream may still send within its
  // flow-control window (which BDP probing grows to several MiB). Past it gRPC resets streams.
  quota.Resize(static_cast<size_t>(o.max_transport_bytes));
  builder.SetResourceQuota(quota);
  builder.RegisterService(impl_->service.get());
  impl_->server = builder.BuildAndStart();
  if (!impl_->server || port == 0)
    throw BadInput("{}: cannot listen: {}", o.listen, WhyCannotListen(o.listen));
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
