// Coordinator side of the worker protocol: handshake, link probes, model shipping, remote
// benchmarks and segment set-up. Units: ms, bytes, Mbit/s.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "deploy/wire.h"

namespace scission::deploy {

struct WorkerInfo {
  std::string resource, tier, runtime_version, cpu_model, host;
};

struct ProbeResult {
  double rtt_ms = 0;  // median of the pings
  double rtt_p90_ms = 0;
  double upload_mbps = 0;    // caller -> worker
  double download_mbps = 0;  // worker -> caller
  int64_t upload_bytes = 0, download_bytes = 0;
};

struct ProbeOptions {
  int pings = 20;
  double min_transfer_ms = 400;  // grow the bulk size until a transfer lasts this long
  int64_t max_transfer_bytes = 64 << 20;
};

class WorkerClient {
 public:
  WorkerClient(const std::string& address, const ConnectOptions& options);
  const std::string& address() const { return address_; }

  // Checks the protocol version; BadInput on mismatch, bad token or an unreachable worker.
  WorkerInfo Hello();
  double PingMs(size_t payload_bytes = 0);
  ProbeResult Probe(const ProbeOptions& options);
  // Sends the model file unless the worker already caches it by hash. Returns true if sent.
  bool EnsureModel(const std::string& sha256, const std::string& path);
  std::string Benchmark(const std::string& sha256, int warmup, int repeats, int threads);
  v1::LoadSegmentReply LoadSegment(const std::string& sha256, int first_block, int last_block,
                                   int threads, const std::string& next_address,
                                   const std::string& next_segment_id);
  // Raw call for the runner: returns the gRPC status instead of throwing.
  grpc::Status Infer(const v1::InferRequest& request, v1::InferReply* reply, int timeout_ms);

 private:
  std::string address_;
  ConnectOptions options_;
  std::unique_ptr<v1::Worker::Stub> stub_;
};

}  // namespace scission::deploy
