// Label values as the exposition format wants them: a scraper that undoes the three escapes reads
// back the original text.
#include "serve/prometheus.h"

#include <gtest/gtest.h>

namespace scission::serve {
namespace {

// What a Prometheus parser does with the inside of a label value's quotes.
std::string Unescape(const std::string& label) {
  std::string out;
  for (size_t i = 0; i < label.size(); ++i) {
    if (label[i] != '\\' || i + 1 == label.size()) {
      out += label[i];
      continue;
    }
    const char next = label[++i];
    out += next == 'n' ? '\n' : next;
  }
  return out;
}

TEST(PromLabel, EscapesBackslashQuoteAndNewline) {
  EXPECT_EQ(PromLabel("edge"), "edge");
  EXPECT_EQ(PromLabel(""), "");
  EXPECT_EQ(PromLabel(R"(C:\models)"), R"(C:\\models)");
  EXPECT_EQ(PromLabel(R"(say "hi")"), R"(say \"hi\")");
  EXPECT_EQ(PromLabel("two\nlines"), R"(two\nlines)");
  EXPECT_EQ(PromLabel("\\n"), R"(\\n)");  // a literal backslash-n is not a newline
}

TEST(PromLabel, KeepsEverythingElseAndRoundTrips) {
  const std::string odd = "device[0..3] edge->cloud\t\r{}=,\xc3\xa9\\\"\n\n\\";
  const std::string label = PromLabel(odd);
  EXPECT_EQ(label.find('\n'), std::string::npos);
  EXPECT_EQ(Unescape(label), odd);
  EXPECT_EQ(PromLabel("device[0..3] edge->cloud"), "device[0..3] edge->cloud");
}

}  // namespace
}  // namespace scission::serve
