// Copyright toegang authors.
//
// record_cache.h (internal): a bounded, sharded LRU of immutable values by string key —
// the hot cache in front of the durable store. Thread-safe.
#ifndef TOEGANG_ENGINE_FACTS_RECORD_CACHE_H_
#define TOEGANG_ENGINE_FACTS_RECORD_CACHE_H_

#include <array>
#include <list>
#include <memory>
#include <string>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/hash/hash.h"
#include "absl/strings/string_view.h"
#include "base/sync.h"

namespace toegang {

template <typename V>
class RecordCache {
 public:
  // Holds at most `capacity` entries (rounded up to a multiple of the shard count).
  explicit RecordCache(size_t capacity) : per_shard_(capacity / kShards + 1) {}

  // The value for `key`, or null. A hit becomes the most recently used.
  std::shared_ptr<const V> Get(absl::string_view key) {
    Shard& s = ShardFor(key);
    MutexLock lock(&s.mu);
    auto it = s.index.find(key);
    if (it == s.index.end()) return nullptr;
    s.lru.splice(s.lru.begin(), s.lru, it->second);
    return it->second->second;
  }

  void Put(absl::string_view key, std::shared_ptr<const V> value) {
    Shard& s = ShardFor(key);
    MutexLock lock(&s.mu);
    auto it = s.index.find(key);
    if (it != s.index.end()) {
      it->second->second = std::move(value);
      s.lru.splice(s.lru.begin(), s.lru, it->second);
      return;
    }
    s.lru.emplace_front(std::string(key), std::move(value));
    s.index.emplace(s.lru.front().first, s.lru.begin());
    if (s.lru.size() > per_shard_) {
      s.index.erase(s.lru.back().first);
      s.lru.pop_back();
    }
  }

  void Erase(absl::string_view key) {
    Shard& s = ShardFor(key);
    MutexLock lock(&s.mu);
    auto it = s.index.find(key);
    if (it == s.index.end()) return;
    s.lru.erase(it->second);
    s.index.erase(it);
  }

 private:
  static constexpr size_t kShards = 16;
  struct Shard {
    Mutex mu;
    std::list<std::pair<std::string, std::shared_ptr<const V>>> lru ABSL_GUARDED_BY(mu);
    absl::flat_hash_map<absl::string_view, typename decltype(lru)::iterator> index ABSL_GUARDED_BY(mu);
  };
  Shard& ShardFor(absl::string_view key) { return shards_[absl::HashOf(key) % kShards]; }

  const size_t per_shard_;
  std::array<Shard, kShards> shards_;
};

}  // namespace toegang

#endif  // TOEGANG_ENGINE_FACTS_RECORD_CACHE_H_
