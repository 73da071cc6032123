#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/error.h"
#include "store/records.h"
#include "store/scission_data.h"
#include "store/store.h"

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
  db.SaveRun({"pi", "device"}, model, SampleBlocks(), SampleRun(10));
  db.SaveRun({"pi", "device"}, model, SampleBlocks(), SampleRun(20));  // newer run wins
  db.SaveRun({"vm", "edge"}, model, SampleBlocks(), SampleRun(5));
  auto views = db.LatestProfiles("abc123");
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
  ModelRecord model{"k", "k", "", "onnx", 0, 0};
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
  auto views = db.LatestProfiles("k");
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

}  // namespace
}  // namespace scission::store
