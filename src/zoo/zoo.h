// The model zoo: torchvision architectures exported to ONNX by tools/export_zoo.py (embedded in
// the binary at build time and run with Debian's python3) and cached under $SCISSION_HOME/models.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace scission::zoo {

struct ZooEntry {
  std::string name;
  int input_size = 224;  // input is [1, 3, size, size] float32
  bool in_scission_paper = false;
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
