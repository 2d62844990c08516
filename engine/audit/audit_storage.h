// Copyright toegang authors.
//
// audit_storage.h: where the access log's entries live. The durable implementation is
// engine/rocksdb/rocksdb_audit_storage.cc (the store's `audit` and `audit_by_patient`
// column families); NewMemoryAuditStorage() is its in-memory twin. The chain, the
// queue and verification are audit_log.h's business: storage only keeps bytes,
// atomically. Implementations are safe to share between threads.
#ifndef TOEGANG_ENGINE_AUDIT_AUDIT_STORAGE_H_
#define TOEGANG_ENGINE_AUDIT_AUDIT_STORAGE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace toegang {

// One entry to store: its chain position, the AuditEntry bytes, and what the patient
// index needs.
struct AuditRow {
  uint64_t seq = 0;
  std::string entry;
  std::string patient;
  int64_t at_us = 0;
};

// Visits one stored entry; a non-OK status stops the scan and is returned.
using AuditVisitor = std::function<absl::Status(uint64_t seq, absl::string_view entry)>;

// Visits one patient-index entry: the record `seq` is filed under `patient` at `at_us`.
using AuditIndexVisitor = std::function<absl::Status(absl::string_view patient, int64_t at_us, uint64_t seq)>;

class AuditStorage {
 public:
  virtual ~AuditStorage() = default;

  // Stores `rows` (ascending seq), their patient-index keys and the new head
  // (`rows.back().seq`, `head_hash`) atomically; synced to disk when `sync`.
  virtual absl::Status Append(absl::Span<const AuditRow> rows, absl::string_view head_hash, bool sync) = 0;
  // Makes every Append so far durable, as a synced Append would have.
  virtual absl::Status Sync() = 0;

  // The head as last stored: the last sequence and its hash (0 and "" when empty).
  virtual absl::Status ReadHead(uint64_t* last_seq, std::string* head_hash) = 0;

  // Every entry in ascending key order.
  virtual absl::Status ScanChain(const AuditVisitor& visit) = 0;

  // The patient's entries with at in [from_us, until_us), newest first.
  virtual absl::Status ScanPatient(absl::string_view patient, int64_t from_us, int64_t until_us,
                                   const AuditVisitor& visit) = 0;

  // Removes `rows` (entries and their index keys; `entry` unused) and stores
  // `checkpoint`, atomically and synced.
  virtual absl::Status Purge(const std::vector<AuditRow>& rows, absl::string_view checkpoint) = 0;

  // Replaces the entries of `rows` (each already stored under its seq) by `rows[i].entry`,
  // keeping their patient-index keys, atomically and synced: retention's tombstones
  // (AuditLog::Tombstones). NotFound, and nothing replaced, when an entry is not stored.
  virtual absl::Status Replace(const std::vector<AuditRow>& rows) = 0;

  // The stored checkpoint bytes, or "" when nothing was ever purged.
  virtual absl::StatusOr<std::string> ReadCheckpoint() = 0;

  // The entry stored for `seq`; NotFound when there is none.
  virtual absl::StatusOr<std::string> ReadEntry(uint64_t seq) = 0;

  // Every patient-index entry, in key order (what verification checks the index with).
  virtual absl::Status ScanIndex(const AuditIndexVisitor& visit) = 0;

  // Whether the patient index holds the entry for record `seq`.
  virtual absl::StatusOr<bool> HasIndexEntry(absl::string_view patient, int64_t at_us, uint64_t seq) = 0;

  // A name for this chain no other chain has (32 hex digits), made when first asked and
  // kept with the entries: records shipped elsewhere (engine/replica) are filed under it,
  // so two nodes' record 7 are never taken for one another.
  virtual absl::StatusOr<std::string> ChainId() = 0;

  // After a failed Append: makes writing possible again if the cause is gone (space
  // freed on a full disk). OK when the storage can write.
  virtual absl::Status Recover() { return absl::OkStatus(); }
};

std::unique_ptr<AuditStorage> NewMemoryAuditStorage();

// 32 random hex digits (a new ChainId).
std::string NewChainId();

}  // namespace toegang

#endif  // TOEGANG_ENGINE_AUDIT_AUDIT_STORAGE_H_
