// Copyright toegang authors.
//
// audit_parts.h (internal): how access-log entries sit in the `audit` column family.
// A run of consecutive records is stored as one part: key first(8) last(8), both
// big-endian, and the entries one after another, each after its length (4 bytes,
// big-endian). Stores of format 3 and before hold one entry per key, seq(8); both
// forms are read. A part keeps a record's own bytes and hashes, so verification still
// names the one record that was changed; what it saves is RocksDB's work per key (a
// memtable insert, a step of every flush and compaction), which for one entry per key
// was half of what logging a decision cost (bench/RESULTS.md).
#ifndef TOEGANG_ENGINE_ROCKSDB_AUDIT_PARTS_H_
#define TOEGANG_ENGINE_ROCKSDB_AUDIT_PARTS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/container/btree_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "rocksdb/db.h"

namespace toegang::rocksdb_layout {

// A part closes once it holds this many bytes: about a data block, so reading one
// record reads (and caches) a few kilobytes, not a whole batch.
inline constexpr size_t kAuditPartBytes = size_t{8} << 10;

// One key of the `audit` column family: the records it holds.
struct AuditSlot {
  uint64_t first = 0;
  uint64_t last = 0;
  bool part = false;  // false: one entry, stored whole (format 3 and before)
};

std::string AuditPartKey(uint64_t first, uint64_t last);

// The records a key holds; DataLoss for a key of neither form.
absl::StatusOr<AuditSlot> ParseAuditKey(absl::string_view key);

// The entries of a slot's value, record `slot.first` first; DataLoss naming the first
// record whose bytes the value does not hold whole.
absl::StatusOr<std::vector<absl::string_view>> AuditEntriesOf(const AuditSlot& slot, absl::string_view value);

// Leaves `it` on the key that holds record `seq`; NotFound when none does.
absl::StatusOr<AuditSlot> SeekAuditEntry(rocksdb::Iterator* it, uint64_t seq);

// The entry of record `seq` (which `slot` holds) in the slot's value.
absl::StatusOr<absl::string_view> AuditEntryIn(const AuditSlot& slot, absl::string_view value, uint64_t seq);

// Puts into `batch` the keys of `cf` (the `audit` column family of `db`) that hold the
// records of `changes` as they become: each record's entry replaced by its value there,
// or with `erase`, removed (the rest of its part stored again as parts). NotFound, with
// nothing put, when one is not stored.
absl::Status RewriteAuditEntries(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* cf,
                                 const absl::btree_map<uint64_t, std::string>& changes, bool erase,
                                 rocksdb::WriteBatch* batch);

// Puts records into a write batch as parts: each run of consecutive records, cut at
// kAuditPartBytes. The same records in the same order always make the same keys and
// values, so writing them again (after a failed write) changes nothing.
class AuditPartWriter {
 public:
  AuditPartWriter(rocksdb::WriteBatch* batch, rocksdb::ColumnFamilyHandle* cf, std::string* buffer)
      : batch_(batch), cf_(cf), part_(buffer) {
    part_->clear();
  }
  ~AuditPartWriter() { Finish(); }

  void Add(uint64_t seq, absl::string_view entry);
  // Puts the part still open.
  void Finish();

 private:
  rocksdb::WriteBatch* batch_;
  rocksdb::ColumnFamilyHandle* cf_;
  std::string* part_;  // the caller's, so that its storage is reused from batch to batch
  uint64_t first_ = 0;
  uint64_t last_ = 0;
  bool open_ = false;
};

}  // namespace toegang::rocksdb_layout

#endif  // TOEGANG_ENGINE_ROCKSDB_AUDIT_PARTS_H_
