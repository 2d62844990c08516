// Copyright toegang authors.
//
// fact_store.h: where facts live. Two implementations: the memory store below (tests,
// and `decide --facts FILE`) and the durable one (engine/rocksdb/rocksdb_store.h).
//
// Facts are history (DOMAIN D40): Append never overwrites; every fact gets the next
// sequence number and its arrival instant. Reads "as of" an instant see only facts
// that had arrived by then, so any past decision can be replayed exactly.
//
// Implementations are safe to share between threads.
#ifndef TOEGANG_ENGINE_FACTS_FACT_STORE_H_
#define TOEGANG_ENGINE_FACTS_FACT_STORE_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "absl/time/time.h"
#include "engine/audit/audit_storage.h"
#include "model/facts.h"
#include "model/patient_record.h"

namespace toegang {

// One patient's removal under the retention terms (policy/retention.h, `toegang
// retention apply`).
struct FactRemoval {
  std::string patient;
  std::vector<uint64_t> seqs;  // the patient's facts to remove, by sequence number
  absl::Time removed_at;
  std::string term;            // why: "dossier_20_years", "erasure_request ID", ...
  uint64_t covered_seq = 0;    // Removed::covered_seq
  // Entries of the access log to replace with theirs: the record tombstones
  // AuditLog::Tombstones made for the same patient.
  std::vector<AuditRow> access_log;
};

class FactStore {
 public:
  virtual ~FactStore() = default;

  // Appends `facts` atomically: all of them, or (on any invalid fact) none, with the
  // 1-based position of the first bad fact as "fact N: ..." and as data
  // (model/facts.h FactPositionOf). Stamps sequence numbers
  // and the arrival instant. Returns the last sequence number. Durable when it
  // returns OK, for a durable store.
  virtual absl::StatusOr<uint64_t> Append(std::vector<Fact> facts) = 0;

  // Every fact about `patient` that had arrived by `as_of`. The record is an
  // immutable snapshot: later appends do not change it.
  virtual absl::StatusOr<std::shared_ptr<const PatientRecord>> Patient(
      absl::string_view patient, absl::Time as_of = absl::InfiniteFuture()) = 0;

  // The current records of several patients, each as Patient() gives it. A store may
  // overlap the memory reads of the lookups (a batch of decisions then waits for memory
  // once rather than once per patient); the default asks for them one by one.
  virtual std::vector<absl::StatusOr<std::shared_ptr<const PatientRecord>>> Patients(
      absl::Span<const absl::string_view> patients);

  // The current records of `patients`, given in ascending order, for a pass over many
  // of them (listing the patients an actor may open): a store may read them in one pass
  // over its files and leave them out of its cache, which a pass over every patient
  // would otherwise empty of the records decisions read. The default is Patients().
  virtual std::vector<absl::StatusOr<std::shared_ptr<const PatientRecord>>> ScanPatients(
      absl::Span<const absl::string_view> patients) {
    return Patients(patients);
  }

  // The substitute_for relationships of `clinician` that had arrived by `as_of`, as an
  // immutable snapshot (shared with the cache: no copy per decision).
  virtual absl::StatusOr<std::shared_ptr<const std::vector<Stored<Relationship>>>> SubstitutionsOf(
      absl::string_view clinician, absl::Time as_of = absl::InfiniteFuture()) = 0;

  // The org_category facts of `organization` that had arrived by `as_of` (an immutable
  // snapshot), read only for a decision whose facts name an organisation category.
  virtual absl::StatusOr<std::shared_ptr<const std::vector<Stored<OrgCategory>>>> CategoriesOf(
      absl::string_view organization, absl::Time as_of = absl::InfiniteFuture()) = 0;

  // The patient's facts in arrival order, as the store knew them at `as_of`.
  virtual absl::StatusOr<std::vector<Fact>> History(absl::string_view patient,
                                                    absl::Time as_of = absl::InfiniteFuture()) = 0;

  // The patient of the consent, objection, restriction or capacity assessment `id`
  // (their ids share one space); nullopt when the store holds none.
  virtual absl::StatusOr<std::optional<std::string>> PatientOfFact(absl::string_view id) = 0;

  // The patients filed under any of `keys` in the index from parties to patients
  // (model/patient_index.h) whose ids sort after `after`: each once, in byte order, at
  // most `limit`. Entries are written with the facts that name them and removed only
  // with those facts, by retention (Remove). FailedPrecondition on a store without the index
  // (one written by an older toegang, read without opening it for writing).
  virtual absl::StatusOr<std::vector<std::string>> IndexedPatients(absl::Span<const std::string> keys,
                                                                   absl::string_view after, size_t limit) = 0;

  // Replaces each of the patient's facts in `removal.seqs` by what is left of it (a
  // Removed fact: its id, type, place and arrival, with when and why it went; its id stays
  // taken, but for a person's, so that a patient who returns can be recorded again), takes the patient out of the index of patients under the keys no remaining
  // fact files them under, and replaces `removal.access_log`'s entries in `log`. All in
  // one atomic, synced write when `log` keeps its entries in this store (the durable
  // store: all or nothing, even across a crash); otherwise the facts, then the log. A
  // fact already removed is left as it is. InvalidArgument, and nothing changed, when a
  // sequence number is not one of the patient's facts or names an erasure request, a
  // retention hold or a withdrawal of one (they say why the rest went).
  virtual absl::Status Remove(const FactRemoval& removal, AuditStorage* log) = 0;

  // The last sequence number given out (0: empty store).
  virtual uint64_t LastSequence() const = 0;

  // Replication (engine/replica/replica.h): a store may be a replica of a history
  // kept elsewhere, whose facts arrive already numbered and stamped.
  //
  // Checks `facts` as Append would against the history as it stands, storing nothing.
  virtual absl::Status Check(const std::vector<Fact>& facts) = 0;

  // Appends facts numbered and stamped by the history this store replicates: the first
  // must be LastSequence() + 1 and each the next (DataLoss otherwise: the replica would
  // skip or repeat facts). Checked as Append checks them; all or nothing.
  virtual absl::StatusOr<uint64_t> AppendReplicated(std::vector<Fact> facts) = 0;

  // Makes this store a replica of `history`. OK when it already is; FailedPrecondition
  // when it holds facts of its own (recorded without replication) or replicates
  // another history. Durable for a durable store.
  virtual absl::Status BindReplica(absl::string_view history) = 0;

  // The history this store is a replica of; "" when none.
  virtual absl::StatusOr<std::string> ReplicaOf() = 0;

  // OK while the store can write; otherwise the error that stops it (a full disk, an
  // I/O error). A durable store in error first tries to recover (RocksDB's Resume),
  // at most once a second, so it heals by itself once the cause is gone.
  virtual absl::Status Health() { return absl::OkStatus(); }

  // Rewrites the store's files so that what Remove took out — and, where the access log
  // is kept in this store, what its Purge and Replace took out — is gone from the disk
  // too, not only from every answer. A durable store keeps the old bytes in the files
  // written before a removal until they are compacted, which for a quiet store may be
  // never. Nothing to do for a store in memory.
  virtual absl::Status Scrub() { return absl::OkStatus(); }
};

// For implementations of AppendReplicated: DataLoss unless `facts` are numbered
// last_seq + 1, + 2, ... with arrivals that never go back.
absl::Status CheckContinues(const std::vector<Fact>& facts, uint64_t last_seq);

// For implementations of BindReplica: whether a store bound to `bound` ("" : none)
// holding `last_seq` facts may become a replica of `history`.
absl::Status MayBind(absl::string_view bound, absl::string_view history, uint64_t last_seq);

// The clock that stamps arrival. Tests inject their own; `decide --facts FILE` uses one
// that returns InfinitePast (facts from a file have no arrival, DOMAIN D19).
using ArrivalClock = absl::Time (*)();
absl::Time WallClock();
absl::Time NoArrivalClock();

// For implementations of Remove: `history` (the patient's facts, in order) with the
// removal applied — each fact removed replaced by its Removed fact, its source dropped.
struct AppliedRemoval {
  std::vector<size_t> changed;       // the positions in the history replaced
  std::vector<std::string> dropped;  // index keys (model/patient_index.h) no remaining fact files the patient under
  std::vector<std::string> freed;    // unique-id keys (UniqueIdKey) given up: a removed person's
};
// Errors as Remove's.
absl::Status ApplyRemoval(const FactRemoval& removal, std::vector<Fact>* history, AppliedRemoval* applied);

// An in-memory store with the same semantics as the durable one.
std::unique_ptr<FactStore> NewMemoryFactStore(ArrivalClock clock = WallClock);

}  // namespace toegang

#endif  // TOEGANG_ENGINE_FACTS_FACT_STORE_H_
