#include "serve/service.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <thread>

#include <fmt/format.h>
#include <grpcpp/grpcpp.h>
#include <httplib.h>

#include "common/error.h"
#include "deploy/grpc_status.h"
#include "deploy/wire.h"
#include "inference.grpc.pb.h"
#include "serve/prometheus.h"

namespace scission::serve {

namespace {

using Clock = std::chrono::steady_clock;

int HttpStatus(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::INVALID_ARGUMENT:
      return 400;
    case grpc::StatusCode::NOT_FOUND:
      return 404;
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return 413;
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return 504;
    case grpc::StatusCode::UNAVAILABLE:
      return 503;
    default:
      return 500;
  }
}

// host:port -> (host, port), checked as every listen address is (deploy::CheckListenAddress);
// "[::1]:80" keeps the brackets off.
std::pair<std::string, int> SplitHostPort(const std::string& address, const std::string& flag) {
  try {
    deploy::CheckListenAddress(address);
  } catch (const Error& e) {
    throw BadInput("{}: {}", flag, e.what());
  }
  const auto colon = address.rfind(':');
  std::string host = address.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  return {host, std::stoi(address.substr(colon + 1))};
}

const std::string kVersion = "1", kPlatform = "onnxruntime_onnx";

constexpr std::array<double, 13> kBuckets = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                             0.25,  0.5,    1,     2.5,  5,     10};

}  // namespace

void ServeOptions::Validate() const {
  if (name.empty()) throw BadInput("--name must not be empty");
  if (max_request_bytes < (int64_t{1} << 20)) throw BadInput("--max-request-mb must be >= 1");
  if (timeout_ms < 1) throw BadInput("--timeout-ms must be >= 1");
  SplitHostPort(grpc_listen, "--listen");
  if (!http_listen.empty()) SplitHostPort(http_listen, "--http");
  if (!metrics_listen.empty()) SplitHostPort(metrics_listen, "--metrics");
}

struct InferenceService::Impl {
  class Grpc;
  ServeOptions o;
  deploy::Pipeline& pipeline;
  NoteFn note;
  Adapter* adapter;
  std::atomic<uint64_t> next_id{1};
  std::unique_ptr<Grpc> grpc_service;
  std::unique_ptr<grpc::Server> grpc_server;
  int grpc_port = 0, http_port = 0, metrics_port = 0;
  httplib::Server http, metrics_http;
  std::thread http_thread, metrics_thread;
  Clock::time_point started = Clock::now();

  // Metrics, under `mutex`.
  mutable std::mutex mutex;
  std::map<std::pair<std::string, std::string>, uint64_t> requests;  // (protocol, code)
  std::array<uint64_t, kBuckets.size() + 1> latency_buckets{};
  double latency_sum_s = 0;
  uint64_t latency_count = 0;
  std::map<std::string, std::pair<double, uint64_t>> stage_s, hop_s;  // sum, count
  uint64_t replans = 0;

  Impl(ServeOptions options, deploy::Pipeline& p, NoteFn n, Adapter* a)
      : o(std::move(options)), pipeline(p), note(std::move(n)), adapter(a) {}

  void Count(const std::string& protocol, grpc::StatusCode code) {
    std::lock_guard<std::mutex> lock(mutex);
    ++requests[{protocol, deploy::StatusCodeName(code)}];
  }

  void Record(const deploy::ChainResult& r) {
    if (adapter) adapter->Observe(r);
    const auto& plan = r.plan;
    std::lock_guard<std::mutex> lock(mutex);
    const double s = r.total_ms / 1000;
    size_t b = 0;
    while (b < kBuckets.size() && s > kBuckets[b]) ++b;
    ++latency_buckets[b];
    latency_sum_s += s;
    ++latency_count;
    // Timings of the chain that answered (its own plan).
    if (r.stage_ms.size() != plan.stages.size() || r.hop_ms.size() + 1 != plan.stages.size())
      return;
    for (size_t i = 0; i < plan.stages.size(); ++i) {
      auto& acc = stage_s[plan.stages[i].resource];
      acc.first += r.stage_ms[i] / 1000;
      ++acc.second;
    }
    for (size_t h = 0; h < r.hop_ms.size() && h < plan.hops.size(); ++h) {
      auto& acc = hop_s[plan.hops[h].from + "->" + plan.hops[h].to];
      acc.first += r.hop_ms[h] / 1000;
      ++acc.second;
    }
  }

  std::vector<Tensor> Infer(const InferRequest& request, const std::string& protocol) {
    const auto& specs = pipeline.input_specs();
    std::vector<Tensor> inputs(specs.size());
    std::vector<char> given(specs.size(), 0);
    for (const auto& in : request.inputs) {
      auto it = std::find_if(specs.begin(), specs.end(),
                             [&](const TensorSpec& s) { return s.name == in.name; });
      if (it == specs.end()) {
        std::vector<std::string> names;
        for (const auto& s : specs) names.push_back(s.name);
        Refuse(grpc::StatusCode::INVALID_ARGUMENT, 400,
               fmt::format("unknown input '{}' (the model's inputs: {})", in.name,
                           fmt::join(names, ", ")));
      }
      const size_t i = static_cast<size_t>(it - specs.begin());
      if (given[i])
        Refuse(grpc::StatusCode::INVALID_ARGUMENT, 400,
               fmt::format("input '{}' is given twice", in.name));
      given[i] = 1;
      if (DatatypeFromName(in.datatype) != it->dtype)
        Refuse(grpc::StatusCode::INVALID_ARGUMENT, 400,
               fmt::format("input '{}' is {}, the model takes {}", in.name, in.datatype,
                           DatatypeName(it->dtype)));
      if (in.shape != it->shape)
        Refuse(grpc::StatusCode::INVALID_ARGUMENT, 400,
               fmt::format("input '{}' has shape {}; this deployment was planned for {}", in.name,
                           ShapeString(in.shape), ShapeString(it->shape)));
      inputs[i].spec = *it;
      inputs[i].data = in.data;
    }
    for (size_t i = 0; i < specs.size(); ++i)
      if (!given[i])
        Refuse(grpc::StatusCode::INVALID_ARGUMENT, 400,
               fmt::format("input '{}' ({} {}) is missing", specs[i].name,
                           DatatypeName(specs[i].dtype), ShapeString(specs[i].shape)));
    for (const auto& name : request.outputs) {
      const auto& outs = pipeline.output_specs();
      if (std::none_of(outs.begin(), outs.end(),
                       [&](const TensorSpec& s) { return s.name == name; }))
        Refuse(grpc::StatusCode::INVALID_ARGUMENT, 400, fmt::format("unknown output '{}'", name));
    }
    auto result = pipeline.Infer(inputs, next_id++, o.timeout_ms);
    if (!result.ok && o.replan_on_failure && result.code != grpc::StatusCode::INVALID_ARGUMENT) {
      bool replanned = false;
      try {
        replanned = pipeline.ReplanWithoutDeadWorkers();
      } catch (const Error& e) {
        note(fmt::format("re-planning failed: {}", e.what()));
      }
      if (replanned) {
        {
          std::lock_guard<std::mutex> lock(mutex);
          ++replans;
        }
        result = pipeline.Infer(inputs, next_id++, o.timeout_ms);
      }
    }
    if (!result.ok) {
      grpc::StatusCode code = result.code == grpc::StatusCode::DEADLINE_EXCEEDED
                                  ? grpc::StatusCode::DEADLINE_EXCEEDED
                                  : grpc::StatusCode::UNAVAILABLE;
      Refuse(code, HttpStatus(code), "the split model failed: " + result.error);
    }
    Record(result);
    Count(protocol, grpc::StatusCode::OK);
    if (request.outputs.empty()) return std::move(result.outputs);
    std::vector<Tensor> chosen;
    for (const auto& name : request.outputs)
      for (auto& t : result.outputs)
        if (t.spec.name == name) chosen.push_back(t);
    return chosen;
  }

  void SetupHttp();
};

class InferenceService::Impl::Grpc final : public inference::GRPCInferenceService::Service {
 public:
  explicit Grpc(InferenceService::Impl& impl) : s_(impl) {}

  grpc::Status ServerLive(grpc::ServerContext*, const inference::ServerLiveRequest*,
                          inference::ServerLiveResponse* reply) override {
    reply->set_live(true);
    return grpc::Status::OK;
  }
  grpc::Status ServerReady(grpc::ServerContext*, const inference::ServerReadyRequest*,
                           inference::ServerReadyResponse* reply) override {
    reply->set_ready(s_.pipeline.current_chain() > 0);
    return grpc::Status::OK;
  }
  grpc::Status ModelReady(grpc::ServerContext*, const inference::ModelReadyRequest* request,
                          inference::ModelReadyResponse* reply) override {
    if (auto status = CheckModel(request->name(), request->version()); !status.ok()) return status;
    reply->set_ready(s_.pipeline.current_chain() > 0);
    return grpc::Status::OK;
  }
  grpc::Status ServerMetadata(grpc::ServerContext*, const inference::ServerMetadataRequest*,
                              inference::ServerMetadataResponse* reply) override {
    reply->set_name("scission");
    reply->set_version(SCISSION_VERSION);
    return grpc::Status::OK;
  }
  grpc::Status ModelMetadata(grpc::ServerContext*, const inference::ModelMetadataRequest* request,
                             inference::ModelMetadataResponse* reply) override {
    if (auto status = CheckModel(request->name(), request->version()); !status.ok()) return status;
    reply->set_name(s_.o.name);
    *reply->add_versions() = kVersion;
    *reply->mutable_platform() = kPlatform;
    auto add = [](auto* list, const TensorSpec& spec) {
      auto* t = list->Add();
      t->set_name(spec.name);
      t->set_datatype(DatatypeName(spec.dtype));
      for (int64_t d : spec.shape) t->add_shape(d < 0 ? -1 : d);
    };
    for (const auto& s : s_.pipeline.input_specs()) add(reply->mutable_inputs(), s);
    for (const auto& s : s_.pipeline.output_specs()) add(reply->mutable_outputs(), s);
    return grpc::Status::OK;
  }
  grpc::Status ModelInfer(grpc::ServerContext*, const inference::ModelInferRequest* request,
                          inference::ModelInferResponse* reply) override {
    if (auto status = CheckModel(request->model_name(), request->model_version()); !status.ok()) {
      s_.Count("grpc", status.error_code());
      return status;
    }
    try {
      auto outputs = s_.Infer(FromGrpc(*request, s_.o.max_request_bytes), "grpc");
      reply->set_model_name(s_.o.name);
      reply->set_model_version("1");
      reply->set_id(request->id());
      ToGrpc(outputs, *reply);
      return grpc::Status::OK;
    } catch (const RequestError& e) {
      s_.Count("grpc", e.code);
      return grpc::Status(e.code, e.message);
    } catch (const std::exception& e) {
      s_.Count("grpc", grpc::StatusCode::INTERNAL);
      return grpc::Status(grpc::StatusCode::INTERNAL, OneLine(e.what()));
    }
  }

 private:
  grpc::Status CheckModel(const std::string& name, const std::string& version) const {
    if (name != s_.o.name)
      return grpc::Status(
          grpc::StatusCode::NOT_FOUND,
          fmt::format("unknown model '{}' (this server has '{}')", name, s_.o.name));
    if (!version.empty() && version != "1")
      return grpc::Status(grpc::StatusCode::NOT_FOUND,
                          fmt::format("model '{}' has no version '{}' (only 1)", name, version));
    return grpc::Status::OK;
  }
  InferenceService::Impl& s_;
};

void InferenceService::Impl::SetupHttp() {
  auto json_reply = [](httplib::Response& res, int status, const nlohmann::json& body) {
    res.status = status;
    res.set_content(body.dump(), "application/json");
  };
  auto error = [json_reply](httplib::Response& res, int status, const std::string& message) {
    json_reply(res, status, {{"error", message}});
  };
  // JSON spends up to ~6 characters per byte of float32 data ("0.123456789," per 4 bytes); a body
  // beyond that is refused before it is buffered.
  http.set_payload_max_length(static_cast<size_t>(o.max_request_bytes) * 6 + (1 << 20));
  http.Get("/v2/health/live", [json_reply](const httplib::Request&, httplib::Response& res) {
    json_reply(res, 200, {{"live", true}});
  });
  http.Get("/v2/health/ready", [this, json_reply](const httplib::Request&, httplib::Response& res) {
    bool ready = pipeline.current_chain() > 0;
    json_reply(res, ready ? 200 : 503, {{"ready", ready}});
  });
  http.Get("/v2", [this, json_reply](const httplib::Request&, httplib::Response& res) {
    json_reply(res, 200,
               {{"name", "scission"},
                {"version", SCISSION_VERSION},
                {"extensions", nlohmann::json::array()}});
  });
  // /v2/models/NAME[/versions/V][/ready|/infer]
  auto route = [this, error](const httplib::Request& req, httplib::Response& res) -> bool {
    const std::string& name = req.matches[1];
    const std::string version = req.matches.size() > 2 ? std::string(req.matches[2]) : "";
    if (name != o.name) {
      error(res, 404, fmt::format("unknown model '{}' (this server has '{}')", name, o.name));
      return false;
    }
    if (!version.empty() && version != "1") {
      error(res, 404, fmt::format("model '{}' has no version '{}' (only 1)", name, version));
      return false;
    }
    return true;
  };
  const std::string model = R"(/v2/models/([^/]+)(?:/versions/([^/]+))?)";
  http.Get(model, [this, route, json_reply](const httplib::Request& req, httplib::Response& res) {
    if (!route(req, res)) return;
    auto doc = nlohmann::json::object();
    doc["name"] = o.name;
    doc["versions"] = {"1"};
    doc["platform"] = "onnxruntime_onnx";
    auto list = [](const std::vector<TensorSpec>& specs) {
      nlohmann::json out = nlohmann::json::array();
      for (const auto& s : specs) {
        std::vector<int64_t> shape;
        for (int64_t d : s.shape) shape.push_back(d < 0 ? -1 : d);
        out.push_back({{"name", s.name}, {"datatype", DatatypeName(s.dtype)}, {"shape", shape}});
      }
      return out;
    };
    doc["inputs"] = list(pipeline.input_specs());
    doc["outputs"] = list(pipeline.output_specs());
    json_reply(res, 200, doc);
  });
  http.Get(model + "/ready",
           [this, route, json_reply](const httplib::Request& req, httplib::Response& res) {
             if (!route(req, res)) return;
             bool ready = pipeline.current_chain() > 0;
             json_reply(res, ready ? 200 : 503, {{"name", o.name}, {"ready", ready}});
           });
  http.Post(model + "/infer",
            [this, route, error, json_reply](const httplib::Request& req, httplib::Response& res) {
              if (!route(req, res)) {
                Count("http", grpc::StatusCode::NOT_FOUND);
                return;
              }
              try {
                auto body = nlohmann::json::parse(req.body, nullptr, false);
                if (body.is_discarded())
                  Refuse(grpc::StatusCode::INVALID_ARGUMENT, 400, "body is not JSON");
                auto request = FromJson(body, o.max_request_bytes);
                auto outputs = Infer(request, "http");
                nlohmann::json doc = {{"model_name", o.name}, {"model_version", "1"}};
                if (!request.id.empty()) doc["id"] = request.id;
                doc["outputs"] = ToJson(outputs);
                json_reply(res, 200, doc);
              } catch (const RequestError& e) {
                Count("http", e.code);
                error(res, e.http_status, e.message);
              } catch (const std::exception& e) {
                Count("http", grpc::StatusCode::INTERNAL);
                error(res, 500, OneLine(e.what()));
              }
            });
  http.set_error_handler([error](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return;
    if (res.status == 413)
      error(res, 413,
            "request body too large (a body without Content-Type: application/json is read as a "
            "form, limited to 8 KiB)");
    else if (res.status == 404 || res.status == 405)
      error(res, res.status,
            fmt::format("{} {}: no such endpoint or method", req.method, req.path));
    else
      error(res, res.status, fmt::format("{} {}: bad request", req.method, req.path));
  });
}

InferenceService::InferenceService(ServeOptions options, deploy::Pipeline& pipeline, NoteFn note,
                                   Adapter* adapter)
    : o_(options),
      impl_(std::make_unique<Impl>(std::move(options), pipeline, std::move(note), adapter)) {
  o_.Validate();
}

InferenceService::~InferenceService() {
  Shutdown();
  Wait();
}

void InferenceService::Start() {
  auto& s = *impl_;
  s.grpc_service = std::make_unique<Impl::Grpc>(s);
  grpc::ServerBuilder builder;
  builder.AddListeningPort(o_.grpc_listen, grpc::InsecureServerCredentials(), &s.grpc_port);
  // A request carries at most max_request_bytes of tensors, plus its framing.
  builder.SetMaxReceiveMessageSize(static_cast<int>(
      std::min<int64_t>(o_.max_request_bytes + (int64_t{1} << 20), int64_t{2047} << 20)));
  builder.SetMaxSendMessageSize(-1);
  builder.RegisterService(s.grpc_service.get());
  s.grpc_server = builder.BuildAndStart();
  if (!s.grpc_server || s.grpc_port == 0)
    throw BadInput("--listen {}: cannot listen there (in use, or not this machine's address?)",
                   o_.grpc_listen);
  auto bind = [](httplib::Server& server, const std::string& address, const std::string& flag) {
    auto [host, port] = SplitHostPort(address, flag);
    int bound =
        port == 0 ? server.bind_to_any_port(host) : (server.bind_to_port(host, port) ? port : -1);
    if (bound <= 0)
      throw BadInput("{} {}: cannot listen there (in use, or not this machine's address?)", flag,
                     address);
    return bound;
  };
  if (!o_.http_listen.empty()) {
    s.SetupHttp();
    s.http_port = bind(s.http, o_.http_listen, "--http");
    s.http_thread = std::thread([&s] { s.http.listen_after_bind(); });
  }
  if (!o_.metrics_listen.empty()) {
    s.metrics_http.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
      res.set_content(MetricsText(), "text/plain; version=0.0.4");
    });
    s.metrics_port = bind(s.metrics_http, o_.metrics_listen, "--metrics");
    s.metrics_thread = std::thread([&s] { s.metrics_http.listen_after_bind(); });
  }
}

int InferenceService::grpc_port() const { return impl_->grpc_port; }
int InferenceService::http_port() const { return impl_->http_port; }
int InferenceService::metrics_port() const { return impl_->metrics_port; }

void InferenceService::Shutdown() {
  auto& s = *impl_;
  if (s.grpc_server)
    s.grpc_server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
  s.http.stop();
  s.metrics_http.stop();
}

void InferenceService::Wait() {
  auto& s = *impl_;
  if (s.grpc_server) s.grpc_server->Wait();
  if (s.http_thread.joinable()) s.http_thread.join();
  if (s.metrics_thread.joinable()) s.metrics_thread.join();
}

std::vector<Tensor> InferenceService::Infer(const InferRequest& request,
                                            const std::string& protocol) {
  return impl_->Infer(request, protocol);
}

void InferenceService::CountError(const std::string& protocol, grpc::StatusCode code) {
  impl_->Count(protocol, code);
}

std::string InferenceService::MetricsText() const {
  const auto& s = *impl_;
  const auto plan = s.pipeline.current_plan();
  const uint64_t chain = s.pipeline.current_chain();
  std::lock_guard<std::mutex> lock(s.mutex);
  const auto now = Clock::now();
  std::string out;
  auto line = [&out](const std::string& text) { out += text + "\n"; };
  line("# HELP scission_requests_total Inference requests answered, by protocol and status code.");
  line("# TYPE scission_requests_total counter");
  for (const auto& [key, n] : s.requests)
    line(fmt::format("scission_requests_total{{protocol=\"{}\",code=\"{}\"}} {}", key.first,
                     key.second, n));
  line(
      "# HELP scission_request_duration_seconds Time through the split model (successful "
      "requests).");
  line("# TYPE scission_request_duration_seconds histogram");
  uint64_t cumulative = 0;
  for (size_t b = 0; b < kBuckets.size(); ++b) {
    cumulative += s.latency_buckets[b];
    line(fmt::format("scission_request_duration_seconds_bucket{{le=\"{}\"}} {}", kBuckets[b],
                     cumulative));
  }
  cumulative += s.latency_buckets[kBuckets.size()];
  line(fmt::format("scission_request_duration_seconds_bucket{{le=\"+Inf\"}} {}", cumulative));
  line(fmt::format("scission_request_duration_seconds_sum {}", s.latency_sum_s));
  line(fmt::format("scission_request_duration_seconds_count {}", s.latency_count));
  line("# HELP scission_stage_compute_seconds Compute time of each stage, by resource.");
  line("# TYPE scission_stage_compute_seconds summary");
  for (const auto& [name, acc] : s.stage_s) {
    line(fmt::format("scission_stage_compute_seconds_sum{{resource=\"{}\"}} {}", PromLabel(name),
                     acc.first));
    line(fmt::format("scission_stage_compute_seconds_count{{resource=\"{}\"}} {}", PromLabel(name),
                     acc.second));
  }
  line(
      "# HELP scission_hop_seconds Transfer time of each hop (the caller's view: bytes, RTT, "
      "serialization).");
  line("# TYPE scission_hop_seconds summary");
  for (const auto& [name, acc] : s.hop_s) {
    line(fmt::format("scission_hop_seconds_sum{{hop=\"{}\"}} {}", PromLabel(name), acc.first));
    line(fmt::format("scission_hop_seconds_count{{hop=\"{}\"}} {}", PromLabel(name), acc.second));
  }
  line("# HELP scission_plan_info The plan requests take now (chain counts installs).");
  line("# TYPE scission_plan_info gauge");
  line(fmt::format("scission_plan_info{{chain=\"{}\",plan=\"{}\",predicted_ms=\"{:.3f}\"}} 1",
                   chain, PromLabel(plan::PlanKey(plan)), plan.latency_ms));
  line("# HELP scission_plan_switches_total Plans installed after the first.");
  line("# TYPE scission_plan_switches_total counter");
  line(fmt::format("scission_plan_switches_total {}", chain > 0 ? chain - 1 : 0));
  line("# HELP scission_replans_total Re-plans after a failed request (dead worker).");
  line("# TYPE scission_replans_total counter");
  line(fmt::format("scission_replans_total {}", s.replans));
  line(fmt::format("scission_uptime_seconds {}",
                   std::chrono::duration<double>(now - s.started).count()));
  if (s.adapter) out += s.adapter->MetricsText();
  return out;
}

}  // namespace scission::serve
