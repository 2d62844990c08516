// Copyright toegang authors.
//
// audit_log.h: the access log (NEN 7513, DOMAIN D50-D51). Every decision — permit and
// deny — becomes one record, hash-chained (each holds the SHA-256 of the one before) so
// that a changed, removed or reordered record is found by Verify(). A patient's
// overview lists who accessed the dossier, newest first.
//
// Writing is off the decision's critical path: Append() queues the record; one writer
// thread numbers, chains, batches and syncs. Modes:
//   kDurable   Append returns once the record's batch is synced (group commit: every
//              record queued meanwhile shares the sync).
//   kBuffered  Append returns once queued; the writer writes batches as they gather
//              and syncs each, or with `sync_interval` at least that often (and at
//              Flush and at close). A crash of the process loses at most what was
//              still queued; of the machine, also what was written since the last sync.
// The queue is bounded. When it is full, Append waits (back-pressure) up to
// `max_wait`, then fails with ResourceExhausted — it never drops a record silently. A
// failed Append means the decision was not logged: the engine turns it into a deny.
//
// When the storage cannot write (a full disk), Health() says why and every Append fails
// at once, until the writer — retrying every `retry_interval` — finds the storage
// writing again. Then the log goes on by itself. kDurable: the failed batch's callers
// and those queued behind it were told their records were not logged, so their numbers
// are given out again. kBuffered: records already accepted are written first, unchanged.
//
// Retention replaces a record that is due by a tombstone (Tombstones()): it keeps the
// record's place and two hashes, so the chain still links, and carries an HMAC with the
// same key, so Verify tells a removal toegang made when due from a record wiped by hand.
//
// Purging the start of the chain leaves a checkpoint authenticated with
// `checkpoint_key` (HMAC-SHA-256), a key kept outside the store: Verify refuses a
// checkpoint it cannot authenticate, one written by hand, and one that removed records
// younger than the retention term. Verify also checks the patient index: every record
// listed under its patient, every entry pointing at a record of that patient.
//
// Thread-safe: every call may be made from any thread. The implementation is
// audit_log_impl.h (the queue and writer), audit_record.h (the stored form and the
// chain) and audit_verify.cc (reading, verifying and purging).
#ifndef TOEGANG_ENGINE_AUDIT_AUDIT_LOG_H_
#define TOEGANG_ENGINE_AUDIT_AUDIT_LOG_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "absl/time/time.h"
#include "engine/audit/audit_storage.h"
#include "engine/facts/fact_store.h"
#include "model/request.h"

namespace toegang {

enum class AuditMode : uint8_t { kDurable, kBuffered };

struct AuditOptions {
  // Default: kDurable.
  AuditMode mode = AuditMode::kDurable;
  // Records that may wait to be written. Default: 65,536.
  size_t queue_capacity = 65536;
  // How long Append waits for room in a full queue before refusing. Default: 1 s.
  absl::Duration max_wait = absl::Seconds(1);
  // Stamps `logged_at`, from which retention runs. Default: the wall clock.
  ArrivalClock clock = WallClock;
  // The CPUs the writer thread may run on (base/threads.h says why keeping it off the
  // CPUs that answer requests helps). Open refuses a CPU the process may not use.
  // Default: empty, wherever the scheduler puts it.
  std::vector<int> writer_cpus;
  // kBuffered: how long a written record may wait for its sync. Under steady traffic
  // the writer writes a batch every few records, and syncing each (on RocksDB a
  // write-ahead log sync and an acknowledgement: two fsyncs) costs thousands of fsyncs
  // a second; at 10 ms the sidecar made 15 times fewer and spent a sixth less CPU a
  // decision. But on a VM whose idle CPUs wake slowly, the syncs' disk interrupts also
  // kept them awake: one client's round trip took two to five times as long without
  // them (bench/RESULTS.md). Zero syncs every batch. Default: zero.
  absl::Duration sync_interval = absl::ZeroDuration();
  // After a failed write, how often the writer tries the storage again. Default: 1 s.
  absl::Duration retry_interval = absl::Seconds(1);
  // The key that authenticates purge checkpoints (at least 16 bytes; from
  // --audit-key-file). Purge refuses to run without it and Verify refuses a checkpoint
  // without it. Default: empty.
  std::string checkpoint_key;
};

// One decision, as the log keeps it (the D50 fields).
struct AuditEvent {
  uint64_t seq = 0;  // set by the log
  std::string event_id;
  absl::Time at;
  absl::Time logged_at;  // set by the log as it writes the record
  std::string patient;
  Actor actor;
  Action action = Action::kRead;
  Category category = Category::kMedical;
  Purpose purpose = Purpose::kTreatment;
  bool permitted = false;
  absl::InlinedVector<Reason, 4> reasons;
  std::optional<LegalBasis> legal_basis;
  absl::InlinedVector<Obligation, 4> obligations;
  std::vector<std::string> consents;
  bool emergency = false;
  std::string justification;
  std::string policy;
  std::string rule;
  std::string error;
  std::optional<Party> recipient;
  std::optional<AgeBand> age_band;
  std::optional<absl::Time> replay_as_of;  // a replay is logged, but is no access
};

struct AuditStats {
  uint64_t appended = 0;       // accepted by Append
  uint64_t written = 0;        // handed to storage (kBuffered: synced by the next sync)
  uint64_t syncs = 0;          // storage syncs
  uint64_t refused = 0;        // Append failed: queue full past max_wait, or a write error
  uint64_t waits = 0;          // Appends that found the queue full and waited
  uint64_t batches = 0;        // storage writes
  size_t queue_depth = 0;      // now
  size_t max_queue_depth = 0;  // since open
  // Records queued as their fields while the queue was short, encoded by the writer;
  // the rest were encoded by the threads that logged them (audit_queue.h).
  uint64_t encoded_by_writer = 0;
  // Appends that had to grow the queue's buffer (an allocation under the lock): once the
  // buffers have grown to the load, none do.
  uint64_t queue_grown = 0;
  uint64_t write_failures = 0;  // storage writes that failed
  uint64_t recoveries = 0;      // times the log wrote again after failing
};

struct AuditVerifyReport {
  bool ok = false;
  uint64_t records = 0;
  uint64_t removed = 0;    // of the records, how many retention replaced by tombstones
  uint64_t first_seq = 0;
  uint64_t last_seq = 0;
  std::string head_hash;   // hex
  uint64_t index_entries = 0;  // patient-index entries checked
  uint64_t bad_seq = 0;    // the first record changed, removed or reordered
  std::string problem;     // what is wrong with it
};

struct AuditPurgeReport {
  uint64_t purged = 0;
  uint64_t first_kept = 0;
};

class AuditLog {
 public:
  // Opens the log on `storage` and starts the writer.
  // REQUIRES: `storage` outlives the log. The caller owns the log; destroying it
  // writes what is queued, then stops the writer.
  static absl::StatusOr<std::unique_ptr<AuditLog>> Open(AuditStorage* storage, AuditOptions options);
  virtual ~AuditLog() = default;

  // Logs one decision; see the file comment for when it returns and how it fails.
  virtual absl::Status Append(const AuditEvent& event) = 0;
  // The same for `decision` on `request` (what the engine calls): the record's fields
  // are copied straight into the queue, without building an AuditEvent.
  // REQUIRES: `request` and `decision` stay valid until it returns (their fields are
  // copied into the queue).
  virtual absl::Status AppendDecision(const AccessRequest& request, const Decision& decision,
                                      absl::string_view decision_id, std::optional<absl::Time> replay_as_of) = 0;

  // One decision of AppendDecisions.
  struct LoggedDecision {
    const AccessRequest* request;
    const Decision* decision;
    absl::string_view decision_id;
  };
  // Logs several decisions as AppendDecision would, with one lock to queue them and (in
  // kDurable) one wait for the last: a batch of N decisions pays for about one sync, not
  // N in a row. Returns each record's outcome, in order.
  virtual std::vector<absl::Status> AppendDecisions(absl::Span<const LoggedDecision> decisions) = 0;

  // Returns once everything appended so far is synced.
  virtual absl::Status Flush() = 0;

  virtual AuditStats stats() const = 0;
  virtual AuditMode mode() const = 0;

  // OK while records are being written; otherwise why they are not (see above).
  virtual absl::Status Health() const = 0;

  // Who accessed `patient`'s dossier with `at` in [from, until), newest first; replays
  // are not accesses and are left out. At most `limit` entries.
  virtual absl::StatusOr<std::vector<AuditEvent>> PatientAccesses(absl::string_view patient, absl::Time from,
                                                                  absl::Time until, size_t limit = 10000) = 0;

  // Every record about `patient`, replays included (each is kept for its own term,
  // policy/retention.h), newest first. Records retention removed are left out;
  // `*removed`, when given, says how many.
  virtual absl::StatusOr<std::vector<AuditEvent>> PatientRecords(absl::string_view patient,
                                                                 uint64_t* removed = nullptr) = 0;

  // One record to remove under its retention term (policy/retention.h).
  struct RecordRemoval {
    uint64_t seq = 0;
    std::string term;  // "access_log_5_years", "financial_7_years"
    int years = 0;     // the term's length: at least 5 (D51)
  };
  // Retention (`toegang retention apply`): the entries that replace `records` of
  // `patient` — tombstones that keep each record's place and hashes in the chain, say
  // when it went and under which term, and are authenticated with
  // options.checkpoint_key — to be stored by FactStore::Remove (with the patient's facts)
  // or AuditStorage::Replace. A record already removed is left out. FailedPrecondition
  // without the key, or for a record its term still keeps at `removed_at`;
  // InvalidArgument for a record of another patient; NotFound for one not stored.
  virtual absl::StatusOr<std::vector<AuditRow>> Tombstones(absl::string_view patient,
                                                            absl::Span<const RecordRemoval> records,
                                                            absl::Time removed_at) = 0;

  // Walks the chain from the first record kept to the head.
  virtual absl::StatusOr<AuditVerifyReport> Verify() = 0;

  // Removes the records logged before `before` (a prefix of the chain), keeping an
  // authenticated checkpoint so the rest still verifies. Refuses a cut-off less than 5
  // years before `now` (D51), and refuses to run without options.checkpoint_key.
  virtual absl::StatusOr<AuditPurgeReport> Purge(absl::Time before, absl::Time now) = 0;

};

// Decodes an AuditRecord body (verified first).
absl::StatusOr<AuditEvent> DecodeAuditBody(absl::string_view body);

// Decodes a stored entry (the record, then the previous entry's hash, then its own),
// as AuditStorage keeps it and as it is shipped elsewhere (engine/replica).
absl::StatusOr<AuditEvent> DecodeAuditEntry(absl::string_view entry);

namespace audit_internal {
struct ChainWalk;
}  // namespace audit_internal

// Checks a run of one chain's stored entries kept elsewhere (a node's records shipped
// to PostgreSQL, engine/replica), in sequence order: each follows the one before, links
// to its hash and matches its own; the first is taken as where the run starts. The
// report names the first record changed, removed or reordered, as Verify does.
class ChainCheck {
 public:
  ChainCheck();
  ~ChainCheck();
  ChainCheck(const ChainCheck&) = delete;
  ChainCheck& operator=(const ChainCheck&) = delete;
  // False once the chain is broken (later entries are not looked at).
  bool Next(uint64_t seq, absl::string_view entry);
  // The hash the next entry must link to (raw bytes; empty before the first).
  const std::string& head() const;
  AuditVerifyReport Report() const;

 private:
  std::unique_ptr<audit_internal::ChainWalk> walk_;
};

}  // namespace toegang

#endif  // TOEGANG_ENGINE_AUDIT_AUDIT_LOG_H_
