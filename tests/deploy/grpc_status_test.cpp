// Status code names as metrics labels and loadgen's records carry them: every code gRPC defines
// by its own name, never collapsed into "UNKNOWN".
#include "deploy/grpc_status.h"

#include <gtest/gtest.h>

namespace scission::deploy {
namespace {

TEST(StatusCodeName, NamesEveryCodeGrpcDefines) {
  using grpc::StatusCode;
  const std::pair<StatusCode, const char*> expected[] = {
      {StatusCode::OK, "OK"},
      {StatusCode::CANCELLED, "CANCELLED"},
      {StatusCode::UNKNOWN, "UNKNOWN"},
      {StatusCode::INVALID_ARGUMENT, "INVALID_ARGUMENT"},
      {StatusCode::DEADLINE_EXCEEDED, "DEADLINE_EXCEEDED"},
      {StatusCode::NOT_FOUND, "NOT_FOUND"},
      {StatusCode::ALREADY_EXISTS, "ALREADY_EXISTS"},
      {StatusCode::PERMISSION_DENIED, "PERMISSION_DENIED"},
      {StatusCode::RESOURCE_EXHAUSTED, "RESOURCE_EXHAUSTED"},
      {StatusCode::FAILED_PRECONDITION, "FAILED_PRECONDITION"},
      {StatusCode::ABORTED, "ABORTED"},
      {StatusCode::OUT_OF_RANGE, "OUT_OF_RANGE"},
      {StatusCode::UNIMPLEMENTED, "UNIMPLEMENTED"},
      {StatusCode::INTERNAL, "INTERNAL"},
      {StatusCode::UNAVAILABLE, "UNAVAILABLE"},
      {StatusCode::DATA_LOSS, "DATA_LOSS"},
      {StatusCode::UNAUTHENTICATED, "UNAUTHENTICATED"}};
  for (const auto& [code, name] : expected) EXPECT_STREQ(StatusCodeName(code), name) << name;
}

TEST(StatusCodeName, ValuesOutsideTheEnumAreUnknown) {
  EXPECT_STREQ(StatusCodeName(grpc::StatusCode::DO_NOT_USE), "UNKNOWN");
  EXPECT_STREQ(StatusCodeName(static_cast<grpc::StatusCode>(17)), "UNKNOWN");
  EXPECT_STREQ(StatusCodeName(static_cast<grpc::StatusCode>(1 << 30)), "UNKNOWN");
}

}  // namespace
}  // namespace scission::deploy
