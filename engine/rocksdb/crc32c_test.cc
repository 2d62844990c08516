// Copyright toegang authors.
//
// RocksDB's checksums on the CPU's instruction: the same values as the library's own, on
// every length and alignment; the library's calls bound to them; and a damaged log or
// table still found out.
#include "engine/rocksdb/crc32c.h"

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "rocksdb/db.h"
#include "rocksdb/options.h"

namespace toegang::rocksdb_checksum {
namespace {

// RFC 3720 (iSCSI), B.4, and the customary check value.
TEST(Crc32cTest, KnownValues) {
  struct Case {
    const char* name;
    std::string data;
    uint32_t crc;
  };
  std::string ascending, descending;
  for (int i = 0; i < 32; ++i) {
    ascending.push_back(static_cast<char>(i));
    descending.push_back(static_cast<char>(31 - i));
  }
  const Case cases[] = {
      {"check value", "123456789", 0xe3069283u},
      {"32 zeros", std::string(32, '\0'), 0x8a9136aau},
      {"32 ones", std::string(32, '\xff'), 0x62a8ab43u},
      {"ascending", ascending, 0x46dd794eu},
      {"descending", descending, 0x113fdb5cu},
      {"empty", "", 0u},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    EXPECT_EQ(Crc32cExtend(0, c.data.data(), c.data.size()), c.crc);
  }
}

TEST(Crc32cTest, EqualsTheLibrarysOwnOnEveryLengthAndAlignment) {
  const Crc32cFunction library = LibraryCrc32c();
  ASSERT_NE(library, nullptr) << "librocksdb's crc32c::Extend was not found";
  std::mt19937 rng(20261203);
  std::vector<char> bytes(20000);
  for (char& b : bytes) b = static_cast<char>(rng());
  for (size_t offset = 0; offset < 16; ++offset) {
    for (size_t n = 0; n <= 1100; ++n) {
      const uint32_t seed = rng();
      ASSERT_EQ(Crc32cExtend(seed, bytes.data() + offset, n), library(seed, bytes.data() + offset, n))
          << "offset " << offset << ", length " << n;
    }
  }
  for (size_t n : {4096u, 8192u, 8193u, 19983u}) {
    EXPECT_EQ(Crc32cExtend(7, bytes.data() + 1, n), library(7, bytes.data() + 1, n)) << "length " << n;
  }
}

TEST(Crc32cTest, ExtendingContinuesTheBytesBefore) {
  const std::string data = "toegang: the access log's part, then its records";
  const uint32_t whole = Crc32cExtend(0, data.data(), data.size());
  for (size_t cut = 0; cut <= data.size(); ++cut) {
    EXPECT_EQ(Crc32cExtend(Crc32cExtend(0, data.data(), cut), data.data() + cut, data.size() - cut), whole)
        << "cut at " << cut;
  }
}

// What makes the file worth having: the library computes its checksums through it. A
// RocksDB built so that its calls no longer reach the program's definition fails here.
TEST(Crc32cTest, TheLibrarysChecksumsUseIt) {
  EXPECT_TRUE(LibraryUsesCrc32cExtend());
#if defined(__x86_64__)
  EXPECT_TRUE(Crc32cUsesCpuInstruction()) << "this x86-64 CPU has no SSE4.2";
#endif
}

class DamageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "/crc32c-damage";
    std::filesystem::remove_all(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  rocksdb::Status Open(std::unique_ptr<rocksdb::DB>* db) {
    rocksdb::Options o;
    o.create_if_missing = true;
    o.avoid_flush_during_shutdown = true;  // keep what was written in the log alone
    o.avoid_flush_during_recovery = true;
    o.wal_recovery_mode = rocksdb::WALRecoveryMode::kAbsoluteConsistency;
    o.paranoid_checks = true;
    rocksdb::DB* raw = nullptr;
    rocksdb::Status s = rocksdb::DB::Open(o, dir_, &raw);
    db->reset(raw);
    return s;
  }

  void WriteRecords(rocksdb::DB& db) {
    for (int i = 0; i < 200; ++i) {
      ASSERT_TRUE(db.Put({}, "key-" + std::to_string(i), std::string(300, static_cast<char>('a' + i % 26))).ok());
    }
  }

  // The one file in the store whose name ends in `suffix`.
  std::string FileEndingIn(const std::string& suffix) {
    std::string found;
    for (const auto& entry : std::filesystem::directory_iterator(dir_)) {
      const std::string name = entry.path().string();
      if (name.size() >= suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0) {
        EXPECT_TRUE(found.empty()) << "more than one " << suffix << " file";
        found = name;
      }
    }
    return found;
  }

  static void FlipByteAt(const std::string& path, std::streamoff at) {
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(at);
    char c = 0;
    f.get(c);
    f.seekp(at);
    f.put(static_cast<char>(c ^ 0x20));
  }

  std::string dir_;
};

TEST_F(DamageTest, ALogReadsBackAndAChangedByteInItIsFound) {
  std::unique_ptr<rocksdb::DB> db;
  ASSERT_TRUE(Open(&db).ok());
  WriteRecords(*db);
  ASSERT_TRUE(db->Close().ok());
  db.reset();
  const std::string log = FileEndingIn(".log");
  ASSERT_FALSE(log.empty());
  const std::string intact = dir_ + "-intact";
  std::filesystem::remove_all(intact);
  std::filesystem::copy(dir_, intact);
  FlipByteAt(log, static_cast<std::streamoff>(std::filesystem::file_size(log) / 2));

  const rocksdb::Status reopened = Open(&db);
  EXPECT_TRUE(reopened.IsCorruption()) << reopened.ToString();
  db.reset();

  std::filesystem::remove_all(dir_);
  std::filesystem::rename(intact, dir_);
  ASSERT_TRUE(Open(&db).ok());
  std::string value;
  ASSERT_TRUE(db->Get({}, "key-150", &value).ok());
  EXPECT_EQ(value, std::string(300, static_cast<char>('a' + 150 % 26)));
  EXPECT_TRUE(db->Close().ok());
}

TEST_F(DamageTest, ATableReadsBackAndAChangedByteInItIsFound) {
  std::unique_ptr<rocksdb::DB> db;
  ASSERT_TRUE(Open(&db).ok());
  WriteRecords(*db);
  ASSERT_TRUE(db->Flush({}).ok());
  ASSERT_TRUE(db->Close().ok());
  db.reset();

  const std::string table = FileEndingIn(".sst");
  ASSERT_FALSE(table.empty());
  FlipByteAt(table, 100);  // inside the first data block
  ASSERT_TRUE(Open(&db).ok());
  rocksdb::ReadOptions verify;
  verify.verify_checksums = true;
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(verify));
  int read = 0;
  for (it->SeekToFirst(); it->Valid(); it->Next()) ++read;
  EXPECT_TRUE(it->status().IsCorruption()) << it->status().ToString() << " after " << read << " records";
}

}  // namespace
}  // namespace toegang::rocksdb_checksum
