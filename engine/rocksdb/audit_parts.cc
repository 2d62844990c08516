// Copyright toegang authors.
#include "engine/rocksdb/audit_parts.h"

#include <iterator>
#include <limits>
#include <memory>

#include "absl/strings/str_cat.h"
#include "base/big_endian.h"
#include "engine/rocksdb/layout.h"

namespace toegang::rocksdb_layout {

namespace {

// No batch holds more records than this; a key saying otherwise is damaged.
constexpr uint64_t kMostPerPart = uint64_t{1} << 24;

void PutLength(std::string* out, uint32_t n) {
  const char b[4] = {static_cast<char>(n >> 24), static_cast<char>(n >> 16), static_cast<char>(n >> 8),
                     static_cast<char>(n)};
  out->append(b, 4);
}

uint32_t ReadLength(absl::string_view s) {
  return static_cast<uint32_t>(static_cast<unsigned char>(s[0])) << 24 |
         static_cast<uint32_t>(static_cast<unsigned char>(s[1])) << 16 |
         static_cast<uint32_t>(static_cast<unsigned char>(s[2])) << 8 | static_cast<unsigned char>(s[3]);
}

// Takes the next entry (its length, then its bytes) off the front of `value`; false
// when `value` does not hold one whole.
bool TakeFrame(absl::string_view* value, absl::string_view* entry) {
  if (value->size() < 4 || value->size() - 4 < ReadLength(*value)) return false;
  const uint32_t n = ReadLength(*value);
  *entry = value->substr(4, n);
  value->remove_prefix(4 + n);
  return true;
}

absl::Status Unframed(const AuditSlot& slot, uint64_t seq) {
  return absl::DataLossError(absl::StrCat("access log record ", seq, " is stored damaged: the part of records ",
                                          slot.first, " to ", slot.last, " does not hold it whole"));
}

}  // namespace

std::string AuditPartKey(uint64_t first, uint64_t last) { return BigEndian64(first) + BigEndian64(last); }

absl::StatusOr<AuditSlot> ParseAuditKey(absl::string_view key) {
  AuditSlot slot;
  if (key.size() == 8) {
    slot.first = slot.last = ReadBigEndian64(key);
    return slot;
  }
  if (key.size() == 16) {
    slot.first = ReadBigEndian64(key);
    slot.last = ReadBigEndian64(key.substr(8));
    slot.part = true;
    if (slot.first <= slot.last && slot.last - slot.first < kMostPerPart) return slot;
  }
  return absl::DataLossError("an access log key is corrupt");
}

absl::StatusOr<std::vector<absl::string_view>> AuditEntriesOf(const AuditSlot& slot, absl::string_view value) {
  if (!slot.part) return std::vector<absl::string_view>{value};
  std::vector<absl::string_view> out;
  out.reserve(slot.last - slot.first + 1);
  for (uint64_t seq = slot.first; seq <= slot.last; ++seq) {
    absl::string_view entry;
    if (!TakeFrame(&value, &entry)) return Unframed(slot, seq);
    out.push_back(entry);
  }
  if (!value.empty()) return Unframed(slot, slot.last);
  return out;
}

absl::StatusOr<AuditSlot> SeekAuditEntry(rocksdb::Iterator* it, uint64_t seq) {
  // The last key at or before (seq, the largest last): a part that starts at seq, else
  // seq's own key, else a part that starts before it.
  it->SeekForPrev(AuditPartKey(seq, std::numeric_limits<uint64_t>::max()));
  if (!it->Valid()) {
    if (!it->status().ok()) return FromRocks(it->status(), "reading the access log");
    return absl::NotFoundError(absl::StrCat("no access log record ", seq));
  }
  absl::StatusOr<AuditSlot> slot = ParseAuditKey(absl::string_view(it->key().data(), it->key().size()));
  if (!slot.ok()) return slot.status();
  if (slot->first <= seq && seq <= slot->last) return slot;
  return absl::NotFoundError(absl::StrCat("no access log record ", seq));
}

absl::StatusOr<absl::string_view> AuditEntryIn(const AuditSlot& slot, absl::string_view value, uint64_t seq) {
  if (!slot.part) return value;
  for (uint64_t at = slot.first; at <= slot.last; ++at) {
    absl::string_view entry;
    if (!TakeFrame(&value, &entry)) return Unframed(slot, at);
    if (at == seq) return entry;
  }
  return absl::NotFoundError(absl::StrCat("no access log record ", seq));
}

void AuditPartWriter::Add(uint64_t seq, absl::string_view entry) {
  if (open_ && (seq != last_ + 1 || part_->size() >= kAuditPartBytes)) Finish();
  if (!open_) {
    open_ = true;
    first_ = seq;
    part_->clear();
  }
  last_ = seq;
  PutLength(part_, static_cast<uint32_t>(entry.size()));
  part_->append(entry.data(), entry.size());
}

void AuditPartWriter::Finish() {
  if (!open_) return;
  batch_->Put(cf_, AuditPartKey(first_, last_), *part_);
  open_ = false;
  part_->clear();
}

absl::Status RewriteAuditEntries(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* cf,
                                 const absl::btree_map<uint64_t, std::string>& changes, bool erase,
                                 rocksdb::WriteBatch* batch) {
  struct Held {
    AuditSlot slot;
    std::string key;
    std::vector<std::string> entries;
  };
  // Every slot read and decoded before anything is put.
  absl::btree_map<uint64_t, Held> held;  // by first record
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions(), cf));
  for (const auto& [seq, unused] : changes) {
    if (auto h = held.upper_bound(seq); h != held.begin() && std::prev(h)->second.slot.last >= seq) continue;
    absl::StatusOr<AuditSlot> slot = SeekAuditEntry(it.get(), seq);
    if (!slot.ok()) return slot.status();
    absl::StatusOr<std::vector<absl::string_view>> entries =
        AuditEntriesOf(*slot, absl::string_view(it->value().data(), it->value().size()));
    if (!entries.ok()) return entries.status();
    held[slot->first] = Held{*slot, it->key().ToString(), std::vector<std::string>(entries->begin(), entries->end())};
  }
  std::string part;
  for (const auto& [first, h] : held) {
    if (!h.slot.part) {
      if (erase) {
        batch->Delete(cf, h.key);
      } else {
        batch->Put(cf, h.key, changes.at(first));
      }
      continue;
    }
    batch->Delete(cf, h.key);
    AuditPartWriter parts(batch, cf, &part);
    for (size_t i = 0; i < h.entries.size(); ++i) {
      const uint64_t seq = first + i;
      auto c = changes.find(seq);
      if (c == changes.end()) {
        parts.Add(seq, h.entries[i]);
      } else if (!erase) {
        parts.Add(seq, c->second);
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace toegang::rocksdb_layout
