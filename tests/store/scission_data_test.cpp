#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fmt/format.h>

#include "common/error.h"
#include "store/scission_data.h"

namespace scission::store {
namespace {

using namespace std::string_literals;

using ::testing::HasSubstr;

TEST(ScissionData, LoadsTheReleasedDirectory) {
  auto systems = LoadScissionDirectory(SCISSION_DATA_DIR);
  ASSERT_EQ(systems.size(), 5u);
  EXPECT_EQ(systems[0].tier, "cloud");
  EXPECT_EQ(systems[0].name, "6700k(GPU)");
  const ScissionSystem* raspi = nullptr;
  for (const auto& s : systems)
    if (s.name == "raspi4") raspi = &s;
  ASSERT_NE(raspi, nullptr);
  EXPECT_EQ(raspi->tier, "device");
  EXPECT_EQ(raspi->models.size(), 18u);
  const auto& vgg = raspi->models.at("vgg19");
  EXPECT_EQ(vgg[0].input_layer, 0);
  EXPECT_EQ(vgg[0].output_layer, 1);
  EXPECT_DOUBLE_EQ(vgg[0].seconds, 0.07058942317962646);
  EXPECT_EQ(vgg[0].output_size, 12845184);
  EXPECT_EQ(vgg.back().output_layer, 25);
}

TEST(ScissionData, FileNameMustNameTier) {
  EXPECT_THAT([] { ParseScissionBenchmark("\x80\x03}.", "phone-x.dat", "phone-x.dat"); },
              ::testing::ThrowsMessage<Error>(HasSubstr("tier 'phone'")));
  EXPECT_THROW(ParseScissionBenchmark("\x80\x03}.", "nodash.dat", "nodash.dat"), Error);
}

TEST(ScissionData, RejectsWrongShapes) {
  // {'m': 5}
  EXPECT_THAT(
      [] {
        ParseScissionBenchmark(
            "\x80\x03}X\x01\x00\x00\x00"s
            "mK\x05s."s,
            "edge-a.dat", "f");
      },
      ::testing::ThrowsMessage<Error>(HasSubstr("not a list")));
  // {'m': [LayerBenchmark with only input_layer]}
  std::string partial =
      "\x80\x03}X\x01\x00\x00\x00"s
      "m]c__main__\nLayerBenchmark\n)\x81}X\x0b\x00\x00\x00"s
      "input_layerK\x00sbas."s;
  EXPECT_THAT([&] { ParseScissionBenchmark(partial, "edge-a.dat", "f"); },
              ::testing::ThrowsMessage<Error>(HasSubstr("lacks field")));
}

TEST(NetworkCsv, ParsesSpacesAndReportsLineNumbers) {
  auto links = ParseNetworkCsv(
      "source,destination,ping(ms),bandwidth(mbps)\nraspi4,2500,            66.7,  1.6\n\n"
      "a , b ,20,50\n",
      "net.csv");
  ASSERT_EQ(links.size(), 2u);
  EXPECT_EQ(links[0].destination, "2500");
  EXPECT_DOUBLE_EQ(links[0].ping_ms, 66.7);
  EXPECT_DOUBLE_EQ(links[0].mbps, 1.6);
  EXPECT_EQ(links[1].source, "a");

  auto error = [](const std::string& text) {
    try {
      ParseNetworkCsv(text, "net.csv");
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  const std::string header = "source,destination,ping(ms),bandwidth(mbps)\n";
  EXPECT_THAT(error(header + "a,b,x,5\n"), HasSubstr("net.csv:2: ping 'x' is not a number"));
  EXPECT_THAT(error(header + "a,b,1\n"), HasSubstr("net.csv:2: expected 4 columns"));
  EXPECT_THAT(error(header + "a,b,1,0\n"),
              HasSubstr("net.csv:2: bandwidth 0 Mbit/s is not within 0.001..1e+07 Mbit/s"));
  EXPECT_THAT(error(header + "a,b,-1,3\n"),
              HasSubstr("net.csv:2: RTT -1 ms is not within 0..60000 ms"));
  EXPECT_THAT(error("src,dst\n"), HasSubstr("net.csv:1: header"));
  EXPECT_THAT(error(""), HasSubstr("empty"));
}

TEST(NetworkCsv, RefusesUnusableLinksWithFileAndLine) {
  auto error = [](const std::string& rows) {
    try {
      ParseNetworkCsv("source,destination,ping(ms),bandwidth(mbps)\na,b,1,2\n" + rows, "net.csv");
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::kBadInput);
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_THAT(error("a,b,1,1e-320\n"), HasSubstr("net.csv:3: bandwidth 1e-320 Mbit/s"));
  EXPECT_THAT(error("a,b,1,2e7\n"), HasSubstr("net.csv:3: bandwidth"));
  EXPECT_THAT(error("a,b,60001,2\n"), HasSubstr("net.csv:3: RTT 60001 ms"));
  EXPECT_THAT(error("a,a,1,2\n"), HasSubstr("net.csv:3: link from 'a' to itself"));
  EXPECT_THAT(error("a\0b,c,1,2\n"s),
              HasSubstr("net.csv:3: source: name 'a\\x00b' contains a control character"));
  EXPECT_THAT(error("a,c\x01,1,2\n"), HasSubstr("net.csv:3: destination: name"));
  EXPECT_THAT(error("\xff\xfe,c,1,2\n"), HasSubstr("net.csv:3: source: name '\\xff\\xfe' is not "
                                                   "valid UTF-8"));
  EXPECT_THAT(error(std::string(200, 'x') + ",c,1,2\n"), HasSubstr("longer than 128 bytes"));
  EXPECT_THAT(error(",c,1,2\n"), HasSubstr("net.csv:3: source: name is empty"));
}

// A pickle {'m': [LayerBenchmark(input_layer=<in>, output_layer=<out>, second_prediction=<s>,
// output_size=<size>)]} with each value given as raw opcodes.
std::string OneEntryPickle(const std::string& in, const std::string& out, const std::string& s,
                           const std::string& size, const std::string& model = "m") {
  auto text = [](const std::string& t) {
    return "\x8c"s + static_cast<char>(t.size()) + t;  // SHORT_BINUNICODE
  };
  return "\x80\x03}"s + text(model) + "]c__main__\nLayerBenchmark\n)\x81}(" + text("input_layer") +
         in + text("output_layer") + out + text("second_prediction") + s + text("output_size") +
         size + "ubas."s;
}

TEST(ScissionData, AcceptsAWellFormedEntry) {
  auto system = ParseScissionBenchmark(
      OneEntryPickle("K\x00"s, "K\x02"s, "G?\xf8\x00\x00\x00\x00\x00\x00"s, "M\x00\x01"s),
      "edge-a.dat", "edge-a.dat");
  const auto& block = system.models.at("m").at(0);
  EXPECT_EQ(block.output_layer, 2);
  EXPECT_DOUBLE_EQ(block.seconds, 1.5);
  EXPECT_EQ(block.output_size, 256);
}

TEST(ScissionData, RefusesNumbersThatDoNotFitWithFileAndOffset) {
  auto error = [](const std::string& bytes, const std::string& file = "edge-a.dat") {
    try {
      ParseScissionBenchmark(bytes, file, file);
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::kBadInput);
      return std::string(e.what());
    }
    return std::string("no error");
  };
  const std::string zero = "K\x00"s, one_s = "G?\xf0\x00\x00\x00\x00\x00\x00"s, size = "K\x10";
  // 2**40 as LONG1: used to become layer 0 after a silent cast to int.
  const std::string big = "\x8a\x06\x00\x00\x00\x00\x00\x01"s;
  std::string bytes = OneEntryPickle(zero, big, one_s, size);
  size_t offset = bytes.find(big);
  EXPECT_THAT(error(bytes), HasSubstr(fmt::format("edge-a.dat: offset {}: model 'm' entry 0: field "
                                                  "'output_layer' is 1099511627776, not within "
                                                  "0..2147483647",
                                                  offset)));
  EXPECT_THAT(error(OneEntryPickle(big, big, one_s, size)), HasSubstr("'input_layer'"));
  EXPECT_THAT(error(OneEntryPickle("J\xff\xff\xff\xff"s, zero, one_s, size)),
              HasSubstr("'input_layer' is -1"));
  EXPECT_THAT(error(OneEntryPickle(zero, zero, one_s, "\x8a\x06\x00\x00\x00\x00\x00\x01"s)),
              HasSubstr("'output_size' is 1099511627776, not within 0..1000000000000"));
  // second_prediction: NaN, +inf, negative, and so large that milliseconds overflow the store.
  for (const std::string& seconds :
       {"G\x7f\xf8\x00\x00\x00\x00\x00\x00"s, "G\x7f\xf0\x00\x00\x00\x00\x00\x00"s,
        "G\xbf\xf0\x00\x00\x00\x00\x00\x00"s, "G\x7f\xe0\x00\x00\x00\x00\x00\x00"s})
    EXPECT_THAT(error(OneEntryPickle(zero, zero, seconds, size)),
                HasSubstr("field 'second_prediction' is"));
  EXPECT_THAT(error(OneEntryPickle(zero, zero, one_s, size, "bad\x01")),
              HasSubstr("edge-a.dat: offset 3: model name: name 'bad\\x01' contains a control"));
  EXPECT_THAT(error(OneEntryPickle(zero, zero, one_s, size), "edge-a\x02.dat"),
              HasSubstr("system name from the file name: name 'a\\x02'"));
  EXPECT_THAT(error(OneEntryPickle(zero, zero, one_s, size), "edge-\xff.dat"),
              HasSubstr("not valid UTF-8"));
}

}  // namespace
}  // namespace scission::store
