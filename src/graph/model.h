// Loading and validating ONNX models. Pure: no runtime, no printing.
#pragma once

#include <string>
#include <string_view>

#include <onnx/onnx_pb.h>

namespace scission::graph {

struct LoadedModel {
  std::string label;   // the path (or a name) used in error messages
  std::string sha256;  // of the file's bytes: the model's identity
  size_t file_bytes = 0;
  onnx::ModelProto proto;  // checked and with inferred value_info
};

// Oldest and newest default-domain opset accepted (the newest the ONNX library knows).
int MinSupportedOpset();
int MaxSupportedOpset();

// Reads, parses, checks (ONNX checker plus Scission's own checks) and runs shape inference.
// Throws BadInput "<path>: <what>" for anything unusable.
LoadedModel LoadModel(const std::string& path);
// Same, from bytes already in memory (the worker and the fuzzer use this).
LoadedModel ParseModel(std::string_view bytes, const std::string& label);

// Runs the ONNX checker on a model built in memory (segments); BadInput with the label on failure.
void CheckModel(const onnx::ModelProto& model, const std::string& label);

}  // namespace scission::graph
