// The ONNX Runtime backend ("onnxruntime"): CPU execution provider, sequential execution.
#pragma once

#include <string>

namespace scission::runtime {

void RegisterOnnxRuntimeBackend();
// Version string of the loaded ONNX Runtime library, e.g. "1.30.0".
std::string OnnxRuntimeVersion();

}  // namespace scission::runtime
