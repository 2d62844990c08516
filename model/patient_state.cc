// Copyright toegang authors.
#include "model/patient_state.h"

#include <algorithm>

namespace toegang {
namespace {

bool IsParentRelation(Relation r) { return r == Relation::kParentWithAuthority || r == Relation::kGuardian; }

}  // namespace

absl::Time ProtectiveStart(const Window& w, const Provenance& p) {
  return w.from != absl::InfinitePast() ? w.from : p.RecordedInstant();
}

bool HasParentAuthorityDuring(const PatientRecord& rec, absl::string_view who, absl::Time lo, absl::Time hi) {
  for (const Stored<Relationship>& r : rec.relationships) {
    if (!IsParentRelation(r.value.relation) || r.value.subject != who) continue;
    if (std::max(lo, r.value.window.from) < std::min(hi, r.value.window.until)) return true;
  }
  return false;
}

const Stored<Relationship>* RelationAt(const PatientRecord& rec, absl::string_view subject, Relation relation,
                                       absl::Time t) {
  for (const Stored<Relationship>& r : rec.relationships) {
    if (r.value.relation == relation && r.value.subject == subject && r.value.window.Contains(t)) return &r;
  }
  return nullptr;
}

const Stored<Relationship>* ParentAuthorityAt(const PatientRecord& rec, absl::string_view who, absl::Time t) {
  for (const Stored<Relationship>& r : rec.relationships) {
    if (IsParentRelation(r.value.relation) && r.value.subject == who && r.value.window.Contains(t)) return &r;
  }
  return nullptr;
}

bool WithdrawnAt(const PatientRecord& rec, absl::string_view id, absl::Time t, Ending ending) {
  if (id.empty()) return false;
  for (const Stored<Withdrawal>& w : rec.withdrawals) {
    if (w.value.target != id) continue;
    const absl::Time from =
        ending == Ending::kGivesAccess ? std::max(w.value.at, w.provenance.RecordedInstant()) : w.value.at;
    if (from <= t) return true;
  }
  return false;
}

const Stored<Capacity>* CapacityAt(const PatientRecord& rec, absl::Time t) {
  const Stored<Capacity>* latest = nullptr;
  absl::Time latest_start = absl::InfinitePast();
  for (const Stored<Capacity>& c : rec.capacities) {
    absl::Time start = ProtectiveStart(c.value.window, c.provenance);
    if (!c.value.capable) start = std::max(start, c.provenance.RecordedInstant());
    const Ending ending = c.value.capable ? Ending::kGivesAccess : Ending::kTakesAccess;
    if (!(start <= t && t < c.value.window.until) || WithdrawnAt(rec, c.value.id, t, ending)) continue;
    if (latest == nullptr || start > latest_start ||
        (start == latest_start && c.provenance.seq > latest->provenance.seq)) {
      latest = &c;
      latest_start = start;
    }
  }
  return latest;
}

std::optional<AgeBand> BandAt(const PatientRecord& rec, absl::Time t, LeapDayRule rule) {
  if (!rec.person || !rec.person->value.birth_date) return std::nullopt;
  const int age = AgeInYears(*rec.person->value.birth_date, AmsterdamDay(t), rule);
  if (age < 0) return std::nullopt;
  return BandForAge(age);
}

uint8_t ActorKindsAt(const PatientRecord& rec, absl::string_view person, absl::Time t) {
  uint8_t kinds = 0;
  if (person == rec.patient) kinds |= kThePatient;
  if (HasParentAuthorityAt(rec, person, t)) kinds |= kParentOrGuardian;
  if (HasRelationAt(rec, person, Relation::kRepresentative, t) && IncapableAt(rec, t)) {
    kinds |= kRepresentativeWhileIncapable;
  }
  return kinds;
}

}  // namespace toegang
