// Copyright toegang authors.
#include "engine/fhir/fhir_import.h"

#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "engine/fhir/consent_mapping.h"
#include "engine/fhir/consent_resource.h"
#include "model/json.h"
#include "model/status_macros.h"

namespace toegang {
namespace {

using json = nlohmann::json;

// What a stored fact is, in a report line: "consent con-1", "withdrawal of con-1".
std::string Describe(const Fact& f) {
  if (const auto* w = std::get_if<Withdrawal>(&f.body)) return absl::StrCat("withdrawal of ", w->target);
  return absl::StrCat(FactTypeName(f.body), " ", FactId(f.body));
}

const char* OutcomeName(FhirImportEntry::Outcome o) {
  switch (o) {
    case FhirImportEntry::Outcome::kStored:
      return "stored";
    case FhirImportEntry::Outcome::kUnchanged:
      return "unchanged";
    case FhirImportEntry::Outcome::kSkipped:
      return "skipped";
  }
  return "skipped";
}

}  // namespace

FhirImporter::FhirImporter(Engine& engine, FhirImportOptions options) : engine_(engine), options_(std::move(options)) {}

absl::Status CheckFhirImportOptions(const FhirImportOptions& options) {
  for (const std::string& system : options.identifier_systems) {
    if (fhir::IsBsnSystem(system)) {
      return absl::InvalidArgumentError(
          absl::StrCat("the identifier system ", system, " is the BSN's: it cannot name toegang ids, no BSN is ever stored"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<FhirImportReport> FhirImporter::Import(absl::string_view text) {
  TOEGANG_RETURN_IF_ERROR(CheckFhirImportOptions(options_));
  TOEGANG_ASSIGN_OR_RETURN(fhir::ConsentInput input, fhir::ParseConsentInput(text));
  fhir::MappingOptions mapping;
  mapping.identifier_systems = options_.identifier_systems;
  mapping.widen_denies = options_.widen_denies;
  mapping.data_categories = engine_.policy()->data_categories();

  MutexLock lock(&mu_);
  FhirImportReport report;
  report.bundle = input.is_bundle;
  report.bundle_type = input.bundle_type;
  std::vector<Fact> facts;
  std::vector<size_t> entry_of;  // the entry each fact came from
  absl::flat_hash_map<std::string, std::vector<Fact>> histories;
  for (size_t i = 0; i < input.consents.size(); ++i) {
    const fhir::ConsentResource& c = input.consents[i];
    FhirImportEntry entry;
    entry.id = c.id;
    entry.version = c.version;
    // The patient's history, read once per patient: what earlier versions stored.
    std::vector<Fact>* history = nullptr;
    if (c.status == "active" || c.status == "inactive") {
      TOEGANG_ASSIGN_OR_RETURN(std::string patient, fhir::ConsentPatient(c, mapping));
      auto it = histories.find(patient);
      if (it == histories.end()) {
        absl::StatusOr<std::vector<Fact>> read = engine_.History(patient);
        if (!read.ok()) return read.status();
        it = histories.emplace(patient, *std::move(read)).first;
      }
      history = &it->second;
    }
    TOEGANG_ASSIGN_OR_RETURN(fhir::ConsentPlan plan,
                             fhir::PlanConsent(c, mapping, history ? absl::MakeConstSpan(*history) : absl::Span<const Fact>()));
    entry.note = plan.note;
    switch (plan.outcome) {
      case fhir::ConsentOutcome::kStored:
        entry.outcome = FhirImportEntry::Outcome::kStored;
        break;
      case fhir::ConsentOutcome::kUnchanged:
        entry.outcome = FhirImportEntry::Outcome::kUnchanged;
        break;
      case fhir::ConsentOutcome::kSkipped:
        entry.outcome = FhirImportEntry::Outcome::kSkipped;
        break;
    }
    // A later Consent of the Bundle about the same patient sees what this one stores (a
    // Mitz notification may answer the same choice twice; the later answer wins).
    if (history != nullptr) history->insert(history->end(), plan.facts.begin(), plan.facts.end());
    for (Fact& f : plan.facts) {
      entry.facts.push_back(Describe(f));
      facts.push_back(std::move(f));
      entry_of.push_back(i);
    }
    report.entries.push_back(std::move(entry));
  }
  report.stored = facts.size();
  if (facts.empty()) {
    report.last_sequence = engine_.LastSequence();
    return report;
  }
  absl::StatusOr<uint64_t> last = engine_.Record(std::move(facts));
  if (!last.ok()) {
    // The store refused one fact (a withdrawal D36 does not allow, an id already used by
    // another fact): name the Consent it came from.
    const size_t n = FactPositionOf(last.status());
    if (n >= 1 && n <= entry_of.size() && IsCallersFault(last.status())) {
      return fhir::UnsupportedError(input.consents[entry_of[n - 1]].path,
                                    absl::StrCat(WhatAtFact(last.status()), " (nothing was stored)"));
    }
    return last.status();
  }
  report.last_sequence = *last;
  report.token = engine_.ConsistencyToken(*last);
  return report;
}

bool FhirErrorIsUnsupported(const absl::Status& status) { return fhir::IsUnsupported(status); }

int FhirHttpStatus(const absl::Status& status) {
  if (absl::IsInvalidArgument(status)) return fhir::IsUnsupported(status) ? 422 : 400;
  if (IsCallersFault(status)) return 422;
  if (absl::IsUnavailable(status)) return 503;
  return 500;
}

std::string OperationOutcomeJson(const absl::Status& status) {
  const int http = FhirHttpStatus(status);
  json issue{{"severity", "error"},
             {"code", http == 400 ? "structure" : http == 422 ? "not-supported" : http == 503 ? "transient" : "exception"},
             {"diagnostics", std::string(status.message())}};
  if (std::string expression = fhir::FhirExpressionOf(status); !expression.empty()) {
    issue["expression"] = json::array({expression});
  }
  return JsonText(json{{"resourceType", "OperationOutcome"}, {"issue", json::array({issue})}});
}

std::string ImportResponseJson(const FhirImportReport& report) {
  json entries = json::array();
  for (const FhirImportEntry& e : report.entries) {
    std::string diagnostics = e.outcome == FhirImportEntry::Outcome::kStored
                                  ? absl::StrCat("stored: ", absl::StrJoin(e.facts, ", "))
                                  : absl::StrCat(OutcomeName(e.outcome), ": ", e.note);
    json response{{"status", e.outcome == FhirImportEntry::Outcome::kStored ? "201 Created" : "200 OK"},
                  {"outcome",
                   {{"resourceType", "OperationOutcome"},
                    {"issue", json::array({{{"severity", "information"}, {"code", "informational"},
                                            {"diagnostics", diagnostics}}})}}}};
    if (e.outcome != FhirImportEntry::Outcome::kSkipped) {
      response["location"] = e.version.empty() ? absl::StrCat("Consent/", e.id)
                                               : absl::StrCat("Consent/", e.id, "/_history/", e.version);
    }
    entries.push_back(json{{"response", std::move(response)}});
  }
  json extensions = json::array({{{"url", "urn:toegang:last-sequence"}, {"valueString", std::to_string(report.last_sequence)}}});
  if (!report.token.empty()) extensions.push_back({{"url", "urn:toegang:consistency-token"}, {"valueString", report.token}});
  return JsonText(json{{"resourceType", "Bundle"},
                       {"type", report.bundle_type == "batch" ? "batch-response" : "transaction-response"},
                       {"extension", std::move(extensions)},
                       {"entry", std::move(entries)}});
}

std::string ImportReportText(const FhirImportReport& report) {
  std::string out;
  for (const FhirImportEntry& e : report.entries) {
    absl::StrAppend(&out, "Consent/", e.id, e.version.empty() ? "" : absl::StrCat(" version ", e.version), ": ",
                    OutcomeName(e.outcome), ": ",
                    e.outcome == FhirImportEntry::Outcome::kStored ? absl::StrJoin(e.facts, ", ") : e.note, "\n");
  }
  absl::StrAppend(&out, "stored ", report.stored, " facts; last sequence ", report.last_sequence, "\n");
  if (!report.token.empty()) absl::StrAppend(&out, "token ", report.token, "\n");
  return out;
}

}  // namespace toegang
