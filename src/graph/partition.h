// Identities of an analysis, so two machines (a coordinator and a worker) can tell that they mean
// the same thing by the same numbers.
#pragma once

#include <string>

#include "graph/analysis.h"

namespace scission::graph {

// SHA-256 (hex) over the block partition: each block's positions and boundary tensor names.
// Equal exactly when two analyses cut the model into the same blocks.
std::string PartitionFingerprint(const GraphAnalysis& analysis);

// SHA-256 (hex) over the activation order (the node index at each position): a worker checks it
// before extracting the positions a coordinator sends.
std::string OrderFingerprint(const GraphAnalysis& analysis);

}  // namespace scission::graph
