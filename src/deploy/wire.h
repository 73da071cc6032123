// Conversions between Scission tensors/records and the wire protocol, with every size, dtype and
// shape from the wire checked before use (STYLE.md rule 8).
#pragma once

#include <cstdint>
#include <string>

#include <grpcpp/grpcpp.h>
#include <nlohmann/json.hpp>

#include "common/tensor.h"
#include "scission.grpc.pb.h"
#include "store/store.h"

namespace scission::deploy {

inline constexpr uint32_t kProtocolVersion = 1;
inline constexpr const char* kProtocolHeader = "scission-protocol";
inline constexpr int kMaxMessageBytes = 512 * 1024 * 1024;
inline constexpr int64_t kMaxTensorBytes = 256LL * 1024 * 1024;
inline constexpr int kMaxRank = 8;
inline constexpr int kMaxTensors = 64;

// BadInput naming `what` when the tensor is not well-formed.
Tensor FromWire(const v1::Tensor& wire, const std::string& what);
void ToWire(const Tensor& tensor, v1::Tensor* wire);

// Store records <-> JSON (benchmarks computed on a worker travel this way).
nlohmann::json RecordsToJson(const store::ModelRecord& model,
                             const std::vector<store::BlockRecord>& blocks,
                             const store::RunRecord& run);
void RecordsFromJson(const nlohmann::json& doc, store::ModelRecord* model,
                     std::vector<store::BlockRecord>* blocks, store::RunRecord* run);

// Client-side credentials/metadata.
struct ConnectOptions {
  std::string token;   // sent as `authorization: Bearer <token>`
  std::string tls_ca;  // PEM file; non-empty = TLS
  int timeout_ms = 60000;
};
std::shared_ptr<grpc::Channel> MakeChannel(const std::string& address,
                                           const ConnectOptions& options);
void PrepareContext(grpc::ClientContext* context, const ConnectOptions& options,
                    int timeout_ms = -1);

// "host:port" check; BadInput otherwise. Listening also accepts port 0 (any free port).
void CheckAddress(const std::string& address);
void CheckListenAddress(const std::string& address);
// gRPC status -> scission::Error (UNAVAILABLE etc. are BadInput: "worker X unreachable").
[[noreturn]] void ThrowStatus(const grpc::Status& status, const std::string& what);

}  // namespace scission::deploy
