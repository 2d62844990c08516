// Copyright toegang authors.
//
// consent_export.h (internal): a patient's consents and objections as FHIR R4 Consent
// resources — the reverse of consent_mapping.h, so that what is exported imports back
// to the same facts (docs/fhir.md, "Export"). A pure function of the patient's record:
// no I/O, no clock.
//
// What FHIR's own codes cannot say is said in toegang's code systems, which the import
// reads back: a purpose without a v3 ActReason code (referral, quality_review,
// complaint), the actions export and erase, a category (FHIR has no class for
// "medical"), a role as recipient (an extension: R4 wants a reference), an id that is
// not a FHIR id (an identifier).
#ifndef TOEGANG_ENGINE_FHIR_CONSENT_EXPORT_H_
#define TOEGANG_ENGINE_FHIR_CONSENT_EXPORT_H_

#include <optional>
#include <string>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "engine/fhir/consent_resource.h"
#include "model/facts.h"
#include "model/patient_record.h"
#include "nlohmann/json.hpp"

namespace toegang::fhir {

// The FHIR id of the resource for toegang fact `id`: the id itself when it is a FHIR id
// (1 to 64 of A-Z a-z 0-9 - .) and does not start with "x."; otherwise "x." and the id
// with every byte outside A-Z a-z 0-9 - written as "." and two hex digits. nullopt when
// that is longer than 64: such a consent is found by searching, not read by id.
std::optional<std::string> FhirIdOf(absl::string_view id);

// The toegang id a FHIR id stands for (FhirIdOf's reverse); nullopt when `fhir_id` is
// not one FhirIdOf gives.
std::optional<std::string> ToegangIdOf(absl::string_view fhir_id);

// The consent or objection `fact` of `record` as a FHIR Consent, the version in force at
// `at`: inactive once `withdrawal` (its withdrawal, if any) has ended it — as D19 and
// D35 count one — or past its `until`, else active. meta.versionId is the store
// sequence of the fact, or of the withdrawal once it has ended it; meta.lastUpdated the
// fact's arrival, or the instant the withdrawal ended it (what the import reads as the
// withdrawal's). REQUIRES: `fact` is a consent or an objection about record.patient.
nlohmann::json ConsentResourceOf(const PatientRecord& record, const Fact& fact, const Fact* withdrawal,
                                 absl::Time at);

}  // namespace toegang::fhir

#endif  // TOEGANG_ENGINE_FHIR_CONSENT_EXPORT_H_
