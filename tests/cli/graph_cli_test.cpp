// The binary on hostile or degenerate models: external data, deep nesting, constant outputs,
// sizes that overflow. Each must end in one `error:` line and exit 2, or a correct result.
#include <filesystem>
#include <fstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "cli/run_binary.h"
#include "graph/graph_builder.h"

namespace scission::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

class GraphCli : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "/graph_cli_" + std::to_string(::getpid()) + "_" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    env_ = {"SCISSION_DB=" + dir_ + "/s.db", "SCISSION_HOME=" + dir_ + "/home"};
  }
  std::string Write(const std::string& name, const std::string& bytes) {
    std::string path = dir_ + "/" + name;
    std::ofstream(path, std::ios::binary) << bytes;
    return path;
  }
  CommandResult Run(const std::vector<std::string>& args) { return RunScission(args, env_); }
  // A bad-input run: exit 2 and exactly one `error: <prefix>...` line. Returns that line.
  std::string ExpectBadInput(const std::vector<std::string>& args, const std::string& prefix) {
    auto r = Run(args);
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_THAT(r.err, StartsWith("error: " + prefix)) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    return r.err;
  }
  std::vector<std::string> Benchmark(const std::string& path) {
    return {"benchmark", path, "--resource", "box", "--tier",    "edge",
            "--repeats", "1",  "--warmup",   "1",   "--threads", "1"};
  }
  std::string dir_;
  std::vector<std::string> env_;
};

TEST_F(GraphCli, ExternalDataOutsideTheModelDirectoryIsRefusedTheSameWhetherItExists) {
  // Before: /etc/passwd was read into the model (exit 0) and /etc/passwdx failed in the checker,
  // which told the two apart.
  auto present = Write("present.onnx", ExternalConstantModel("/etc/passwd").SerializeAsString());
  auto missing = Write("missing.onnx", ExternalConstantModel("/etc/passwdx").SerializeAsString());
  std::string a =
      ExpectBadInput({"inspect", present}, present +
                                               ": tensor 'k': external data '/etc/passwd' is an "
                                               "absolute path; only files inside the model's "
                                               "directory are read");
  std::string b = ExpectBadInput({"inspect", missing}, missing + ": tensor 'k': external data ");
  auto after_file = [](const std::string& line) { return line.substr(line.find(": tensor")); };
  std::string same = after_file(b);
  same.replace(same.find("/etc/passwdx"), 12, "/etc/passwd");
  EXPECT_EQ(after_file(a), same);
  auto up = Write("up.onnx", ExternalConstantModel("../../etc/passwd").SerializeAsString());
  ExpectBadInput({"benchmark", up, "--resource", "r", "--tier", "edge"},
                 up + ": tensor 'k': external data '../../etc/passwd' leaves the model's "
                      "directory");
}

TEST_F(GraphCli, ExternalDataBesideTheModelIsReadAtLoad) {
  // Before: the checker looked for weights.bin relative to the working directory and failed.
  float values[4] = {0.5f, -1.0f, 2.0f, 0.0f};
  std::ofstream(dir_ + "/weights.bin", std::ios::binary)
      .write(reinterpret_cast<const char*>(values), sizeof(values));
  auto path = Write("net.onnx", ExternalConstantModel("weights.bin", true).SerializeAsString());
  auto r = Run(Benchmark(path));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("chain of blocks vs whole model"));
  EXPECT_THAT(r.out, ::testing::Not(HasSubstr("MISMATCH")));
}

TEST_F(GraphCli, DeepNestingIsNamed) {
  // Before: "not an ONNX model (protobuf parse failed: truncated or corrupt file)".
  auto path = Write("deep.onnx", NestedIfModel(40).SerializeAsString());
  ExpectBadInput({"inspect", path}, path + ": subgraphs nested 40 deep; at most 24 are supported");
}

TEST_F(GraphCli, ModelWhoseOutputsAreAllConstantsHasNothingToSplit) {
  // Before: inspect died with SIGSEGV (exit 139) on the block with no output.
  GraphBuilder b;
  b.Input("x", {1, 4}).Weight("w", {1, 4});
  b.Node("Relu", {"x"}, {"unused"}).Node("Relu", {"w"}, {"k"}).Output("k", {1, 4});
  auto path = Write("constant.onnx", b.Bytes());
  ExpectBadInput({"inspect", path},
                 path + ": nothing to split: every output is computed from constants");
  ExpectBadInput({"inspect", path, "--json"}, path + ": nothing to split");
}

TEST_F(GraphCli, ChainCheckCoversOutputsComputedFromConstants) {
  // Before: the chain lost `k` and `shape` and the check said MISMATCH.
  auto path = Write("two.onnx", ConstantOutputsModel().SerializeAsString());
  auto r = Run(Benchmark(path));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("chain of blocks vs whole model"));
  EXPECT_THAT(r.out, ::testing::Not(HasSubstr("MISMATCH")));
}

TEST_F(GraphCli, SizesThatOverflowSaySoAndBenchmarkIsBadInput) {
  constexpr int64_t k2p40 = int64_t{1} << 40;
  GraphBuilder b;
  b.Input("x", {k2p40, k2p40}).Node("Relu", {"x"}, {"a"}).Node("Exp", {"a"}, {"y"});
  b.Output("y", {k2p40, k2p40});
  auto path = Write("overflow.onnx", b.Bytes());
  // Before: "0 B" (2^82 bytes wrapped) and benchmark exit 1 (ONNX Runtime's SafeInt overflow).
  auto text = Run({"inspect", path});
  ASSERT_EQ(text.exit_code, 0) << text.err;
  EXPECT_THAT(text.out, HasSubstr("too large"));
  EXPECT_THAT(text.out, ::testing::Not(HasSubstr(" 0 B")));
  auto json = Run({"inspect", path, "--json"});
  ASSERT_EQ(json.exit_code, 0) << json.err;
  EXPECT_EQ(nlohmann::json::parse(json.out)["blocks"][0]["output"]["bytes"], "too large");
  ExpectBadInput(Benchmark(path), "input 'x' (float32 [1099511627776,1099511627776]) needs more");
}

TEST_F(GraphCli, MaxCutTensorsChoosesHowManyTensorsABoundaryMayCarry) {
  // A U-Net keeps its skip connections live: with single-tensor cuts only, the levels between
  // them are one block each; with up to 4 live tensors a boundary can fall inside them.
  auto path = Write("unet.onnx", UNetModel(3, 8, 64).SerializeAsString());
  auto blocks = [&](const std::string& k) {
    auto r = Run({"inspect", path, "--json", "--max-cut-tensors", k});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    auto doc = nlohmann::json::parse(r.out);
    size_t widest = 0;
    for (const auto& b : doc["blocks"]) widest = std::max(widest, b["outputs"].size());
    EXPECT_LE(widest, static_cast<size_t>(std::stoi(k)));
    return doc["blocks"].size();
  };
  const size_t single = blocks("1");
  EXPECT_GT(blocks("4"), single);
  // The default is 4.
  auto r = Run({"inspect", path, "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out)["blocks"].size(), blocks("4"));
  ExpectBadInput({"inspect", path, "--max-cut-tensors", "0"},
                 "--max-cut-tensors: 0 is not within 1..64");
  ExpectBadInput(
      {"benchmark", path, "--resource", "box", "--tier", "edge", "--max-cut-tensors", "65"},
      "--max-cut-tensors: 65 is not within 1..64");
}

// --max-memory weighs the blocks the profile was measured with: a benchmark at
// --max-cut-tensors 1 has fewer blocks than the default cut, and the plan must still fit them.
TEST_F(GraphCli, MaxMemoryUsesTheProfilesBlocks) {
  auto path = Write("unet.onnx", UNetModel(3, 8, 64).SerializeAsString());
  auto bench = Benchmark(path);
  bench.insert(bench.end(), {"--max-cut-tensors", "1"});
  ASSERT_EQ(Run(bench).exit_code, 0);
  auto unlimited = Run({"plan", path, "--tiers", "edge", "--json"});
  ASSERT_EQ(unlimited.exit_code, 0) << unlimited.err;
  const int blocks = nlohmann::json::parse(unlimited.out)["blocks"];
  auto r = Run({"plan", path, "--tiers", "edge", "--max-memory", "box=1000", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto doc = nlohmann::json::parse(r.out);
  EXPECT_EQ(doc["blocks"], blocks);
  ASSERT_EQ(doc["plans"].size(), 1u);
  // Too little memory for the weights of any block: no plan, not a wrong one.
  auto tight = Run({"plan", path, "--tiers", "edge", "--max-memory", "box=0", "--json"});
  ASSERT_EQ(tight.exit_code, 0) << tight.err;
  EXPECT_EQ(nlohmann::json::parse(tight.out)["plans"].size(), 0u);
  // The file changed since the benchmark: said, not weighed (the stored model by its name).
  Write("unet.onnx", UNetModel(3, 8, 32).SerializeAsString());
  ExpectBadInput({"plan", "unet", "--tiers", "edge", "--max-memory", "box=1000"},
                 "--max-memory: " + path + " has changed since it was benchmarked");
}

TEST_F(GraphCli, HugeDeclaredInputIsBadInput) {
  // Before: std::bad_alloc, exit 1 (or as much memory as the allocator would give).
  GraphBuilder b;
  b.Input("x", {1, 3, 100000, 100000}).Node("Relu", {"x"}, {"a"}).Node("Exp", {"a"}, {"y"});
  b.Output("y", {1, 3, 100000, 100000});
  auto path = Write("huge.onnx", b.Bytes());
  ExpectBadInput(Benchmark(path),
                 "input 'x' (float32 [1,3,100000,100000]) needs 120000000000 bytes; Scission "
                 "generates inputs of at most 2 GiB");
}

}  // namespace
}  // namespace scission::testing
