// Copyright toegang authors.
//
// consent_mapping.h (internal): what a FHIR R4 Consent means as toegang facts
// (docs/fhir.md has the table). A pure function of the Consent, the options and the
// patient's history: no I/O, no clock.
//
// A Consent becomes a consent (permit) or an objection (deny) per actor, ids `<id>`
// or, with several actors, `<id>#a<n>`; each nested deny inside a permit adds
// objections `<id>#d<k>` (`<id>#d<k>a<n>`). Whatever the table does not cover is
// refused, naming the element: refusing is always better than widening a permit.
// Every fact is marked with its source (system "fhir", the id, meta.versionId).
//
// Versions: importing a version already imported stores nothing. A new active version
// withdraws what the earlier one still holds (at meta.lastUpdated) and adds its own
// facts under `<id>@<versionId>`; an inactive one only withdraws.
//
// Mitz (a Consent with OTV-ProviderCategory extensions): each (data category, provider
// category) pair is a choice, a yes or a no, which a later Consent about the same
// choice replaces whatever its id. A yes (active, permit) is a consent to the
// organization_category, granted by the patient (policy param mitz_grantor says how it
// counts), for reading and disclosing; a no (inactive) withdraws the yes in force for
// the choice, if any — no answer is no already. A choice older than the one in force
// changes nothing.
#ifndef TOEGANG_ENGINE_FHIR_CONSENT_MAPPING_H_
#define TOEGANG_ENGINE_FHIR_CONSENT_MAPPING_H_

#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "engine/fhir/consent_resource.h"
#include "model/facts.h"

namespace toegang::fhir {

inline constexpr char kFhirSourceSystem[] = "fhir";

struct MappingOptions {
  // Identifier systems whose values are toegang ids: a Reference by identifier in one of
  // these names the party by its value. A BSN system is never one (no BSN is stored).
  std::set<std::string> identifier_systems;
  // A deny that covers less data than a toegang category (class, code, securityLabel,
  // data, dataPeriod) becomes an objection to the whole category instead of a refusal.
  bool widen_denies = false;
  // The policy's data-category table (policy.h DataCategory): what a Consent.category
  // code of kDataCategorySystem stands for. A code not in it is refused.
  std::vector<std::pair<std::string, CategorySet>> data_categories;
};

enum class ConsentOutcome { kStored, kUnchanged, kSkipped };

struct ConsentPlan {
  ConsentOutcome outcome = ConsentOutcome::kSkipped;
  std::string patient;      // the toegang patient id ("" when skipped before it was read)
  std::vector<Fact> facts;  // what to record (kStored only)
  std::string note;         // why nothing is stored, for kUnchanged and kSkipped
};

// The patient a Consent is about, as a toegang id. The error names Consent.patient.
absl::StatusOr<std::string> ConsentPatient(const ConsentResource& consent, const MappingOptions& options);

// What importing `consent` stores, given the patient's `history` (every fact about the
// patient, in arrival order). Errors are consent_resource.h's: InvalidArgument naming
// the element, marked unsupported for a well-formed Consent toegang will not import.
absl::StatusOr<ConsentPlan> PlanConsent(const ConsentResource& consent, const MappingOptions& options,
                                        absl::Span<const Fact> history);

// Whether `system` is a BSN identifier system (refused as --identifier-system too).
bool IsBsnSystem(absl::string_view system);

}  // namespace toegang::fhir

#endif  // TOEGANG_ENGINE_FHIR_CONSENT_MAPPING_H_
