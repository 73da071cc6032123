#include "profile/inputs.h"

#include <algorithm>
#include <charconv>
#include <filesystem>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "common/error.h"
#include "common/npy.h"
#include "runtime/backend.h"

namespace scission::profile {

namespace {

// Names go into the key percent-encoded where they would clash with its separators.
std::string EncodeName(const std::string& name) {
  std::string out;
  for (char c : name) {
    if (c == '%' || c == ';' || c == '=')
      out += fmt::format("%{:02X}", static_cast<unsigned char>(c));
    else
      out.push_back(c);
  }
  return out;
}

std::string DecodeName(const std::string& text) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    int value = 0;
    if (text[i] == '%' && i + 2 < text.size() &&
        std::from_chars(text.data() + i + 1, text.data() + i + 3, value, 16).ptr ==
            text.data() + i + 3) {
      out.push_back(static_cast<char>(value));
      i += 2;
    } else {
      out.push_back(text[i]);
    }
  }
  return out;
}

std::pair<std::string, std::string> SplitFlag(const std::string& item, const char* flag,
                                              const char* form) {
  auto eq = item.rfind('=');
  if (eq == std::string::npos || eq == 0)
    throw BadInput("{} expects {}, got '{}'", flag, form, item);
  return {item.substr(0, eq), item.substr(eq + 1)};
}

std::string InputsLine(const std::vector<TensorSpec>& inputs) {
  std::vector<std::string> parts;
  for (const auto& in : inputs)
    parts.push_back(fmt::format("{} {} {}", in.name, DTypeName(in.dtype), ShapeString(in.shape)));
  return fmt::format("{}", fmt::join(parts, ", "));
}

std::string Generated(DType dtype) {
  switch (dtype) {
    case DType::kFloat:
    case DType::kFloat16:
    case DType::kBfloat16:
    case DType::kDouble:
      return "uniform [0, 1)";
    case DType::kBool:
      return "all false";
    default:
      return "all 0";
  }
}

const std::vector<int64_t>* Find(
    const std::vector<std::pair<std::string, std::vector<int64_t>>>& shapes,
    const std::string& name) {
  for (const auto& [n, dims] : shapes)
    if (n == name) return &dims;
  return nullptr;
}

}  // namespace

std::vector<int64_t> ParseDims(const std::string& text, const std::string& what) {
  std::vector<int64_t> dims;
  if (text.empty()) return dims;
  size_t at = 0;
  while (true) {
    size_t x = text.find('x', at);
    std::string part = text.substr(at, x == std::string::npos ? std::string::npos : x - at);
    int64_t d = 0;
    auto [ptr, ec] = std::from_chars(part.data(), part.data() + part.size(), d);
    if (part.empty() || ec != std::errc() || ptr != part.data() + part.size() || d < 1 ||
        d > (int64_t{1} << 40))
      throw BadInput("{}: '{}' is not a shape like 1x3x640x640 (positive dimensions)", what, text);
    dims.push_back(d);
    if (dims.size() > 16) throw BadInput("{}: more than 16 dimensions", what);
    if (x == std::string::npos) break;
    at = x + 1;
  }
  return dims;
}

std::string DimsText(const std::vector<int64_t>& dims) {
  std::vector<std::string> parts;
  for (int64_t d : dims) parts.push_back(std::to_string(d));
  return fmt::format("{}", fmt::join(parts, "x"));
}

InputOptions InputOptions::Parse(const std::vector<std::string>& shape_flags,
                                 const std::vector<std::string>& input_flags) {
  InputOptions o;
  for (const auto& item : shape_flags) {
    auto [name, dims] = SplitFlag(item, "--shape", "NAME=1x3x640x640");
    if (Find(o.shapes, name)) throw BadInput("--shape gives input '{}' twice", name);
    o.shapes.emplace_back(name, ParseDims(dims, "--shape " + name));
  }
  for (const auto& item : input_flags) {
    auto [name, file] = SplitFlag(item, "--input", "NAME=FILE.npy");
    for (const auto& [n, f] : o.files)
      if (n == name) throw BadInput("--input gives input '{}' twice", name);
    o.files.emplace_back(name, file);
  }
  return o;
}

std::string ShapeKey(const std::vector<TensorSpec>& inputs) {
  std::vector<std::string> parts;
  for (const auto& in : inputs) parts.push_back(EncodeName(in.name) + "=" + DimsText(in.shape));
  return fmt::format("{}", fmt::join(parts, ";"));
}

std::vector<std::pair<std::string, std::vector<int64_t>>> ParseShapeKey(const std::string& key) {
  std::vector<std::pair<std::string, std::vector<int64_t>>> out;
  size_t at = 0;
  while (at < key.size()) {
    size_t end = key.find(';', at);
    std::string item = key.substr(at, end == std::string::npos ? std::string::npos : end - at);
    auto eq = item.rfind('=');
    if (eq == std::string::npos) throw BadInput("'{}' is not a shape key", key);
    out.emplace_back(DecodeName(item.substr(0, eq)), ParseDims(item.substr(eq + 1), "shape key"));
    if (end == std::string::npos) break;
    at = end + 1;
  }
  return out;
}

bool ShapeKeyMatches(const std::string& key,
                     const std::vector<std::pair<std::string, std::vector<int64_t>>>& wanted) {
  auto have = ParseShapeKey(key);
  for (const auto& [name, dims] : wanted) {
    const auto* found = Find(have, name);
    if (!found || *found != dims) return false;
  }
  return true;
}

const std::vector<Tensor>& ResolvedInputs::Tensors() const {
  if (!unavailable.empty()) throw BadInput("{}", unavailable);
  return tensors;
}

ResolvedInputs ResolveInputs(const std::vector<TensorSpec>& model_inputs, const InputOptions& o,
                             const std::string& label) {
  auto known = [&](const std::string& name, const char* flag) {
    for (const auto& in : model_inputs)
      if (in.name == name) return;
    throw BadInput("{} {}: the model has no input '{}' (inputs: {})", flag, name, name,
                   InputsLine(model_inputs));
  };
  for (const auto& [name, dims] : o.shapes) known(name, "--shape");
  for (const auto& [name, file] : o.files) known(name, "--input");

  ResolvedInputs r;
  std::vector<TensorSpec> resolved;
  for (size_t i = 0; i < model_inputs.size(); ++i) {
    const TensorSpec& in = model_inputs[i];
    if (!in.rank_known)
      throw BadInput("{}: input '{}' has no declared rank; give it with --input {}=FILE.npy", label,
                     in.name, in.name);
    const std::vector<int64_t>* given = Find(o.shapes, in.name);
    const std::string* file = nullptr;
    for (const auto& [n, f] : o.files)
      if (n == in.name) file = &f;
    Tensor t;
    if (file) {
      t = ReadNpy(*file);
      if (t.spec.dtype != in.dtype)
        throw BadInput("--input {}: {} holds {}, the model's input is {}", in.name, *file,
                       DTypeName(t.spec.dtype), DTypeName(in.dtype));
      if (given && *given != t.spec.shape)
        throw BadInput("--input {}: {} has shape {}, --shape says {}", in.name, *file,
                       ShapeString(t.spec.shape), ShapeString(*given));
      given = &t.spec.shape;
    }
    std::vector<int64_t> dims = in.shape;
    if (given) {
      bool ok = given->size() == dims.size();
      for (size_t d = 0; ok && d < dims.size(); ++d) ok = dims[d] < 0 || dims[d] == (*given)[d];
      if (!ok)
        throw BadInput("{} {}: shape {} does not fit the model's input {} {}",
                       file ? "--input" : "--shape", in.name, ShapeString(*given),
                       DTypeName(in.dtype), ShapeString(in.shape));
      dims = *given;
    } else {
      for (size_t d = 0; d < dims.size(); ++d) {
        if (dims[d] >= 0) continue;
        if (d == 0) {
          dims[d] = 1;
          r.notes.push_back(fmt::format(
              "input '{}' has a dynamic batch dimension; using 1 (--shape {}={} to change it)",
              in.name, in.name, DimsText(std::vector<int64_t>(dims.size(), 1))));
          continue;
        }
        std::vector<int64_t> example = dims;
        for (auto& e : example)
          if (e < 0) e = 1;
        throw BadInput(
            "{}: input '{}' has dynamic dimensions {}; give them with --shape {}={} (inputs: {})",
            label, in.name, ShapeString(in.shape), in.name, DimsText(example),
            InputsLine(model_inputs));
      }
    }
    TensorSpec spec = in;
    spec.shape = dims;
    if (!file) {
      try {
        t = runtime::MakeRandomInput(spec, o.seed + i);
      } catch (const Error& e) {
        if (e.kind() != ErrorKind::kBadInput) throw;
        if (r.unavailable.empty()) r.unavailable = e.what();
        t.spec = spec;  // shape known, no data
      }
      r.notes.push_back(fmt::format("input '{}': {} {} {} (generated)", in.name,
                                    DTypeName(in.dtype), ShapeString(dims), Generated(in.dtype)));
    } else {
      r.notes.push_back(fmt::format("input '{}': {} {} from {}", in.name, DTypeName(in.dtype),
                                    ShapeString(dims), *file));
    }
    t.spec.name = in.name;
    const int64_t bytes = t.spec.bytes();
    if (bytes < 0 || r.bytes < 0 || __builtin_add_overflow(r.bytes, bytes, &r.bytes))
      r.bytes = kSizeTooLarge;
    resolved.push_back(t.spec);
    r.tensors.push_back(std::move(t));
  }
  r.shape_key = ShapeKey(resolved);
  return r;
}

std::vector<std::vector<Tensor>> ResolveFidelityInputs(const std::vector<Tensor>& base,
                                                       const std::vector<std::string>& flags) {
  namespace fs = std::filesystem;
  std::vector<std::vector<Tensor>> sets;
  std::vector<std::string> named;
  for (const auto& item : flags) {
    auto [name, path] = SplitFlag(item, "--fidelity-input", "NAME=FILE.npy or NAME=DIR");
    if (std::find(named.begin(), named.end(), name) != named.end())
      throw BadInput("--fidelity-input gives input '{}' twice", name);
    named.push_back(name);
    auto it = std::find_if(base.begin(), base.end(),
                           [&](const Tensor& t) { return t.spec.name == name; });
    if (it == base.end()) {
      std::vector<TensorSpec> specs;
      for (const auto& t : base) specs.push_back(t.spec);
      throw BadInput("--fidelity-input {}: the model has no input '{}' (inputs: {})", name, name,
                     InputsLine(specs));
    }
    std::vector<std::string> files;
    std::error_code ec;
    if (fs::is_directory(path, ec)) {
      for (const auto& entry : fs::directory_iterator(path, ec))
        if (entry.path().extension() == ".npy") files.push_back(entry.path().string());
      if (ec) throw BadInput("--fidelity-input {}: {}: {}", name, path, ec.message());
      std::sort(files.begin(), files.end());
      if (files.empty()) throw BadInput("--fidelity-input {}: {} holds no .npy file", name, path);
    } else {
      files.push_back(path);
    }
    if (files.size() > kMaxFidelitySets)
      throw BadInput("--fidelity-input {}: {} arrays (at most {})", name, files.size(),
                     kMaxFidelitySets);
    if (!sets.empty() && files.size() != sets.size())
      throw BadInput("--fidelity-input {}: {} arrays, but the inputs before give {}", name,
                     files.size(), sets.size());
    if (sets.empty()) sets.assign(files.size(), base);
    const size_t index = static_cast<size_t>(it - base.begin());
    for (size_t i = 0; i < files.size(); ++i) {
      Tensor t = ReadNpy(files[i]);
      if (t.spec.dtype != it->spec.dtype || t.spec.shape != it->spec.shape)
        throw BadInput("--fidelity-input {}: {} is {} {}, the benchmark runs the input as {} {}",
                       name, files[i], DTypeName(t.spec.dtype), ShapeString(t.spec.shape),
                       DTypeName(it->spec.dtype), ShapeString(it->spec.shape));
      t.spec.name = name;
      sets[i][index] = std::move(t);
    }
  }
  return sets;
}

}  // namespace scission::profile
