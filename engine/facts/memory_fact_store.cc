// Copyright toegang authors.
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "base/sync.h"
#include "engine/facts/fact_store.h"
#include "model/fact_index.h"

namespace toegang {
namespace {

class MemoryFactStore final : public FactStore {
 public:
  explicit MemoryFactStore(ArrivalClock clock) : clock_(clock) {}

  absl::StatusOr<uint64_t> Append(std::vector<Fact> facts) override {
    MutexLock lock(&mu_);
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
      std::string patient = PatientOf(f);
      log_.push_back({std::move(patient), std::move(f)});
    }
    cache_.clear();
    return last_seq_;
  }

  absl::StatusOr<std::shared_ptr<const PatientRecord>> Patient(absl::string_view patient,
                                                               absl::Time as_of) override {
    MutexLock lock(&mu_);
    if (as_of == absl::InfiniteFuture()) {
      auto it = cache_.find(patient);
      if (it != cache_.end()) return it->second;
      auto rec = std::make_shared<const PatientRecord>(index_.RecordFor(patient));
      cache_[std::string(patient)] = rec;
      return rec;
    }
    auto rec = std::make_shared<PatientRecord>();
    rec->patient = std::string(patient);
    for (const auto& [p, fact] : log_) {
      if (p == patient && fact.provenance.arrival <= as_of) rec->Add(fact);
    }
    return std::shared_ptr<const PatientRecord>(std::move(rec));
  }

  absl::StatusOr<std::shared_ptr<const std::vector<Stored<Relationship>>>> SubstitutionsOf(
      absl::string_view clinician, absl::Time as_of) override {
    // Most actors cover nobody: they share one empty list, without an allocation.
    static const auto* const kNone =
        new std::shared_ptr<const std::vector<Stored<Relationship>>>(std::make_shared<const std::vector<Stored<Relationship>>>());
    MutexLock lock(&mu_);
    std::vector<Stored<Relationship>> all = index_.SubstitutionsOf(clinician);
    if (all.empty()) return *kNone;
    auto known = std::make_shared<std::vector<Stored<Relationship>>>();
    for (auto& s : all) {
      if (s.provenance.arrival <= as_of) known->push_back(std::move(s));
    }
    return std::shared_ptr<const std::vector<Stored<Relationship>>>(std::move(known));
  }

  absl::StatusOr<std::vector<Fact>> History(absl::string_view patient, absl::Time as_of) override {
    MutexLock lock(&mu_);
    std::vector<Fact> out;
    for (const auto& [p, fact] : log_) {
      if (p == patient && fact.provenance.arrival <= as_of) out.push_back(fact);
    }
    return out;
  }

  uint64_t LastSequence() const override {
    MutexLock lock(&mu_);
    return last_seq_;
  }

 private:
  // The patient whose history holds `f` ("" for a coverage, filed under a clinician).
  std::string PatientOf(const Fact& f) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    const auto* w = std::get_if<Withdrawal>(&f.body);
    const FactOwner owner = OwnerOf(f.body, w != nullptr ? index_.PatientOfTarget(w->target) : std::string());
    return owner.kind == FactOwner::Kind::kPatient ? owner.id : std::string();
  }

  const ArrivalClock clock_;
  mutable Mutex mu_;
  FactIndex index_ ABSL_GUARDED_BY(mu_);
  std::vector<std::pair<std::string, Fact>> log_ ABSL_GUARDED_BY(mu_);  // (patient, fact)
  absl::flat_hash_map<std::string, std::shared_ptr<const PatientRecord>> cache_ ABSL_GUARDED_BY(mu_);
  uint64_t last_seq_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace

std::unique_ptr<FactStore> NewMemoryFactStore(ArrivalClock clock) {
  return std::make_unique<MemoryFactStore>(clock);
}

}  // namespace toegang
