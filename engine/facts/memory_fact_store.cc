// Copyright toegang authors.
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/container/inlined_vector.h"
#include "base/sync.h"
#include "engine/facts/fact_store.h"
#include "engine/facts/prefetch.h"
#include "model/fact_index.h"

namespace toegang {
namespace {

using Coverages = std::vector<Stored<Relationship>>;

// Each fact is kept twice: once as it arrived (the log, for history and reads as of a
// past instant) and once filed in its patient's record (the index, which decisions
// read). A record is shared with the decisions reading it and replaced, never changed,
// by an append: a decision takes it under a reader lock, without a copy.
class MemoryFactStore final : public FactStore {
 public:
  explicit MemoryFactStore(ArrivalClock clock) : clock_(clock) {}

  absl::StatusOr<uint64_t> Append(std::vector<Fact> facts) override {
    WriterMutexLock lock(&mu_);
    absl::Time arrival = clock_();
    uint64_t seq = last_seq_;
    for (Fact& f : facts) {
      f.provenance.seq = ++seq;
      f.provenance.arrival = arrival;
    }
    return FileLocked(std::move(facts));
  }

  absl::Status Check(const std::vector<Fact>& facts) override {
    ReaderMutexLock lock(&mu_);
    return index_.Validate(facts);
  }

  absl::StatusOr<uint64_t> AppendReplicated(std::vector<Fact> facts) override {
    WriterMutexLock lock(&mu_);
    absl::Status numbered = CheckContinues(facts, last_seq_);
    if (!numbered.ok()) return numbered;
    return FileLocked(std::move(facts));
  }

  absl::StatusOr<std::string> ReplicaOf() override {
    ReaderMutexLock lock(&mu_);
    return replica_of_;
  }

  absl::Status BindReplica(absl::string_view history) override {
    WriterMutexLock lock(&mu_);
    if (replica_of_ == history) return absl::OkStatus();
    absl::Status may = MayBind(replica_of_, history, last_seq_);
    if (may.ok()) replica_of_ = std::string(history);
    return may;
  }

  absl::StatusOr<std::shared_ptr<const PatientRecord>> Patient(absl::string_view patient,
                                                               absl::Time as_of) override {
    ReaderMutexLock lock(&mu_);
    if (as_of == absl::InfiniteFuture()) {
      if (const std::shared_ptr<const PatientRecord>* found = index_.FindRecord(patient)) {
        PrefetchShared(found->get());  // before the reference count is taken
        PrefetchRelationships(**found);
        return *found;
      }
      return EmptyRecord(patient);
    }
    auto rec = std::make_shared<PatientRecord>();
    rec->patient = std::string(patient);
    rec->as_of = as_of;
    ForEachOf(patient, as_of, [&](const Fact& fact) { rec->Add(fact); });
    return std::shared_ptr<const PatientRecord>(std::move(rec));
  }

  std::vector<absl::StatusOr<std::shared_ptr<const PatientRecord>>> Patients(
      absl::Span<const absl::string_view> patients) override {
    std::vector<absl::StatusOr<std::shared_ptr<const PatientRecord>>> out;
    out.reserve(patients.size());
    ReaderMutexLock lock(&mu_);
    // Each step for every patient before the next (the table's slots, then the records,
    // then what the rules read in them), so the waits for memory within a step overlap
    // instead of following each other. The reference counts are taken last: an atomic
    // increment waits for its cache line and holds up everything after it.
    for (absl::string_view p : patients) index_.PrefetchRecord(p);
    absl::InlinedVector<const std::shared_ptr<const PatientRecord>*, 16> found;
    for (absl::string_view p : patients) {
      found.push_back(index_.FindRecord(p));
      if (found.back() != nullptr) PrefetchShared(found.back()->get());
    }
    for (size_t i = 0; i < patients.size(); ++i) {
      if (found[i] != nullptr) {
        PrefetchRelationships(**found[i]);
        out.push_back(*found[i]);
      } else {
        out.push_back(EmptyRecord(patients[i]));
      }
    }
    return out;
  }

  absl::StatusOr<std::shared_ptr<const Coverages>> SubstitutionsOf(absl::string_view clinician,
                                                                   absl::Time as_of) override {
    ReaderMutexLock lock(&mu_);
    return KnownBy(index_.SharedSubstitutions(clinician), as_of);
  }

  absl::StatusOr<std::shared_ptr<const std::vector<Stored<OrgCategory>>>> CategoriesOf(absl::string_view organization,
                                                                                       absl::Time as_of) override {
    ReaderMutexLock lock(&mu_);
    return KnownBy(index_.SharedCategories(organization), as_of);
  }

  absl::StatusOr<std::vector<Fact>> History(absl::string_view patient, absl::Time as_of) override {
    ReaderMutexLock lock(&mu_);
    std::vector<Fact> out;
    ForEachOf(patient, as_of, [&](const Fact& fact) { out.push_back(fact); });
    return out;
  }

  absl::StatusOr<std::optional<std::string>> PatientOfFact(absl::string_view id) override {
    ReaderMutexLock lock(&mu_);
    std::string patient = index_.PatientOfTarget(id);
    if (patient.empty()) return std::optional<std::string>();
    return std::optional<std::string>(std::move(patient));
  }

  absl::StatusOr<std::vector<std::string>> IndexedPatients(absl::Span<const std::string> keys,
                                                           absl::string_view after, size_t limit) override {
    ReaderMutexLock lock(&mu_);
    return index_.IndexedPatients(keys, after, limit);
  }

  absl::Status Remove(const FactRemoval& removal, AuditStorage* log) override {
    {
      WriterMutexLock lock(&mu_);
      std::vector<Fact> history;
      ForEachOf(removal.patient, absl::InfiniteFuture(), [&](const Fact& fact) { history.push_back(fact); });
      AppliedRemoval applied;
      absl::Status s = ApplyRemoval(removal, &history, &applied);
      if (!s.ok()) return s;
      const std::vector<size_t>& positions = by_patient_[removal.patient];
      for (size_t i : applied.changed) log_[positions[i]] = history[i];
      PatientRecord record;
      record.patient = removal.patient;
      for (const Fact& f : history) record.Add(f);
      index_.ReplaceRecord(record, applied.dropped, applied.freed);
    }
    if (removal.access_log.empty()) return absl::OkStatus();
    if (log == nullptr) return absl::InvalidArgumentError("access-log entries to replace, but no access log");
    return log->Replace(removal.access_log);
  }

  uint64_t LastSequence() const override {
    ReaderMutexLock lock(&mu_);
    return last_seq_;
  }

 private:
  // Files numbered, stamped facts: all, or (on any invalid fact) none.
  absl::StatusOr<uint64_t> FileLocked(std::vector<Fact> facts) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    absl::Status s = index_.Append(facts);
    if (!s.ok()) return s;
    if (!facts.empty()) last_seq_ = facts.back().provenance.seq;
    for (Fact& f : facts) {
      by_patient_[PatientOf(f)].push_back(log_.size());
      log_.push_back(std::move(f));
    }
    return last_seq_;
  }

  // What of `all` had arrived by `as_of`: `all` itself when every item had. Most actors
  // cover nobody and most organisations have no category: they share one empty list,
  // without an allocation.
  template <typename T>
  static std::shared_ptr<const std::vector<Stored<T>>> KnownBy(std::shared_ptr<const std::vector<Stored<T>>> all,
                                                              absl::Time as_of) {
    static const auto* const kNone =
        new std::shared_ptr<const std::vector<Stored<T>>>(std::make_shared<const std::vector<Stored<T>>>());
    if (all == nullptr) return *kNone;
    bool every = true;
    for (const Stored<T>& s : *all) every = every && s.provenance.arrival <= as_of;
    if (every) return all;
    auto known = std::make_shared<std::vector<Stored<T>>>();
    for (const Stored<T>& s : *all) {
      if (s.provenance.arrival <= as_of) known->push_back(s);
    }
    return known;
  }

  // The record of a patient the store knows nothing of.
  static std::shared_ptr<const PatientRecord> EmptyRecord(absl::string_view patient) {
    auto empty = std::make_shared<PatientRecord>();
    empty->patient = std::string(patient);
    return empty;
  }

  // The patient whose history holds `f` ("" for a coverage, filed under a clinician, and
  // an org_category, under its organisation).
  std::string PatientOf(const Fact& f) const ABSL_SHARED_LOCKS_REQUIRED(mu_) {
    const auto* w = std::get_if<Withdrawal>(&f.body);
    const FactOwner owner = OwnerOf(f.body, w != nullptr ? index_.PatientOfTarget(w->target) : std::string());
    return owner.kind == FactOwner::Kind::kPatient ? owner.id : std::string();
  }

  // Calls `fn` with each fact of `patient`'s history that had arrived by `as_of`, in
  // arrival order.
  template <typename Fn>
  void ForEachOf(absl::string_view patient, absl::Time as_of, Fn fn) const ABSL_SHARED_LOCKS_REQUIRED(mu_) {
    auto it = by_patient_.find(patient);
    if (it == by_patient_.end()) return;
    for (size_t i : it->second) {
      if (log_[i].provenance.arrival <= as_of) fn(log_[i]);
    }
  }

  const ArrivalClock clock_;
  mutable SharedMutex mu_;
  FactIndex index_ ABSL_GUARDED_BY(mu_);
  std::vector<Fact> log_ ABSL_GUARDED_BY(mu_);  // every fact, in arrival order
  absl::flat_hash_map<std::string, std::vector<size_t>> by_patient_ ABSL_GUARDED_BY(mu_);  // positions in log_
  uint64_t last_seq_ ABSL_GUARDED_BY(mu_) = 0;
  std::string replica_of_ ABSL_GUARDED_BY(mu_);  // "" : not a replica
};

}  // namespace

std::unique_ptr<FactStore> NewMemoryFactStore(ArrivalClock clock) {
  return std::make_unique<MemoryFactStore>(clock);
}

}  // namespace toegang
