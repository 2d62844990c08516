// Copyright toegang authors.
#include "engine/fhir/consent_export.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "model/time.h"

namespace toegang::fhir {
namespace {

using json = nlohmann::json;

// A reference to the resource of `type` standing for toegang id `id`: literal when the
// id is a FHIR id, else by identifier in toegang's id system (which the import reads).
json Ref(absl::string_view type, const std::string& id) {
  if (IsFhirId(id)) return json{{"reference", absl::StrCat(type, "/", id)}};
  return json{{"type", std::string(type)}, {"identifier", {{"system", kToegangIdSystem}, {"value", id}}}};
}

// What kind of person `id` is to the patient, as a FHIR resource type.
std::string PersonType(const PatientRecord& record, const std::string& id) {
  if (id == record.patient) return "Patient";
  for (const Stored<Relationship>& r : record.relationships) {
    if (r.value.subject != id) continue;
    switch (r.value.relation) {
      case Relation::kParentWithAuthority:
      case Relation::kParentWithoutAuthority:
      case Relation::kGuardian:
      case Relation::kRepresentative:
        return "RelatedPerson";
      default:
        break;
    }
  }
  return "";
}

json CodingJson(absl::string_view system, absl::string_view code) {
  return json{{"system", std::string(system)}, {"code", std::string(code)}};
}

json Actions(ActionSet actions) {
  json out = json::array();
  for (int i = 0; i < EnumCount<Action>(); ++i) {
    const Action a = static_cast<Action>(i);
    if (!actions.Contains(a)) continue;
    switch (a) {
      case Action::kRead:
        out.push_back({{"coding", {CodingJson(kConsentActionSystem, "access")}}});
        break;
      case Action::kWrite:
        out.push_back({{"coding", {CodingJson(kConsentActionSystem, "correct")}}});
        break;
      case Action::kDisclose:
        out.push_back({{"coding", {CodingJson(kConsentActionSystem, "disclose")}}});
        break;
      default:
        out.push_back({{"coding", {CodingJson(kToegangActionSystem, Name(a))}}});
        break;
    }
  }
  return out;
}

json Purposes(PurposeSet purposes) {
  json out = json::array();
  for (int i = 0; i < EnumCount<Purpose>(); ++i) {
    const Purpose p = static_cast<Purpose>(i);
    if (!purposes.Contains(p)) continue;
    const auto known = std::find_if(std::begin(kPurposeCodes), std::end(kPurposeCodes),
                                    [&](const PurposeCode& k) { return k.purpose == p; });
    out.push_back(known != std::end(kPurposeCodes) ? CodingJson(kActReasonSystem, known->v3)
                                                   : CodingJson(kToegangPurposeSystem, Name(p)));
  }
  return out;
}

json Categories(CategorySet categories) {
  json out = json::array();
  for (int i = 0; i < EnumCount<Category>(); ++i) {
    const Category c = static_cast<Category>(i);
    if (categories.Contains(c)) out.push_back(CodingJson(kToegangCategorySystem, Name(c)));
  }
  return out;
}

// FHIR periods include their end; toegang's windows exclude `until`. The end is the
// last microsecond before it, given to the microsecond, so that the import — which
// ends a period one unit of its precision after its end — gives `until` back exactly.
json PeriodOf(const Window& w) {
  json p = json::object();
  if (w.from != absl::InfinitePast()) p["start"] = FormatInstant(w.from);
  if (w.until != absl::InfiniteFuture()) {
    p["end"] = absl::FormatTime("%Y-%m-%d%ET%H:%M:%E6SZ", w.until - absl::Microseconds(1), absl::UTCTimeZone());
  }
  return p;
}

// The recipient of a provision: an actor, an organisation, (an extension) a role, or
// (Mitz's extension on the Consent) the category of the provider asking.
void AddRecipient(const PatientRecord& record, const std::optional<Party>& to, json* resource, json* provision) {
  if (!to) return;
  const json participation = {{"coding", {CodingJson("http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "IRCP")}}};
  switch (to->kind) {
    case Party::Kind::kActor: {
      std::string type = PersonType(record, to->id);
      (*provision)["actor"] = json::array({{{"role", participation}, {"reference", Ref(type.empty() ? "Practitioner" : type, to->id)}}});
      break;
    }
    case Party::Kind::kOrganization:
      (*provision)["actor"] = json::array({{{"role", participation}, {"reference", Ref("Organization", to->id)}}});
      break;
    case Party::Kind::kRole:
      (*provision)["extension"] = json::array({{{"url", kRecipientRoleExtension}, {"valueCode", Name(to->role)}}});
      break;
    case Party::Kind::kOrganizationCategory:
      (*resource)["extension"] = json::array(
          {{{"url", kProviderCategoryExtension},
            {"valueCodeableConcept", {{"coding", {CodingJson(kProviderCategorySystem, to->id)}}}}}});
      break;
  }
}

// When a withdrawal ends what it withdraws (D21, D35): a consent at its `at`; an
// objection, whose end gives access back, not before the withdrawal was recorded.
absl::Time EndsAt(const Fact& withdrawn, const Fact& withdrawal) {
  const auto& w = std::get<Withdrawal>(withdrawal.body);
  if (std::holds_alternative<Consent>(withdrawn.body)) return w.at;
  return std::max(w.at, withdrawal.provenance.RecordedInstant());
}

}  // namespace

std::optional<std::string> FhirIdOf(absl::string_view id) {
  if (IsFhirId(id) && !absl::StartsWith(id, "x.")) return std::string(id);
  std::string out = "x.";
  for (char c : id) {
    if (absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '-') {
      out.push_back(c);
    } else {
      absl::StrAppendFormat(&out, ".%02X", static_cast<unsigned char>(c));
    }
  }
  if (out.size() > 64) return std::nullopt;
  return out;
}

std::optional<std::string> ToegangIdOf(absl::string_view fhir_id) {
  if (!IsFhirId(fhir_id)) return std::nullopt;
  if (!absl::StartsWith(fhir_id, "x.")) return std::string(fhir_id);
  std::string out;
  for (size_t i = 2; i < fhir_id.size(); ++i) {
    const char c = fhir_id[i];
    if (c != '.') {
      out.push_back(c);
      continue;
    }
    if (i + 2 >= fhir_id.size()) return std::nullopt;
    int value = 0;
    for (size_t k = i + 1; k <= i + 2; ++k) {
      const char h = fhir_id[k];
      if (!absl::ascii_isxdigit(static_cast<unsigned char>(h)) || absl::ascii_islower(static_cast<unsigned char>(h))) {
        return std::nullopt;
      }
      value = value * 16 + (absl::ascii_isdigit(static_cast<unsigned char>(h)) ? h - '0' : h - 'A' + 10);
    }
    out.push_back(static_cast<char>(value));
    i += 2;
  }
  // Only what FhirIdOf gives: the same id back, escaped the same way.
  if (out.empty() || FhirIdOf(out) != std::string(fhir_id)) return std::nullopt;
  return out;
}

json ConsentResourceOf(const PatientRecord& record, const Fact& fact, const Fact* withdrawal, absl::Time at) {
  const bool is_consent = std::holds_alternative<Consent>(fact.body);
  const std::string& id = FactId(fact.body);
  const Window& window = is_consent ? std::get<Consent>(fact.body).window : std::get<Objection>(fact.body).window;
  // The version shown is the one in force at `at`: a withdrawal that ends the fact only
  // later is not part of it yet.
  const std::optional<absl::Time> ended_at =
      withdrawal != nullptr && EndsAt(fact, *withdrawal) <= at ? std::optional<absl::Time>(EndsAt(fact, *withdrawal))
                                                                : std::nullopt;
  const bool ended = ended_at.has_value() || at >= window.until;

  json meta = {{"versionId", std::to_string(ended_at ? withdrawal->provenance.seq : fact.provenance.seq)}};
  // An inactive version's lastUpdated is when the fact stopped counting: the import reads
  // it as the withdrawal's instant, so the export imports back to the same history.
  if (ended_at) {
    meta["lastUpdated"] = FormatInstant(*ended_at);
  } else if (fact.provenance.arrival != absl::InfinitePast()) {
    meta["lastUpdated"] = FormatInstant(fact.provenance.arrival);
  }
  json r = {{"resourceType", "Consent"},
            {"meta", std::move(meta)},
            {"identifier", json::array({{{"system", kToegangIdSystem}, {"value", id}}})},
            {"status", ended ? "inactive" : "active"},
            {"scope", {{"coding", {CodingJson(kConsentScopeSystem, "patient-privacy")}}}},
            {"category", json::array({{{"coding", {CodingJson("http://loinc.org", "59284-0")}}}})},
            {"patient", Ref("Patient", record.patient)}};
  if (std::optional<std::string> fid = FhirIdOf(id)) r["id"] = *fid;
  // A Mitz choice names its data category: the import files it under the same choice.
  if (fact.source && !fact.source->choice.empty()) {
    const std::string data_category = fact.source->choice.substr(0, fact.source->choice.find('/'));
    if (!data_category.empty()) {
      r["category"].push_back({{"coding", {CodingJson(kDataCategorySystem, data_category)}}});
    }
  }
  // A consent counts from when it was recorded (D19), an objection without `from` too
  // (D35): the instant travels as dateTime, which the import takes as recorded_at.
  if (fact.provenance.RecordedInstant() != absl::InfinitePast()) r["dateTime"] = FormatInstant(fact.provenance.RecordedInstant());
  json provision = json::object();
  if (is_consent) {
    const Consent& c = std::get<Consent>(fact.body);
    json performers = json::array();
    for (const std::string& g : c.granted_by) {
      std::string type = PersonType(record, g);
      performers.push_back(Ref(type.empty() ? "RelatedPerson" : type, g));
    }
    r["performer"] = std::move(performers);
    if (!c.evidence.empty()) r["sourceAttachment"] = {{"title", c.evidence}};
    provision["type"] = "permit";
    AddRecipient(record, c.to, &r, &provision);
    provision["action"] = Actions(c.actions);
    if (c.purposes.bits() != PurposeSet::All().bits()) provision["purpose"] = Purposes(c.purposes);
    if (c.categories.bits() != CategorySet::All().bits()) provision["class"] = Categories(c.categories);
  } else {
    const Objection& o = std::get<Objection>(fact.body);
    std::string type = PersonType(record, o.by);
    r["performer"] = json::array({Ref(type.empty() ? "RelatedPerson" : type, o.by)});
    provision["type"] = "deny";
    AddRecipient(record, o.to, &r, &provision);
    if (o.actions.bits() != ActionSet::All().bits()) provision["action"] = Actions(o.actions);
    if (o.purposes.bits() != PurposeSet::All().bits()) provision["purpose"] = Purposes(o.purposes);
    if (o.categories.bits() != CategorySet::All().bits()) provision["class"] = Categories(o.categories);
  }
  if (json period = PeriodOf(window); !period.empty()) provision["period"] = std::move(period);
  r["provision"] = std::move(provision);
  return r;
}

}  // namespace toegang::fhir
