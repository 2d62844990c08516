// Copyright toegang authors.
//
// who_may_act.h: who may act for a patient of each age band — grant a consent (DOMAIN
// D20, D37, D38), object for the patient (D9) and withdraw an objection (D36) — as one
// table.
// The pack's rules name the predicates `consent` and `objection`; what makes a consent
// or an objection count is decided here, by this table, so a rule like "a parent of a
// 13-year-old" is read in one place: the evaluator (policy/evaluator.cc) and the check
// of withdrawals at load (model/fact_index.cc) both read it. The packs' headers point
// here.
#ifndef TOEGANG_MODEL_WHO_MAY_ACT_H_
#define TOEGANG_MODEL_WHO_MAY_ACT_H_

#include <cstdint>

#include "model/vocabulary.h"

namespace toegang {

// Kinds of people who may act for a patient; a set is a bit mask of them.
enum ActorKind : uint8_t {
  kThePatient = 1 << 0,
  // A parent with gezag, or a guardian (D37).
  kParentOrGuardian = 1 << 1,
  // A representative (mentor, curator, mandate) while a capacity assessment says the
  // patient is incapable (D7).
  kRepresentativeWhileIncapable = 1 << 2,
};

struct WhoMayAct {
  AgeBand band;
  // D20: a consent granted by any one of these counts on its own.
  uint8_t grant_alone;
  // D20, D38: consents granted by all of these (one consent granted by each, or one by
  // both) count together. Parameter consent_12_to_15 child_only moves the 12-15 row's
  // patient to grant_alone.
  uint8_t grant_together;
  // D9: an objection made by one of these counts (a representative while incapable at
  // any age: an objection only ever protects).
  uint8_t object;
  // D36: besides its author, these may withdraw an objection (at the withdrawal's `at`).
  uint8_t withdraw_objection;
  // D61: these may request erasure of the dossier (WGBO 7:455; Jeugdwet: from 12 the
  // young person), and withdraw such a request.
  uint8_t request_erasure;
};

// Cited as it is in DOMAIN.md; WGBO 7:450 (under 12: the parents; 12-15: the child and
// the parents; 16+: the patient), 7:465 (representation), UAVG art. 5.
inline constexpr WhoMayAct kWhoMayAct[] = {
    // band             grant alone
    //                  grant together                    object
    //                  withdraw an objection             request erasure
    {AgeBand::kUnder12, kParentOrGuardian,
                        0,                                kParentOrGuardian | kRepresentativeWhileIncapable,
                        kParentOrGuardian,                kParentOrGuardian},
    {AgeBand::k12To15,  0,
                        kThePatient | kParentOrGuardian,  kThePatient | kParentOrGuardian | kRepresentativeWhileIncapable,
                        kThePatient,                      kThePatient},
    {AgeBand::k16To17,  kThePatient,
                        0,                                kThePatient | kRepresentativeWhileIncapable,
                        kThePatient | kRepresentativeWhileIncapable, kThePatient | kRepresentativeWhileIncapable},
    {AgeBand::kAdult,   kThePatient | kRepresentativeWhileIncapable,
                        0,                                kThePatient | kRepresentativeWhileIncapable,
                        kThePatient | kRepresentativeWhileIncapable, kThePatient | kRepresentativeWhileIncapable},
};

// The row for `band`.
constexpr const WhoMayAct& WhoMayActFor(AgeBand band) {
  for (const WhoMayAct& row : kWhoMayAct) {
    if (row.band == band) return row;
  }
  return kWhoMayAct[0];  // unreachable: every band has a row (static_assert below)
}

// Who may object when the patient's age is not known: anyone some band allows (an
// objection protects; on doubt it counts).
constexpr uint8_t ObjectorsOfAnyBand() {
  uint8_t any = 0;
  for (const WhoMayAct& row : kWhoMayAct) any |= row.object;
  return any;
}

static_assert(sizeof(kWhoMayAct) / sizeof(kWhoMayAct[0]) == EnumCount<AgeBand>(), "one row per age band");

}  // namespace toegang

#endif  // TOEGANG_MODEL_WHO_MAY_ACT_H_
