#include "deploy/runner.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>

#include <fmt/ranges.h>

#include "codec/codec.h"
#include "common/error.h"
#include "common/files.h"
#include "deploy/pipeline.h"
#include "profile/codecs.h"
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
  PipelineOptions po;
  po.plan_doc = o.plan_doc;
  po.workers = o.workers;
  po.threads = o.threads;
  po.inputs = o.inputs;
  po.analysis = o.analysis;
  po.db_path = o.db_path;
  po.connect = o.connect;
  Pipeline runner(std::move(po), note);
  runner.Install(plan);
  const uint64_t first_chain = runner.current_chain();
  const auto& input = runner.default_inputs();

  for (int i = 0; i < o.warmup; ++i) {
    auto m = runner.Infer(input, 1000000 + static_cast<uint64_t>(i), o.request_timeout_ms);
    if (!m.ok) throw BadInput("warm-up request failed: {}", m.error);
  }
  RunSummary summary;
  summary.plan = plan;
  summary.requests = o.requests;
  std::vector<ChainResult> results(static_cast<size_t>(o.requests));
  std::atomic<int> next{0};
  std::mutex replan_mutex;
  // With a lossy hop, one answer's outputs are kept to measure what the codecs cost the model.
  const bool lossy = std::any_of(plan.hops.begin(), plan.hops.end(), [](const plan::PlannedHop& h) {
    return codec::Get(h.codec, "plan").lossy();
  });
  std::mutex kept_mutex;
  std::vector<Tensor> kept_outputs;
  auto worker = [&] {
    while (true) {
      int i = next++;
      if (i >= o.requests) return;
      auto m = runner.Infer(input, static_cast<uint64_t>(i), o.request_timeout_ms);
      if (!m.ok && o.fallback_replan) {
        std::lock_guard<std::mutex> lock(replan_mutex);
        try {
          if (runner.ReplanWithoutDeadWorkers()) ++summary.replans;
        } catch (const Error& e) {
          note(fmt::format("re-planning failed: {}", e.what()));
        }
        auto retry = runner.Infer(input, static_cast<uint64_t>(i), o.request_timeout_ms);
        if (retry.ok) m = std::move(retry);
      }
      if (lossy && m.ok && m.chain == first_chain) {
        std::lock_guard<std::mutex> lock(kept_mutex);
        if (kept_outputs.empty()) kept_outputs = std::move(m.outputs);
      }
      m.outputs.clear();  // only the timings are kept
      results[static_cast<size_t>(i)] = std::move(m);
    }
  };
  auto start = Clock::now();
  std::vector<std::thread> threads;
  for (int t = 0; t < o.concurrency; ++t) threads.emplace_back(worker);
  for (auto& t : threads) t.join();
  summary.wall_ms = Ms(start);
  summary.replanned = runner.replanned();

  // Per-stage/hop statistics over successful requests of the first chain's shape.
  const size_t stages = plan.stages.size();
  std::vector<std::vector<double>> stage_samples(stages), hop_samples(stages > 0 ? stages - 1 : 0);
  std::vector<std::vector<double>> encode_samples(hop_samples.size()),
      decode_samples(hop_samples.size());
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
    if (m.hop_encode_ms.size() == hop_samples.size() &&
        m.hop_decode_ms.size() == hop_samples.size())
      for (size_t h = 0; h < hop_samples.size(); ++h) {
        encode_samples[h].push_back(m.hop_encode_ms[h]);
        decode_samples[h].push_back(m.hop_decode_ms[h]);
      }
  }
  for (size_t s = 0; s < stages; ++s)
    summary.stages.push_back(
        Summarize(plan.stages[s].resource, plan.stages[s].compute_ms, stage_samples[s]));
  for (size_t h = 0; h < hop_samples.size() && h < plan.hops.size(); ++h) {
    const auto& hop = plan.hops[h];
    StageSummary x = Summarize(fmt::format("{}->{}", hop.from, hop.to), hop.ms, hop_samples[h]);
    x.codec = hop.codec;
    x.bytes = hop.bytes;
    x.predicted_encode_ms = hop.encode_ms;
    x.predicted_decode_ms = hop.decode_ms;
    if (!encode_samples[h].empty()) x.encode_ms = profile::Median(encode_samples[h]);
    if (!decode_samples[h].empty()) x.decode_ms = profile::Median(decode_samples[h]);
    summary.hops.push_back(std::move(x));
  }
  summary.total = Summarize("total", plan.latency_ms, summary.latencies_ms);
  summary.throughput_per_s = summary.wall_ms > 0 ? 1000.0 * summary.ok / summary.wall_ms : 0;
  summary.predicted_throughput_per_s = plan.bottleneck_ms > 0 ? 1000.0 / plan.bottleneck_ms : 0;
  if (!kept_outputs.empty()) {
    // The whole model here (the pipeline's own copy: hash-checked, external data inlined), on the
    // input every request sent: the exact outputs. A failure costs the measurement, not the run.
    try {
      runtime::SessionOptions session;
      session.threads = o.threads;
      auto whole = runtime::CreateBackend(runtime::kDefaultBackend)
                       ->Prepare(runner.model().proto.SerializeAsString(), session, "whole model");
      profile::FidelityAccumulator fidelity;
      fidelity.Add(runtime::RunOnce(*whole, input), kept_outputs);
      profile::CodecMeasurement m;
      fidelity.Fill(m);
      summary.output_rel_l2 = m.rel_l2_error;
      summary.output_max_abs = m.max_abs_error;
      summary.output_top1 = m.top1_agreement;
    } catch (const Error& e) {
      note(fmt::format("the output error of the lossy codecs was not measured: {}", e.what()));
    }
  }
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
  for (const auto& x : s.hops) {
    auto hop = row(x);
    hop["codec"] = x.codec;
    hop["bytes"] = x.bytes;
    hop["predicted_encode_ms"] = x.predicted_encode_ms;
    hop["encode_ms"] = x.encode_ms;
    hop["predicted_decode_ms"] = x.predicted_decode_ms;
    hop["decode_ms"] = x.decode_ms;
    doc["hops"].push_back(std::move(hop));
  }
  doc["total"] = row(s.total);
  doc["wall_ms"] = s.wall_ms;
  doc["throughput_per_s"] = s.throughput_per_s;
  doc["predicted_throughput_per_s"] = s.predicted_throughput_per_s;
  doc["latencies_ms"] = s.latencies_ms;
  if (s.output_rel_l2 >= 0)
    doc["measured_output_error"] = {
        {"predicted_rel_l2", s.plan.output_error},
        {"rel_l2", s.output_rel_l2},
        {"max_abs", s.output_max_abs},
        {"top1_agreement",
         s.output_top1 >= 0 ? nlohmann::ordered_json(s.output_top1) : nlohmann::ordered_json()}};
  return doc;
}

}  // namespace scission::deploy
