#include <signal.h>
#include <sqlite3.h>

#include <chrono>
#include <filesystem>
#include <set>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "cli/run_binary.h"
#include "graph/graph_builder.h"

namespace scission::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

class Cli : public BinaryTest {
 protected:
  Cli() : BinaryTest("cli") {}
  std::string Write(const std::string& name, const std::string& bytes) {
    std::string path = dir_ + "/" + name;
    std::ofstream(path, std::ios::binary) << bytes;
    return path;
  }
};

TEST_F(Cli, BadModelsGetOneLineAndExitTwo) {
  std::string good = ChainModel(3).SerializeAsString();
  auto truncated = Write("truncated.onnx", good.substr(0, good.size() * 2 / 3));
  ExpectBadInput({"inspect", truncated}, truncated + ": ");
  std::string noise(3000, '\0');
  for (size_t i = 0; i < noise.size(); ++i) noise[i] = static_cast<char>((i * 2654435761u) >> 13);
  auto random = Write("random.onnx", noise);
  ExpectBadInput({"inspect", random}, random + ": ");
  GraphBuilder dangling;
  dangling.Input("x", {1, 4}).Node("Add", {"x", "nobody"}, {"y"}).Output("y", {1, 4});
  auto d = Write("dangling.onnx", dangling.Bytes());
  ExpectBadInput({"inspect", d}, d + ": ");
  ExpectBadInput({"inspect", dir_}, dir_ + ": is a directory");
  ExpectBadInput({"inspect", dir_ + "/missing.onnx"}, dir_ + "/missing.onnx: no such file");
  GraphBuilder future(99);
  future.Input("x", {1, 4}).Node("Relu", {"x"}, {"y"}).Output("y", {1, 4});
  auto f = Write("future.onnx", future.Bytes());
  ExpectBadInput({"inspect", f}, f + ": ONNX Runtime cannot load it: ");
  ExpectBadInput({"inspect", "not_a_zoo_model"},
                 "not_a_zoo_model: no such file, and not a zoo model");
  ExpectBadInput({"benchmark", truncated, "--resource", "r", "--tier", "edge"}, truncated + ": ");
}

TEST_F(Cli, InspectJsonHasTheDocumentedFields) {
  auto path = Write("residual.onnx", ResidualModel(2).SerializeAsString());
  auto r = Run({"inspect", path, "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto doc = nlohmann::json::parse(r.out);
  EXPECT_EQ(doc["model"], path);
  EXPECT_EQ(doc["sha256"].get<std::string>().size(), 64u);
  EXPECT_EQ(doc["inputs"][0]["name"], "x");
  EXPECT_EQ(doc["inputs"][0]["dtype"], "float32");
  ASSERT_EQ(doc["blocks"].size(), 2u);
  auto b = doc["blocks"][1];
  for (const char* key : {"index", "nodes", "first_node", "last_node", "ops", "output"})
    EXPECT_TRUE(b.contains(key)) << key;
  EXPECT_EQ(b["output"]["name"], "out1");
  EXPECT_EQ(b["output"]["bytes"], 1024);
  EXPECT_EQ(b["output"]["shape"], nlohmann::json::array({1, 4, 8, 8}));
  EXPECT_EQ(b["ops"]["Conv"], 2);
}

TEST_F(Cli, BenchmarkStoresAndExports) {
  auto path = Write("chain.onnx", ChainModel(3).SerializeAsString());
  auto r = Run({"benchmark", path, "--resource", "box", "--tier", "edge", "--repeats", "3",
                "--warmup", "1", "--threads", "1", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto doc = nlohmann::json::parse(r.out);
  EXPECT_EQ(doc["blocks"].size(), 3u);
  EXPECT_TRUE(doc["chain_check"]["ok"].get<bool>());
  EXPECT_GT(doc["sum_blocks_over_whole"].get<double>(), 0.0);
  // The chain as one segment is timed with the same repeats, and the second ratio is its own.
  EXPECT_EQ(doc["whole_segment"]["n"], 3);
  EXPECT_GT(doc["whole_segment"]["median_ms"].get<double>(), 0.0);
  EXPECT_DOUBLE_EQ(
      doc["sum_blocks_over_whole_segment"].get<double>(),
      doc["sum_block_median_ms"].get<double>() / doc["whole_segment"]["median_ms"].get<double>());
  EXPECT_EQ(doc["provenance"]["threads"], 1);
  EXPECT_THAT(doc["provenance"]["onnxruntime_version"].get<std::string>(), StartsWith("1.30"));
  EXPECT_EQ(doc["blocks"][0]["n"], 3);

  auto text = Run({"benchmark", path, "--resource", "box", "--tier", "edge", "--repeats", "2",
                   "--warmup", "1"});
  ASSERT_EQ(text.exit_code, 0) << text.err;
  EXPECT_THAT(text.out, HasSubstr("sum of block medians / whole-model median"));
  EXPECT_THAT(text.out, HasSubstr("sum of block medians / blocks 0..2 as one segment"));
  EXPECT_THAT(text.out, HasSubstr("wall time"));
  // No progress bar when stderr is not a terminal; only the note saying what input was generated.
  EXPECT_EQ(text.err, "note: input 'x': float32 [1,4,8,8] uniform [0, 1) (generated)\n");

  auto csv = Run({"export", "--format", "csv"});
  ASSERT_EQ(csv.exit_code, 0) << csv.err;
  EXPECT_EQ(std::count(csv.out.begin(), csv.out.end(), '\n'), 1 + 2 * 4);  // header + 2 runs x 4
  auto json = Run({"export", "--format", "json"});
  auto exported = nlohmann::json::parse(json.out);
  EXPECT_EQ(exported["measurements"].size(), 8u);
  EXPECT_EQ(exported["measurements"][0]["resource"], "box");
}

TEST_F(Cli, BenchmarkMeasuresCodecsAndExportsThem) {
  auto path = Write("chain.onnx", ChainModel(3).SerializeAsString());
  auto r =
      Run({"benchmark", path, "--resource", "box", "--tier", "edge", "--repeats", "2", "--warmup",
           "1", "--threads", "1", "--codecs", "lz4,int8", "--codec-repeats", "2", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto doc = nlohmann::json::parse(r.out);
  const size_t boundaries = doc["blocks"].size() + 1;
  ASSERT_EQ(doc["codecs"].size(), 2 * boundaries);
  for (const auto& c : doc["codecs"]) {
    EXPECT_GT(c["raw_bytes"].get<int64_t>(), 0);
    if (c["codec"] == "lz4") {
      EXPECT_EQ(c["rel_l2_error"], 0);
    } else {
      EXPECT_EQ(c["codec"], "int8");
      EXPECT_LE(c["bytes"].get<int64_t>(), c["raw_bytes"].get<int64_t>() / 4 + 64);
      EXPECT_GT(c["rel_l2_error"].get<double>(), 0);
      EXPECT_EQ(c["fidelity_inputs"], 1);
    }
  }
  auto text = Run({"benchmark", path, "--resource", "box", "--tier", "edge", "--repeats", "2",
                   "--warmup", "1"});  // lossless codecs: the default
  ASSERT_EQ(text.exit_code, 0) << text.err;
  EXPECT_THAT(text.out, HasSubstr("codecs over 4 boundaries"));
  EXPECT_THAT(text.out, HasSubstr("zstd"));
  // inspect --codecs: the latest run's measurements, per boundary and codec.
  auto shown = Run({"inspect", path, "--codecs"});
  ASSERT_EQ(shown.exit_code, 0) << shown.err;
  EXPECT_THAT(shown.out, HasSubstr("codecs on box (edge; run 2;"));
  EXPECT_THAT(shown.out, ::testing::ContainsRegex("\n0 +input +lz4 "));
  EXPECT_THAT(shown.out, ::testing::ContainsRegex("\n3 +output +zstd "));
  auto shown_json = Run({"inspect", path, "--codecs", "--json"});
  ASSERT_EQ(shown_json.exit_code, 0) << shown_json.err;
  auto stored = nlohmann::json::parse(shown_json.out)["codecs"];
  ASSERT_EQ(stored.size(), 1u);
  EXPECT_EQ(stored[0]["resource"], "box");
  const auto& records = stored[0]["records"];
  ASSERT_EQ(records.size(), 2 * boundaries);  // lz4 and zstd at each boundary
  EXPECT_EQ(records[0]["boundary"], 0);
  EXPECT_EQ(records[0]["tensor"], "input");
  EXPECT_EQ(records[records.size() - 1]["tensor"], "output");
  const std::string first_cut = records[2]["tensor"];  // block 0's output
  EXPECT_FALSE(first_cut.empty() || first_cut == "input" || first_cut == "output") << first_cut;
  for (const auto& c : records) {
    EXPECT_TRUE(c["codec"] == "lz4" || c["codec"] == "zstd") << c;
    EXPECT_TRUE(c["top1_agreement"].is_null()) << c;  // lossless: fidelity not measured
    EXPECT_GT(c["bytes"].get<int64_t>(), 0);
  }
  auto none = Run({"benchmark", path, "--resource", "box", "--tier", "edge", "--repeats", "2",
                   "--warmup", "1", "--codecs", "none", "--json"});
  ASSERT_EQ(none.exit_code, 0) << none.err;
  EXPECT_TRUE(nlohmann::json::parse(none.out)["codecs"].empty());
  // The latest run measured none: inspect says so (the planner would use none either).
  ExpectBadInput({"inspect", path, "--codecs"}, "no codec measurements");
  ExpectBadInput({"inspect", Write("other.onnx", ChainModel(2).SerializeAsString()), "--codecs"},
                 "no codec measurements");

  auto csv = Run({"export", "--what", "codecs"});
  ASSERT_EQ(csv.exit_code, 0) << csv.err;
  // Header, 2 codecs x 4 boundaries of the first run, 2 lossless codecs x 4 of the second.
  EXPECT_EQ(std::count(csv.out.begin(), csv.out.end(), '\n'), 1 + 8 + 8);
  EXPECT_THAT(csv.out, StartsWith("run_id,resource,tier,model"));
  auto json = nlohmann::json::parse(Run({"export", "--format", "json"}).out);
  EXPECT_EQ(json["codecs"].size(), 16u);

  ExpectBadInput({"benchmark", path, "--resource", "r", "--tier", "edge", "--codecs", "gzip"},
                 "--codecs: unknown codec 'gzip'");
  ExpectBadInput({"benchmark", path, "--resource", "r", "--tier", "edge", "--codec-repeats", "0"},
                 "codec repeats");
  auto wide = Write("wide.npy", std::string("\x93NUMPY\x01\x00", 8));
  ExpectBadInput({"benchmark", path, "--resource", "r", "--tier", "edge", "--fidelity-input",
                  "x=" + dir_ + "/nothing-here"},
                 "");
  ExpectBadInput(
      {"benchmark", path, "--resource", "r", "--tier", "edge", "--fidelity-input", "y=" + wide},
      "--fidelity-input y: the model has no input 'y'");
  ExpectBadInput({"benchmark", path, "--resource", "r", "--tier", "edge", "--codecs", "none",
                  "--fidelity-input", "x=" + wide},
                 "");
}

TEST_F(Cli, BadOptionsAreBadInput) {
  auto path = Write("chain.onnx", ChainModel(1).SerializeAsString());
  ExpectBadInput({"benchmark", path, "--resource", "r", "--tier", "edge", "--repeats", "0"},
                 "--repeats");
  ExpectBadInput({"benchmark", path, "--resource", "r", "--tier", "edge", "--threads", "-3"},
                 "--threads");
  ExpectBadInput({"benchmark", path, "--tier", "edge"}, "");
}

TEST_F(Cli, DatabaseThatIsADirectoryOrGarbage) {
  auto r = Run({"network", "list", "--db", dir_});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, StartsWith("error: " + dir_));
  auto garbage = Write("garbage.db", std::string(8192, 'g'));
  r = Run({"network", "list", "--db", garbage});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_THAT(r.err, StartsWith("error: " + garbage));
}

TEST_F(Cli, ImportScissionAndBadFilesChangeNothing) {
  auto r = Run({"import-scission", SCISSION_DATA_DIR, "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto doc = nlohmann::json::parse(r.out);
  EXPECT_EQ(doc["runs"], 90);
  auto before = Run({"export", "--format", "csv"}).out;

  std::string bad_dir = dir_ + "/bad";
  std::filesystem::create_directories(bad_dir);
  std::filesystem::copy_file(std::string(SCISSION_DATA_DIR) + "/edge-2500.dat",
                             bad_dir + "/edge-2500.dat");
  std::ofstream(bad_dir + "/device-evil.dat", std::ios::binary) << "\x80\x03"
                                                                   "cos\nsystem\n.";
  auto bad = Run({"import-scission", bad_dir});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_THAT(bad.err, HasSubstr("device-evil.dat: offset 2: refusing global 'os.system'"));
  EXPECT_EQ(Run({"export", "--format", "csv"}).out, before);

  auto csv = Write("net.csv", "source,destination,ping(ms),bandwidth(mbps)\na,b,1,2\na,c,oops,2\n");
  ExpectBadInput({"network", "import", csv}, csv + ":3: ping 'oops'");
  ExpectBadInput({"network", "set", "a", "b", "--rtt-ms", "1", "--mbps", "0"}, "--mbps");
  EXPECT_EQ(Run({"export", "--format", "csv"}).out, before);
}

TEST_F(Cli, NetworkSetAndList) {
  ASSERT_EQ(Run({"network", "set", "pi", "edge1", "--rtt-ms", "12.5", "--mbps", "40"}).exit_code,
            0);
  auto r = Run({"network", "list", "--json"});
  auto doc = nlohmann::json::parse(r.out);
  ASSERT_EQ(doc.size(), 1u);
  EXPECT_EQ(doc[0]["source"], "pi");
  EXPECT_DOUBLE_EQ(doc[0]["rtt_ms"].get<double>(), 12.5);
}

TEST_F(Cli, KillNineDuringBenchmarksLeavesStoreIntact) {
  auto path = Write("chain.onnx", ChainModel(6).SerializeAsString());
  std::vector<std::string> args = {"benchmark", path, "--resource", "r", "--tier",    "edge",
                                   "--repeats", "30", "--warmup",   "2", "--threads", "1"};
  ASSERT_EQ(Run(args).exit_code, 0);
  // Kill further benchmarks at staggered moments, some inside the store transaction.
  for (int attempt = 0; attempt < 12; ++attempt) {
    pid_t pid = SpawnScission(args, env_, "");
    std::this_thread::sleep_for(std::chrono::milliseconds(20 + 25 * attempt));
    ::kill(pid, SIGKILL);
    int status = 0;
    ::waitpid(pid, &status, 0);
  }
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((dir_ + "/s.db").c_str(), &db), SQLITE_OK);
  auto scalar = [&](const char* sql) {
    sqlite3_stmt* s = nullptr;
    EXPECT_EQ(sqlite3_prepare_v2(db, sql, -1, &s, nullptr), SQLITE_OK);
    EXPECT_EQ(sqlite3_step(s), SQLITE_ROW);
    std::string v = reinterpret_cast<const char*>(sqlite3_column_text(s, 0));
    sqlite3_finalize(s);
    return v;
  };
  EXPECT_EQ(scalar("PRAGMA integrity_check"), "ok");
  EXPECT_GE(std::stoi(scalar("SELECT COUNT(*) FROM runs")), 1);
  // Every stored run is complete: whole model + 6 blocks.
  EXPECT_EQ(scalar("SELECT COUNT(*) FROM runs WHERE (SELECT COUNT(*) FROM measurements m WHERE "
                   "m.run_id = runs.id) != 7"),
            "0");
  sqlite3_close(db);
  auto r = Run({"export", "--format", "json"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
}

TEST_F(Cli, ModelsListsTheZoo) {
  auto r = Run({"models", "--json"});
  ASSERT_EQ(r.exit_code, 0);
  auto doc = nlohmann::json::parse(r.out);
  EXPECT_GE(doc["models"].size(), 18u);
  std::set<std::string> names;
  for (const auto& m : doc["models"]) names.insert(m["name"]);
  for (const char* name :
       {"vgg16", "vgg19", "resnet50", "resnet101", "resnet152", "inception_v3", "mobilenet_v2",
        "densenet121", "densenet169", "densenet201", "mobilenet_v3_large", "efficientnet_b0",
        "resnet18", "squeezenet1_1", "googlenet", "regnet_y_400mf", "convnext_tiny", "vit_b_16"})
    EXPECT_TRUE(names.count(name)) << name;
  EXPECT_FALSE(doc["models"][0]["exported"].get<bool>());  // fresh SCISSION_HOME
}

}  // namespace
}  // namespace scission::testing
