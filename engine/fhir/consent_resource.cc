// Copyright toegang authors.
#include "engine/fhir/consent_resource.h"

#include <algorithm>
#include <map>
#include <set>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/cord.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "model/bsn.h"
#include "model/json.h"
#include "model/status_macros.h"
#include "model/time.h"

namespace toegang::fhir {
namespace {

using json = nlohmann::json;

constexpr char kExpressionPayload[] = "toegang/fhir-expression";
constexpr char kUnsupportedPayload[] = "toegang/fhir-unsupported";

absl::Status Marked(absl::string_view expression, absl::string_view what, bool unsupported) {
  absl::Status s = absl::InvalidArgumentError(absl::StrCat(expression, expression.empty() ? "" : ": ", what));
  s.SetPayload(kExpressionPayload, absl::Cord(expression));
  if (unsupported) s.SetPayload(kUnsupportedPayload, absl::Cord("1"));
  return s;
}

// A value from the input as shown in a message: a short code-like value as it is (never
// a BSN), anything else not at all.
std::string Shown(absl::string_view value) {
  bool plain = !value.empty() && value.size() <= 64 && !ContainsBsn(value);
  for (char c : value) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '.' && c != '_') plain = false;
  }
  return plain ? absl::StrCat("'", value, "'") : "a value toegang does not know";
}


// One JSON object at a FHIRPath, read strictly: each member must be taken (read or
// explicitly ignored) before Finish, which names the first one that was not.
class Element {
 public:
  Element(const json& value, std::string path) : value_(value), path_(std::move(path)) {}

  static absl::StatusOr<Element> Of(const json& value, std::string path) {
    if (!value.is_object()) return FhirError(path, "must be a JSON object");
    if (value.empty()) return FhirError(path, "is empty (FHIR elements have content)");
    return Element(value, std::move(path));
  }

  const std::string& path() const { return path_; }
  std::string Path(absl::string_view key) const { return absl::StrCat(path_, ".", key); }

  // The member `key`, or nullptr. Marks it read.
  const json* Get(absl::string_view key) {
    taken_.insert(std::string(key));
    auto it = value_.find(std::string(key));
    return it == value_.end() ? nullptr : &*it;
  }
  void Ignore(absl::string_view key) { taken_.insert(std::string(key)); }

  // A FHIR primitive string (also code, uri, id, ...): non-empty, no surrounding
  // whitespace for codes. nullopt when absent.
  absl::StatusOr<std::optional<std::string>> String(absl::string_view key, size_t max_bytes = kMaxTextBytes) {
    const json* v = Get(key);
    if (v == nullptr) return std::optional<std::string>();
    if (!v->is_string()) return FhirError(Path(key), "must be a string");
    const std::string& s = v->get_ref<const std::string&>();
    if (s.empty()) return FhirError(Path(key), "is empty (FHIR strings have content)");
    if (s.size() > max_bytes) return FhirError(Path(key), absl::StrCat("is longer than ", max_bytes, " bytes"));
    return std::optional<std::string>(s);
  }
  absl::StatusOr<std::string> RequiredString(absl::string_view key, size_t max_bytes = kMaxTextBytes) {
    TOEGANG_ASSIGN_OR_RETURN(std::optional<std::string> s, String(key, max_bytes));
    if (!s) return FhirError(Path(key), "is required");
    return *std::move(s);
  }
  absl::StatusOr<std::optional<std::string>> Code(absl::string_view key) {
    TOEGANG_ASSIGN_OR_RETURN(std::optional<std::string> s, String(key, 256));
    if (s && (s->front() == ' ' || s->back() == ' ' || absl::StrContains(*s, "  "))) {
      return FhirError(Path(key), "is not a valid code (leading, trailing or double spaces)");
    }
    return s;
  }

  // The array `key` (each item with its path), empty when absent. FHIR arrays are
  // never empty when present.
  absl::StatusOr<std::vector<std::pair<const json*, std::string>>> Array(absl::string_view key,
                                                                          size_t max_items = 100) {
    std::vector<std::pair<const json*, std::string>> out;
    const json* v = Get(key);
    if (v == nullptr) return out;
    if (!v->is_array()) return FhirError(Path(key), "must be an array");
    if (v->empty()) return FhirError(Path(key), "is an empty array (leave the element out instead)");
    if (v->size() > max_items) return FhirError(Path(key), absl::StrCat("has more than ", max_items, " items"));
    for (size_t i = 0; i < v->size(); ++i) out.emplace_back(&(*v)[i], absl::StrCat(Path(key), "[", i, "]"));
    return out;
  }

  // Every member must have been taken. An extension on a primitive ("_status") or an
  // unknown element is refused, named.
  absl::Status Finish() const {
    for (auto it = value_.begin(); it != value_.end(); ++it) {
      if (taken_.count(it.key())) continue;
      const std::string shown = ShownKey(it.key());
      if (absl::StartsWith(it.key(), "_")) {
        return UnsupportedError(Path(shown), "extensions and ids on primitive values are not supported");
      }
      if (it.key() == "modifierExtension") {
        return UnsupportedError(Path(shown), "a modifier extension changes what the element means: not supported");
      }
      if (it.key() == "extension") {
        return UnsupportedError(Path(shown), "no extension is supported here");
      }
      return UnsupportedError(Path(shown), "is not an element toegang imports (see docs/fhir.md)");
    }
    return absl::OkStatus();
  }

 private:
  // A key as shown in a message: FHIR element names are words (an extension on a
  // primitive starts "_"); anything else — digits, a BSN — is not repeated.
  static std::string ShownKey(const std::string& key) {
    bool word = !key.empty() && key.size() <= 64;
    for (char c : key) word = word && (absl::ascii_isalpha(static_cast<unsigned char>(c)) || c == '_');
    return word ? key : "(a member whose name is not shown)";
  }

  const json& value_;
  std::string path_;
  std::set<std::string> taken_;
};

// An extension where only the one of `url` is supported: its element, the url read.
absl::StatusOr<Element> SupportedExtension(const json& v, const std::string& path, absl::string_view url) {
  TOEGANG_ASSIGN_OR_RETURN(Element x, Element::Of(v, path));
  TOEGANG_ASSIGN_OR_RETURN(std::string given, x.RequiredString("url", 1024));
  if (given != url) return UnsupportedError(x.Path("url"), absl::StrCat("no extension is supported here but ", url));
  return x;
}

absl::StatusOr<Coding> ReadCoding(const json& v, const std::string& path) {
  TOEGANG_ASSIGN_OR_RETURN(Element e, Element::Of(v, path));
  Coding c;
  TOEGANG_ASSIGN_OR_RETURN(std::optional<std::string> system, e.String("system", 1024));
  TOEGANG_ASSIGN_OR_RETURN(std::optional<std::string> code, e.Code("code"));
  e.Ignore("display");
  e.Ignore("version");
  e.Ignore("userSelected");
  if (const json* d = e.Get("display"); d != nullptr && !d->is_string()) {
    return FhirError(e.Path("display"), "must be a string");
  }
  TOEGANG_RETURN_IF_ERROR(e.Finish());
  c.system = system.value_or("");
  c.code = code.value_or("");
  return c;
}

absl::StatusOr<CodeableConcept> ReadCodeableConcept(const json& v, const std::string& path) {
  TOEGANG_ASSIGN_OR_RETURN(Element e, Element::Of(v, path));
  CodeableConcept cc;
  TOEGANG_ASSIGN_OR_RETURN(auto codings, e.Array("coding"));
  for (const auto& [item, p] : codings) {
    TOEGANG_ASSIGN_OR_RETURN(Coding c, ReadCoding(*item, p));
    cc.coding.push_back(std::move(c));
  }
  TOEGANG_ASSIGN_OR_RETURN(std::optional<std::string> text, e.String("text"));
  cc.text = text.value_or("");
  TOEGANG_RETURN_IF_ERROR(e.Finish());
  return cc;
}

absl::StatusOr<Identifier> ReadIdentifier(const json& v, const std::string& path) {
  TOEGANG_ASSIGN_OR_RETURN(Element e, Element::Of(v, path));
  Identifier id;
  TOEGANG_ASSIGN_OR_RETURN(id.system, e.RequiredString("system", 1024));
  TOEGANG_ASSIGN_OR_RETURN(id.value, e.RequiredString("value", 256));
  e.Ignore("use");
  e.Ignore("type");
  e.Ignore("period");
  e.Ignore("assigner");
  TOEGANG_RETURN_IF_ERROR(e.Finish());
  return id;
}

absl::StatusOr<Reference> ReadReference(const json& v, const std::string& path) {
  TOEGANG_ASSIGN_OR_RETURN(Element e, Element::Of(v, path));
  Reference r;
  r.path = path;
  TOEGANG_ASSIGN_OR_RETURN(std::optional<std::string> literal, e.String("reference", 1024));
  TOEGANG_ASSIGN_OR_RETURN(std::optional<std::string> type, e.String("type", 256));
  TOEGANG_ASSIGN_OR_RETURN(std::optional<std::string> display, e.String("display"));
  r.display = display.value_or("");
  if (const json* ident = e.Get("identifier"); ident != nullptr) {
    TOEGANG_ASSIGN_OR_RETURN(Identifier id, ReadIdentifier(*ident, e.Path("identifier")));
    r.identifier = std::move(id);
  }
  TOEGANG_RETURN_IF_ERROR(e.Finish());
  if (literal) {
    if (absl::StartsWith(*literal, "#")) {
      return UnsupportedError(e.Path("reference"), "a reference to a contained resource is not supported");
    }
    if (absl::StartsWith(*literal, "urn:uuid:") || absl::StartsWith(*literal, "urn:oid:")) {
      r.entry_url = *literal;  // resolved against the Bundle's entries
      r.type = type.value_or("");
      return r;
    }
    if (absl::StartsWith(*literal, "urn:")) {
      return FhirError(e.Path("reference"), "a urn: reference names a Bundle entry by urn:uuid: or urn:oid:");
    }
    if (absl::StrContains(*literal, "://")) {
      return UnsupportedError(e.Path("reference"),
                              "an absolute reference is not supported: refer to the resource by Type/id, relative to the server");
    }
    std::vector<absl::string_view> parts = absl::StrSplit(*literal, '/');
    if (parts.size() == 4 && parts[2] == "_history") parts.resize(2);
    if (parts.size() != 2 || parts[0].empty() || !absl::ascii_isupper(static_cast<unsigned char>(parts[0][0])) ||
        !IsFhirId(parts[1])) {
      return FhirError(e.Path("reference"), "is not a reference of the form Type/id");
    }
    for (char c : parts[0]) {
      if (!absl::ascii_isalpha(static_cast<unsigned char>(c))) {
        return FhirError(e.Path("reference"), "is not a reference of the form Type/id");
      }
    }
    r.type = std::string(parts[0]);
    r.id = std::string(parts[1]);
    if (type && *type != r.type) {
      return FhirError(e.Path("type"), absl::StrCat("says ", Shown(*type), " but the reference is to a ", r.type));
    }
  } else {
    if (!r.identifier) return FhirError(path, "names nothing: give reference (Type/id) or identifier");
    r.type = type.value_or("");
  }
  return r;
}

absl::StatusOr<Period> ReadPeriod(const json& v, const std::string& path) {
  TOEGANG_ASSIGN_OR_RETURN(Element e, Element::Of(v, path));
  Period p;
  p.path = path;
  for (const char* key : {"start", "end"}) {
    TOEGANG_ASSIGN_OR_RETURN(std::optional<std::string> text, e.String(key, 64));
    if (!text) continue;
    absl::StatusOr<DateTime> t = ParseDateTime(*text);
    if (!t.ok()) return FhirError(e.Path(key), t.status().message());
    (std::string(key) == "start" ? p.start : p.end) = *std::move(t);
  }
  TOEGANG_RETURN_IF_ERROR(e.Finish());
  if (p.start && p.end && p.end->end <= p.start->start) {
    return FhirError(e.Path("end"), "is before the start");
  }
  return p;
}

absl::StatusOr<Provision> ReadProvision(const json& v, const std::string& path, int depth) {
  TOEGANG_ASSIGN_OR_RETURN(Element e, Element::Of(v, path));
  Provision p;
  p.path = path;
  TOEGANG_ASSIGN_OR_RETURN(std::optional<std::string> type, e.Code("type"));
  if (type && *type != "permit" && *type != "deny") {
    return FhirError(e.Path("type"), absl::StrCat("is ", Shown(*type), "; FHIR knows permit and deny"));
  }
  p.type = type.value_or("");
  if (const json* period = e.Get("period"); period != nullptr) {
    TOEGANG_ASSIGN_OR_RETURN(Period pe, ReadPeriod(*period, e.Path("period")));
    p.period = std::move(pe);
  }
  TOEGANG_ASSIGN_OR_RETURN(auto actors, e.Array("actor"));
  for (const auto& [item, ap] : actors) {
    TOEGANG_ASSIGN_OR_RETURN(Element a, Element::Of(*item, ap));
    ProvisionActor actor;
    actor.path = ap;
    const json* role = a.Get("role");
    if (role == nullptr) return FhirError(a.Path("role"), "is required");
    TOEGANG_ASSIGN_OR_RETURN(actor.role, ReadCodeableConcept(*role, a.Path("role")));
    const json* ref = a.Get("reference");
    if (ref == nullptr) return FhirError(a.Path("reference"), "is required");
    TOEGANG_ASSIGN_OR_RETURN(actor.reference, ReadReference(*ref, a.Path("reference")));
    TOEGANG_RETURN_IF_ERROR(a.Finish());
    p.actors.push_back(std::move(actor));
  }
  TOEGANG_ASSIGN_OR_RETURN(auto actions, e.Array("action"));
  for (const auto& [item, ap] : actions) {
    TOEGANG_ASSIGN_OR_RETURN(CodeableConcept c, ReadCodeableConcept(*item, ap));
    p.actions.push_back(std::move(c));
    p.action_paths.push_back(ap);
  }
  TOEGANG_ASSIGN_OR_RETURN(auto purposes, e.Array("purpose"));
  for (const auto& [item, pp] : purposes) {
    TOEGANG_ASSIGN_OR_RETURN(Coding c, ReadCoding(*item, pp));
    p.purposes.push_back(std::move(c));
    p.purpose_paths.push_back(pp);
  }
  // What narrows the data: only whether it is there matters to the mapping, but it
  // must still be well-formed.
  TOEGANG_ASSIGN_OR_RETURN(auto classes, e.Array("class"));
  for (const auto& [item, cp] : classes) {
    TOEGANG_ASSIGN_OR_RETURN(Coding c, ReadCoding(*item, cp));
    if (c.system == kToegangCategorySystem) {
      p.categories.push_back(c.code);
      p.category_paths.push_back(cp);
    } else if (p.narrowing.empty()) {
      p.narrowing = cp;
    }
  }
  TOEGANG_ASSIGN_OR_RETURN(auto extensions, e.Array("extension"));
  for (const auto& [item, xp] : extensions) {
    TOEGANG_ASSIGN_OR_RETURN(Element x, SupportedExtension(*item, xp, kRecipientRoleExtension));
    if (p.recipient_role) return FhirError(xp, "names a recipient role a second time");
    TOEGANG_ASSIGN_OR_RETURN(std::optional<std::string> role, x.Code("valueCode"));
    if (!role) return FhirError(x.Path("valueCode"), "is required");
    TOEGANG_RETURN_IF_ERROR(x.Finish());
    p.recipient_role = *role;
    p.recipient_role_path = x.Path("valueCode");
  }
  for (const char* key : {"securityLabel", "code", "data"}) {
    TOEGANG_ASSIGN_OR_RETURN(auto items, e.Array(key));
    for (const auto& [item, ip] : items) {
      if (!item->is_object() || item->empty()) return FhirError(ip, "must be a JSON object with content");
    }
    if (!items.empty() && p.narrowing.empty()) p.narrowing = items.front().second;
  }
  if (const json* dp = e.Get("dataPeriod"); dp != nullptr) {
    TOEGANG_ASSIGN_OR_RETURN(Period unused, ReadPeriod(*dp, e.Path("dataPeriod")));
    (void)unused;
    if (p.narrowing.empty()) p.narrowing = e.Path("dataPeriod");
  }
  TOEGANG_ASSIGN_OR_RETURN(auto nested, e.Array("provision"));
  for (const auto& [item, np] : nested) {
    if (depth >= 2) {
      return UnsupportedError(np, "provisions nested deeper than one level are not supported");
    }
    TOEGANG_ASSIGN_OR_RETURN(Provision n, ReadProvision(*item, np, depth + 1));
    p.nested.push_back(std::move(n));
  }
  e.Ignore("id");
  TOEGANG_RETURN_IF_ERROR(e.Finish());
  return p;
}

// The attachment or reference the consent was taken from, as text for `evidence`: its
// title and url; the content itself (a scanned form, a signature) is not kept.
absl::StatusOr<std::string> ReadSource(Element& e) {
  std::string out;
  if (const json* a = e.Get("sourceAttachment"); a != nullptr) {
    TOEGANG_ASSIGN_OR_RETURN(Element att, Element::Of(*a, e.Path("sourceAttachment")));
    TOEGANG_ASSIGN_OR_RETURN(std::optional<std::string> title, att.String("title", 512));
    TOEGANG_ASSIGN_OR_RETURN(std::optional<std::string> url, att.String("url", 1024));
    for (const char* ignored : {"contentType", "language", "data", "size", "hash", "creation", "id"}) att.Ignore(ignored);
    TOEGANG_RETURN_IF_ERROR(att.Finish());
    out = absl::StrCat("attachment", title ? absl::StrCat(" '", *title, "'") : "", url ? absl::StrCat(" at ", *url) : "");
  }
  if (const json* r = e.Get("sourceReference"); r != nullptr) {
    TOEGANG_ASSIGN_OR_RETURN(Reference ref, ReadReference(*r, e.Path("sourceReference")));
    std::string named = !ref.id.empty()        ? absl::StrCat(ref.type, "/", ref.id)
                        : ref.identifier.has_value() ? absl::StrCat(ref.identifier->system, "|", ref.identifier->value)
                                                     : std::string("an entry of the Bundle");
    out = absl::StrCat(out, out.empty() ? "" : "; ", "source ", named);
  }
  return out;
}

absl::StatusOr<ConsentResource> ReadConsent(const json& v, const std::string& path) {
  TOEGANG_ASSIGN_OR_RETURN(Element e, Element::Of(v, path));
  ConsentResource c;
  c.path = path;
  TOEGANG_ASSIGN_OR_RETURN(std::string type, e.RequiredString("resourceType", 64));
  if (type != "Consent") {
    return UnsupportedError(e.Path("resourceType"), absl::StrCat("is ", Shown(type), "; only Consent resources are imported"));
  }
  TOEGANG_ASSIGN_OR_RETURN(std::optional<std::string> id, e.String("id", 64));
  if (!id) return FhirError(e.Path("id"), "is required: a Consent is imported under its id");
  if (!IsFhirId(*id)) return FhirError(e.Path("id"), "is not a FHIR id (1 to 64 of A-Z a-z 0-9 - .)");
  if (absl::Status s = CheckId(*id, "id"); !s.ok()) return FhirError(e.Path("id"), s.message());
  c.id = *id;
  if (const json* meta = e.Get("meta"); meta != nullptr) {
    TOEGANG_ASSIGN_OR_RETURN(Element m, Element::Of(*meta, e.Path("meta")));
    TOEGANG_ASSIGN_OR_RETURN(std::optional<std::string> version, m.String("versionId", 64));
    if (version && !IsFhirId(*version)) return FhirError(m.Path("versionId"), "is not a FHIR id");
    c.version = version.value_or("");
    TOEGANG_ASSIGN_OR_RETURN(std::optional<std::string> updated, m.String("lastUpdated", 64));
    if (updated) {
      absl::StatusOr<absl::Time> t = ParseInstant(*updated);
      if (!t.ok()) return FhirError(m.Path("lastUpdated"), t.status().message());
      c.last_updated = *t;
    }
    for (const char* ignored : {"source", "profile", "tag", "security", "id"}) m.Ignore(ignored);
    TOEGANG_RETURN_IF_ERROR(m.Finish());
  }
  if (e.Get("implicitRules") != nullptr) {
    return UnsupportedError(e.Path("implicitRules"), "implicit rules change what the resource means: not supported");
  }
  if (e.Get("contained") != nullptr) {
    return UnsupportedError(e.Path("contained"), "contained resources are not supported");
  }
  TOEGANG_ASSIGN_OR_RETURN(auto extensions, e.Array("extension"));
  for (const auto& [item, xp] : extensions) {
    TOEGANG_ASSIGN_OR_RETURN(Element x, SupportedExtension(*item, xp, kProviderCategoryExtension));
    const json* value = x.Get("valueCodeableConcept");
    if (value == nullptr) return FhirError(x.Path("valueCodeableConcept"), "is required");
    TOEGANG_ASSIGN_OR_RETURN(CodeableConcept cc, ReadCodeableConcept(*value, x.Path("valueCodeableConcept")));
    TOEGANG_RETURN_IF_ERROR(x.Finish());
    std::string code;
    for (const Coding& coding : cc.coding) {
      if (coding.system == kProviderCategorySystem && !coding.code.empty()) code = coding.code;
    }
    if (code.empty()) {
      return UnsupportedError(x.Path("valueCodeableConcept"), absl::StrCat("needs a coding in ", kProviderCategorySystem));
    }
    if (absl::Status s = CheckId(code, "code"); !s.ok()) return FhirError(x.Path("valueCodeableConcept"), s.message());
    if (std::find(c.provider_categories.begin(), c.provider_categories.end(), code) != c.provider_categories.end()) {
      return FhirError(xp, "names a provider category a second time");
    }
    c.provider_categories.push_back(code);
    c.provider_category_paths.push_back(x.Path("valueCodeableConcept"));
  }
  TOEGANG_ASSIGN_OR_RETURN(std::optional<std::string> status, e.Code("status"));
  if (!status) return FhirError(e.Path("status"), "is required");
  static const std::set<std::string> kStatuses = {"draft", "proposed", "active", "rejected", "inactive",
                                                  "entered-in-error"};
  if (!kStatuses.count(*status)) return FhirError(e.Path("status"), absl::StrCat("is not a Consent status"));
  c.status = *status;
  const json* scope = e.Get("scope");
  if (scope == nullptr) return FhirError(e.Path("scope"), "is required");
  TOEGANG_ASSIGN_OR_RETURN(c.scope, ReadCodeableConcept(*scope, e.Path("scope")));
  TOEGANG_ASSIGN_OR_RETURN(auto categories, e.Array("category"));
  for (const auto& [item, p] : categories) {
    TOEGANG_ASSIGN_OR_RETURN(CodeableConcept cc, ReadCodeableConcept(*item, p));
    c.category.push_back(std::move(cc));
  }
  if (const json* patient = e.Get("patient"); patient != nullptr) {
    TOEGANG_ASSIGN_OR_RETURN(Reference r, ReadReference(*patient, e.Path("patient")));
    c.patient = std::move(r);
  }
  TOEGANG_ASSIGN_OR_RETURN(auto performers, e.Array("performer"));
  for (const auto& [item, p] : performers) {
    TOEGANG_ASSIGN_OR_RETURN(Reference r, ReadReference(*item, p));
    c.performers.push_back(std::move(r));
  }
  TOEGANG_ASSIGN_OR_RETURN(std::optional<std::string> date_time, e.String("dateTime", 64));
  if (date_time) {
    absl::StatusOr<DateTime> t = ParseDateTime(*date_time);
    if (!t.ok()) return FhirError(e.Path("dateTime"), t.status().message());
    c.date_time = *std::move(t);
  }
  TOEGANG_ASSIGN_OR_RETURN(c.source_text, ReadSource(e));
  if (const json* provision = e.Get("provision"); provision != nullptr) {
    TOEGANG_ASSIGN_OR_RETURN(Provision p, ReadProvision(*provision, e.Path("provision"), 1));
    c.provision = std::move(p);
  }
  // Read, and not used: they describe the consent, and do not change what it permits.
  TOEGANG_ASSIGN_OR_RETURN(auto identifiers, e.Array("identifier"));
  for (const auto& [item, ip] : identifiers) {
    TOEGANG_ASSIGN_OR_RETURN(Element id_element, Element::Of(*item, ip));
    TOEGANG_ASSIGN_OR_RETURN(std::optional<std::string> system, id_element.String("system", 1024));
    TOEGANG_ASSIGN_OR_RETURN(std::optional<std::string> value, id_element.String("value", 256));
    for (const char* ignored : {"use", "type", "period", "assigner", "id"}) id_element.Ignore(ignored);
    TOEGANG_RETURN_IF_ERROR(id_element.Finish());
    if (system != kToegangIdSystem) continue;  // the sender's own identifiers: kept by the sender
    if (!value) return FhirError(id_element.Path("value"), "is required");
    if (!c.toegang_id.empty()) return FhirError(ip, "a second toegang id");
    if (absl::Status s = CheckId(*value, "value"); !s.ok()) return FhirError(id_element.Path("value"), s.message());
    c.toegang_id = *value;
  }
  for (const char* ignored : {"text", "language", "organization", "policy", "policyRule", "verification"}) {
    e.Ignore(ignored);
  }
  TOEGANG_RETURN_IF_ERROR(e.Finish());
  return c;
}

// A Patient or Organization entry of a Bundle, as far as a reference to it needs: its
// type and identifiers. The rest of the resource describes the party, and is not read;
// what could change what the identifiers mean is refused.
struct Referenced {
  std::string type;
  std::vector<Identifier> identifiers;
};

absl::StatusOr<Referenced> ReadReferenced(const json& v, const std::string& path) {
  TOEGANG_ASSIGN_OR_RETURN(Element e, Element::Of(v, path));
  Referenced r;
  TOEGANG_ASSIGN_OR_RETURN(r.type, e.RequiredString("resourceType", 64));
  for (const char* refused : {"implicitRules", "modifierExtension", "contained"}) {
    if (e.Get(refused) != nullptr) {
      return UnsupportedError(e.Path(refused), absl::StrCat(refused, " on a referred-to ", r.type, " is not supported"));
    }
  }
  TOEGANG_ASSIGN_OR_RETURN(auto identifiers, e.Array("identifier"));
  for (const auto& [item, ip] : identifiers) {
    TOEGANG_ASSIGN_OR_RETURN(Identifier id, ReadIdentifier(*item, ip));
    r.identifiers.push_back(std::move(id));
  }
  return r;
}

// Gives each reference to a Bundle entry ("urn:uuid:...") the entry's type and identifiers.
absl::Status Resolve(Reference& r, const std::map<std::string, Referenced>& entries) {
  if (r.entry_url.empty()) return absl::OkStatus();
  auto it = entries.find(r.entry_url);
  if (it == entries.end()) {
    return FhirError(r.path + ".reference", entries.empty() ? "refers to a Bundle entry, but there is no Patient or Organization entry to refer to"
                                                            : "names no Patient or Organization entry of this Bundle");
  }
  if (!r.type.empty() && r.type != it->second.type) {
    return FhirError(r.path + ".type", absl::StrCat("says ", Shown(r.type), " but the entry is a ", it->second.type));
  }
  r.type = it->second.type;
  r.entry_identifiers = it->second.identifiers;
  return absl::OkStatus();
}

absl::Status ResolveProvision(Provision& p, const std::map<std::string, Referenced>& entries) {
  for (ProvisionActor& a : p.actors) TOEGANG_RETURN_IF_ERROR(Resolve(a.reference, entries));
  for (Provision& n : p.nested) TOEGANG_RETURN_IF_ERROR(ResolveProvision(n, entries));
  return absl::OkStatus();
}

absl::Status ResolveEntries(ConsentResource& c, const std::map<std::string, Referenced>& entries) {
  if (c.patient) TOEGANG_RETURN_IF_ERROR(Resolve(*c.patient, entries));
  for (Reference& r : c.performers) TOEGANG_RETURN_IF_ERROR(Resolve(r, entries));
  if (c.provision) TOEGANG_RETURN_IF_ERROR(ResolveProvision(*c.provision, entries));
  return absl::OkStatus();
}

}  // namespace

bool IsFhirId(absl::string_view s) {
  if (s.empty() || s.size() > 64) return false;
  for (char c : s) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '.') return false;
  }
  return true;
}

absl::Status FhirError(absl::string_view expression, absl::string_view what) {
  return Marked(expression, what, false);
}

absl::Status UnsupportedError(absl::string_view expression, absl::string_view what) {
  return Marked(expression, what, true);
}

std::string FhirExpressionOf(const absl::Status& status) {
  auto p = status.GetPayload(kExpressionPayload);
  return p ? std::string(*p) : std::string();
}

bool IsUnsupported(const absl::Status& status) { return status.GetPayload(kUnsupportedPayload).has_value(); }

absl::StatusOr<DateTime> ParseDateTime(absl::string_view text) {
  auto digits = [](absl::string_view s) {
    if (s.empty()) return false;
    for (char c : s) {
      if (c < '0' || c > '9') return false;
    }
    return true;
  };
  DateTime out;
  out.text = std::string(text);
  const absl::TimeZone& zone = Amsterdam();
  int year = 0;
  if (text.size() == 4 && digits(text)) {
    year = std::stoi(std::string(text));
    if (year < 1800 || year > 2999) return absl::InvalidArgumentError("the year is outside 1800..2999");
    const absl::CivilYear y(year);
    out.start = absl::FromCivil(y, zone);
    out.end = absl::FromCivil(y + 1, zone);
    return out;
  }
  if (text.size() == 7 && digits(text.substr(0, 4)) && text[4] == '-' && digits(text.substr(5, 2))) {
    year = std::stoi(std::string(text.substr(0, 4)));
    const int month = std::stoi(std::string(text.substr(5, 2)));
    if (year < 1800 || year > 2999) return absl::InvalidArgumentError("the year is outside 1800..2999");
    if (month < 1 || month > 12) return absl::InvalidArgumentError("the month does not exist");
    const absl::CivilMonth m(year, month);
    out.start = absl::FromCivil(m, zone);
    out.end = absl::FromCivil(m + 1, zone);
    return out;
  }
  if (text.size() == 10) {
    absl::StatusOr<absl::CivilDay> day = ParseCivilDate(text);
    if (!day.ok()) return day.status();
    out.start = absl::FromCivil(*day, zone);
    out.end = absl::FromCivil(*day + 1, zone);
    return out;
  }
  absl::StatusOr<absl::Time> t = ParseInstant(text);
  if (!t.ok()) {
    return absl::InvalidArgumentError(
        "not a FHIR dateTime (YYYY, YYYY-MM, YYYY-MM-DD, or YYYY-MM-DDThh:mm:ss with an offset)");
  }
  // The unit is the last digit given: a second, or a fraction of one.
  absl::Duration unit = absl::Seconds(1);
  if (text.size() > 19 && text[19] == '.') {
    for (size_t i = 20; i < text.size() && text[i] >= '0' && text[i] <= '9'; ++i) unit /= 10;
  }
  out.has_time = true;
  out.start = *t;
  out.end = *t + unit;
  return out;
}

absl::StatusOr<ConsentInput> ParseConsentInput(absl::string_view text) {
  if (text.size() > kMaxFhirBytes) {
    return FhirError("", absl::StrCat("the input is larger than ", kMaxFhirBytes, " bytes"));
  }
  absl::StatusOr<json> parsed = ParseJsonStrict(text, kMaxFhirBytes);
  if (!parsed.ok()) return FhirError("", absl::StrCat("not JSON: ", parsed.status().message()));
  const json& root = *parsed;
  if (!root.is_object()) return FhirError("", "a FHIR resource must be a JSON object");
  auto type = root.find("resourceType");
  if (type == root.end() || !type->is_string()) return FhirError("resourceType", "is required");
  ConsentInput in;
  if (*type == "Consent") {
    TOEGANG_ASSIGN_OR_RETURN(ConsentResource c, ReadConsent(root, "Consent"));
    TOEGANG_RETURN_IF_ERROR(ResolveEntries(c, {}));
    in.consents.push_back(std::move(c));
    return in;
  }
  if (*type != "Bundle") {
    return UnsupportedError("resourceType", "only a Consent or a Bundle of Consents is imported");
  }
  in.is_bundle = true;
  TOEGANG_ASSIGN_OR_RETURN(Element b, Element::Of(root, "Bundle"));
  b.Ignore("resourceType");
  TOEGANG_ASSIGN_OR_RETURN(std::optional<std::string> bundle_type, b.Code("type"));
  if (!bundle_type) return FhirError("Bundle.type", "is required");
  if (*bundle_type != "transaction" && *bundle_type != "batch" && *bundle_type != "collection") {
    return UnsupportedError("Bundle.type", absl::StrCat("is ", Shown(*bundle_type), "; a transaction, batch or collection is imported"));
  }
  in.bundle_type = *bundle_type;
  TOEGANG_ASSIGN_OR_RETURN(auto entries, b.Array("entry", kMaxBundleEntries));
  std::set<std::string> ids;
  std::map<std::string, Referenced> entries_by_url;
  for (const auto& [item, ep] : entries) {
    TOEGANG_ASSIGN_OR_RETURN(Element entry, Element::Of(*item, ep));
    entry.Ignore("fullUrl");
    if (const json* request = entry.Get("request"); request != nullptr) {
      TOEGANG_ASSIGN_OR_RETURN(Element r, Element::Of(*request, entry.Path("request")));
      TOEGANG_ASSIGN_OR_RETURN(std::optional<std::string> method, r.Code("method"));
      if (!method) return FhirError(r.Path("method"), "is required");
      if (*method != "POST" && *method != "PUT") {
        return UnsupportedError(r.Path("method"),
                                absl::StrCat("is ", Shown(*method), "; only POST and PUT are imported (history is append-only)"));
      }
      r.Ignore("url");
      for (const char* ignored : {"ifNoneMatch", "ifModifiedSince", "ifMatch", "ifNoneExist"}) {
        if (r.Get(ignored) != nullptr) return UnsupportedError(r.Path(ignored), "conditional requests are not supported");
      }
      TOEGANG_RETURN_IF_ERROR(r.Finish());
    }
    const json* resource = entry.Get("resource");
    if (resource == nullptr) return FhirError(entry.Path("resource"), "is required");
    TOEGANG_RETURN_IF_ERROR(entry.Finish());
    std::optional<std::string> full_url;
    if (const json* u = item->find("fullUrl") != item->end() ? &(*item)["fullUrl"] : nullptr; u != nullptr) {
      if (!u->is_string() || u->get_ref<const std::string&>().empty()) {
        return FhirError(entry.Path("fullUrl"), "must be a non-empty string");
      }
      full_url = u->get<std::string>();
    }
    const json* rtype = resource->is_object() && resource->contains("resourceType") ? &(*resource)["resourceType"] : nullptr;
    if (rtype != nullptr && (*rtype == "Patient" || *rtype == "Organization")) {
      TOEGANG_ASSIGN_OR_RETURN(Referenced r, ReadReferenced(*resource, entry.Path("resource")));
      if (!full_url) return FhirError(entry.Path("fullUrl"), "is required: a Patient or Organization entry is there to be referred to");
      if (!entries_by_url.emplace(*full_url, std::move(r)).second) {
        return FhirError(entry.Path("fullUrl"), "is the fullUrl of another entry too");
      }
      continue;
    }
    TOEGANG_ASSIGN_OR_RETURN(ConsentResource c, ReadConsent(*resource, entry.Path("resource")));
    if (!ids.insert(c.id).second) {
      return UnsupportedError(c.path + ".id", absl::StrCat("Consent/", c.id, " appears twice in the Bundle"));
    }
    in.consents.push_back(std::move(c));
  }
  for (const char* ignored : {"id", "meta", "identifier", "timestamp", "total", "link"}) b.Ignore(ignored);
  TOEGANG_RETURN_IF_ERROR(b.Finish());
  for (ConsentResource& c : in.consents) TOEGANG_RETURN_IF_ERROR(ResolveEntries(c, entries_by_url));
  return in;
}

}  // namespace toegang::fhir
