#include <filesystem>
#include <fstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/error.h"
#include "graph/graph_builder.h"
#include "graph/model.h"

namespace scission::graph {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

std::string WriteTemp(const std::string& name, const std::string& bytes) {
  std::string path = ::testing::TempDir() + "/model_test_" + name;
  std::ofstream(path, std::ios::binary) << bytes;
  return path;
}

// Loads and returns the BadInput message; fails the test if loading succeeds.
std::string LoadError(const std::string& path) {
  try {
    LoadModel(path);
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kBadInput);
    EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos);
    return e.what();
  }
  ADD_FAILURE() << path << " loaded but should not";
  return "";
}

TEST(LoadModel, AcceptsValidModelAndInfersShapes) {
  auto path = WriteTemp("ok.onnx", testing::ChainModel(2).SerializeAsString());
  auto model = LoadModel(path);
  EXPECT_EQ(model.sha256.size(), 64u);
  EXPECT_GT(model.proto.graph().value_info_size(), 0);  // shape inference ran
}

TEST(LoadModel, RejectsTruncatedFile) {
  std::string bytes = testing::ChainModel(3).SerializeAsString();
  auto path = WriteTemp("trunc.onnx", bytes.substr(0, bytes.size() / 2));
  EXPECT_THAT(LoadError(path), StartsWith(path + ": "));
}

TEST(LoadModel, RejectsEveryTruncationPoint) {
  std::string bytes = testing::ResidualModel(1).SerializeAsString();
  for (size_t cut = 1; cut < bytes.size(); cut += 97) {
    auto path = WriteTemp("trunc_each.onnx", bytes.substr(0, cut));
    EXPECT_THAT(LoadError(path), StartsWith(path + ": ")) << "cut at " << cut;
  }
}

TEST(LoadModel, RejectsRandomBytes) {
  std::string bytes;
  uint32_t state = 12345;
  for (int i = 0; i < 4096; ++i) {
    state = state * 1664525u + 1013904223u;
    bytes.push_back(static_cast<char>(state >> 24));
  }
  auto path = WriteTemp("random.onnx", bytes);
  EXPECT_THAT(LoadError(path), StartsWith(path + ": "));
}

TEST(LoadModel, RejectsNodeReadingUnknownTensor) {
  testing::GraphBuilder b;
  b.Input("x", {1, 4})
      .Node("Relu", {"x"}, {"a"})
      .Node("Add", {"a", "ghost"}, {"y"})
      .Output("y", {1, 4});
  auto path = WriteTemp("dangling.onnx", b.Bytes());
  auto message = LoadError(path);
  EXPECT_THAT(message, StartsWith(path + ": "));
  EXPECT_THAT(message, HasSubstr("ghost"));
}

TEST(LoadModel, RejectsDirectoryAndMissingPath) {
  std::string dir = ::testing::TempDir() + "/model_test_dir.onnx";
  std::filesystem::create_directories(dir);
  EXPECT_THAT(LoadError(dir), HasSubstr("is a directory"));
  EXPECT_THAT(LoadError("/definitely/not/here.onnx"),
              StartsWith("/definitely/not/here.onnx: no such file"));
}

TEST(LoadModel, RejectsUnsupportedOpsets) {
  testing::GraphBuilder future(MaxSupportedOpset() + 80);
  future.Input("x", {1, 4}).Node("Relu", {"x"}, {"y"}).Output("y", {1, 4});
  auto path = WriteTemp("future.onnx", future.Bytes());
  EXPECT_THAT(LoadError(path), HasSubstr("unsupported opset"));
  testing::GraphBuilder ancient(3);
  ancient.Input("x", {1, 4}).Node("Relu", {"x"}, {"y"}).Output("y", {1, 4});
  path = WriteTemp("ancient.onnx", ancient.Bytes());
  EXPECT_THAT(LoadError(path), HasSubstr("unsupported opset 3"));
}

TEST(LoadModel, RejectsEmptyFileAndUnknownOp) {
  EXPECT_THAT(LoadError(WriteTemp("empty.onnx", "")), HasSubstr("empty"));
  testing::GraphBuilder b;
  b.Input("x", {1, 4}).Node("NoSuchOp", {"x"}, {"y"}).Output("y", {1, 4});
  EXPECT_THAT(LoadError(WriteTemp("unknown_op.onnx", b.Bytes())), HasSubstr("NoSuchOp"));
}

}  // namespace
}  // namespace scission::graph
