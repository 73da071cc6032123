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

// The codecs scenario: at each rate the best plan raw, with lossless codecs and with lossy ones
// within 1% error, each planned under its own request and run. On loopback nothing is slow and
// every plan keeps the chain on the device, so this checks the scenario's variants, not codecs on
// the wire (DeployCli.CodecsPlannedForASlowLinkAreAppliedOnTheWire does; the test bed's numbers
// are in DESIGN.md, "Evidence").
TEST_F(DemoCli, CodecsScenarioPlansAndRunsEachVariantUnderItsOwnRequest) {
  const std::string model = WriteModel("chain.onnx", 4);
  auto r = Run({"demo", "--loopback", "--scenario", "codecs", "--models", model, "--bandwidths",
                "5,20", "--requests", "2", "--repeats", "1", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto doc = nlohmann::json::parse(r.out);
  const auto& runs = doc.at("runs");
  ASSERT_EQ(runs.size(), 6u) << r.out;  // 2 rates x raw, lossless, lossy<=1%
  const std::vector<std::string> variants = {"raw", "lossless", "lossy<=1%"};
  for (size_t i = 0; i < runs.size(); ++i) {
    const auto& run = runs[i];
    EXPECT_EQ(run.at("codecs"), variants[i % 3]) << run;
    EXPECT_EQ(run.at("link_mbps"), i < 3 ? 5 : 20);
    EXPECT_EQ(run.at("failed"), 0) << run;
    EXPECT_GT(run.at("measured_ms").get<double>(), 0);
    EXPECT_LE(run.at("output_error").get<double>(), 0.01) << run;
    if (run["codecs"] == "raw") {
      EXPECT_DOUBLE_EQ(run.at("gain_vs_raw").get<double>(), 1.0);
    }
    // The real output error is measured exactly when a hop is lossy (never on loopback).
    bool lossy_hop = false;
    for (const auto& hop : run.at("hops"))
      lossy_hop |=
          hop.at("codec") != "none" && hop.at("codec") != "lz4" && hop.at("codec") != "zstd";
    EXPECT_EQ(run.at("output_error_measured").is_number(), lossy_hop) << run;
  }
  // Each variant's plan answers its own request, and the lossy one had fidelity to choose by
  // (the fleet benchmark measured every codec).
  const std::string work = dir_ + "/home/demo/";
  for (const char* rate : {"5", "20"}) {
    const auto raw = nlohmann::json::parse(Slurp(work + "plan-chain-" + rate + "-raw.json"));
    EXPECT_EQ(raw["request"]["codecs"], nlohmann::json({"none"}));
    const auto lossless = nlohmann::json::parse(Slurp(work + "plan-chain-" + rate + "-lossl.json"));
    EXPECT_TRUE(lossless["request"]["codecs"].empty());
    EXPECT_TRUE(lossless["request"]["max_output_error"].is_null());
    const auto lossy = nlohmann::json::parse(Slurp(work + "plan-chain-" + rate + "-lossy.json"));
    EXPECT_EQ(lossy["request"]["max_output_error"], 0.01);
    for (const auto& note : lossy["notes"])
      EXPECT_EQ(note.get<std::string>().find("--codecs all"), std::string::npos) << note;
  }
}

}  // namespace
}  // namespace scission::testing
