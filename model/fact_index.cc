// Copyright toegang authors.
#include "model/fact_index.h"

#include "absl/strings/str_cat.h"

namespace toegang {

void BatchIds::Merge(const BatchIds& other) {
  keys.insert(other.keys.begin(), other.keys.end());
  target_patient.insert(other.target_patient.begin(), other.target_patient.end());
}

const std::string* BatchIds::PatientOf(absl::string_view id) const {
  auto it = target_patient.find(id);
  return it == target_patient.end() ? nullptr : &it->second;
}

absl::Status CheckBatch(const std::vector<Fact>& batch, const KnownIds& known, const BatchIds& earlier,
                        BatchIds* added) {
  for (size_t i = 0; i < batch.size(); ++i) {
    const FactBody& body = batch[i].body;
    const std::string key = UniqueIdKey(body);
    if (!key.empty()) {
      bool taken = added->keys.contains(key) || earlier.keys.contains(key);
      if (!taken) {
        absl::StatusOr<bool> stored = known.Taken(key);
        if (!stored.ok()) return AtFact(i + 1, stored.status());
        taken = *stored;
      }
      if (taken) return AtFact(i + 1, DuplicateIdError(body));
      added->keys.insert(key);
    }
    if (IsWithdrawable(body)) added->target_patient[FactId(body)] = *FactPatient(body);
    if (const auto* w = std::get_if<Withdrawal>(&body)) {
      if (added->PatientOf(w->target) != nullptr || earlier.PatientOf(w->target) != nullptr) continue;
      absl::StatusOr<std::optional<std::string>> patient = known.PatientOfTarget(w->target);
      if (!patient.ok()) return AtFact(i + 1, patient.status());
      if (!patient->has_value()) return AtFact(i + 1, UnknownWithdrawalTargetError(w->target));
    }
  }
  return absl::OkStatus();
}

FactOwner OwnerOf(const FactBody& body, absl::string_view withdrawal_patient) {
  if (std::holds_alternative<Withdrawal>(body)) return {FactOwner::Kind::kPatient, std::string(withdrawal_patient)};
  if (const auto* r = std::get_if<Relationship>(&body); r != nullptr && r->relation == Relation::kSubstituteFor) {
    return {FactOwner::Kind::kClinician, r->subject};
  }
  return {FactOwner::Kind::kPatient, *FactPatient(body)};
}

// What the index holds, as CheckBatch asks it.
class FactIndex::Known final : public KnownIds {
 public:
  explicit Known(const BatchIds& stored) : stored_(stored) {}
  absl::StatusOr<bool> Taken(const std::string& key) const override { return stored_.keys.contains(key); }
  absl::StatusOr<std::optional<std::string>> PatientOfTarget(absl::string_view id) const override {
    const std::string* patient = stored_.PatientOf(id);
    return patient == nullptr ? std::nullopt : std::optional<std::string>(*patient);
  }

 private:
  const BatchIds& stored_;
};

absl::Status FactIndex::Validate(const std::vector<Fact>& batch) const {
  BatchIds added;
  return CheckBatch(batch, Known(stored_), BatchIds{}, &added);
}

absl::Status FactIndex::Append(const std::vector<Fact>& batch) {
  BatchIds added;
  absl::Status s = CheckBatch(batch, Known(stored_), BatchIds{}, &added);
  if (!s.ok()) return s;
  stored_.Merge(added);
  for (const Fact& fact : batch) {
    std::string withdrawal_patient;
    if (const auto* w = std::get_if<Withdrawal>(&fact.body)) withdrawal_patient = *stored_.PatientOf(w->target);
    const FactOwner owner = OwnerOf(fact.body, withdrawal_patient);
    ++count_;
    if (owner.kind == FactOwner::Kind::kClinician) {
      substitutions_[owner.id].push_back({std::get<Relationship>(fact.body), fact.provenance});
      continue;
    }
    PatientRecord& rec = records_[owner.id];
    rec.patient = owner.id;
    rec.Add(fact);
  }
  return absl::OkStatus();
}

PatientRecord FactIndex::RecordFor(absl::string_view patient) const {
  auto it = records_.find(patient);
  if (it != records_.end()) return it->second;
  PatientRecord empty;
  empty.patient = std::string(patient);
  return empty;
}

std::vector<Stored<Relationship>> FactIndex::SubstitutionsOf(absl::string_view clinician) const {
  auto it = substitutions_.find(clinician);
  if (it == substitutions_.end()) return {};
  return it->second;
}

std::string FactIndex::PatientOfTarget(absl::string_view target) const {
  const std::string* patient = stored_.PatientOf(target);
  return patient == nullptr ? "" : *patient;
}

}  // namespace toegang
