// Issue 8 as a user meets it: models ONNX Runtime runs but the ONNX library (1.12) does not know
// open and benchmark; what ONNX Runtime refuses is one `error:` line, exit 2; a chain of blocks
// that does not reproduce the model is exit 1 with the first diverging block named, and nothing
// stored.
#include <sqlite3.h>

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
using ::testing::Not;
using ::testing::StartsWith;

class AcceptCli : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "/accept_cli_" + std::to_string(::getpid()) + "_" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    env_ = {"SCISSION_DB=" + dir_ + "/s.db", "SCISSION_HOME=" + dir_ + "/home"};
  }
  std::string Write(const std::string& name, const onnx::ModelProto& model) {
    std::string path = dir_ + "/" + name;
    std::ofstream(path, std::ios::binary) << model.SerializeAsString();
    return path;
  }
  CommandResult Run(const std::vector<std::string>& args) { return RunScission(args, env_); }
  // A failed run: the exit code and exactly one `error: <prefix>...` line. Returns that line.
  std::string ExpectError(const std::vector<std::string>& args, int exit_code,
                          const std::string& prefix) {
    auto r = Run(args);
    EXPECT_EQ(r.exit_code, exit_code) << r.err;
    // Notes (what input was generated) may come first; then exactly one error line.
    while (r.err.rfind("note: ", 0) == 0) r.err.erase(0, r.err.find('\n') + 1);
    EXPECT_THAT(r.err, StartsWith("error: " + prefix)) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_EQ(r.out, "");
    return r.err;
  }
  std::vector<std::string> Benchmark(const std::string& path) {
    return {"benchmark", path, "--resource", "box", "--tier",    "edge",
            "--repeats", "1",  "--warmup",   "1",   "--threads", "1"};
  }
  // Benchmark runs in the store (0 when the database was never created).
  int StoredRuns() {
    if (!std::filesystem::exists(dir_ + "/s.db")) return 0;
    sqlite3* db = nullptr;
    EXPECT_EQ(sqlite3_open_v2((dir_ + "/s.db").c_str(), &db, SQLITE_OPEN_READONLY, nullptr),
              SQLITE_OK);
    sqlite3_stmt* statement = nullptr;
    int runs = -1;
    if (sqlite3_prepare_v2(db, "SELECT COUNT(*) FROM runs", -1, &statement, nullptr) == SQLITE_OK &&
        sqlite3_step(statement) == SQLITE_ROW)
      runs = sqlite3_column_int(statement, 0);
    else
      runs = 0;  // no schema yet: nothing stored
    sqlite3_finalize(statement);
    sqlite3_close(db);
    return runs;
  }
  std::string dir_;
  std::vector<std::string> env_;
};

TEST_F(AcceptCli, NewerOpsetsContribOperatorsUnsortedNodesAndUnusedImportsOpenAndBenchmark) {
  auto unused = ChainModel(3);
  auto* op = unused.add_opset_import();
  op->set_domain("ai.onnx.training");
  op->set_version(1);
  const std::vector<std::pair<std::string, onnx::ModelProto>> models = {
      {"opset18.onnx", ReduceMeanModel(18)},   {"contrib.onnx", ContribModel()},
      {"quantized.onnx", QuantizedModel()},    {"unused_import.onnx", unused},
      {"reversed.onnx", ReversedChainModel()}, {"untyped.onnx", UntypedShapeModel(false)},
      {"float16.onnx", Float16Model()},
  };
  for (const auto& [name, model] : models) {
    SCOPED_TRACE(name);
    auto path = Write(name, model);
    auto inspect = Run({"inspect", path});
    ASSERT_EQ(inspect.exit_code, 0) << inspect.err;
    EXPECT_THAT(inspect.out, HasSubstr("checks  "));
    auto bench = Run(Benchmark(path));
    ASSERT_EQ(bench.exit_code, 0) << bench.err;
    EXPECT_THAT(bench.out, HasSubstr("chain of blocks vs whole model: max abs diff"));
    EXPECT_THAT(bench.out, HasSubstr(") ok\n"));
  }
  EXPECT_EQ(StoredRuns(), static_cast<int>(models.size()));
}

TEST_F(AcceptCli, InspectSaysWhichChecksRan) {
  auto known = Run({"inspect", Write("chain.onnx", ChainModel(2))});
  ASSERT_EQ(known.exit_code, 0) << known.err;
  EXPECT_THAT(known.out, HasSubstr("checks  ONNX checker, ONNX shape inference, ONNX Runtime\n"));
  auto newer = Run({"inspect", Write("opset20.onnx", ReduceMeanModel(20)), "--json"});
  ASSERT_EQ(newer.exit_code, 0) << newer.err;
  EXPECT_FALSE(nlohmann::json::parse(newer.out)["onnx_checked"].get<bool>());
}

TEST_F(AcceptCli, WhatOnnxRuntimeRefusesIsOneLineExitTwo) {
  GraphBuilder b;
  b.Import("foo.bar", 1).Input("x", {1, 4});
  b.Node("Relu", {"x"}, {"r"}).Node("Frobnicate", {"r"}, {"y"}).Domain("foo.bar");
  b.Output("y", {1, 4});
  auto path = Write("unknown_domain.onnx", b.Build());
  std::string line = ExpectError({"inspect", path}, 2, path + ": ONNX Runtime cannot load it: ");
  EXPECT_THAT(line, HasSubstr("Frobnicate"));
  ExpectError(Benchmark(path), 2, path + ": ONNX Runtime cannot load it: ");
  EXPECT_EQ(StoredRuns(), 0);
}

TEST_F(AcceptCli, ChainThatDivergesFailsNamingTheBlockAndStoresNothing) {
  // Before (issue 8, failure 8): "MISMATCH" on stdout, exit 0, and the run stored.
  auto path = Write("noise.onnx", RandomLikeModel());
  std::string line = ExpectError(Benchmark(path), 1, path + ": chain check failed: block 0 is ");
  EXPECT_THAT(line, HasSubstr("its output 'a' differs from the whole model's by"));
  EXPECT_THAT(line, HasSubstr("draws random numbers: RandomUniformLike"));
  EXPECT_THAT(line, HasSubstr("--no-chain-check"));
  auto json = Benchmark(path);
  json.push_back("--json");
  ExpectError(json, 1, path + ": chain check failed: block 0 is ");
  EXPECT_EQ(StoredRuns(), 0);
}

TEST_F(AcceptCli, NoChainCheckSkipsItAndSaysSo) {
  auto path = Write("noise.onnx", RandomLikeModel());
  auto args = Benchmark(path);
  args.push_back("--no-chain-check");
  auto text = Run(args);
  ASSERT_EQ(text.exit_code, 0) << text.err;
  EXPECT_THAT(text.out,
              HasSubstr("chain of blocks vs whole model: not checked (--no-chain-check)"));
  EXPECT_THAT(text.out, Not(HasSubstr("MISMATCH")));
  args.push_back("--json");
  auto json = Run(args);
  ASSERT_EQ(json.exit_code, 0) << json.err;
  auto doc = nlohmann::json::parse(json.out);
  EXPECT_EQ(doc["chain_check"]["status"], "skipped");
  EXPECT_EQ(StoredRuns(), 2);
}

TEST_F(AcceptCli, PassingCheckIsReportedInJson) {
  auto args = Benchmark(Write("residual.onnx", ResidualModel(2)));
  args.push_back("--json");
  auto r = Run(args);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto doc = nlohmann::json::parse(r.out);
  EXPECT_EQ(doc["chain_check"]["status"], "passed");
  EXPECT_TRUE(doc["chain_check"]["ok"].get<bool>());
  EXPECT_EQ(doc["chain_check"]["first_diverging_block"], -1);
}

}  // namespace
}  // namespace scission::testing
