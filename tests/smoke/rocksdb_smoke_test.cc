// RocksDB from Debian opens, writes (synced) and reads back in a temporary directory.
#include <cstdlib>
#include <memory>
#include <string>

#include "gtest/gtest.h"
#include "rocksdb/db.h"
#include "rocksdb/options.h"

namespace {

TEST(RocksDbSmoke, OpenWriteReadReopen) {
  const char* tmp = std::getenv("TEST_TMPDIR");
  std::string dir = std::string(tmp ? tmp : "/tmp") + "/rocksdb_smoke";
  rocksdb::Options options;
  options.create_if_missing = true;
  {
    rocksdb::DB* raw = nullptr;
    rocksdb::Status s = rocksdb::DB::Open(options, dir, &raw);
    ASSERT_TRUE(s.ok()) << s.ToString();
    std::unique_ptr<rocksdb::DB> db(raw);
    rocksdb::WriteOptions sync;
    sync.sync = true;
    ASSERT_TRUE(db->Put(sync, "patient/pat-1", "fact").ok());
    std::string value;
    ASSERT_TRUE(db->Get(rocksdb::ReadOptions(), "patient/pat-1", &value).ok());
    EXPECT_EQ(value, "fact");
    EXPECT_TRUE(db->Get(rocksdb::ReadOptions(), "patient/pat-2", &value).IsNotFound());
    ASSERT_TRUE(db->Close().ok());
  }
  rocksdb::DB* raw = nullptr;
  ASSERT_TRUE(rocksdb::DB::Open(options, dir, &raw).ok());
  std::unique_ptr<rocksdb::DB> db(raw);
  std::string value;
  ASSERT_TRUE(db->Get(rocksdb::ReadOptions(), "patient/pat-1", &value).ok());
  EXPECT_EQ(value, "fact");
}

}  // namespace
