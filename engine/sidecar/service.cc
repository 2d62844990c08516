// Copyright toegang authors.
#include "engine/sidecar/service.h"

#include "engine/sidecar/authzen.h"

#include "engine/fhir/fhir_read.h"

#include <chrono>
#include <cstring>


#include "absl/container/inlined_vector.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "model/bsn.h"
#include "model/json.h"
#include "model/time.h"
#include "engine/fhir/fhir_read.h"
#include "engine/sidecar/wire_codec.h"

namespace toegang::sidecar {
namespace {

using nlohmann::json;

constexpr int64_t kBucketNs[] = {1000, 2000, 5000, 10000, 20000, 50000, 100000, 200000, 500000, 1000000, 5000000, 20000000};


constexpr char kFhirJson[] = "application/fhir+json";

// The pieces of an invalid request answer, as API.md shows them.
Reply InvalidRequest(absl::string_view message) { return Reply{400, InvalidRequestJson(message)}; }

// A single decision's HTTP status: 503 when this node had not applied the facts the
// request's consistency token names (a caller may retry on another node), 400 when the
// engine found the request invalid (a token that is not one of this history), as for
// one that does not parse; otherwise 200, permit or deny.
int DecisionStatus(const Decision& d) {
  if (d.reasons.size() != 1) return 200;
  if (d.reasons[0] == Reason::kReplicaBehind) return 503;
  if (d.reasons[0] == Reason::kInvalidRequest) return 400;
  return 200;
}

// An `as_of` query argument: absent is now (everything stored).
absl::StatusOr<absl::Time> AsOfArg(absl::string_view text) {
  if (text.empty()) return absl::InfiniteFuture();
  absl::StatusOr<absl::Time> t = ParseInstant(text);
  if (!t.ok()) return absl::InvalidArgumentError(absl::StrCat("as_of: ", t.status().message()));
  return t;
}

// {"<whose>":"<id>","facts":[...]}: facts with their provenance, or the store's error.
Reply FactsReply(absl::string_view whose, absl::string_view id, const absl::StatusOr<std::vector<Fact>>& facts) {
  if (!facts.ok()) return ErrorReply(500, facts.status().message());
  std::string out = absl::StrCat("{", JsonText(json(std::string(whose))), ":", JsonText(json(std::string(id))), ",\"facts\":[");
  for (size_t i = 0; i < facts->size(); ++i) {
    if (i) out += ",";
    out += FactToJson((*facts)[i], /*with_provenance=*/true);
  }
  out += "]}";
  return Reply{200, std::move(out)};
}


}  // namespace

Service::Service(Engine* engine, Limits limits, std::function<absl::StatusOr<std::shared_ptr<const Policy>>()> reload,
                 const TokenSet* tokens, FhirImportOptions fhir)
    : engine_(engine), limits_(limits), reload_(std::move(reload)), tokens_(tokens), fhir_(*engine, std::move(fhir)) {}

absl::StatusOr<Caller> Service::Authenticate(absl::string_view authorization, absl::string_view client) {
  const absl::Time now = absl::Now();
  absl::string_view token = authorization;
  // "Bearer" is case-insensitive (RFC 6750 follows RFC 7235's auth-scheme).
  if (token.size() > 7 && absl::EqualsIgnoreCase(token.substr(0, 7), "bearer ")) {
    token = absl::StripLeadingAsciiWhitespace(token.substr(7));
  } else if (!authorization.empty() && authorization.find(' ') != absl::string_view::npos) {
    token = absl::string_view();  // another scheme
  }
  std::optional<Scopes> scopes = tokens_ != nullptr && !token.empty() ? tokens_->Find(token) : std::nullopt;
  if (scopes) return Caller{true, *scopes};
  // A valid token always passes: a neighbour on the same address (every local process
  // is 127.0.0.1) flooding bad tokens must not lock the backend out. Beyond the limit
  // failures are answered 429 and counted as such, so a flood stands out on /metrics.
  const bool limited = !limiter_.Allowed(client, now);
  limiter_.Failed(client, now);
  if (limited) {
    auth_failures_[kRateLimited].fetch_add(1, std::memory_order_relaxed);
    return absl::ResourceExhaustedError("too many failed authentications from this client: wait a second");
  }
  if (token.empty()) {
    auth_failures_[kMissing].fetch_add(1, std::memory_order_relaxed);
    return absl::UnauthenticatedError("a bearer token is needed (Authorization: Bearer TOKEN)");
  }
  auth_failures_[kUnknown].fetch_add(1, std::memory_order_relaxed);
  return absl::UnauthenticatedError("the bearer token is not valid");
}

std::vector<EngineDecision> Service::DecideBatchCounted(absl::Span<const AccessRequest> requests) {
  auto start = std::chrono::steady_clock::now();
  std::vector<EngineDecision> out = engine_->DecideBatch(requests);
  // The histogram is per decision: each gets its share of the batch's time.
  const int64_t total = std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - start).count();
  for (const EngineDecision& d : out) Count(d, out.empty() ? 0 : total / static_cast<int64_t>(out.size()));
  return out;
}

void Service::Count(const EngineDecision& d, int64_t ns) {
  int bucket = 0;
  while (bucket < kBuckets && ns > kBucketNs[bucket]) ++bucket;
  latency_buckets_[bucket].fetch_add(1, std::memory_order_relaxed);
  latency_sum_ns_.fetch_add(static_cast<uint64_t>(ns), std::memory_order_relaxed);
  latency_count_.fetch_add(1, std::memory_order_relaxed);
  int reason = d.decision.reasons.empty() ? static_cast<int>(Reason::kNoApplicableRule)
                                          : static_cast<int>(d.decision.reasons[0]);
  decisions_[d.decision.permitted() ? 1 : 0][reason].fetch_add(1, std::memory_order_relaxed);
}

EngineDecision Service::DecideCounted(const AccessRequest& request) {
  auto start = std::chrono::steady_clock::now();
  EngineDecision d = engine_->Decide(request);
  Count(d, std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - start).count());
  return d;
}

Reply Service::Route(absl::string_view method, absl::string_view path, absl::string_view body,
                     absl::FunctionRef<std::string(const char* name)> arg, const Caller& caller) {
  const bool post = method == "POST";
  const bool get = method == "GET";
  if (path == "/healthz") return get ? Healthz() : ErrorReply(405, "use GET");  // for load balancers: no token
  // Who may: 401 before anything else, so that an unauthenticated caller learns nothing,
  // not even which paths exist.
  if (!caller.authenticated) return ErrorReply(401, "a bearer token is needed (Authorization: Bearer TOKEN)");
  auto needs = [&](Scope scope, bool method_ok, const char* method_name, auto&& handle) -> Reply {
    if (!method_ok) return ErrorReply(405, absl::StrCat("use ", method_name));
    if (!caller.scopes.has(scope)) {
      auth_failures_[kNoScope].fetch_add(1, std::memory_order_relaxed);
      return ErrorReply(403, absl::StrCat("this token lacks the ", ScopeName(scope), " scope"));
    }
    return handle();
  };
  if (path == "/v1/decisions") return needs(Scope::kDecide, post, "POST", [&] { return Decisions(body); });
  if (path == "/access/v1/evaluation") return needs(Scope::kDecide, post, "POST", [&] { return AuthzenEvaluation(body); });
  if (path == "/access/v1/evaluations") {
    return needs(Scope::kDecide, post, "POST", [&] { return AuthzenEvaluations(body); });
  }
  // Who may see a dossier is its history's business, not a decision's.
  if (path == "/access/v1/search/subject") {
    return needs(Scope::kReadHistory, post, "POST", [&] { return AuthzenSubjectSearch(body); });
  }
  if (path == "/access/v1/search/resource") {
    return needs(Scope::kReadHistory, post, "POST", [&] { return AuthzenResourceSearch(body); });
  }
  if (path == "/v1/facts") {
    return needs(Scope::kFactsWrite, post, "POST", [&] { return Facts(body, caller.scopes.has(Scope::kFactsImport)); });
  }
  // A FHIR Consent back-dates what it records (its dateTime becomes recorded_at): only
  // importers may. Reading consents is reading the patient's history.
  if (path == "/fhir") return needs(Scope::kFactsImport, post, "POST", [&] { return FhirImport(body); });
  if (path == "/fhir/Consent") {
    if (get) return needs(Scope::kReadHistory, get, "GET", [&] { return FhirSearch(arg); });
    return needs(Scope::kFactsImport, post, "GET or POST", [&] { return FhirImport(body); });
  }
  if (path == "/fhir/metadata") {
    return needs(Scope::kReadHistory, get, "GET", [&] { return Reply{200, CapabilityStatementJson(), kFhirJson}; });
  }
  if (absl::string_view id = path; absl::ConsumePrefix(&id, "/fhir/Consent/")) {
    const bool history = absl::ConsumeSuffix(&id, "/_history");
    return needs(Scope::kReadHistory, get, "GET", [&] { return FhirRead(id, history); });
  }
  if (path == "/metrics") return needs(Scope::kMetrics, get, "GET", [&] { return Metrics(); });
  if (path == "/v1/policy/reload") return needs(Scope::kAdmin, post, "POST", [&] { return ReloadPolicy(); });
  absl::string_view rest = path;
  if (absl::ConsumePrefix(&rest, "/v1/patients/")) {
    size_t slash = rest.find('/');
    if (slash != absl::string_view::npos && slash > 0) {
      std::string patient(rest.substr(0, slash));
      absl::string_view what = rest.substr(slash);
      if (what == "/history") {
        return needs(Scope::kReadHistory, get, "GET", [&] { return History(patient, arg("as_of")); });
      }
      if (what == "/retention") {
        return needs(Scope::kReadHistory, get, "GET", [&] { return RetentionReply(patient, arg("at")); });
      }
      if (what == "/grants") {
        return needs(Scope::kReadHistory, post, "POST", [&] { return Grants(patient, body); });
      }
      if (what == "/access-log") {
        return needs(Scope::kReadAccessLog, get, "GET",
                     [&] { return AccessLog(patient, arg("from"), arg("until")); });
      }
    }
  }
  // Which dossiers an actor may open says as much as who may open one.
  if (absl::ConsumePrefix(&rest, "/v1/actors/") && absl::ConsumeSuffix(&rest, "/patients") && !rest.empty() &&
      rest.find('/') == absl::string_view::npos) {
    std::string actor(rest);
    return needs(Scope::kReadHistory, post, "POST", [&] { return ActorPatients(actor, body); });
  }
  if (absl::ConsumePrefix(&rest, "/v1/organizations/") && absl::ConsumeSuffix(&rest, "/history") && !rest.empty()) {
    std::string organization(rest);
    return needs(Scope::kReadHistory, get, "GET", [&] { return OrganizationHistory(organization, arg("as_of")); });
  }
  return ErrorReply(404, "no such endpoint");
}

Reply Service::Decisions(absl::string_view body) {
  if (body.size() > limits_.max_body_bytes) {
    CountTransportError("body_too_large");
    return ErrorReply(413, absl::StrCat("body of ", body.size(), " bytes exceeds the limit of ", limits_.max_body_bytes));
  }
  // One request of the usual shape (most of them) is read without building a tree.
  if (std::optional<AccessRequest> usual = UsualRequestJson(body)) {
    EngineDecision d = DecideCounted(*usual);
    return Reply{200, DecisionToJson(d.decision, d.decision_id)};
  }
  absl::StatusOr<json> value = ParseJsonStrict(body, limits_.max_body_bytes);
  if (!value.ok()) {
    invalid_requests_.fetch_add(1, std::memory_order_relaxed);
    return InvalidRequest(value.status().message());
  }
  if (value->is_object() && value->contains("requests")) {
    if (value->size() != 1) {
      invalid_requests_.fetch_add(1, std::memory_order_relaxed);
      return InvalidRequest("a batch is {\"requests\":[...]} and nothing else");
    }
    const json& list = (*value)["requests"];
    if (!list.is_array()) return InvalidRequest("requests: must be an array of request objects");
    if (list.size() > limits_.max_batch) {
      CountTransportError("batch_too_large");
      return ErrorReply(413, absl::StrCat("requests: a batch holds at most ", limits_.max_batch, " requests, not ",
                                     list.size()));
    }
    // Parse all, decide the valid ones together (their access-log records share syncs),
    // answer in the order asked.
    std::vector<std::string> answers(list.size());
    std::vector<AccessRequest> valid;
    std::vector<size_t> where;
    for (size_t i = 0; i < list.size(); ++i) {
      absl::StatusOr<AccessRequest> req = ParseRequest(list[i]);
      if (!req.ok()) {
        invalid_requests_.fetch_add(1, std::memory_order_relaxed);
        answers[i] = InvalidRequestJson(absl::StrCat("requests[", i, "]: ", req.status().message()));
        continue;
      }
      valid.push_back(*std::move(req));
      where.push_back(i);
    }
    std::vector<EngineDecision> decided = DecideBatchCounted(valid);
    for (size_t k = 0; k < decided.size(); ++k) {
      answers[where[k]] = decided[k].Json();
    }
    std::string out = "{\"decisions\":[";
    for (size_t i = 0; i < answers.size(); ++i) {
      if (i) out += ",";
      out += answers[i];
    }
    out += "]}";
    return Reply{200, std::move(out)};
  }
  absl::StatusOr<AccessRequest> req = ParseRequest(*value);
  if (!req.ok()) {
    invalid_requests_.fetch_add(1, std::memory_order_relaxed);
    return InvalidRequest(req.status().message());
  }
  EngineDecision d = DecideCounted(*req);
  return Reply{DecisionStatus(d.decision), d.Json()};
}

Reply Service::Facts(absl::string_view body, bool may_import) {
  if (body.size() > limits_.max_body_bytes) {
    CountTransportError("body_too_large");
    return ErrorReply(413, absl::StrCat("body of ", body.size(), " bytes exceeds the limit of ", limits_.max_body_bytes));
  }
  absl::StatusOr<FactLines> parsed = ParseFactLines(body, limits_.max_facts);
  if (!parsed.ok()) {
    if (absl::IsResourceExhausted(parsed.status())) {
      return ErrorReply(413, absl::StrCat("at most ", limits_.max_facts, " facts per request"));
    }
    return ErrorReply(400, absl::StrCat(parsed.status().message(), " (nothing was stored)"));
  }
  std::vector<Fact>& facts = parsed->facts;
  const std::vector<int>& lines = parsed->lines;
  for (size_t i = 0; i < facts.size(); ++i) {
    if (facts[i].provenance.recorded_at && !may_import) {
      // recorded_at is how an import back-dates a fact (D19): only importers may.
      auth_failures_[kNoScope].fetch_add(1, std::memory_order_relaxed);
      return ErrorReply(403, absl::StrCat("line ", lines[i],
                                          ": recorded_at needs the facts:import scope (nothing was stored)"));
    }
  }
  const size_t count = facts.size();
  if (count == 0) return ErrorReply(400, "no facts in the body (JSON Lines, one fact per line)");
  absl::StatusOr<uint64_t> last = engine_->Record(std::move(facts));
  if (!last.ok()) {
    // The store names the fact; the caller knows the body's lines.
    const size_t n = FactPositionOf(last.status());
    std::string message = n >= 1 && n <= lines.size() ? absl::StrCat("line ", lines[n - 1], ": ", WhatAtFact(last.status()))
                                                       : std::string(last.status().message());
    if (absl::IsUnavailable(last.status())) return ErrorReply(503, message);  // says itself what was stored
    return ErrorReply(IsCallersFault(last.status()) ? 400 : 500, absl::StrCat(message, " (nothing was stored)"));
  }
  facts_written_.fetch_add(count, std::memory_order_relaxed);
  json answer{{"stored", count}, {"last_sequence", *last}};
  if (std::string token = engine_->ConsistencyToken(*last); !token.empty()) answer["token"] = token;
  return Reply{200, JsonText(answer)};
}

Reply Service::FhirImport(absl::string_view body) {
  if (body.size() > limits_.max_body_bytes) {
    CountTransportError("body_too_large");
    return ErrorReply(413, absl::StrCat("body of ", body.size(), " bytes exceeds the limit of ", limits_.max_body_bytes));
  }
  absl::StatusOr<FhirImportReport> report = fhir_.Import(body);
  if (!report.ok()) return Reply{FhirHttpStatus(report.status()), OperationOutcomeJson(report.status()), kFhirJson};
  facts_written_.fetch_add(report->stored, std::memory_order_relaxed);
  const bool created = std::any_of(report->entries.begin(), report->entries.end(), [](const FhirImportEntry& e) {
    return e.outcome == FhirImportEntry::Outcome::kStored;
  });
  return Reply{created ? 201 : 200, ImportResponseJson(*report), kFhirJson};
}

Reply Service::FhirSearch(absl::FunctionRef<std::string(const char* name)> arg) {
  absl::StatusOr<FhirConsentSearch> search = ParseFhirConsentSearch([&](const char* name) { return arg(name); });
  absl::StatusOr<std::string> bundle =
      search.ok() ? FhirConsentReader(*engine_).Search(*search, absl::Now()) : absl::StatusOr<std::string>(search.status());
  if (!bundle.ok()) return Reply{FhirHttpStatus(bundle.status()), OperationOutcomeJson(bundle.status()), kFhirJson};
  return Reply{200, *std::move(bundle), kFhirJson};
}

Reply Service::FhirRead(absl::string_view id, bool history) {
  FhirConsentReader reader(*engine_);
  absl::StatusOr<std::string> found = history ? reader.History(id, absl::Now()) : reader.Read(id, absl::Now());
  if (!found.ok()) {
    const int status = absl::IsNotFound(found.status()) ? 404 : FhirHttpStatus(found.status());
    return Reply{status, OperationOutcomeJson(found.status()), kFhirJson};
  }
  return Reply{200, *std::move(found), kFhirJson};
}

Reply Service::History(absl::string_view patient, absl::string_view as_of_text) {
  if (absl::Status s = CheckId(patient, "patient"); !s.ok()) return ErrorReply(400, s.message());
  absl::StatusOr<absl::Time> as_of = AsOfArg(as_of_text);
  if (!as_of.ok()) return ErrorReply(400, as_of.status().message());
  return FactsReply("patient", patient, engine_->History(patient, *as_of));
}

namespace {

// An AuthZEN body: JSON, within the limit; or the 400/413 that says why not.
absl::StatusOr<json> AuthzenBody(absl::string_view body, size_t limit) {
  if (body.size() > limit) return absl::ResourceExhaustedError(absl::StrCat("body of ", body.size(), " bytes exceeds the limit of ", limit));
  return ParseJsonStrict(body, limit);
}

Reply AuthzenError(const absl::Status& s) {
  return ErrorReply(absl::IsResourceExhausted(s) ? 413 : 400, s.message());
}

}  // namespace

Reply Service::AuthzenEvaluation(absl::string_view body) {
  absl::StatusOr<json> value = AuthzenBody(body, limits_.max_body_bytes);
  if (!value.ok()) return AuthzenError(value.status());
  absl::StatusOr<AccessRequest> req = AuthzenRequest(*value, nullptr);
  if (!req.ok()) {
    invalid_requests_.fetch_add(1, std::memory_order_relaxed);
    return ErrorReply(400, req.status().message());
  }
  return Reply{200, JsonText(AuthzenDecision(DecideCounted(*req)))};
}

Reply Service::AuthzenEvaluations(absl::string_view body) {
  absl::StatusOr<json> value = AuthzenBody(body, limits_.max_body_bytes);
  if (!value.ok()) return AuthzenError(value.status());
  if (!value->is_object()) return ErrorReply(400, "the body is an object");
  if (!value->contains("evaluations")) return AuthzenEvaluation(body);  // AuthZEN: then it is one evaluation
  const json& list = (*value)["evaluations"];
  if (!list.is_array()) return ErrorReply(400, "evaluations: must be an array");
  if (list.size() > limits_.max_batch) {
    return ErrorReply(413, absl::StrCat("evaluations: at most ", limits_.max_batch, ", not ", list.size()));
  }
  std::string semantic = "execute_all";
  if (value->contains("options")) {
    const json& options = (*value)["options"];
    if (!options.is_object()) return ErrorReply(400, "options: must be an object");
    for (auto it = options.begin(); it != options.end(); ++it) {
      if (it.key() != "evaluations_semantic") return ErrorReply(400, "options: has a member toegang does not map");
      if (!it->is_string()) return ErrorReply(400, "options.evaluations_semantic: must be a string");
      semantic = it->get<std::string>();
    }
    if (semantic != "execute_all" && semantic != "deny_on_first_deny" && semantic != "permit_on_first_permit") {
      return ErrorReply(400, "options.evaluations_semantic: execute_all, deny_on_first_deny or permit_on_first_permit");
    }
  }
  json defaults = *value;
  defaults.erase("evaluations");
  defaults.erase("options");
  json answers = json::array();
  // In order, one at a time: the short-circuit semantics stop at the first deny or permit.
  for (size_t i = 0; i < list.size(); ++i) {
    absl::StatusOr<AccessRequest> req = AuthzenRequest(list[i], &defaults);
    json answer;
    if (!req.ok()) {
      invalid_requests_.fetch_add(1, std::memory_order_relaxed);
      answer = {{"decision", false}, {"context", {{"error", absl::StrCat("evaluations[", i, "].", req.status().message())}}}};
    } else {
      answer = AuthzenDecision(DecideCounted(*req));
    }
    const bool permitted = answer["decision"].get<bool>();
    answers.push_back(std::move(answer));
    if ((semantic == "deny_on_first_deny" && !permitted) || (semantic == "permit_on_first_permit" && permitted)) break;
  }
  return Reply{200, JsonText(json{{"evaluations", std::move(answers)}})};
}

Reply Service::AuthzenSubjectSearch(absl::string_view body) {
  absl::StatusOr<json> value = AuthzenBody(body, limits_.max_body_bytes);
  if (!value.ok()) return AuthzenError(value.status());
  absl::StatusOr<std::pair<std::string, GrantsQuery>> search = sidecar::AuthzenSubjectSearch(*value);
  if (!search.ok()) return ErrorReply(400, search.status().message());
  absl::StatusOr<GrantsAnswer> answer = engine_->Grants(search->first, search->second);
  if (!answer.ok()) return ErrorReply(500, answer.status().message());
  return Reply{200, JsonText(AuthzenSubjects(*answer))};
}

Reply Service::AuthzenResourceSearch(absl::string_view body) {
  absl::StatusOr<json> value = AuthzenBody(body, limits_.max_body_bytes);
  if (!value.ok()) return AuthzenError(value.status());
  absl::StatusOr<PatientsQuery> query = sidecar::AuthzenResourceSearch(*value);
  if (!query.ok()) return ErrorReply(400, query.status().message());
  return PatientsPage(*query, /*authzen=*/true);
}

Reply Service::ActorPatients(absl::string_view actor, absl::string_view body) {
  if (body.size() > limits_.max_body_bytes) return ErrorReply(413, "body too large");
  absl::StatusOr<json> value = ParseJsonStrict(body, limits_.max_body_bytes);
  if (!value.ok()) return ErrorReply(400, value.status().message());
  if (!value->is_object()) {
    return ErrorReply(400, "the body is an object: {\"at\",\"role\",\"organization\",\"action\",\"category\","
                           "\"purpose\",\"page_size\",\"cursor\"}");
  }
  PatientsQuery query;
  if (const auto it = value->find("page_size"); it != value->end()) {
    if (!it->is_number_integer() || it->get<int64_t>() < 1 || it->get<int64_t>() > 1000) {
      return ErrorReply(400, "page_size: must be an integer from 1 to 1000");
    }
    query.page_size = it->get<size_t>();
  }
  if (const auto it = value->find("cursor"); it != value->end() && !it->is_null()) {
    if (!it->is_string()) return ErrorReply(400, "cursor: must be the cursor of the page before (a string)");
    query.cursor = it->get<std::string>();
  }
  if (const auto it = value->find("deadline_ms"); it != value->end()) {
    if (!it->is_number_integer() || it->get<int64_t>() < 1 || it->get<int64_t>() > 30000) {
      return ErrorReply(400, "deadline_ms: must be an integer from 1 to 30000");
    }
    query.deadline = absl::Milliseconds(it->get<int64_t>());
  }
  absl::StatusOr<AccessRequest> request = ParseActorRequest(*value, actor, {"page_size", "cursor", "deadline_ms"});
  if (!request.ok()) return ErrorReply(400, request.status().message());
  query.request = *std::move(request);
  return PatientsPage(query, /*authzen=*/false);
}

Reply Service::PatientsPage(const PatientsQuery& query, bool authzen) {
  absl::StatusOr<PatientPage> page = engine_->Patients(query);
  if (!page.ok()) {
    const int status = absl::IsInvalidArgument(page.status())       ? 400
                       : absl::IsFailedPrecondition(page.status()) ? 409
                                                                   : 500;
    return ErrorReply(status, page.status().message());
  }
  return Reply{200, authzen ? sidecar::AuthzenResources(*page) : page->Json()};
}

Reply Service::RetentionReply(absl::string_view patient, absl::string_view at_text) {
  if (absl::Status s = CheckId(patient, "patient"); !s.ok()) return ErrorReply(400, s.message());
  absl::Time at = absl::Now();
  if (!at_text.empty()) {
    absl::StatusOr<absl::Time> t = ParseInstant(at_text);
    if (!t.ok()) return ErrorReply(400, absl::StrCat("at: ", t.status().message()));
    at = *t;
  }
  absl::StatusOr<RetentionReport> report = engine_->Retention(patient, at);
  if (!report.ok()) {
    return ErrorReply(absl::IsFailedPrecondition(report.status()) ? 409 : 500, report.status().message());
  }
  return Reply{200, RetentionJson(*report)};
}

Reply Service::Grants(absl::string_view patient, absl::string_view body) {
  if (absl::Status s = CheckId(patient, "patient"); !s.ok()) return ErrorReply(400, s.message());
  if (body.size() > limits_.max_body_bytes) return ErrorReply(413, "body too large");
  absl::StatusOr<json> value = ParseJsonStrict(body, limits_.max_body_bytes);
  if (!value.ok()) return ErrorReply(400, value.status().message());
  if (!value->is_object()) return ErrorReply(400, "the body is an object: {\"at\",\"action\",\"category\",\"purpose\"}");
  GrantsQuery query;
  bool has_at = false;
  for (auto it = value->begin(); it != value->end(); ++it) {
    const std::string& key = it.key();
    if (key != "at" && key != "action" && key != "category" && key != "purpose") {
      return ErrorReply(400, "unknown field (expected at, action, category, purpose)");
    }
    if (!it->is_string()) return ErrorReply(400, absl::StrCat(key, ": must be a string"));
    const std::string& text = it->get_ref<const std::string&>();
    bool ok = true;
    if (key == "at") {
      absl::StatusOr<absl::Time> t = ParseInstant(text);
      if (!t.ok()) return ErrorReply(400, absl::StrCat("at: ", t.status().message()));
      query.at = *t;
      has_at = true;
    } else if (key == "action") {
      ok = ParseName(text, &query.action);
    } else if (key == "category") {
      ok = ParseName(text, &query.category);
    } else {  // purpose
      Purpose p;
      ok = ParseName(text, &p);
      query.purpose = p;
    }
    if (!ok) return ErrorReply(400, absl::StrCat(key, ": unknown ", key));
  }
  if (!has_at) return ErrorReply(400, "at: required");
  absl::StatusOr<GrantsAnswer> answer = engine_->Grants(patient, query);
  if (!answer.ok()) return ErrorReply(500, answer.status().message());
  return Reply{200, answer->Json()};
}

Reply Service::OrganizationHistory(absl::string_view organization, absl::string_view as_of_text) {
  if (absl::Status s = CheckId(organization, "organization"); !s.ok()) return ErrorReply(400, s.message());
  absl::StatusOr<absl::Time> as_of = AsOfArg(as_of_text);
  if (!as_of.ok()) return ErrorReply(400, as_of.status().message());
  return FactsReply("organization", organization, engine_->OrganizationHistory(organization, *as_of));
}

Reply Service::AccessLog(absl::string_view patient, absl::string_view from_text, absl::string_view until_text) {
  if (absl::Status s = CheckId(patient, "patient"); !s.ok()) return ErrorReply(400, s.message());
  absl::Time from = absl::InfinitePast(), until = absl::InfiniteFuture();
  for (auto [text, out, name] : {std::tuple{from_text, &from, "from"}, std::tuple{until_text, &until, "until"}}) {
    if (text.empty()) continue;
    absl::StatusOr<absl::Time> t = ParseInstant(text);
    if (!t.ok()) return ErrorReply(400, absl::StrCat(name, ": ", t.status().message()));
    *out = *t;
  }
  absl::StatusOr<PatientAccessList> list = engine_->AccessesEverywhere(patient, from, until);
  if (absl::IsFailedPrecondition(list.status())) return ErrorReply(503, "the access log is off");
  if (!list.ok()) return ErrorReply(500, list.status().message());
  json accesses = json::array();
  for (const AuditEvent& e : list->accesses) {
    json actor = {{"id", e.actor.id}, {"role", std::string(Name(e.actor.role))}};
    if (!e.actor.organization.empty()) actor["organization"] = e.actor.organization;
    json reasons = json::array();
    for (Reason r : e.reasons) reasons.push_back(std::string(Name(r)));
    json a = {{"at", FormatInstant(e.at)},      {"logged_at", FormatInstant(e.logged_at)},
              {"event_id", e.event_id},         {"actor", actor},
              {"action", std::string(Name(e.action))}, {"category", std::string(Name(e.category))},
              {"purpose", std::string(Name(e.purpose))}, {"decision", e.permitted ? "permit" : "deny"},
              {"reasons", reasons},             {"emergency", e.emergency}};
    if (e.emergency) a["justification"] = e.justification;
    accesses.push_back(std::move(a));
  }
  json answer{{"patient", std::string(patient)}, {"accesses", accesses}};
  // Several nodes: what the list could not include yet, said rather than left out.
  if (!list->missing.empty()) answer["missing"] = list->missing;
  return Reply{200, JsonText(answer)};
}

Reply Service::Healthz() {
  // A node that cannot write facts or access-log records denies every decision
  // (audit_log_unavailable) and refuses facts: a load balancer must see that.
  absl::Status health = engine_->Health();
  json body{{"status", health.ok() ? "ok" : "degraded"},
            {"policy", std::string(engine_->policy()->id())},
            {"last_sequence", engine_->LastSequence()}};
  if (!health.ok()) body["cause"] = std::string(health.message());
  if (std::optional<ReplicaStatus> r = engine_->Replication()) {
    // Decisions go on while PostgreSQL is away: "connected" tells, the status does not.
    json rep{{"history", r->history},
             {"node", r->node},
             {"applied_sequence", r->applied},
             {"newest_sequence", r->newest},
             {"lag", r->newest - r->applied},
             {"connected", r->connection.ok()}};
    if (!r->connection.ok()) rep["cause"] = std::string(r->connection.message());
    if (r->contact != absl::InfinitePast()) rep["last_contact"] = FormatInstant(r->contact);
    if (std::optional<ShippingStatus> ship = engine_->AccessLogShipping()) {
      json log{{"chain", ship->chain}, {"logged", ship->head}, {"shipped", ship->shipped},
               {"unshipped", ship->head > ship->shipped ? ship->head - ship->shipped : 0}};
      if (!ship->connection.ok()) log["cause"] = std::string(ship->connection.message());
      rep["access_log"] = std::move(log);
    }
    body["replication"] = std::move(rep);
  }
  return Reply{health.ok() ? 200 : 503, JsonText(body)};
}

Reply Service::Metrics() {
  std::string out;
  out += "# HELP toegang_decisions_total Decisions by outcome and first reason.\n";
  out += "# TYPE toegang_decisions_total counter\n";
  for (int p = 0; p < 2; ++p) {
    for (int r = 0; r < kReasons; ++r) {
      uint64_t n = decisions_[p][r].load(std::memory_order_relaxed);
      if (n == 0) continue;
      absl::StrAppend(&out, "toegang_decisions_total{outcome=\"", p ? "permit" : "deny", "\",reason=\"",
                      Name(static_cast<Reason>(r)), "\"} ", n, "\n");
    }
  }
  out += "# HELP toegang_decision_seconds Time to decide (engine, including the access log).\n";
  out += "# TYPE toegang_decision_seconds histogram\n";
  uint64_t cumulative = 0;
  for (int b = 0; b <= kBuckets; ++b) {
    cumulative += latency_buckets_[b].load(std::memory_order_relaxed);
    std::string le = b < kBuckets ? absl::StrCat(static_cast<double>(kBucketNs[b]) / 1e9) : "+Inf";
    absl::StrAppend(&out, "toegang_decision_seconds_bucket{le=\"", le, "\"} ", cumulative, "\n");
  }
  absl::StrAppend(&out, "toegang_decision_seconds_sum ",
                  static_cast<double>(latency_sum_ns_.load(std::memory_order_relaxed)) / 1e9, "\n");
  absl::StrAppend(&out, "toegang_decision_seconds_count ", latency_count_.load(std::memory_order_relaxed), "\n");
  absl::StrAppend(&out, "# TYPE toegang_facts_written_total counter\ntoegang_facts_written_total ",
                  facts_written_.load(), "\n");
  absl::StrAppend(&out, "# TYPE toegang_invalid_requests_total counter\ntoegang_invalid_requests_total ",
                  invalid_requests_.load(), "\n");
  absl::StrAppend(&out, "# TYPE toegang_transport_errors_total counter\ntoegang_transport_errors_total ",
                  transport_errors_.load(), "\n");
  absl::StrAppend(&out, "# TYPE toegang_policy_reloads_total counter\ntoegang_policy_reloads_total{result=\"ok\"} ",
                  reloads_ok_.load(), "\ntoegang_policy_reloads_total{result=\"refused\"} ", reloads_refused_.load(), "\n");
  if (std::optional<AuditStats> stats = engine_->AccessLogStats()) {
    const AuditStats& s = *stats;
    absl::StrAppend(&out, "# TYPE toegang_audit_queue_depth gauge\ntoegang_audit_queue_depth ", s.queue_depth, "\n");
    absl::StrAppend(&out, "# TYPE toegang_audit_queue_max_depth gauge\ntoegang_audit_queue_max_depth ", s.max_queue_depth, "\n");
    absl::StrAppend(&out, "# TYPE toegang_audit_records_written_total counter\ntoegang_audit_records_written_total ", s.written, "\n");
    absl::StrAppend(&out, "# TYPE toegang_audit_syncs_total counter\ntoegang_audit_syncs_total ", s.syncs, "\n");
    absl::StrAppend(&out, "# TYPE toegang_audit_waits_total counter\ntoegang_audit_waits_total ", s.waits, "\n");
    absl::StrAppend(&out, "# TYPE toegang_audit_refused_total counter\ntoegang_audit_refused_total ", s.refused, "\n");
    absl::StrAppend(&out, "# TYPE toegang_audit_write_failures_total counter\ntoegang_audit_write_failures_total ",
                    s.write_failures, "\n");
    absl::StrAppend(&out, "# TYPE toegang_audit_recoveries_total counter\ntoegang_audit_recoveries_total ",
                    s.recoveries, "\n");
  }
  absl::StrAppend(&out, "# HELP toegang_bsn_redactions_total BSN-like numbers replaced by [bsn] in free text.\n",
                  "# TYPE toegang_bsn_redactions_total counter\ntoegang_bsn_redactions_total ", BsnRedactions(), "\n");
  absl::StrAppend(&out, "# HELP toegang_auth_failures_total Refused callers, by why.\n",
                  "# TYPE toegang_auth_failures_total counter\n");
  const char* kAuthFailureNames[kAuthFailures] = {"missing_token", "unknown_token", "rate_limited", "missing_scope",
                                                  "peer_not_allowed"};
  for (int i = 0; i < kAuthFailures; ++i) {
    absl::StrAppend(&out, "toegang_auth_failures_total{reason=\"", kAuthFailureNames[i], "\"} ",
                    auth_failures_[i].load(std::memory_order_relaxed), "\n");
  }
  absl::StrAppend(&out, "# HELP toegang_healthy 1 while the store and the access log can write (see /healthz)\n",
                  "# TYPE toegang_healthy gauge\ntoegang_healthy ", engine_->Health().ok() ? 1 : 0, "\n");
  absl::StrAppend(&out, "# TYPE toegang_store_last_sequence gauge\ntoegang_store_last_sequence ",
                  engine_->LastSequence(), "\n");
  if (std::optional<ReplicaStatus> r = engine_->Replication()) {
    absl::StrAppend(&out, "# HELP toegang_replica_applied_sequence The last sequence of the history applied here.\n",
                    "# TYPE toegang_replica_applied_sequence gauge\ntoegang_replica_applied_sequence ", r->applied, "\n");
    absl::StrAppend(&out, "# HELP toegang_replica_lag Facts PostgreSQL holds that this node has not applied.\n",
                    "# TYPE toegang_replica_lag gauge\ntoegang_replica_lag ", r->newest - r->applied, "\n");
    absl::StrAppend(&out, "# TYPE toegang_replica_connected gauge\ntoegang_replica_connected ",
                    r->connection.ok() ? 1 : 0, "\n");
    if (std::optional<ShippingStatus> ship = engine_->AccessLogShipping()) {
      absl::StrAppend(&out, "# HELP toegang_access_log_unshipped Access-log records of this node not yet in PostgreSQL.\n",
                      "# TYPE toegang_access_log_unshipped gauge\ntoegang_access_log_unshipped ",
                      ship->head > ship->shipped ? ship->head - ship->shipped : 0, "\n");
    }
    if (r->contact != absl::InfinitePast()) {
      absl::StrAppend(&out, "# HELP toegang_replica_contact_age_seconds Since PostgreSQL last answered the applier.\n",
                      "# TYPE toegang_replica_contact_age_seconds gauge\ntoegang_replica_contact_age_seconds ",
                      absl::ToDoubleSeconds(absl::Now() - r->contact), "\n");
    }
  }
  return Reply{200, std::move(out), "text/plain; version=0.0.4"};
}

Reply Service::ReloadPolicy() {
  absl::StatusOr<std::shared_ptr<const Policy>> next = reload_();
  if (!next.ok()) {
    reloads_refused_.fetch_add(1, std::memory_order_relaxed);
    return Reply{422, JsonText(json{{"error", std::string(next.status().message())},
                                    {"policy", std::string(engine_->policy()->id())},
                                    {"reloaded", false}})};
  }
  engine_->SetPolicy(*next);
  reloads_ok_.fetch_add(1, std::memory_order_relaxed);
  return Reply{200, JsonText(json{{"policy", std::string((*next)->id())}, {"reloaded", true}})};
}

Reply ErrorReply(int status, absl::string_view message) {
  return Reply{status, JsonText(json{{"error", std::string(message)}})};
}

void Service::CountTransportError(absl::string_view) { transport_errors_.fetch_add(1, std::memory_order_relaxed); }

absl::StatusOr<Caller> Service::HelloFrame(absl::string_view frame, absl::string_view client, std::string* answer) {
  uint64_t id = 0;
  absl::StatusOr<RequestFrame> r = DecodeRequestFrame(frame, &id);
  absl::StatusOr<Caller> caller = absl::UnauthenticatedError("the first frame on a TCP connection is a hello with a token");
  if (r.ok() && r->hello) {
    caller = Authenticate(*r->hello, client);
  } else if (id != 0 || r.ok()) {
    auth_failures_[kMissing].fetch_add(1, std::memory_order_relaxed);
  }
  if (caller.ok() && !caller->scopes.has(Scope::kDecide)) {
    auth_failures_[kNoScope].fetch_add(1, std::memory_order_relaxed);
    caller = absl::PermissionDeniedError("this token lacks the decide scope");
  }
  *answer = EncodeErrorResponse(id, caller.ok() ? "" : caller.status().message());
  return caller;
}

std::string Service::DecideFrame(absl::string_view frame) {
  auto refused = [&](uint64_t id, absl::string_view message) {
    invalid_requests_.fetch_add(1, std::memory_order_relaxed);
    return EncodeErrorResponse(id, message);
  };
  if (frame.size() > limits_.max_frame_bytes) return refused(0, "frame exceeds the size limit");
  uint64_t id = 0;
  absl::StatusOr<RequestFrame> r = DecodeRequestFrame(frame, &id);
  if (!r.ok()) return refused(id, r.status().message());
  if (!r->decide) return refused(id, "decide: required field is missing");
  AccessRequest& req = *r->decide;
  // Logged and answered: no BSN in either.
  if (!req.emergency_justification.empty()) req.emergency_justification = RedactBsn(req.emergency_justification);
  if (req.legal_order) req.legal_order = RedactBsn(*req.legal_order);
  EngineDecision ed = DecideCounted(req);
  return EncodeDecisionResponse(id, ed.decision, ed.decision_id);
}

}  // namespace toegang::sidecar
