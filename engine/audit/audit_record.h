// Copyright toegang authors.
//
// audit_record.h (internal): the access log's stored form (schemas/audit.fbs). An entry
// is the AuditRecord FlatBuffer, then the previous entry's hash, then its own:
// hash = SHA-256(prev_hash || record), so a changed, removed or reordered record breaks
// the chain. A purge leaves a checkpoint, authenticated with HMAC-SHA-256 under a key
// kept outside the store. Thread-compatible (no shared state).
#ifndef TOEGANG_ENGINE_AUDIT_AUDIT_RECORD_H_
#define TOEGANG_ENGINE_AUDIT_AUDIT_RECORD_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "engine/audit/audit_log.h"
#include "engine/audit/audit_storage.h"

namespace toegang::audit_internal {

inline constexpr size_t kHashBytes = 32;

// SHA-256(a || b).
std::string Sha256(absl::string_view a, absl::string_view b);
// The same into `out` (kHashBytes), without an allocation: the writer's form.
void Sha256Into(absl::string_view a, absl::string_view b, unsigned char out[kHashBytes]);
std::string Hex(absl::string_view bytes);

// Replaces *entry with the entry of `e` as stored — its AuditRecord FlatBuffer, `prev`,
// then the hash of both — reusing the string's storage: a record costs the writer no
// allocation once its buffers have grown.
void EncodeEntryOf(const AuditEvent& e, absl::string_view prev, std::string* entry);

// An entry as stored: the record, then the previous entry's hash, then its own.
struct DecodedEntry {
  std::string body, prev, hash;
};
absl::StatusOr<DecodedEntry> DecodeEntry(absl::string_view bytes);

// The record of a stored entry (its body, without the two hashes).
absl::StatusOr<AuditEvent> DecodeStoredEntry(absl::string_view bytes);

// What a purge leaves so that the rest of the chain still verifies (D51).
struct Checkpoint {
  uint64_t first_seq = 1;
  std::string prev_hash = std::string(kHashBytes, '\0');
  uint64_t purged = 0;
  int64_t before_us = 0;
  int64_t purged_at_us = 0;
  std::string mac;      // empty: none stored
  bool stored = false;  // false: nothing was ever purged
};

// HMAC-SHA-256 over every field of the checkpoint but the MAC, in a fixed layout.
std::string CheckpointMac(absl::string_view key, const Checkpoint& cp);
std::string EncodeCheckpoint(const Checkpoint& cp);
// The stored checkpoint (stored == false when there is none). DataLoss when corrupt.
absl::StatusOr<Checkpoint> ReadCheckpoint(AuditStorage* storage);

// What retention leaves of a removed record (schemas/audit.fbs AuditTombstone): stored
// as its body, then the removed record's prev hash and hash.
struct Tombstone {
  uint64_t seq = 0;
  std::string patient;
  int64_t at_us = 0;
  int64_t logged_at_us = 0;
  int64_t removed_at_us = 0;
  std::string term;
  int years = 0;
  std::string mac;
};

// HMAC-SHA-256 over the tombstone's fields but the MAC and the entry's two hashes.
std::string TombstoneMac(absl::string_view key, const Tombstone& t, absl::string_view prev, absl::string_view hash);
// The stored entry: the tombstone's body, `prev`, `hash`.
std::string EncodeTombstoneEntry(const Tombstone& t, absl::string_view prev, absl::string_view hash);
// Whether an entry's body is a tombstone rather than a record.
bool IsTombstone(absl::string_view body);
// DataLoss when the body is no intact tombstone.
absl::StatusOr<Tombstone> DecodeTombstone(absl::string_view body);
// OK for a tombstone toegang wrote with `key` for a record that was due when removed
// (at least 5 years after it was written, D51, and not after `now`); otherwise what is
// wrong, phrased to follow "access log record N".
absl::Status CheckTombstone(const Tombstone& t, absl::string_view key, absl::string_view prev,
                            absl::string_view hash, absl::Time now);

// What a stored entry — a record or a tombstone — says of itself alike: whom and when
// it is filed under in the patient index, when it was written, and its hash.
struct IndexedAs {
  std::string patient;
  int64_t at_us = 0;
  int64_t logged_at_us = 0;
  std::string hash;
};
absl::StatusOr<IndexedAs> IndexedAsOf(absl::string_view entry);

// The latest cut-off a purge at `now` may use: records are kept at least 5 years from
// when they were written (DOMAIN D51), counted in Amsterdam's calendar.
absl::Time RetentionLimit(absl::Time now);

// OK for no checkpoint or an authentic one within the retention term; otherwise what is
// wrong, phrased to follow "access log record N".
absl::Status CheckCheckpoint(const Checkpoint& cp, absl::string_view key, absl::Time now);

}  // namespace toegang::audit_internal

#endif  // TOEGANG_ENGINE_AUDIT_AUDIT_RECORD_H_
