// gRPC status codes as text, for logs, metrics labels and error lines.
#pragma once

#include <grpcpp/support/status_code_enum.h>

namespace scission::deploy {

// The canonical name ("DEADLINE_EXCEEDED", ...) of each of gRPC's 17 codes; "UNKNOWN" for a
// value outside them (a peer may send any integer).
const char* StatusCodeName(grpc::StatusCode code);

}  // namespace scission::deploy
