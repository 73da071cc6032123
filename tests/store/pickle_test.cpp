#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/error.h"
#include "common/files.h"
#include "store/pickle.h"

namespace scission::store::pickle {
namespace {

using namespace std::string_literals;

using ::testing::HasSubstr;

std::string ErrorOf(const std::string& bytes) {
  try {
    Parse(bytes, "x.dat");
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kBadInput);
    return e.what();
  }
  ADD_FAILURE() << "parsed but should not";
  return "";
}

TEST(Pickle, ParsesScalarsContainersAndMemo) {
  // {'a': [1, -2, 300, 2**40, 1.5, None, 'é'], 'b': <memo of the list>}
  std::string p =
      "\x80\x03}q\x00(X\x01\x00\x00\x00"s
      "aq\x01]q\x02(K\x01J\xfe\xff\xff\xffM\x2c\x01"s
      "\x8a\x06\x00\x00\x00\x00\x00\x01"s
      "G?\xf8\x00\x00\x00\x00\x00\x00N\x8c\x02\xc3\xa9"s
      "eX\x01\x00\x00\x00"s
      "bh\x02u."s;
  auto doc = Parse(p, "x");
  const auto& dict = std::get<Dict>(doc.root->v);
  ASSERT_EQ(dict.items.size(), 2u);
  const auto& list = std::get<List>(dict.items[0].second->v);
  ASSERT_EQ(list.items.size(), 7u);
  EXPECT_EQ(std::get<int64_t>(list.items[0]->v), 1);
  EXPECT_EQ(std::get<int64_t>(list.items[1]->v), -2);
  EXPECT_EQ(std::get<int64_t>(list.items[2]->v), 300);
  EXPECT_EQ(std::get<int64_t>(list.items[3]->v), int64_t{1} << 40);
  EXPECT_DOUBLE_EQ(std::get<double>(list.items[4]->v), 1.5);
  EXPECT_TRUE(std::holds_alternative<None>(list.items[5]->v));
  EXPECT_EQ(std::get<std::string>(list.items[6]->v), "\xc3\xa9");
  EXPECT_EQ(dict.items[1].second, dict.items[0].second);  // memo shares the object
}

TEST(Pickle, NegativeLong1) {
  auto doc = Parse("\x80\x03\x8a\x02\x00\xff."s, "x");
  EXPECT_EQ(std::get<int64_t>(doc.root->v), -256);
}

TEST(Pickle, RefusesOtherGlobalsAndOpcodes) {
  EXPECT_THAT(ErrorOf("\x80\x03"
                      "cos\nsystem\n(X\x02\x00\x00\x00lstR."),
              HasSubstr("refusing global 'os.system'"));
  EXPECT_THAT(ErrorOf("\x80\x03"
                      "c__main__\nLayerBenchmark\n)R."),
              HasSubstr("opcode 0x52"));
  EXPECT_THAT(ErrorOf("\x80\x03S'hi'\n."), HasSubstr("not allowed"));
  EXPECT_THAT(ErrorOf("\x80\x05N."), HasSubstr("protocol 5"));
}

TEST(Pickle, RefusesMalformedStructure) {
  EXPECT_THAT(ErrorOf("\x80\x03}"), HasSubstr("truncated"));
  EXPECT_THAT(ErrorOf("\x80\x03X\xff\xff\xff\x7f"
                      "abc."),
              HasSubstr("truncated"));
  EXPECT_THAT(ErrorOf("\x80\x03h\x05."), HasSubstr("memo index 5"));
  EXPECT_THAT(ErrorOf("\x80\x03u."), HasSubstr("MARK"));
  EXPECT_THAT(ErrorOf("\x80\x03NN."), HasSubstr("unbalanced"));
  EXPECT_THAT(ErrorOf("\x80\x03Na."), HasSubstr("underflow"));
  EXPECT_THAT(ErrorOf("\x80\x03(K\x01"
                      "a."),
              HasSubstr("underflow"));  // cannot pop across a MARK
  EXPECT_THAT(ErrorOf(""), HasSubstr("empty"));
}

TEST(Pickle, SelfReferenceDoesNotLeakOrLoop) {
  auto doc = Parse(
      "\x80\x03]q\x00h\x00"s
      "a."s,
      "x");  // l = []; l.append(l)
  const auto& list = std::get<List>(doc.root->v);
  ASSERT_EQ(list.items.size(), 1u);
  EXPECT_EQ(list.items[0], doc.root);
}

TEST(Pickle, ReadsTheOriginalToolsFile) {
  auto bytes = ReadFileBytes(std::string(SCISSION_DATA_DIR) + "/device-raspi4.dat");
  auto doc = Parse(bytes, "device-raspi4.dat");
  const auto& dict = std::get<Dict>(doc.root->v);
  EXPECT_EQ(dict.items.size(), 18u);
  // Every truncation of a real file is refused, never crashes.
  for (size_t cut = 0; cut < bytes.size(); cut += 211)
    EXPECT_THROW(Parse(bytes.substr(0, cut), "t"), Error);
}

}  // namespace
}  // namespace scission::store::pickle
