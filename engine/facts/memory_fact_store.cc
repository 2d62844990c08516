// Copyright toegang authors.
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "base/sync.h"
#include "engine/facts/fact_store.h"
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
    absl::Status s = index_.Append(facts);
    if (!s.ok()) return s;
    last_seq_ = seq;
    for (Fact& f : facts) {
      by_patient_[PatientOf(f)].push_back(log_.size());
      log_.push_back(std::move(f));
    }
    return last_seq_;
  }

  absl::StatusOr<std::shared_ptr<const PatientRecord>> Patient(absl::string_view patient,
                                                               absl::Time as_of) override {
    ReaderMutexLock lock(&mu_);
    if (as_of == absl::InfiniteFuture()) {
      if (std::shared_ptr<const PatientRecord> rec = index_.SharedRecord(patient)) return rec;
      auto empty = std::make_shared<PatientRecord>();
      empty->patient = std::string(patient);
      return std::shared_ptr<const PatientRecord>(std::move(empty));
    }
    auto rec = std::make_shared<PatientRecord>();
    rec->patient = std::string(patient);
    ForEachOf(patient, as_of, [&](const Fact& fact) { rec->Add(fact); });
    return std::shared_ptr<const PatientRecord>(std::move(rec));
  }

  absl::StatusOr<std::shared_ptr<const Coverages>> SubstitutionsOf(absl::string_view clinician,
                                                                   absl::Time as_of) override {
    // Most actors cover nobody: they share one empty list, without an allocation.
    static const auto* const kNone = new std::shared_ptr<const Coverages>(std::make_shared<const Coverages>());
    ReaderMutexLock lock(&mu_);
    std::shared_ptr<const Coverages> all = index_.SharedSubstitutions(clinician);
    if (all == nullptr) return *kNone;
    bool every = true;
    for (const Stored<Relationship>& s : *all) every = every && s.provenance.arrival <= as_of;
    if (every) return all;
    auto known = std::make_shared<Coverages>();
    for (const Stored<Relationship>& s : *all) {
      if (s.provenance.arrival <= as_of) known->push_back(s);
    }
    return std::shared_ptr<const Coverages>(std::move(known));
  }

  absl::StatusOr<std::vector<Fact>> History(absl::string_view patient, absl::Time as_of) override {
    ReaderMutexLock lock(&mu_);
    std::vector<Fact> out;
    ForEachOf(patient, as_of, [&](const Fact& fact) { out.push_back(fact); });
    return out;
  }

  uint64_t LastSequence() const override {
    ReaderMutexLock lock(&mu_);
    return last_seq_;
  }

 private:
  // The patient whose history holds `f` ("" for a coverage, filed under a clinician).
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
};

}  // namespace

std::unique_ptr<FactStore> NewMemoryFactStore(ArrivalClock clock) {
  return std::make_unique<MemoryFactStore>(clock);
}

}  // namespace toegang
