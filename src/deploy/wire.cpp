#include "deploy/wire.h"

#include <openssl/hmac.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>

#include "common/files.h"
#include "common/text.h"
#include "store/validate.h"

namespace scission::deploy {

namespace {

bool KnownDType(int32_t dtype) { return dtype > 0 && DTypeSize(static_cast<DType>(dtype)) > 0; }

// Printable, bounded names only: they end up in error messages, logs and the store.
void CheckName(const std::string& name, const std::string& what) {
  if (name.empty() || name.size() > kMaxNameBytes)
    throw BadInput("{}: a tensor name is empty or longer than {} bytes", what, kMaxNameBytes);
  for (unsigned char c : name)
    if (c < 0x20 || c == 0x7f) throw BadInput("{}: a tensor name holds a control character", what);
}

}  // namespace

std::vector<TensorSpec> CheckHeaders(
    const google::protobuf::RepeatedPtrField<v2::TensorHeader>& headers, const std::string& what,
    const TensorLimits& limits) {
  if (headers.size() > kMaxTensors)
    throw BadInput("{}: {} tensors (at most {})", what, headers.size(), kMaxTensors);
  std::vector<TensorSpec> specs;
  int64_t total = 0;
  for (const auto& h : headers) {
    CheckName(h.name(), what);
    for (const auto& earlier : specs)
      if (earlier.name == h.name()) throw BadInput("{}: tensor '{}' sent twice", what, h.name());
    if (!KnownDType(h.dtype()))
      throw BadInput("{}: tensor '{}' has unsupported dtype {}", what, h.name(), h.dtype());
    if (h.shape_size() > kMaxRank)
      throw BadInput("{}: tensor '{}' has rank {} (max {})", what, h.name(), h.shape_size(),
                     kMaxRank);
    TensorSpec spec;
    spec.name = h.name();
    spec.dtype = static_cast<DType>(h.dtype());
    const int64_t elem = static_cast<int64_t>(DTypeSize(spec.dtype));
    int64_t count = 1;
    for (int64_t d : h.shape()) {
      if (d < 0) throw BadInput("{}: tensor '{}' has a negative dimension", what, h.name());
      if (d > 0 && count > limits.max_tensor_bytes / elem / d)
        throw BadInput("{}: tensor '{}' of shape {} exceeds {} bytes", what, h.name(),
                       ShapeString({h.shape().begin(), h.shape().end()}), limits.max_tensor_bytes);
      count *= d;
      spec.shape.push_back(d);
    }
    const int64_t bytes = count * elem;
    if (h.data_bytes() != static_cast<uint64_t>(bytes))
      throw BadInput("{}: tensor '{}' declares {} bytes but its shape needs {}", what, h.name(),
                     h.data_bytes(), bytes);
    const bool raw = h.codec().empty() || h.codec() == "none";
    if (!raw && !codec::Find(h.codec()))
      throw BadInput("{}: tensor '{}' is in codec '{}', which this Scission does not know", what,
                     h.name(), store::PrintableText(h.codec().substr(0, 64)));
    if (raw ? h.payload_bytes() != static_cast<uint64_t>(bytes)
            : h.payload_bytes() > static_cast<uint64_t>(MaxPayloadBytes(bytes)))
      throw BadInput("{}: tensor '{}' of {} bytes announces a {}-byte payload in codec {}", what,
                     h.name(), bytes, h.payload_bytes(), raw ? "none" : h.codec());
    total += bytes;
    if (total > limits.max_total_bytes)
      throw BadInput("{}: tensors exceed {} bytes in all", what, limits.max_total_bytes);
    specs.push_back(std::move(spec));
  }
  return specs;
}

int64_t MaxPayloadBytes(int64_t data_bytes) { return data_bytes + data_bytes / 64 + 4096; }

std::vector<TensorEncoding> Encodings(
    const google::protobuf::RepeatedPtrField<v2::TensorHeader>& headers) {
  std::vector<TensorEncoding> out;
  for (const auto& h : headers) {
    const bool raw = h.codec().empty() || h.codec() == "none";
    out.push_back({raw ? nullptr : codec::Find(h.codec()), static_cast<size_t>(h.payload_bytes())});
  }
  return out;
}

void FillHeader(const Tensor& tensor, v2::TensorHeader* header) {
  header->set_name(tensor.spec.name);
  header->set_dtype(static_cast<int32_t>(tensor.spec.dtype));
  for (int64_t d : tensor.spec.shape) header->add_shape(d);
  header->set_data_bytes(tensor.data.size());
  header->set_payload_bytes(tensor.data.size());
}

EncodedTensors EncodeTensors(const std::vector<Tensor>& tensors, const std::string& codec_name,
                             google::protobuf::RepeatedPtrField<v2::TensorHeader>* headers,
                             double* encode_ms) {
  EncodedTensors out;
  const auto start = std::chrono::steady_clock::now();
  const bool raw = codec_name.empty() || codec_name == "none";
  const codec::Codec* c = raw ? nullptr : &codec::Get(codec_name, "hop codec");
  for (const auto& t : tensors) {
    auto* header = headers->Add();
    FillHeader(t, header);
    if (!c) continue;
    out.payloads.push_back(c->Encode(t));
    header->set_codec(c->name());
    header->set_payload_bytes(out.payloads.back().size());
  }
  // Raw tensors cost no codec work (what is left is the transfer's).
  if (encode_ms)
    *encode_ms =
        raw ? 0.0
            : std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
                  .count();
  return out;
}

TensorAssembler::TensorAssembler(std::vector<TensorSpec> specs,
                                 std::vector<TensorEncoding> encodings, std::string what)
    : specs_(std::move(specs)), encodings_(std::move(encodings)), what_(std::move(what)) {
  if (encodings_.size() != specs_.size())
    throw BadInput("{}: {} tensor headers for {} tensors", what_, encodings_.size(), specs_.size());
  // Sizes were checked by CheckHeaders against the receiver's limits, but memory is taken only
  // as bytes arrive: a caller that declares a large tensor and sends little costs little.
  payloads_.resize(specs_.size());
  SkipEmpty();
}

void TensorAssembler::SkipEmpty() {
  while (!Complete() && offset_ == encodings_[static_cast<size_t>(tensor_)].payload_bytes) {
    ++tensor_;
    offset_ = 0;
  }
}

void TensorAssembler::Add(const std::string& data) {
  size_t used = 0;
  while (used < data.size()) {
    if (Complete())
      throw BadInput("{}: {} bytes beyond what the tensor headers declare", what_,
                     data.size() - used);
    const size_t expected = encodings_[static_cast<size_t>(tensor_)].payload_bytes;
    auto& target = payloads_[static_cast<size_t>(tensor_)];
    size_t take = std::min(data.size() - used, expected - offset_);
    // Grows geometrically (at most twice what arrived), exactly at the last slice.
    if (offset_ + take == expected)
      target.reserve(expected);
    else if (target.capacity() < offset_ + take)
      target.reserve(std::min(expected, std::max(2 * target.capacity(), offset_ + take)));
    const auto* from = reinterpret_cast<const uint8_t*>(data.data()) + used;
    target.insert(target.end(), from, from + take);
    offset_ += take;
    used += take;
    SkipEmpty();
  }
}

std::vector<Tensor> TensorAssembler::Take() {
  if (!Complete())
    throw BadInput("{}: stream ended inside tensor '{}' ({} of {} bytes)", what_,
                   specs_[static_cast<size_t>(tensor_)].name, offset_,
                   encodings_[static_cast<size_t>(tensor_)].payload_bytes);
  const auto start = std::chrono::steady_clock::now();
  std::vector<Tensor> tensors;
  tensors.reserve(specs_.size());
  bool decoded = false;
  for (size_t i = 0; i < specs_.size(); ++i) {
    if (!encodings_[i].codec) {
      tensors.push_back({std::move(specs_[i]), std::move(payloads_[i])});
      continue;
    }
    decoded = true;
    std::vector<uint8_t> payload = std::move(payloads_[i]);
    tensors.push_back(encodings_[i].codec->Decode(specs_[i], payload.data(), payload.size(),
                                                  what_ + ": tensor '" + specs_[i].name + "'"));
  }
  decode_ms_ =
      decoded ? std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
                    .count()
              : 0.0;
  return tensors;
}

// ---- Records ------------------------------------------------------------------------------------

namespace {

double Finite(double value, const std::string& what, const char* field) {
  if (!std::isfinite(value) || value < 0)
    throw BadInput("{}: {} is not a finite non-negative number", what, field);
  return value;
}

int64_t NonNegative(int64_t value, const std::string& what, const char* field) {
  if (value < 0) throw BadInput("{}: {} is negative", what, field);
  return value;
}

}  // namespace

void ToWire(const store::ModelRecord& m, v2::ModelRecord* w) {
  w->set_key(m.key);
  w->set_name(m.name);
  w->set_origin(m.origin);
  w->set_file_bytes(m.file_bytes);
  w->set_input_bytes(m.input_bytes);
}

void ToWire(const store::BlockRecord& b, v2::BlockRecord* w) {
  w->set_index(b.index);
  w->set_nodes(b.nodes);
  w->set_first_node(b.first_node);
  w->set_last_node(b.last_node);
  w->set_ops(b.ops);
  w->set_output_name(b.output_name);
  w->set_output_shape(b.output_shape);
  w->set_output_dtype(b.output_dtype);
  w->set_output_bytes(b.output_bytes);
  w->set_first_layer(b.first_layer);
  w->set_last_layer(b.last_layer);
}

void ToWire(const store::MeasurementRecord& m, v2::MeasurementRecord* w) {
  w->set_block_index(m.block_index);
  w->set_setup_ms(m.setup_ms);
  w->set_first_run_ms(m.first_run_ms);
  w->set_n(m.n);
  w->set_median_ms(m.median_ms);
  w->set_mean_ms(m.mean_ms);
  w->set_p90_ms(m.p90_ms);
  w->set_p95_ms(m.p95_ms);
  w->set_stddev_ms(m.stddev_ms);
  w->set_min_ms(m.min_ms);
  w->set_max_ms(m.max_ms);
  w->set_output_bytes(m.output_bytes);
  for (double s : m.samples_ms) w->add_samples_ms(s);
}

void ToWire(const store::RunRecord& r, v2::RunRecord* w) {
  w->set_kind(r.kind);
  w->set_started_at(r.started_at);
  w->set_backend(r.backend);
  w->set_runtime_version(r.runtime_version);
  w->set_execution_provider(r.execution_provider);
  w->set_cpu_model(r.cpu_model);
  w->set_host(r.host);
  w->set_build_type(r.build_type);
  w->set_threads(r.threads);
  w->set_warmup(r.warmup);
  w->set_repeats(r.repeats);
  w->set_wall_ms(r.wall_ms);
  w->set_setup_ms(r.setup_ms);
  w->set_chain_check(r.chain_check);
  w->set_chain_max_abs_diff(r.chain_max_abs_diff);
  w->set_chain_tolerance(r.chain_tolerance);
  w->set_input_shapes(r.input_shapes);
  w->set_partition(r.partition);
  for (const auto& c : r.codecs) {
    auto* x = w->add_codecs();
    x->set_boundary(c.boundary);
    x->set_codec(c.codec);
    x->set_raw_bytes(c.raw_bytes);
    x->set_bytes(c.bytes);
    x->set_encode_ms(c.encode_ms);
    x->set_decode_ms(c.decode_ms);
    x->set_max_abs_error(c.max_abs_error);
    x->set_rel_l2_error(c.rel_l2_error);
    x->set_top1_agreement(c.top1_agreement);
    x->set_fidelity_inputs(c.fidelity_inputs);
  }
}

store::ModelRecord FromWire(const v2::ModelRecord& w, const std::string& what) {
  store::ModelRecord m;
  m.key = w.key();
  m.name = w.name();
  m.origin = w.origin();
  m.file_bytes = NonNegative(w.file_bytes(), what, "file_bytes");
  m.input_bytes = NonNegative(w.input_bytes(), what, "input_bytes");
  return m;
}

store::BlockRecord FromWire(const v2::BlockRecord& w, const std::string& what) {
  store::BlockRecord b;
  b.index = static_cast<int>(NonNegative(w.index(), what, "block index"));
  b.nodes = static_cast<int>(NonNegative(w.nodes(), what, "node count"));
  b.first_node = w.first_node();
  b.last_node = w.last_node();
  b.ops = w.ops();
  b.output_name = w.output_name();
  b.output_shape = w.output_shape();
  b.output_dtype = w.output_dtype();
  b.output_bytes = w.output_bytes();  // -1 = unknown
  if (b.output_bytes < -1) throw BadInput("{}: block output bytes are negative", what);
  b.first_layer = w.first_layer();
  b.last_layer = w.last_layer();
  return b;
}

store::MeasurementRecord FromWire(const v2::MeasurementRecord& w, const std::string& what) {
  store::MeasurementRecord m;
  if (w.block_index() < -1) throw BadInput("{}: block index {} is invalid", what, w.block_index());
  m.block_index = w.block_index();
  m.setup_ms = Finite(w.setup_ms(), what, "setup_ms");
  m.first_run_ms = Finite(w.first_run_ms(), what, "first_run_ms");
  m.n = NonNegative(w.n(), what, "n");
  m.median_ms = Finite(w.median_ms(), what, "median_ms");
  m.mean_ms = Finite(w.mean_ms(), what, "mean_ms");
  m.p90_ms = Finite(w.p90_ms(), what, "p90_ms");
  m.p95_ms = Finite(w.p95_ms(), what, "p95_ms");
  m.stddev_ms = Finite(w.stddev_ms(), what, "stddev_ms");
  m.min_ms = Finite(w.min_ms(), what, "min_ms");
  m.max_ms = Finite(w.max_ms(), what, "max_ms");
  m.output_bytes = NonNegative(w.output_bytes(), what, "output_bytes");
  for (double s : w.samples_ms()) m.samples_ms.push_back(Finite(s, what, "a sample"));
  if (static_cast<int64_t>(m.samples_ms.size()) != m.n)
    throw BadInput("{}: {} samples for n = {}", what, m.samples_ms.size(), m.n);
  return m;
}

store::RunRecord FromWire(const v2::RunRecord& w, const std::string& what) {
  store::RunRecord r;
  r.kind = w.kind();
  r.started_at = w.started_at();
  r.backend = w.backend();
  r.runtime_version = w.runtime_version();
  r.execution_provider = w.execution_provider();
  r.cpu_model = w.cpu_model();
  r.host = w.host();
  r.build_type = w.build_type();
  r.threads = static_cast<int>(NonNegative(w.threads(), what, "threads"));
  r.warmup = static_cast<int>(NonNegative(w.warmup(), what, "warmup"));
  r.repeats = static_cast<int>(NonNegative(w.repeats(), what, "repeats"));
  r.wall_ms = Finite(w.wall_ms(), what, "wall_ms");
  r.setup_ms = Finite(w.setup_ms(), what, "setup_ms");
  r.chain_check = w.chain_check();  // store::ValidateRun checks the word
  r.chain_max_abs_diff = Finite(w.chain_max_abs_diff(), what, "chain_max_abs_diff");
  r.chain_tolerance = Finite(w.chain_tolerance(), what, "chain_tolerance");
  r.input_shapes = w.input_shapes();
  r.partition = w.partition();
  // store::ValidateRun checks ranges, names and duplicates; here only what it cannot see.
  for (const auto& x : w.codecs())
    r.codecs.push_back({.boundary = x.boundary(),
                        .codec = x.codec(),
                        .raw_bytes = x.raw_bytes(),
                        .bytes = x.bytes(),
                        .encode_ms = Finite(x.encode_ms(), what, "codec encode_ms"),
                        .decode_ms = Finite(x.decode_ms(), what, "codec decode_ms"),
                        .max_abs_error = x.max_abs_error(),
                        .rel_l2_error = x.rel_l2_error(),
                        .top1_agreement = x.top1_agreement(),
                        .fidelity_inputs = x.fidelity_inputs()});
  return r;
}

// ---- Connections --------------------------------------------------------------------------------

namespace {
void CheckHostPort(const std::string& address, int min_port) {
  auto colon = address.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == address.size() ||
      address.size() > 255)
    throw BadInput("'{}' is not HOST:PORT", address);
  for (size_t i = 0; i < colon; ++i)
    if (static_cast<unsigned char>(address[i]) <= 0x20 || address[i] == '/' || address[i] == '@')
      throw BadInput("'{}' is not HOST:PORT", address);
  for (size_t i = colon + 1; i < address.size(); ++i)
    if (!std::isdigit(static_cast<unsigned char>(address[i])))
      throw BadInput("'{}' is not HOST:PORT", address);
  int port = address.size() - colon > 6 ? 65536 : std::stoi(address.substr(colon + 1));
  if (port < min_port || port > 65535)
    throw BadInput("'{}': port must be {}..65535", address, min_port);
}
}  // namespace

void CheckListenAddress(const std::string& address) { CheckHostPort(address, 0); }
void CheckAddress(const std::string& address) { CheckHostPort(address, 1); }

std::shared_ptr<grpc::Channel> MakeChannel(const std::string& address,
                                           const ConnectOptions& options) {
  CheckAddress(address);
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(kMaxMessageBytes);
  args.SetMaxSendMessageSize(kMaxMessageBytes);
  std::shared_ptr<grpc::ChannelCredentials> creds;
  if (options.secure()) {
    grpc::SslCredentialsOptions ssl;
    if (!options.tls_ca.empty()) ssl.pem_root_certs = ReadFileBytes(options.tls_ca);
    creds = grpc::SslCredentials(ssl);
  } else {
    creds = grpc::InsecureChannelCredentials();
  }
  return grpc::CreateCustomChannel(address, creds, args);
}

void PrepareContext(grpc::ClientContext* context, const ConnectOptions& options, int timeout_ms) {
  context->AddMetadata(kProtocolHeader, std::to_string(kProtocolVersion));
  if (!options.token.empty()) context->AddMetadata("authorization", "Bearer " + options.token);
  int ms = timeout_ms > 0 ? timeout_ms : options.timeout_ms;
  context->set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(ms));
}

std::string ResolveToken(const std::string& flag, const std::string& file) {
  std::string token;
  if (!file.empty()) {
    token = ReadFileBytes(file);
    while (!token.empty() && (token.back() == '\n' || token.back() == '\r')) token.pop_back();
    if (token.empty()) throw BadInput("{}: token file is empty", file);
  } else if (const char* env = std::getenv("SCISSION_TOKEN"); env && *env) {
    token = env;
  } else {
    token = flag;
  }
  for (unsigned char c : token)
    if (c < 0x21 || c > 0x7e)
      throw BadInput("the token must be printable ASCII without spaces (it travels as a header)");
  if (token.size() > 1024) throw BadInput("the token is longer than 1024 bytes");
  return token;
}

std::string PeerProof(const std::string& token, const std::string& challenge) {
  std::string message = "scission-peer" + challenge;
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (!HMAC(EVP_sha256(), token.data(), static_cast<int>(token.size()),
            reinterpret_cast<const unsigned char*>(message.data()), message.size(), digest,
            &length))
    throw Internal("HMAC-SHA256 failed");
  return std::string(reinterpret_cast<const char*>(digest), length);
}

void ThrowStatus(const grpc::Status& status, const std::string& what) {
  std::string message = OneLine(status.error_message());
  switch (status.error_code()) {
    case grpc::StatusCode::UNAVAILABLE:
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      throw BadInput("{}: unreachable ({})", what, message);
    case grpc::StatusCode::UNAUTHENTICATED:
    case grpc::StatusCode::PERMISSION_DENIED:
    case grpc::StatusCode::INVALID_ARGUMENT:
    case grpc::StatusCode::FAILED_PRECONDITION:
    case grpc::StatusCode::NOT_FOUND:
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
    case grpc::StatusCode::OUT_OF_RANGE:
    case grpc::StatusCode::ALREADY_EXISTS:
    case grpc::StatusCode::CANCELLED:
      throw BadInput("{}: {}", what, message);
    default:
      throw Internal("{}: {} (gRPC code {})", what, message, static_cast<int>(status.error_code()));
  }
}

}  // namespace scission::deploy
