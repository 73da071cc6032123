#include "graph/partition.h"

#include "common/files.h"

namespace scission::graph {

std::string PartitionFingerprint(const GraphAnalysis& analysis) {
  std::string text;
  for (const auto& block : analysis.blocks) {
    text += std::to_string(block.begin) + "-" + std::to_string(block.end) + ":";
    for (const auto& out : block.outputs) text += out.name + ",";
    text += ";";
  }
  return Sha256Hex(text);
}

std::string OrderFingerprint(const GraphAnalysis& analysis) {
  std::string text;
  for (int node : analysis.order) text += std::to_string(node) + ",";
  return Sha256Hex(text);
}

}  // namespace scission::graph
