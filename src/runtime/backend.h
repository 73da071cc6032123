// Execution backends behind one interface, registered by name (STYLE.md rule 6): adding a backend
// touches its own directory plus one line in registry.cpp.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/cancel.h"
#include "common/tensor.h"

namespace scission::runtime {

struct SessionOptions {
  int threads = 0;  // intra-op threads; 0 = the backend's default
  void Validate() const;
};

// Where a measurement came from; stored with every benchmark run.
struct Provenance {
  std::string backend;          // registry name, e.g. "onnxruntime"
  std::string runtime_version;  // e.g. "1.30.0"
  std::string execution_provider;
  int threads = 0;
  std::string cpu_model;
  std::string host;
  std::string build_type;
};

// One prepared model. Not thread-safe; one per thread.
class Session {
 public:
  virtual ~Session() = default;
  virtual const std::vector<TensorSpec>& inputs() const = 0;
  virtual const std::vector<TensorSpec>& outputs() const = 0;
  // Binds inputs by position (same order as inputs()); the tensors must outlive the runs.
  // Throws BadInput when a dtype or shape does not match.
  virtual void BindInputs(const std::vector<Tensor>& tensors) = 0;
  // Runs once on the bound inputs; this is the call the timing harness measures.
  virtual void Run() = 0;
  // Copies of the outputs of the last Run().
  virtual std::vector<Tensor> FetchOutputs() const = 0;
  // Checks and runs `inputs` (by position) and returns the outputs, touching no bound state, so
  // several threads may call it at once (the worker does). A cancelled `cancel` stops the run
  // (BadInput "... cancelled").
  virtual std::vector<Tensor> Infer(const std::vector<Tensor>& inputs,
                                    CancelToken* cancel = nullptr) = 0;
  // Makes the Run() in progress and every later Run() fail; thread-safe (cancellation).
  virtual void Terminate() = 0;
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string name() const = 0;
  virtual Provenance provenance(const SessionOptions& options) const = 0;
  // `label` names the model in error messages.
  virtual std::unique_ptr<Session> Prepare(std::string_view model_bytes,
                                           const SessionOptions& options,
                                           const std::string& label) = 0;
};

using BackendFactory = std::function<std::unique_ptr<Backend>()>;
void RegisterBackend(const std::string& name, BackendFactory factory);
// BadInput listing the known names when `name` is unknown.
std::unique_ptr<Backend> CreateBackend(const std::string& name);
std::vector<std::string> BackendNames();
inline constexpr const char* kDefaultBackend = "onnxruntime";

// Runs a session once and returns its outputs (convenience for checks and the worker).
std::vector<Tensor> RunOnce(Session& session, const std::vector<Tensor>& inputs);

// Deterministic pseudo-random input for a spec (floats of every width uniform in [0, 1), integers
// 0, bools false); unknown dims -> 1.
// BadInput naming the input, its shape and bytes when it would exceed 2 GiB (or its size
// overflows int64): the shape comes from the model, so it must not size an allocation unchecked.
Tensor MakeRandomInput(const TensorSpec& spec, uint64_t seed);

// CPU model name from /proc/cpuinfo and this host's name.
std::string CpuModel();
std::string HostName();

}  // namespace scission::runtime
