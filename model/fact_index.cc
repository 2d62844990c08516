// Copyright toegang authors.
#include "model/fact_index.h"

#include "absl/strings/str_cat.h"

namespace toegang {

absl::Status FactIndex::Check(const Fact& fact, const absl::flat_hash_map<std::string, std::string>& batch_targets,
                              const absl::flat_hash_map<std::string, int>& batch_ids, std::string* key) const {
  *key = UniqueIdKey(fact.body);
  if (!key->empty() && (ids_.contains(*key) || batch_ids.contains(*key))) return DuplicateIdError(fact.body);
  if (const auto* w = std::get_if<Withdrawal>(&fact.body)) {
    if (!target_patient_.contains(w->target) && !batch_targets.contains(w->target)) {
      return UnknownWithdrawalTargetError(w->target);
    }
  }
  return absl::OkStatus();
}

absl::Status FactIndex::Validate(const std::vector<Fact>& batch) const {
  absl::flat_hash_map<std::string, std::string> batch_targets;
  absl::flat_hash_map<std::string, int> batch_ids;
  for (size_t i = 0; i < batch.size(); ++i) {
    std::string key;
    absl::Status s = Check(batch[i], batch_targets, batch_ids, &key);
    if (!s.ok()) return AtFact(i + 1, s);
    if (!key.empty()) batch_ids[key] = 1;
    if (IsWithdrawable(batch[i].body)) batch_targets[FactId(batch[i].body)] = *FactPatient(batch[i].body);
  }
  return absl::OkStatus();
}

absl::Status FactIndex::Append(const std::vector<Fact>& batch) {
  absl::Status s = Validate(batch);
  if (!s.ok()) return s;
  for (const Fact& fact : batch) {
    std::string key = UniqueIdKey(fact.body);
    if (!key.empty()) ids_[key] = 1;
    if (IsWithdrawable(fact.body)) target_patient_[FactId(fact.body)] = *FactPatient(fact.body);
    if (const auto* rel = std::get_if<Relationship>(&fact.body);
        rel != nullptr && rel->relation == Relation::kSubstituteFor) {
      substitutions_[rel->subject].push_back({*rel, fact.provenance});
      ++count_;
      continue;
    }
    std::string patient;
    if (const auto* w = std::get_if<Withdrawal>(&fact.body)) {
      patient = target_patient_[w->target];
    } else {
      patient = *FactPatient(fact.body);
    }
    PatientRecord& rec = records_[patient];
    rec.patient = patient;
    rec.Add(fact);
    ++count_;
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
  auto it = target_patient_.find(target);
  return it == target_patient_.end() ? "" : it->second;
}

}  // namespace toegang
