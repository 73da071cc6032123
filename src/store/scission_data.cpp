#include "store/scission_data.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <filesystem>
#include <limits>

#include "common/error.h"
#include "common/files.h"
#include "store/pickle.h"
#include "store/store.h"
#include "store/validate.h"

namespace scission::store {

namespace {

const std::string* AsString(pickle::ValuePtr v) { return std::get_if<std::string>(&v->v); }

// Where a value of one LayerBenchmark entry was read: "<file>: offset N: model 'm' entry i".
struct EntryPlace {
  const std::string& label;
  const std::string& model;
  size_t entry;
  std::string At(const pickle::Value& v) const {
    return fmt::format("{}: offset {}: model '{}' entry {}", label, v.offset, PrintableText(model),
                       entry);
  }
};

int64_t IntField(const pickle::Value& v, const std::string& field, const EntryPlace& place,
                 int64_t min, int64_t max) {
  const auto* i = std::get_if<int64_t>(&v.v);
  if (!i) throw BadInput("{}: field '{}' must be an integer", place.At(v), field);
  if (*i < min || *i > max)
    throw BadInput("{}: field '{}' is {}, not within {}..{}", place.At(v), field, *i, min, max);
  return *i;
}

double NumberField(const pickle::Value& v, const std::string& field, const EntryPlace& place) {
  double value = 0;
  if (const auto* d = std::get_if<double>(&v.v))
    value = *d;
  else if (const auto* i = std::get_if<int64_t>(&v.v))
    value = static_cast<double>(*i);
  else
    throw BadInput("{}: field '{}' must be a number", place.At(v), field);
  // Seconds; the store keeps milliseconds up to kMaxMs.
  if (!std::isfinite(value) || value < 0 || value * 1000.0 > kMaxMs)
    throw BadInput("{}: field '{}' is {}, not a time within 0..{:g} s", place.At(v), field, value,
                   kMaxMs / 1000.0);
  return value;
}

ScissionLayerBlock ReadLayerBenchmark(pickle::ValuePtr v, const EntryPlace& place) {
  const auto* object = std::get_if<pickle::Object>(&v->v);
  if (!object || !object->state)
    throw BadInput("{}: expected a LayerBenchmark object", place.At(*v));
  const auto& state = std::get<pickle::Dict>(object->state->v);
  constexpr int64_t kIntMax = std::numeric_limits<int>::max();
  ScissionLayerBlock block;
  bool seen[4] = {false, false, false, false};
  for (const auto& [key, value] : state.items) {
    const std::string* name = AsString(key);
    if (!name) throw BadInput("{}: LayerBenchmark has a non-string field name", place.At(*key));
    if (*name == "input_layer") {
      block.input_layer = static_cast<int>(IntField(*value, *name, place, 0, kIntMax));
      seen[0] = true;
    } else if (*name == "output_layer") {
      block.output_layer = static_cast<int>(IntField(*value, *name, place, 0, kIntMax));
      seen[1] = true;
    } else if (*name == "second_prediction") {
      block.seconds = NumberField(*value, *name, place);
      seen[2] = true;
    } else if (*name == "output_size") {
      block.output_size = IntField(*value, *name, place, 0, kMaxBytes);
      seen[3] = true;
    }
  }
  static const char* kNames[] = {"input_layer", "output_layer", "second_prediction", "output_size"};
  for (int i = 0; i < 4; ++i)
    if (!seen[i]) throw BadInput("{}: LayerBenchmark lacks field '{}'", place.At(*v), kNames[i]);
  if (block.output_layer < block.input_layer)
    throw BadInput("{}: layer range {}..{} is invalid", place.At(*v), block.input_layer,
                   block.output_layer);
  return block;
}

std::string Trim(std::string_view s) {
  size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string_view::npos) return "";
  size_t e = s.find_last_not_of(" \t\r\n");
  return std::string(s.substr(b, e - b + 1));
}

double ParseNumber(const std::string& text, const std::string& where, const char* what) {
  double value = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || ptr != text.data() + text.size() || !std::isfinite(value))
    throw BadInput("{}: {} '{}' is not a number", where, what, PrintableText(text));
  return value;
}

}  // namespace

ScissionSystem ParseScissionBenchmark(std::string_view bytes, const std::string& file_name,
                                      const std::string& label) {
  ScissionSystem system;
  system.path = label;
  std::string stem = file_name;
  if (stem.size() > 4 && stem.ends_with(".dat")) stem.resize(stem.size() - 4);
  auto dash = stem.find('-');
  if (dash == std::string::npos || dash == 0 || dash + 1 == stem.size())
    throw BadInput("{}: file name must be <tier>-<name>.dat", label);
  system.tier = stem.substr(0, dash);
  system.name = stem.substr(dash + 1);
  if (system.tier != "device" && system.tier != "edge" && system.tier != "cloud")
    throw BadInput("{}: tier '{}' must be device, edge or cloud", label,
                   PrintableText(system.tier));
  ValidateName(system.name, label + ": system name from the file name");

  pickle::Document doc = pickle::Parse(bytes, label);
  const auto* top = std::get_if<pickle::Dict>(&doc.root->v);
  if (!top) throw BadInput("{}: top-level object must be a dict of model name -> list", label);
  for (const auto& [key, value] : top->items) {
    const std::string* model = AsString(key);
    if (!model) throw BadInput("{}: offset {}: a model name is not a string", label, key->offset);
    ValidateName(*model, fmt::format("{}: offset {}: model name", label, key->offset));
    const auto* list = std::get_if<pickle::List>(&value->v);
    if (!list)
      throw BadInput("{}: offset {}: model '{}' is not a list of LayerBenchmark", label,
                     value->offset, *model);
    if (list->items.size() > kMaxBlocks)
      throw BadInput("{}: offset {}: model '{}' has {} blocks (at most {})", label, value->offset,
                     *model, list->items.size(), kMaxBlocks);
    std::vector<ScissionLayerBlock> blocks;
    for (size_t i = 0; i < list->items.size(); ++i)
      blocks.push_back(ReadLayerBenchmark(list->items[i], EntryPlace{label, *model, i}));
    if (blocks.empty()) throw BadInput("{}: model '{}' has no blocks", label, *model);
    if (!system.models.emplace(*model, std::move(blocks)).second)
      throw BadInput("{}: offset {}: model '{}' appears twice", label, key->offset, *model);
  }
  return system;
}

std::vector<ScissionSystem> LoadScissionDirectory(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) throw BadInput("{}: not a directory", dir);
  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(dir, ec))
    if (entry.is_regular_file() && entry.path().extension() == ".dat")
      files.push_back(entry.path());
  if (ec) throw BadInput("{}: cannot list: {}", dir, ec.message());
  std::sort(files.begin(), files.end());
  if (files.empty()) throw BadInput("{}: no <tier>-<name>.dat files", dir);
  std::vector<ScissionSystem> systems;
  for (const auto& f : files)
    systems.push_back(
        ParseScissionBenchmark(ReadFileBytes(f.string()), f.filename().string(), f.string()));
  return systems;
}

std::vector<ScissionLink> ParseNetworkCsv(std::string_view text, const std::string& label) {
  std::vector<ScissionLink> links;
  size_t line_no = 0, pos = 0;
  bool header = true;
  while (pos <= text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string line = Trim(text.substr(pos, end - pos));
    pos = end + 1;
    ++line_no;
    if (line.empty()) {
      if (end == text.size()) break;
      continue;
    }
    std::vector<std::string> cells;
    size_t start = 0;
    while (true) {
      size_t comma = line.find(',', start);
      cells.push_back(Trim(std::string_view(line).substr(start, comma - start)));
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
    std::string where = fmt::format("{}:{}", label, line_no);
    if (header) {
      header = false;
      if (cells.size() != 4 || cells[0] != "source" || cells[1] != "destination")
        throw BadInput("{}: header must be 'source,destination,ping(ms),bandwidth(mbps)'", where);
      continue;
    }
    if (cells.size() != 4)
      throw BadInput("{}: expected 4 columns (source,destination,ping,bandwidth), got {}", where,
                     cells.size());
    ScissionLink link{cells[0], cells[1], ParseNumber(cells[2], where, "ping"),
                      ParseNumber(cells[3], where, "bandwidth")};
    ValidateLink({link.source, link.destination, link.ping_ms, link.mbps, "csv", ""}, where);
    links.push_back(link);
    if (end == text.size()) break;
  }
  if (header) throw BadInput("{}: empty file (no header)", label);
  return links;
}

std::vector<ScissionLink> LoadNetworkCsv(const std::string& path) {
  return ParseNetworkCsv(ReadFileBytes(path), path);
}

}  // namespace scission::store
