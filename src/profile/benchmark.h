// Block benchmark: the whole model, then every block fed with the real output of the block before,
// all timed with the one harness. Also checks that the chain of blocks reproduces the whole model.
#pragma once

#include <string>
#include <vector>

#include "graph/analysis.h"
#include "graph/model.h"
#include "profile/codecs.h"
#include "profile/harness.h"
#include "runtime/backend.h"

namespace scission::profile {

struct BenchmarkOptions {
  HarnessOptions harness;
  runtime::SessionOptions session;
  std::string backend = runtime::kDefaultBackend;
  uint64_t seed = 1;           // for the random model input when `inputs` is empty
  std::vector<Tensor> inputs;  // the model's inputs (ResolveInputs), in its input order
  bool chain_check = true;     // false: --no-chain-check (the run records that it was skipped)
  // Also time blocks 0..n-1 as one segment (ModelBenchmark::whole_segment). Workers skip it:
  // their replies do not carry it.
  bool whole_segment = true;
  // Codecs to measure at every block boundary (profile/codecs.h); empty: none. Timed on `inputs`
  // (codec_repeats runs each); lossy codecs' fidelity over `inputs` and every set in
  // `fidelity_inputs` (each in the model's input order, like `inputs`).
  std::vector<std::string> codecs;
  int codec_repeats = 3;
  std::vector<std::vector<Tensor>> fidelity_inputs;
  void Validate() const;
};

// Whether the chain of blocks reproduced the whole model (DESIGN.md "Chain check").
enum class ChainCheckStatus { kSkipped, kPassed, kFailed };
std::string ChainCheckStatusName(ChainCheckStatus status);  // "skipped", "passed", "failed"

struct ChainCheck {
  ChainCheckStatus status = ChainCheckStatus::kSkipped;
  // The chain's final outputs against the whole model's (CompareOutputs: each output within a
  // tolerance for its dtype); the worst output's difference and tolerance.
  double max_abs_diff = 0;
  double tolerance = 0;
  // The first block one of whose outputs differs from the whole model's value of the same tensor
  // (read from one run of the whole model with every block boundary exposed); -1 when none.
  int first_diverging_block = -1;
  std::string diverging_tensor;
  double diverging_max_abs_diff = 0;
  double diverging_tolerance = 0;
  std::string random_ops;  // random ops in the diverging block (why it cannot match), if any
  double check_ms = 0;     // the reference run: session creation and one run of the whole model
  bool ran() const { return status != ChainCheckStatus::kSkipped; }
  bool failed() const { return status == ChainCheckStatus::kFailed; }
};

struct BlockProfile {
  int index = 0;
  double setup_ms = 0;  // segment extraction + session creation
  Timing timing;
  int64_t output_bytes = 0;   // actual bytes of the block's output tensors
  std::string output_shapes;  // their actual shapes, "[1,64,56,56];[1,32,8,8]"
};

struct ModelBenchmark {
  runtime::Provenance provenance;
  double whole_setup_ms = 0;
  Timing whole;
  int64_t whole_output_bytes = 0;
  // The chain as one segment, blocks 0..n-1: what a plan that keeps every block on one machine
  // runs (deploy always runs segments). It differs from the model file where the file leaves
  // dimensions dynamic (segments carry the profile's static shapes) and so is the fair whole to
  // hold the sum of the blocks against (DESIGN.md "Sum of blocks against the whole").
  double whole_segment_setup_ms = 0;
  Timing whole_segment;
  std::vector<BlockProfile> blocks;
  double sum_block_median_ms = 0;
  double setup_ms = 0;  // all extraction and session creation
  double wall_ms = 0;   // the whole benchmark, setup and chain check included
  ChainCheck chain;
  std::vector<CodecMeasurement> codecs;  // by boundary, then in options.codecs order
  double codec_ms = 0;                   // time spent measuring them
  double ratio() const {
    return whole.stats.median > 0 ? sum_block_median_ms / whole.stats.median : 0;
  }
  double segment_ratio() const {
    return whole_segment.stats.median > 0 ? sum_block_median_ms / whole_segment.stats.median : 0;
  }
};

// Progress callbacks; the CLI draws a progress bar, tests may record calls.
class BenchmarkListener {
 public:
  virtual ~BenchmarkListener() = default;
  virtual void OnStart(int /*blocks*/) {}
  virtual void OnWholeModelDone(const Timing& /*timing*/) {}
  virtual void OnBlockDone(const BlockProfile& /*block*/, int /*total*/) {}
};

// Times the whole model and every block and, unless options.chain_check is false, checks the
// chain. A failed check is recorded, not thrown: callers that store runs must refuse it
// (ThrowIfChainCheckFailed) so that no measurement of blocks that compute something else is kept.
ModelBenchmark BenchmarkModel(const graph::LoadedModel& model, const graph::GraphAnalysis& analysis,
                              const BenchmarkOptions& options, BenchmarkListener* listener);

// Internal error (exit 1) naming the first diverging block, its tensor, the difference and the
// tolerance, and --no-chain-check; nothing when the check passed or was skipped.
void ThrowIfChainCheckFailed(const ModelBenchmark& result, const std::string& label);

// Runs the model as a chain of segments (inclusive block ranges covering 0..n-1 in order), each
// in its own session, feeding each segment the previous one's outputs. Returns the final outputs,
// in the model's output order.
std::vector<Tensor> RunSegments(const graph::LoadedModel& model,
                                const graph::GraphAnalysis& analysis,
                                const std::vector<std::pair<int, int>>& ranges,
                                const std::vector<Tensor>& inputs, runtime::Backend& backend,
                                const runtime::SessionOptions& options = {});

// Max abs difference and tolerance between two output lists (same names/order).
struct OutputComparison {
  double max_abs_diff = 0;
  double tolerance = 0;
  bool ok = false;
};
OutputComparison CompareOutputs(const std::vector<Tensor>& expected,
                                const std::vector<Tensor>& actual);
// One tensor: floats within rel·max|expected| + abs for their dtype (NaN equal only to NaN at
// the same place, infinities only to the same infinity); everything else byte for byte.
OutputComparison CompareTensor(const Tensor& expected, const Tensor& actual);

}  // namespace scission::profile
