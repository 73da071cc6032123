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
  // Checked, with inferred value_info, and with no external data left: any tensor data that lived
  // in a side file has been read into raw_data, so nothing downstream touches the file system.
  onnx::ModelProto proto;
};

// Where tensor data stored outside the model ("external data") may come from.
enum class ExternalData {
  // Any tensor with external data anywhere in the model is BadInput. For bytes from the network
  // (and caches of them): ONNX Runtime would otherwise read whatever path the sender names.
  kRefuse,
  // A regular file inside the model file's own directory (relative path, no `..`, no symlink
  // leading outside), read into the tensor at load time. For model files the user names.
  kFromModelDirectory,
};

// Oldest and newest default-domain opset accepted (the newest the ONNX library knows).
int MinSupportedOpset();
int MaxSupportedOpset();
// Deepest subgraph nesting accepted (If/Loop/Scan bodies inside bodies; the main graph is 0).
// Bounds the recursion of the ONNX checker, shape inference, our analysis and ONNX Runtime.
int MaxSubgraphDepth();

// Reads, parses, checks (ONNX checker plus Scission's own checks, including that the graph can
// be analyzed into blocks) and runs shape inference. Throws BadInput "<path>: <what>".
LoadedModel LoadModel(const std::string& path,
                      ExternalData external = ExternalData::kFromModelDirectory);
// Same, from bytes already in memory (the worker and the fuzzer use this). External data is
// always refused: bytes have no directory that could hold it.
LoadedModel ParseModel(std::string_view bytes, const std::string& label);

// Runs the ONNX checker on a model built in memory (segments); BadInput with the label on failure.
void CheckModel(const onnx::ModelProto& model, const std::string& label);

}  // namespace scission::graph
