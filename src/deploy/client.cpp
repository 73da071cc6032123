#include "deploy/client.h"

#include <chrono>

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

WorkerClient::WorkerClient(const std::string& address, const ConnectOptions& options)
    : address_(address),
      options_(options),
      stub_(v1::Worker::NewStub(MakeChannel(address, options))) {}

WorkerInfo WorkerClient::Hello() {
  grpc::ClientContext ctx;
  PrepareContext(&ctx, options_, std::min(options_.timeout_ms, 15000));
  v1::HelloRequest req;
  req.set_protocol_version(kProtocolVersion);
  req.set_client("scission");
  v1::HelloReply reply;
  auto status = stub_->Hello(&ctx, req, &reply);
  if (!status.ok()) ThrowStatus(status, "worker " + address_);
  return {reply.resource(), reply.tier(), reply.runtime_version(), reply.cpu_model(), reply.host()};
}

double WorkerClient::PingMs(size_t payload_bytes) {
  grpc::ClientContext ctx;
  PrepareContext(&ctx, options_, 15000);
  v1::PingRequest req;
  req.set_payload(std::string(payload_bytes, 'p'));
  v1::PingReply reply;
  auto start = Clock::now();
  auto status = stub_->Ping(&ctx, req, &reply);
  double ms = Ms(start);
  if (!status.ok()) ThrowStatus(status, "ping " + address_);
  return ms;
}

ProbeResult WorkerClient::Probe(const ProbeOptions& o) {
  ProbeResult r;
  PingMs();  // connection set-up is not part of the RTT
  std::vector<double> pings;
  for (int i = 0; i < std::max(o.pings, 1); ++i) pings.push_back(PingMs());
  r.rtt_ms = profile::Median(pings);
  r.rtt_p90_ms = profile::Percentile(pings, 0.9);

  auto upload = [&](int64_t bytes) {
    grpc::ClientContext ctx;
    PrepareContext(&ctx, options_, 600000);
    v1::BulkReply reply;
    auto start = Clock::now();
    auto writer = stub_->Upload(&ctx, &reply);
    constexpr size_t kChunk = 256 * 1024;
    v1::BulkChunk chunk;
    chunk.set_data(std::string(kChunk, 'u'));
    for (int64_t sent = 0; sent < bytes; sent += static_cast<int64_t>(kChunk))
      if (!writer->Write(chunk)) break;
    writer->WritesDone();
    auto status = writer->Finish();
    double ms = Ms(start);
    if (!status.ok()) ThrowStatus(status, "upload probe " + address_);
    return ms;
  };
  auto download = [&](int64_t bytes) {
    grpc::ClientContext ctx;
    PrepareContext(&ctx, options_, 600000);
    v1::BulkRequest req;
    req.set_bytes(static_cast<uint64_t>(bytes));
    req.set_chunk_bytes(256 * 1024);
    auto start = Clock::now();
    auto reader = stub_->Download(&ctx, req);
    v1::BulkChunk chunk;
    while (reader->Read(&chunk)) {
    }
    auto status = reader->Finish();
    double ms = Ms(start);
    if (!status.ok()) ThrowStatus(status, "download probe " + address_);
    return ms;
  };
  // Double the size until one transfer lasts long enough to leave TCP slow start behind; the
  // bandwidth is bytes over (time - one RTT for the request/response exchange).
  auto measure = [&](auto&& transfer, int64_t* used) {
    int64_t bytes = 256 * 1024;
    double ms = 0;
    while (true) {
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

bool WorkerClient::EnsureModel(const std::string& sha256, const std::string& path) {
  {
    grpc::ClientContext ctx;
    PrepareContext(&ctx, options_, 15000);
    v1::ModelRef ref;
    ref.set_sha256(sha256);
    v1::HasModelReply reply;
    auto status = stub_->HasModel(&ctx, ref, &reply);
    if (!status.ok()) ThrowStatus(status, "worker " + address_);
    if (reply.present()) return false;
  }
  std::string bytes = ReadFileBytes(path);
  if (Sha256Hex(bytes) != sha256)
    throw BadInput("{}: file changed since it was stored (hash differs)", path);
  grpc::ClientContext ctx;
  PrepareContext(&ctx, options_, 3600000);
  v1::ModelRef reply;
  auto writer = stub_->PutModel(&ctx, &reply);
  constexpr size_t kChunk = 1 << 20;
  for (size_t off = 0; off < bytes.size(); off += kChunk) {
    v1::ModelChunk chunk;
    if (off == 0) {
      chunk.set_sha256(sha256);
      chunk.set_total_bytes(bytes.size());
    }
    chunk.set_data(bytes.substr(off, kChunk));
    if (!writer->Write(chunk)) break;
  }
  writer->WritesDone();
  auto status = writer->Finish();
  if (!status.ok()) ThrowStatus(status, "sending the model to " + address_);
  return true;
}

std::string WorkerClient::Benchmark(const std::string& sha256, int warmup, int repeats,
                                    int threads) {
  grpc::ClientContext ctx;
  PrepareContext(&ctx, options_, 3600000);
  v1::BenchmarkRequest req;
  req.set_sha256(sha256);
  req.set_warmup(warmup);
  req.set_repeats(repeats);
  req.set_threads(threads);
  v1::BenchmarkReply reply;
  auto status = stub_->Benchmark(&ctx, req, &reply);
  if (!status.ok()) ThrowStatus(status, "benchmark on " + address_);
  return reply.records_json();
}

v1::LoadSegmentReply WorkerClient::LoadSegment(const std::string& sha256, int first_block,
                                               int last_block, int threads,
                                               const std::string& next_address,
                                               const std::string& next_segment_id) {
  grpc::ClientContext ctx;
  PrepareContext(&ctx, options_, 300000);
  v1::LoadSegmentRequest req;
  req.set_sha256(sha256);
  req.set_first_block(first_block);
  req.set_last_block(last_block);
  req.set_threads(threads);
  req.set_next_address(next_address);
  req.set_next_segment_id(next_segment_id);
  v1::LoadSegmentReply reply;
  auto status = stub_->LoadSegment(&ctx, req, &reply);
  if (!status.ok()) ThrowStatus(status, "loading a segment on " + address_);
  return reply;
}

grpc::Status WorkerClient::Infer(const v1::InferRequest& request, v1::InferReply* reply,
                                 int timeout_ms) {
  grpc::ClientContext ctx;
  PrepareContext(&ctx, options_, timeout_ms);
  return stub_->Infer(&ctx, request, reply);
}

}  // namespace scission::deploy
