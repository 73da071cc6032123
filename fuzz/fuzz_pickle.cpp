// libFuzzer target: the Scission .dat reader must refuse or accept any bytes without crashing,
// leaking or executing anything.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "common/error.h"
#include "store/scission_data.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  try {
    scission::store::ParseScissionBenchmark(bytes, "edge-fuzz.dat", "fuzz");
  } catch (const scission::Error&) {
  }
  try {
    scission::store::ParseNetworkCsv(bytes, "fuzz.csv");
  } catch (const scission::Error&) {
  }
  return 0;
}
