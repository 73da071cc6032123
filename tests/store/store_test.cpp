#include <signal.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <thread>

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/error.h"
#include "common/files.h"
#include "store/records.h"
#include "store/scission_data.h"
#include "store/store.h"
#include "store/validate.h"

namespace scission::store {
namespace {

std::string FreshDb(const std::string& name) {
  std::string path = ::testing::TempDir() + "/store_test_" + name + ".db";
  for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(path + suffix);
  return path;
}

RunRecord SampleRun(double base) {
  RunRecord run;
  run.started_at = NowIso8601();
  run.backend = "onnxruntime";
  run.threads = 1;
  for (int b = -1; b < 3; ++b) {
    MeasurementRecord m;
    m.block_index = b;
    m.n = 3;
    m.median_ms = base + b;
    m.samples_ms = {base + b, base + b + 0.1, base + b - 0.1};
    m.output_bytes = 1000 * (b + 2);
    run.measurements.push_back(m);
  }
  return run;
}

using namespace std::string_literals;
using ::testing::HasSubstr;

std::string ErrorOf(const std::function<void()>& action) {
  try {
    action();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kBadInput) << e.what();
    return e.what();
  }
  return "no error";
}

// Runs `checks` in a child process that cannot write the files this process made read-only: as
// root (who may write anything) the child becomes nobody first. Fails when any check failed.
void AsUnprivilegedUser(const std::function<void()>& checks) {
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    if (::geteuid() == 0 && (::setgid(65534) != 0 || ::setuid(65534) != 0)) ::_exit(3);
    checks();
    ::_exit(::testing::Test::HasFailure() ? 1 : 0);
  }
  int status = 0;
  ::waitpid(child, &status, 0);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "a check in the unprivileged child failed (see above)";
}

// A raw SQLite connection for what Scission itself never does (foreign files, locks, tampering).
class RawDb {
 public:
  explicit RawDb(const std::string& path) {
    EXPECT_EQ(sqlite3_open(path.c_str(), &db_), SQLITE_OK);
  }
  ~RawDb() { sqlite3_close(db_); }
  void Exec(const std::string& sql) {
    char* message = nullptr;
    EXPECT_EQ(sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &message), SQLITE_OK)
        << sql << ": " << (message ? message : "");
    sqlite3_free(message);
  }
  int64_t Scalar(const std::string& sql) {
    sqlite3_stmt* s = nullptr;
    EXPECT_EQ(sqlite3_prepare_v2(db_, sql.c_str(), -1, &s, nullptr), SQLITE_OK);
    EXPECT_EQ(sqlite3_step(s), SQLITE_ROW);
    int64_t value = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    return value;
  }

 private:
  sqlite3* db_ = nullptr;
};

std::vector<BlockRecord> SampleBlocks() {
  std::vector<BlockRecord> blocks(3);
  for (int i = 0; i < 3; ++i) {
    blocks[i].index = i;
    blocks[i].output_bytes = 1000 * (i + 2);
    blocks[i].first_layer = blocks[i].last_layer = i;
  }
  return blocks;
}

TEST(Store, CreatesSchemaAndRoundTripsARun) {
  Store db(FreshDb("roundtrip"));
  EXPECT_EQ(db.schema_version(), kSchemaVersion);
  ModelRecord model{"abc123", "tiny", "/tmp/tiny.onnx", "onnx", 10, 64};
  model.key = std::string(64, 'a');
  db.SaveRun({"pi", "device"}, model, SampleBlocks(), SampleRun(10));
  db.SaveRun({"pi", "device"}, model, SampleBlocks(), SampleRun(20));  // newer run wins
  db.SaveRun({"vm", "edge"}, model, SampleBlocks(), SampleRun(5));
  auto views = db.LatestProfiles(model.key);
  ASSERT_EQ(views.size(), 2u);
  EXPECT_EQ(views[0].resource, "pi");
  ASSERT_TRUE(views[0].whole.has_value());
  EXPECT_DOUBLE_EQ(views[0].whole->median_ms, 19);
  ASSERT_EQ(views[0].block_measurements.size(), 3u);
  EXPECT_DOUBLE_EQ(views[0].block_measurements[2].median_ms, 22);
  EXPECT_EQ(views[0].block_measurements[2].samples_ms.size(), 3u);
  EXPECT_EQ(views[1].resource, "vm");
  EXPECT_EQ(views[0].blocks.size(), 3u);
  EXPECT_EQ(db.CountRuns(), 3);
}

TEST(Store, LinksUpsert) {
  Store db(FreshDb("links"));
  db.UpsertLink({"a", "b", 10, 20, "set", ""});
  db.UpsertLink({"a", "b", 5, 100, "probe", ""});
  auto link = db.FindLink("a", "b");
  ASSERT_TRUE(link.has_value());
  EXPECT_DOUBLE_EQ(link->mbps, 100);
  EXPECT_EQ(db.Links().size(), 1u);
  EXPECT_FALSE(db.FindLink("b", "a").has_value());
}

TEST(Store, RefusesNonDatabaseAndNewerSchema) {
  std::string garbage = FreshDb("garbage");
  std::ofstream(garbage) << std::string(4096, 'x');
  EXPECT_THROW(Store{garbage}, Error);
  std::string newer = FreshDb("newer");
  {
    Store db(newer);
    db.connection().Exec("PRAGMA user_version = 99");
  }
  try {
    Store db(newer);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kBadInput);
    EXPECT_THAT(e.what(), ::testing::HasSubstr("newer"));
  }
}

void KillSelf() { ::raise(SIGKILL); }

TEST(Store, KillNineInsideTheTransactionKeepsEarlierData) {
  std::string path = FreshDb("kill");
  ModelRecord model{std::string(64, '0'), "k", "", "onnx", 0, 0};
  {
    Store db(path);
    db.SaveRun({"pi", "device"}, model, SampleBlocks(), SampleRun(10));
  }
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    Store db(path);
    db.set_mid_transaction_hook(&KillSelf);
    db.SaveRun({"pi", "device"}, model, SampleBlocks(), SampleRun(99));
    ::_exit(0);  // not reached
  }
  int status = 0;
  ::waitpid(child, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status));
  EXPECT_EQ(WTERMSIG(status), SIGKILL);

  Store db(path);
  auto check = db.connection().Prepare("PRAGMA integrity_check");
  ASSERT_TRUE(check.Step());
  EXPECT_EQ(check.Text(0), "ok");
  EXPECT_EQ(db.CountRuns(), 1);
  auto views = db.LatestProfiles(model.key);
  ASSERT_EQ(views.size(), 1u);
  EXPECT_DOUBLE_EQ(views[0].whole->median_ms, 9);
  EXPECT_EQ(views[0].block_measurements.size(), 3u);
  // And the store still takes new runs.
  db.SaveRun({"pi", "device"}, model, SampleBlocks(), SampleRun(30));
  EXPECT_EQ(db.CountRuns(), 2);
}

TEST(Store, ImportsTheOriginalToolsData) {
  Store db(FreshDb("import"));
  auto systems = LoadScissionDirectory(SCISSION_DATA_DIR);
  auto links = LoadNetworkCsv(std::string(SCISSION_DATA_DIR) + "/network_stats.csv");
  auto summary = ImportScission(db, systems, links);
  EXPECT_EQ(summary.systems, 5);
  EXPECT_EQ(summary.models, 18);
  EXPECT_EQ(summary.runs, 90);
  EXPECT_EQ(summary.links, 8);
  auto views = db.LatestProfiles("scission:vgg19");
  ASSERT_EQ(views.size(), 5u);
  for (const auto& v : views) {
    EXPECT_EQ(v.input_bytes, 150000);
    EXPECT_EQ(v.blocks.size(), v.block_measurements.size());
    EXPECT_EQ(v.blocks.back().last_layer, 25);
  }
  auto raspi = std::find_if(views.begin(), views.end(),
                            [](const auto& v) { return v.resource == "raspi4"; });
  ASSERT_NE(raspi, views.end());
  EXPECT_EQ(raspi->tier, "device");
  EXPECT_DOUBLE_EQ(raspi->block_measurements[0].median_ms, 0.07058942317962646 * 1000);
  EXPECT_DOUBLE_EQ(db.FindLink("raspi4", "2500")->rtt_ms, 66.7);
}

TEST(Validate, LinkRule) {
  LinkRecord good{"a", "b", 10, 20, "set", ""};
  ValidateLink(good, "x");
  auto with = [&](auto change) {
    LinkRecord l = good;
    change(l);
    return ErrorOf([&] { ValidateLink(l, "x"); });
  };
  EXPECT_THAT(with([](LinkRecord& l) { l.mbps = 1e-320; }), HasSubstr("x: bandwidth 1e-320"));
  EXPECT_THAT(with([](LinkRecord& l) { l.mbps = 1e8; }), HasSubstr("0.001..1e+07 Mbit/s"));
  EXPECT_THAT(with([](LinkRecord& l) { l.mbps = std::nan(""); }), HasSubstr("bandwidth nan"));
  EXPECT_THAT(with([](LinkRecord& l) { l.rtt_ms = std::nan(""); }), HasSubstr("x: RTT nan ms"));
  EXPECT_THAT(with([](LinkRecord& l) { l.rtt_ms = HUGE_VAL; }), HasSubstr("0..60000 ms"));
  EXPECT_THAT(with([](LinkRecord& l) { l.rtt_ms = -0.5; }), HasSubstr("RTT -0.5"));
  EXPECT_THAT(with([](LinkRecord& l) { l.destination = "a"; }), HasSubstr("to itself"));
  EXPECT_THAT(with([](LinkRecord& l) { l.source = "a\nb"; }), HasSubstr("control character"));
  LinkRecord edge = good;
  edge.rtt_ms = 0;
  edge.mbps = 1e-3;
  ValidateLink(edge, "x");  // the bounds themselves are allowed
}

TEST(Validate, NameRule) {
  ValidateName("raspi4", "n");
  ValidateName("6700k(GPU) \xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", "n");
  ValidateName(std::string(kMaxNameBytes, 'x'), "n");
  EXPECT_THAT(ErrorOf([] { ValidateName("", "--resource"); }),
              HasSubstr("--resource: name is empty"));
  EXPECT_THAT(ErrorOf([] { ValidateName(std::string(kMaxNameBytes + 1, 'x'), "n"); }),
              HasSubstr("longer than 128 bytes"));
  for (std::string bad : {"\xff"s, "\xc0\x80"s /* overlong NUL */, "\xed\xa0\x80"s /* surrogate */,
                          "\xf4\x90\x80\x80"s /* > U+10FFFF */, "\xe2\x82"s /* cut short */})
    EXPECT_THAT(ErrorOf([&] { ValidateName("a" + bad, "n"); }), HasSubstr("not valid UTF-8"));
  for (std::string bad : {"\x00"s, "\t"s, "\x7f"s, "\xc2\x85"s /* C1 NEL */})
    EXPECT_THAT(ErrorOf([&] { ValidateName("a" + bad, "n"); }), HasSubstr("control character"));
  EXPECT_EQ(NameFromFileStem("we\x01ird\xff"), "we_ird_");
  EXPECT_EQ(NameFromFileStem(std::string(300, 'x')).size(), kMaxNameBytes);
  EXPECT_EQ(NameFromFileStem(""), "model");
}

TEST(Validate, InputSize) {
  EXPECT_EQ(InputBytesFromMb(0.15, "-i"), 150000);
  for (double bad : {std::nan(""), HUGE_VAL, 1e308, -1.0, 1e6 + 1})
    EXPECT_THAT(ErrorOf([&] { InputBytesFromMb(bad, "--input-mb"); }),
                HasSubstr("MB is not within 0..1e+06 MB"));
}

TEST(Store, CodecMeasurementsRoundTripThroughTheStoreAndJson) {
  Store db(FreshDb("codecs"));
  ModelRecord model{"abc", "tiny", "", "onnx", 10, 64};
  model.key = std::string(64, 'c');
  RunRecord run = SampleRun(10);
  run.codecs = {{.boundary = 0,
                 .codec = "lz4",
                 .raw_bytes = 64,
                 .bytes = 40,
                 .encode_ms = 0.01,
                 .decode_ms = 0.005,
                 .max_abs_error = 0,
                 .rel_l2_error = 0},
                {.boundary = 3,
                 .codec = "int8+zstd",
                 .raw_bytes = 5000,
                 .bytes = 900,
                 .encode_ms = 0.2,
                 .decode_ms = 0.1,
                 .max_abs_error = 0.02,
                 .rel_l2_error = 0.004,
                 .top1_agreement = 0.75,
                 .fidelity_inputs = 4}};
  db.SaveRun({"pi", "device"}, model, SampleBlocks(), run);
  auto views = db.LatestProfiles(model.key);
  ASSERT_EQ(views.size(), 1u);
  ASSERT_EQ(views[0].codecs.size(), 2u);
  const CodecRecord& c = views[0].codecs[1];
  EXPECT_EQ(c.boundary, 3);
  EXPECT_EQ(c.codec, "int8+zstd");
  EXPECT_EQ(c.bytes, 900);
  EXPECT_DOUBLE_EQ(c.rel_l2_error, 0.004);
  EXPECT_DOUBLE_EQ(c.top1_agreement, 0.75);
  EXPECT_EQ(c.fidelity_inputs, 4);
  EXPECT_EQ(views[0].codecs[0].top1_agreement, -1);

  RunDocument doc{{"pi", "device"}, model, SampleBlocks(), run};
  auto back = RunDocumentFromJson(nlohmann::json::parse(RunDocumentToJson(doc).dump()), "r.json");
  ASSERT_EQ(back.run.codecs.size(), 2u);
  EXPECT_EQ(back.run.codecs[1].codec, "int8+zstd");
  EXPECT_DOUBLE_EQ(back.run.codecs[1].max_abs_error, 0.02);

  auto refused = [&](const std::function<void(CodecRecord&)>& change) {
    RunRecord bad = run;
    change(bad.codecs[1]);
    return ErrorOf([&] { db.SaveRun({"pi", "device"}, model, SampleBlocks(), bad); });
  };
  EXPECT_THAT(refused([](auto& x) { x.boundary = 4; }), HasSubstr("not within 0..3"));
  EXPECT_THAT(refused([](auto& x) {
                x.codec = "lz4";
                x.boundary = 0;
              }),
              HasSubstr("measured twice"));
  EXPECT_THAT(refused([](auto& x) { x.codec = "Bad Name"; }), HasSubstr("codec name"));
  EXPECT_THAT(refused([](auto& x) { x.rel_l2_error = std::nan(""); }), HasSubstr("error nan"));
  EXPECT_THAT(refused([](auto& x) { x.top1_agreement = 1.5; }), HasSubstr("top-1"));
  EXPECT_THAT(refused([](auto& x) { x.encode_ms = -1; }), HasSubstr("encode_ms"));
  EXPECT_EQ(db.CountRuns(), 1);
}

TEST(Store, RefusesRecordsThatBreakTheRules) {
  Store db(FreshDb("rules"));
  ModelRecord model{"abc", "tiny", "", "onnx", 10, 64};
  model.key = std::string(64, 'a');
  auto save = [&](ResourceRecord r, ModelRecord m, RunRecord run) {
    return ErrorOf([&] { db.SaveRun(r, m, SampleBlocks(), run); });
  };
  EXPECT_THAT(save({"pi\xff", "device"}, model, SampleRun(10)), HasSubstr("resource: name"));
  EXPECT_THAT(save({"pi", ""}, model, SampleRun(10)), HasSubstr("tier: name is empty"));
  ModelRecord huge = model;
  huge.input_bytes = std::numeric_limits<int64_t>::min();  // what --input-mb nan used to store
  EXPECT_THAT(save({"pi", "device"}, huge, SampleRun(10)), HasSubstr("input_bytes"));
  ModelRecord badkey = model;
  badkey.key = "nothex";
  EXPECT_THAT(save({"pi", "device"}, badkey, SampleRun(10)), HasSubstr("model key"));
  RunRecord nan_run = SampleRun(10);
  nan_run.measurements[1].median_ms = std::nan("");
  EXPECT_THAT(save({"pi", "device"}, model, nan_run), HasSubstr("median_ms nan"));
  RunRecord negative = SampleRun(10);
  negative.measurements[1].samples_ms[0] = -0.05;
  EXPECT_THAT(save({"pi", "device"}, model, negative), HasSubstr("sample -0.05"));
  RunRecord twice = SampleRun(10);
  twice.measurements[2].block_index = 0;
  EXPECT_THAT(save({"pi", "device"}, model, twice), HasSubstr("measured twice"));
  RunRecord beyond = SampleRun(10);
  beyond.measurements[3].block_index = 3;
  EXPECT_THAT(save({"pi", "device"}, model, beyond), HasSubstr("not within -1..2"));
  EXPECT_THAT(ErrorOf([&] {
                db.UpsertLink({"a", "b", 1, 1e-320, "probe", ""});
              }),
              HasSubstr("bandwidth"));
  EXPECT_EQ(db.CountRuns(), 0);
  EXPECT_TRUE(db.Links().empty());
}

TEST(Store, RefusesAForeignDatabaseAndLeavesItUnchanged) {
  std::string path = FreshDb("foreign");
  {
    RawDb raw(path);
    raw.Exec("CREATE TABLE notes(x); INSERT INTO notes VALUES('keep me')");
  }
  std::string before = ReadFileBytes(path);
  EXPECT_THAT(ErrorOf([&] { Store db(path); }),
              HasSubstr(path + ": not a Scission database (application_id 0x0, user_version 0, "
                               "tables: notes); left unchanged"));
  EXPECT_EQ(ReadFileBytes(path), before);
  // Another application's id, even with Scission's tables, is not ours.
  {
    RawDb raw(path);
    raw.Exec("DROP TABLE notes; PRAGMA application_id = 1234");
  }
  before = ReadFileBytes(path);
  EXPECT_THAT(ErrorOf([&] { Store db(path); }), HasSubstr("application_id 0x4d2"));
  EXPECT_EQ(ReadFileBytes(path), before);
  // A file holding only a view is not empty either.
  std::string view = FreshDb("foreign_view");
  { RawDb(view).Exec("CREATE VIEW answer AS SELECT 42"); }
  before = ReadFileBytes(view);
  EXPECT_THAT(ErrorOf([&] { Store db(view); }), HasSubstr("tables: answer"));
  EXPECT_EQ(ReadFileBytes(view), before);
}

TEST(Store, RecognisesASchemaOneDatabaseWithoutApplicationId) {
  std::string path = FreshDb("legacy");
  const std::string key(64, 'b');
  {
    RawDb raw(path);  // as the first release wrote it: schema 1, no application_id
    raw.Exec(MigrationSql(0));
    raw.Exec("PRAGMA user_version = 1");
    raw.Exec("INSERT INTO resources VALUES (1, 'pi', 'device')");
    raw.Exec("INSERT INTO models VALUES (1, '" + key + "', 'k', '', 'onnx', 100, 602112)");
    for (int b = 0; b < 3; ++b)
      raw.Exec(
          fmt::format("INSERT INTO blocks VALUES (1, {0}, 2, 'n{0}', 'm{0}', 'Conv:1', 't{0}', "
                      "'[1,8]', 'float32', 32, {0}, {0})",
                      b));
    raw.Exec(
        "INSERT INTO runs VALUES (1, 1, 1, 'benchmark', '2026-01-01T00:00:00Z', 'onnxruntime', "
        "'1.30.0', 'CPU', 1, 'cpu', 'host', 'Release', 3, 20, 100, 10)");
    for (int b = -1; b < 3; ++b)
      raw.Exec(
          fmt::format("INSERT INTO measurements VALUES (1, {}, 1, 2, 20, 1.5, 1.5, 2, 2, "
                      "0.1, 1, 2, 32, '[1.5]')",
                      b));
    EXPECT_EQ(raw.Scalar("PRAGMA application_id"), 0);
  }
  Store db(path);  // recognised, migrated to the current schema, labelled
  EXPECT_EQ(db.CountRuns(), 1);
  auto profiles = db.LatestProfiles(key);
  ASSERT_EQ(profiles.size(), 1u);
  EXPECT_EQ(profiles.at(0).block_measurements.size(), 3u);
  EXPECT_EQ(profiles.at(0).key.input_shapes, "");  // unknown for runs made before schema 2
  EXPECT_EQ(db.connection().Prepare("PRAGMA application_id").Step(), true);
  RawDb raw(path);
  EXPECT_EQ(raw.Scalar("PRAGMA application_id"), kApplicationId);
}

TEST(Store, RefusesNegativeOrAbsurdSchemaVersions) {
  for (const char* version : {"-5", "-2147483648", "2147483647"}) {
    std::string path = FreshDb("version");
    { Store db(path); }
    { RawDb(path).Exec(std::string("PRAGMA user_version = ") + version); }
    std::string before = ReadFileBytes(path);
    std::string error = ErrorOf([&] { Store db(path); });
    EXPECT_THAT(error, ::testing::AnyOf(HasSubstr("is not one Scission writes"),
                                        HasSubstr("is newer than this Scission's")))
        << version;
    EXPECT_EQ(ReadFileBytes(path), before);
  }
}

TEST(Store, ReadsAReadOnlyDatabase) {
  namespace fs = std::filesystem;
  std::string dir = ::testing::TempDir() + "/store_test_readonly";
  std::error_code ec;
  fs::permissions(dir, fs::perms::all, ec);
  fs::remove_all(dir);
  fs::create_directories(dir);
  std::string path = dir + "/s.db";
  ModelRecord model{std::string(64, 'c'), "m", "", "onnx", 0, 0};
  {
    Store db(path);
    db.SaveRun({"pi", "device"}, model, SampleBlocks(), SampleRun(10));
    db.UpsertLink({"a", "b", 1, 2, "set", ""});
  }
  auto reads_but_does_not_write = [&] {
    Store db(path);
    EXPECT_TRUE(db.read_only());
    EXPECT_EQ(db.Links().size(), 1u);
    EXPECT_EQ(db.LatestProfiles(model.key).size(), 1u);
    EXPECT_THAT(ErrorOf([&] {
                  db.UpsertLink({"a", "c", 1, 2, "set", ""});
                }),
                HasSubstr(path + ": the database is open read-only"));
    EXPECT_THAT(ErrorOf([&] { Store writer(path, OpenMode::kWrite); }),
                HasSubstr(path + ": the database is read-only"));
  };
  // The file is read-only; the directory is writable (SQLite may add its WAL index there).
  ::chmod(path.c_str(), 0444);
  ::chmod(dir.c_str(), 0777);
  AsUnprivilegedUser(reads_but_does_not_write);
  // The directory is read-only: not even the WAL index can be created.
  for (const char* suffix : {"-wal", "-shm"}) fs::remove(path + suffix);
  ::chmod(path.c_str(), 0666);
  ::chmod(dir.c_str(), 0555);
  AsUnprivilegedUser(reads_but_does_not_write);
  ::chmod(dir.c_str(), 0755);
  ::chmod(path.c_str(), 0644);
  // An empty read-only database has nothing to read: one clear error.
  std::string empty = dir + "/empty.db";
  std::ofstream(empty).flush();
  ::chmod(empty.c_str(), 0444);
  AsUnprivilegedUser(
      [&] { EXPECT_THAT(ErrorOf([&] { Store db(empty); }), HasSubstr("empty and read-only")); });
}

TEST(Store, RunDocumentJsonRoundTripAndValidation) {
  RunDocument doc{{"pi", "device"},
                  {std::string(64, 'd'), "tiny", "/m.onnx", "onnx", 10, 64},
                  SampleBlocks(),
                  SampleRun(10)};
  doc.run.cpu_model = "cpu";
  doc.blocks[1].ops = "Conv:3,Relu:2";
  auto json = RunDocumentToJson(doc);
  auto back = RunDocumentFromJson(nlohmann::json::parse(json.dump()), "run.json");
  EXPECT_EQ(RunDocumentToJson(back), json);
  EXPECT_EQ(back.resource.name, "pi");
  EXPECT_EQ(back.blocks[1].ops, "Conv:3,Relu:2");
  EXPECT_EQ(back.run.measurements[2].samples_ms, doc.run.measurements[2].samples_ms);

  auto error = [&](const std::function<void(nlohmann::json&)>& change) {
    nlohmann::json j = json;
    change(j);
    return ErrorOf([&] { RunDocumentFromJson(j, "run.json"); });
  };
  EXPECT_THAT(error([](auto& j) { j["model"].erase("key"); }),
              HasSubstr("run.json: model.key: missing"));
  EXPECT_THAT(error([](auto& j) { j["blocks"][0]["index"] = "0"; }),
              HasSubstr("run.json: blocks[0].index: must be an integer"));
  EXPECT_THAT(error([](auto& j) { j["blocks"][0]["nodes"] = 1e10; }),
              HasSubstr("blocks[0].nodes: must be an integer"));
  EXPECT_THAT(error([](auto& j) { j["blocks"][0]["nodes"] = int64_t{1} << 40; }),
              HasSubstr("blocks[0].nodes: 1099511627776 is not within 0..2147483647"));
  EXPECT_THAT(
      error([](auto& j) { j["model"]["input_bytes"] = std::numeric_limits<uint64_t>::max(); }),
      HasSubstr("model.input_bytes: 18446744073709551615 is not within"));
  EXPECT_THAT(error([](auto& j) { j["run"]["measurements"][1]["median_ms"] = std::nan(""); }),
              HasSubstr("run.measurements[1].median_ms: must be finite"));
  EXPECT_THAT(error([](auto& j) { j["run"]["measurements"][1]["samples_ms"][2] = "x"; }),
              HasSubstr("run.measurements[1].samples_ms[2]: must be a number"));
  EXPECT_THAT(error([](auto& j) { j["run"]["measurements"][1]["mean_ms"] = -1; }),
              HasSubstr("mean_ms -1 is not within 0..1e+09 ms"));
  EXPECT_THAT(error([](auto& j) { j["resource"]["name"] = "a\tb"; }),
              HasSubstr("run.json: resource.name: name"));
  EXPECT_THAT(error([](auto& j) { j["blocks"] = nlohmann::json::object(); }),
              HasSubstr("blocks: must be an array"));
  EXPECT_THAT(error([](auto& j) { j = nlohmann::json::array(); }), HasSubstr("must be an object"));
  // Without a resource (a worker's results) the rest is still read and checked.
  nlohmann::json worker = json;
  worker.erase("resource");
  EXPECT_TRUE(RunDocumentFromJson(worker, "worker").resource.name.empty());
}

// Holds the write lock of `path` from another connection until `release_after`.
class LockHolder {
 public:
  LockHolder(const std::string& path, std::chrono::milliseconds release_after) : raw_(path) {
    raw_.Exec("BEGIN IMMEDIATE");
    thread_ = std::thread([this, release_after] {
      std::this_thread::sleep_for(release_after);
      raw_.Exec("COMMIT");
    });
  }
  ~LockHolder() { thread_.join(); }

 private:
  RawDb raw_;
  std::thread thread_;
};

TEST(Store, LockedDatabaseWaitsWithANoteAndThenStores) {
  std::string path = FreshDb("lock_clears");
  Store db(path);
  db.set_lock_wait({100, 10'000});
  std::vector<std::string> notes;
  db.set_note_callback([&](const std::string& m) { notes.push_back(m); });
  ModelRecord model{std::string(64, 'e'), "m", "", "onnx", 0, 0};
  LockHolder lock(path, std::chrono::milliseconds(400));
  db.SaveRun({"pi", "device"}, model, SampleBlocks(), SampleRun(10));
  EXPECT_EQ(db.CountRuns(), 1);
  ASSERT_EQ(notes.size(), 1u);
  EXPECT_THAT(notes[0], HasSubstr(path + ": the database is locked by another process"));
}

TEST(Store, LockThatNeverClearsKeepsTheRunInAFile) {
  std::string path = FreshDb("lock_stays");
  Store db(path);
  db.set_lock_wait({100, 300});
  ModelRecord model{std::string(64, 'f'), "m", "", "onnx", 0, 0};
  RunRecord run = SampleRun(10);
  std::string error;
  {
    LockHolder lock(path, std::chrono::milliseconds(1500));
    auto start = std::chrono::steady_clock::now();
    error = ErrorOf([&] { db.SaveRun({"pi", "device"}, model, SampleBlocks(), run); });
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(1400));
  }
  EXPECT_THAT(error, HasSubstr(path + ": the database stayed locked by another process"));
  auto kept_at = error.find("the run was kept in ");
  ASSERT_NE(kept_at, std::string::npos) << error;
  std::string rest = error.substr(kept_at + 20);
  std::string file = rest.substr(0, rest.find(':'));
  namespace fs = std::filesystem;
  EXPECT_TRUE(fs::equivalent(fs::path(file).parent_path(), fs::path(path).parent_path())) << file;
  EXPECT_THAT(fs::path(file).filename().string(),
              ::testing::StartsWith(fs::path(path).filename().string() + ".unsaved-run-"));
  EXPECT_THAT(error, HasSubstr("store it later with `scission import-run " + file + "`"));
  auto kept = RunDocumentFromJson(nlohmann::json::parse(ReadFileBytes(file)), file);
  EXPECT_EQ(kept.resource.name, "pi");
  EXPECT_EQ(kept.model.key, model.key);
  EXPECT_EQ(RunDocumentToJson(kept)["run"], RunDocumentToJson({{}, model, {}, run})["run"]);
  // Once the lock is gone the kept run goes in as it was measured.
  db.SaveRun(kept);
  EXPECT_DOUBLE_EQ(db.LatestProfiles(model.key).at(0).whole->median_ms, 9);
  std::filesystem::remove(file);
}

}  // namespace
}  // namespace scission::store
