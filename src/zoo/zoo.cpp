#include "zoo/zoo.h"

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "common/error.h"
#include "common/files.h"
#include "zoo/export_script.h"

namespace scission::zoo {

namespace fs = std::filesystem;

const std::vector<ZooEntry>& Entries() {
  static const std::vector<ZooEntry> entries = {
      {"vgg16", 224, true},
      {"vgg19", 224, true},
      {"resnet50", 224, true},
      {"resnet101", 224, true},
      {"resnet152", 224, true},
      {"inception_v3", 299, true},
      {"mobilenet_v2", 224, true},
      {"densenet121", 224, true},
      {"densenet169", 224, true},
      {"densenet201", 224, true},
      {"mobilenet_v3_large", 224, false},
      {"efficientnet_b0", 224, false},
      {"resnet18", 224, false},
      {"squeezenet1_1", 224, false},
      {"googlenet", 224, false},
      {"regnet_y_400mf", 224, false},
      {"convnext_tiny", 224, false},
      {"vit_b_16", 224, false},
      {"alexnet", 224, false},
      {"shufflenet_v2_x1_0", 224, false},
      {"text_encoder", 128, false, ZooFamily::kTextEncoder},
  };
  return entries;
}

ZooInput ZooEntry::input() const {
  if (family == ZooFamily::kTextEncoder) return {"input_ids", DType::kInt64, {1, -1}, {"", "seq"}};
  return {"input", DType::kFloat, {1, 3, input_size, input_size}, {"", "", "", ""}};
}

std::string ZooInput::ShapeText() const {
  std::string text = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i > 0) text += ",";
    text += shape[i] < 0 ? names[i] : std::to_string(shape[i]);
  }
  return text + "]";
}

bool ZooInput::dynamic() const {
  for (int64_t d : shape)
    if (d < 0) return true;
  return false;
}

std::optional<ZooEntry> Find(const std::string& name) {
  for (const auto& e : Entries())
    if (e.name == name) return e;
  return std::nullopt;
}

std::string ModelsDir() { return ScissionHome() + "/models"; }
std::string CachedPath(const std::string& name) { return ModelsDir() + "/" + name + ".onnx"; }
bool IsExported(const std::string& name) {
  std::error_code ec;
  return fs::is_regular_file(CachedPath(name), ec) && fs::file_size(CachedPath(name), ec) > 0;
}

std::string PythonInterpreter() {
  const char* env = std::getenv("SCISSION_PYTHON");
  if (env && *env) return env;
  if (::access("/usr/bin/python3", X_OK) == 0) return "/usr/bin/python3";
  return "python3";
}

namespace {

std::string ShellQuote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'')
      out += "'\\''";
    else
      out.push_back(c);
  }
  return out + "'";
}

}  // namespace

std::string Export(const std::string& name, bool force,
                   const std::function<void(const std::string&)>& progress) {
  auto entry = Find(name);
  if (!entry) throw BadInput("'{}' is not a zoo model (see `scission models`)", name);
  std::string path = CachedPath(name);
  if (!force && IsExported(name)) return path;

  fs::create_directories(ModelsDir());
  std::string script = ModelsDir() + "/.export_zoo." + std::to_string(::getpid()) + ".py";
  WriteFileAtomic(script, kExportZooScript);
  std::string log = script + ".log";
  if (progress)
    progress(fmt::format(
        "exporting zoo model {} to {} ({}, random weights, opset 17)", name, path,
        entry->family == ZooFamily::kTextEncoder ? "PyTorch TransformerEncoder" : "torchvision"));
  std::string command = fmt::format(
      "{} {} --name {} --size {} --out {} >{} 2>&1", ShellQuote(PythonInterpreter()),
      ShellQuote(script), ShellQuote(name), entry->input_size, ShellQuote(path), ShellQuote(log));
  int status = std::system(command.c_str());
  std::string output;
  try {
    output = ReadFileBytes(log);
  } catch (const Error&) {
  }
  fs::remove(script);
  fs::remove(log);
  int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  if (code == 3 || output.find("missing package") != std::string::npos)
    throw BadInput(
        "zoo model {} is not exported yet and exporting needs Debian's "
        "python3-torchvision (apt-get install python3-torchvision)",
        name);
  if (code == 127)
    throw BadInput(
        "zoo model {} is not exported yet and {} was not found (apt-get install python3 "
        "python3-torchvision)",
        name, PythonInterpreter());
  if (code != 0) {
    auto last = output.find_last_not_of("\n");
    auto line_start = output.rfind('\n', last == std::string::npos ? 0 : last);
    std::string tail = output.substr(line_start == std::string::npos ? 0 : line_start + 1);
    throw Internal("exporting {} failed (exit {}): {}", name, code, tail);
  }
  if (progress) progress(fmt::format("exported {}", name));
  return path;
}

std::string ResolveModel(const std::string& model,
                         const std::function<void(const std::string&)>& progress) {
  std::error_code ec;
  if (fs::exists(model, ec) || model.ends_with(".onnx") || model.find('/') != std::string::npos)
    return model;
  if (Find(model)) return Export(model, false, progress);
  throw BadInput("{}: no such file, and not a zoo model (see `scission models`)", model);
}

}  // namespace scission::zoo
