// Copyright toegang authors.
//
// http_request_fuzzer: an HTTP request to the sidecar's handler — the request line,
// headers and body as a client sends them. The transport (libmicrohttpd) is not
// fuzzed here; what it hands over (method, decoded path and query, body) is, through
// the same Service::Route the server calls.
//
// Properties: every answer has a known status and (but for /metrics) a JSON body; no
// bad input is a 500 (the store here never fails); a decision that is not a 200
// answer, or that names invalid_request or an error, is never a permit; a permit has a
// legal basis; an AuthZEN true is a toegang permit; a refused POST /v1/facts stores nothing and an accepted one stores
// exactly what it says; nothing but POST /v1/facts changes the store.
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_split.h"
#include "engine/sidecar/service.h"
#include "fuzz/fuzz_support.h"
#include "model/bsn.h"
#include "nlohmann/json.hpp"

using toegang::fuzz::AsText;
using nlohmann::json;

namespace {

constexpr int kRenewEvery = 2000;  // inputs per engine: the access log and store grow

// %XX and, in queries, '+' decoded as a server does; a bad escape stays as it is.
std::string Decode(absl::string_view s, bool plus_is_space) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && absl::ascii_isxdigit(s[i + 1]) && absl::ascii_isxdigit(s[i + 2])) {
      out.push_back(static_cast<char>(std::stoi(std::string(s.substr(i + 1, 2)), nullptr, 16)));
      i += 2;
    } else if (plus_is_space && s[i] == '+') {
      out.push_back(' ');
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

// Every decision object in an answer body (one, or a batch's).
std::vector<const json*> DecisionsIn(const json& body) {
  std::vector<const json*> out;
  if (body.is_object() && body.contains("decisions") && body["decisions"].is_array()) {
    for (const json& d : body["decisions"]) out.push_back(&d);
  } else if (body.is_object() && body.contains("decision")) {
    out.push_back(&body);
  }
  return out;
}

void CheckDecisionJson(const json& d, bool answer_ok) {
  FUZZ_CHECK(d.is_object() && d.contains("decision"), "a decision without its outcome");
  const bool permit = d["decision"] == "permit";
  FUZZ_CHECK(permit || d["decision"] == "deny", "an outcome that is neither permit nor deny");
  if (!permit) return;
  FUZZ_CHECK(answer_ok, "a permit in an answer that is not a 200");
  FUZZ_CHECK(!d.contains("error"), "a permit that carries an error");
  const json& reasons = d.at("reasons");
  for (const json& r : reasons) FUZZ_CHECK(r != "invalid_request", "an invalid request was permitted");
  FUZZ_CHECK(d.contains("legal_basis") && d["legal_basis"].is_string(), "a permit without a legal basis");
}

// An AuthZEN answer, {"decision":bool,"context":{...}}: the boolean agrees with
// toegang's decision in the context, and a true one is a permit by its rules.
void CheckAuthzenAnswer(const json& a, bool answer_ok) {
  FUZZ_CHECK(a.is_object() && a.contains("decision") && a["decision"].is_boolean(),
             "an AuthZEN answer without a boolean decision");
  const json context = a.value("context", json::object());
  if (context.is_object() && context.contains("decision")) {
    CheckDecisionJson(context, answer_ok);
    FUZZ_CHECK(a["decision"].get<bool>() == (context["decision"] == "permit"), "AuthZEN and toegang disagree");
  } else {
    FUZZ_CHECK(!a["decision"].get<bool>(), "an AuthZEN true without toegang's decision");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static std::unique_ptr<toegang::Engine> engine;
  static std::unique_ptr<toegang::sidecar::Service> service;
  static int uses = 0;
  if (!engine || ++uses % kRenewEvery == 0) {
    service.reset();
    engine = toegang::fuzz::NewScenarioEngine(/*access_log=*/true);
    service = std::make_unique<toegang::sidecar::Service>(engine.get(), toegang::sidecar::Limits{},
                                                          [] { return toegang::BuiltinPolicy("wgbo-default"); });
  }

  // "METHOD TARGET VERSION\r\nheaders\r\n\r\nbody": what a transport would hand over.
  absl::string_view raw = AsText(data, size);
  size_t head_end = raw.find("\r\n\r\n");
  absl::string_view head = raw.substr(0, head_end);
  absl::string_view body = head_end == absl::string_view::npos ? "" : raw.substr(head_end + 4);
  absl::string_view request_line = head.substr(0, head.find("\r\n"));
  std::vector<absl::string_view> parts = absl::StrSplit(request_line, ' ');
  if (parts.size() < 2 || parts[0].empty() || parts[1].empty() || parts[1][0] != '/') return 0;  // the transport's 400
  absl::string_view target = parts[1];
  absl::string_view query;
  if (size_t q = target.find('?'); q != absl::string_view::npos) {
    query = target.substr(q + 1);
    target = target.substr(0, q);
  }
  const std::string path = Decode(target, false);
  std::vector<std::pair<std::string, std::string>> args;
  for (absl::string_view kv : absl::StrSplit(query, '&', absl::SkipEmpty())) {
    std::pair<absl::string_view, absl::string_view> p = absl::StrSplit(kv, absl::MaxSplits('=', 1));
    args.emplace_back(Decode(p.first, true), Decode(p.second, true));
  }
  auto arg = [&args](const char* name) -> std::string {
    for (const auto& [k, v] : args) {
      if (k == name) return v;
    }
    return "";
  };

  const uint64_t before = engine->LastSequence();
  const std::string method(parts[0]);
  toegang::sidecar::Reply reply = service->Route(method, path, body, arg, toegang::sidecar::Caller::Trusted());

  const int s = reply.status;
  FUZZ_CHECK(s == 200 || s == 201 || s == 400 || s == 404 || s == 405 || s == 413 || s == 422 || s == 503,
             "an answer with an unexpected status (a 500 means bad input reached an internal error)");
  const uint64_t after = engine->LastSequence();
  if (path == "/metrics" && s == 200) {
    FUZZ_CHECK(reply.content_type.rfind("text/plain", 0) == 0, "/metrics is not Prometheus text");
    FUZZ_CHECK(after == before, "GET /metrics changed the store");
    return 0;
  }
  json answer = json::parse(reply.body, nullptr, /*allow_exceptions=*/false);
  FUZZ_CHECK(!answer.is_discarded(), "an answer body that is not JSON");
  // The FHIR endpoints answer in FHIR's media type; routing errors (405) stay plain JSON.
  const bool fhir = reply.content_type == "application/fhir+json";
  FUZZ_CHECK(reply.content_type == "application/json" || (fhir && path.rfind("/fhir", 0) == 0),
             "a JSON answer not labelled as JSON");
  const bool outcome = fhir && answer.is_object() && answer.value("resourceType", "") == "OperationOutcome";
  if (s >= 400) {
    FUZZ_CHECK(answer.contains("error") || answer.contains("decision") || outcome, "an error answer that names no problem");
  }
  if (answer.contains("error") && answer["error"].is_string()) {
    FUZZ_CHECK(!toegang::ContainsBsn(answer["error"].get<std::string>()), "an error answer repeats a BSN (API.md)");
  }
  if (outcome) {
    for (const json& issue : answer["issue"]) {
      FUZZ_CHECK(!toegang::ContainsBsn(issue.value("diagnostics", "")), "an OperationOutcome repeats a BSN");
    }
  }

  // A page of the patients an actor may open: each one a permit with its legal basis; a
  // cursor exactly when the listing goes on.
  if (s == 200 && path.rfind("/v1/actors/", 0) == 0) {
    FUZZ_CHECK(answer.at("complete").is_boolean(), "a page that does not say whether it is the last");
    FUZZ_CHECK(answer.at("complete").get<bool>() == answer.at("cursor").is_null(), "a cursor on the last page, or none before it");
    for (const json& p : answer.at("patients")) {
      FUZZ_CHECK(p.at("legal_basis").is_string() && !p.at("rule").get<std::string>().empty(),
                 "a listed patient without the permit's rule and legal basis");
    }
  }
  if (s == 200 && path == "/access/v1/search/resource") {
    FUZZ_CHECK(answer.at("page").at("next_token").is_string(), "a resource search without page.next_token");
    FUZZ_CHECK(answer.at("page").at("count") == answer.at("results").size(), "page.count is not the results'");
  }
  if (path.rfind("/access/v1/evaluation", 0) == 0) {
    if (s == 200 && answer.contains("evaluations")) {
      for (const json& a : answer["evaluations"]) CheckAuthzenAnswer(a, true);
    } else if (s == 200) {
      CheckAuthzenAnswer(answer, true);
    }
  } else {
    for (const json* d : DecisionsIn(answer)) CheckDecisionJson(*d, s == 200);
  }

  if (method == "POST" && path == "/v1/facts") {
    if (s == 200) {
      FUZZ_CHECK(after == before + answer.at("stored").get<uint64_t>(), "stored facts and the sequence disagree");
      FUZZ_CHECK(answer.at("last_sequence").get<uint64_t>() == after, "a wrong last_sequence");
    } else {
      FUZZ_CHECK(after == before, "a refused POST /v1/facts stored something");
    }
  } else {
    FUZZ_CHECK(after == before, "a request other than POST /v1/facts changed the store");
  }
  return 0;
}
