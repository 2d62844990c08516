// Copyright toegang authors.
//
// patients.h: the patients an actor may open (Engine::Patients, toegang.h), a page at a
// time — what a privacy officer asks of a locum, and AuthZEN's resource search. Each
// listed patient is the permit Engine::Decide gives; a page never mixes two states of
// the history and is never silently short (docs/patients.md).
#ifndef TOEGANG_ENGINE_PATIENTS_H_
#define TOEGANG_ENGINE_PATIENTS_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "model/patient_record.h"
#include "model/request.h"
#include "policy/policy.h"

namespace toegang {

// Which patients' dossiers an actor may open (Engine::Patients): the request `decide`
// would answer, for no one patient, and where the listing goes on from.
struct PatientsQuery {
  AccessRequest request;  // its `patient`, `explain` and `at_least` are not read
  // The patients listed per page, at most: 1 to 1,000. Default: 100.
  size_t page_size = 100;
  // "" for the first page; else the `cursor` of the page before, made for the same
  // request and policy.
  std::string cursor;
  // After this long the page so far is answered, with a cursor to go on from (a page
  // then holds fewer patients, never silently: `complete` stays false). Default: 1 s.
  absl::Duration deadline = absl::Seconds(1);
};

// One patient the actor may open, with the permit `decide` gives (its string views point
// into `facts` and the page's policy).
struct ListedPatient {
  std::string patient;
  Decision decision;
  std::shared_ptr<const PatientRecord> facts;
};

// A page of the listing (docs/patients.md).
struct PatientPage {
  AccessRequest request;  // as asked (no patient)
  // The point of the history every page of this listing decides on: the store's last
  // sequence when its first page was made. Facts recorded since are not seen, so no
  // page mixes two states of the history.
  uint64_t sequence = 0;
  std::vector<ListedPatient> patients;  // in id order (bytes)
  // Whether every patient was a candidate: a rule for the request (an emergency, a legal
  // order, research) needs no fact naming the actor. Otherwise the index was read.
  bool every_patient = false;
  size_t examined = 0;    // candidates decided for this page
  bool complete = false;  // no permitted patient after this page
  std::string cursor;     // the next page's; "" when complete
  std::shared_ptr<const Policy> policy;

  std::string Json() const;
};

}  // namespace toegang

#endif  // TOEGANG_ENGINE_PATIENTS_H_
