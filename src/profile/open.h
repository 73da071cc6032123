// Opening a model for verbs that run it. The graph layer checks structure (and, where the ONNX
// library knows the model's opsets and operators, runs the ONNX checker and shape inference);
// whether the model runs at all is ONNX Runtime's to say, so a model is only accepted once the
// runtime has loaded it. This keeps the graph layer free of the runtime (DESIGN.md layers).
#pragma once

#include <string>
#include <string_view>

#include "graph/model.h"
#include "runtime/backend.h"

namespace scission::profile {

// Creates one session of `model` (as loaded: sorted, external data inlined) and discards it.
// BadInput "<label>: ONNX Runtime cannot load it: <the runtime's reason>" when it refuses.
void ValidateWithRuntime(const graph::LoadedModel& model,
                         const std::string& backend = runtime::kDefaultBackend);

// graph::LoadModel(path) then ValidateWithRuntime: what every verb that loads a model file from
// the command line calls (inspect, benchmark, plan, run).
graph::LoadedModel OpenModel(const std::string& path,
                             const std::string& backend = runtime::kDefaultBackend);

// graph::ParseModel(bytes, label) then ValidateWithRuntime: for models received as bytes
// (workers), which never read external data.
graph::LoadedModel OpenModelBytes(std::string_view bytes, const std::string& label,
                                  const std::string& backend = runtime::kDefaultBackend);

}  // namespace scission::profile
