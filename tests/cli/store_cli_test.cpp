// The store's verbs as a user runs them: numbers, names, foreign and read-only databases, kept
// runs, and the one-line exit-2 contract for bad input.
#include <sqlite3.h>
#include <sys/stat.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "cli/run_binary.h"

namespace scission::testing {
namespace {

using namespace std::string_literals;

using ::testing::HasSubstr;
using ::testing::StartsWith;

class StoreCli : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "/store_cli_" + std::to_string(::getpid()) + "_" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::error_code ec;
    std::filesystem::permissions(dir_, std::filesystem::perms::all, ec);
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    db_ = dir_ + "/s.db";
    env_ = {"SCISSION_DB=" + db_, "SCISSION_HOME=" + dir_ + "/home"};
  }
  std::string Write(const std::string& name, const std::string& bytes) {
    std::string path = dir_ + "/" + name;
    std::ofstream(path, std::ios::binary) << bytes;
    return path;
  }
  CommandResult Run(const std::vector<std::string>& args) { return RunScission(args, env_); }
  // A bad-input run: exit 2 and exactly one `error: <prefix>...` line.
  std::string ExpectBadInput(const std::vector<std::string>& args, const std::string& prefix) {
    auto r = Run(args);
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_THAT(r.err, StartsWith("error: " + prefix)) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    return r.err;
  }
  void Sql(const std::string& path, const std::string& sql) {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
    char* message = nullptr;
    EXPECT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &message), SQLITE_OK)
        << (message ? message : "");
    sqlite3_free(message);
    sqlite3_close(db);
  }
  std::string dir_, db_;
  std::vector<std::string> env_;
};

// Like RunScission, but as a user who cannot write what root made read-only (root writes
// anything, so a root test process runs the binary as nobody).
CommandResult RunUnprivileged(const std::vector<std::string>& args,
                              const std::vector<std::string>& env) {
  std::string base = ::testing::TempDir() + "/unprivileged_" + std::to_string(::getpid());
  std::string out_path = base + ".out", err_path = base + ".err";
  pid_t pid = ::fork();
  if (pid == 0) {
    for (const auto& e : env) ::putenv(const_cast<char*>(e.c_str()));
    int out = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int err = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(out, 1);
    ::dup2(err, 2);
    if (::geteuid() == 0 && (::setgid(65534) != 0 || ::setuid(65534) != 0)) ::_exit(126);
    std::vector<std::string> copy = args;
    std::string binary = SCISSION_BINARY;
    std::vector<char*> argv = {binary.data()};
    for (auto& a : copy) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv(binary.c_str(), argv.data());
    ::_exit(127);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  CommandResult r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.out = Slurp(out_path);
  r.err = Slurp(err_path);
  std::filesystem::remove(out_path);
  std::filesystem::remove(err_path);
  return r;
}

TEST_F(StoreCli, InputSizeMustBeFiniteAndSane) {
  for (const char* bad : {"nan", "inf", "1e308", "-1"})
    EXPECT_THAT(
        ExpectBadInput({"import-scission", SCISSION_DATA_DIR, "--input-mb", bad}, "--input-mb: "),
        HasSubstr("MB is not within 0..1e+06 MB"));
  EXPECT_FALSE(std::filesystem::exists(db_)) << "refused before the store was opened";
  auto r = Run({"import-scission", SCISSION_DATA_DIR, "--input-mb", "0.3"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto plan = Run({"plan", "vgg19", "--top", "1", "--json"});
  ASSERT_EQ(plan.exit_code, 0) << plan.err;
  auto best = nlohmann::json::parse(plan.out);
  EXPECT_EQ(best["input_bytes"], 300000);
  EXPECT_GT(best["plans"][0]["latency_ms"].get<double>(), 0);
  for (const char* bad : {"inf", "nan", "1e308"})
    ExpectBadInput({"predict", SCISSION_DATA_DIR, "network_stats.csv", "vgg19", "-i", bad}, "-i: ");
}

TEST_F(StoreCli, LinksAreValidatedOnEveryPath) {
  ExpectBadInput({"network", "set", "a", "b", "--rtt-ms", "1", "--mbps", "1e-320"},
                 "--mbps: bandwidth 1e-320 Mbit/s is not within 0.001..1e+07 Mbit/s");
  ExpectBadInput({"network", "set", "a", "b", "--rtt-ms", "nan", "--mbps", "5"},
                 "--rtt-ms: RTT nan ms is not within 0..60000 ms");
  ExpectBadInput({"network", "set", "a", "b", "--rtt-ms", "1e999", "--mbps", "5"}, "--rtt-ms: ");
  ExpectBadInput({"network", "set", "a", "a", "--rtt-ms", "1", "--mbps", "5"},
                 "network set: link from 'a' to itself");
  ExpectBadInput({"network", "set", "a\x01", "b", "--rtt-ms", "1", "--mbps", "5"},
                 "network set: source: name 'a\\x01' contains a control character");
  const std::string header = "source,destination,ping(ms),bandwidth(mbps)\n";
  auto self = Write("self.csv", header + "a,b,1,2\nc,c,1,2\n");
  ExpectBadInput({"network", "import", self}, self + ":3: link from 'c' to itself");
  auto nul = Write("nul.csv", header + "a\0b,c,1,2\n"s);
  ExpectBadInput({"network", "import", nul}, nul + ":2: source: name 'a\\x00b'");
  auto tiny = Write("tiny.csv", header + "a,b,1,1e-320\n");
  ExpectBadInput({"network", "import", tiny}, tiny + ":2: bandwidth 1e-320");
  // import-scission reads the same CSV rules.
  std::string data = dir_ + "/data";
  std::filesystem::create_directories(data);
  std::filesystem::copy_file(std::string(SCISSION_DATA_DIR) + "/edge-2500.dat",
                             data + "/edge-2500.dat");
  ExpectBadInput({"import-scission", data, "--network", tiny}, tiny + ":2: bandwidth");
  auto r = Run({"network", "list", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out).size(), 0u) << "nothing was stored";
}

TEST_F(StoreCli, JsonOutputSurvivesInvalidUtf8AlreadyStored) {
  ASSERT_EQ(Run({"network", "set", "a", "b", "--rtt-ms", "1", "--mbps", "5"}).exit_code, 0);
  // As an older Scission could store it.
  Sql(db_, "UPDATE links SET source = CAST(X'FF61' AS TEXT)");
  auto r = Run({"network", "list", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto doc = nlohmann::json::parse(r.out);
  EXPECT_EQ(doc[0]["source"],
            "\xef\xbf\xbd"
            "a");  // U+FFFD for the bad byte
  auto exported = Run({"export", "--json"});
  EXPECT_EQ(exported.exit_code, 0) << exported.err;
}

TEST_F(StoreCli, ForeignDatabaseIsRefusedAndUntouched) {
  std::string foreign = dir_ + "/app.db";
  Sql(foreign, "CREATE TABLE notes(x); INSERT INTO notes VALUES('mine')");
  std::string before = Slurp(foreign);
  for (std::vector<std::string> args :
       {std::vector<std::string>{"network", "list"},
        {"network", "set", "a", "b", "--rtt-ms", "1", "--mbps", "5"},
        {"import-scission", SCISSION_DATA_DIR},
        {"export"}})
    ExpectBadInput(
        [&] {
          args.push_back("--db");
          args.push_back(foreign);
          return args;
        }(),
        foreign + ": not a Scission database (application_id 0x0, user_version 0, tables: notes)");
  EXPECT_EQ(Slurp(foreign), before);
  Write("s.db", "");  // an empty file is a new database
  ASSERT_EQ(Run({"network", "list"}).exit_code, 0);
  Sql(db_, "PRAGMA user_version = -7");
  ExpectBadInput({"network", "list"}, db_ + ": schema version -7 is not one Scission writes");
}

TEST_F(StoreCli, ReadOnlyDatabaseServesReadingVerbs) {
  ASSERT_EQ(Run({"import-scission", SCISSION_DATA_DIR}).exit_code, 0);
  auto writable_export = Run({"export", "--format", "csv"});
  ASSERT_EQ(writable_export.exit_code, 0);
  std::string out_dir = dir_ + "/out";
  std::filesystem::create_directories(out_dir);
  ::chmod(out_dir.c_str(), 0777);
  auto check = [&](const std::string& what) {
    auto list = RunUnprivileged({"network", "list", "--json"}, env_);
    EXPECT_EQ(list.exit_code, 0) << what << ": " << list.err;
    EXPECT_EQ(nlohmann::json::parse(list.out, nullptr, false).size(), 8u) << what;
    auto exported = RunUnprivileged({"export", "--format", "csv"}, env_);
    EXPECT_EQ(exported.exit_code, 0) << what << ": " << exported.err;
    EXPECT_EQ(exported.out, writable_export.out) << what;
    auto plan = RunUnprivileged({"plan", "vgg19", "--top", "1"}, env_);
    EXPECT_EQ(plan.exit_code, 0) << what << ": " << plan.err;
    auto report = RunUnprivileged({"report", "--out", out_dir + "/r.html"}, env_);
    EXPECT_EQ(report.exit_code, 0) << what << ": " << report.err;
    auto set = RunUnprivileged({"network", "set", "a", "b", "--rtt-ms", "1", "--mbps", "5"}, env_);
    EXPECT_EQ(set.exit_code, 2) << what;
    EXPECT_THAT(set.err, StartsWith("error: " + db_ + ": the database is read-only")) << what;
    EXPECT_EQ(std::count(set.err.begin(), set.err.end(), '\n'), 1) << set.err;
  };
  ::chmod(db_.c_str(), 0444);
  ::chmod(dir_.c_str(), 0777);
  check("read-only file");
  for (const char* suffix : {"-wal", "-shm"}) std::filesystem::remove(db_ + suffix);
  ::chmod(db_.c_str(), 0666);
  ::chmod(dir_.c_str(), 0555);
  check("read-only directory");
  ::chmod(dir_.c_str(), 0755);
}

// A run document as `benchmark` keeps it when the store stays locked.
nlohmann::json KeptRun() {
  nlohmann::json measurement = {{"block", 0},
                                {"setup_ms", 1.5},
                                {"first_run_ms", 2.0},
                                {"n", 3},
                                {"median_ms", 4.0},
                                {"mean_ms", 4.1},
                                {"p90_ms", 4.5},
                                {"p95_ms", 4.6},
                                {"stddev_ms", 0.2},
                                {"min_ms", 3.9},
                                {"max_ms", 4.7},
                                {"output_bytes", 1024},
                                {"samples_ms", {3.9, 4.0, 4.7}}};
  nlohmann::json whole = measurement;
  whole["block"] = -1;
  return {{"resource", {{"name", "pi"}, {"tier", "device"}}},
          {"model",
           {{"key", std::string(64, 'a')},
            {"name", "tiny"},
            {"path", "/m/tiny.onnx"},
            {"origin", "onnx"},
            {"file_bytes", 100},
            {"input_bytes", 64}}},
          {"blocks",
           {{{"index", 0},
             {"nodes", 2},
             {"first_node", "conv"},
             {"last_node", "relu"},
             {"ops", "Conv:1,Relu:1"},
             {"output_name", "y"},
             {"output_shape", "[1,4]"},
             {"output_dtype", "float32"},
             {"output_bytes", 16},
             {"first_layer", 0},
             {"last_layer", 0}}}},
          {"run",
           {{"kind", "benchmark"},
            {"started_at", "2024-01-31T12:00:00Z"},
            {"backend", "onnxruntime"},
            {"runtime_version", "1.30.0"},
            {"execution_provider", "CPUExecutionProvider"},
            {"cpu_model", "cpu"},
            {"host", "h"},
            {"build_type", "Release"},
            {"threads", 1},
            {"warmup", 1},
            {"repeats", 3},
            {"wall_ms", 100.0},
            {"setup_ms", 10.0},
            {"measurements", {whole, measurement}}}}};
}

TEST_F(StoreCli, ImportRunStoresAKeptRun) {
  auto file = Write("kept.json", KeptRun().dump());
  auto r = Run({"import-run", file, "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out)["run_id"], 1);
  auto exported = nlohmann::json::parse(Run({"export", "--format", "json"}).out);
  ASSERT_EQ(exported["measurements"].size(), 2u);
  EXPECT_EQ(exported["measurements"][1]["resource"], "pi");
  EXPECT_DOUBLE_EQ(exported["measurements"][1]["median_ms"].get<double>(), 4.0);

  ExpectBadInput({"import-run", dir_ + "/missing.json"}, dir_ + "/missing.json: no such file");
  auto garbage = Write("garbage.json", "{not json");
  ExpectBadInput({"import-run", garbage}, garbage + ": not valid JSON");
  auto bad = KeptRun();
  bad["run"]["measurements"][1]["median_ms"] = "fast";
  auto typed = Write("typed.json", bad.dump());
  ExpectBadInput({"import-run", typed},
                 typed + ": run.measurements[1].median_ms: must be a number");
  bad = KeptRun();
  bad.erase("resource");
  auto anonymous = Write("anonymous.json", bad.dump());
  ExpectBadInput({"import-run", anonymous}, anonymous + ": resource: missing");
  bad = KeptRun();
  bad["blocks"][0]["output_bytes"] = -5;
  auto negative = Write("negative.json", bad.dump());
  ExpectBadInput({"import-run", negative}, negative + ": blocks[0].output_bytes: -5 is not within");
  EXPECT_EQ(nlohmann::json::parse(Run({"export", "--format", "json"}).out)["measurements"].size(),
            2u);
}

TEST_F(StoreCli, ImportRunWaitsForALockWithANote) {
  ASSERT_EQ(Run({"network", "list"}).exit_code, 0);  // creates the database
  auto file = Write("kept.json", KeptRun().dump());
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(db_.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr), SQLITE_OK);
  // Past the 10 s busy timeout, which used to be the end of the run.
  std::thread release([db] {
    std::this_thread::sleep_for(std::chrono::milliseconds(11'000));
    sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr);
  });
  auto r = Run({"import-run", file});
  release.join();
  sqlite3_close(db);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr(db_ + ": the database is locked by another process"));
  EXPECT_THAT(r.out, HasSubstr("stored run 1"));
}

TEST_F(StoreCli, ReportWritesOnlyWhereTheUserSaid) {
  ExpectBadInput({"report", "--out", "/nonexistent_scission_test/dir/r.html"},
                 "/nonexistent_scission_test/dir/r.html: directory /nonexistent_scission_test/dir "
                 "does not exist");
  EXPECT_FALSE(std::filesystem::exists("/nonexistent_scission_test"));
  ExpectBadInput({"report", "--out", dir_}, "--out: " + dir_ + " is a directory");
  ExpectBadInput({"report", "--top", "0"}, "--top: 0 is not within 1..100");
  ExpectBadInput({"report", "--tiers", ""}, "--tiers: name is empty");
  ExpectBadInput({"report", "--tiers", "edge,edge"}, "--tiers: 'edge,edge' lists a tier twice");
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/report.html"));
}

TEST_F(StoreCli, BadInputOfTheStoreVerbsIsOneLineAndExitTwo) {
  ExpectBadInput({"network", "set", "a", "b", "--rtt-ms", "x", "--mbps", "5"}, "");
  ExpectBadInput({"network", "import", dir_}, dir_ + ": is a directory");
  ExpectBadInput({"import-scission", dir_ + "/none"}, dir_ + "/none: not a directory");
  ExpectBadInput({"export", "--format", "xml"}, "--format: xml not in {csv,json}");
  ExpectBadInput({"zoo", "export", "nosuch"}, "'nosuch' is not a zoo model");
  ExpectBadInput({"predict", SCISSION_DATA_DIR, "missing.csv", "vgg19"},
                 "missing.csv: no such file");
  ExpectBadInput({"network", "list", "--db", dir_}, dir_ + ": is a directory");
}

}  // namespace
}  // namespace scission::testing
