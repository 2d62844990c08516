// Copyright toegang authors.
//
// toegang fhir import [--db DIR] [--identifier-system URI,...] [--widen-denies] FILE:
// records the FHIR R4 Consent (or Bundle of Consents) in FILE, all or nothing, and
// prints a line per Consent: stored (and what), unchanged (that version is already
// imported) or skipped (not in force). With --replicate CONNINFO the facts go into the
// history in PostgreSQL, and the last line is their consistency token.
//
// toegang fhir export [--db DIR] --patient ID [--at INSTANT] [--as-of INSTANT]: the
// patient's consents and objections as a FHIR Bundle (collection), each with its status
// at --at (default now), as the store knew them at --as-of.
#include <iostream>

#include "absl/flags/flag.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "engine/cli/cli.h"
#include "engine/fhir/fhir_import.h"
#include "engine/fhir/fhir_read.h"
#include "model/time.h"

ABSL_FLAG(std::vector<std::string>, identifier_system, {},
          "FHIR identifier systems whose values are toegang ids (comma-separated; never the BSN system)");
ABSL_FLAG(bool, widen_denies, false,
          "import a FHIR deny that covers less than a toegang category as an objection to the whole category");

namespace toegang::cli {

absl::StatusOr<FhirImportOptions> FhirImportFlags() {
  FhirImportOptions o;
  for (const std::string& s : absl::GetFlag(FLAGS_identifier_system)) {
    if (!s.empty()) o.identifier_systems.insert(s);
  }
  o.widen_denies = absl::GetFlag(FLAGS_widen_denies);
  if (absl::Status s = CheckFhirImportOptions(o); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("--identifier-system: ", s.message()));
  }
  return o;
}

namespace {

int Export(const std::vector<std::string>& args) {
  const std::string patient = absl::GetFlag(FLAGS_patient);
  if (args.size() != 1 || patient.empty()) {
    Complain("usage: toegang fhir export [--db DIR] --patient ID [--at INSTANT] [--as-of INSTANT]");
    return kBadInput;
  }
  absl::StatusOr<absl::Time> at = AtFlag();
  if (!at.ok()) {
    Complain(std::string(at.status().message()));
    return kBadInput;
  }
  absl::StatusOr<absl::Time> as_of = AsOfFlag();
  if (!as_of.ok()) {
    Complain(std::string(as_of.status().message()));
    return kBadInput;
  }
  std::unique_ptr<Engine> engine;
  if (int status = OpenReadingEngine(&engine); status != kOk) return status;
  absl::StatusOr<std::string> bundle = FhirConsentReader(*engine).Export(patient, *at, *as_of);
  if (!bundle.ok()) {
    Complain(std::string(bundle.status().message()));
    return IsCallersFault(bundle.status()) ? kBadInput : kFailure;
  }
  std::cout << *bundle << "\n";
  return kOk;
}

}  // namespace

int Fhir(const std::vector<std::string>& args) {
  if (!args.empty() && args[0] == "export") return Export(args);
  if (args.size() != 2 || args[0] != "import") {
    Complain("usage: toegang fhir import [--db DIR] [--identifier-system URI,...] [--widen-denies] "
             "[--replicate CONNINFO] FILE.json\n"
             "       toegang fhir export [--db DIR] --patient ID [--at INSTANT] [--as-of INSTANT]");
    return kBadInput;
  }
  const std::string& path = args[1];
  absl::StatusOr<FhirImportOptions> fhir_options = FhirImportFlags();
  if (!fhir_options.ok()) {
    Complain(std::string(fhir_options.status().message()));
    return kBadInput;
  }
  absl::StatusOr<std::string> text = ReadFile(path);
  if (!text.ok()) {
    Complain(absl::StrCat(text.status().message(), " (nothing was stored)"));
    return IsCallersFault(text.status()) ? kBadInput : kFailure;
  }
  std::unique_ptr<Engine> engine;
  if (int status = OpenRecordingEngine(&engine); status != kOk) return status;
  FhirImporter importer(*engine, *std::move(fhir_options));
  absl::StatusOr<FhirImportReport> report = importer.Import(*text);
  if (!report.ok()) {
    Complain(absl::StrCat(path, ": ", report.status().message(),
                          absl::StrContains(report.status().message(), "nothing was stored") ? "" : " (nothing was stored)"));
    const int http = FhirHttpStatus(report.status());
    return http == 400 || http == 422 ? kBadInput : kFailure;
  }
  std::cout << ImportReportText(*report);
  return kOk;
}

}  // namespace toegang::cli
