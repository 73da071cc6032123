#include "deploy/wire.h"

#include <fstream>
#include <limits>
#include <sstream>

#include "common/error.h"
#include "common/files.h"

namespace scission::deploy {

Tensor FromWire(const v1::Tensor& wire, const std::string& what) {
  Tensor t;
  t.spec.name = wire.name();
  t.spec.dtype = static_cast<DType>(wire.dtype());
  const size_t elem = DTypeSize(t.spec.dtype);
  if (elem == 0)
    throw BadInput("{}: tensor '{}' has unsupported dtype {}", what, wire.name(), wire.dtype());
  if (wire.shape_size() > kMaxRank)
    throw BadInput("{}: tensor '{}' has rank {} (max {})", what, wire.name(), wire.shape_size(),
                   kMaxRank);
  int64_t count = 1;
  for (int64_t d : wire.shape()) {
    if (d < 0) throw BadInput("{}: tensor '{}' has a negative dimension", what, wire.name());
    if (d > 0 && count > kMaxTensorBytes / d)
      throw BadInput("{}: tensor '{}' is absurdly large", what, wire.name());
    count *= d;
    t.spec.shape.push_back(d);
  }
  const int64_t bytes = count * static_cast<int64_t>(elem);
  if (bytes > kMaxTensorBytes)
    throw BadInput("{}: tensor '{}' exceeds {} bytes", what, wire.name(), kMaxTensorBytes);
  if (static_cast<int64_t>(wire.data().size()) != bytes)
    throw BadInput("{}: tensor '{}' carries {} bytes but its shape needs {}", what, wire.name(),
                   wire.data().size(), bytes);
  t.data.assign(wire.data().begin(), wire.data().end());
  return t;
}

void ToWire(const Tensor& tensor, v1::Tensor* wire) {
  wire->set_name(tensor.spec.name);
  wire->set_dtype(static_cast<int32_t>(tensor.spec.dtype));
  for (int64_t d : tensor.spec.shape) wire->add_shape(d);
  wire->set_data(tensor.data.data(), tensor.data.size());
}

nlohmann::json RecordsToJson(const store::ModelRecord& model,
                             const std::vector<store::BlockRecord>& blocks,
                             const store::RunRecord& run) {
  nlohmann::json doc;
  doc["model"] = {{"key", model.key},
                  {"name", model.name},
                  {"path", model.path},
                  {"origin", model.origin},
                  {"file_bytes", model.file_bytes},
                  {"input_bytes", model.input_bytes}};
  doc["blocks"] = nlohmann::json::array();
  for (const auto& b : blocks)
    doc["blocks"].push_back({{"index", b.index},
                             {"nodes", b.nodes},
                             {"first_node", b.first_node},
                             {"last_node", b.last_node},
                             {"ops", b.ops},
                             {"output_name", b.output_name},
                             {"output_shape", b.output_shape},
                             {"output_dtype", b.output_dtype},
                             {"output_bytes", b.output_bytes},
                             {"first_layer", b.first_layer},
                             {"last_layer", b.last_layer}});
  nlohmann::json measurements = nlohmann::json::array();
  for (const auto& m : run.measurements)
    measurements.push_back({{"block", m.block_index},
                            {"setup_ms", m.setup_ms},
                            {"first_run_ms", m.first_run_ms},
                            {"n", m.n},
                            {"median_ms", m.median_ms},
                            {"mean_ms", m.mean_ms},
                            {"p90_ms", m.p90_ms},
                            {"p95_ms", m.p95_ms},
                            {"stddev_ms", m.stddev_ms},
                            {"min_ms", m.min_ms},
                            {"max_ms", m.max_ms},
                            {"output_bytes", m.output_bytes},
                            {"samples_ms", m.samples_ms}});
  doc["run"] = {{"kind", run.kind},
                {"started_at", run.started_at},
                {"backend", run.backend},
                {"runtime_version", run.runtime_version},
                {"execution_provider", run.execution_provider},
                {"cpu_model", run.cpu_model},
                {"host", run.host},
                {"build_type", run.build_type},
                {"threads", run.threads},
                {"warmup", run.warmup},
                {"repeats", run.repeats},
                {"wall_ms", run.wall_ms},
                {"setup_ms", run.setup_ms},
                {"measurements", measurements}};
  return doc;
}

void RecordsFromJson(const nlohmann::json& doc, store::ModelRecord* model,
                     std::vector<store::BlockRecord>* blocks, store::RunRecord* run) {
  try {
    const auto& m = doc.at("model");
    *model = {m.at("key"),    m.at("name"),       m.at("path"),
              m.at("origin"), m.at("file_bytes"), m.at("input_bytes")};
    blocks->clear();
    for (const auto& b : doc.at("blocks"))
      blocks->push_back({b.at("index"), b.at("nodes"), b.at("first_node"), b.at("last_node"),
                         b.at("ops"), b.at("output_name"), b.at("output_shape"),
                         b.at("output_dtype"), b.at("output_bytes"), b.at("first_layer"),
                         b.at("last_layer")});
    const auto& r = doc.at("run");
    run->kind = r.at("kind");
    run->started_at = r.at("started_at");
    run->backend = r.at("backend");
    run->runtime_version = r.at("runtime_version");
    run->execution_provider = r.at("execution_provider");
    run->cpu_model = r.at("cpu_model");
    run->host = r.at("host");
    run->build_type = r.at("build_type");
    run->threads = r.at("threads");
    run->warmup = r.at("warmup");
    run->repeats = r.at("repeats");
    run->wall_ms = r.at("wall_ms");
    run->setup_ms = r.at("setup_ms");
    run->measurements.clear();
    for (const auto& x : r.at("measurements")) {
      store::MeasurementRecord mr;
      mr.block_index = x.at("block");
      mr.setup_ms = x.at("setup_ms");
      mr.first_run_ms = x.at("first_run_ms");
      mr.n = x.at("n");
      mr.median_ms = x.at("median_ms");
      mr.mean_ms = x.at("mean_ms");
      mr.p90_ms = x.at("p90_ms");
      mr.p95_ms = x.at("p95_ms");
      mr.stddev_ms = x.at("stddev_ms");
      mr.min_ms = x.at("min_ms");
      mr.max_ms = x.at("max_ms");
      mr.output_bytes = x.at("output_bytes");
      mr.samples_ms = x.at("samples_ms").get<std::vector<double>>();
      run->measurements.push_back(std::move(mr));
    }
  } catch (const nlohmann::json::exception& e) {
    throw BadInput("benchmark records from the worker are malformed: {}", e.what());
  }
}

namespace {
void CheckHostPort(const std::string& address, int min_port) {
  auto colon = address.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == address.size())
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
  if (!options.tls_ca.empty()) {
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = ReadFileBytes(options.tls_ca);
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
      throw BadInput("{}: {}", what, message);
    default:
      throw Internal("{}: {} (gRPC code {})", what, message, static_cast<int>(status.error_code()));
  }
}

}  // namespace scission::deploy
