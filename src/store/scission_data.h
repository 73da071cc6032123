// The original Scission's released data: `<tier>-<system>.dat` benchmark pickles and network CSVs
// (`source,destination,ping(ms),bandwidth(mbps)`). Pure parsing; nothing is stored here.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace scission::store {

// One entry of the original LayerBenchmark list: a block of Keras layers.
struct ScissionLayerBlock {
  int input_layer = 0;
  int output_layer = 0;
  double seconds = 0;       // mean of the original's repeats
  int64_t output_size = 0;  // bytes
};

struct ScissionSystem {
  std::string tier;  // "device", "edge" or "cloud"
  std::string name;  // e.g. "raspi4", "6700k(GPU)"
  std::string path;
  std::map<std::string, std::vector<ScissionLayerBlock>> models;
};

struct ScissionLink {
  std::string source, destination;
  double ping_ms = 0;
  double mbps = 0;
};

// Parses one .dat file's bytes; the tier and name come from the file name (`<tier>-<name>.dat`).
ScissionSystem ParseScissionBenchmark(std::string_view bytes, const std::string& file_name,
                                      const std::string& label);
// Every *.dat in DIR, sorted by file name. BadInput if none, or for any malformed file.
std::vector<ScissionSystem> LoadScissionDirectory(const std::string& dir);
// BadInput "<label>:<line>: <what>" for malformed rows.
std::vector<ScissionLink> ParseNetworkCsv(std::string_view text, const std::string& label);
std::vector<ScissionLink> LoadNetworkCsv(const std::string& path);

}  // namespace scission::store
