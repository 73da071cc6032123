// `scission loadgen`: drives any Open Inference Protocol (KServe v2) gRPC server (scission serve,
// Triton, ...) with generated inputs from independent closed loops, checks every reply against the
// model's metadata, and summarizes what came back. A client of the protocol only: it uses the
// generated stubs of proto/inference.proto and nothing of the server's side.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <thread>

#include <fmt/ranges.h>
#include <grpcpp/grpcpp.h>

#include "cli/common.h"
#include "deploy/grpc_status.h"
#include "inference.grpc.pb.h"
#include "profile/inputs.h"
#include "profile/stats.h"
#include "runtime/backend.h"
#include "serve/tensors.h"

namespace scission::cli {

namespace {

using Clock = std::chrono::steady_clock;

constexpr double kMaxDurationS = 3600;
constexpr int64_t kMaxRequests = 1000000;
constexpr int kMaxConcurrency = 64;
constexpr int kMaxTimeoutMs = 600000;
constexpr int kMaxIntervalMs = 3600000;
// Each loop holds one request; together they may hold this much input.
constexpr int64_t kMaxHeldInputBytes = int64_t{4} << 30;

struct LoadOptions {
  std::string address, model, records;
  std::vector<std::string> shapes;
  // Sending stops at whichever of the two given comes first.
  double duration_s = 0;
  int64_t requests = 0;
  bool has_duration = false, has_requests = false;
  int interval_ms = 0;  // per loop; 0 = back to back
  int concurrency = 1;
  int timeout_ms = 10000;  // per request
  // Connecting and the metadata call: a short --timeout-ms (to see requests time out) must not
  // make the set-up fail.
  int SetupTimeoutMs() const { return std::max(timeout_ms, 10000); }

  void Validate() const {
    if (!has_duration && !has_requests)
      throw BadInput("give --duration-s or --requests (when to stop sending)");
    if (has_duration && !(duration_s > 0 && duration_s <= kMaxDurationS))
      throw BadInput("--duration-s must be in (0, {}], got {}", kMaxDurationS, duration_s);
    if (has_requests && (requests < 1 || requests > kMaxRequests))
      throw BadInput("--requests must be 1..{}, got {}", kMaxRequests, requests);
    if (interval_ms < 0 || interval_ms > kMaxIntervalMs)
      throw BadInput("--interval-ms must be 0..{}, got {}", kMaxIntervalMs, interval_ms);
    if (concurrency < 1 || concurrency > kMaxConcurrency)
      throw BadInput("--concurrency must be 1..{}, got {}", kMaxConcurrency, concurrency);
    if (timeout_ms < 1 || timeout_ms > kMaxTimeoutMs)
      throw BadInput("--timeout-ms must be 1..{}, got {}", kMaxTimeoutMs, timeout_ms);
  }
};

// A tensor as ModelMetadata declares it (-1: a dimension of variable size).
struct DeclaredTensor {
  std::string name, datatype;
  std::vector<int64_t> shape;
};

struct DeclaredModel {
  std::vector<DeclaredTensor> inputs, outputs;
};

std::shared_ptr<grpc::Channel> OpenChannel(const std::string& address) {
  grpc::ChannelArguments args;
  // Replies are as large as the model's outputs; gRPC's default 4 MiB would refuse many.
  args.SetMaxReceiveMessageSize(-1);
  args.SetMaxSendMessageSize(-1);
  // A connection of its own per loop: independent clients, not streams of one connection.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  return grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args);
}

DeclaredModel FetchMetadata(const LoadOptions& o) {
  auto stub = inference::GRPCInferenceService::NewStub(OpenChannel(o.address));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::milliseconds(o.SetupTimeoutMs()));
  inference::ModelMetadataRequest request;
  request.set_name(o.model);
  inference::ModelMetadataResponse reply;
  grpc::Status status = stub->ModelMetadata(&context, request, &reply);
  const std::string why = OneLine(status.error_message());
  switch (status.error_code()) {
    case grpc::StatusCode::OK:
      break;
    case grpc::StatusCode::NOT_FOUND:
      throw BadInput("--model {}: {} does not serve it ({})", o.model, o.address, why);
    case grpc::StatusCode::UNAVAILABLE:
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      throw BadInput("{}: no inference server answers there within {} ms ({}: {})", o.address,
                     o.SetupTimeoutMs(), deploy::StatusCodeName(status.error_code()), why);
    case grpc::StatusCode::UNIMPLEMENTED:
      throw BadInput("{}: not an Open Inference Protocol (KServe v2) gRPC server ({})", o.address,
                     why);
    default:
      throw BadInput("{}: ModelMetadata for '{}' failed: {}: {}", o.address, o.model,
                     deploy::StatusCodeName(status.error_code()), why);
  }
  DeclaredModel model;
  auto copy = [](const auto& list, std::vector<DeclaredTensor>& out) {
    for (const auto& t : list)
      out.push_back({t.name(), t.datatype(), {t.shape().begin(), t.shape().end()}});
  };
  copy(reply.inputs(), model.inputs);
  copy(reply.outputs(), model.outputs);
  return model;
}

// True when `shape` has the declared rank and every declared fixed dimension.
bool Fits(const std::vector<int64_t>& shape, const std::vector<int64_t>& declared) {
  if (shape.size() != declared.size()) return false;
  for (size_t i = 0; i < shape.size(); ++i)
    if (declared[i] >= 0 && shape[i] != declared[i]) return false;
  return true;
}

// The request every loop sends (each with its own id): generated inputs at the declared shapes
// (or --shape where a dimension varies), as raw_input_contents.
inference::ModelInferRequest BuildRequest(const LoadOptions& o, const DeclaredModel& model) {
  auto given = profile::InputOptions::Parse(o.shapes, {});
  for (const auto& [name, dims] : given.shapes) {
    bool known = false;
    for (const auto& in : model.inputs) known = known || in.name == name;
    if (!known) {
      std::vector<std::string> names;
      for (const auto& in : model.inputs) names.push_back(in.name);
      throw BadInput("--shape {}: the model has no such input (it has: {})", name,
                     fmt::join(names, ", "));
    }
  }
  inference::ModelInferRequest request;
  request.set_model_name(o.model);
  int64_t bytes = 0;
  for (size_t i = 0; i < model.inputs.size(); ++i) {
    const auto& in = model.inputs[i];
    TensorSpec spec{in.name, serve::DatatypeFromName(in.datatype), in.shape};
    if (spec.dtype == DType::kUndefined || DTypeSize(spec.dtype) == 0)
      throw BadInput("input '{}' is {}: loadgen generates numeric and BOOL inputs only", in.name,
                     in.datatype);
    for (const auto& [name, dims] : given.shapes) {
      if (name != in.name) continue;
      if (!Fits(dims, in.shape))
        throw BadInput("--shape {}={}: the model declares {} (a fixed dimension must stay)", name,
                       profile::DimsText(dims), ShapeString(in.shape));
      spec.shape = dims;
    }
    for (int64_t d : spec.shape)
      if (d < 0)
        throw BadInput(
            "input '{}' has shape {}, with a dimension of variable size: give it with --shape "
            "{}=...",
            in.name, ShapeString(in.shape), in.name);
    Tensor tensor = runtime::MakeRandomInput(spec, i + 1);
    bytes += static_cast<int64_t>(tensor.data.size());
    auto* t = request.add_inputs();
    t->set_name(in.name);
    t->set_datatype(in.datatype);
    for (int64_t d : spec.shape) t->add_shape(d);
    request.add_raw_input_contents(tensor.data.data(), tensor.data.size());
  }
  // The template and one copy per loop.
  if (bytes * (o.concurrency + 1) > kMaxHeldInputBytes)
    throw BadInput(
        "inputs of {} per request, one request per loop: --concurrency {} holds more than the "
        "{} GiB loadgen allows",
        FormatBytes(bytes), o.concurrency, kMaxHeldInputBytes >> 30);
  return request;
}

// Elements an output's typed contents carry (for servers that do not reply raw).
int64_t TypedCount(const inference::InferTensorContents& c, const std::string& datatype) {
  if (datatype == "BOOL") return c.bool_contents_size();
  if (datatype == "INT8" || datatype == "INT16" || datatype == "INT32")
    return c.int_contents_size();
  if (datatype == "INT64") return c.int64_contents_size();
  if (datatype == "UINT8" || datatype == "UINT16" || datatype == "UINT32")
    return c.uint_contents_size();
  if (datatype == "UINT64") return c.uint64_contents_size();
  if (datatype == "FP32") return c.fp32_contents_size();
  if (datatype == "FP64") return c.fp64_contents_size();
  return -1;  // FP16 and BF16 travel raw only
}

// "" when the reply has one tensor per declared output, each of the declared datatype and shape,
// carrying the bytes (or values) that datatype and shape imply; else what is wrong.
std::string CheckReply(const inference::ModelInferResponse& reply,
                       const std::vector<DeclaredTensor>& outputs) {
  if (static_cast<size_t>(reply.outputs_size()) != outputs.size())
    return fmt::format("{} output tensors, the model declares {}", reply.outputs_size(),
                       outputs.size());
  const bool raw = reply.raw_output_contents_size() > 0;
  if (raw && reply.raw_output_contents_size() != reply.outputs_size())
    return fmt::format("{} raw_output_contents for {} outputs", reply.raw_output_contents_size(),
                       reply.outputs_size());
  std::vector<bool> seen(outputs.size(), false);
  for (int i = 0; i < reply.outputs_size(); ++i) {
    const auto& out = reply.outputs(i);
    size_t k = 0;
    while (k < outputs.size() && outputs[k].name != out.name()) ++k;
    if (k == outputs.size()) return fmt::format("output '{}' is not the model's", out.name());
    if (seen[k]) return fmt::format("output '{}' twice", out.name());
    seen[k] = true;
    const auto& want = outputs[k];
    std::vector<int64_t> shape(out.shape().begin(), out.shape().end());
    if (out.datatype() != want.datatype)
      return fmt::format("output '{}' is {}, the model declares {}", out.name(), out.datatype(),
                         want.datatype);
    if (!Fits(shape, want.shape))
      return fmt::format("output '{}' has shape {}, the model declares {}", out.name(),
                         ShapeString(shape), ShapeString(want.shape));
    const int64_t count = ElementCount(shape);
    if (count < 0)
      return fmt::format("output '{}' has shape {}, which has no element count", out.name(),
                         ShapeString(shape));
    const DType dtype = serve::DatatypeFromName(out.datatype());
    const auto size = static_cast<int64_t>(DTypeSize(dtype));
    if (size == 0) continue;  // BYTES (or a type loadgen does not know): no fixed size to check
    if (raw) {
      const auto got = static_cast<int64_t>(reply.raw_output_contents(i).size());
      if (count > std::numeric_limits<int64_t>::max() / size || got != count * size)
        return fmt::format("output '{}' ({} {}) carries {} bytes, not {}", out.name(),
                           out.datatype(), ShapeString(shape), got, count * size);
    } else if (int64_t got = TypedCount(out.contents(), out.datatype()); got != count) {
      return fmt::format("output '{}' ({} {}) carries {} values, not {}", out.name(),
                         out.datatype(), ShapeString(shape), got < 0 ? 0 : got, count);
    }
  }
  return "";
}

// What the loops share with the thread that waits for SIGINT/SIGTERM, which may outlive the run
// (hence owned by a shared_ptr).
struct StopControl {
  std::mutex mutex;
  std::condition_variable wake;
  bool stopping = false;    // the first signal: no new requests
  bool abandoning = false;  // the second: requests in flight are cancelled (counted lost)
  std::vector<grpc::ClientContext*> in_flight;  // one slot per loop

  void Stop() {
    std::lock_guard lock(mutex);
    stopping = true;
    wake.notify_all();
  }
  void Abandon() {
    std::lock_guard lock(mutex);
    stopping = abandoning = true;
    for (auto* context : in_flight)
      if (context) context->TryCancel();
    wake.notify_all();
  }
};

struct Summary {
  int64_t sent = 0, ok = 0, lost = 0, duplicates = 0;
  std::map<std::string, int64_t> errors;         // code -> count
  std::map<std::string, std::string> first_why;  // code -> the first message with it
  std::vector<double> ok_latency_ms;
  double duration_s = 0;
};

// The closed loops: each sends a request, waits for its reply, then starts the next one at its
// pace. Results and records are gathered under one lock (a request takes far longer than that).
class LoadRun {
 public:
  LoadRun(const LoadOptions& o, const DeclaredModel& model, inference::ModelInferRequest request,
          std::FILE* records, std::shared_ptr<StopControl> control)
      : o_(o), model_(model), request_(std::move(request)), records_(records), control_(control) {
    std::lock_guard lock(control_->mutex);
    control_->in_flight.assign(static_cast<size_t>(o.concurrency), nullptr);
    id_prefix_ = fmt::format("lg-{}-", ::getpid());
  }

  Summary Run() {
    // Every loop connects first, so no latency includes a connection's set-up (a loop that
    // cannot connect finds out from its first request).
    std::vector<std::shared_ptr<grpc::Channel>> channels;
    for (int i = 0; i < o_.concurrency; ++i) {
      channels.push_back(OpenChannel(o_.address));
      channels.back()->GetState(/*try_to_connect=*/true);
    }
    const auto connected_by =
        std::chrono::system_clock::now() + std::chrono::milliseconds(o_.SetupTimeoutMs());
    for (auto& channel : channels) channel->WaitForConnected(connected_by);
    const auto begin = Clock::now();
    end_ = o_.has_duration
               ? begin + std::chrono::microseconds(static_cast<int64_t>(o_.duration_s * 1e6))
               : Clock::time_point::max();
    std::vector<std::thread> loops;
    for (int i = 0; i < o_.concurrency; ++i)
      loops.emplace_back([this, i, begin, &channels] { Loop(i, begin, channels[i]); });
    for (auto& t : loops) t.join();
    summary_.duration_s = std::chrono::duration<double>(Clock::now() - begin).count();
    return summary_;
  }

 private:
  void Loop(int index, Clock::time_point begin, std::shared_ptr<grpc::Channel> channel) {
    auto stub = inference::GRPCInferenceService::NewStub(channel);
    inference::ModelInferRequest request = request_;
    const auto interval = std::chrono::milliseconds(o_.interval_ms);
    // Loops start spread over one interval, so together they send an even stream.
    auto next = begin + interval * index / o_.concurrency;
    for (;;) {
      grpc::ClientContext context;
      int64_t ticket = 0;
      Clock::time_point start;
      std::chrono::system_clock::time_point start_unix;
      {
        std::unique_lock lock(control_->mutex);
        control_->wake.wait_until(lock, std::min(next, end_),
                                  [this] { return control_->stopping; });
        if (control_->stopping || Clock::now() >= end_) return;
        ticket = ++tickets_;
        if (o_.has_requests && ticket > o_.requests) return;
        control_->in_flight[static_cast<size_t>(index)] = &context;
        // Taken with the ticket, so ids and start times are in the same order.
        start = Clock::now();
        start_unix = std::chrono::system_clock::now();
      }
      request.set_id(id_prefix_ + std::to_string(ticket));
      context.set_deadline(start_unix + std::chrono::milliseconds(o_.timeout_ms));
      inference::ModelInferResponse reply;
      grpc::Status status = stub->ModelInfer(&context, request, &reply);
      const auto end = Clock::now();
      bool abandoned = false;
      {
        std::lock_guard lock(control_->mutex);
        control_->in_flight[static_cast<size_t>(index)] = nullptr;
        abandoned = control_->abandoning;
      }
      std::string code, why;
      if (status.ok()) {
        if (reply.id() != request.id()) {
          code = "DUPLICATE";
          why = fmt::format("reply id '{}' for request '{}'", OneLine(reply.id()), request.id());
        } else {
          why = CheckReply(reply, model_.outputs);
          code = why.empty() ? "OK" : "BAD_OUTPUTS";
        }
      } else if (abandoned && status.error_code() == grpc::StatusCode::CANCELLED) {
        code = "LOST";
      } else {
        code = deploy::StatusCodeName(status.error_code());
        why = OneLine(status.error_message());
      }
      Record(request.id(), start_unix,
             std::chrono::duration<double, std::milli>(end - start).count(), code, why);
      next = std::max(start + interval, end);
    }
  }

  void Record(const std::string& id, std::chrono::system_clock::time_point start_unix,
              double latency_ms, const std::string& code, const std::string& why) {
    std::lock_guard lock(results_mutex_);
    ++summary_.sent;
    if (code == "OK") {
      ++summary_.ok;
      summary_.ok_latency_ms.push_back(latency_ms);
    } else if (code == "LOST") {
      ++summary_.lost;
    } else if (code == "DUPLICATE") {
      ++summary_.duplicates;
    } else {
      ++summary_.errors[code];
    }
    if (!why.empty()) summary_.first_why.emplace(code, why);
    if (!records_) return;
    const double start_ms =
        std::chrono::duration<double, std::milli>(start_unix.time_since_epoch()).count();
    // null: no reply came (LOST).
    const std::string latency = code == "LOST" ? "null" : fmt::format("{:.3f}", latency_ms);
    fmt::print(records_,
               "{{\"id\":\"{}\",\"start_unix_ms\":{:.3f},\"latency_ms\":{},\"code\":\"{}\"}}\n", id,
               start_ms, latency, code);
    // Line by line, so the records survive a process that is killed.
    std::fflush(records_);
  }

  const LoadOptions& o_;
  const DeclaredModel& model_;
  const inference::ModelInferRequest request_;
  std::FILE* records_;
  std::shared_ptr<StopControl> control_;
  std::string id_prefix_;
  Clock::time_point end_;
  int64_t tickets_ = 0;  // under control_->mutex
  std::mutex results_mutex_;
  Summary summary_;
};

nlohmann::ordered_json LatencyJson(const std::vector<double>& ms) {
  if (ms.empty()) return nullptr;
  return {{"mean", profile::Mean(ms)},
          {"median", profile::Median(ms)},
          {"p90", profile::Percentile(ms, 0.9)},
          {"p99", profile::Percentile(ms, 0.99)},
          {"max", profile::Percentile(ms, 1.0)}};
}

double PerSecond(const Summary& s) { return s.duration_s > 0 ? s.ok / s.duration_s : 0; }

void PrintSummary(const LoadOptions& o, const Summary& s, bool json) {
  if (json) {
    nlohmann::ordered_json doc = {{"address", o.address},
                                  {"model", o.model},
                                  {"concurrency", o.concurrency},
                                  {"interval_ms", o.interval_ms},
                                  {"timeout_ms", o.timeout_ms},
                                  {"sent", s.sent},
                                  {"ok", s.ok},
                                  {"errors", s.errors},
                                  {"lost", s.lost},
                                  {"duplicates", s.duplicates},
                                  {"first_errors", s.first_why},
                                  {"latency_ms", LatencyJson(s.ok_latency_ms)},
                                  {"requests_per_s", PerSecond(s)},
                                  {"duration_s", s.duration_s}};
    PrintJson(doc);
    return;
  }
  int64_t errors = 0;
  for (const auto& [code, n] : s.errors) errors += n;
  fmt::print("{} requests to '{}' at {} in {:.2f} s from {} loop{}, {}\n", s.sent, o.model,
             o.address, s.duration_s, o.concurrency, o.concurrency == 1 ? "" : "s",
             o.interval_ms > 0 ? fmt::format("each one request every {} ms", o.interval_ms)
                               : std::string("back to back"));
  fmt::print("  ok {}, errors {}, lost {}, duplicates {} ({:.1f} OK replies/s)\n", s.ok, errors,
             s.lost, s.duplicates, PerSecond(s));
  if (!s.ok_latency_ms.empty()) {
    const auto& ms = s.ok_latency_ms;
    fmt::print("  latency ms: mean {:.2f}, median {:.2f}, p90 {:.2f}, p99 {:.2f}, max {:.2f}\n",
               profile::Mean(ms), profile::Median(ms), profile::Percentile(ms, 0.9),
               profile::Percentile(ms, 0.99), profile::Percentile(ms, 1.0));
  }
  for (const auto& [code, n] : s.errors) {
    auto why = s.first_why.find(code);
    fmt::print("  {} {}{}\n", code, n,
               why == s.first_why.end() ? "" : fmt::format(" (first: {})", why->second));
  }
  if (s.duplicates > 0)
    fmt::print("  DUPLICATE {} (first: {})\n", s.duplicates, s.first_why.at("DUPLICATE"));
}

// SIGINT/SIGTERM: the first stops sending, the second abandons what is in flight.
void WatchStopSignals(std::shared_ptr<StopControl> control) {
  std::thread([control] {
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGTERM);
    int sig = 0;
    sigwait(&signals, &sig);
    control->Stop();
    sigwait(&signals, &sig);
    control->Abandon();
  }).detach();
}

}  // namespace

void RegisterLoadgen(CLI::App& app, GlobalOptions& global) {
  auto* cmd = app.add_subcommand(
      "loadgen",
      "send a steady stream of inference requests to an Open Inference Protocol (KServe v2) gRPC "
      "server and summarize the replies");
  cmd->add_flag("--json", global.json, "print the summary as one JSON document on stdout");
  auto o = std::make_shared<LoadOptions>();
  cmd->add_option("ADDRESS", o->address, "the server's gRPC address, host:port")->required();
  cmd->add_option("--model", o->model, "the model's name on the server")->required();
  auto* duration = cmd->add_option("--duration-s", o->duration_s,
                                   "stop sending after this many seconds (at most 3600; this or "
                                   "--requests is required)");
  auto* requests =
      cmd->add_option("--requests", o->requests, "stop after this many requests (at most 1000000)");
  cmd->add_option("--interval-ms", o->interval_ms,
                  "each loop starts a request every MS ms, or when the previous one ends if "
                  "that is later (default 0: back to back)");
  cmd->add_option("--concurrency", o->concurrency,
                  "independent closed loops, each with its own connection (1..64, default 1)");
  cmd->add_option("--timeout-ms", o->timeout_ms, "deadline of each request (default 10000)");
  cmd->add_option("--records", o->records,
                  "FILE: one JSON line per request: id, start_unix_ms, latency_ms, code (the gRPC "
                  "status name; DUPLICATE, BAD_OUTPUTS or LOST for the checks)");
  cmd->add_option("--shape", o->shapes,
                  "NAME=1x3x224x224: an input's shape where the model declares a variable "
                  "dimension (repeatable)");
  cmd->footer(
      "Inputs are generated once: floats uniform in [0, 1), integers 0, bools false. Every reply "
      "must carry its request's id (else DUPLICATE) and one tensor per declared output with the "
      "bytes its datatype and shape imply (else BAD_OUTPUTS). SIGINT/SIGTERM stops sending and "
      "waits for the requests in flight (at most --timeout-ms); a second one abandons them "
      "(LOST). Latency statistics are over OK requests; requests/s is OK replies per second.");
  cmd->callback([o, duration, requests, &global] {
    // Before gRPC starts any thread, so the signals reach only the watcher.
    BlockStopSignals();
    o->has_duration = duration->count() > 0;
    o->has_requests = requests->count() > 0;
    o->Validate();
    std::unique_ptr<std::FILE, int (*)(std::FILE*)> records(nullptr, &std::fclose);
    if (!o->records.empty()) {
      records.reset(std::fopen(o->records.c_str(), "w"));
      if (!records)
        throw BadInput("--records {}: cannot write it ({})", o->records, std::strerror(errno));
    }
    auto control = std::make_shared<StopControl>();
    WatchStopSignals(control);
    const DeclaredModel model = FetchMetadata(*o);
    LoadRun run(*o, model, BuildRequest(*o, model), records.get(), control);
    const Summary summary = run.Run();
    PrintSummary(*o, summary, global.json);
  });
}

}  // namespace scission::cli
