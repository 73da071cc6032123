#include "profile/open.h"

namespace scission::profile {

void ValidateWithRuntime(const graph::LoadedModel& model, const std::string& backend_name) {
  auto backend = runtime::CreateBackend(backend_name);
  // One intra-op thread: only loading is wanted, and a default pool would start a thread per
  // core for nothing.
  backend->Prepare(model.proto.SerializeAsString(), {.threads = 1}, model.label);
}

graph::LoadedModel OpenModel(const std::string& path, const std::string& backend) {
  graph::LoadedModel model = graph::LoadModel(path);
  ValidateWithRuntime(model, backend);
  return model;
}

graph::LoadedModel OpenModelBytes(std::string_view bytes, const std::string& label,
                                  const std::string& backend) {
  graph::LoadedModel model = graph::ParseModel(bytes, label);
  ValidateWithRuntime(model, backend);
  return model;
}

}  // namespace scission::profile
