// Copyright toegang authors.
//
// The database's iterators over the facts kept between reads (database.h): a flush or
// compaction of the facts drops them at once, so the files it replaced leave the disk
// without waiting for the next read.
#include "engine/rocksdb/database.h"

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "engine/rocksdb/layout.h"
#include "engine/testing/crash_harness.h"
#include "gtest/gtest.h"
#include "rocksdb/db.h"
#include "rocksdb/metadata.h"
#include "rocksdb/options.h"

namespace toegang {
namespace {

using rocksdb_layout::kFacts;
using rocksdb_layout::PatientPrefix;
using testing::FreshDir;

// Writes one fact-shaped key of `patient`, synced.
void PutFact(Database& db, const std::string& patient, const std::string& value) {
  rocksdb::WriteBatch batch;
  uint64_t instance = 0;
  {
    Database::Use use(db);
    ASSERT_TRUE(use.open());
    ASSERT_TRUE(batch.Put(use.cf(kFacts), PatientPrefix(patient) + "fact", value).ok());
    instance = use.instance();
  }
  ASSERT_TRUE(db.Write(&batch, /*sync=*/true, instance, "writing a test fact").ok());
}

// A database at `dir` holding one fact of pat-1, `value`; null when it does not open.
std::shared_ptr<Database> OpenWithFact(const std::string& dir, const std::string& value) {
  absl::StatusOr<std::shared_ptr<Database>> opened = Database::Open(dir, DurableStoreOptions{});
  EXPECT_TRUE(opened.ok()) << opened.status();
  if (!opened.ok()) return nullptr;
  PutFact(**opened, "pat-1", value);
  return *std::move(opened);
}

// What pat-1's fact reads through an iterator from Use::Facts(generation) ("" when
// none), which is then kept; `*through`, when asked, is that iterator.
std::string ReadAndKeep(Database& db, uint64_t generation, const rocksdb::Iterator** through = nullptr) {
  Database::Use use(db);
  Database::FactsIterator it = use.Facts(generation);
  it.it->Seek(PatientPrefix("pat-1"));
  std::string value = it.it->Valid() ? it.it->value().ToString() : "";
  if (through != nullptr) *through = it.it.get();
  use.Keep(std::move(it));
  return value;
}

// Writes the facts' memtable to a file.
void FlushFacts(Database& db) {
  Database::Use use(db);
  ASSERT_TRUE(use.db()->Flush(rocksdb::FlushOptions(), use.cf(kFacts)).ok());
}

// The names of the facts' table files, as the database lists them.
std::vector<std::string> FactFiles(Database& db) {
  Database::Use use(db);
  std::vector<rocksdb::LiveFileMetaData> files;
  use.db()->GetLiveFilesMetaData(&files);
  std::vector<std::string> out;
  for (const rocksdb::LiveFileMetaData& f : files) {
    if (f.column_family_name == "facts") out.push_back(f.name);
  }
  return out;
}

// Whether `done()` holds within a generous deadline: RocksDB frees memtables and
// deletes obsolete files on its own threads.
template <typename Done>
bool Within(absl::Duration deadline, Done done) {
  const absl::Time until = absl::Now() + deadline;
  while (!done()) {
    if (absl::Now() > until) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

TEST(KeptIteratorsTest, ACompactionOfTheFactsDropsThemAndItsReplacedFilesLeaveTheDisk) {
  const std::string dir = FreshDir("kept_iterators_compaction");
  std::shared_ptr<Database> opened = OpenWithFact(dir, "first");
  ASSERT_NE(opened, nullptr);
  Database& db = *opened;
  FlushFacts(db);
  const std::vector<std::string> before = FactFiles(db);
  ASSERT_EQ(before.size(), 1u);

  // A read keeps its iterator, which reads through that file.
  constexpr uint64_t kGeneration = 7;
  EXPECT_EQ(ReadAndKeep(db, kGeneration), "first");

  // Nothing is written and nothing read from here on: a quiet server. The compaction
  // rewrites the file; no kept iterator may hold the old one on disk.
  {
    Database::Use use(db);
    rocksdb::CompactRangeOptions force;
    force.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForce;
    ASSERT_TRUE(use.db()->CompactRange(force, use.cf(kFacts), nullptr, nullptr).ok());
  }
  const std::vector<std::string> after = FactFiles(db);
  ASSERT_EQ(after.size(), 1u);
  ASSERT_NE(after[0], before[0]) << "the compaction did not rewrite the file";
  // (`before[0]` is a name as RocksDB lists it: "/000012.sst".)
  EXPECT_TRUE(Within(absl::Seconds(30), [&] { return !std::filesystem::exists(dir + before[0]); }))
      << before[0] << " stays on disk: a kept iterator still reads it";

  // The next read reads the new file, with the same answer.
  EXPECT_EQ(ReadAndKeep(db, kGeneration), "first");
}

// The bytes of the facts' memtables, those flushed but still read by an iterator
// included.
uint64_t FactMemtableBytes(Database& db) {
  Database::Use use(db);
  uint64_t bytes = 0;
  EXPECT_TRUE(use.db()->GetIntProperty(use.cf(kFacts), "rocksdb.size-all-mem-tables", &bytes));
  return bytes;
}

TEST(KeptIteratorsTest, AFlushOfTheFactsDropsThemAndTheFlushedMemtableIsFreed) {
  const std::string large(size_t{2} << 20, 'x');
  std::shared_ptr<Database> opened = OpenWithFact(FreshDir("kept_iterators_flush"), large);
  ASSERT_NE(opened, nullptr);
  Database& db = *opened;
  constexpr uint64_t kGeneration = 3;
  const rocksdb::Iterator* kept = nullptr;
  ASSERT_EQ(ReadAndKeep(db, kGeneration, &kept), large);
  // Kept and handed out again while nothing changed.
  const rocksdb::Iterator* again = nullptr;
  ReadAndKeep(db, kGeneration, &again);
  EXPECT_EQ(again, kept);
  ASSERT_GE(FactMemtableBytes(db), large.size());
  FlushFacts(db);
  // Nothing read since: the memtable the kept iterator read is freed all the same.
  EXPECT_TRUE(Within(absl::Seconds(30), [&] { return FactMemtableBytes(db) < large.size(); }))
      << "a kept iterator still holds the flushed memtable";

  // The next read, through a new iterator, reads the same from the file.
  EXPECT_EQ(ReadAndKeep(db, kGeneration).size(), large.size());
}

}  // namespace
}  // namespace toegang
