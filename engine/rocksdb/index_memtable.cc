// Copyright toegang authors.
#include "engine/rocksdb/index_memtable.h"

#include <algorithm>
#include <cstdint>
#include <cstddef>
#include <cstring>
#include <memory>
#include <new>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "base/sync.h"
#include "rocksdb/db.h"
#include "rocksdb/env.h"
#include "rocksdb/options.h"

namespace toegang::rocksdb_layout {
namespace {

// A length as RocksDB writes it before a memtable key (varint32; its coding header is
// not among the public ones).
const char* ReadVarint32(const char* p, uint32_t* v) {
  uint32_t result = 0;
  for (uint32_t shift = 0; shift <= 28; shift += 7) {
    const uint32_t byte = static_cast<unsigned char>(*p++);
    result |= (byte & 127) << shift;
    if ((byte & 128) == 0) break;
  }
  *v = result;
  return p;
}

// One entry: its internal key (user key, then 8 bytes of sequence and type), and the
// user key's first 8 bytes as a big-endian number, zero-padded — ordered as the bytes
// are, so most comparisons end at one integer compare.
struct Slot {
  uint64_t head = 0;
  const char* ikey = nullptr;
  uint32_t ikey_len = 0;
  uint32_t prefix_len = 0;  // bytes of the length before the key: the entry starts there
};

Slot SlotOfInternalKey(const char* ikey, uint32_t len, uint32_t prefix_len) {
  Slot s;
  s.ikey = ikey;
  s.ikey_len = len;
  s.prefix_len = prefix_len;
  const uint32_t user = len >= 8 ? len - 8 : 0;
  for (uint32_t i = 0; i < 8; ++i) s.head = (s.head << 8) | (i < user ? static_cast<unsigned char>(ikey[i]) : 0u);
  return s;
}

Slot SlotOfEntry(const char* entry) {
  uint32_t len = 0;
  const char* ikey = ReadVarint32(entry, &len);
  return SlotOfInternalKey(ikey, len, static_cast<uint32_t>(ikey - entry));
}

// The sequence and type, as RocksDB stores them after the user key (little-endian).
uint64_t Trailer(const char* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

// RocksDB's internal key order under the bytewise comparator: user key ascending, then
// sequence and type descending (the newest write of a key first).
bool Less(const Slot& a, const Slot& b) {
  if (a.head != b.head) return a.head < b.head;
  const uint32_t ua = a.ikey_len >= 8 ? a.ikey_len - 8 : 0;
  const uint32_t ub = b.ikey_len >= 8 ? b.ikey_len - 8 : 0;
  const int c = std::memcmp(a.ikey, b.ikey, std::min(ua, ub));
  if (c != 0) return c < 0;
  if (ua != ub) return ua < ub;
  if (a.ikey_len < 8 || b.ikey_len < 8) return a.ikey_len < b.ikey_len;
  return Trailer(a.ikey + ua) > Trailer(b.ikey + ub);
}

using Slots = std::vector<Slot>;

// Where iterators live. RocksDB destroys an iterator it gave its arena without freeing
// it (the arena's type is not in its public headers), and deletes one it did not: each
// iterator is made in a block of this pool and gives the block back as the last step of
// its destruction, whichever way it ends.
class IteratorBlocks {
 public:
  static constexpr size_t kBytes = 64;

  void* Take() {
    MutexLock lock(&mu_);
    if (free_.empty()) {
      blocks_.push_back(std::make_unique<Block>());
      return blocks_.back()->bytes;
    }
    void* b = free_.back();
    free_.pop_back();
    return b;
  }
  void Give(void* b) {
    MutexLock lock(&mu_);
    free_.push_back(b);
  }

 private:
  struct Block {
    alignas(std::max_align_t) unsigned char bytes[kBytes];
  };
  Mutex mu_;
  std::vector<std::unique_ptr<Block>> blocks_ ABSL_GUARDED_BY(mu_);
  std::vector<void*> free_ ABSL_GUARDED_BY(mu_);
};

IteratorBlocks& Blocks() {
  static auto* blocks = new IteratorBlocks;  // never destroyed: a memtable may outlive static destruction
  return *blocks;
}

// The first base of an iterator, so destroyed last: hands its block back.
class InBlock {
 public:
  explicit InBlock(void* block) : block_(block) {}
  ~InBlock() { Blocks().Give(block_); }

 private:
  void* const block_;
};

// Walks one sorted snapshot of the entries. Made only by New().
class SortedIterator final : public InBlock, public rocksdb::MemTableRep::Iterator {
 public:
  static SortedIterator* New(std::shared_ptr<const Slots> slots) {
    void* block = Blocks().Take();
    return new (block) SortedIterator(block, std::move(slots));
  }
  // `delete` (RocksDB's, for an iterator without an arena) only destroys: the block
  // goes back to the pool with ~InBlock.
  static void operator delete(void* /*block*/) {}

  bool Valid() const override { return at_ < slots_->size(); }
  const char* key() const override {
    const Slot& s = (*slots_)[at_];
    return s.ikey - s.prefix_len;
  }
  void Next() override {
    if (at_ < slots_->size()) ++at_;
  }
  // From the first entry, invalid; from invalid, the last (as RocksDB's vector memtable).
  void Prev() override { at_ = at_ == 0 ? slots_->size() : at_ - 1; }
  void Seek(const rocksdb::Slice& internal_key, const char* memtable_key) override {
    const Slot target = Target(internal_key, memtable_key);
    at_ = static_cast<size_t>(std::lower_bound(slots_->begin(), slots_->end(), target, Less) - slots_->begin());
  }
  void SeekForPrev(const rocksdb::Slice& internal_key, const char* memtable_key) override {
    const Slot target = Target(internal_key, memtable_key);
    const size_t after =
        static_cast<size_t>(std::upper_bound(slots_->begin(), slots_->end(), target, Less) - slots_->begin());
    at_ = after == 0 ? slots_->size() : after - 1;
  }
  void SeekToFirst() override { at_ = 0; }
  void SeekToLast() override { at_ = slots_->empty() ? 0 : slots_->size() - 1; }

 private:
  SortedIterator(void* block, std::shared_ptr<const Slots> slots)
      : InBlock(block), slots_(std::move(slots)), at_(slots_->size()) {}

  static Slot Target(const rocksdb::Slice& internal_key, const char* memtable_key) {
    if (memtable_key != nullptr) return SlotOfEntry(memtable_key);
    return SlotOfInternalKey(internal_key.data(), static_cast<uint32_t>(internal_key.size()), 0);
  }

  const std::shared_ptr<const Slots> slots_;
  size_t at_;
};

// RocksDB's LookupKey keeps where its memtable key starts as its first member
// (db/lookup_key.h, unchanged since LevelDB); its accessors are not in the public
// headers. PatientIndexMemTables() checks this on a real database before use.
const char* MemtableKeyOf(const rocksdb::LookupKey& k) { return *reinterpret_cast<const char* const*>(&k); }

static_assert(sizeof(SortedIterator) <= IteratorBlocks::kBytes);

class PatientIndexRep final : public rocksdb::MemTableRep {
 public:
  explicit PatientIndexRep(rocksdb::Allocator* allocator) : MemTableRep(allocator) {}

  void Insert(rocksdb::KeyHandle handle) override {
    const Slot s = SlotOfEntry(static_cast<const char*>(handle));
    MutexLock lock(&mu_);
    added_.push_back(s);
  }

  bool Contains(const char* key) const override {
    const Slot k = SlotOfEntry(key);
    auto same = [&](const Slot& s) { return !Less(s, k) && !Less(k, s); };
    MutexLock merging(&merge_mu_);  // none out of both added_ and sorted_
    MutexLock lock(&mu_);
    return std::any_of(added_.begin(), added_.end(), same) ||
           (sorted_ != nullptr && std::binary_search(sorted_->begin(), sorted_->end(), k, Less));
  }

  // Read-only, a memtable's size must stay what it was when it became so: RocksDB
  // subtracts it from the total it added it to. (Sorting for the flush then makes a
  // copy, briefly; RocksDB's vector memtable sorts in place.)
  void MarkReadOnly() override {
    MutexLock lock(&mu_);
    frozen_usage_ = UsageLocked();
  }

  size_t ApproximateMemoryUsage() override {
    MutexLock lock(&mu_);
    return frozen_usage_.has_value() ? *frozen_usage_ : UsageLocked();
  }

  void Get(const rocksdb::LookupKey& k, void* callback_args,
           bool (*callback_func)(void* arg, const char* entry)) override {
    std::unique_ptr<SortedIterator> it(SortedIterator::New(Sorted()));
    for (it->Seek(rocksdb::Slice(), MemtableKeyOf(k)); it->Valid() && callback_func(callback_args, it->key());
         it->Next()) {
    }
  }

  Iterator* GetIterator(rocksdb::Arena* /*arena*/) override { return SortedIterator::New(Sorted()); }

 private:
  // Every entry so far, in order: what was added since the last call is sorted and
  // merged into the last call's snapshot (which iterators may still hold). The writer
  // waits only while the new entries are taken, not while they are sorted and merged.
  std::shared_ptr<const Slots> Sorted() {
    MutexLock merging(&merge_mu_);
    Slots tail;
    std::shared_ptr<const Slots> last;
    {
      MutexLock lock(&mu_);
      if (added_.empty() && sorted_ != nullptr) return sorted_;
      tail.swap(added_);
      last = sorted_;
      taken_ = tail.capacity();
    }
    std::sort(tail.begin(), tail.end(), Less);
    auto merged = std::make_shared<Slots>();
    if (last == nullptr || last->empty()) {
      merged->swap(tail);
    } else {
      merged->reserve(last->size() + tail.size());
      std::merge(last->begin(), last->end(), tail.begin(), tail.end(), std::back_inserter(*merged), Less);
    }
    MutexLock lock(&mu_);
    sorted_ = std::move(merged);
    taken_ = 0;
    return sorted_;
  }

  size_t UsageLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return (added_.capacity() + taken_ + (sorted_ == nullptr ? 0 : sorted_->capacity())) * sizeof(Slot);
  }

  mutable Mutex merge_mu_ ABSL_ACQUIRED_BEFORE(mu_);  // one snapshot made at a time
  mutable Mutex mu_;
  size_t taken_ ABSL_GUARDED_BY(mu_) = 0;  // entries being merged, out of added_ and not yet in sorted_
  std::optional<size_t> frozen_usage_ ABSL_GUARDED_BY(mu_);  // once read-only
  Slots added_ ABSL_GUARDED_BY(mu_);  // since the last snapshot, as they came
  std::shared_ptr<const Slots> sorted_ ABSL_GUARDED_BY(mu_);
};

class PatientIndexFactory final : public rocksdb::MemTableRepFactory {
 public:
  rocksdb::MemTableRep* CreateMemTableRep(const rocksdb::MemTableRep::KeyComparator& /*compare*/,
                                          rocksdb::Allocator* allocator, const rocksdb::SliceTransform* /*prefix*/,
                                          rocksdb::Logger* /*logger*/) override {
    return new PatientIndexRep(allocator);
  }
  const char* Name() const override { return "ToegangPatientIndexMemTable"; }
};

// Whether a database in memory with these memtables answers what it was told: keys
// whose first eight bytes tie, one of them written twice (the newer wins), one never.
bool AnswersRight(const std::shared_ptr<rocksdb::MemTableRepFactory>& factory) {
  std::unique_ptr<rocksdb::Env> env(rocksdb::NewMemEnv(rocksdb::Env::Default()));
  rocksdb::Options o;
  o.env = env.get();
  o.create_if_missing = true;
  o.allow_concurrent_memtable_write = false;
  o.memtable_factory = factory;
  rocksdb::DB* raw = nullptr;
  if (!rocksdb::DB::Open(o, "/toegang-index-memtable-check", &raw).ok()) return false;
  std::unique_ptr<rocksdb::DB> db(raw);
  const rocksdb::WriteOptions w;
  bool ok = db->Put(w, "patient-0001", "old").ok() && db->Put(w, "patient-0002", "b").ok() &&
            db->Put(w, "patient-0001", "new").ok() && db->Put(w, "pat", "short").ok();
  std::string v;
  const rocksdb::ReadOptions r;
  ok = ok && db->Get(r, "patient-0001", &v).ok() && v == "new";
  ok = ok && db->Get(r, "patient-0002", &v).ok() && v == "b";
  ok = ok && db->Get(r, "pat", &v).ok() && v == "short";
  ok = ok && db->Get(r, "patient-0003", &v).IsNotFound() && db->Get(r, "patient-00", &v).IsNotFound();
  ok = db->Close().ok() && ok;
  return ok;
}

}  // namespace

std::shared_ptr<rocksdb::MemTableRepFactory> PatientIndexMemTables() {
  static const std::shared_ptr<rocksdb::MemTableRepFactory> factory = [] {
    std::shared_ptr<rocksdb::MemTableRepFactory> f = std::make_shared<PatientIndexFactory>();
    return AnswersRight(f) ? f : nullptr;
  }();
  return factory;
}

}  // namespace toegang::rocksdb_layout
