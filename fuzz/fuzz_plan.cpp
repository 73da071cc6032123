// libFuzzer target: a plan document (`scission plan --json` output, read back by `run` and
// `serve`) must turn into a checked PlanDocument or a scission::Error, never a crash.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "plan/document.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto doc = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return 0;
  try {
    auto plan = scission::plan::PlanDocumentFromJson(doc, "fuzz.json");
    // A document that passed must describe contiguous stages covering every block.
    for (const auto& run : plan.plans)
      if (run.stages.empty() || run.stages.front().first_block != 0 ||
          run.stages.back().last_block != plan.blocks - 1)
        __builtin_trap();
    scission::plan::ToJson(plan).dump();
  } catch (const scission::Error&) {
  }
  return 0;
}
