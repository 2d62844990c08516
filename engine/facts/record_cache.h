// Copyright toegang authors.
//
// record_cache.h (internal): a bounded, sharded cache of immutable values by string key,
// with a budget in bytes — the hot cache in front of the durable store. Thread-safe.
//
// Every decision reads it, so a hit takes only a shard's reader lock and writes nothing
// shared unless the entry was not marked used since the last sweep. Eviction is CLOCK (a
// second chance): a sweep passes over the entries in insertion order, clears the mark of
// a used one and evicts the first unmarked one, which approximates LRU without moving
// anything on a hit.
#ifndef TOEGANG_ENGINE_FACTS_RECORD_CACHE_H_
#define TOEGANG_ENGINE_FACTS_RECORD_CACHE_H_

#include <array>
#include <atomic>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/hash/hash.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "base/sync.h"
#include "engine/facts/prefetch.h"

namespace toegang {

template <typename V>
class RecordCache {
 public:
  // What an entry costs, in bytes (its key included); the cache keeps the sum at most
  // `capacity_bytes` (0: it keeps nothing).
  using Charge = size_t (*)(absl::string_view key, const V& value);

  RecordCache(size_t capacity_bytes, Charge charge) : per_shard_(capacity_bytes / kShards), charge_(charge) {}

  // The value for `key`, or null.
  std::shared_ptr<const V> Get(absl::string_view key) {
    Shard& s = ShardFor(key);
    ReaderMutexLock lock(&s.mu);
    auto it = s.index.find(key);
    if (it == s.index.end()) return nullptr;
    Entry& e = it->second;
    if (!e.used.load(std::memory_order_relaxed)) e.used.store(true, std::memory_order_relaxed);
    PrefetchShared(e.value.get());  // before the reference count is taken
    return e.value;
  }

  // Get for each of `keys` into `out` (same length), in steps taken for every key before
  // the next (the table's slots, the values, then the reference counts), so their waits
  // for memory overlap.
  void GetMany(absl::Span<const std::string> keys, absl::Span<std::shared_ptr<const V>> out) {
    for (const std::string& key : keys) {
      Shard& s = ShardFor(key);
      ReaderMutexLock lock(&s.mu);
      s.index.prefetch(key);
    }
    for (const std::string& key : keys) {
      Shard& s = ShardFor(key);
      ReaderMutexLock lock(&s.mu);
      auto it = s.index.find(key);
      if (it != s.index.end()) PrefetchShared(it->second.value.get());
    }
    for (size_t i = 0; i < keys.size(); ++i) out[i] = Get(keys[i]);
  }

  void Put(absl::string_view key, std::shared_ptr<const V> value) {
    const size_t charge = charge_(key, *value);
    Shard& s = ShardFor(key);
    WriterMutexLock lock(&s.mu);
    auto it = s.index.find(key);
    if (it != s.index.end()) {
      Entry& e = it->second;
      s.bytes = s.bytes - e.charge + charge;
      e.value = std::move(value);
      e.charge = charge;
    } else {
      if (charge > per_shard_) return;  // larger than the cache: never kept
      s.ring.emplace_back(key);
      s.index.emplace(std::string(key), Entry(std::move(value), charge, s.ring.size() - 1));
      s.bytes += charge;
    }
    while (s.bytes > per_shard_ && !s.ring.empty()) EvictOne(s);
  }

  void Erase(absl::string_view key) {
    Shard& s = ShardFor(key);
    WriterMutexLock lock(&s.mu);
    auto it = s.index.find(key);
    if (it == s.index.end()) return;
    Remove(s, it);
  }

 private:
  static constexpr size_t kShards = 16;

  // What a hit reads sits in the index's own slot: no second lookup on the way to the
  // value.
  struct Entry {
    Entry(std::shared_ptr<const V> v, size_t c, size_t p) : value(std::move(v)), charge(c), pos(p) {}
    Entry(Entry&& o) noexcept
        : value(std::move(o.value)), charge(o.charge), pos(o.pos), used(o.used.load(std::memory_order_relaxed)) {}
    Entry& operator=(Entry&& o) noexcept {
      value = std::move(o.value);
      charge = o.charge;
      pos = o.pos;
      used.store(o.used.load(std::memory_order_relaxed), std::memory_order_relaxed);
      return *this;
    }
    std::shared_ptr<const V> value;
    size_t charge;
    size_t pos;                     // in the shard's ring
    std::atomic<bool> used{false};  // set by a hit (under the reader lock), cleared by a sweep
  };
  using Index = absl::flat_hash_map<std::string, Entry>;
  struct Shard {
    SharedMutex mu;
    Index index ABSL_GUARDED_BY(mu);
    std::vector<std::string> ring ABSL_GUARDED_BY(mu);  // the keys, in the order a sweep passes them
    size_t hand ABSL_GUARDED_BY(mu) = 0;
    size_t bytes ABSL_GUARDED_BY(mu) = 0;
  };

  static void EvictOne(Shard& s) ABSL_EXCLUSIVE_LOCKS_REQUIRED(s.mu) {
    // Two passes at most: the first clears every mark it meets.
    for (size_t step = 0; step < 2 * s.ring.size() + 1; ++step) {
      if (s.hand >= s.ring.size()) s.hand = 0;
      auto it = s.index.find(s.ring[s.hand]);
      if (it->second.used.load(std::memory_order_relaxed)) {
        it->second.used.store(false, std::memory_order_relaxed);
        ++s.hand;
        continue;
      }
      Remove(s, it);
      return;
    }
  }

  // Removes the entry at `it`, moving the ring's last key into its place.
  static void Remove(Shard& s, typename Index::iterator it) ABSL_EXCLUSIVE_LOCKS_REQUIRED(s.mu) {
    const size_t pos = it->second.pos;
    s.bytes -= it->second.charge;
    s.index.erase(it);
    if (pos + 1 != s.ring.size()) {
      s.ring[pos] = std::move(s.ring.back());
      s.index.find(s.ring[pos])->second.pos = pos;
    }
    s.ring.pop_back();
  }

  Shard& ShardFor(absl::string_view key) { return shards_[absl::HashOf(key) % kShards]; }

  const size_t per_shard_;
  const Charge charge_;
  std::array<Shard, kShards> shards_;
};

}  // namespace toegang

#endif  // TOEGANG_ENGINE_FACTS_RECORD_CACHE_H_
