// Copyright toegang authors.
//
// The patient index's memtable against a model: what RocksDB reads through it — point
// lookups, scans both ways, seeks — while it is being written, after a flush, and from
// threads reading while one writes.
#include "engine/rocksdb/index_memtable.h"

#include <atomic>
#include <iterator>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "rocksdb/db.h"
#include "rocksdb/env.h"

namespace toegang::rocksdb_layout {
namespace {

class IndexMemTableTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_NE(PatientIndexMemTables(), nullptr) << "this RocksDB fell back to its vector memtable";
    env_.reset(rocksdb::NewMemEnv(rocksdb::Env::Default()));
    rocksdb::Options o;
    o.env = env_.get();
    o.create_if_missing = true;
    o.allow_concurrent_memtable_write = false;
    o.memtable_factory = PatientIndexMemTables();
    o.write_buffer_size = size_t{1} << 20;  // several memtables, and flushes, in a test
    rocksdb::DB* raw = nullptr;
    ASSERT_TRUE(rocksdb::DB::Open(o, "/index-memtable-test", &raw).ok());
    db_.reset(raw);
  }
  void TearDown() override {
    if (db_ != nullptr) {
      EXPECT_TRUE(db_->Close().ok());
    }
    db_.reset();
  }

  // Keys like the index's: many share their first eight bytes, some are shorter than
  // eight, some hold zero bytes.
  std::string RandomKey(std::mt19937& rng) {
    switch (rng() % 4) {
      case 0:
        return "pat-" + std::to_string(rng() % 50);
      case 1:
        return std::string("patient-") + std::to_string(rng() % 200) + std::string(1, '\0') +
               std::string(1, static_cast<char>(rng() % 256));
      case 2:
        return std::string(1, static_cast<char>('a' + rng() % 3));
      default:
        return std::string("patient-\0", 9) + std::to_string(rng() % 100);
    }
  }

  void Put(const std::string& k, const std::string& v) {
    ASSERT_TRUE(db_->Put(rocksdb::WriteOptions(), k, v).ok());
    model_[k] = v;
  }

  // Every read the model can answer: each key and some absent ones, a full scan each
  // way, and seeks both ways from random targets.
  void ExpectAgrees(std::mt19937& rng) {
    for (const auto& [k, v] : model_) {
      std::string got;
      ASSERT_TRUE(db_->Get(rocksdb::ReadOptions(), k, &got).ok()) << k;
      EXPECT_EQ(got, v) << k;
    }
    for (int i = 0; i < 50; ++i) {
      const std::string k = RandomKey(rng) + "-absent";
      std::string got;
      EXPECT_EQ(db_->Get(rocksdb::ReadOptions(), k, &got).IsNotFound(), model_.count(k) == 0) << k;
    }
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
    auto m = model_.begin();
    for (it->SeekToFirst(); it->Valid(); it->Next(), ++m) {
      ASSERT_NE(m, model_.end());
      EXPECT_EQ(it->key().ToString(), m->first);
      EXPECT_EQ(it->value().ToString(), m->second);
    }
    EXPECT_EQ(m, model_.end());
    auto r = model_.rbegin();
    for (it->SeekToLast(); it->Valid(); it->Prev(), ++r) {
      ASSERT_NE(r, model_.rend());
      EXPECT_EQ(it->key().ToString(), r->first);
    }
    EXPECT_EQ(r, model_.rend());
    for (int i = 0; i < 100; ++i) {
      const std::string target = RandomKey(rng);
      it->Seek(target);
      auto lower = model_.lower_bound(target);
      ASSERT_EQ(it->Valid(), lower != model_.end()) << target;
      if (it->Valid()) {
        EXPECT_EQ(it->key().ToString(), lower->first) << target;
      }
      it->SeekForPrev(target);
      auto upper = model_.upper_bound(target);
      ASSERT_EQ(it->Valid(), upper != model_.begin()) << target;
      if (it->Valid()) {
        EXPECT_EQ(it->key().ToString(), std::prev(upper)->first) << target;
      }
    }
    ASSERT_TRUE(it->status().ok());
  }

  std::unique_ptr<rocksdb::Env> env_;
  std::unique_ptr<rocksdb::DB> db_;
  std::map<std::string, std::string> model_;
};

TEST_F(IndexMemTableTest, ReadsAgreeWithAModelWhileWrittenAndAfterAFlush) {
  std::mt19937 rng(7);
  for (int round = 0; round < 6; ++round) {
    SCOPED_TRACE(round);
    // Reads between writes: each sorts only what came since the one before.
    for (int i = 0; i < 400; ++i) Put(RandomKey(rng), std::to_string(round * 1000 + i));
    ExpectAgrees(rng);
    for (int i = 0; i < 30; ++i) Put(RandomKey(rng), "again-" + std::to_string(i));  // newer writes of old keys
    ExpectAgrees(rng);
  }
  ASSERT_TRUE(db_->Flush(rocksdb::FlushOptions()).ok());
  ExpectAgrees(rng);
  Put("pat-1", "after the flush");
  ExpectAgrees(rng);
}

TEST_F(IndexMemTableTest, AnIteratorKeepsWhatItSawWhileWritesGoOn) {
  for (int i = 0; i < 100; ++i) Put("pat-" + std::to_string(i * 2), "v");
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
  for (int i = 0; i < 100; ++i) Put("pat-" + std::to_string(i * 2 + 1), "w");
  int seen = 0;
  for (it->SeekToFirst(); it->Valid(); it->Next()) ++seen;
  EXPECT_EQ(seen, 100);
}

TEST_F(IndexMemTableTest, ThreadsReadWhileOneWrites) {
  std::atomic<bool> done{false};
  std::atomic<int> failures{0};
  std::vector<std::thread> readers;
  for (int t = 0; t < 3; ++t) {
    readers.emplace_back([&, t] {
      std::mt19937 rng(t);
      while (!done) {
        // Each key "k<n>" is written after "k<n-1>": a reader that sees one sees all before.
        std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
        int last = -1;
        bool ordered = true;
        for (it->SeekToFirst(); it->Valid(); it->Next()) {
          const int n = std::stoi(it->key().ToString().substr(1));
          ordered = ordered && n > last;
          last = n;
        }
        std::string v;
        const int probe = static_cast<int>(rng() % 20000);
        rocksdb::Status g = db_->Get(rocksdb::ReadOptions(), "k" + std::to_string(100000 + probe), &v);
        if (!ordered || !(g.ok() || g.IsNotFound())) ++failures;
      }
    });
  }
  for (int i = 0; i < 20000; ++i) {
    ASSERT_TRUE(db_->Put(rocksdb::WriteOptions(), "k" + std::to_string(100000 + i), "v").ok());
  }
  done = true;
  for (std::thread& r : readers) r.join();
  EXPECT_EQ(failures, 0);
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
  int count = 0;
  for (it->SeekToFirst(); it->Valid(); it->Next()) ++count;
  EXPECT_EQ(count, 20000);
}

}  // namespace
}  // namespace toegang::rocksdb_layout
