// Coordinator side of the worker protocol: handshake, link probes, model shipping, remote
// benchmarks, segment set-up and streamed inference. Units: ms, bytes, Mbit/s.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "deploy/wire.h"

namespace scission::deploy {

struct WorkerInfo {
  std::string resource, tier, runtime_version, cpu_model, host;
  int64_t max_tensor_bytes = kDefaultMaxTensorBytes;
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
  void Validate() const;  // BadInput naming --pings / --min-transfer-ms
};

// One remote benchmark, as the store wants it.
struct RemoteBenchmark {
  store::ModelRecord model;
  std::vector<store::BlockRecord> blocks;
  store::RunRecord run;  // measurements included: the whole model (-1) first, then each block
};

struct InferResult {
  grpc::Status status;
  std::vector<Tensor> outputs;
  std::vector<v2::StageTiming> timings;
  double encode_ms = 0;        // the inputs into `codec`, here
  double decode_ms = 0;        // the reply's outputs, here
  std::string codec = "none";  // the codec the reply's outputs came in
};

// One streamed Infer call on `context` (already prepared: metadata, deadline); the inputs travel
// in `codec` ("none": raw). The reply's tensors are checked against `limits` before their bytes
// are read.
InferResult CallInfer(v2::Worker::StubInterface& stub, grpc::ClientContext* context,
                      const std::string& segment_id, uint64_t request_id,
                      const std::vector<Tensor>& inputs, const TensorLimits& limits,
                      const std::string& codec = "none");

class WorkerClient {
 public:
  WorkerClient(const std::string& address, const ConnectOptions& options);
  const std::string& address() const { return address_; }

  // Checks the protocol version; BadInput on mismatch, a missing or wrong token or an unreachable
  // worker.
  WorkerInfo Hello();
  double PingMs(size_t payload_bytes = 0);
  ProbeResult Probe(const ProbeOptions& options);
  // Sends the model file unless the worker already caches it by hash. Returns true if sent.
  bool EnsureModel(const std::string& sha256, const std::string& path);
  // `progress` (may be empty) is told each block as its measurement arrives. `boundaries`
  // (graph::GraphAnalysis::boundaries) and `input_shapes` (static) are this machine's profile;
  // empty: the worker's own cut at the declared shapes. A failed chain check is Internal (exit 1).
  // `input_values`: the inputs' bytes concatenated in `input_shapes` order (BenchmarkRequest).
  // `codecs`: measured at every boundary (BenchmarkRequest.codecs).
  RemoteBenchmark Benchmark(const std::string& sha256, int warmup, int repeats, int threads,
                            const std::function<void(int done, int total)>& progress = {},
                            const std::vector<int>& boundaries = {},
                            const std::vector<TensorSpec>& input_shapes = {},
                            bool chain_check = true, const std::string& input_values = {},
                            const std::vector<std::string>& codecs = {});
  v2::LoadSegmentReply LoadSegment(const std::string& sha256, int first_block, int last_block,
                                   int threads, const std::string& next_address,
                                   const std::string& next_segment_id,
                                   const std::vector<int>& boundaries = {},
                                   const std::vector<TensorSpec>& input_shapes = {},
                                   const std::string& output_codec = "none");
  void UnloadSegment(const std::string& segment_id);
  // A compute probe of a loaded segment (InferRequest.synthetic_inputs): the worker makes the
  // inputs, runs the segment once and forwards nothing. Returns its compute ms; Error on failure.
  double ProbeSegmentMs(const std::string& segment_id, int timeout_ms);
  // Streams `bytes` of filler to the worker and returns the ms until it acknowledged them.
  double UploadMs(int64_t bytes, int timeout_ms = 600000);
  // Returns the gRPC status instead of throwing (the runner counts failures).
  InferResult Infer(const std::string& segment_id, uint64_t request_id,
                    const std::vector<Tensor>& inputs, int timeout_ms,
                    const std::string& codec = "none");

 private:
  std::string address_;
  ConnectOptions options_;
  std::unique_ptr<v2::Worker::Stub> stub_;
};

}  // namespace scission::deploy
