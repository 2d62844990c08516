// Copyright toegang authors.
//
// authzen.h (internal to the sidecar): the OpenID AuthZEN Authorization API 1.0 as a
// thin facade over toegang's own request and decision (docs/authzen.md has the table).
//
//   subject  {"type":"user","id":ACTOR,"properties":{"role":ROLE,"organization":ORG?}}
//   resource {"type":"dossier","id":PATIENT,"properties":{"category":CATEGORY}}
//   action   {"name":ACTION}
//   context  {"time":INSTANT,"purpose":PURPOSE,"emergency"?,"legal_order"?,"recipient"?,"explain"?}
//
// What does not map is refused naming the AuthZEN field ("subject.properties.role: ...").
#ifndef TOEGANG_ENGINE_SIDECAR_AUTHZEN_H_
#define TOEGANG_ENGINE_SIDECAR_AUTHZEN_H_

#include <string>

#include "absl/status/statusor.h"
#include "engine/toegang.h"
#include "nlohmann/json.hpp"

namespace toegang::sidecar {

// The toegang request an AuthZEN evaluation stands for. `defaults` (the top level of an
// evaluations request, or null) fills what `item` leaves out, member by member.
absl::StatusOr<AccessRequest> AuthzenRequest(const nlohmann::json& item, const nlohmann::json* defaults);

// The decision as AuthZEN answers it: {"decision":bool,"context":{toegang's decision}}.
nlohmann::json AuthzenDecision(const EngineDecision& decided);

// For a subject search: the patient, instant, action, category and purpose of the
// request (subject.id absent; the AuthZEN subject search).
absl::StatusOr<std::pair<std::string, GrantsQuery>> AuthzenSubjectSearch(const nlohmann::json& body);

// The grants as a subject search answers them: named actors as subjects; what holds for
// anyone of a role under the context's "anyone" (never a silently shorter list).
nlohmann::json AuthzenSubjects(const GrantsAnswer& answer);

// For a resource search: the listing it asks for — the request without resource.id
// (ignored if given, as the spec says), page.limit as the page size (default 100, at
// most 1,000) and page.token as the cursor.
absl::StatusOr<PatientsQuery> AuthzenResourceSearch(const nlohmann::json& body);

// A page of the listing as a resource search answers it: {"page":{"next_token","count",
// "properties"},"results":[{"type":"dossier","id",...}],"context":{...}} ("page" first,
// as the spec recommends). next_token is "" only when the listing is complete.
std::string AuthzenResources(const PatientPage& page);

}  // namespace toegang::sidecar

#endif  // TOEGANG_ENGINE_SIDECAR_AUTHZEN_H_
