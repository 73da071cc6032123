#include "profile/benchmark.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <map>
#include <optional>
#include <unordered_map>
#include <unordered_set>

#include "common/error.h"
#include "common/half.h"
#include "graph/segment.h"
#include "profile/shapes.h"

namespace scission::profile {

using Clock = std::chrono::steady_clock;

void BenchmarkOptions::Validate() const {
  harness.Validate();
  session.Validate();
  for (const auto& name : codecs) codec::Get(name, "codec to measure");
  if (codec_repeats < 1 || codec_repeats > 1000)
    throw BadInput("codec repeats must be 1..1000, got {}", codec_repeats);
}

std::string ChainCheckStatusName(ChainCheckStatus status) {
  switch (status) {
    case ChainCheckStatus::kPassed:
      return "passed";
    case ChainCheckStatus::kFailed:
      return "failed";
    case ChainCheckStatus::kSkipped:
      break;
  }
  return "skipped";
}

namespace {

// Element k of a floating-point tensor as a double; nullopt for non-float types.
std::optional<double (*)(const uint8_t*)> FloatReader(DType dtype) {
  switch (dtype) {
    case DType::kFloat:
      return [](const uint8_t* p) {
        float v;
        std::memcpy(&v, p, sizeof(v));
        return static_cast<double>(v);
      };
    case DType::kDouble:
      return [](const uint8_t* p) {
        double v;
        std::memcpy(&v, p, sizeof(v));
        return v;
      };
    case DType::kFloat16:
      return [](const uint8_t* p) {
        uint16_t v;
        std::memcpy(&v, p, sizeof(v));
        return static_cast<double>(HalfToFloat(v));
      };
    case DType::kBfloat16:
      return [](const uint8_t* p) {
        uint16_t v;
        std::memcpy(&v, p, sizeof(v));
        return static_cast<double>(Bfloat16ToFloat(v));
      };
    default:
      return std::nullopt;
  }
}

}  // namespace

OutputComparison CompareTensor(const Tensor& expected, const Tensor& actual) {
  constexpr double kInfinity = std::numeric_limits<double>::infinity();
  OutputComparison c;
  c.max_abs_diff = kInfinity;
  const int64_t bytes = expected.spec.bytes();
  if (expected.spec.dtype != actual.spec.dtype || expected.spec.shape != actual.spec.shape ||
      bytes < 0 || expected.data.size() != static_cast<size_t>(bytes) ||
      actual.data.size() != expected.data.size())
    return c;
  auto read = FloatReader(expected.spec.dtype);
  if (!read) {
    c.max_abs_diff = expected.data == actual.data ? 0 : kInfinity;
    c.ok = c.max_abs_diff == 0;
    return c;
  }
  const bool half =
      expected.spec.dtype == DType::kFloat16 || expected.spec.dtype == DType::kBfloat16;
  const double relative = half ? 1e-2 : 1e-4, absolute = half ? 1e-3 : 1e-5;
  const size_t width = DTypeSize(expected.spec.dtype);
  double max_abs = 0, max_diff = 0;
  for (size_t offset = 0; offset < expected.data.size(); offset += width) {
    double e = (*read)(expected.data.data() + offset), a = (*read)(actual.data.data() + offset);
    if (std::isnan(e) || std::isnan(a)) {
      if (!(std::isnan(e) && std::isnan(a))) max_diff = kInfinity;
    } else if (std::isinf(e) || std::isinf(a)) {
      if (e != a) max_diff = kInfinity;
    } else {
      max_abs = std::max(max_abs, std::fabs(e));
      max_diff = std::max(max_diff, std::fabs(e - a));
    }
  }
  c.max_abs_diff = max_diff;
  c.tolerance = relative * max_abs + absolute;
  c.ok = max_diff <= c.tolerance;
  return c;
}

OutputComparison CompareOutputs(const std::vector<Tensor>& expected,
                                const std::vector<Tensor>& actual) {
  OutputComparison result;
  result.max_abs_diff = std::numeric_limits<double>::infinity();
  if (expected.size() != actual.size()) return result;
  // Each output against its own scale. The report shows the output furthest outside (or least
  // inside) its tolerance; a failing one always has the larger ratio.
  result = {.max_abs_diff = 0, .tolerance = 0, .ok = true};
  double worst_ratio = -1;
  for (size_t i = 0; i < expected.size(); ++i) {
    OutputComparison c = CompareTensor(expected[i], actual[i]);
    double ratio = c.max_abs_diff == 0 ? 0
                   : c.tolerance > 0   ? c.max_abs_diff / c.tolerance
                                       : std::numeric_limits<double>::infinity();
    if (ratio > worst_ratio) {
      worst_ratio = ratio;
      result.max_abs_diff = c.max_abs_diff;
      result.tolerance = c.tolerance;
    }
    result.ok = result.ok && c.ok;
  }
  return result;
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

// The whole model's value of every tensor a block outputs, from one run on `inputs` with all of
// them exposed as graph outputs. Graph inputs are left out: the chain passes them on unchanged.
std::unordered_map<std::string, Tensor> ReferenceValues(const graph::LoadedModel& model,
                                                        const graph::GraphAnalysis& analysis,
                                                        const std::vector<Tensor>& inputs,
                                                        runtime::Backend& backend,
                                                        const BenchmarkOptions& options) {
  std::unordered_set<std::string> wanted;
  for (const auto& in : analysis.inputs) wanted.insert(in.name);
  std::vector<std::string> names;
  for (const auto& block : analysis.blocks)
    for (const auto& out : block.outputs)
      if (wanted.insert(out.name).second) names.push_back(out.name);
  onnx::ModelProto exposed = ExposeTensors(model.proto, names, analysis.specs);
  auto session =
      backend.Prepare(exposed.SerializeAsString(), options.session, model.label + " (chain check)");
  CancelToken::Registration stop;
  if (options.harness.cancel)
    stop = options.harness.cancel->OnCancel([s = session.get()] { s->Terminate(); });
  std::unordered_map<std::string, Tensor> values;
  for (auto& t : runtime::RunOnce(*session, inputs)) values[t.spec.name] = std::move(t);
  return values;
}

// The first output of block `b` that differs from the reference; records it in `check`.
void CompareBlockOutputs(int b, const std::vector<Tensor>& outputs,
                         const std::unordered_map<std::string, Tensor>& reference,
                         ChainCheck& check) {
  if (check.first_diverging_block >= 0) return;
  for (const auto& t : outputs) {
    auto it = reference.find(t.spec.name);
    if (it == reference.end()) continue;
    OutputComparison c = CompareTensor(it->second, t);
    if (c.ok) continue;
    check.first_diverging_block = b;
    check.diverging_tensor = t.spec.name;
    check.diverging_max_abs_diff = c.max_abs_diff;
    check.diverging_tolerance = c.tolerance;
    return;
  }
}

// Ops whose output differs from run to run, named in a failed check's message.
std::string RandomOpsIn(const graph::BlockInfo& block) {
  std::string names;
  for (const auto& [op, count] : block.ops)
    if (op.rfind("Random", 0) == 0 || op == "Multinomial" || op == "Bernoulli")
      names += (names.empty() ? "" : ", ") + op;
  return names;
}

// The chain's final outputs against the whole model's (same order by name), and the verdict.
void CheckFinalOutputs(const std::vector<Tensor>& whole_outputs, const std::vector<Tensor>& chain,
                       const graph::GraphAnalysis& analysis, ChainCheck& check) {
  std::vector<Tensor> chain_ordered;
  for (const auto& expected : whole_outputs) {
    auto it = std::find_if(chain.begin(), chain.end(),
                           [&](const Tensor& t) { return t.spec.name == expected.spec.name; });
    if (it != chain.end()) chain_ordered.push_back(*it);
  }
  OutputComparison cmp = CompareOutputs(whole_outputs, chain_ordered);
  check.max_abs_diff = cmp.max_abs_diff;
  check.tolerance = cmp.tolerance;
  const bool passed = cmp.ok && check.first_diverging_block < 0;
  check.status = passed ? ChainCheckStatus::kPassed : ChainCheckStatus::kFailed;
  if (check.first_diverging_block >= 0)
    check.random_ops =
        RandomOpsIn(analysis.blocks[static_cast<size_t>(check.first_diverging_block)]);
}

// The graph's outputs among `carried`, in the model's own output order (a last segment lists its
// outputs in its own order).
std::vector<Tensor> InModelOutputOrder(const graph::LoadedModel& model,
                                       const std::vector<Tensor>& carried) {
  std::vector<Tensor> outputs;
  for (const auto& out : model.proto.graph().output())
    for (const auto& t : carried)
      if (t.spec.name == out.name()) {
        outputs.push_back(t);  // a copy: a graph may list one output twice
        break;
      }
  if (outputs.size() != static_cast<size_t>(model.proto.graph().output_size()))
    throw Internal("{}: the chain of segments lost a graph output", model.label);
  return outputs;
}

// Every requested codec at every boundary: bytes and times on the timing inputs, and the
// fidelity of lossy codecs over every input set, each cut's decoded tensors run through the rest
// of the chain (the blocks' sessions, kept from timing them).
std::vector<CodecMeasurement> MeasureCodecs(
    const graph::LoadedModel& model, const std::vector<std::unique_ptr<runtime::Session>>& sessions,
    const std::vector<std::vector<Tensor>>& input_sets, const BenchmarkOptions& options) {
  const int blocks = static_cast<int>(sessions.size());
  std::vector<const codec::Codec*> codecs;
  for (const auto& name : options.codecs) codecs.push_back(&codec::Get(name, "codec to measure"));
  auto run_block = [&](int b, std::vector<Tensor> carried) {
    auto& session = *sessions[static_cast<size_t>(b)];
    return runtime::RunOnce(session, MatchInputs(session, std::move(carried), b));
  };
  auto finish = [&](int from, std::vector<Tensor> carried) {
    for (int b = from; b < blocks; ++b) carried = run_block(b, std::move(carried));
    return InModelOutputOrder(model, carried);
  };
  auto check_cancel = [&] {
    if (options.harness.cancel) options.harness.cancel->ThrowIfCancelled(model.label);
  };
  std::vector<CodecMeasurement> measured;
  // fidelity[b * codecs + c]
  std::vector<FidelityAccumulator> fidelity((static_cast<size_t>(blocks) + 1) * codecs.size());
  for (size_t set = 0; set < input_sets.size(); ++set) {
    const std::vector<Tensor> exact = finish(0, input_sets[set]);
    std::vector<Tensor> carried = input_sets[set];
    for (int b = 0; b <= blocks; ++b) {
      check_cancel();
      // Lossy codecs whose decoded tensors equal an earlier codec's (fp16 and fp16+zstd) share
      // one run of the rest of the chain.
      std::vector<std::pair<std::vector<Tensor>, std::vector<Tensor>>> seen;  // decoded, final
      for (size_t c = 0; c < codecs.size(); ++c) {
        if (set == 0) {
          CodecMeasurement m = MeasureCodec(*codecs[c], carried, options.codec_repeats);
          m.boundary = b;
          measured.push_back(std::move(m));
        }
        bool lossy = std::any_of(carried.begin(), carried.end(), [&](const Tensor& t) {
          return codecs[c]->LossyFor(t.spec.dtype);
        });
        if (!lossy) continue;
        std::vector<Tensor> decoded = RoundTrip(*codecs[c], carried);
        auto same = std::find_if(seen.begin(), seen.end(), [&](const auto& s) {
          return std::equal(s.first.begin(), s.first.end(), decoded.begin(), decoded.end(),
                            [](const Tensor& x, const Tensor& y) { return x.data == y.data; });
        });
        if (same == seen.end()) {
          std::vector<Tensor> final =
              b < blocks ? finish(b, decoded) : InModelOutputOrder(model, decoded);
          seen.emplace_back(std::move(decoded), std::move(final));
          same = seen.end() - 1;
        }
        fidelity[static_cast<size_t>(b) * codecs.size() + c].Add(exact, same->second);
      }
      if (b < blocks) carried = run_block(b, std::move(carried));
    }
  }
  for (auto& m : measured) {
    size_t c = static_cast<size_t>(
        std::find(options.codecs.begin(), options.codecs.end(), m.codec) - options.codecs.begin());
    const auto& f = fidelity[static_cast<size_t>(m.boundary) * codecs.size() + c];
    if (m.max_abs_error < 0) f.Fill(m);  // lossy here: MeasureCodec left it unmeasured
  }
  return measured;
}

}  // namespace

void ThrowIfChainCheckFailed(const ModelBenchmark& result, const std::string& label) {
  const ChainCheck& c = result.chain;
  if (!c.failed()) return;
  constexpr const char* kAdvice =
      "the blocks do not compute what the whole model computes, so nothing is stored "
      "(--no-chain-check skips the check)";
  if (c.first_diverging_block < 0)
    throw Internal(
        "{}: chain check failed: the chain's outputs differ from the whole model's by {:.3g} "
        "(tolerance {:.3g}) although every block matched a second run of the whole model, which "
        "therefore does not give the same result twice; {}",
        label, c.max_abs_diff, c.tolerance, kAdvice);
  throw Internal(
      "{}: chain check failed: block {} is the first to diverge: its output '{}' differs from the "
      "whole model's by {:.3g} (tolerance {:.3g}){}; {}",
      label, c.first_diverging_block, c.diverging_tensor, c.diverging_max_abs_diff,
      c.diverging_tolerance,
      c.random_ops.empty() ? "" : " (it draws random numbers: " + c.random_ops + ")", kAdvice);
}

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
  return InModelOutputOrder(model, carried);
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
  if (!options.inputs.empty()) {
    inputs = MatchInputs(*whole, options.inputs, -1);
  } else {
    for (size_t i = 0; i < whole->inputs().size(); ++i)
      inputs.push_back(runtime::MakeRandomInput(whole->inputs()[i], options.seed + i));
  }
  std::vector<std::vector<Tensor>> input_sets = {inputs};  // for codec fidelity
  if (!options.codecs.empty())
    for (const auto& set : options.fidelity_inputs)
      input_sets.push_back(MatchInputs(*whole, set, -1));
  whole->BindInputs(inputs);
  result.whole = TimeRuns([&] { whole->Run(); }, options.harness);
  if (options.harness.cancel) options.harness.cancel->ThrowIfCancelled(model.label);
  std::vector<Tensor> whole_outputs = whole->FetchOutputs();
  for (const auto& t : whole_outputs)
    result.whole_output_bytes += static_cast<int64_t>(t.data.size());
  stop_whole = {};
  whole.reset();
  if (listener) listener->OnWholeModelDone(result.whole);

  // The chain as one segment, timed next to the whole model so that both see the same machine.
  if (options.whole_segment) {
    setup_start = Clock::now();
    auto segment = graph::ExtractSegment(model.proto, analysis, 0, blocks - 1);
    auto session = backend->Prepare(segment.model.SerializeAsString(), options.session,
                                    model.label + " blocks 0.." + std::to_string(blocks - 1));
    result.whole_segment_setup_ms = ElapsedMs(setup_start);
    std::vector<Tensor> segment_inputs = MatchInputs(*session, inputs, 0);
    session->BindInputs(segment_inputs);
    CancelToken::Registration stop;
    if (options.harness.cancel)
      stop = options.harness.cancel->OnCancel([s = session.get()] { s->Terminate(); });
    result.whole_segment = TimeRuns([&] { session->Run(); }, options.harness);
    if (options.harness.cancel) options.harness.cancel->ThrowIfCancelled(model.label);
  }

  std::unordered_map<std::string, Tensor> reference;
  if (options.chain_check) {
    const auto check_start = Clock::now();
    reference = ReferenceValues(model, analysis, inputs, *backend, options);
    if (options.harness.cancel) options.harness.cancel->ThrowIfCancelled(model.label);
    result.chain.check_ms = ElapsedMs(check_start);
  }

  // Blocks, each fed with the previous block's real output. Their sessions are kept when codecs
  // are measured afterwards (to run the rest of the chain from each cut).
  std::vector<std::unique_ptr<runtime::Session>> sessions;
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
    if (options.chain_check) CompareBlockOutputs(b, carried, reference, result.chain);
    for (const auto& t : carried) {
      profile.output_bytes += static_cast<int64_t>(t.data.size());
      profile.output_shapes +=
          (profile.output_shapes.empty() ? "" : ";") + ShapeString(t.spec.shape);
    }
    result.sum_block_median_ms += profile.timing.stats.median;
    result.setup_ms += profile.setup_ms;
    if (listener) listener->OnBlockDone(profile, blocks);
    result.blocks.push_back(std::move(profile));
    stop = {};
    if (!options.codecs.empty()) sessions.push_back(std::move(session));
  }
  result.setup_ms += result.whole_setup_ms + result.whole_segment_setup_ms;

  if (options.chain_check) CheckFinalOutputs(whole_outputs, carried, analysis, result.chain);
  if (!options.codecs.empty() && !result.chain.failed()) {
    const auto codec_start = Clock::now();
    result.codecs = MeasureCodecs(model, sessions, input_sets, options);
    result.codec_ms = ElapsedMs(codec_start);
  }
  result.wall_ms = ElapsedMs(begin);
  return result;
}

}  // namespace scission::profile
