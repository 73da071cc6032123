#include "deploy/runner.h"

#include <atomic>
#include <chrono>
#include <filesystem>
#include <mutex>
#include <set>
#include <thread>

#include <fmt/ranges.h>

#include "common/error.h"
#include "common/files.h"
#include "deploy/client.h"
#include "deploy/model_cache.h"
#include "graph/analysis.h"
#include "graph/model.h"
#include "graph/segment.h"
#include "plan/from_store.h"
#include "plan/planner.h"
#include "profile/prepared.h"
#include "profile/stats.h"
#include "runtime/backend.h"

namespace scission::deploy {

using Clock = std::chrono::steady_clock;

void RunOptions::Validate() const {
  if (requests < 1) throw BadInput("--requests must be at least 1");
  if (concurrency < 1 || concurrency > 256) throw BadInput("--concurrency must be 1..256");
  if (warmup < 0) throw BadInput("--warmup must not be negative");
  if (rank < 1) throw BadInput("--rank must be at least 1");
  for (const auto& [name, address] : workers) CheckAddress(address);
}

namespace {

double Ms(Clock::time_point since) {
  return std::chrono::duration<double, std::milli>(Clock::now() - since).count();
}

struct Chain {
  plan::PlannedRun plan;
  std::unique_ptr<runtime::Session> local;  // stage 0's segment, if it runs any block
  std::unique_ptr<WorkerClient> first_remote;
  std::string first_segment_id;
  // Segments this chain loaded, released when the last request using the chain is done (a
  // re-plan installs a new chain first: make before break).
  std::vector<std::pair<std::string, std::string>> loaded;  // address, segment id
  ConnectOptions connect;
  ~Chain() {
    for (const auto& [address, id] : loaded) {
      try {
        ConnectOptions quick = connect;
        quick.timeout_ms = 2000;
        WorkerClient(address, quick).UnloadSegment(id);
      } catch (const Error&) {
        // A dead worker has nothing loaded any more.
      }
    }
  }
};

struct Measured {
  bool ok = false;
  std::string error;
  double total_ms = 0;
  std::vector<double> stage_ms;  // per stage
  std::vector<double> hop_ms;    // per hop
};

class Runner {
 public:
  Runner(const RunOptions& o, const std::function<void(const std::string&)>& note)
      : o_(o), note_(note) {
    const auto& model = o.plan_doc.model;
    model_key_ = model.key;
    model_path_ = model.path;
    if (model.origin != "onnx")
      throw BadInput("plan is for imported data ({}); `scission run` needs an ONNX model",
                     model_key_);
    if (!std::filesystem::exists(model_path_))
      throw BadInput("{}: model file of the plan is missing here", model_path_);
    // The plan's profile fixes the input shapes; the user may give values (--input) and may
    // restate shapes, which must then agree.
    profile::InputOptions inputs = o.inputs;
    const auto& key = o.plan_doc.profile;
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
    auto prepared = profile::PrepareModel(model_path_, inputs, o.analysis);
    loaded_ = std::move(prepared.model);
    if (loaded_.sha256 != model_key_)
      throw BadInput("{}: file differs from the planned model (hash)", model_path_);
    analysis_ = std::move(prepared.analysis);
    partition_ = prepared.partition;
    if (!key.partition.empty() && key.partition != partition_)
      throw BadInput(
          "{}: this machine cuts the model into other blocks than the plan's profile (another "
          "Scission version or --max-cut-tensors?); benchmark again",
          model_path_);
    if (static_cast<int>(analysis_.blocks.size()) != o.plan_doc.blocks)
      throw BadInput("{}: the plan has {} blocks, this model cuts into {}", model_path_,
                     o.plan_doc.blocks, analysis_.blocks.size());
    input_ = prepared.inputs.Tensors();  // before the notes: a failure is one line
    for (const auto& n : prepared.inputs.notes) note_("note: " + n);
    backend_ = runtime::CreateBackend(runtime::kDefaultBackend);
  }

  void Setup(const plan::PlannedRun& plan) {
    auto c = std::make_shared<Chain>();
    c->plan = plan;
    c->connect = o_.connect;
    const auto& stages = plan.stages;
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
      if (client.EnsureModel(model_key_, model_path_))
        note_(fmt::format("sent the model to {}", s.resource));
      // Block indices are this machine's: the worker cuts where we say.
      std::vector<TensorSpec> shapes;
      for (const auto& t : input_) shapes.push_back(t.spec);
      auto reply = client.LoadSegment(model_key_, s.first_block, s.last_block, 0, next_address,
                                      next_segment, analysis_.boundaries, shapes);
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
    }
    const auto& local = stages.front();
    if (local.last_block >= local.first_block) {
      auto segment =
          graph::ExtractSegment(loaded_.proto, analysis_, local.first_block, local.last_block);
      c->local =
          backend_->Prepare(segment.model.SerializeAsString(), {o_.threads}, "local segment");
    }
    std::lock_guard<std::mutex> lock(chain_mutex_);
    chain_ = std::move(c);
  }

  Measured Once(uint64_t id) {
    std::shared_ptr<Chain> c;
    {
      std::lock_guard<std::mutex> lock(chain_mutex_);
      c = chain_;
    }
    Measured m;
    auto start = Clock::now();
    std::vector<Tensor> carried = input_;
    try {
      if (c->local) {
        auto t = Clock::now();
        carried = c->local->Infer(carried);
        m.stage_ms.push_back(Ms(t));
      } else {
        m.stage_ms.push_back(0);
      }
    } catch (const Error& e) {
      m.error = e.what();
      return m;
    }
    if (c->first_remote) {
      auto call = Clock::now();
      auto result = c->first_remote->Infer(c->first_segment_id, id, carried, o_.request_timeout_ms);
      double call_ms = Ms(call);
      if (!result.status.ok()) {
        m.error = fmt::format(
            "{}: {}",
            result.status.error_code() == grpc::StatusCode::UNAVAILABLE ? "unavailable" : "failed",
            OneLine(result.status.error_message()));
        return m;
      }
      const auto& timings = result.timings;
      if (timings.size() != c->plan.stages.size() - 1) {
        m.error = "reply has the wrong number of stage timings";
        return m;
      }
      m.hop_ms.push_back(call_ms - timings[0].server_ms());
      for (size_t i = 0; i < timings.size(); ++i) {
        m.stage_ms.push_back(timings[i].compute_ms());
        if (i + 1 < timings.size())
          m.hop_ms.push_back(timings[i].forward_ms() - timings[i + 1].server_ms());
      }
    }
    m.total_ms = Ms(start);
    m.ok = true;
    return m;
  }

  // Re-plans without the workers that do not answer, under the plan document's own request, so
  // privacy, criteria, caps, statistic, objective and the return hop all still hold. False when
  // no plan satisfies them over what is left.
  bool Replan() {
    if (o_.db_path.empty()) return false;
    // While no plan is possible, look at the workers again at most once a second.
    if (!hopeless_.empty() && Ms(hopeless_since_) < 1000) return false;
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
    // Nothing new has died since a re-plan over the same survivors found nothing: fail fast
    // instead of re-planning for every request.
    if (dead.empty() || dead == hopeless_) {
      hopeless_since_ = Clock::now();
      return false;
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
      hopeless_ = dead;
      hopeless_since_ = Clock::now();
      return false;
    }
    note_(fmt::format("re-planned without {}: {:.2f} ms predicted", fmt::join(dead, ", "),
                      plans[0].latency_ms));
    auto next = plan::ToPlannedRun(problem, plans[0], 1);
    Setup(next);
    replanned_.push_back(std::move(next));
    return true;
  }

  const RunOptions& o_;
  std::function<void(const std::string&)> note_;
  std::string model_key_, model_path_, partition_;
  graph::LoadedModel loaded_;
  graph::GraphAnalysis analysis_;
  std::unique_ptr<runtime::Backend> backend_;
  std::vector<Tensor> input_;
  std::mutex chain_mutex_;
  std::shared_ptr<Chain> chain_;
  std::set<std::string> hopeless_;  // dead workers no plan could do without
  Clock::time_point hopeless_since_;
  std::vector<plan::PlannedRun> replanned_;
};

StageSummary Summarize(const std::string& name, double predicted,
                       const std::vector<double>& samples) {
  StageSummary s;
  s.name = name;
  s.predicted_ms = predicted;
  if (!samples.empty()) {
    s.median_ms = profile::Median(samples);
    s.p90_ms = profile::Percentile(samples, 0.9);
  }
  return s;
}

}  // namespace

RunSummary RunPlan(const RunOptions& o, const std::function<void(const std::string&)>& note) {
  o.Validate();
  const auto& plans = o.plan_doc.plans;
  if (o.rank > static_cast<int>(plans.size()))
    throw BadInput("--rank {}: the plan file has {} plans", o.rank, plans.size());
  const auto& plan = plans[static_cast<size_t>(o.rank - 1)];
  Runner runner(o, note);
  runner.Setup(plan);

  for (int i = 0; i < o.warmup; ++i) {
    auto m = runner.Once(1000000 + static_cast<uint64_t>(i));
    if (!m.ok) throw BadInput("warm-up request failed: {}", m.error);
  }
  RunSummary summary;
  summary.plan = plan;
  summary.requests = o.requests;
  std::vector<Measured> results(static_cast<size_t>(o.requests));
  std::atomic<int> next{0};
  std::mutex replan_mutex;
  auto worker = [&] {
    while (true) {
      int i = next++;
      if (i >= o.requests) return;
      auto m = runner.Once(static_cast<uint64_t>(i));
      if (!m.ok && o.fallback_replan) {
        std::lock_guard<std::mutex> lock(replan_mutex);
        try {
          if (runner.Replan()) ++summary.replans;
        } catch (const Error& e) {
          note(fmt::format("re-planning failed: {}", e.what()));
        }
        auto retry = runner.Once(static_cast<uint64_t>(i));
        if (retry.ok) m = retry;
      }
      results[static_cast<size_t>(i)] = std::move(m);
    }
  };
  auto start = Clock::now();
  std::vector<std::thread> threads;
  for (int t = 0; t < o.concurrency; ++t) threads.emplace_back(worker);
  for (auto& t : threads) t.join();
  summary.wall_ms = Ms(start);
  summary.replanned = runner.replanned_;

  // Per-stage/hop statistics over successful requests of the first chain's shape.
  const size_t stages = plan.stages.size();
  std::vector<std::vector<double>> stage_samples(stages), hop_samples(stages > 0 ? stages - 1 : 0);
  for (const auto& m : results) {
    if (!m.ok) {
      ++summary.failed;
      ++summary.errors[m.error];
      continue;
    }
    ++summary.ok;
    summary.latencies_ms.push_back(m.total_ms);
    if (m.stage_ms.size() == stages)
      for (size_t s = 0; s < stages; ++s) stage_samples[s].push_back(m.stage_ms[s]);
    if (m.hop_ms.size() == hop_samples.size())
      for (size_t h = 0; h < hop_samples.size(); ++h) hop_samples[h].push_back(m.hop_ms[h]);
  }
  for (size_t s = 0; s < stages; ++s)
    summary.stages.push_back(
        Summarize(plan.stages[s].resource, plan.stages[s].compute_ms, stage_samples[s]));
  for (size_t h = 0; h < hop_samples.size() && h < plan.hops.size(); ++h)
    summary.hops.push_back(Summarize(fmt::format("{}->{}", plan.hops[h].from, plan.hops[h].to),
                                     plan.hops[h].ms, hop_samples[h]));
  summary.total = Summarize("total", plan.latency_ms, summary.latencies_ms);
  summary.throughput_per_s = summary.wall_ms > 0 ? 1000.0 * summary.ok / summary.wall_ms : 0;
  summary.predicted_throughput_per_s = plan.bottleneck_ms > 0 ? 1000.0 / plan.bottleneck_ms : 0;
  return summary;
}

nlohmann::ordered_json SummaryJson(const RunSummary& s) {
  auto row = [](const StageSummary& x) {
    double error = x.median_ms > 0 ? (x.predicted_ms - x.median_ms) / x.median_ms : 0;
    return nlohmann::ordered_json{{"name", x.name},
                                  {"predicted_ms", x.predicted_ms},
                                  {"median_ms", x.median_ms},
                                  {"p90_ms", x.p90_ms},
                                  {"relative_error", error}};
  };
  nlohmann::ordered_json doc;
  doc["requests"] = s.requests;
  doc["ok"] = s.ok;
  doc["failed"] = s.failed;
  doc["replans"] = s.replans;
  doc["replanned"] = nlohmann::ordered_json::array();
  for (const auto& p : s.replanned) doc["replanned"].push_back(plan::ToJson(p));
  doc["errors"] = s.errors;
  doc["stages"] = nlohmann::ordered_json::array();
  for (const auto& x : s.stages) doc["stages"].push_back(row(x));
  doc["hops"] = nlohmann::ordered_json::array();
  for (const auto& x : s.hops) doc["hops"].push_back(row(x));
  doc["total"] = row(s.total);
  doc["wall_ms"] = s.wall_ms;
  doc["throughput_per_s"] = s.throughput_per_s;
  doc["predicted_throughput_per_s"] = s.predicted_throughput_per_s;
  doc["latencies_ms"] = s.latencies_ms;
  return doc;
}

}  // namespace scission::deploy
