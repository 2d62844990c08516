// Copyright toegang authors.
//
// fhir_import.h: FHIR R4 Consent resources in, as toegang facts (docs/fhir.md).
//
// What Dutch EHRs send — one Consent, or a Bundle (transaction, batch or collection)
// of them, as JSON — is read strictly and recorded through the engine, all or nothing:
// a Bundle with one bad entry stores nothing and names the element at fault by its
// FHIRPath. Importing the same Consent id and meta.versionId again stores nothing new,
// so a sender may retry. Every stored fact remembers its source (`history` shows it).
//
//   toegang::FhirImporter importer(engine, {});
//   absl::StatusOr<toegang::FhirImportReport> report = importer.Import(bundle_json);
//   if (!report.ok()) { std::string outcome = toegang::OperationOutcomeJson(report.status()); }
//
// Thread-safe: imports through one importer are serialized, so a version is never
// stored twice by two callers at once.
#ifndef TOEGANG_ENGINE_FHIR_FHIR_IMPORT_H_
#define TOEGANG_ENGINE_FHIR_FHIR_IMPORT_H_

#include <set>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "base/sync.h"
#include "engine/toegang.h"

namespace toegang {

struct FhirImportOptions {
  // Identifier systems whose values are toegang ids (a Reference by identifier, rather
  // than Type/id). A BSN system is refused: no BSN is ever stored. Default: none.
  std::set<std::string> identifier_systems;

  // A deny covering less data than a toegang category (provision.class, code,
  // securityLabel, data, dataPeriod) becomes an objection to the whole category,
  // rather than a refusal. Default: false (refused).
  bool widen_denies = false;
};

// InvalidArgument when `options` cannot be used: a BSN identifier system.
absl::Status CheckFhirImportOptions(const FhirImportOptions& options);

// What became of one Consent.
struct FhirImportEntry {
  std::string id;        // the Consent's id
  std::string version;   // its meta.versionId ("" when not given)
  enum class Outcome { kStored, kUnchanged, kSkipped } outcome = Outcome::kSkipped;
  std::vector<std::string> facts;  // what was stored: "consent con-1", "withdrawal of con-1"
  std::string note;                // why nothing was stored (kUnchanged, kSkipped)
};

struct FhirImportReport {
  bool bundle = false;
  std::string bundle_type;               // "transaction", "batch", "collection"
  std::vector<FhirImportEntry> entries;  // in input order
  size_t stored = 0;                     // facts stored
  uint64_t last_sequence = 0;            // the store's, after the import
  std::string token;                     // a consistency token, when replicating
};

class FhirImporter {
 public:
  // REQUIRES: `engine` outlives the importer.
  FhirImporter(Engine& engine, FhirImportOptions options);

  // Imports `text`: a Consent or a Bundle of Consents. Errors:
  // - InvalidArgument naming the element ("Bundle.entry[1].resource.provision.type:
  //   ..."): not well-formed FHIR, or (FhirErrorIsUnsupported) a well-formed Consent
  //   toegang will not import; nothing is stored.
  // - the store's errors otherwise (Unavailable: a replica's history cannot be reached;
  //   an I/O error), nothing stored.
  absl::StatusOr<FhirImportReport> Import(absl::string_view text);

  const FhirImportOptions& options() const { return options_; }

 private:
  Engine& engine_;
  const FhirImportOptions options_;
  Mutex mu_;  // one import at a time: a version's check and its recording are one step
};

// Whether an import error is about well-formed input toegang will not import (HTTP 422),
// rather than malformed input (400).
bool FhirErrorIsUnsupported(const absl::Status& status);

// The HTTP status for an import error: 400, 422, 503 (the store cannot be reached) or
// 500.
int FhirHttpStatus(const absl::Status& status);

// The error as a FHIR OperationOutcome: issue.expression names the element.
std::string OperationOutcomeJson(const absl::Status& status);

// The report as a FHIR Bundle of type transaction-response (batch-response for a
// batch): per Consent, response.status "201 Created" (stored) or "200 OK", with an
// OperationOutcome saying what was stored or why nothing was. The store's last
// sequence and consistency token are extensions of the Bundle.
std::string ImportResponseJson(const FhirImportReport& report);

// The report as text, a line per Consent (what `toegang fhir import` prints).
std::string ImportReportText(const FhirImportReport& report);

}  // namespace toegang

#endif  // TOEGANG_ENGINE_FHIR_FHIR_IMPORT_H_
