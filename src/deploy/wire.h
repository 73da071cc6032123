// The worker protocol's limits and the conversions between Scission tensors/records and protocol
// messages. Everything that comes off the wire is checked here (dtype, rank, dimensions, byte
// counts, finite numbers) before anything else sees it (STYLE.md rule 8).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <google/protobuf/repeated_field.h>
#include <grpcpp/grpcpp.h>

#include "codec/codec.h"
#include "common/error.h"
#include "common/tensor.h"
#include "scission.grpc.pb.h"
#include "store/store.h"

namespace scission::deploy {

namespace v2 = ::scission::v2;

// 3: tensors may travel in a codec (TensorHeader.codec, LoadSegmentRequest.output_codec).
inline constexpr uint32_t kProtocolVersion = 3;
inline constexpr const char* kProtocolHeader = "scission-protocol";
// Hello's peer challenge as metadata (binary): how a stranger's challenge reaches a worker with a
// token, which never reads a stranger's message body.
inline constexpr const char* kChallengeHeader = "scission-challenge-bin";
// No single message may be larger: gRPC buffers a unary body before any handler (and so before
// the token check) runs, so this bounds what an unauthenticated caller can make a worker hold.
inline constexpr int kMaxMessageBytes = 1 << 20;
// Bulk data (tensors, models, probes) travels in slices of at most this many bytes.
inline constexpr size_t kChunkBytes = 256 * 1024;
inline constexpr int64_t kDefaultMaxTensorBytes = 256LL << 20;
inline constexpr int kMaxRank = 8;
inline constexpr int kMaxTensors = 64;
inline constexpr size_t kMaxNameBytes = 4096;

// Limits a receiver applies to the headers of a tensor stream.
struct TensorLimits {
  int64_t max_tensor_bytes = kDefaultMaxTensorBytes;
  int64_t max_total_bytes = kDefaultMaxTensorBytes;
};

// Checks tensor headers from the wire (count, names, dtypes, ranks, dimensions, overflow, declared
// byte counts, codecs and their payload sizes) and returns their specs. BadInput naming `what`
// otherwise.
std::vector<TensorSpec> CheckHeaders(
    const google::protobuf::RepeatedPtrField<v2::TensorHeader>& headers, const std::string& what,
    const TensorLimits& limits);
// A raw tensor's header (no codec).
void FillHeader(const Tensor& tensor, v2::TensorHeader* header);
// How each tensor's bytes travel: its codec (nullptr: raw) and payload size. Headers CheckHeaders
// accepted.
struct TensorEncoding {
  const codec::Codec* codec = nullptr;
  size_t payload_bytes = 0;
};
std::vector<TensorEncoding> Encodings(
    const google::protobuf::RepeatedPtrField<v2::TensorHeader>& headers);
// The most payload bytes a tensor of `data_bytes` decoded bytes may take in any codec (what a
// lossless codec adds to incompressible data, with room to spare).
int64_t MaxPayloadBytes(int64_t data_bytes);

// Collects the concatenated payloads of a stream and decodes them into tensors of the given specs.
// Feed it the `data` field of every message, first one included; Complete() says whether all
// bytes are there.
class TensorAssembler {
 public:
  TensorAssembler(std::vector<TensorSpec> specs, std::vector<TensorEncoding> encodings,
                  std::string what);
  void Add(const std::string& data);  // BadInput when more bytes arrive than the headers declare
  bool Complete() const { return tensor_ < 0 || static_cast<size_t>(tensor_) >= payloads_.size(); }
  // Decodes (codec::Codec::Decode: never beyond the spec's size). BadInput when bytes are missing
  // or a payload does not decode to its tensor.
  std::vector<Tensor> Take();
  double decode_ms() const { return decode_ms_; }  // spent in Take()

 private:
  void SkipEmpty();
  std::vector<TensorSpec> specs_;
  std::vector<TensorEncoding> encodings_;
  std::vector<std::vector<uint8_t>> payloads_;
  std::string what_;
  int64_t tensor_ = 0;  // the tensor being filled
  size_t offset_ = 0;   // bytes of it filled so far
  double decode_ms_ = 0;
};

// Reads a whole tensor stream whose first message (already read) is `first`, decoding what
// arrives in a codec. Message is InferRequest or InferReply; Stream has Read(Message*).
// `decode_ms` (may be null) receives the decoding time.
template <typename Message, typename Stream>
std::vector<Tensor> ReadTensorStream(Stream* stream, const Message& first,
                                     const std::vector<TensorSpec>& specs, const std::string& what,
                                     double* decode_ms = nullptr) {
  TensorAssembler assembler(specs, Encodings(first.tensors()), what);
  assembler.Add(first.data());
  Message next;
  while (!assembler.Complete() && stream->Read(&next)) assembler.Add(next.data());
  auto tensors = assembler.Take();
  if (decode_ms) *decode_ms = assembler.decode_ms();
  return tensors;
}

// The tensors' payloads in `codec` ("none" or empty: their bytes as they are), with their
// headers filled into `message`. `encode_ms` (may be null) receives the encoding time.
struct EncodedTensors {
  std::vector<std::vector<uint8_t>> payloads;  // empty when raw: the tensors' own bytes go
};
EncodedTensors EncodeTensors(const std::vector<Tensor>& tensors, const std::string& codec,
                             google::protobuf::RepeatedPtrField<v2::TensorHeader>* headers,
                             double* encode_ms);

// Writes `first` (its non-tensor fields filled by the caller) with the tensors' headers, then
// their bytes (in `codec`) in slices of kChunkBytes, the first slice inside `first`. False when
// the stream broke (the caller's Finish() says why).
template <typename Message, typename Stream>
bool WriteTensorStream(Stream* stream, Message first, const std::vector<Tensor>& tensors,
                       const std::string& codec = "none", double* encode_ms = nullptr) {
  EncodedTensors encoded = EncodeTensors(tensors, codec, first.mutable_tensors(), encode_ms);
  auto bytes_of = [&](size_t i) -> const std::vector<uint8_t>& {
    return encoded.payloads.empty() ? tensors[i].data : encoded.payloads[i];
  };
  size_t tensor = 0, offset = 0;
  auto fill = [&](Message* message) {
    std::string* data = message->mutable_data();
    while (tensor < tensors.size() && data->size() < kChunkBytes) {
      const auto& bytes = bytes_of(tensor);
      size_t take = std::min(kChunkBytes - data->size(), bytes.size() - offset);
      data->append(reinterpret_cast<const char*>(bytes.data()) + offset, take);
      offset += take;
      if (offset == bytes.size()) {
        ++tensor;
        offset = 0;
      }
    }
  };
  fill(&first);
  if (!stream->Write(first)) return false;
  while (tensor < tensors.size()) {
    Message next;
    fill(&next);
    if (!stream->Write(next)) return false;
  }
  return true;
}

// Store records <-> protocol messages (benchmarks computed on a worker travel this way). The
// reading side checks every number (finite, non-negative where it must be) and string.
void ToWire(const store::ModelRecord& model, v2::ModelRecord* wire);
void ToWire(const store::BlockRecord& block, v2::BlockRecord* wire);
void ToWire(const store::MeasurementRecord& measurement, v2::MeasurementRecord* wire);
void ToWire(const store::RunRecord& run, v2::RunRecord* wire);
store::ModelRecord FromWire(const v2::ModelRecord& wire, const std::string& what);
store::BlockRecord FromWire(const v2::BlockRecord& wire, const std::string& what);
store::MeasurementRecord FromWire(const v2::MeasurementRecord& wire, const std::string& what);
store::RunRecord FromWire(const v2::RunRecord& wire, const std::string& what);

// Client-side credentials/metadata.
struct ConnectOptions {
  std::string token;   // sent as `authorization: Bearer <token>`
  std::string tls_ca;  // PEM file; non-empty = TLS
  bool tls = false;    // TLS with the system's roots when tls_ca is empty
  int timeout_ms = 60000;
  bool secure() const { return tls || !tls_ca.empty(); }
};
std::shared_ptr<grpc::Channel> MakeChannel(const std::string& address,
                                           const ConnectOptions& options);
void PrepareContext(grpc::ClientContext* context, const ConnectOptions& options,
                    int timeout_ms = -1);
// The token from --token-file, else $SCISSION_TOKEN, else `flag` (empty: none). A token given on
// the command line is visible to every user of the machine (/proc/PID/cmdline).
std::string ResolveToken(const std::string& flag, const std::string& file);
// HMAC-SHA256 of the Hello challenge under the token (see HelloRequest.challenge).
std::string PeerProof(const std::string& token, const std::string& challenge);

// "host:port" check; BadInput otherwise. Listening also accepts port 0 (any free port).
void CheckAddress(const std::string& address);
void CheckListenAddress(const std::string& address);
// gRPC status -> scission::Error (UNAVAILABLE etc. are BadInput: "worker X unreachable").
[[noreturn]] void ThrowStatus(const grpc::Status& status, const std::string& what);

}  // namespace scission::deploy
