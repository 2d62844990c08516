// Copyright toegang authors.
//
// fhir_consent_fuzzer: a FHIR R4 Consent or Bundle of them (engine/fhir), as
// `toegang fhir import` and POST /fhir read it.
//
// Properties: a refused import stores nothing and names the element (issue.expression)
// in an OperationOutcome that is JSON, with no BSN in its message; an accepted one
// stores facts that each carry the Consent's id as their FHIR source, none holds a BSN,
// every consent names one party and no more categories than a permit can say, and
// importing the same text again stores nothing.
#include <cstdint>
#include <string>

#include "engine/fhir/consent_mapping.h"
#include "engine/fhir/consent_resource.h"
#include "engine/fhir/fhir_import.h"
#include "fuzz/fuzz_support.h"
#include "model/bsn.h"
#include "model/json.h"

using toegang::fuzz::AsText;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static toegang::Engine* const engine = toegang::fuzz::NewScenarioEngine(/*access_log=*/false).release();
  static toegang::FhirImporter* const importer = [] {
    toegang::FhirImportOptions o;
    o.identifier_systems = {"https://praktijk.example/patient-id"};
    return new toegang::FhirImporter(*engine, o);
  }();
  absl::string_view text = AsText(data, size);
  const uint64_t before = engine->LastSequence();
  absl::StatusOr<toegang::FhirImportReport> report = importer->Import(text);
  if (!report.ok()) {
    FUZZ_CHECK(engine->LastSequence() == before, "a refused import stored something");
    FUZZ_CHECK(!report.status().message().empty(), "a refusal without a message");
    FUZZ_CHECK(!toegang::ContainsBsn(report.status().message()), "an error message repeats a BSN");
    const int http = toegang::FhirHttpStatus(report.status());
    FUZZ_CHECK(http == 400 || http == 422, "bad input answered with a server error");
    FUZZ_CHECK(nlohmann::json::accept(toegang::OperationOutcomeJson(report.status())),
               "the OperationOutcome is not JSON");
    return 0;
  }
  FUZZ_CHECK(engine->LastSequence() == before + report->stored, "the report miscounts what was stored");
  FUZZ_CHECK(nlohmann::json::accept(toegang::ImportResponseJson(*report)), "the response Bundle is not JSON");
  if (report->stored > 0) {
    // The stored facts are the last ones of their patients' histories.
    absl::StatusOr<toegang::fhir::ConsentInput> input = toegang::fhir::ParseConsentInput(text);
    FUZZ_CHECK(input.ok(), "an imported input no longer parses");
    toegang::fhir::MappingOptions mapping;
    mapping.identifier_systems = importer->options().identifier_systems;
    for (const toegang::fhir::ConsentResource& c : input->consents) {
      absl::StatusOr<std::string> patient = toegang::fhir::ConsentPatient(c, mapping);
      if (!patient.ok()) continue;  // skipped before its patient was read
      absl::StatusOr<std::vector<toegang::Fact>> history = engine->History(*patient);
      if (!history.ok()) continue;
      for (const toegang::Fact& f : *history) {
        if (f.provenance.seq <= before) continue;
        FUZZ_CHECK(f.source && f.source->system == "fhir", "an imported fact lost its source");
        const std::string line = toegang::FactToJson(f, /*with_provenance=*/true);
        FUZZ_CHECK(!toegang::ContainsBsn(line), "an imported fact holds a BSN");
        if (const auto* k = std::get_if<toegang::Consent>(&f.body)) {
          // A Mitz yes reaches what the pack maps its data category to, nothing wider.
          if (f.source->choice.size() > 1 && f.source->choice[0] != '/') {
            const std::string data = f.source->choice.substr(0, f.source->choice.find('/'));
            std::optional<toegang::CategorySet> mapped = engine->policy()->DataCategory(data);
            FUZZ_CHECK(mapped && k->categories.IsSubsetOf(*mapped), "a Mitz yes reaches beyond its data category");
          }
        }
      }
    }
  }
  const uint64_t after = engine->LastSequence();
  absl::StatusOr<toegang::FhirImportReport> again = importer->Import(text);
  FUZZ_CHECK(again.ok() && again->stored == 0 && engine->LastSequence() == after,
             "importing the same Consents again stored something");
  return 0;
}
