// Copyright toegang authors.
#include "engine/fhir/fhir_read.h"

#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/strings/str_format.h"
#include "engine/fhir/consent_export.h"
#include "model/json.h"
#include "model/patient_record.h"
#include "model/status_macros.h"
#include "model/time.h"

namespace toegang {
namespace {

using json = nlohmann::json;

constexpr size_t kMaxCount = 1000;

// One consent or objection of the patient, and the withdrawal that ends it (if any).
struct Held {
  const Fact* fact;
  const Fact* withdrawal;
};

// A patient's facts as the store knew them, with the record the export reads them by.
struct PatientFacts {
  std::vector<Fact> facts;
  PatientRecord record;
  std::vector<Held> held;  // consents and objections, in store order
};

absl::StatusOr<PatientFacts> Load(Engine& engine, absl::string_view patient, absl::Time as_of) {
  PatientFacts out;
  TOEGANG_ASSIGN_OR_RETURN(out.facts, engine.History(patient, as_of));
  out.record.patient = std::string(patient);
  for (const Fact& f : out.facts) out.record.Add(f);
  for (const Fact& f : out.facts) {
    if (!std::holds_alternative<Consent>(f.body) && !std::holds_alternative<Objection>(f.body)) continue;
    const Fact* withdrawal = nullptr;
    for (const Fact& w : out.facts) {
      const auto* body = std::get_if<Withdrawal>(&w.body);
      if (body != nullptr && body->target == FactId(f.body)) {
        withdrawal = &w;  // the first: a fact is withdrawn once, and a second changes nothing
        break;
      }
    }
    out.held.push_back({&f, withdrawal});
  }
  return out;
}

// The resource id: FhirIdOf's, or for an id too long for one, a stable digest (FNV-1a;
// such a consent is found by searching, not read by id).
std::string ResourceId(const std::string& id) {
  if (std::optional<std::string> fid = fhir::FhirIdOf(id)) return *fid;
  uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : id) h = (h ^ c) * 1099511628211ULL;
  return absl::StrFormat("h-%016x", h);
}

json Resource(const PatientFacts& p, const Held& h, absl::Time at) {
  json r = fhir::ConsentResourceOf(p.record, *h.fact, h.withdrawal, at);
  r["id"] = ResourceId(FactId(h.fact->body));
  return r;
}

std::string UrlEncode(absl::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    if (absl::ascii_isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      absl::StrAppendFormat(&out, "%%%02X", c);
    }
  }
  return out;
}

// The patient and the fact a resource id names. NotFound when none.
absl::StatusOr<std::pair<std::string, std::string>> Locate(Engine& engine, absl::string_view fhir_id) {
  std::optional<std::string> id = fhir::ToegangIdOf(fhir_id);
  auto not_found = [&] {
    return absl::NotFoundError("no consent or objection has this id");  // ids are not repeated: one may be a BSN
  };
  if (!id) return not_found();
  TOEGANG_ASSIGN_OR_RETURN(std::optional<std::string> patient, engine.PatientOfFact(*id));
  if (!patient) return not_found();
  return std::make_pair(*std::move(patient), *std::move(id));
}

}  // namespace

FhirConsentReader::FhirConsentReader(Engine& engine) : engine_(engine) {}

absl::StatusOr<std::string> FhirConsentReader::Export(absl::string_view patient, absl::Time at, absl::Time as_of) const {
  TOEGANG_RETURN_IF_ERROR(CheckId(patient, "patient"));
  TOEGANG_ASSIGN_OR_RETURN(PatientFacts p, Load(engine_, patient, as_of));
  json entries = json::array();
  for (const Held& h : p.held) entries.push_back({{"resource", Resource(p, h, at)}});
  json bundle = {{"resourceType", "Bundle"}, {"type", "collection"}};
  if (!entries.empty()) bundle["entry"] = std::move(entries);  // FHIR has no empty arrays
  return JsonText(bundle);
}

absl::StatusOr<std::string> FhirConsentReader::Search(const FhirConsentSearch& q, absl::Time now) const {
  TOEGANG_RETURN_IF_ERROR(CheckId(q.patient, "patient"));
  const absl::Time at = q.at.value_or(now);
  TOEGANG_ASSIGN_OR_RETURN(PatientFacts p, Load(engine_, q.patient, at));
  std::vector<json> matches;
  for (const Held& h : p.held) {
    json r = Resource(p, h, at);
    if (q.status.empty() || r["status"] == q.status) matches.push_back(std::move(r));
  }
  auto link = [&](size_t offset) {
    std::string url = absl::StrCat("/fhir/Consent?patient=", UrlEncode(q.patient));
    if (!q.status.empty()) absl::StrAppend(&url, "&status=", q.status);
    absl::StrAppend(&url, "&_count=", q.count, "&_offset=", offset, "&_at=", UrlEncode(FormatInstant(at)));
    return url;
  };
  json links = json::array({{{"relation", "self"}, {"url", link(q.offset)}}});
  if (q.offset + q.count < matches.size()) links.push_back({{"relation", "next"}, {"url", link(q.offset + q.count)}});
  json entries = json::array();
  for (size_t i = q.offset; i < matches.size() && i < q.offset + q.count; ++i) {
    entries.push_back({{"resource", std::move(matches[i])}, {"search", {{"mode", "match"}}}});
  }
  json bundle = {{"resourceType", "Bundle"}, {"type", "searchset"}, {"total", matches.size()}, {"link", std::move(links)}};
  if (!entries.empty()) bundle["entry"] = std::move(entries);
  return JsonText(bundle);
}

absl::StatusOr<std::string> FhirConsentReader::Read(absl::string_view fhir_id, absl::Time now) const {
  TOEGANG_ASSIGN_OR_RETURN(auto located, Locate(engine_, fhir_id));
  TOEGANG_ASSIGN_OR_RETURN(PatientFacts p, Load(engine_, located.first, absl::InfiniteFuture()));
  for (const Held& h : p.held) {
    if (FactId(h.fact->body) == located.second) return JsonText(Resource(p, h, now));
  }
  return absl::NotFoundError("the fact with this id is not a consent or an objection");
}

absl::StatusOr<std::string> FhirConsentReader::History(absl::string_view fhir_id, absl::Time now) const {
  TOEGANG_ASSIGN_OR_RETURN(auto located, Locate(engine_, fhir_id));
  TOEGANG_ASSIGN_OR_RETURN(PatientFacts p, Load(engine_, located.first, absl::InfiniteFuture()));
  for (const Held& h : p.held) {
    if (FactId(h.fact->body) != located.second) continue;
    const std::string url = absl::StrCat("Consent/", ResourceId(located.second));
    json entries = json::array();
    auto add = [&](json r, bool first) {
      json response = {{"status", first ? "201 Created" : "200 OK"}};
      if (r["meta"].contains("lastUpdated")) response["lastModified"] = r["meta"]["lastUpdated"];
      entries.push_back({{"resource", std::move(r)},
                         {"request", {{"method", first ? "POST" : "PUT"}, {"url", first ? "Consent" : url}}},
                         {"response", std::move(response)}});
    };
    // Newest first: the withdrawal's version once it has ended the fact, then the fact as
    // it was when it arrived.
    const absl::Time arrived = h.fact->provenance.arrival;
    json latest = Resource(p, h, now);
    json first = Resource(p, Held{h.fact, nullptr}, arrived == absl::InfinitePast() ? now : arrived);
    if (latest["meta"]["versionId"] != first["meta"]["versionId"]) add(std::move(latest), false);
    add(std::move(first), true);
    return JsonText(json{{"resourceType", "Bundle"}, {"type", "history"}, {"total", entries.size()}, {"entry", std::move(entries)}});
  }
  return absl::NotFoundError("the fact with this id is not a consent or an objection");
}

absl::StatusOr<FhirConsentSearch> ParseFhirConsentSearch(const std::function<std::string(const char*)>& arg) {
  FhirConsentSearch q;
  std::string patient = arg("patient");
  absl::string_view p = patient;
  absl::ConsumePrefix(&p, "Patient/");
  if (p.empty()) return absl::InvalidArgumentError("patient: the search needs a patient (?patient=ID)");
  if (absl::Status s = CheckId(p, "patient"); !s.ok()) return s;
  q.patient = std::string(p);
  q.status = arg("status");
  if (!q.status.empty() && q.status != "active" && q.status != "inactive") {
    return absl::InvalidArgumentError("status: active or inactive");
  }
  if (std::string count = arg("_count"); !count.empty()) {
    if (!absl::SimpleAtoi(count, &q.count) || q.count < 1 || q.count > kMaxCount) {
      return absl::InvalidArgumentError(absl::StrCat("_count: a whole number from 1 to ", kMaxCount));
    }
  }
  if (std::string offset = arg("_offset"); !offset.empty()) {
    if (!absl::SimpleAtoi(offset, &q.offset)) return absl::InvalidArgumentError("_offset: a whole number");
  }
  if (std::string at = arg("_at"); !at.empty()) {
    absl::StatusOr<absl::Time> t = ParseInstant(at);
    if (!t.ok()) return absl::InvalidArgumentError(absl::StrCat("_at: ", t.status().message()));
    q.at = *t;
  }
  return q;
}

std::string CapabilityStatementJson() {
  const json search_params = json::array({
      {{"name", "patient"}, {"type", "reference"}, {"documentation", "required: the patient whose consents to list"}},
      {{"name", "status"}, {"type", "token"}, {"documentation", "active or inactive, at _at"}},
      {{"name", "_count"}, {"type", "number"}, {"documentation", "page size, 1 to 1000 (default 50)"}},
      {{"name", "_offset"}, {"type", "number"}, {"documentation", "matches the page skips"}},
      {{"name", "_at"}, {"type", "date"}, {"documentation", "the instant statuses are for (default: now; next links keep it)"}},
  });
  const json consent = {
      {"type", "Consent"},
      {"versioning", "versioned"},
      {"readHistory", true},
      {"updateCreate", false},
      {"interaction", json::array({{{"code", "read"}}, {{"code", "history-instance"}}, {{"code", "search-type"}}, {{"code", "create"}}})},
      {"searchParam", search_params},
      {"supportedProfile", json::array({"http://vzvz.nl/fhir/StructureDefinition/Consent-Mitz-Notify"})},
      {"documentation",
       "Consents and objections as toegang holds them; import maps a Consent to facts, and a Mitz notification's "
       "choices to consents per organisation category (docs/fhir.md)"},
  };
  return JsonText(json{
      {"resourceType", "CapabilityStatement"},
      {"status", "active"},
      {"date", "2026-12-03"},
      {"kind", "instance"},
      {"software", {{"name", "toegang"}}},
      {"implementation", {{"description", "toegang: consent and access control for Dutch health platforms"}}},
      {"fhirVersion", "4.0.1"},
      {"format", json::array({"application/fhir+json"})},
      {"rest", json::array({{{"mode", "server"},
                             {"resource", json::array({consent})},
                             {"interaction", json::array({{{"code", "transaction"}}, {{"code", "batch"}}})}}})},
  });
}

}  // namespace toegang
