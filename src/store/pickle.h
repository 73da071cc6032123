// A data-only reader for the Python pickles the original Scission wrote (protocol 3: a dict of
// model name -> list of __main__.LayerBenchmark objects). It understands only the opcodes those
// files use, accepts only that one class name, and never imports or executes anything: any other
// opcode or global is refused with the byte offset where it was found.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace scission::store::pickle {

struct Value;
// Values live in the Document's arena; pointers between them may form cycles safely.
using ValuePtr = Value*;

struct None {};
struct List {
  std::vector<ValuePtr> items;
};
struct Tuple {
  std::vector<ValuePtr> items;
};
struct Dict {
  std::vector<std::pair<ValuePtr, ValuePtr>> items;  // insertion order
};
struct Object {
  std::string class_name;  // "module.name"
  ValuePtr state;          // set by BUILD; a Dict for LayerBenchmark
};

struct Value {
  std::variant<None, int64_t, double, std::string, List, Tuple, Dict, Object> v;
  size_t offset = 0;  // byte offset of the opcode that made it (for errors)
};

struct Document {
  std::vector<std::unique_ptr<Value>> arena;
  ValuePtr root = nullptr;
};

// Parses a whole pickle. `label` names the file in errors: "<label>: offset N: <what>".
// `allowed_class` is the only GLOBAL accepted ("__main__.LayerBenchmark").
Document Parse(std::string_view bytes, const std::string& label,
               const std::string& allowed_class = "__main__.LayerBenchmark");

}  // namespace scission::store::pickle
