// Copyright toegang authors.
#include "engine/sidecar/authzen.h"

#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "model/json.h"
#include "model/time.h"

namespace toegang::sidecar {
namespace {

using json = nlohmann::json;

absl::Status Bad(absl::string_view field, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", what));
}

// `key` of `item`, else of `defaults`; null when neither has it.
const json* Member(const json& item, const json* defaults, const char* key) {
  if (item.is_object() && item.contains(key)) return &item[key];
  if (defaults != nullptr && defaults->is_object() && defaults->contains(key)) return &(*defaults)[key];
  return nullptr;
}

// An object with only `allowed` members (each checked by the caller).
absl::Status OnlyMembers(const json& v, absl::string_view field, std::initializer_list<const char*> allowed) {
  if (!v.is_object()) return Bad(field, "must be an object");
  for (auto it = v.begin(); it != v.end(); ++it) {
    bool known = false;
    for (const char* a : allowed) known = known || it.key() == a;
    if (!known) {
      return Bad(field, absl::StrCat("has a member toegang does not map (expected ", absl::StrJoin(allowed, ", "), ")"));
    }
  }
  return absl::OkStatus();
}

// toegang's field names in an error, as AuthZEN names them.
std::string AuthzenField(absl::string_view message) {
  static const std::pair<const char*, const char*> kNames[] = {
      {"actor.organization", "subject.properties.organization"},
      {"actor.role", "subject.properties.role"},
      {"actor.id", "subject.id"},
      {"patient", "resource.id"},
      {"category", "resource.properties.category"},
      {"action", "action.name"},
      {"at", "context.time"},
      {"purpose", "context.purpose"},
      {"emergency", "context.emergency"},
      {"legal_order", "context.legal_order"},
      {"recipient", "context.recipient"},
      {"explain", "context.explain"},
      {"consistency", "context.consistency"},
  };
  for (const auto& [ours, theirs] : kNames) {
    if (absl::StartsWith(message, ours) && message.size() > strlen(ours) &&
        (message[strlen(ours)] == ':' || message[strlen(ours)] == '.')) {
      return absl::StrCat(theirs, message.substr(strlen(ours)));
    }
  }
  return std::string(message);
}

}  // namespace

absl::StatusOr<AccessRequest> AuthzenRequest(const json& item, const json* defaults) {
  if (!item.is_object()) return Bad("evaluation", "must be an object");
  const json* subject = Member(item, defaults, "subject");
  const json* resource = Member(item, defaults, "resource");
  const json* action = Member(item, defaults, "action");
  const json* context = Member(item, defaults, "context");
  if (subject == nullptr) return Bad("subject", "required");
  if (resource == nullptr) return Bad("resource", "required");
  if (action == nullptr) return Bad("action", "required");
  if (context == nullptr) return Bad("context", "required: it carries the time and the purpose");
  for (const auto& [v, name] : {std::pair{subject, "subject"}, std::pair{resource, "resource"}, std::pair{action, "action"}}) {
    if (!v->is_object()) return Bad(name, "must be an object");
  }
  absl::Status s = OnlyMembers(*subject, "subject", {"type", "id", "properties"});
  if (s.ok()) s = OnlyMembers(*resource, "resource", {"type", "id", "properties"});
  if (s.ok()) s = OnlyMembers(*action, "action", {"name", "properties"});
  if (s.ok()) s = OnlyMembers(*context, "context", {"time", "purpose", "emergency", "legal_order", "recipient", "explain", "consistency"});
  if (!s.ok()) return s;
  if (subject->value("type", "") != "user") return Bad("subject.type", "must be \"user\" (an actor)");
  if (resource->value("type", "") != "dossier") return Bad("resource.type", "must be \"dossier\" (a patient's)");
  if (action->contains("properties")) return Bad("action.properties", "toegang's actions have none");
  const json subject_props = subject->value("properties", json::object());
  const json resource_props = resource->value("properties", json::object());
  if (!(s = OnlyMembers(subject_props, "subject.properties", {"role", "organization"})).ok()) return s;
  if (!(s = OnlyMembers(resource_props, "resource.properties", {"category"})).ok()) return s;

  // toegang's own request, read by its own reader: the same checks as /v1/decisions.
  json actor = {{"id", subject->value("id", json())}, {"role", subject_props.value("role", json())}};
  if (subject_props.contains("organization")) actor["organization"] = subject_props["organization"];
  json req = {{"actor", actor},
              {"patient", resource->value("id", json())},
              {"category", resource_props.value("category", json())},
              {"action", action->value("name", json())},
              {"at", context->value("time", json())},
              {"purpose", context->value("purpose", json())}};
  for (const char* key : {"emergency", "legal_order", "recipient", "explain", "consistency"}) {
    if (context->contains(key)) req[key] = (*context)[key];
  }
  // What the request needs, named as AuthZEN names it.
  static const std::pair<const char*, const char*> kRequired[] = {
      {"patient", "resource.id"}, {"category", "resource.properties.category"}, {"action", "action.name"},
      {"at", "context.time"}, {"purpose", "context.purpose"}};
  for (const auto& [ours, theirs] : kRequired) {
    if (req[ours].is_null()) return Bad(theirs, "required");
  }
  if (actor["id"].is_null()) return Bad("subject.id", "required");
  if (actor["role"].is_null()) return Bad("subject.properties.role", "required (a toegang role)");
  absl::StatusOr<AccessRequest> parsed = ParseRequest(req);
  if (!parsed.ok()) return absl::InvalidArgumentError(AuthzenField(parsed.status().message()));
  return parsed;
}

json AuthzenDecision(const EngineDecision& decided) {
  return json{{"decision", decided.decision.permitted()}, {"context", json::parse(decided.Json())}};
}

absl::StatusOr<std::pair<std::string, GrantsQuery>> AuthzenSubjectSearch(const json& body) {
  if (!body.is_object()) return Bad("request", "must be an object");
  absl::Status s = OnlyMembers(body, "request", {"subject", "resource", "action", "context", "page"});
  if (!s.ok()) return s;
  const json* subject = body.contains("subject") ? &body["subject"] : nullptr;
  if (subject == nullptr) return Bad("subject", "required (its type)");
  if (!subject->is_object() || subject->value("type", "") != "user") return Bad("subject.type", "must be \"user\"");
  if (subject->contains("id")) return Bad("subject.id", "a subject search names no subject");
  json probe = body;
  probe["subject"] = {{"type", "user"}, {"id", "x"}, {"properties", {{"role", "clinician"}}}};
  probe.erase("page");
  absl::StatusOr<AccessRequest> req = AuthzenRequest(probe, nullptr);
  if (!req.ok()) return req.status();
  GrantsQuery q;
  q.at = req->at;
  q.action = req->action;
  q.category = req->category;
  q.purpose = req->purpose;
  return std::pair<std::string, GrantsQuery>(req->patient, q);
}

absl::StatusOr<PatientsQuery> AuthzenResourceSearch(const json& body) {
  if (!body.is_object()) return Bad("request", "must be an object");
  absl::Status s = OnlyMembers(body, "request", {"subject", "resource", "action", "context", "page"});
  if (!s.ok()) return s;
  PatientsQuery q;
  if (body.contains("page")) {
    const json& page = body["page"];
    if (!(s = OnlyMembers(page, "page", {"token", "limit"})).ok()) return s;
    if (page.contains("limit")) {
      const json& limit = page["limit"];
      if (!limit.is_number_integer() || limit.get<int64_t>() < 1 || limit.get<int64_t>() > 1000) {
        return Bad("page.limit", "must be an integer from 1 to 1000");
      }
      q.page_size = limit.get<size_t>();
    }
    if (page.contains("token")) {
      if (!page["token"].is_string()) return Bad("page.token", "must be the next_token of the page before");
      q.cursor = page["token"].get<std::string>();
    }
  }
  json probe = body;
  probe.erase("page");
  if (probe.contains("resource") && probe["resource"].is_object()) probe["resource"]["id"] = "x";
  absl::StatusOr<AccessRequest> req = AuthzenRequest(probe, nullptr);
  if (!req.ok()) return req.status();
  if (req->explain) return Bad("context.explain", "a search lists patients, it explains no decision");
  if (!req->at_least.empty()) return Bad("context.consistency", "a search decides on the history it starts from");
  q.request = *std::move(req);
  q.request.patient.clear();
  return q;
}

std::string AuthzenResources(const PatientPage& page) {
  json results = json::array();
  for (const ListedPatient& p : page.patients) {
    results.push_back({{"type", "dossier"},
                       {"id", p.patient},
                       {"properties", {{"rule", std::string(p.decision.rule)}}}});
  }
  json paging = {{"next_token", page.complete ? std::string() : page.cursor},
                 {"count", page.patients.size()},
                 {"properties", {{"sequence", page.sequence}, {"examined", page.examined}}}};
  json context = {{"sequence", page.sequence}, {"search", page.every_patient ? "every_patient" : "indexed"}};
  return absl::StrCat("{\"page\":", JsonText(paging), ",\"results\":", JsonText(results),
                      ",\"context\":", JsonText(context), "}");
}

json AuthzenSubjects(const GrantsAnswer& answer) {
  json results = json::array();
  json anyone = json::array();
  for (const Grant& g : answer.list.grants) {
    json props = {{"role", std::string(Name(g.who.role))}, {"rule", std::string(g.decision.rule)}};
    if (g.who.organization) props["organization"] = *g.who.organization;
    if (g.who.organization_category) props["organization_category"] = *g.who.organization_category;
    if (g.valid_until) props["valid_until"] = FormatInstant(*g.valid_until);
    if (g.who.actor) {
      results.push_back({{"type", "user"}, {"id", *g.who.actor}, {"properties", std::move(props)}});
    } else {
      anyone.push_back(std::move(props));
    }
  }
  for (const Grant& g : answer.list.conditional) {
    json props = {{"role", std::string(Name(g.who.role))}, {"rule", std::string(g.decision.rule)},
                  {"conditions", g.conditions}};
    anyone.push_back(std::move(props));
  }
  return json{{"results", std::move(results)},
              {"page", {{"next_token", ""}}},
              {"context", {{"anyone", std::move(anyone)}, {"sequence", answer.sequence}}}};
}

}  // namespace toegang::sidecar
