#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "plan/document.h"

namespace scission::plan {
namespace {

PlanDocument CodecDocument() {
  PlanDocument d;
  d.model = {"abc", "tiny", "/tmp/tiny.onnx", "onnx"};
  d.request.model_key = "abc";
  d.request.tiers = {"device", "cloud"};
  d.request.codecs = {"none", "zstd", "int8+zstd"};
  d.request.max_output_error = 0.01;
  d.tiers = {"device", "cloud"};
  d.objective = "latency";
  d.blocks = 2;
  d.input_bytes = 1000;
  d.output_bytes = {800, 10};
  PlannedRun run;
  run.rank = 1;
  run.latency_ms = 12.5;
  run.compute_ms = 4;
  run.transfer_ms = 8.5;
  run.bottleneck_ms = 6;
  run.uplink_bytes = 300;
  run.output_error = 0.004;
  run.stages = {{"device", "pi", 0, 0, 2}, {"cloud", "gpu", 1, 1, 2}};
  run.hops = {{"pi", "gpu", 300, 6, "int8+zstd", 800, 0.5, 0.25, 0.004},
              {"gpu", "pi", 10, 2.5, "none", 10, 0, 0, 0}};
  d.plans = {run};
  return d;
}

TEST(PlanDocument, CodecsOfHopsAndRequestRoundTrip) {
  const PlanDocument d = CodecDocument();
  const auto json = nlohmann::json::parse(ToJson(d).dump());
  const auto& hop = json["plans"][0]["hops"][0];
  EXPECT_EQ(hop["codec"], "int8+zstd");
  EXPECT_EQ(hop["raw_bytes"], 800);
  EXPECT_EQ(json["plans"][0]["output_error"], 0.004);
  EXPECT_EQ(json["request"]["codecs"], nlohmann::json({"none", "zstd", "int8+zstd"}));
  EXPECT_EQ(json["request"]["max_output_error"], 0.01);

  const PlanDocument back = PlanDocumentFromJson(json, "plan.json");
  EXPECT_EQ(back.request.codecs, d.request.codecs);
  ASSERT_TRUE(back.request.max_output_error.has_value());
  EXPECT_EQ(*back.request.max_output_error, 0.01);
  ASSERT_EQ(back.plans.size(), 1u);
  EXPECT_EQ(back.plans[0].output_error, 0.004);
  ASSERT_EQ(back.plans[0].hops.size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    const auto &a = back.plans[0].hops[i], &b = d.plans[0].hops[i];
    EXPECT_EQ(a.from, b.from);
    EXPECT_EQ(a.to, b.to);
    EXPECT_EQ(a.bytes, b.bytes);
    EXPECT_EQ(a.ms, b.ms);
    EXPECT_EQ(a.codec, b.codec);
    EXPECT_EQ(a.raw_bytes, b.raw_bytes);
    EXPECT_EQ(a.encode_ms, b.encode_ms);
    EXPECT_EQ(a.decode_ms, b.decode_ms);
    EXPECT_EQ(a.output_error, b.output_error);
  }
  EXPECT_EQ(ToJson(back).dump(), ToJson(d).dump());
}

TEST(PlanDocument, ARequestWithoutALimitWritesNullAndReadsItBack) {
  PlanDocument d = CodecDocument();
  d.request.max_output_error.reset();
  d.request.codecs.clear();
  const auto json = nlohmann::json::parse(ToJson(d).dump());
  EXPECT_TRUE(json["request"]["max_output_error"].is_null());
  const PlanDocument back = PlanDocumentFromJson(json, "plan.json");
  EXPECT_FALSE(back.request.max_output_error.has_value());
  EXPECT_TRUE(back.request.codecs.empty());
}

// A document written before codecs: no codec fields anywhere. It reads as raw hops.
TEST(PlanDocument, ADocumentWithoutCodecsStillReads) {
  auto json = nlohmann::json::parse(ToJson(CodecDocument()).dump());
  json["request"].erase("codecs");
  json["request"].erase("max_output_error");
  json["plans"][0].erase("output_error");
  for (auto& hop : json["plans"][0]["hops"])
    for (const char* name : {"codec", "raw_bytes", "encode_ms", "decode_ms", "output_error"})
      hop.erase(name);
  const PlanDocument back = PlanDocumentFromJson(json, "old.json");
  EXPECT_TRUE(back.request.codecs.empty());
  EXPECT_FALSE(back.request.max_output_error.has_value());
  EXPECT_EQ(back.plans[0].output_error, 0);
  const PlannedHop& hop = back.plans[0].hops[0];
  EXPECT_EQ(hop.codec, "none");
  EXPECT_EQ(hop.bytes, 300);
  EXPECT_EQ(hop.raw_bytes, 300);
  EXPECT_EQ(hop.encode_ms, 0);
  EXPECT_EQ(hop.decode_ms, 0);
  EXPECT_EQ(hop.output_error, 0);
}

// What `plan` prints per hop: unchanged without a codec, the bytes on the wire vs raw with one.
TEST(PlanDocument, HopTextShowsTheCodecAndTheBytesOnlyWithACodec) {
  PlannedHop hop;
  hop.from = "pi";
  hop.to = "gpu";
  hop.bytes = hop.raw_bytes = 1000000;
  hop.ms = 2.8;
  EXPECT_EQ(HopText(hop), "pi->gpu 2.80 ms");
  hop.codec = "zstd";
  hop.bytes = 300000;
  hop.ms = 14.24;
  EXPECT_EQ(HopText(hop), "pi->gpu 300.0 kB (zstd, raw 1.00 MB) 14.24 ms");
}

TEST(PlanDocument, MalformedCodecFieldsAreBadInput) {
  auto expect_bad = [](const std::function<void(nlohmann::json&)>& change,
                       const std::string& text) {
    auto json = nlohmann::json::parse(ToJson(CodecDocument()).dump());
    change(json);
    try {
      PlanDocumentFromJson(json, "plan.json");
      FAIL() << text;
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::kBadInput);
      EXPECT_THAT(e.what(), testing::HasSubstr(text));
    }
  };
  auto hop = [](nlohmann::json& j) -> nlohmann::json& { return j["plans"][0]["hops"][0]; };
  expect_bad([&](auto& j) { hop(j)["codec"] = 3; }, "'codec' must be a string");
  expect_bad([&](auto& j) { hop(j)["codec"] = ""; }, "empty 'codec'");
  expect_bad([&](auto& j) { hop(j)["raw_bytes"] = -1; }, "'raw_bytes' must be 0..");
  expect_bad([&](auto& j) { hop(j)["encode_ms"] = -1; }, "'encode_ms' must be a finite");
  expect_bad([&](auto& j) { hop(j)["output_error"] = "x"; }, "'output_error' must be a finite");
  expect_bad(
      [&](auto& j) {
        hop(j)["codec"] = "none";
        hop(j)["raw_bytes"] = 800;
      },
      "hop pi -> gpu without a codec moves 300 bytes of 800");
  expect_bad([](auto& j) { j["plans"][0]["output_error"] = -0.5; }, "'output_error' must be");
  expect_bad([](auto& j) { j["request"]["codecs"] = "zstd"; }, "'codecs' must be an array");
  expect_bad([](auto& j) { j["request"]["codecs"] = {"zstd", ""}; }, "'codecs' holds an empty");
  expect_bad([](auto& j) { j["request"]["max_output_error"] = 0; }, "must be in (0, 1]");
  expect_bad([](auto& j) { j["request"]["max_output_error"] = 1.5; }, "must be in (0, 1]");
  expect_bad([](auto& j) { j["request"]["max_output_error"] = "1"; }, "'max_output_error'");
  // Written beside the plans since before codecs, and read back since the round-trip test.
  expect_bad([](auto& j) { j["output_bytes"] = {800}; }, "'output_bytes' must be an array of 2");
  expect_bad([](auto& j) { j["output_bytes"] = {800, -1}; }, "'output_bytes' must hold sizes");
}

}  // namespace
}  // namespace scission::plan
