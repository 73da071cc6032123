// One plan deployed across workers, ready for requests: the first tier's segment runs in this
// process, the cut tensors go to the next tier's worker, which forwards worker to worker, and the
// model's outputs come back along the chain. Shared by `scission run` (measurement) and
// `scission serve` (an inference service). Install() is make-before-break: the new chain's
// segments are loaded first, requests already running finish on the old chain, which releases its
// segments when the last of them is done.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "common/tensor.h"
#include "deploy/wire.h"
#include "graph/analysis.h"
#include "graph/model.h"
#include "plan/document.h"
#include "profile/inputs.h"
#include "runtime/backend.h"

namespace scission::deploy {

struct PipelineOptions {
  plan::PlanDocument plan_doc;                 // what `scission plan --json` printed
  std::map<std::string, std::string> workers;  // resource -> host:port
  int threads = 0;  // intra-op threads of the local (first-tier) segment; workers use their own
  // Input values (--input); the shapes are the plan's profile's (a --shape must agree with them).
  profile::InputOptions inputs;
  graph::AnalysisOptions analysis;  // --max-cut-tensors: as the plan's profile was benchmarked
  std::string db_path;              // profiles and links for re-plans
  ConnectOptions connect;
};

// One request through the chain.
struct ChainResult {
  bool ok = false;
  grpc::StatusCode code = grpc::StatusCode::OK;  // of the failure, when !ok
  std::string error;
  double total_ms = 0;
  std::vector<double> stage_ms;  // per stage (compute)
  std::vector<double> hop_ms;    // per hop (transfer, as the caller of each hop sees it)
  // Per hop: the sender's encoding into the hop's codec and the receiver's decoding, both inside
  // hop_ms; and this process's decoding of the outputs that came back.
  std::vector<double> hop_encode_ms, hop_decode_ms;
  double return_decode_ms = 0;
  std::vector<Tensor> outputs;  // the model's outputs, in the model's order
  uint64_t chain = 0;           // which installed chain answered (1, 2, ...)
  plan::PlannedRun plan;        // that chain's plan (the timings above are its stages and hops)
};

class Pipeline {
 public:
  using NoteFn = std::function<void(const std::string&)>;
  // Loads the model, checks it against the plan document (hash, blocks), resolves the inputs.
  Pipeline(PipelineOptions options, NoteFn note);
  ~Pipeline();

  // Makes `plan` the chain new requests take: a staged chain when one is that plan (and its
  // workers answer), else every segment is loaded first. With `keep_previous`, the chain it
  // replaces is kept loaded (the "left" slot) instead of being released, so a switch back costs no
  // load. True when a staged chain was used.
  bool Install(const plan::PlannedRun& plan, bool keep_previous = false);
  // Loads every segment of `plan` without making it current (the "staged" slot), so a later
  // Install of it is immediate; the chain staged before is released once unused.
  void Stage(const plan::PlannedRun& plan);
  // PlanKey of the chains kept loaded besides the current one: left, staged (empty: none).
  std::vector<std::string> staged_layouts() const;
  // Runs `inputs` (the model's inputs in its order, at the profile's shapes) through the current
  // chain. Thread-safe.
  ChainResult Infer(const std::vector<Tensor>& inputs, uint64_t request_id, int timeout_ms);
  // Re-plans without the workers that do not answer, under the plan document's own request, so
  // privacy, criteria, caps, statistic, objective and the return hop all still hold. False when
  // no plan satisfies them over what is left (or nothing has died).
  bool ReplanWithoutDeadWorkers();

  // Runs blocks first..last once on `resource`'s worker with inputs the worker makes (a compute
  // probe: no activation crosses the link) and returns its compute ms; for the plan's source
  // resource, in this process. The probe segment stays loaded for the next probe of the same
  // range; one per resource. Error when the worker fails.
  double ProbeCompute(const std::string& resource, int first_block, int last_block, int timeout_ms);

  plan::PlannedRun current_plan() const;
  uint64_t current_chain() const;
  std::vector<plan::PlannedRun> replanned() const;
  // The inputs generated or read (--input) at the profile's shapes.
  const std::vector<Tensor>& default_inputs() const { return input_; }
  const std::vector<TensorSpec>& input_specs() const { return input_specs_; }
  // The model's outputs (dimensions unknown before a run are -1).
  const std::vector<TensorSpec>& output_specs() const { return output_specs_; }
  const graph::LoadedModel& model() const { return loaded_; }
  const PipelineOptions& options() const { return o_; }

 private:
  struct Chain;
  std::shared_ptr<Chain> Load(const plan::PlannedRun& plan);
  PipelineOptions o_;
  NoteFn note_;
  std::string partition_;
  graph::LoadedModel loaded_;
  graph::GraphAnalysis analysis_;
  std::unique_ptr<runtime::Backend> backend_;
  std::vector<Tensor> input_;
  std::vector<TensorSpec> input_specs_, output_specs_;
  mutable std::mutex mutex_;  // guards chain_, left_, staged_, chains_, replanned_, hopeless_
  std::shared_ptr<Chain> chain_;
  std::shared_ptr<Chain> left_;    // the chain Install replaced, with keep_previous
  std::shared_ptr<Chain> staged_;  // loaded by Stage
  uint64_t chains_ = 0;
  std::mutex replan_mutex_;         // one re-plan at a time
  std::set<std::string> hopeless_;  // dead workers no plan could do without
  double hopeless_at_ms_ = -1e18;
  std::vector<plan::PlannedRun> replanned_;
  struct ProbeSegment {
    int first_block = 0, last_block = -1;
    std::string id;
  };
  std::mutex probe_mutex_;
  std::map<std::string, ProbeSegment> probes_;     // resource -> its loaded probe segment
  std::unique_ptr<runtime::Session> local_probe_;  // this machine's probe segment
  std::pair<int, int> local_probe_range_{0, -1};
};

}  // namespace scission::deploy
