// libFuzzer target: loading, checking and analysing arbitrary bytes as an ONNX model must end in a
// model or a scission::Error, never a crash.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "common/error.h"
#include "graph/analysis.h"
#include "graph/model.h"
#include "graph/segment.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  try {
    auto model = scission::graph::ParseModel(bytes, "fuzz.onnx");
    auto analysis = scission::graph::Analyze(model.proto);
    const int blocks = static_cast<int>(analysis.blocks.size());
    if (blocks > 0) {
      scission::graph::ExtractSegment(model.proto, analysis, 0, 0);
      scission::graph::ExtractSegment(model.proto, analysis, blocks - 1, blocks - 1);
    }
  } catch (const scission::Error&) {
  }
  return 0;
}
