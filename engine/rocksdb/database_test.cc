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
  absl::StatusOr<std::shared_ptr<Database>> opened = Database::Open(dir, DurableStoreOptions{});
  ASSERT_TRUE(opened.ok()) << opened.status();
  Database& db = **opened;
  PutFact(db, "pat-1", "first");
  {
    Database::Use use(db);
    ASSERT_TRUE(use.db()->Flush(rocksdb::FlushOptions(), use.cf(kFacts)).ok());
  }
  const std::vector<std::string> before = FactFiles(db);
  ASSERT_EQ(before.size(), 1u);

  // A read keeps its iterator, which reads through that file.
  constexpr uint64_t kGeneration = 7;
  {
    Database::Use use(db);
    Database::FactsIterator it = use.Facts(kGeneration);
    it.it->Seek(PatientPrefix("pat-1"));
    ASSERT_TRUE(it.it->Valid());
    EXPECT_EQ(it.it->value().ToString(), "first");
    use.Keep(std::move(it));
  }

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
  Database::Use use(db);
  Database::FactsIterator it = use.Facts(kGeneration);
  it.it->Seek(PatientPrefix("pat-1"));
  ASSERT_TRUE(it.it->Valid());
  EXPECT_EQ(it.it->value().ToString(), "first");
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
  const std::string dir = FreshDir("kept_iterators_flush");
  absl::StatusOr<std::shared_ptr<Database>> opened = Database::Open(dir, DurableStoreOptions{});
  ASSERT_TRUE(opened.ok()) << opened.status();
  Database& db = **opened;
  const std::string large(size_t{2} << 20, 'x');
  PutFact(db, "pat-1", large);
  constexpr uint64_t kGeneration = 3;
  rocksdb::Iterator* kept = nullptr;
  {
    Database::Use use(db);
    Database::FactsIterator it = use.Facts(kGeneration);
    it.it->Seek(PatientPrefix("pat-1"));
    ASSERT_TRUE(it.it->Valid());
    kept = it.it.get();
    use.Keep(std::move(it));
  }
  {
    // Kept and handed out again while nothing changed.
    Database::Use use(db);
    Database::FactsIterator again = use.Facts(kGeneration);
    EXPECT_EQ(again.it.get(), kept);
    use.Keep(std::move(again));
  }
  ASSERT_GE(FactMemtableBytes(db), large.size());
  {
    Database::Use use(db);
    ASSERT_TRUE(use.db()->Flush(rocksdb::FlushOptions(), use.cf(kFacts)).ok());
  }
  // Nothing read since: the memtable the kept iterator read is freed all the same.
  EXPECT_TRUE(Within(absl::Seconds(30), [&] { return FactMemtableBytes(db) < large.size(); }))
      << "a kept iterator still holds the flushed memtable";

  // The next read, through a new iterator, reads the same from the file.
  Database::Use use(db);
  Database::FactsIterator fresh = use.Facts(kGeneration);
  fresh.it->Seek(PatientPrefix("pat-1"));
  ASSERT_TRUE(fresh.it->Valid());
  EXPECT_EQ(fresh.it->value().size(), large.size());
}

}  // namespace
}  // namespace toegang
