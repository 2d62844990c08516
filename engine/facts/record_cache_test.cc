// Copyright toegang authors.
#include "engine/facts/record_cache.h"

#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace toegang {
namespace {

// Every value costs its own number of bytes (keys are free here).
size_t ValueBytes(absl::string_view, const size_t& v) { return v; }

// Keys that all fall in one shard, so a test can reason about one shard's budget.
std::vector<std::string> KeysOfOneShard(size_t n) {
  std::vector<std::string> out;
  for (int i = 0; out.size() < n; ++i) {
    std::string k = absl::StrCat("k", i);
    if (absl::HashOf(absl::string_view(k)) % 16 == 0) out.push_back(k);
  }
  return out;
}

std::shared_ptr<const size_t> V(size_t v) { return std::make_shared<const size_t>(v); }

TEST(RecordCacheTest, GivesBackWhatWasPut) {
  RecordCache<size_t> cache(16 * 1000, ValueBytes);
  EXPECT_EQ(cache.Get("a"), nullptr);
  cache.Put("a", V(10));
  ASSERT_NE(cache.Get("a"), nullptr);
  EXPECT_EQ(*cache.Get("a"), 10u);
  cache.Put("a", V(20));  // replaced
  EXPECT_EQ(*cache.Get("a"), 20u);
  cache.Erase("a");
  EXPECT_EQ(cache.Get("a"), nullptr);
}

TEST(RecordCacheTest, GetManyGivesWhatGetGives) {
  RecordCache<size_t> cache(16 * 1000, ValueBytes);
  cache.Put("a", V(10));
  cache.Put("c", V(30));
  const std::vector<std::string> keys = {"a", "b", "c", "a"};
  std::vector<std::shared_ptr<const size_t>> got(keys.size());
  cache.GetMany(keys, absl::MakeSpan(got));
  ASSERT_NE(got[0], nullptr);
  EXPECT_EQ(*got[0], 10u);
  EXPECT_EQ(got[1], nullptr);
  ASSERT_NE(got[2], nullptr);
  EXPECT_EQ(*got[2], 30u);
  EXPECT_EQ(got[3], got[0]);
}

TEST(RecordCacheTest, KeepsWithinItsBudgetInBytes) {
  RecordCache<size_t> cache(16 * 100, ValueBytes);  // 100 bytes a shard
  const std::vector<std::string> keys = KeysOfOneShard(10);
  for (const std::string& k : keys) cache.Put(k, V(30));
  size_t kept = 0;
  for (const std::string& k : keys) kept += cache.Get(k) != nullptr;
  EXPECT_EQ(kept, 3u);  // 3 × 30 ≤ 100 < 4 × 30
  EXPECT_NE(cache.Get(keys.back()), nullptr) << "the newest entry is kept";
}

TEST(RecordCacheTest, NeverKeepsAValueLargerThanAShard) {
  RecordCache<size_t> cache(16 * 100, ValueBytes);
  const std::vector<std::string> keys = KeysOfOneShard(2);
  cache.Put(keys[0], V(50));
  cache.Put(keys[1], V(101));
  EXPECT_EQ(cache.Get(keys[1]), nullptr);
  EXPECT_NE(cache.Get(keys[0]), nullptr) << "the too-large value evicted nothing";
}

TEST(RecordCacheTest, AnEntryReadSinceTheLastSweepSurvivesIt) {
  RecordCache<size_t> cache(16 * 100, ValueBytes);
  const std::vector<std::string> keys = KeysOfOneShard(5);
  cache.Put(keys[0], V(30));
  cache.Put(keys[1], V(30));
  cache.Put(keys[2], V(30));
  ASSERT_NE(cache.Get(keys[0]), nullptr);  // read: a second chance
  cache.Put(keys[3], V(30));               // one must go: not keys[0]
  EXPECT_NE(cache.Get(keys[0]), nullptr);
  EXPECT_NE(cache.Get(keys[3]), nullptr);
  EXPECT_EQ((cache.Get(keys[1]) != nullptr) + (cache.Get(keys[2]) != nullptr), 1);
}

TEST(RecordCacheTest, ZeroBytesKeepsNothing) {
  RecordCache<size_t> cache(0, ValueBytes);
  cache.Put("a", V(1));
  EXPECT_EQ(cache.Get("a"), nullptr);
}

TEST(RecordCacheTest, ReadersAndWritersAtOnce) {
  RecordCache<size_t> cache(16 * 2000, ValueBytes);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&cache, t] {
      for (int i = 0; i < 20000; ++i) {
        const std::string k = absl::StrCat("k", (i * 7 + t) % 500);
        if (i % 3 == 0) {
          cache.Put(k, V(static_cast<size_t>(10 + i % 7)));
        } else if (i % 50 == 1) {
          cache.Erase(k);
        } else if (std::shared_ptr<const size_t> v = cache.Get(k)) {
          EXPECT_GE(*v, 10u);
          EXPECT_LT(*v, 17u);
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
}

}  // namespace
}  // namespace toegang
