// Copyright toegang authors.
//
// consent_resource.h (internal): the small part of FHIR R4 toegang reads — Coding,
// CodeableConcept, Reference, Period, Consent and Bundle, as JSON — read strictly.
//
// Strict means: an element this file does not know is an error, and so is a known one
// used in a way the import cannot honour (an extension on a primitive, a contained
// resource, implicitRules, a modifierExtension). Every error names the element by its
// FHIRPath ("Bundle.entry[2].resource.provision.actor[0].reference: ...") and carries
// that path as data (FhirExpressionOf), for an OperationOutcome's issue.expression.
// Elements read but not used (text, identifier, category, policy, verification, ...)
// are listed in docs/fhir.md.
//
// What the elements mean for toegang is consent_mapping.h's business: this file only
// checks that the input is well-formed FHIR of the shapes supported.
#ifndef TOEGANG_ENGINE_FHIR_CONSENT_RESOURCE_H_
#define TOEGANG_ENGINE_FHIR_CONSENT_RESOURCE_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "model/vocabulary.h"

namespace toegang::fhir {

// A FHIR input larger than this is refused before parsing.
inline constexpr size_t kMaxFhirBytes = 8 * 1024 * 1024;
// A Bundle holds at most this many entries.
inline constexpr size_t kMaxBundleEntries = 1000;

// toegang's own code systems and extension: what FHIR's codes cannot say (a purpose
// without a v3 ActReason code, the actions export and erase, a category, a role as
// recipient, an id that is not a FHIR id), as the export writes it and the import reads it.
inline constexpr char kToegangIdSystem[] = "urn:toegang:id";
inline constexpr char kToegangPurposeSystem[] = "urn:toegang:purpose";
inline constexpr char kToegangActionSystem[] = "urn:toegang:action";
inline constexpr char kToegangCategorySystem[] = "urn:toegang:category";
inline constexpr char kRecipientRoleExtension[] = "urn:toegang:recipient-role";

// Mitz (VZVZ's Consent-Mitz-Notify profile, Nictiz's OTV code systems): the category of
// the care provider asking (an extension on the Consent) and the category of the data
// (Consent.category). Both are opaque codes to toegang; the pack maps data categories to
// its own (policy.h DataCategory).
inline constexpr char kProviderCategoryExtension[] = "http://fhir.nl/StructureDefinition/OTV-ProviderCategory";
inline constexpr char kProviderCategorySystem[] = "http://fhir.nl/otv/CodeSystem/raadplegende-zorgaanbiedercategorie";
inline constexpr char kDataCategorySystem[] = "http://fhir.nl/otv/CodeSystem/gegevenscategorie";

// FHIR's code systems the import reads and the export writes.
inline constexpr char kConsentScopeSystem[] = "http://terminology.hl7.org/CodeSystem/consentscope";
inline constexpr char kConsentActionSystem[] = "http://terminology.hl7.org/CodeSystem/consentaction";
inline constexpr char kActReasonSystem[] = "http://terminology.hl7.org/CodeSystem/v3-ActReason";
inline constexpr char kActReasonOid[] = "urn:oid:2.16.840.1.113883.5.8";
// The same code system under its name before R4 (Mitz's notifications use it).
inline constexpr char kActReasonLegacy[] = "http://hl7.org/fhir/v3/ActReason";
inline constexpr char kParticipationTypeSystem[] = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType";

// The v3 ActReason codes that stand for a toegang purpose, both ways (the rest of the
// purposes go in kToegangPurposeSystem).
struct PurposeCode {
  const char* v3;
  Purpose purpose;
};
inline constexpr PurposeCode kPurposeCodes[] = {
    {"TREAT", Purpose::kTreatment},       {"ETREAT", Purpose::kEmergency},      {"HPAYMT", Purpose::kBilling},
    {"HRESCH", Purpose::kResearch},       {"PATRQT", Purpose::kPatientRequest}, {"HLEGAL", Purpose::kLegalObligation},
};

// FHIR's id type: 1 to 64 of A-Z a-z 0-9 - .
bool IsFhirId(absl::string_view s);

// --- Errors --------------------------------------------------------------------------
// InvalidArgument for input that is not well-formed FHIR (HTTP 400); the same code with
// the "unsupported" mark for a well-formed Consent toegang will not import (HTTP 422).

absl::Status FhirError(absl::string_view expression, absl::string_view what);
absl::Status UnsupportedError(absl::string_view expression, absl::string_view what);
// The FHIRPath the error names ("" when it names none).
std::string FhirExpressionOf(const absl::Status& status);
// Whether the error is the "well-formed but unsupported" kind.
bool IsUnsupported(const absl::Status& status);

// --- Data types ----------------------------------------------------------------------

struct Coding {
  std::string system;
  std::string code;
};

struct CodeableConcept {
  std::vector<Coding> coding;
  std::string text;
};

struct Identifier {
  std::string system;
  std::string value;
};

// A Reference: a literal "Type/id" (optionally ".../_history/v"), an identifier, or
// (in a Bundle) the fullUrl of another entry, "urn:uuid:...", resolved to that entry's
// type and identifiers: a transaction's ids are the sender's, its identifiers are not.
struct Reference {
  std::string path;        // its FHIRPath, for errors about what it refers to
  std::string type;        // "Patient", "Practitioner", ... ("" when unknown)
  std::string id;          // the logical id of a literal reference
  std::optional<Identifier> identifier;
  std::string display;
  std::string entry_url;                  // "urn:uuid:..." ("" when not to an entry)
  std::vector<Identifier> entry_identifiers;  // the entry's, once resolved
};

// A dateTime, with its precision: [start, end) is the unit it names (a year, a month,
// a day, a second or a fraction of one). A date is read in Europe/Amsterdam.
struct DateTime {
  absl::Time start;
  absl::Time end;
  bool has_time = false;   // given to the second (or finer), with an offset
  std::string text;
};

struct Period {
  std::string path;
  std::optional<DateTime> start;
  std::optional<DateTime> end;
};

struct ProvisionActor {
  std::string path;
  CodeableConcept role;
  Reference reference;
};

struct Provision {
  std::string path;
  std::string type;  // "permit", "deny" or "" (not given)
  std::optional<Period> period;
  std::vector<ProvisionActor> actors;
  std::vector<CodeableConcept> actions;
  std::vector<std::string> action_paths;
  std::vector<Coding> purposes;
  std::vector<std::string> purpose_paths;
  // The first element that narrows the data the provision covers (securityLabel,
  // class, code, dataPeriod, data); "" when none does. A class in toegang's category
  // system names a whole category instead: `categories`.
  std::string narrowing;
  std::vector<std::string> categories;
  std::vector<std::string> category_paths;
  // The extension kRecipientRoleExtension: everyone acting in this role (nullopt: none).
  std::optional<std::string> recipient_role;
  std::string recipient_role_path;
  std::vector<Provision> nested;
};

struct ConsentResource {
  std::string path;                 // "Consent" or "Bundle.entry[3].resource"
  std::string id;                   // the logical id
  // The Mitz shape: the categories of the care providers the consent is about (the
  // extension kProviderCategoryExtension, codes in kProviderCategorySystem).
  std::vector<std::string> provider_categories;
  std::vector<std::string> provider_category_paths;
  std::string version;              // meta.versionId ("" when not given)
  std::optional<absl::Time> last_updated;
  std::string status;
  CodeableConcept scope;
  std::vector<CodeableConcept> category;
  std::optional<Reference> patient;
  std::vector<Reference> performers;
  std::optional<DateTime> date_time;
  std::string source_text;          // sourceAttachment / sourceReference, as text
  std::string toegang_id;           // an identifier in kToegangIdSystem ("" when none)
  std::optional<Provision> provision;
};

// A parsed input: the Consents of a Bundle (or the one Consent), in order. A Bundle may
// also hold the Patient and Organization resources its Consents refer to by fullUrl
// (as a Mitz notification does); they only resolve those references.
struct ConsentInput {
  bool is_bundle = false;
  std::string bundle_type;
  std::vector<ConsentResource> consents;
};

// Parses `text` as one Consent or a Bundle (transaction, batch or collection) of them.
absl::StatusOr<ConsentInput> ParseConsentInput(absl::string_view text);

// Parses a FHIR dateTime (YYYY, YYYY-MM, YYYY-MM-DD, or to the second with an offset).
// The message is about the value only.
absl::StatusOr<DateTime> ParseDateTime(absl::string_view text);

}  // namespace toegang::fhir

#endif  // TOEGANG_ENGINE_FHIR_CONSENT_RESOURCE_H_
