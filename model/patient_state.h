// Copyright toegang authors.
//
// patient_state.h: what a patient's facts say at an instant — who has parental
// authority, who treats, whether the patient is incapable, whether a fact was withdrawn,
// who may act for the patient — for the evaluator and for the checks made when facts
// are loaded (DOMAIN D7, D19, D21, D35, D36, D37). Pure functions of a PatientRecord:
// thread-safe.
#ifndef TOEGANG_MODEL_PATIENT_STATE_H_
#define TOEGANG_MODEL_PATIENT_STATE_H_

#include <cstdint>
#include <optional>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "model/patient_record.h"
#include "model/time.h"
#include "model/who_may_act.h"

namespace toegang {

// The first relationship by which `subject` has a `relation` to the patient in force at
// `t` (nullptr: none), and whether there is one.
const Stored<Relationship>* RelationAt(const PatientRecord& rec, absl::string_view subject, Relation relation,
                                       absl::Time t);
inline bool HasRelationAt(const PatientRecord& rec, absl::string_view subject, Relation relation, absl::Time t) {
  return RelationAt(rec, subject, relation, t) != nullptr;
}

// The relationship by which `who` is a parent with gezag or a guardian (D37) of the
// patient at `t` (nullptr: none), and whether there is one.
const Stored<Relationship>* ParentAuthorityAt(const PatientRecord& rec, absl::string_view who, absl::Time t);
inline bool HasParentAuthorityAt(const PatientRecord& rec, absl::string_view who, absl::Time t) {
  return ParentAuthorityAt(rec, who, t) != nullptr;
}

// Whether `who` had parental authority at some instant of [lo, hi).
bool HasParentAuthorityDuring(const PatientRecord& rec, absl::string_view who, absl::Time lo, absl::Time hi);

// When an objection, a restriction or a capacity assessment starts to count (D35): at
// its `from`, or when recorded if it has none.
absl::Time ProtectiveStart(const Window& w, const Provenance& p);

// What ending a fact does (D21, D35): a withdrawal that takes access away (of a consent,
// of an assessment that the patient is incapable) counts from its `at`; one that gives
// access back (of an objection, a restriction, an assessment that the patient is
// capable) is held to its recorded_at too, like every fact that enables access.
enum class Ending : uint8_t { kTakesAccess, kGivesAccess };

// Whether fact `id` of the patient was withdrawn by `t`.
bool WithdrawnAt(const PatientRecord& rec, absl::string_view id, absl::Time t, Ending ending);

// D7, D35: the latest capacity assessment in force at `t` (nullptr: none, the patient
// is presumed capable), and whether it says incapable. "Incapable" counts from its
// recorded_at at the earliest.
const Stored<Capacity>* CapacityAt(const PatientRecord& rec, absl::Time t);
inline bool IncapableAt(const PatientRecord& rec, absl::Time t) {
  const Stored<Capacity>* c = CapacityAt(rec, t);
  return c != nullptr && !c->value.capable;
}

// The patient's age band on the civil day of `t` (D4, D5); nullopt when the birth date
// is unknown or after `t`.
std::optional<AgeBand> BandAt(const PatientRecord& rec, absl::Time t, LeapDayRule rule);

// Which kinds of those who may act for the patient (who_may_act.h ActorKind) `person`
// is at `t`: the patient, a parent with gezag or guardian, a representative while the
// patient is incapable.
uint8_t ActorKindsAt(const PatientRecord& rec, absl::string_view person, absl::Time t);

}  // namespace toegang

#endif  // TOEGANG_MODEL_PATIENT_STATE_H_
