// The worker: "just another device" behind the versioned gRPC protocol. It benchmarks its blocks,
// caches models by content hash, serves segments and forwards activations to the next hop.
#pragma once

#include <atomic>
#include <memory>
#include <string>

namespace grpc {
class Server;
}

namespace scission::deploy {

struct WorkerOptions {
  std::string listen = "0.0.0.0:50051";
  std::string resource;
  std::string tier;
  std::string token;     // required from callers when non-empty; also sent to next hops
  std::string tls_cert;  // PEM; with tls_key enables TLS
  std::string tls_key;
  std::string tls_ca;     // PEM roots for calls to next hops over TLS
  std::string cache_dir;  // default $SCISSION_HOME/worker
  int threads = 0;        // intra-op threads for segments (0 = ONNX Runtime default)
  void Validate() const;
};

class WorkerServer {
 public:
  explicit WorkerServer(const WorkerOptions& options);
  ~WorkerServer();
  // Binds and starts serving; returns the bound port (useful with port 0).
  int Start();
  void Wait();
  void Shutdown();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace scission::deploy
