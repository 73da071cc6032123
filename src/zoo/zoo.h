// The model zoo: torchvision architectures and a text encoder exported to ONNX by
// tools/export_zoo.py (embedded in the binary at build time and run with Debian's python3) and
// cached under $SCISSION_HOME/models.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "common/tensor.h"

namespace scission::zoo {

enum class ZooFamily {
  kTorchvision,  // float32 image [1, 3, size, size]
  kTextEncoder,  // int64 token ids [1, seq], seq dynamic
};

// The one input of a zoo model as its ONNX file declares it.
struct ZooInput {
  std::string name;
  DType dtype = DType::kFloat;
  std::vector<int64_t> shape;      // -1 marks a dynamic dimension
  std::vector<std::string> names;  // per dimension: the dynamic dimension's name, else ""
  std::string ShapeText() const;   // "[1,3,224,224]", "[1,seq]"
  bool dynamic() const;
};

struct ZooEntry {
  std::string name;
  // torchvision: the image's height and width; text encoder: the sequence length of the example
  // the export traces (the exported length stays dynamic).
  int input_size = 224;
  bool in_scission_paper = false;
  ZooFamily family = ZooFamily::kTorchvision;
  ZooInput input() const;
};

const std::vector<ZooEntry>& Entries();
std::optional<ZooEntry> Find(const std::string& name);
std::string ModelsDir();  // $SCISSION_HOME/models
std::string CachedPath(const std::string& name);
bool IsExported(const std::string& name);

// Exports `name` if it is not cached yet; returns the path. `progress` receives one-line
// messages. BadInput naming the missing Debian package when torch/torchvision are absent.
std::string Export(const std::string& name, bool force,
                   const std::function<void(const std::string&)>& progress);

// MODEL argument: an existing path (or anything ending in .onnx) is a file; a zoo name is
// exported on first use; anything else is BadInput.
std::string ResolveModel(const std::string& model,
                         const std::function<void(const std::string&)>& progress);

// The Python interpreter used for exports: $SCISSION_PYTHON, else /usr/bin/python3, else python3.
std::string PythonInterpreter();

}  // namespace scission::zoo
