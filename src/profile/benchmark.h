// Block benchmark: the whole model, then every block fed with the real output of the block before,
// all timed with the one harness. Also checks that the chain of blocks reproduces the whole model.
#pragma once

#include <string>
#include <vector>

#include "graph/analysis.h"
#include "graph/model.h"
#include "profile/harness.h"
#include "runtime/backend.h"

namespace scission::profile {

struct BenchmarkOptions {
  HarnessOptions harness;
  runtime::SessionOptions session;
  std::string backend = runtime::kDefaultBackend;
  uint64_t seed = 1;           // for the random model input when `inputs` is empty
  std::vector<Tensor> inputs;  // the model's inputs (ResolveInputs), in its input order
  void Validate() const;
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
  std::vector<BlockProfile> blocks;
  double sum_block_median_ms = 0;
  double setup_ms = 0;  // all extraction and session creation
  double wall_ms = 0;   // the whole benchmark, setup included
  // Chained-output check (CompareOutputs: each output within a tolerance for its dtype, see
  // DESIGN.md "Chain check"); the worst output's difference and tolerance.
  double chain_max_abs_diff = 0;
  double chain_tolerance = 0;
  bool chain_ok = false;
  double ratio() const {
    return whole.stats.median > 0 ? sum_block_median_ms / whole.stats.median : 0;
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

ModelBenchmark BenchmarkModel(const graph::LoadedModel& model, const graph::GraphAnalysis& analysis,
                              const BenchmarkOptions& options, BenchmarkListener* listener);

// Runs the model as a chain of segments (inclusive block ranges covering 0..n-1 in order), each
// in its own session, feeding each segment the previous one's outputs. Returns the final outputs.
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

}  // namespace scission::profile
