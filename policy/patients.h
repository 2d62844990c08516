// Copyright toegang authors.
//
// patients.h: where to look for the patients a request could be permitted for — the
// plan behind "which dossiers may this actor open" (Engine::Patients). Every candidate
// it points to is then decided by the evaluator, so the list is what `decide` answers;
// the plan only has to leave no permitted patient out.
//
// A permit rule permits only when all its requirements hold. A requirement that a fact
// name the actor — a treating, parent, guardian or representative relationship, a
// consent to the actor, a registration with the actor's organisation, coverage of a
// clinician who treats, the actor being the patient — holds only for patients filed in
// the index under the actor, the clinicians they cover, their organisation, its
// care-provider categories, their role, or a disclosure's recipient
// (model/patient_index.h). A rule for the request with no such requirement (emergency
// with a justification, a legal order, research) could permit any patient: then every
// patient is a candidate.
//
// Thread-compatible: it reads only its arguments.
#ifndef TOEGANG_POLICY_PATIENTS_H_
#define TOEGANG_POLICY_PATIENTS_H_

#include <string>
#include <vector>

#include "absl/types/span.h"
#include "model/patient_record.h"
#include "model/request.h"
#include "policy/policy.h"

namespace toegang {

struct PatientSearch {
  // Some permit rule for the request needs no fact naming the actor: every patient.
  bool every_patient = false;
  // Otherwise the index keys to read, sorted, each once.
  std::vector<std::string> keys;
};

// The plan for `request` (its `patient` is not read): `substitutions` are the actor's
// substitute_for coverages, `categories` the org_category facts of the actor's
// organisation and of a disclosure's recipient organisation.
PatientSearch PlanPatientSearch(const Policy& policy, const AccessRequest& request,
                                absl::Span<const Stored<Relationship>> substitutions,
                                absl::Span<const Stored<OrgCategory>> categories);

}  // namespace toegang

#endif  // TOEGANG_POLICY_PATIENTS_H_
