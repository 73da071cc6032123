#include "profile/benchmark.h"

#include <algorithm>
#include <cmath>
#include <map>

#include "common/error.h"
#include "graph/segment.h"

namespace scission::profile {

using Clock = std::chrono::steady_clock;

void BenchmarkOptions::Validate() const {
  harness.Validate();
  session.Validate();
}

OutputComparison CompareOutputs(const std::vector<Tensor>& expected,
                                const std::vector<Tensor>& actual) {
  OutputComparison c;
  if (expected.size() != actual.size()) return c;
  double max_abs = 0, max_diff = 0;
  for (size_t i = 0; i < expected.size(); ++i) {
    const auto& e = expected[i];
    const auto& a = actual[i];
    if (e.spec.dtype != a.spec.dtype || e.spec.shape != a.spec.shape) return c;
    if (e.spec.dtype == DType::kFloat) {
      const auto* ev = reinterpret_cast<const float*>(e.data.data());
      const auto* av = reinterpret_cast<const float*>(a.data.data());
      for (size_t k = 0; k < e.data.size() / 4; ++k) {
        max_abs = std::max(max_abs, static_cast<double>(std::fabs(ev[k])));
        max_diff = std::max(max_diff, static_cast<double>(std::fabs(ev[k] - av[k])));
      }
    } else if (e.data != a.data) {
      max_diff = std::numeric_limits<double>::infinity();
    }
  }
  c.max_abs_diff = max_diff;
  c.tolerance = 1e-4 * max_abs + 1e-5;
  c.ok = max_diff <= c.tolerance;
  return c;
}

namespace {

// Orders `available` to match the session's inputs by name.
std::vector<Tensor> MatchInputs(const runtime::Session& session, std::vector<Tensor> available,
                                int block) {
  std::vector<Tensor> ordered;
  for (const auto& spec : session.inputs()) {
    auto it = std::find_if(available.begin(), available.end(),
                           [&](const Tensor& t) { return t.spec.name == spec.name; });
    if (it == available.end())
      throw Internal("block {} needs '{}', which the block before did not produce", block,
                     spec.name);
    ordered.push_back(*it);
  }
  return ordered;
}

}  // namespace

std::vector<Tensor> RunSegments(const graph::LoadedModel& model,
                                const graph::GraphAnalysis& analysis,
                                const std::vector<std::pair<int, int>>& ranges,
                                const std::vector<Tensor>& inputs, runtime::Backend& backend,
                                const runtime::SessionOptions& options) {
  int expected_first = 0;
  for (const auto& [first, last] : ranges) {
    if (first != expected_first || last < first)
      throw BadInput("segment ranges must cover the blocks in order; [{}..{}] is out of place",
                     first, last);
    expected_first = last + 1;
  }
  if (expected_first != static_cast<int>(analysis.blocks.size()))
    throw BadInput("segment ranges end at block {} of {}", expected_first - 1,
                   analysis.blocks.size());
  std::vector<Tensor> carried = inputs;
  for (const auto& [first, last] : ranges) {
    auto segment = graph::ExtractSegment(model.proto, analysis, first, last);
    auto session = backend.Prepare(segment.model.SerializeAsString(), options,
                                   fmt::format("{} blocks {}..{}", model.label, first, last));
    carried = runtime::RunOnce(*session, MatchInputs(*session, std::move(carried), first));
  }
  return carried;
}

ModelBenchmark BenchmarkModel(const graph::LoadedModel& model, const graph::GraphAnalysis& analysis,
                              const BenchmarkOptions& options, BenchmarkListener* listener) {
  options.Validate();
  const auto begin = Clock::now();
  auto backend = runtime::CreateBackend(options.backend);
  ModelBenchmark result;
  result.provenance = backend->provenance(options.session);
  const int blocks = static_cast<int>(analysis.blocks.size());
  if (listener) listener->OnStart(blocks);

  // Whole model.
  auto setup_start = Clock::now();
  std::string whole_bytes = model.proto.SerializeAsString();
  auto whole = backend->Prepare(whole_bytes, options.session, model.label);
  // A cancelled benchmark also stops the Run() in progress (a model can loop for a long time).
  CancelToken::Registration stop_whole;
  if (options.harness.cancel)
    stop_whole = options.harness.cancel->OnCancel([s = whole.get()] { s->Terminate(); });
  result.whole_setup_ms = ElapsedMs(setup_start);
  std::vector<Tensor> inputs;
  for (size_t i = 0; i < whole->inputs().size(); ++i)
    inputs.push_back(runtime::MakeRandomInput(whole->inputs()[i], options.seed + i));
  whole->BindInputs(inputs);
  result.whole = TimeRuns([&] { whole->Run(); }, options.harness);
  if (options.harness.cancel) options.harness.cancel->ThrowIfCancelled(model.label);
  std::vector<Tensor> whole_outputs = whole->FetchOutputs();
  for (const auto& t : whole_outputs)
    result.whole_output_bytes += static_cast<int64_t>(t.data.size());
  stop_whole = {};
  whole.reset();
  if (listener) listener->OnWholeModelDone(result.whole);

  // Blocks, each fed with the previous block's real output.
  std::vector<Tensor> carried = inputs;
  for (int b = 0; b < blocks; ++b) {
    BlockProfile profile;
    profile.index = b;
    setup_start = Clock::now();
    auto segment = graph::ExtractSegment(model.proto, analysis, b, b);
    std::string bytes = segment.model.SerializeAsString();
    auto session =
        backend->Prepare(bytes, options.session, model.label + " block " + std::to_string(b));
    profile.setup_ms = ElapsedMs(setup_start);
    std::vector<Tensor> block_inputs = MatchInputs(*session, std::move(carried), b);
    session->BindInputs(block_inputs);
    CancelToken::Registration stop;
    if (options.harness.cancel)
      stop = options.harness.cancel->OnCancel([s = session.get()] { s->Terminate(); });
    profile.timing = TimeRuns([&] { session->Run(); }, options.harness);
    carried = session->FetchOutputs();
    for (const auto& t : carried) profile.output_bytes += static_cast<int64_t>(t.data.size());
    result.sum_block_median_ms += profile.timing.stats.median;
    result.setup_ms += profile.setup_ms;
    if (listener) listener->OnBlockDone(profile, blocks);
    result.blocks.push_back(std::move(profile));
  }
  result.setup_ms += result.whole_setup_ms;

  // The chain's final outputs must match the whole model's (same order by name).
  std::vector<Tensor> chain_ordered;
  for (const auto& expected : whole_outputs) {
    auto it = std::find_if(carried.begin(), carried.end(),
                           [&](const Tensor& t) { return t.spec.name == expected.spec.name; });
    if (it != carried.end()) chain_ordered.push_back(*it);
  }
  auto cmp = CompareOutputs(whole_outputs, chain_ordered);
  result.chain_max_abs_diff = cmp.max_abs_diff;
  result.chain_tolerance = cmp.tolerance;
  result.chain_ok = cmp.ok;
  result.wall_ms = ElapsedMs(begin);
  return result;
}

}  // namespace scission::profile
