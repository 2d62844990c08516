// Copyright toegang authors.
//
// fhir_read.h: the consents and objections toegang holds, as FHIR R4 Consent resources
// (docs/fhir.md, "Export and read"): `toegang fhir export`, GET /fhir/Consent,
// /fhir/Consent/{id}, /fhir/Consent/{id}/_history and /fhir/metadata.
//
// What is exported imports back (fhir_import.h) to the same facts: into a store holding
// the same persons, relationships, restrictions and capacity assessments, the same
// requests get the same decisions at the instant the export was made for.
//
// Each consent or objection is one resource: its id is the fact's (escaped when it is
// not a FHIR id), meta.versionId the store sequence of its latest version — the fact
// itself, then its withdrawal — and its status what it is at the instant asked for:
// inactive once withdrawn or past `until`. A `to.role` recipient is an extension (R4
// wants a reference). Restrictions and capacity assessments are a clinician's, not a
// patient's consent, and are not exported.
//
// Thread-safe.
#ifndef TOEGANG_ENGINE_FHIR_FHIR_READ_H_
#define TOEGANG_ENGINE_FHIR_FHIR_READ_H_

#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "engine/toegang.h"

namespace toegang {

// A search of GET /fhir/Consent.
struct FhirConsentSearch {
  std::string patient;          // required
  std::string status;           // "active", "inactive" or "" (both)
  size_t count = 50;            // _count: 1..1000
  size_t offset = 0;            // _offset: how many matches the page skips
  // _at: the instant the statuses are for, and the store's knowledge then (so that
  // the pages of one search agree). Default: now.
  std::optional<absl::Time> at;
};

class FhirConsentReader {
 public:
  // REQUIRES: `engine` outlives the reader.
  explicit FhirConsentReader(Engine& engine);

  // Every consent and objection of `patient` the store knew at `as_of`, each with its
  // status at `at`, as a Bundle of type collection (importable as it is).
  absl::StatusOr<std::string> Export(absl::string_view patient, absl::Time at, absl::Time as_of) const;

  // A searchset Bundle: `total` matches, this page of them in store order, and a
  // `next` link carrying _at, so a client paging on sees what the first page saw.
  // InvalidArgument names a bad parameter.
  absl::StatusOr<std::string> Search(const FhirConsentSearch& search, absl::Time now) const;

  // The resource with FHIR id `id`, as it is now. NotFound when there is none.
  absl::StatusOr<std::string> Read(absl::string_view id, absl::Time now) const;

  // Its versions, newest first, as a Bundle of type history. NotFound when there is none.
  absl::StatusOr<std::string> History(absl::string_view id, absl::Time now) const;

 private:
  Engine& engine_;
};

// The parameters of GET /fhir/Consent from the query (`arg` gives each, "" when
// absent). InvalidArgument names the parameter.
absl::StatusOr<FhirConsentSearch> ParseFhirConsentSearch(const std::function<std::string(const char*)>& arg);

// GET /fhir/metadata: what toegang's FHIR endpoint supports.
std::string CapabilityStatementJson();

}  // namespace toegang

#endif  // TOEGANG_ENGINE_FHIR_FHIR_READ_H_
