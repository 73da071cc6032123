// Tensors of the Open Inference Protocol (KServe v2) <-> Scission tensors: datatype names, typed
// and raw gRPC contents, JSON tensors of the HTTP API. Every check names the tensor and what is
// wrong, so a bad request gets an answer a client can act on.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <grpcpp/support/status.h>
#include <nlohmann/json.hpp>

#include "common/tensor.h"
#include "inference.pb.h"

namespace scission::serve {

// A request the service refuses: the gRPC code and, for HTTP, the status (400, 404, 413, 503).
struct RequestError {
  grpc::StatusCode code;
  int http_status;
  std::string message;
};
[[noreturn]] void Refuse(grpc::StatusCode code, int http_status, std::string message);

// "FP32", "INT64", ... for the types Scission carries; "" for the rest.
std::string DatatypeName(DType dtype);
// kUndefined for names the protocol does not define or Scission cannot carry (BYTES).
DType DatatypeFromName(const std::string& name);

// One input of a request, decoded to bytes (not yet checked against the model).
struct RequestTensor {
  std::string name, datatype;
  std::vector<int64_t> shape;
  std::vector<uint8_t> data;
};

struct InferRequest {
  std::string id;
  std::vector<RequestTensor> inputs;
  std::vector<std::string> outputs;  // requested output names; empty: all
};

// The gRPC request's inputs: raw_input_contents (one per input, in order) or typed contents.
// `max_bytes` bounds what typed contents may expand to.
InferRequest FromGrpc(const inference::ModelInferRequest& request, int64_t max_bytes);
// The HTTP request body (already parsed): {"id", "inputs": [{"name", "shape", "datatype",
// "data"}], "outputs": [{"name"}]}; data flat or nested in row-major order.
InferRequest FromJson(const nlohmann::json& body, int64_t max_bytes);

// Outputs as raw_output_contents (what Triton's clients read).
void ToGrpc(const std::vector<Tensor>& outputs, inference::ModelInferResponse& response);
// [{"name", "datatype", "shape", "data": [flat]}]; FP16/BF16 as numbers.
nlohmann::json ToJson(const std::vector<Tensor>& outputs);

}  // namespace scission::serve
