// The worker: "just another device" behind the versioned gRPC protocol (proto/scission.proto). It
// benchmarks its blocks, caches models by content hash, serves segments and forwards activations
// to the next hop. It is meant to listen on real networks, so everything a caller can make it do
// is bounded (message sizes, uploads, models, segments, threads, benchmark time) and checked
// before use; callers without the token get nothing but the protocol version; the token is only
// ever sent to peers the operator allowed or that prove they hold it; errors name no local paths.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "deploy/model_cache.h"
#include "deploy/segment_manager.h"

namespace scission::deploy {

struct WorkerOptions {
  std::string listen = "0.0.0.0:50051";
  std::string resource;
  std::string tier;
  std::string token;     // required from callers when non-empty; also sent to next hops
  std::string tls_cert;  // PEM; with tls_key enables TLS (and TLS towards next hops)
  std::string tls_key;
  std::string tls_ca;  // PEM roots for next hops over TLS (empty: the system's roots)
  // host:port this worker may forward to. Empty: any worker that answers the Hello handshake and,
  // when this worker has a token, proves it holds the same token.
  std::vector<std::string> peers;
  std::string cache_dir;  // default $SCISSION_HOME/worker
  int threads = 0;        // default intra-op threads per segment (0 = ONNX Runtime's default)

  // Bounds on what callers can make the worker do.
  int max_threads_per_segment = 0;  // 0 = this machine's hardware threads
  SegmentLimits segments;
  ModelCacheLimits models;
  int64_t max_tensor_bytes = 256LL << 20;  // largest tensor Infer accepts or returns
  int max_uploads = 2;                     // PutModel calls at once
  int max_bulk_transfers = 2;              // probe Upload/Download calls at once
  int64_t max_bulk_bytes = 1LL << 30;      // per probe transfer
  double max_benchmark_s = 900;            // a Benchmark call is stopped after this long
  int max_warmup = 1000, max_repeats = 10000;
  double max_request_s = 600;  // Infer/LoadSegment calls without a shorter deadline stop here
  int max_rpc_threads = 64;    // gRPC handler threads; beyond, calls get RESOURCE_EXHAUSTED
  // Bytes gRPC may buffer for all connections together (read buffers, messages being received);
  // past it gRPC resets streams (RESOURCE_EXHAUSTED), honest ones included. Honest traffic holds
  // a few flow-control windows per stream: 4 concurrent 32 MiB tensors over loopback reached
  // 128 MiB, so keep it well above that.
  int64_t max_transport_bytes = 256LL << 20;
  std::function<void(const std::string&)> log;  // internal faults (stderr in the CLI)

  // Fills defaults that depend on the machine, then checks every field (BadInput naming it).
  void Validate();
};

class WorkerServer {
 public:
  explicit WorkerServer(WorkerOptions options);
  ~WorkerServer();
  // Binds and starts serving; returns the bound port (useful with port 0). BadInput when the
  // address is in use (no port sharing: a second worker on a port fails) or TLS files are bad.
  int Start();
  void Wait();
  void Shutdown();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace scission::deploy
