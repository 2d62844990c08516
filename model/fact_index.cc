// Copyright toegang authors.
#include "model/fact_index.h"

#include "absl/strings/strip.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "model/patient_index.h"
#include "model/patient_state.h"
#include "model/time.h"

namespace toegang {

void BatchIds::Merge(const BatchIds& other) {
  keys.insert(other.keys.begin(), other.keys.end());
  target_patient.insert(other.target_patient.begin(), other.target_patient.end());
  batches.insert(batches.end(), other.batches.begin(), other.batches.end());
}

const std::string* BatchIds::PatientOf(absl::string_view id) const {
  auto it = target_patient.find(id);
  return it == target_patient.end() ? nullptr : &it->second;
}

namespace {

// "the patient", "a parent with gezag or a guardian", ... for the kinds in `mask`.
std::string KindsText(uint8_t mask) {
  std::vector<std::string> names;
  if (mask & kThePatient) names.push_back("the patient");
  if (mask & kParentOrGuardian) names.push_back("a parent with gezag or a guardian");
  if (mask & kRepresentativeWhileIncapable) names.push_back("a representative while the patient is incapable");
  return absl::StrJoin(names, " or ");
}

// D61: whether `by` may request erasure of the dossier of `rec.patient` at `at`: whoever
// may act for the patient then (model/who_may_act.h `request_erasure`).
absl::Status CheckErasureRequester(const PatientRecord& rec, absl::string_view by, absl::Time at) {
  const std::optional<AgeBand> band = BandAt(rec, at, LeapDayRule::kMarch1);
  if (!band) {
    return absl::InvalidArgumentError(absl::StrCat("'", by, "' may not request erasure for '", rec.patient,
                                                   "': the patient's birth date is unknown, so who may act for them "
                                                   "cannot be told (DOMAIN D61)"));
  }
  const uint8_t may = WhoMayActFor(*band).request_erasure;
  if ((ActorKindsAt(rec, by, at) & may) != 0) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat("'", by, "' may not request erasure for '", rec.patient,
                                                 "': the patient being ", Name(*band), " then, ", KindsText(may),
                                                 " may (DOMAIN D61)"));
}

// D36: whether `w.by` may end the objection, restriction or capacity assessment it names
// (consents: anyone's withdrawal counts); `rec` holds every fact about its patient.
absl::Status CheckWithdrawer(const Withdrawal& w, const PatientRecord& rec) {
  for (const Stored<Removed>& r : rec.removed) {
    if (r.value.id != w.target) continue;
    return absl::InvalidArgumentError(absl::StrCat("withdrawal: ", r.value.type, " '", w.target,
                                                      "' was removed by retention on ", FormatInstant(r.value.removed_at),
                                                      " (", r.value.term, "): nothing is left to withdraw"));
  }
  for (const Stored<Objection>& o : rec.objections) {
    if (o.value.id != w.target) continue;
    if (w.by == o.value.by) return absl::OkStatus();
    const std::optional<AgeBand> band = BandAt(rec, w.at, LeapDayRule::kMarch1);
    if (band && (ActorKindsAt(rec, w.by, w.at) & WhoMayActFor(*band).withdraw_objection) != 0) {
      return absl::OkStatus();
    }
    std::string others = band ? absl::StrCat(", or (the patient being ", Name(*band), " then) ",
                                             KindsText(WhoMayActFor(*band).withdraw_objection))
                              : " (the patient's birth date is unknown, so nobody else)";
    return absl::InvalidArgumentError(absl::StrCat("withdrawal: '", w.by, "' may not withdraw objection '", w.target,
                                                   "': whoever made it ('", o.value.by, "') may", others,
                                                   " (DOMAIN D36)"));
  }
  auto author_or_treating = [&](absl::string_view kind, const std::string& author) -> absl::Status {
    if (w.by == author || HasRelationAt(rec, w.by, Relation::kTreating, w.at)) return absl::OkStatus();
    return absl::InvalidArgumentError(absl::StrCat("withdrawal: '", w.by, "' may not withdraw ", kind, " '", w.target,
                                                   "': its author ('", author,
                                                   "') or a clinician treating the patient at the withdrawal's at "
                                                   "may (DOMAIN D36)"));
  };
  for (const Stored<Restriction>& r : rec.restrictions) {
    if (r.value.id == w.target) return author_or_treating("restriction", r.value.by);
  }
  for (const Stored<Capacity>& c : rec.capacities) {
    if (c.value.id == w.target) return author_or_treating("capacity assessment", c.value.by);
  }
  for (const Stored<RetentionHold>& h : rec.holds) {
    if (h.value.id != w.target || w.by == h.value.by) continue;
    return absl::InvalidArgumentError(absl::StrCat("withdrawal: '", w.by, "' may not end retention hold '", w.target,
                                                   "': only its author ('", h.value.by, "') may (DOMAIN D61)"));
  }
  for (const Stored<ErasureRequest>& e : rec.erasure_requests) {
    if (e.value.id != w.target || w.by == e.value.by) continue;
    if (absl::Status may = CheckErasureRequester(rec, w.by, w.at); !may.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("withdrawal of erasure request '", w.target, "': ", may.message()));
    }
  }
  return absl::OkStatus();
}

// Every fact about `patient`: stored, in the batches before this one, and before
// position `upto` of this one.
absl::StatusOr<PatientRecord> RecordBefore(absl::string_view patient, const KnownIds& known, const BatchIds& earlier,
                                           const BatchIds& added, const std::vector<Fact>& batch, size_t upto) {
  absl::StatusOr<PatientRecord> rec = known.RecordOf(patient);
  if (!rec.ok()) return rec.status();
  rec->patient = std::string(patient);
  auto add = [&](const Fact& f) {
    std::string owner;
    if (const auto* w = std::get_if<Withdrawal>(&f.body)) {
      const std::string* p = earlier.PatientOf(w->target);
      if (p == nullptr) p = added.PatientOf(w->target);
      if (p != nullptr) owner = *p;
    } else if (const std::string* p = FactPatient(f.body)) {
      owner = *p;
    }
    if (owner == patient) rec->Add(f);
  };
  for (const std::vector<Fact>* b : earlier.batches) {
    for (const Fact& f : *b) add(f);
  }
  for (size_t j = 0; j < upto; ++j) add(batch[j]);
  return rec;
}

}  // namespace

absl::Status CheckBatch(const std::vector<Fact>& batch, const KnownIds& known, const BatchIds& earlier,
                        BatchIds* added) {
  added->batches.push_back(&batch);
  for (size_t i = 0; i < batch.size(); ++i) {
    const FactBody& body = batch[i].body;
    if (std::holds_alternative<Removed>(body)) {
      return AtFact(i + 1, absl::InvalidArgumentError(
                               "a removed fact is what retention leaves (toegang retention apply); it cannot be recorded"));
    }
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
    if (const auto* e = std::get_if<ErasureRequest>(&body)) {
      absl::StatusOr<PatientRecord> rec = RecordBefore(e->patient, known, earlier, *added, batch, i);
      if (!rec.ok()) return AtFact(i + 1, rec.status());
      if (absl::Status may = CheckErasureRequester(*rec, e->by, e->at); !may.ok()) {
        return AtFact(i + 1, absl::InvalidArgumentError(absl::StrCat("erasure_request: ", may.message())));
      }
    }
    if (const auto* w = std::get_if<Withdrawal>(&body)) {
      std::string patient;
      if (const std::string* p = added->PatientOf(w->target)) {
        patient = *p;
      } else if (const std::string* q = earlier.PatientOf(w->target)) {
        patient = *q;
      } else {
        absl::StatusOr<std::optional<std::string>> stored = known.PatientOfTarget(w->target);
        if (!stored.ok()) return AtFact(i + 1, stored.status());
        if (!stored->has_value()) return AtFact(i + 1, UnknownWithdrawalTargetError(w->target));
        patient = **stored;
      }
      absl::StatusOr<PatientRecord> rec = RecordBefore(patient, known, earlier, *added, batch, i);
      if (!rec.ok()) return AtFact(i + 1, rec.status());
      if (absl::Status may = CheckWithdrawer(*w, *rec); !may.ok()) return AtFact(i + 1, may);
    }
  }
  return absl::OkStatus();
}

FactOwner OwnerOf(const FactBody& body, absl::string_view withdrawal_patient) {
  if (std::holds_alternative<Withdrawal>(body)) return {FactOwner::Kind::kPatient, std::string(withdrawal_patient)};
  if (const auto* r = std::get_if<Relationship>(&body); r != nullptr && r->relation == Relation::kSubstituteFor) {
    return {FactOwner::Kind::kClinician, r->subject};
  }
  if (const auto* o = std::get_if<OrgCategory>(&body)) return {FactOwner::Kind::kOrganization, o->organization};
  return {FactOwner::Kind::kPatient, *FactPatient(body)};
}

// What the index holds, as CheckBatch asks it.
class FactIndex::Known final : public KnownIds {
 public:
  Known(const BatchIds& stored, const FactIndex& index) : stored_(stored), index_(index) {}
  absl::StatusOr<bool> Taken(const std::string& key) const override { return stored_.keys.contains(key); }
  absl::StatusOr<std::optional<std::string>> PatientOfTarget(absl::string_view id) const override {
    const std::string* patient = stored_.PatientOf(id);
    return patient == nullptr ? std::nullopt : std::optional<std::string>(*patient);
  }
  absl::StatusOr<PatientRecord> RecordOf(absl::string_view patient) const override {
    return index_.RecordFor(patient);
  }

 private:
  const BatchIds& stored_;
  const FactIndex& index_;
};

absl::Status FactIndex::Validate(const std::vector<Fact>& batch) const {
  BatchIds added;
  return CheckBatch(batch, Known(stored_, *this), BatchIds{}, &added);
}

namespace {

// Files `fact` (a T) in the list of `owner` among `changed`, the lists this append
// replaces: the first time, as a copy of the one `filed` holds, so readers of that one
// keep it unchanged.
template <typename T>
void AddTo(absl::flat_hash_map<std::string, std::shared_ptr<std::vector<Stored<T>>>>& changed,
           const absl::flat_hash_map<std::string, std::shared_ptr<const std::vector<Stored<T>>>>& filed,
           const std::string& owner, const Fact& fact) {
  std::shared_ptr<std::vector<Stored<T>>>& mine = changed[owner];
  if (mine == nullptr) {
    auto it = filed.find(owner);
    mine = it == filed.end() ? std::make_shared<std::vector<Stored<T>>>()
                             : std::make_shared<std::vector<Stored<T>>>(*it->second);
  }
  mine->push_back({std::get<T>(fact.body), fact.provenance});
}

}  // namespace

void FactIndex::ReplaceRecord(const PatientRecord& record, absl::Span<const std::string> dropped,
                              absl::Span<const std::string> freed) {
  for (const std::string& key : freed) stored_.keys.erase(key);
  records_[record.patient] = std::make_shared<const PatientRecord>(record);
  patients_.insert(record.patient);
  for (const std::string& key : dropped) {
    auto it = patients_by_key_.find(key);
    if (it == patients_by_key_.end()) continue;
    it->second.erase(record.patient);
    if (it->second.empty()) patients_by_key_.erase(it);
  }
}

absl::Status FactIndex::Append(const std::vector<Fact>& batch) {
  BatchIds added;
  absl::Status s = CheckBatch(batch, Known(stored_, *this), BatchIds{}, &added);
  if (!s.ok()) return s;
  stored_.Merge(added);
  // Copy on write: each record the batch touches is copied once, then replaces the old
  // one, which readers holding it keep unchanged.
  absl::flat_hash_map<std::string, std::shared_ptr<PatientRecord>> records;
  absl::flat_hash_map<std::string, std::shared_ptr<std::vector<Stored<Relationship>>>> coverages;
  absl::flat_hash_map<std::string, std::shared_ptr<std::vector<Stored<OrgCategory>>>> categories;
  for (const Fact& fact : batch) {
    std::string withdrawal_patient;
    if (const auto* w = std::get_if<Withdrawal>(&fact.body)) withdrawal_patient = *stored_.PatientOf(w->target);
    const FactOwner owner = OwnerOf(fact.body, withdrawal_patient);
    ++count_;
    if (owner.kind == FactOwner::Kind::kClinician) {
      AddTo(coverages, substitutions_, owner.id, fact);
      continue;
    }
    if (owner.kind == FactOwner::Kind::kOrganization) {
      AddTo(categories, categories_, owner.id, fact);
      continue;
    }
    std::shared_ptr<PatientRecord>& mine = records[owner.id];
    if (mine == nullptr) {
      auto it = records_.find(owner.id);
      mine = it == records_.end() ? std::make_shared<PatientRecord>() : std::make_shared<PatientRecord>(*it->second);
      mine->patient = owner.id;
    }
    mine->Add(fact);
    if (std::optional<std::string> key = IndexKeyOf(fact.body)) patients_by_key_[*std::move(key)].insert(owner.id);
  }
  // Filed as a fresh copy: its vectors exactly sized and allocated one after another, so
  // a decision reading the record touches few cache lines.
  for (auto& [id, rec] : records) {
    records_[id] = std::make_shared<const PatientRecord>(*rec);
    patients_.insert(id);
  }
  for (auto& [id, list] : coverages) substitutions_[id] = std::move(list);
  for (auto& [id, list] : categories) categories_[id] = std::move(list);
  return absl::OkStatus();
}

std::shared_ptr<const std::vector<Stored<OrgCategory>>> FactIndex::SharedCategories(
    absl::string_view organization) const {
  auto it = categories_.find(organization);
  return it == categories_.end() ? nullptr : it->second;
}

PatientRecord FactIndex::RecordFor(absl::string_view patient) const {
  auto it = records_.find(patient);
  if (it != records_.end()) return *it->second;
  PatientRecord empty;
  empty.patient = std::string(patient);
  return empty;
}

std::shared_ptr<const std::vector<Stored<Relationship>>> FactIndex::SharedSubstitutions(
    absl::string_view clinician) const {
  auto it = substitutions_.find(clinician);
  return it == substitutions_.end() ? nullptr : it->second;
}

std::vector<Stored<Relationship>> FactIndex::SubstitutionsOf(absl::string_view clinician) const {
  auto it = substitutions_.find(clinician);
  if (it == substitutions_.end()) return {};
  return *it->second;
}

std::vector<std::string> FactIndex::IndexedPatients(absl::Span<const std::string> keys, absl::string_view after,
                                                   size_t limit) const {
  struct Source {
    absl::btree_set<std::string>::const_iterator at, end;
    bool Valid() const { return at != end; }
    absl::string_view Id() const { return *at; }
    void Next() { ++at; }
  };
  std::vector<Source> sources;
  for (const std::string& key : keys) {
    const absl::btree_set<std::string>* set = nullptr;
    if (key == kEveryPatientKey) {
      set = &patients_;
    } else if (absl::string_view self = key; absl::ConsumePrefix(&self, "=")) {
      auto it = patients_.find(self);
      if (it != patients_.end() && self > after) sources.push_back({it, std::next(it)});
      continue;
    } else if (auto it = patients_by_key_.find(key); it != patients_by_key_.end()) {
      set = &it->second;
    }
    if (set != nullptr) sources.push_back({set->upper_bound(after), set->end()});
  }
  return MergeIndexed(sources, limit);
}

std::string FactIndex::PatientOfTarget(absl::string_view target) const {
  const std::string* patient = stored_.PatientOf(target);
  return patient == nullptr ? "" : *patient;
}

}  // namespace toegang
