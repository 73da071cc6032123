#include <algorithm>
#include <bit>
#include <map>
#include <mutex>
#include <random>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <unistd.h>

#include <fstream>

#include "common/error.h"
#include "common/half.h"
#include "runtime/backend.h"
#include "runtime/onnxruntime_backend.h"

namespace scission::runtime {

namespace {
// The largest input MakeRandomInput builds. A model declares its input shape; without a bound a
// shape such as [1, 3, 100000, 100000] asks for 120 GB and the process dies in the allocator.
constexpr int64_t kMaxRandomInputBytes = int64_t{2} << 30;  // 2 GiB

std::map<std::string, BackendFactory>& Registry() {
  static std::map<std::string, BackendFactory> registry;
  return registry;
}
std::once_flag builtins_once;
void RegisterBuiltins() {
  std::call_once(builtins_once, [] { RegisterOnnxRuntimeBackend(); });
}
}  // namespace

void SessionOptions::Validate() const {
  if (threads < 0 || threads > 1024) throw BadInput("--threads must be 0..1024, got {}", threads);
}

void RegisterBackend(const std::string& name, BackendFactory factory) {
  Registry()[name] = std::move(factory);
}

std::unique_ptr<Backend> CreateBackend(const std::string& name) {
  RegisterBuiltins();
  auto it = Registry().find(name);
  if (it == Registry().end())
    throw BadInput("unknown backend '{}' (known: {})", name, fmt::join(BackendNames(), ", "));
  return it->second();
}

std::vector<std::string> BackendNames() {
  RegisterBuiltins();
  std::vector<std::string> names;
  for (const auto& [name, factory] : Registry()) names.push_back(name);
  return names;
}

std::vector<Tensor> RunOnce(Session& session, const std::vector<Tensor>& inputs) {
  session.BindInputs(inputs);
  session.Run();
  return session.FetchOutputs();
}

Tensor MakeRandomInput(const TensorSpec& spec, uint64_t seed) {
  Tensor tensor;
  tensor.spec = spec;
  for (auto& d : tensor.spec.shape)
    if (d < 0) d = 1;
  int64_t bytes = tensor.spec.bytes();
  if (bytes == kSizeTooLarge || bytes > kMaxRandomInputBytes)
    throw BadInput(
        "input '{}' ({} {}) needs {} bytes; Scission generates inputs of at most 2 GiB ({} bytes)",
        spec.name, DTypeName(spec.dtype), ShapeString(tensor.spec.shape),
        bytes == kSizeTooLarge ? std::string("more than 2^63") : std::to_string(bytes),
        kMaxRandomInputBytes);
  if (bytes < 0)
    throw BadInput("input '{}' has type {} which Scission cannot feed", spec.name,
                   DTypeName(spec.dtype));
  tensor.data.assign(static_cast<size_t>(bytes), 0);
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> dist(0.0f, 1.0f);
  const int64_t count = bytes / static_cast<int64_t>(std::max<size_t>(DTypeSize(spec.dtype), 1));
  auto fill = [&](auto* values, auto convert) {
    for (int64_t i = 0; i < count; ++i) values[i] = convert(dist(rng));
  };
  switch (spec.dtype) {
    case DType::kFloat:
      fill(reinterpret_cast<float*>(tensor.data.data()), [](float v) { return v; });
      break;
    case DType::kDouble:
      fill(reinterpret_cast<double*>(tensor.data.data()),
           [](float v) { return static_cast<double>(v); });
      break;
    case DType::kFloat16:
      fill(reinterpret_cast<uint16_t*>(tensor.data.data()), FloatToHalf);
      break;
    case DType::kBfloat16:
      fill(reinterpret_cast<uint16_t*>(tensor.data.data()), FloatToBfloat16);
      break;
    default:
      break;  // integers 0, bools false
  }
  return tensor;
}

std::string CpuModel() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) == 0 || line.rfind("Model", 0) == 0) {
      auto colon = line.find(':');
      if (colon != std::string::npos) {
        auto value = line.substr(colon + 1);
        value.erase(0, value.find_first_not_of(' '));
        return value;
      }
    }
  }
  return "unknown";
}

std::string HostName() {
  char name[256] = {};
  if (gethostname(name, sizeof(name) - 1) != 0) return "unknown";
  return name;
}

}  // namespace scission::runtime
