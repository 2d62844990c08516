// Copyright toegang authors.
#include "model/bsn.h"

#include "gtest/gtest.h"

namespace toegang {
namespace {

// 111222333 passes the eleven test: 9+8+7+12+10+8+9+6-3 = 66.
TEST(Bsn, ElevenTest) {
  EXPECT_TRUE(PassesElevenTest("111222333"));
  EXPECT_FALSE(PassesElevenTest("111222334"));
  EXPECT_FALSE(PassesElevenTest("000000000"));
  EXPECT_TRUE(PassesElevenTest("012345672"));  // 0+8+14+18+20+20+18+14-2 = 110
  EXPECT_FALSE(PassesElevenTest("11122233"));
}

TEST(Bsn, TheFormsItIsWrittenIn) {
  struct Case {
    const char* text;
    bool bsn;
  };
  const Case cases[] = {
      {"111222333", true},
      {"bsn-111222333", true},
      {"BSN111222333", true},
      {"111 222 333", true},
      {"1112.22.333", true},          // 4.2.3, the usual grouping
      {"123.456.72", true},            // eight digits: 012345672
      {"111.22.333", false},           // eight digits, and 011122333 fails the test
      {"0111222333", true},            // a leading zero too many
      {"12345672", true},              // 012345672 with its zero dropped
      {"pat 111 222 333 x", true},
      {"111222334", false},            // fails the eleven test
      {"2026-03-01", false},           // a date: three numbers
      {"2011-12-23", false},
      {"11-12-22-2333", false},        // other separators split
      {"111  222 333", false},         // two spaces end a number
      {"1112223330", false},           // ten digits, no leading zero
      {"pat-1", false},
      {"clin-12345", false},
      {"", false},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.text);
    EXPECT_EQ(ContainsBsn(c.text), c.bsn);
  }
}

TEST(Bsn, RedactionReplacesEveryBsnAndCountsIt) {
  const uint64_t before = BsnRedactions();
  EXPECT_EQ(RedactBsn("BSN 111222333 J. Jansen, born 2010-05-14"), "BSN [bsn] J. Jansen, born 2010-05-14");
  EXPECT_EQ(RedactBsn("111 222 333 and 1112.22.333."), "[bsn] and [bsn].");
  EXPECT_EQ(RedactBsn("intake form 2026-03-01"), "intake form 2026-03-01");
  EXPECT_EQ(BsnRedactions() - before, 3u);
}

}  // namespace
}  // namespace toegang
