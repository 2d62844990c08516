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
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "base/sha256.h"
#include "engine/audit/audit_log.h"
#include "engine/audit/audit_storage.h"

namespace toegang::audit_internal {

inline constexpr size_t kHashBytes = 32;

static_assert(kHashBytes == kSha256Bytes);

// SHA-256(a || b) (base/sha256.h Sha256Into, without an allocation, is the writer's form).
std::string Sha256(absl::string_view a, absl::string_view b);
std::string Hex(absl::string_view bytes);

// What one record holds, as views of the caller's data.
struct RecordView {
  absl::string_view event_id;
  absl::Time at;
  absl::string_view patient;
  const Actor* actor;
  Action action;
  Category category;
  Purpose purpose;
  bool permitted;
  absl::Span<const Reason> reasons;
  std::optional<LegalBasis> legal_basis;
  absl::Span<const Obligation> obligations;
  bool emergency;
  absl::string_view justification;
  absl::string_view policy;
  absl::string_view rule;
  absl::string_view error;
  const std::optional<Party>* recipient;
  std::optional<AgeBand> age_band;
  std::optional<absl::Time> replay_as_of;
};

// The record of `d` on `request` (what AppendDecision and AppendDecisions log).
inline RecordView DecisionRecord(const AccessRequest& request, const Decision& d, absl::string_view decision_id,
                                 std::optional<absl::Time> replay_as_of) {
  return RecordView{decision_id,       request.at,        request.patient,
                    &request.actor,    request.action,    request.category,
                    request.purpose,   d.permitted(),     d.reasons,
                    d.legal_basis,     d.obligations,     request.emergency,
                    request.emergency_justification,      d.policy,
                    d.rule,            d.error,           &request.recipient,
                    d.age_band,        replay_as_of};
}

// The record of `e` (what Append logs; its seq and logged_at are the log's to set).
inline RecordView EventRecord(const AuditEvent& e) {
  return RecordView{e.event_id,  e.at,        e.patient,     &e.actor,      e.action,  e.category, e.purpose,
                    e.permitted, e.reasons,   e.legal_basis, e.obligations, e.emergency, e.justification,
                    e.policy,    e.rule,      e.error,       &e.recipient,  e.age_band, e.replay_as_of};
}

// The stored body of `r` — its AuditRecord FlatBuffer — built in this thread's builder
// with its number and its time of writing still open (SetBodySeq, StampBody). Valid
// until this thread's next call; its size is a multiple of 8. No allocation once the
// builder has grown.
absl::string_view PrepareBody(const RecordView& r, absl::Span<const absl::string_view> consents);
absl::string_view PrepareBody(const RecordView& r, absl::Span<const std::string> consents);

// Writes the record's number into a copy of a body PrepareBody made. REQUIRES: `body`
// is 8-byte aligned. False when it holds no number to write (a bug in toegang).
bool SetBodySeq(char* body, uint64_t seq);

// What the writer reads of a body: its number, and what the patient index files it by.
struct BodyKeys {
  uint64_t seq = 0;
  int64_t at_us = 0;
  absl::string_view patient;  // a view into the body
};
// Writes the time of writing into a numbered body and reads its keys. REQUIRES: as
// SetBodySeq. False when it holds no time of writing to set (a bug in toegang).
bool StampBody(char* body, int64_t logged_at_us, BodyKeys* keys);

// Replaces *entry with the stored entry of `body`: the body, `prev`, then SHA-256(prev ||
// body), reusing the string's storage.
void ChainEntry(absl::string_view body, absl::string_view prev, std::string* entry);

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
