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
  // Checked, with no external data left (tensor data that lived in a side file has been read into
  // raw_data, so nothing downstream touches the file system), nodes of every graph in
  // topological order and opset imports that no node uses dropped. With inferred value_info
  // when `onnx_checked`.
  onnx::ModelProto proto;
  // The ONNX checker and the ONNX library's shape inference ran: the library knows the model's
  // IR version, every domain at its imported version and every operator. Otherwise (newer
  // opsets, com.microsoft and other contrib domains, unknown operators) only Scission's own
  // checks ran, and ONNX Runtime must accept the model (profile::ValidateWithRuntime).
  bool onnx_checked = false;
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

// Oldest default-domain opset accepted. There is no newest: ONNX Runtime decides.
int MinSupportedOpset();
// Newest default-domain opset the ONNX library's checker and shape inference know.
int OnnxLibraryMaxOpset();
// Deepest subgraph nesting accepted (If/Loop/Scan bodies inside bodies; the main graph is 0).
// Bounds the recursion of the ONNX checker, shape inference, our analysis and ONNX Runtime.
int MaxSubgraphDepth();

// Reads, parses, sorts the nodes, checks (Scission's own checks, including that the graph can be
// analyzed into blocks, plus the ONNX checker and shape inference where the ONNX library knows
// the model: see `onnx_checked`). Throws BadInput "<path>: <what>". Does not create an ONNX
// Runtime session: callers that run the model validate it with profile::OpenModel.
LoadedModel LoadModel(const std::string& path,
                      ExternalData external = ExternalData::kFromModelDirectory);
// Same, from bytes already in memory (the worker and the fuzzer use this). External data is
// always refused: bytes have no directory that could hold it.
LoadedModel ParseModel(std::string_view bytes, const std::string& label);

// Runs the ONNX checker on a model built in memory (segments); BadInput with the label on failure.
// Only meaningful where KnownToOnnxLibrary(model).
void CheckModel(const onnx::ModelProto& model, const std::string& label);
// Whether the ONNX library knows the model's IR version, every domain at its imported version
// and every operator (main graph and subgraphs), so its checker and shape inference apply.
bool KnownToOnnxLibrary(const onnx::ModelProto& model);
// ONNX shape inference (with data propagation) into the model's value_info; BadInput with the
// label on failure. Only meaningful where KnownToOnnxLibrary(model).
void InferShapes(onnx::ModelProto& model, const std::string& label);

}  // namespace scission::graph
