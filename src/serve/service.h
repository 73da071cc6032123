// `scission serve`: a deployed plan (deploy::Pipeline) behind the Open Inference Protocol
// (KServe v2) over gRPC and HTTP/JSON, with Prometheus metrics. Requests are checked against the
// model's inputs at the plan's shapes before anything runs; a failing chain is re-planned over
// the workers that still answer, under the plan's own constraints, and the request retried once.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "deploy/pipeline.h"
#include "serve/adapter.h"
#include "serve/tensors.h"

namespace scission::serve {

struct ServeOptions {
  std::string name;            // the model's name in the protocol
  std::string grpc_listen;     // host:port (port 0: any free port)
  std::string http_listen;     // "" = no HTTP API
  std::string metrics_listen;  // "" = no /metrics
  int64_t max_request_bytes = int64_t{32} << 20;
  int timeout_ms = 60000;  // per request, through the whole chain
  bool replan_on_failure = true;
  void Validate() const;
};

class InferenceService {
 public:
  using NoteFn = std::function<void(const std::string&)>;
  // `adapter` (may be null; not owned) is told every answered request and adds its metrics.
  InferenceService(ServeOptions options, deploy::Pipeline& pipeline, NoteFn note,
                   Adapter* adapter = nullptr);
  ~InferenceService();

  // Binds every listener; BadInput naming the address that cannot be bound.
  void Start();
  int grpc_port() const;
  int http_port() const;
  int metrics_port() const;
  void Shutdown();
  void Wait();

  // The protocol-independent core: checks `request` against the model and runs it. Throws
  // RequestError. `protocol` labels the metrics ("grpc" or "http").
  std::vector<Tensor> Infer(const InferRequest& request, const std::string& protocol);
  // Counts a refused request (a RequestError raised before Infer).
  void CountError(const std::string& protocol, grpc::StatusCode code);
  std::string MetricsText() const;
  const ServeOptions& options() const { return o_; }

 private:
  struct Impl;
  ServeOptions o_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace scission::serve
