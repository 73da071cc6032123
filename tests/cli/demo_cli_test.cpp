// `scission demo` as a user runs it, on loopback (--loopback: no namespaces, shaping or quotas,
// so it neither needs root nor touches the machine's network), with .onnx paths for models.
#include <filesystem>
#include <fstream>
#include <set>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "cli/run_binary.h"
#include "graph/graph_builder.h"

namespace scission::testing {
namespace {

class DemoCli : public BinaryTest {
 protected:
  DemoCli() : BinaryTest("democli") {}
  std::string WriteModel(const std::string& relative, int blocks) {
    const auto path = std::filesystem::path(dir_) / relative;
    std::filesystem::create_directories(path.parent_path());
    std::ofstream(path, std::ios::binary) << ChainModel(blocks).SerializeAsString();
    return path.string();
  }
};

// Two files with the same stem: each gets a name of its own (the stem, then "-2"), and the plan
// files are named by it, never by the path (which once put the path's slashes into a file name:
// "error: .../demo/plan-/tmp/.../model.onnx-100.json: directory ... does not exist").
TEST_F(DemoCli, ModelPathsAreNamedByTheirStemAndNeverCollide) {
  const std::string first = WriteModel("a/model.onnx", 3);
  const std::string second = WriteModel("b/model.onnx", 4);
  auto r = Run({"demo", "--loopback", "--models", first + "," + second, "--bandwidths", "100",
                "--top", "1", "--requests", "1", "--repeats", "1", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto doc = nlohmann::json::parse(r.out);
  EXPECT_FALSE(doc.at("isolated").get<bool>());
  ASSERT_EQ(doc.at("models").size(), 2u) << r.out;
  EXPECT_EQ(doc["models"][0].at("name"), "model");
  EXPECT_EQ(doc["models"][0].at("path"), first);
  EXPECT_EQ(doc["models"][1].at("name"), "model-2");
  EXPECT_EQ(doc["models"][1].at("path"), second);
  std::set<std::string> run_models;
  for (const auto& run : doc.at("runs")) run_models.insert(run.at("model").get<std::string>());
  EXPECT_EQ(run_models, (std::set<std::string>{"model", "model-2"}));

  const std::string work = dir_ + "/home/demo";
  const std::pair<std::string, std::string> plans[] = {{"plan-model-100.json", first},
                                                       {"plan-model-2-100.json", second}};
  for (const auto& [file, model] : plans) {
    ASSERT_TRUE(std::filesystem::exists(work + "/" + file)) << file;
    const auto plan = nlohmann::json::parse(Slurp(work + "/" + file));
    EXPECT_EQ(plan.at("model").at("path"), model) << file;
  }
  size_t files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(work))
    files += entry.path().filename().string().starts_with("plan-");
  EXPECT_EQ(files, 2u);
}

}  // namespace
}  // namespace scission::testing
