#include "deploy/pipeline.h"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <thread>

#include <fmt/ranges.h>

#include "codec/codec.h"
#include "common/error.h"
#include "deploy/client.h"
#include "graph/segment.h"
#include "plan/from_store.h"
#include "plan/planner.h"
#include "profile/prepared.h"

namespace scission::deploy {

using Clock = std::chrono::steady_clock;

namespace {

double Ms(Clock::time_point since) {
  return std::chrono::duration<double, std::milli>(Clock::now() - since).count();
}

double NowMs() {
  return std::chrono::duration<double, std::milli>(Clock::now().time_since_epoch()).count();
}

}  // namespace

struct Pipeline::Chain {
  uint64_t number = 0;
  plan::PlannedRun plan;
  std::unique_ptr<runtime::Session> local;  // stage 0's segment, if it runs any block
  std::unique_ptr<WorkerClient> first_remote;
  std::string first_segment_id;
  std::string first_codec = "none";  // hop 0's: how this process sends stage 1 its inputs
  // Segments this chain loaded, released when the last request using the chain is done.
  std::vector<std::pair<std::string, std::string>> loaded;  // address, segment id
  ConnectOptions connect;
  // The last request on an old chain ends here: its reply must not wait for the unloads (a dead
  // worker would hold it for the timeout), so they run on their own thread, on copies.
  ~Chain() {
    if (loaded.empty()) return;
    std::thread([loaded = std::move(loaded), quick = connect]() mutable {
      quick.timeout_ms = 2000;
      for (const auto& [address, id] : loaded) {
        try {
          WorkerClient(address, quick).UnloadSegment(id);
        } catch (const std::exception&) {
          // A dead worker has nothing loaded any more.
        }
      }
    }).detach();
  }
};

Pipeline::Pipeline(PipelineOptions options, NoteFn note)
    : o_(std::move(options)), note_(std::move(note)) {
  for (const auto& [name, address] : o_.workers) CheckAddress(address);
  const auto& model = o_.plan_doc.model;
  if (model.origin != "onnx")
    throw BadInput("plan is for imported data ({}); running it needs an ONNX model", model.key);
  if (!std::filesystem::exists(model.path))
    throw BadInput("{}: model file of the plan is missing here", model.path);
  // The plan's profile fixes the input shapes; the user may give values (--input) and may
  // restate shapes, which must then agree.
  profile::InputOptions inputs = o_.inputs;
  const auto& key = o_.plan_doc.profile;
  if (!key.input_shapes.empty()) {
    for (const auto& [name, dims] : profile::ParseShapeKey(key.input_shapes)) {
      auto given = std::find_if(inputs.shapes.begin(), inputs.shapes.end(),
                                [&](const auto& s) { return s.first == name; });
      if (given == inputs.shapes.end())
        inputs.shapes.emplace_back(name, dims);
      else if (given->second != dims)
        throw BadInput("--shape {}: the plan was made for {}={}", name, name,
                       profile::DimsText(dims));
    }
  }
  auto prepared = profile::PrepareModel(model.path, inputs, o_.analysis);
  loaded_ = std::move(prepared.model);
  if (loaded_.sha256 != model.key)
    throw BadInput("{}: file differs from the planned model (hash)", model.path);
  analysis_ = std::move(prepared.analysis);
  partition_ = prepared.partition;
  if (!key.partition.empty() && key.partition != partition_)
    throw BadInput(
        "{}: this machine cuts the model into other blocks than the plan's profile (another "
        "Scission version or --max-cut-tensors?); benchmark again",
        model.path);
  if (static_cast<int>(analysis_.blocks.size()) != o_.plan_doc.blocks)
    throw BadInput("{}: the plan has {} blocks, this model cuts into {}", model.path,
                   o_.plan_doc.blocks, analysis_.blocks.size());
  input_ = prepared.inputs.Tensors();  // before the notes: a failure is one line
  for (const auto& t : input_) input_specs_.push_back(t.spec);
  for (const auto& out : loaded_.proto.graph().output()) {
    auto it = analysis_.specs.find(out.name());
    TensorSpec spec = it != analysis_.specs.end() ? it->second : graph::SpecFromValueInfo(out);
    spec.name = out.name();
    output_specs_.push_back(std::move(spec));
  }
  for (const auto& n : prepared.inputs.notes) note_("note: " + n);
  backend_ = runtime::CreateBackend(runtime::kDefaultBackend);
}

Pipeline::~Pipeline() {
  for (const auto& [resource, probe] : probes_) {
    try {
      ConnectOptions quick = o_.connect;
      quick.timeout_ms = 2000;
      WorkerClient(o_.workers.at(resource), quick).UnloadSegment(probe.id);
    } catch (const std::exception&) {
      // Gone with its worker, or evicted.
    }
  }
}

double Pipeline::ProbeCompute(const std::string& resource, int first_block, int last_block,
                              int timeout_ms) {
  std::lock_guard<std::mutex> lock(probe_mutex_);
  auto address = o_.workers.find(resource);
  if (address == o_.workers.end()) {
    if (o_.plan_doc.plans.empty() || o_.plan_doc.plans.front().stages.empty() ||
        o_.plan_doc.plans.front().stages.front().resource != resource)
      throw BadInput("no worker address for '{}'", resource);
    // This machine: a local session of the range, run once on generated inputs.
    if (!local_probe_ || local_probe_range_ != std::make_pair(first_block, last_block)) {
      auto segment = graph::ExtractSegment(loaded_.proto, analysis_, first_block, last_block);
      local_probe_ =
          backend_->Prepare(segment.model.SerializeAsString(), {o_.threads}, "probe segment");
      local_probe_range_ = {first_block, last_block};
    }
    std::vector<Tensor> inputs;
    for (const auto& spec : local_probe_->inputs())
      inputs.push_back(runtime::MakeRandomInput(spec, 1));
    auto start = Clock::now();
    local_probe_->Infer(inputs);
    return Ms(start);
  }
  ConnectOptions connect = o_.connect;
  connect.timeout_ms = std::min(connect.timeout_ms, timeout_ms);
  WorkerClient client(address->second, connect);
  auto& probe = probes_[resource];
  auto load = [&] {
    if (!probe.id.empty()) {
      try {
        client.UnloadSegment(probe.id);
      } catch (const Error&) {
        // Already evicted.
      }
      probe.id.clear();
    }
    client.EnsureModel(o_.plan_doc.model.key, o_.plan_doc.model.path);
    auto reply = client.LoadSegment(o_.plan_doc.model.key, first_block, last_block, 0, "", "",
                                    analysis_.boundaries, input_specs_);
    probe = {first_block, last_block, reply.segment_id()};
  };
  if (probe.id.empty() || probe.first_block != first_block || probe.last_block != last_block)
    load();
  try {
    return client.ProbeSegmentMs(probe.id, timeout_ms);
  } catch (const Error& e) {
    // Evicted by the worker's segment cache: load once more.
    if (std::string(e.what()).find("is loaded here") == std::string::npos) throw;
    load();
    return client.ProbeSegmentMs(probe.id, timeout_ms);
  }
}

std::shared_ptr<Pipeline::Chain> Pipeline::Load(const plan::PlannedRun& plan) {
  auto c = std::make_shared<Chain>();
  c->plan = plan;
  c->connect = o_.connect;
  const auto& stages = plan.stages;
  if (stages.empty()) throw BadInput("plan has no stages");
  // Hop i leaves stage i (the last stage's, if any, is the return hop); its codec is applied by
  // the stage that sends it.
  auto hop_codec = [&](size_t hop) {
    return hop < plan.hops.size() ? plan.hops[hop].codec : std::string("none");
  };
  // A plan file names its codecs: unknown ones are refused here, before anything is loaded.
  for (const auto& h : plan.hops)
    codec::Get(h.codec, fmt::format("plan: hop {}->{}", h.from, h.to));
  // Remote stages from the last to the first, so each knows where to forward.
  std::string next_address, next_segment;
  for (size_t i = stages.size(); i-- > 1;) {
    const auto& s = stages[i];
    auto it = o_.workers.find(s.resource);
    if (it == o_.workers.end())
      throw BadInput("--workers has no address for resource '{}'", s.resource);
    WorkerClient client(it->second, o_.connect);
    auto info = client.Hello();
    if (info.resource != s.resource)
      note_(fmt::format("note: worker at {} calls itself '{}', the plan says '{}'", it->second,
                        info.resource, s.resource));
    if (client.EnsureModel(o_.plan_doc.model.key, o_.plan_doc.model.path))
      note_(fmt::format("sent the model to {}", s.resource));
    // Block indices are this machine's: the worker cuts where we say.
    auto reply =
        client.LoadSegment(o_.plan_doc.model.key, s.first_block, s.last_block, 0, next_address,
                           next_segment, analysis_.boundaries, input_specs_, hop_codec(i));
    c->loaded.emplace_back(it->second, reply.segment_id());
    if (reply.partition() != partition_)
      throw BadInput(
          "worker {} formed other blocks from this machine's boundaries (another Scission "
          "version?); block indices would not mean the same",
          s.resource);
    next_address = it->second;
    next_segment = reply.segment_id();
  }
  if (stages.size() > 1) {
    c->first_remote = std::make_unique<WorkerClient>(next_address, o_.connect);
    c->first_segment_id = next_segment;
    c->first_codec = hop_codec(0);
  }
  const auto& local = stages.front();
  if (local.last_block >= local.first_block) {
    auto segment =
        graph::ExtractSegment(loaded_.proto, analysis_, local.first_block, local.last_block);
    c->local = backend_->Prepare(segment.model.SerializeAsString(), {o_.threads}, "local segment");
  }
  return c;
}

bool Pipeline::Install(const plan::PlannedRun& plan, bool keep_previous) {
  const std::string layout = plan::PlanKey(plan);
  std::shared_ptr<Chain> c;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto* slot : {&left_, &staged_})
      if (!c && *slot && plan::PlanKey((*slot)->plan) == layout) c = std::move(*slot);
  }
  // A staged chain's workers may have gone since it was loaded: ask each once, briefly, and load
  // afresh when one does not answer. (A worker that restarted answers but has lost the chain's
  // segments; requests on it then fail NOT_FOUND, as on a current chain after such a restart.)
  if (c) {
    ConnectOptions quick = o_.connect;
    quick.timeout_ms = std::min(quick.timeout_ms, 1000);
    for (const auto& [address, id] : c->loaded) {
      try {
        WorkerClient(address, quick).Hello();
      } catch (const Error&) {
        c.reset();
        break;
      }
    }
  }
  const bool from_stage = c != nullptr;
  if (!c) c = Load(plan);  // a staged chain keeps its plan: requests on it may read it
  std::shared_ptr<Chain> previous;
  std::lock_guard<std::mutex> lock(mutex_);
  c->number = ++chains_;
  previous = std::move(chain_);
  chain_ = std::move(c);
  if (keep_previous && previous) std::swap(left_, previous);  // the old left one goes
  return from_stage;
}

void Pipeline::Stage(const plan::PlannedRun& plan) {
  const std::string layout = plan::PlanKey(plan);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if ((chain_ && plan::PlanKey(chain_->plan) == layout) ||
        (left_ && plan::PlanKey(left_->plan) == layout) ||
        (staged_ && plan::PlanKey(staged_->plan) == layout))
      return;
  }
  auto c = Load(plan);
  std::shared_ptr<Chain> previous;  // released outside the lock
  std::lock_guard<std::mutex> lock(mutex_);
  // A switch may have installed this plan while it loaded (loading it itself): the staged chain
  // then stays as it was, and this load is released.
  if ((chain_ && plan::PlanKey(chain_->plan) == layout) ||
      (left_ && plan::PlanKey(left_->plan) == layout)) {
    previous = std::move(c);
    return;
  }
  previous = std::move(staged_);
  staged_ = std::move(c);
}

std::vector<std::string> Pipeline::staged_layouts() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<std::string> out;
  for (const auto* slot : {&left_, &staged_})
    if (*slot) out.push_back(plan::PlanKey((*slot)->plan));
  return out;
}

ChainResult Pipeline::Infer(const std::vector<Tensor>& inputs, uint64_t request_id,
                            int timeout_ms) {
  std::shared_ptr<Chain> c;
  ChainResult m;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    c = chain_;
    if (c) m.chain = c->number;  // a staged chain is numbered anew when installed
  }
  if (!c) {
    m.code = grpc::StatusCode::UNAVAILABLE;
    m.error = "no plan is deployed";
    return m;
  }
  m.plan = c->plan;
  auto start = Clock::now();
  std::vector<Tensor> carried;
  try {
    if (c->local) {
      auto t = Clock::now();
      carried = c->local->Infer(inputs);
      m.stage_ms.push_back(Ms(t));
    } else {
      carried = inputs;
      m.stage_ms.push_back(0);
    }
  } catch (const Error& e) {
    m.code = grpc::StatusCode::INTERNAL;
    m.error = e.what();
    return m;
  }
  if (c->first_remote) {
    auto call = Clock::now();
    auto result = c->first_remote->Infer(c->first_segment_id, request_id, carried, timeout_ms,
                                         c->first_codec);
    double call_ms = Ms(call);
    if (!result.status.ok()) {
      m.code = result.status.error_code();
      m.error = fmt::format(
          "{}: {}",
          result.status.error_code() == grpc::StatusCode::UNAVAILABLE ? "unavailable" : "failed",
          OneLine(result.status.error_message()));
      return m;
    }
    const auto& timings = result.timings;
    if (timings.size() != c->plan.stages.size() - 1) {
      m.code = grpc::StatusCode::INTERNAL;
      m.error = "reply has the wrong number of stage timings";
      return m;
    }
    m.hop_ms.push_back(call_ms - timings[0].server_ms());
    m.hop_encode_ms.push_back(result.encode_ms);
    m.hop_decode_ms.push_back(timings[0].decode_ms());
    for (size_t i = 0; i < timings.size(); ++i) {
      m.stage_ms.push_back(timings[i].compute_ms());
      if (i + 1 < timings.size()) {
        m.hop_ms.push_back(timings[i].forward_ms() - timings[i + 1].server_ms());
        m.hop_encode_ms.push_back(timings[i].encode_ms());
        m.hop_decode_ms.push_back(timings[i + 1].decode_ms());
      }
    }
    m.return_decode_ms = result.decode_ms;
    carried = std::move(result.outputs);
  }
  // The model's outputs in its own order, whatever order the last segment gave them in.
  m.outputs.reserve(output_specs_.size());
  for (const auto& spec : output_specs_) {
    auto it = std::find_if(carried.begin(), carried.end(),
                           [&](const Tensor& t) { return t.spec.name == spec.name; });
    if (it == carried.end()) {
      m.code = grpc::StatusCode::INTERNAL;
      m.error = fmt::format("the chain did not return the model output '{}'", spec.name);
      m.outputs.clear();
      return m;
    }
    m.outputs.push_back(std::move(*it));
  }
  m.total_ms = Ms(start);
  m.ok = true;
  return m;
}

bool Pipeline::ReplanWithoutDeadWorkers() {
  std::lock_guard<std::mutex> replan(replan_mutex_);
  if (o_.db_path.empty()) return false;
  // While no plan is possible, look at the workers again at most once a second.
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!hopeless_.empty() && NowMs() - hopeless_at_ms_ < 1000) return false;
  }
  std::set<std::string> dead;
  for (const auto& [name, address] : o_.workers) {
    try {
      ConnectOptions quick = o_.connect;
      quick.timeout_ms = 3000;
      WorkerClient(address, quick).Hello();
    } catch (const Error&) {
      dead.insert(name);
    }
  }
  auto give_up = [&] {
    std::lock_guard<std::mutex> lock(mutex_);
    hopeless_ = dead;
    hopeless_at_ms_ = NowMs();
    return false;
  };
  // Nothing new has died since a re-plan over the same survivors found nothing: fail fast
  // instead of re-planning for every request.
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (dead.empty() || dead == hopeless_) {
      hopeless_at_ms_ = NowMs();
      return false;
    }
  }
  store::Store db(o_.db_path);
  plan::PlanRequest req = o_.plan_doc.request;
  req.top_k = 1;
  req.profile = o_.plan_doc.profile;  // the same profile: same shapes, same blocks
  if (!req.max_memory_mb.empty())
    req.block_weight_bytes = graph::BlockWeightBytes(loaded_.proto, analysis_);
  auto problem = plan::BuildProblem(db, req, nullptr);
  std::erase_if(problem.resources, [&](const plan::ResourceProfile& r) {
    return dead.count(r.name) > 0 || (r.tier > 0 && !o_.workers.count(r.name));
  });
  bool has_source = std::any_of(problem.resources.begin(), problem.resources.end(),
                                [](const auto& r) { return r.tier == 0; });
  auto plans = has_source ? plan::PlanTopK(problem) : std::vector<plan::PlanCandidate>{};
  if (plans.empty()) {
    note_(fmt::format("no plan without {} satisfies the plan's constraints; requests fail",
                      fmt::join(dead, ", ")));
    return give_up();
  }
  note_(fmt::format("re-planned without {}: {:.2f} ms predicted", fmt::join(dead, ", "),
                    plans[0].latency_ms));
  auto next = plan::ToPlannedRun(problem, plans[0], 1);
  Install(next);
  std::lock_guard<std::mutex> lock(mutex_);
  replanned_.push_back(std::move(next));
  return true;
}

plan::PlannedRun Pipeline::current_plan() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return chain_ ? chain_->plan : plan::PlannedRun{};
}

uint64_t Pipeline::current_chain() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return chain_ ? chain_->number : 0;
}

std::vector<plan::PlannedRun> Pipeline::replanned() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return replanned_;
}

}  // namespace scission::deploy
