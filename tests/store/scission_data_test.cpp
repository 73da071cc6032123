#include <gmock/gmock.h>
#include <gtest/gtest.h>

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
  EXPECT_THAT(error(header + "a,b,1,0\n"), HasSubstr("bandwidth must be positive"));
  EXPECT_THAT(error(header + "a,b,-1,3\n"), HasSubstr("ping must not be negative"));
  EXPECT_THAT(error("src,dst\n"), HasSubstr("net.csv:1: header"));
  EXPECT_THAT(error(""), HasSubstr("empty"));
}

}  // namespace
}  // namespace scission::store
