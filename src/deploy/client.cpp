#include "deploy/client.h"

#include <chrono>
#include <cmath>

#include "common/error.h"
#include "common/files.h"
#include "profile/stats.h"

namespace scission::deploy {

using Clock = std::chrono::steady_clock;

namespace {
double Ms(Clock::time_point since) {
  return std::chrono::duration<double, std::milli>(Clock::now() - since).count();
}
}  // namespace

void ProbeOptions::Validate() const {
  if (pings < 1 || pings > 10000) throw BadInput("--pings must be 1..10000, got {}", pings);
  if (!std::isfinite(min_transfer_ms) || min_transfer_ms < 1 || min_transfer_ms > 60000)
    throw BadInput("--min-transfer-ms must be 1..60000, got {}", min_transfer_ms);
  if (max_transfer_bytes < (256 << 10) || max_transfer_bytes > (1LL << 30))
    throw BadInput("the largest probe transfer must be 256 KiB .. 1 GiB");
}

InferResult CallInfer(v2::Worker::StubInterface& stub, grpc::ClientContext* context,
                      const std::string& segment_id, uint64_t request_id,
                      const std::vector<Tensor>& inputs, const TensorLimits& limits,
                      const std::string& codec) {
  InferResult result;
  auto stream = stub.Infer(context);
  v2::InferRequest first;
  first.set_segment_id(segment_id);
  first.set_request_id(request_id);
  WriteTensorStream(stream.get(), std::move(first), inputs, codec, &result.encode_ms);
  stream->WritesDone();
  v2::InferReply reply;
  bool got = stream->Read(&reply);
  if (got) {
    try {
      auto specs = CheckHeaders(reply.tensors(), "reply", limits);
      result.outputs = ReadTensorStream(stream.get(), reply, specs, "reply", &result.decode_ms);
      for (const auto& h : reply.tensors())
        if (!h.codec().empty() && h.codec() != "none") result.codec = h.codec();
      result.timings.assign(reply.timings().begin(), reply.timings().end());
    } catch (const Error& e) {
      context->TryCancel();
      stream->Finish();
      result.status = grpc::Status(grpc::StatusCode::DATA_LOSS, e.what());
      return result;
    }
  }
  result.status = stream->Finish();
  if (result.status.ok() && !got)
    result.status = grpc::Status(grpc::StatusCode::DATA_LOSS, "the worker sent no reply");
  return result;
}

WorkerClient::WorkerClient(const std::string& address, const ConnectOptions& options)
    : address_(address),
      options_(options),
      stub_(v2::Worker::NewStub(MakeChannel(address, options))) {}

WorkerInfo WorkerClient::Hello() {
  grpc::ClientContext ctx;
  PrepareContext(&ctx, options_, std::min(options_.timeout_ms, 15000));
  v2::HelloRequest req;
  req.set_protocol_version(kProtocolVersion);
  req.set_client("scission");
  v2::HelloReply reply;
  auto status = stub_->Hello(&ctx, req, &reply);
  if (!status.ok()) ThrowStatus(status, "worker " + address_);
  if (!reply.authenticated())
    throw BadInput("worker {}: {}", address_,
                   options_.token.empty()
                       ? "it requires a token (--token-file FILE or $SCISSION_TOKEN)"
                       : "it refused the token");
  WorkerInfo info{reply.resource(),  reply.tier(), reply.runtime_version(),
                  reply.cpu_model(), reply.host(), static_cast<int64_t>(reply.max_tensor_bytes())};
  if (info.max_tensor_bytes <= 0) info.max_tensor_bytes = kDefaultMaxTensorBytes;
  return info;
}

double WorkerClient::PingMs(size_t payload_bytes) {
  grpc::ClientContext ctx;
  PrepareContext(&ctx, options_, 15000);
  v2::PingRequest req;
  req.set_payload(std::string(payload_bytes, 'p'));
  v2::PingReply reply;
  auto start = Clock::now();
  auto status = stub_->Ping(&ctx, req, &reply);
  double ms = Ms(start);
  if (!status.ok()) ThrowStatus(status, "ping " + address_);
  return ms;
}

ProbeResult WorkerClient::Probe(const ProbeOptions& o) {
  o.Validate();
  ProbeResult r;
  PingMs();  // connection set-up is not part of the RTT
  std::vector<double> pings;
  for (int i = 0; i < o.pings; ++i) pings.push_back(PingMs());
  r.rtt_ms = profile::Median(pings);
  r.rtt_p90_ms = profile::Percentile(pings, 0.9);

  auto upload = [&](int64_t bytes) { return UploadMs(bytes); };
  auto download = [&](int64_t bytes) {
    grpc::ClientContext ctx;
    PrepareContext(&ctx, options_, 600000);
    v2::BulkRequest req;
    req.set_bytes(static_cast<uint64_t>(bytes));
    req.set_chunk_bytes(static_cast<uint32_t>(kChunkBytes));
    auto start = Clock::now();
    auto reader = stub_->Download(&ctx, req);
    v2::BulkChunk chunk;
    while (reader->Read(&chunk)) {
    }
    auto status = reader->Finish();
    double ms = Ms(start);
    if (!status.ok()) ThrowStatus(status, "download probe " + address_);
    return ms;
  };
  // Grow the size until one transfer lasts long enough to leave TCP slow start behind; the
  // bandwidth is bytes over (time - one RTT for the request/response exchange). Sizes are capped,
  // so this ends after a bounded number of transfers whatever the link does.
  auto measure = [&](auto&& transfer, int64_t* used) {
    int64_t bytes = 256 * 1024;
    double ms = 0;
    for (int attempt = 0; attempt < 16; ++attempt) {
      ms = transfer(bytes);
      if (ms >= o.min_transfer_ms || bytes >= o.max_transfer_bytes) break;
      bytes *= ms > 1 ? std::min<int64_t>(8, static_cast<int64_t>(o.min_transfer_ms / ms) + 1) : 8;
      bytes = std::min(bytes, o.max_transfer_bytes);
    }
    *used = bytes;
    double seconds = std::max(ms - r.rtt_ms, 1e-3) / 1000.0;
    return static_cast<double>(bytes) * 8.0 / seconds / 1e6;
  };
  r.upload_mbps = measure(upload, &r.upload_bytes);
  r.download_mbps = measure(download, &r.download_bytes);
  return r;
}

double WorkerClient::UploadMs(int64_t bytes, int timeout_ms) {
  grpc::ClientContext ctx;
  PrepareContext(&ctx, options_, timeout_ms);
  v2::BulkReply reply;
  auto start = Clock::now();
  auto writer = stub_->Upload(&ctx, &reply);
  v2::BulkChunk chunk;
  for (int64_t sent = 0; sent < bytes; sent += static_cast<int64_t>(kChunkBytes)) {
    chunk.set_data(std::string(std::min<int64_t>(kChunkBytes, bytes - sent), 'u'));
    if (!writer->Write(chunk)) break;
  }
  writer->WritesDone();
  auto status = writer->Finish();
  double ms = Ms(start);
  if (!status.ok()) ThrowStatus(status, "upload probe " + address_);
  return ms;
}

double WorkerClient::ProbeSegmentMs(const std::string& segment_id, int timeout_ms) {
  grpc::ClientContext ctx;
  PrepareContext(&ctx, options_, timeout_ms);
  auto stream = stub_->Infer(&ctx);
  v2::InferRequest req;
  req.set_segment_id(segment_id);
  req.set_synthetic_inputs(true);
  stream->Write(req);
  stream->WritesDone();
  v2::InferReply reply, rest;
  if (stream->Read(&reply))
    while (stream->Read(&rest)) {
    }
  auto status = stream->Finish();
  if (!status.ok()) ThrowStatus(status, "compute probe on " + address_);
  if (reply.timings_size() < 1) throw Internal("compute probe on {}: no timing", address_);
  return reply.timings(0).compute_ms();
}

bool WorkerClient::EnsureModel(const std::string& sha256, const std::string& path) {
  {
    grpc::ClientContext ctx;
    PrepareContext(&ctx, options_, 15000);
    v2::ModelRef ref;
    ref.set_sha256(sha256);
    v2::HasModelReply reply;
    auto status = stub_->HasModel(&ctx, ref, &reply);
    if (!status.ok()) ThrowStatus(status, "worker " + address_);
    if (reply.present()) return false;
  }
  std::string bytes = ReadFileBytes(path);
  if (Sha256Hex(bytes) != sha256)
    throw BadInput("{}: file changed since it was stored (hash differs)", path);
  grpc::ClientContext ctx;
  PrepareContext(&ctx, options_, 3600000);
  v2::ModelRef reply;
  auto writer = stub_->PutModel(&ctx, &reply);
  for (size_t off = 0; off < bytes.size(); off += kChunkBytes) {
    v2::ModelChunk chunk;
    if (off == 0) {
      chunk.set_sha256(sha256);
      chunk.set_total_bytes(bytes.size());
    }
    chunk.set_data(bytes.substr(off, kChunkBytes));
    if (!writer->Write(chunk)) break;
  }
  writer->WritesDone();
  auto status = writer->Finish();
  if (!status.ok()) ThrowStatus(status, "sending the model to " + address_);
  return true;
}

namespace {
void ToWireSpec(const TensorSpec& spec, v2::TensorSpec* out) {
  out->set_name(spec.name);
  out->set_dtype(static_cast<int32_t>(spec.dtype));
  for (int64_t d : spec.shape) out->add_shape(d);
}
}  // namespace

RemoteBenchmark WorkerClient::Benchmark(const std::string& sha256, int warmup, int repeats,
                                        int threads, const std::function<void(int, int)>& progress,
                                        const std::vector<int>& boundaries,
                                        const std::vector<TensorSpec>& input_shapes,
                                        bool chain_check, const std::string& input_values,
                                        const std::vector<std::string>& codecs) {
  grpc::ClientContext ctx;
  PrepareContext(&ctx, options_, 3600000);
  v2::BenchmarkRequest req;
  req.set_sha256(sha256);
  req.set_warmup(warmup);
  req.set_repeats(repeats);
  req.set_threads(threads);
  req.set_skip_chain_check(!chain_check);
  req.set_input_values(input_values);
  for (const auto& name : codecs) req.add_codecs(name);
  for (int b : boundaries) req.add_boundaries(b);
  for (const auto& spec : input_shapes) ToWireSpec(spec, req.add_input_shapes());
  auto reader = stub_->Benchmark(&ctx, req);
  const std::string what = "benchmark from " + address_;
  RemoteBenchmark result;
  bool have_model = false, have_run = false;
  v2::BenchmarkEvent event;
  try {
    while (reader->Read(&event)) {
      if (have_run) throw BadInput("{}: events after the run's summary", what);
      switch (event.event_case()) {
        case v2::BenchmarkEvent::kModel:
          if (have_model) throw BadInput("{}: the model twice", what);
          result.model = FromWire(event.model(), what);
          have_model = true;
          break;
        case v2::BenchmarkEvent::kBlock:
          if (static_cast<int>(result.blocks.size()) != event.block().index())
            throw BadInput("{}: blocks out of order", what);
          result.blocks.push_back(FromWire(event.block(), what));
          break;
        case v2::BenchmarkEvent::kMeasurement: {
          auto m = FromWire(event.measurement(), what);
          if (m.block_index != static_cast<int>(result.run.measurements.size()) - 1)
            throw BadInput("{}: measurements out of order", what);
          result.run.measurements.push_back(std::move(m));
          if (progress)
            progress(static_cast<int>(result.run.measurements.size()),
                     static_cast<int>(result.blocks.size()) + 1);
          break;
        }
        case v2::BenchmarkEvent::kRun: {
          auto measurements = std::move(result.run.measurements);
          result.run = FromWire(event.run(), what);
          result.run.measurements = std::move(measurements);
          have_run = true;
          break;
        }
        default:
          throw BadInput("{}: unknown event", what);
      }
    }
  } catch (const Error&) {
    ctx.TryCancel();
    reader->Finish();
    throw;
  }
  auto status = reader->Finish();
  if (!status.ok()) ThrowStatus(status, "benchmark on " + address_);
  if (!have_model || !have_run || result.run.measurements.size() != result.blocks.size() + 1 ||
      result.blocks.empty())
    throw BadInput("{}: incomplete ({} blocks, {} measurements)", what, result.blocks.size(),
                   result.run.measurements.size());
  return result;
}

v2::LoadSegmentReply WorkerClient::LoadSegment(const std::string& sha256, int first_block,
                                               int last_block, int threads,
                                               const std::string& next_address,
                                               const std::string& next_segment_id,
                                               const std::vector<int>& boundaries,
                                               const std::vector<TensorSpec>& input_shapes,
                                               const std::string& output_codec) {
  grpc::ClientContext ctx;
  PrepareContext(&ctx, options_, 300000);
  v2::LoadSegmentRequest req;
  if (output_codec != "none") req.set_output_codec(output_codec);
  req.set_sha256(sha256);
  req.set_first_block(first_block);
  req.set_last_block(last_block);
  req.set_threads(threads);
  req.set_next_address(next_address);
  req.set_next_segment_id(next_segment_id);
  for (int b : boundaries) req.add_boundaries(b);
  for (const auto& spec : input_shapes) ToWireSpec(spec, req.add_input_shapes());
  v2::LoadSegmentReply reply;
  auto status = stub_->LoadSegment(&ctx, req, &reply);
  if (!status.ok()) ThrowStatus(status, "loading a segment on " + address_);
  return reply;
}

void WorkerClient::UnloadSegment(const std::string& segment_id) {
  grpc::ClientContext ctx;
  PrepareContext(&ctx, options_, 15000);
  v2::SegmentRef req;
  req.set_segment_id(segment_id);
  v2::Empty reply;
  auto status = stub_->UnloadSegment(&ctx, req, &reply);
  if (!status.ok()) ThrowStatus(status, "unloading a segment on " + address_);
}

InferResult WorkerClient::Infer(const std::string& segment_id, uint64_t request_id,
                                const std::vector<Tensor>& inputs, int timeout_ms,
                                const std::string& codec) {
  grpc::ClientContext ctx;
  PrepareContext(&ctx, options_, timeout_ms);
  return CallInfer(*stub_, &ctx, segment_id, request_id, inputs,
                   {kDefaultMaxTensorBytes * 4, kDefaultMaxTensorBytes * 16}, codec);
}

}  // namespace scission::deploy
