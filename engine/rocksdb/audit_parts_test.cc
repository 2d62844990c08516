// Copyright toegang authors.
//
// How access-log parts are framed and read back, including bytes no build wrote.
#include "engine/rocksdb/audit_parts.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace toegang::rocksdb_layout {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// The value AuditPartWriter puts for `entries` (records first, first+1, ...), and its key.
std::pair<std::string, std::string> Written(uint64_t first, const std::vector<std::string>& entries) {
  rocksdb::WriteBatch batch;
  std::string buffer;
  {
    AuditPartWriter parts(&batch, nullptr, &buffer);
    for (size_t i = 0; i < entries.size(); ++i) parts.Add(first + i, entries[i]);
  }
  struct Take : rocksdb::WriteBatch::Handler {
    std::vector<std::pair<std::string, std::string>> puts;
    void Put(const rocksdb::Slice& k, const rocksdb::Slice& v) override { puts.push_back({k.ToString(), v.ToString()}); }
  } take;
  EXPECT_TRUE(batch.Iterate(&take).ok());
  EXPECT_EQ(take.puts.size(), 1u);
  return take.puts.empty() ? std::pair<std::string, std::string>() : take.puts[0];
}

TEST(AuditParts, WhatIsWrittenReadsBackRecordByRecord) {
  auto [key, value] = Written(41, {"alpha", "", std::string(300, 'x')});
  absl::StatusOr<AuditSlot> slot = ParseAuditKey(key);
  ASSERT_TRUE(slot.ok()) << slot.status();
  EXPECT_TRUE(slot->part);
  EXPECT_EQ(slot->first, 41u);
  EXPECT_EQ(slot->last, 43u);
  absl::StatusOr<std::vector<absl::string_view>> entries = AuditEntriesOf(*slot, value);
  ASSERT_TRUE(entries.ok()) << entries.status();
  EXPECT_THAT(*entries, ElementsAre("alpha", "", std::string(300, 'x')));
  EXPECT_EQ(*AuditEntryIn(*slot, value, 42), "");
  EXPECT_EQ(*AuditEntryIn(*slot, value, 43), std::string(300, 'x'));
}

TEST(AuditParts, ARunIsCutWhereItBreaksOrGrowsPastAPart) {
  rocksdb::WriteBatch batch;
  std::string buffer;
  {
    AuditPartWriter parts(&batch, nullptr, &buffer);
    parts.Add(1, "a");
    parts.Add(2, "b");
    parts.Add(5, "c");  // not the next record: a part of its own
    for (uint64_t seq = 6; seq < 6 + 2 * kAuditPartBytes / 100; ++seq) parts.Add(seq, std::string(100, 'y'));
  }
  EXPECT_EQ(batch.Count(), 4u);  // 1-2, then 5 onwards cut once it passes kAuditPartBytes
}

TEST(AuditParts, AKeyOfNeitherFormIsDamage) {
  EXPECT_TRUE(ParseAuditKey(std::string(8, '\x01')).ok());
  EXPECT_FALSE(ParseAuditKey("").ok());
  EXPECT_FALSE(ParseAuditKey(std::string(9, '\0')).ok());
  EXPECT_FALSE(ParseAuditKey(AuditPartKey(5, 4)).ok()) << "last before first";
  EXPECT_FALSE(ParseAuditKey(AuditPartKey(1, uint64_t{1} << 40)).ok()) << "more records than any batch";
  absl::StatusOr<AuditSlot> single = ParseAuditKey(std::string(7, '\0') + "\x09");
  ASSERT_TRUE(single.ok());
  EXPECT_FALSE(single->part);
  EXPECT_EQ(single->first, 9u);
}

TEST(AuditParts, ValuesThatDoNotFrameEveryRecordNameTheFirstOneMissing) {
  auto [key, value] = Written(10, {"one", "two", "three"});
  const AuditSlot slot = *ParseAuditKey(key);
  struct Case {
    const char* what;
    std::string value;
    uint64_t named;
  };
  std::string huge_length = value;
  huge_length[3 + 4 + 3] = '\xff';  // record 11's length, low byte: past the end
  huge_length[4 + 3] = '\xff';      // and its high byte
  const std::vector<Case> cases = {
      {"empty", "", 10},
      {"cut inside a length", value.substr(0, 2), 10},
      {"cut inside record 12", value.substr(0, value.size() - 2), 12},
      {"record 12 missing", value.substr(0, 4 + 3 + 4 + 3), 12},
      {"a length past the end", huge_length, 11},
      {"bytes after the last record", value + "x", 12},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    absl::StatusOr<std::vector<absl::string_view>> entries = AuditEntriesOf(slot, c.value);
    ASSERT_FALSE(entries.ok());
    EXPECT_EQ(entries.status().code(), absl::StatusCode::kDataLoss);
    EXPECT_THAT(std::string(entries.status().message()), HasSubstr(absl::StrCat("record ", c.named, " ")));
  }
}

}  // namespace
}  // namespace toegang::rocksdb_layout
