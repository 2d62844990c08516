// Copyright toegang authors.
//
// The access log's entries in a durable store (layout.h: the `audit` and
// `audit_by_patient` column families, and the head and checkpoint keys). The chain and
// its checks are engine/audit's; this keeps bytes, atomically.
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/btree_map.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "base/sync.h"
#include "engine/rocksdb/audit_parts.h"
#include "engine/rocksdb/stores.h"
#include "model/status_macros.h"

namespace toegang {
namespace {

using namespace rocksdb_layout;  // NOLINT: the layout's names are this file's vocabulary

// The entry of record `seq`, read with `it` (an iterator over `audit`) and valid while
// it stays where it is; NotFound when no key holds the record.
absl::StatusOr<absl::string_view> EntryAt(rocksdb::Iterator* it, uint64_t seq) {
  absl::StatusOr<AuditSlot> slot = SeekAuditEntry(it, seq);
  if (!slot.ok()) return slot.status();
  return AuditEntryIn(*slot, absl::string_view(it->value().data(), it->value().size()), seq);
}


class RocksDbAuditStorage final : public AuditStorage {
 public:
  explicit RocksDbAuditStorage(std::shared_ptr<Database> db) : db_(std::move(db)) {}

  absl::Status Append(absl::Span<const AuditRow> rows, absl::string_view head_hash, bool sync) override {
    if (rows.empty()) return absl::OkStatus();
    MutexLock lock(&append_mu_);
    // The batch, the part and the index key are reused from call to call, like the
    // writer's own buffers: a batch of tens of thousands of records built in a fresh
    // string was an mmap and a page fault per page, each time (bench/RESULTS.md).
    append_batch_.Clear();
    next_head_.assign(BigEndian64(rows.back().seq));
    next_head_.append(head_hash.data(), head_hash.size());
    TOEGANG_RETURN_IF_ERROR(WriteBatchInto(&append_batch_, sync, "writing the access log",
                                           [&](const Database::Use& use, rocksdb::WriteBatch* batch) {
                                             AuditPartWriter parts(batch, use.cf(kAudit), &part_);
                                             for (const AuditRow& r : rows) {
                                               parts.Add(r.seq, r.entry);
                                               SetAuditIndexKey(&index_key_, r.patient, r.at_us, r.seq);
                                               batch->Put(use.cf(kAuditIndex), index_key_, "");
                                             }
                                             parts.Finish();
                                             batch->Put(use.cf(kDefault), kAuditHeadKey, next_head_);
                                           }));
    head_.swap(next_head_);  // stored: a refused write leaves Sync the head before it
    if (sync) {
      db_->Acknowledge(0, rows.back().seq);
      unsynced_seq_ = 0;
    } else {
      unsynced_seq_ = rows.back().seq;
    }
    return absl::OkStatus();
  }

  absl::Status Sync() override {
    MutexLock lock(&append_mu_);
    if (unsynced_seq_ == 0) return absl::OkStatus();
    // The head again, synced: the write-ahead log is one file written in order, so its
    // sync takes every write before it along.
    append_batch_.Clear();
    TOEGANG_RETURN_IF_ERROR(WriteBatchInto(&append_batch_, /*sync=*/true, "syncing the access log",
                                           [&](const Database::Use& use, rocksdb::WriteBatch* batch) {
                                             batch->Put(use.cf(kDefault), kAuditHeadKey, head_);
                                           }));
    db_->Acknowledge(0, unsynced_seq_);
    unsynced_seq_ = 0;
    return absl::OkStatus();
  }

  absl::Status Recover() override { return db_->Recover(); }

  absl::StatusOr<std::string> ChainId() override {
    MutexLock lock(&chain_mu_);
    std::string id;
    {
      Database::Use use(*db_);
      if (!use.open()) return Database::Closed();
      rocksdb::Status s = use.db()->Get(rocksdb::ReadOptions(), use.cf(kDefault), kAuditChainKey, &id);
      if (s.ok()) return id;
      if (!s.IsNotFound()) return FromRocks(s, "reading the access log's chain id");
    }
    if (db_->read_only()) return absl::FailedPreconditionError("the access log has no chain id yet");
    id = NewChainId();
    TOEGANG_RETURN_IF_ERROR(WriteBatchOf(/*sync=*/true, "naming the access log's chain",
                                         [&](const Database::Use& use, rocksdb::WriteBatch* batch) {
                                           batch->Put(use.cf(kDefault), kAuditChainKey, id);
                                         }));
    return id;
  }

  absl::Status ReadHead(uint64_t* last_seq, std::string* head_hash) override {
    Database::Use use(*db_);
    if (!use.open()) return Database::Closed();
    std::string v;
    rocksdb::Status s = use.db()->Get(rocksdb::ReadOptions(), use.cf(kDefault), kAuditHeadKey, &v);
    if (s.IsNotFound()) {
      *last_seq = 0;
      head_hash->clear();
      return absl::OkStatus();
    }
    if (!s.ok()) return FromRocks(s, "reading the access log head");
    if (v.size() < 8) return absl::DataLossError("the access log head is corrupt");
    *last_seq = ReadBigEndian64(v);
    *head_hash = v.substr(8);
    return absl::OkStatus();
  }
  absl::Status ScanChain(const AuditVisitor& visit) override {
    Database::Use use(*db_);
    if (!use.open()) return Database::Closed();
    std::unique_ptr<rocksdb::Iterator> it(use.db()->NewIterator(rocksdb::ReadOptions(), use.cf(kAudit)));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      absl::StatusOr<AuditSlot> slot = ParseAuditKey(absl::string_view(it->key().data(), it->key().size()));
      if (!slot.ok()) return slot.status();
      absl::StatusOr<std::vector<absl::string_view>> entries =
          AuditEntriesOf(*slot, absl::string_view(it->value().data(), it->value().size()));
      if (!entries.ok()) return entries.status();
      for (size_t i = 0; i < entries->size(); ++i) {
        absl::Status s = visit(slot->first + i, (*entries)[i]);
        if (!s.ok()) return s;
      }
    }
    return FromRocks(it->status(), "reading the access log");
  }

  absl::Status ScanPatient(absl::string_view patient, int64_t from_us, int64_t until_us,
                           const AuditVisitor& visit) override {
    Database::Use use(*db_);
    if (!use.open()) return Database::Closed();
    const std::string prefix = absl::StrCat(patient, absl::string_view("\0", 1));
    const std::string lower = AuditIndexKey(patient, from_us, 0);
    const std::string upper = AuditIndexKey(patient, until_us, 0);  // first key at `until`
    std::unique_ptr<rocksdb::Iterator> it(use.db()->NewIterator(rocksdb::ReadOptions(), use.cf(kAuditIndex)));
    std::unique_ptr<rocksdb::Iterator> entries(use.db()->NewIterator(rocksdb::ReadOptions(), use.cf(kAudit)));
    for (it->SeekForPrev(upper); it->Valid(); it->Prev()) {
      absl::string_view key(it->key().data(), it->key().size());
      if (key == upper) continue;
      if (!absl::StartsWith(key, prefix) || key < lower) break;
      if (key.size() != prefix.size() + 16) {
        return absl::DataLossError(absl::StrCat("the access log index holds a malformed key under this patient"));
      }
      uint64_t seq = ReadBigEndian64(key.substr(prefix.size() + 8));
      absl::StatusOr<absl::string_view> entry = EntryAt(entries.get(), seq);
      if (absl::IsNotFound(entry.status())) {
        return absl::DataLossError(absl::StrCat("access log record ", seq, " is indexed but missing"));
      }
      if (!entry.ok()) return entry.status();
      absl::Status s = visit(seq, *entry);
      if (!s.ok()) return s;
    }
    return FromRocks(it->status(), "reading the access log index");
  }

  absl::Status Purge(const std::vector<AuditRow>& rows, absl::string_view checkpoint) override {
    absl::Status missing;
    TOEGANG_RETURN_IF_ERROR(WriteBatchOf(/*sync=*/true, "purging the access log",
                                         [&](const Database::Use& use, rocksdb::WriteBatch* batch) {
                                           absl::btree_map<uint64_t, std::string> removed;
                                           for (const AuditRow& r : rows) {
                                             removed.emplace(r.seq, std::string());
                                             batch->Delete(use.cf(kAuditIndex), AuditIndexKey(r.patient, r.at_us, r.seq));
                                           }
                                           missing = RewriteAuditEntries(use.db(), use.cf(kAudit), removed, /*erase=*/true, batch);
                                           if (!missing.ok()) {
                                             batch->Clear();  // nothing purged
                                             return;
                                           }
                                           batch->Put(use.cf(kDefault), kAuditCheckpointKey, std::string(checkpoint));
                                         }));
    return missing;
  }

  absl::Status Replace(const std::vector<AuditRow>& rows) override {
    if (rows.empty()) return absl::OkStatus();
    absl::Status missing;
    TOEGANG_RETURN_IF_ERROR(WriteBatchOf(/*sync=*/true, "replacing access log records",
                                         [&](const Database::Use& use, rocksdb::WriteBatch* batch) {
                                           missing = PutReplacements(use, rows, batch);
                                         }));
    return missing;
  }

  const Database* database() const { return db_.get(); }

  absl::StatusOr<std::string> ReadCheckpoint() override {
    Database::Use use(*db_);
    if (!use.open()) return Database::Closed();
    std::string v;
    rocksdb::Status s = use.db()->Get(rocksdb::ReadOptions(), use.cf(kDefault), kAuditCheckpointKey, &v);
    if (s.IsNotFound()) return std::string();
    if (!s.ok()) return FromRocks(s, "reading the access log checkpoint");
    return v;
  }

  absl::StatusOr<std::string> ReadEntry(uint64_t seq) override {
    Database::Use use(*db_);
    if (!use.open()) return Database::Closed();
    std::unique_ptr<rocksdb::Iterator> it(use.db()->NewIterator(rocksdb::ReadOptions(), use.cf(kAudit)));
    absl::StatusOr<absl::string_view> entry = EntryAt(it.get(), seq);
    if (!entry.ok()) return entry.status();
    return std::string(*entry);
  }

  absl::Status ScanIndex(const AuditIndexVisitor& visit) override {
    Database::Use use(*db_);
    if (!use.open()) return Database::Closed();
    std::unique_ptr<rocksdb::Iterator> it(use.db()->NewIterator(rocksdb::ReadOptions(), use.cf(kAuditIndex)));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      absl::string_view patient;
      int64_t at_us = 0;
      uint64_t seq = 0;
      if (!ParseAuditIndexKey(absl::string_view(it->key().data(), it->key().size()), &patient, &at_us, &seq)) {
        return absl::DataLossError("the access log index holds a malformed key");
      }
      absl::Status s = visit(patient, at_us, seq);
      if (!s.ok()) return s;
    }
    return FromRocks(it->status(), "reading the access log index");
  }

  absl::StatusOr<bool> HasIndexEntry(absl::string_view patient, int64_t at_us, uint64_t seq) override {
    Database::Use use(*db_);
    if (!use.open()) return Database::Closed();
    std::string v;
    rocksdb::Status s = use.db()->Get(rocksdb::ReadOptions(), use.cf(kAuditIndex), AuditIndexKey(patient, at_us, seq), &v);
    if (s.IsNotFound()) return false;
    if (!s.ok()) return FromRocks(s, "reading the access log index");
    return true;
  }

 private:
  // Writes the batch `fill` builds for the database as it is (the column families of
  // this opening; Database::Write refuses it if the database was reopened since).
  template <typename Fill>
  absl::Status WriteBatchOf(bool sync, absl::string_view what, const Fill& fill) {
    rocksdb::WriteBatch batch;
    return WriteBatchInto(&batch, sync, what, fill);
  }

  // The same into `batch`. REQUIRES: `batch` is empty.
  template <typename Fill>
  absl::Status WriteBatchInto(rocksdb::WriteBatch* batch, bool sync, absl::string_view what, const Fill& fill) {
    if (db_->read_only()) return Database::ReadOnlyError();
    uint64_t instance = 0;
    {
      Database::Use use(*db_);
      if (!use.open()) return Database::Closed();
      instance = use.instance();
      fill(use, batch);
    }
    if (batch->Count() == 0) return absl::OkStatus();
    return db_->Write(batch, sync, instance, what);
  }

  const std::shared_ptr<Database> db_;
  Mutex chain_mu_;  // one chain id made, however many ask at once
  Mutex append_mu_;
  rocksdb::WriteBatch append_batch_ ABSL_GUARDED_BY(append_mu_);
  std::string index_key_ ABSL_GUARDED_BY(append_mu_);
  std::string part_ ABSL_GUARDED_BY(append_mu_);
  // The head value last stored, and the last record stored but not yet synced (0:
  // none), for Sync. next_head_ is the head an Append is writing; both keep their
  // storage from call to call.
  std::string head_ ABSL_GUARDED_BY(append_mu_);
  std::string next_head_ ABSL_GUARDED_BY(append_mu_);
  uint64_t unsynced_seq_ ABSL_GUARDED_BY(append_mu_) = 0;
};

}  // namespace

absl::Status PutReplacements(const Database::Use& use, const std::vector<AuditRow>& rows, rocksdb::WriteBatch* batch) {
  absl::btree_map<uint64_t, std::string> changes;
  for (const AuditRow& r : rows) changes[r.seq] = r.entry;
  return RewriteAuditEntries(use.db(), use.cf(kAudit), changes, /*erase=*/false, batch);
}

const Database* DatabaseOf(const AuditStorage* log) {
  const auto* mine = dynamic_cast<const RocksDbAuditStorage*>(log);
  return mine == nullptr ? nullptr : mine->database();
}

std::unique_ptr<AuditStorage> NewRocksDbAuditStorage(std::shared_ptr<Database> db) {
  return std::make_unique<RocksDbAuditStorage>(std::move(db));
}

}  // namespace toegang
