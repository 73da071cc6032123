// libFuzzer target: loading, checking and analysing arbitrary bytes as an ONNX model must end in a
// model or a scission::Error, never a crash; the analysis of a model that loads must be
// self-consistent (a violation aborts, so the fuzzer reports it).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "common/error.h"
#include "graph/analysis.h"
#include "graph/model.h"
#include "graph/segment.h"

namespace {

// Graphs up to this size get every block extracted; larger ones the first and last only.
constexpr int kSmallGraphNodes = 64;

void Require(bool condition, const char* what) {
  if (condition) return;
  std::fprintf(stderr, "analysis invariant violated: %s\n", what);
  std::abort();
}

void CheckAnalysis(const scission::graph::GraphAnalysis& a) {
  const int n = a.positions();
  Require(n > 0 && !a.blocks.empty(), "a loaded model has positions and blocks");
  Require(static_cast<int>(a.live_count.size()) == n + 1, "live counts at 0..n");
  Require(a.boundaries.front() == 0 && a.boundaries.back() == n, "boundaries span 0..n");
  for (int p : a.single_cuts)
    Require(a.live_count[p] == 1 && scission::graph::LiveAt(a, p).size() == 1,
            "a single cut has one live tensor");
  for (const auto& block : a.blocks) {
    Require(block.begin < block.end, "blocks are not empty");
    Require(!block.outputs.empty(), "every block has an output");
    Require(static_cast<int>(block.outputs.size()) == a.live_count[block.end],
            "block outputs are the live set at its end");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  try {
    auto model = scission::graph::ParseModel(bytes, "fuzz.onnx");
    auto analysis = scission::graph::Analyze(model.proto);
    CheckAnalysis(analysis);
    scission::graph::BlockWeightBytes(model.proto, analysis);
    const int blocks = static_cast<int>(analysis.blocks.size());
    if (model.proto.graph().node_size() <= kSmallGraphNodes) {
      for (int b = 0; b < blocks; ++b) {
        auto segment = scission::graph::ExtractSegment(model.proto, analysis, b, b);
        scission::graph::CheckModel(segment.model, "fuzz segment");
      }
      scission::graph::ExtractSegment(model.proto, analysis, 0, blocks - 1);
    } else {
      scission::graph::ExtractSegment(model.proto, analysis, 0, 0);
      scission::graph::ExtractSegment(model.proto, analysis, blocks - 1, blocks - 1);
    }
  } catch (const scission::Error&) {
  }
  return 0;
}
