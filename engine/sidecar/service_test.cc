// Copyright toegang authors.
//
// The sidecar's transport-independent core, in process. End-to-end behaviour (real
// binary, curl, the frame client) is in tests/sidecar_test.cc; this holds the cases the
// fuzzers found, at the level they were found.
#include "engine/sidecar/service.h"

#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "engine/testing/engine_factory.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "schemas/wire_generated.h"

namespace toegang::sidecar {
namespace {

using ::testing::HasSubstr;

class ServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Options options;  // in memory, access log on
    auto engine = Engine::Open(std::move(options));
    ASSERT_TRUE(engine.ok()) << engine.status();
    engine_ = *std::move(engine);
    service_ = std::make_unique<Service>(engine_.get(), Limits{}, [] { return BuiltinPolicy("wgbo-default"); });
  }

  Reply Get(absl::string_view path) {
    return service_->Route("GET", path, "", [](const char*) { return std::string(); }, Caller::Trusted());
  }

  // A decide frame for clin-1 reading pat-1, with the given free-text fields.
  static std::string Frame(absl::string_view actor, absl::string_view justification, absl::string_view legal_order) {
    flatbuffers::FlatBufferBuilder b;
    auto actor_id = b.CreateString(actor.data(), actor.size());
    auto patient = b.CreateString("pat-1");
    auto just = b.CreateString(justification.data(), justification.size());
    auto order = b.CreateString(legal_order.data(), legal_order.size());
    wire::DecideRequestBuilder d(b);
    d.add_at_us(1773133200000000);  // 2026-03-10
    d.add_actor_id(actor_id);
    d.add_actor_role(static_cast<uint8_t>(Role::kClinician));
    d.add_patient(patient);
    d.add_emergency(true);
    d.add_justification(just);
    d.add_legal_order(order);
    auto decide = d.Finish();
    wire::FinishRequestBuffer(b, wire::CreateRequest(b, 7, decide));
    return std::string(reinterpret_cast<const char*>(b.GetBufferPointer()), b.GetSize());
  }

  static const wire::Response* Answer(const std::string& bytes) {
    return flatbuffers::GetRoot<wire::Response>(bytes.data());
  }

  std::unique_ptr<Engine> engine_;
  std::unique_ptr<Service> service_;
};

// Found by http_request_fuzzer: a patient id in the path that is not UTF-8 made the
// JSON encoder throw, which took the whole sidecar down.
TEST_F(ServiceTest, PatientIdInPathThatIsNotUtf8IsABadRequest) {
  for (absl::string_view what : {"access-log", "history"}) {
    Reply r = Get(absl::StrCat("/v1/patients/pa\xC5-1/", what));
    EXPECT_EQ(r.status, 400) << what;
    EXPECT_THAT(r.body, HasSubstr("patient: an id is UTF-8 text")) << what;
  }
}

TEST_F(ServiceTest, FrameTextThatIsNotUtf8IsRefused) {
  struct Case {
    std::string actor, justification, legal_order, error;
  };
  const Case cases[] = {
      {"clin-\xFF", "bewusteloos", "", "actor.id"},
      {"clin-1", "bewust\xC0\xAF" "eloos", "", "justification: not UTF-8"},
      {"clin-1", "bewusteloos", "order-\xED\xA0\x80", "legal_order: not UTF-8"},
      {"clin-1", std::string(5000, 'x'), "", "justification: longer than 4096 bytes"},
  };
  const uint64_t logged_before = engine_->AccessLogStats()->appended;
  for (const Case& c : cases) {
    std::string answer = service_->DecideFrame(Frame(c.actor, c.justification, c.legal_order));
    const wire::Response* r = Answer(answer);
    EXPECT_EQ(r->id(), 7u);
    EXPECT_EQ(r->decision(), nullptr) << c.error;
    ASSERT_NE(r->error(), nullptr) << c.error;
    EXPECT_THAT(r->error()->str(), HasSubstr(c.error));
  }
  // Nothing was decided, so nothing reached the access log.
  EXPECT_EQ(engine_->AccessLogStats()->appended, logged_before);
  // And a valid frame still gets a decision.
  const std::string answer = service_->DecideFrame(Frame("clin-1", "bewusteloos", ""));
  const wire::Response* ok = Answer(answer);
  ASSERT_NE(ok->decision(), nullptr);
  EXPECT_EQ(ok->error(), nullptr);
}

// Frames follow the JSON rules: an actor id holding a BSN is refused without repeating
// it, and a justification has its BSN replaced before it is logged.
TEST_F(ServiceTest, FramesCarryNoBsn) {
  const std::string refused = service_->DecideFrame(Frame("bsn-111222333", "unconscious", ""));
  const wire::Response* r = Answer(refused);
  ASSERT_NE(r->error(), nullptr);
  EXPECT_THAT(r->error()->str(), HasSubstr("actor.id"));
  EXPECT_THAT(r->error()->str(), ::testing::Not(HasSubstr("111222333")));
  service_->DecideFrame(Frame("clin-9", "unconscious, BSN 111 222 333", ""));
  absl::StatusOr<std::vector<AuditEvent>> logged =
      engine_->PatientAccesses("pat-1", absl::InfinitePast(), absl::InfiniteFuture());
  ASSERT_TRUE(logged.ok());
  ASSERT_FALSE(logged->empty());
  EXPECT_EQ(logged->front().justification, "unconscious, BSN [bsn]");
  Reply history = service_->Route("GET", "/v1/patients/bsn 111 222 333/history", "",
                                  [](const char*) { return std::string(); }, Caller::Trusted());
  EXPECT_EQ(history.status, 400);
  EXPECT_THAT(history.body, ::testing::Not(HasSubstr("111")));
}

TEST_F(ServiceTest, RoutesByPathAndMethod) {
  EXPECT_EQ(Get("/healthz").status, 200);
  EXPECT_EQ(Get("/v1/decisions").status, 405);
  EXPECT_EQ(Get("/v1/patients//history").status, 404);
  EXPECT_EQ(Get("/v1/nothing").status, 404);
  EXPECT_EQ(service_->Route("POST", "/healthz", "", [](const char*) { return std::string(); }, Caller::Trusted()).status, 405);
}

}  // namespace
}  // namespace toegang::sidecar

namespace toegang::sidecar {
namespace {

// A full disk under the sidecar: decisions are denied (they cannot be logged), facts
// refused, /healthz says degraded with the cause and 503; once space is back the node
// writes again by itself and says ok.
// POST /fhir: a Bundle of FHIR Consents in, a transaction-response Bundle out; errors
// as OperationOutcomes naming the element, nothing stored.
TEST_F(ServiceTest, FhirImportAnswersInFhir) {
  const std::string consent = R"({"resourceType":"Consent","id":"con-1","meta":{"versionId":"1"},"status":"active",
    "scope":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/consentscope","code":"patient-privacy"}]},
    "patient":{"reference":"Patient/pat-1"},"performer":[{"reference":"Patient/pat-1"}],
    "provision":{"type":"permit","actor":[{"role":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v3-ParticipationType","code":"IRCP"}]},"reference":{"reference":"Practitioner/clin-9"}}],
      "purpose":[{"system":"http://terminology.hl7.org/CodeSystem/v3-ActReason","code":"TREAT"}]}})";
  const std::string bundle = absl::StrCat(R"({"resourceType":"Bundle","type":"transaction","entry":[{"resource":)", consent,
                                          R"(,"request":{"method":"POST","url":"Consent"}}]})");
  auto post = [&](absl::string_view path, absl::string_view body, Caller caller = Caller::Trusted()) {
    return service_->Route("POST", path, body, [](const char*) { return std::string(); }, caller);
  };
  Reply created = post("/fhir", bundle);
  EXPECT_EQ(created.status, 201) << created.body;
  EXPECT_EQ(created.content_type, "application/fhir+json");
  EXPECT_THAT(created.body, HasSubstr(R"("type":"transaction-response")"));
  EXPECT_THAT(created.body, HasSubstr(R"("location":"Consent/con-1/_history/1")"));
  EXPECT_THAT(created.body, HasSubstr("stored: consent con-1"));
  const uint64_t last = engine_->LastSequence();
  Reply again = post("/fhir", bundle);
  EXPECT_EQ(again.status, 200) << again.body;
  EXPECT_THAT(again.body, HasSubstr("unchanged: version 1 is already imported"));
  EXPECT_EQ(engine_->LastSequence(), last);

  Reply malformed = post("/fhir/Consent", R"({"resourceType":"Consent","id":"x","status":"active","scope":3})");
  EXPECT_EQ(malformed.status, 400) << malformed.body;
  EXPECT_THAT(malformed.body, HasSubstr(R"("resourceType":"OperationOutcome")"));
  EXPECT_THAT(malformed.body, HasSubstr(R"("expression":["Consent.scope"])"));
  std::string care_team = consent;
  care_team.replace(care_team.find("Practitioner/clin-9"), 19, "CareTeam/team-1");
  Reply unsupported = post("/fhir/Consent", care_team);
  EXPECT_EQ(unsupported.status, 422) << unsupported.body;
  EXPECT_THAT(unsupported.body, HasSubstr("Consent.provision.actor[0].reference"));
  EXPECT_EQ(engine_->LastSequence(), last);

  // A FHIR Consent back-dates what it records: facts:write alone is not enough.
  Caller writer{true, Scopes::Of(Scope::kFactsWrite)};
  EXPECT_EQ(post("/fhir", bundle, writer).status, 403);
  EXPECT_EQ(Get("/fhir").status, 405);
}

// A Mitz notification over POST /fhir (its Patient entry carries the practice's own
// number beside the BSN), an organisation's category over /v1/facts: the pharmacist
// reads by the yes; GET /v1/organizations/{id}/history shows the category.
TEST_F(ServiceTest, AMitzNotificationDecidesForTheProvidersOfItsCategory) {
  FhirImportOptions fhir;
  fhir.identifier_systems = {"https://praktijk.example/patient-id"};
  Service service(engine_.get(), Limits{}, [] { return BuiltinPolicy("wgbo-default"); }, nullptr, fhir);
  auto route = [&](absl::string_view method, absl::string_view path, absl::string_view body) {
    return service.Route(method, path, body, [](const char*) { return std::string(); }, Caller::Trusted());
  };
  ASSERT_EQ(route("POST", "/v1/facts",
                  R"({"type":"person","id":"pat-1","birth_date":"1980-01-01"})"
                  "\n"
                  R"({"type":"org_category","organization":"apotheek-1","category":"RPZAC005","from":"2026-01-01T00:00:00+01:00"})")
                .status,
            200);
  const std::string notification = R"({"resourceType":"Bundle","type":"transaction","entry":[
    {"fullUrl":"urn:uuid:c1","resource":{"resourceType":"Consent","id":"c1",
      "extension":[{"url":"http://fhir.nl/StructureDefinition/OTV-ProviderCategory","valueCodeableConcept":{"coding":[
        {"system":"http://fhir.nl/otv/CodeSystem/raadplegende-zorgaanbiedercategorie","code":"RPZAC005"}]}}],
      "status":"active","scope":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/consentscope","code":"patient-privacy"}]},
      "category":[{"coding":[{"system":"http://fhir.nl/otv/CodeSystem/gegevenscategorie","code":"GGC002"}]}],
      "patient":{"reference":"urn:uuid:p"},"dateTime":"2026-03-01T10:00:00Z",
      "provision":{"type":"permit","purpose":[{"system":"http://hl7.org/fhir/v3/ActReason","code":"TREAT"}]}}},
    {"fullUrl":"urn:uuid:p","resource":{"resourceType":"Patient","identifier":[
      {"system":"http://fhir.nl/fhir/NamingSystem/bsn","value":"900186021"},
      {"system":"https://praktijk.example/patient-id","value":"pat-1"}]}}]})";
  Reply imported = route("POST", "/fhir", notification);
  EXPECT_EQ(imported.status, 201) << imported.body;
  EXPECT_THAT(imported.body, HasSubstr("stored: consent c1"));
  EXPECT_THAT(imported.body, ::testing::Not(HasSubstr("900186021")));

  const std::string read =
      R"({"at":"2026-04-01T10:00:00+02:00","actor":{"id":"apo-1","role":"clinician","organization":"apotheek-1"},"patient":"pat-1","action":"read","category":"medical","purpose":"treatment"})";
  Reply permitted = route("POST", "/v1/decisions", read);
  EXPECT_EQ(permitted.status, 200);
  EXPECT_THAT(permitted.body, HasSubstr(R"("decision":"permit")"));
  EXPECT_THAT(permitted.body, HasSubstr(R"("consents":["c1"])"));
  std::string elsewhere = read;
  elsewhere.replace(elsewhere.find("apotheek-1"), 10, "apotheek-9");
  EXPECT_THAT(route("POST", "/v1/decisions", elsewhere).body, HasSubstr(R"("decision":"deny")"));

  Reply org = route("GET", "/v1/organizations/apotheek-1/history", "");
  EXPECT_EQ(org.status, 200) << org.body;
  EXPECT_THAT(org.body, HasSubstr(R"({"organization":"apotheek-1","facts":[{)"));
  EXPECT_THAT(org.body, HasSubstr(R"("category":"RPZAC005")"));
  Reply before = service.Route(
      "GET", "/v1/organizations/apotheek-1/history", "",
      [](const char* name) { return std::string(name) == "as_of" ? "2000-01-01T00:00:00Z" : ""; }, Caller::Trusted());
  EXPECT_THAT(before.body, HasSubstr(R"("facts":[])"));
  EXPECT_EQ(route("GET", "/v1/organizations/bsn 111 222 333/history", "").status, 400);
  EXPECT_EQ(route("GET", "/v1/organizations//history", "").status, 404);
  EXPECT_EQ(route("POST", "/v1/organizations/apotheek-1/history", "").status, 405);
  Caller no_scope{true, Scopes::Of(Scope::kFactsWrite)};
  EXPECT_EQ(service.Route("GET", "/v1/organizations/apotheek-1/history", "", [](const char*) { return std::string(); },
                          no_scope)
                .status,
            403);
}

// pat-1, an adult, treated by clin-1.
constexpr char kTreatedPatient[] =
    R"({"type":"person","id":"pat-1","birth_date":"1980-01-01"})"
    "\n"
    R"({"type":"relationship","id":"rel-1","subject":"clin-1","relation":"treating","object":"pat-1"})";

// "explain":true on a request, alone or in a batch: the same decision with how it was
// reached; without it, none (the usual request stays on its fast path).
TEST_F(ServiceTest, AnExplainedDecisionSaysHowItWasReached) {
  auto post = [&](absl::string_view path, absl::string_view body) {
    return service_->Route("POST", path, body, [](const char*) { return std::string(); }, Caller::Trusted());
  };
  ASSERT_EQ(post("/v1/facts", kTreatedPatient).status, 200);
  const std::string req =
      R"({"at":"2026-03-10T10:00:00+01:00","actor":{"id":"clin-1","role":"clinician"},"patient":"pat-1","action":"read","category":"medical","purpose":"treatment")";
  Reply plain = post("/v1/decisions", req + "}");
  EXPECT_THAT(plain.body, ::testing::Not(HasSubstr("explanation")));
  Reply one = post("/v1/decisions", req + R"(,"explain":true})");
  EXPECT_EQ(one.status, 200) << one.body;
  EXPECT_THAT(one.body, HasSubstr(R"("decision":"permit")"));
  EXPECT_THAT(one.body, HasSubstr(R"("explanation":{"policy":"wgbo-default@1")"));
  EXPECT_THAT(one.body, HasSubstr(R"({"rule":"treating_clinician","effect":"permit","outcome":"permitted"})"));
  EXPECT_THAT(one.body, HasSubstr(R"("id":"rel-1")"));
  Reply batch = post("/v1/decisions", absl::StrCat(R"({"requests":[)", req, R"(,"explain":true},)", req, "}]}"));
  EXPECT_EQ(batch.status, 200) << batch.body;
  const size_t first = batch.body.find("\"explanation\"");
  ASSERT_NE(first, std::string::npos) << batch.body;
  EXPECT_EQ(batch.body.find("\"explanation\"", first + 1), std::string::npos) << "only the first asked";
  Reply bad = post("/v1/decisions", req + R"(,"explain":1})");
  EXPECT_EQ(bad.status, 400);
  EXPECT_THAT(bad.body, HasSubstr("explain: must be true or false"));
}

// POST /v1/patients/{id}/grants: who may, each the decision /v1/decisions gives them.
TEST_F(ServiceTest, GrantsListWhoMayAndAgreeWithDecisions) {
  auto post = [&](absl::string_view path, absl::string_view body) {
    return service_->Route("POST", path, body, [](const char*) { return std::string(); }, Caller::Trusted());
  };
  ASSERT_EQ(post("/v1/facts", R"({"type":"person","id":"pat-1","birth_date":"1980-01-01"})"
                              "\n"
                              R"({"type":"relationship","id":"rel-1","subject":"clin-1","relation":"treating","object":"pat-1","until":"2026-06-01T00:00:00+02:00"})")
                .status,
            200);
  Reply grants = post("/v1/patients/pat-1/grants",
                      R"({"at":"2026-03-10T10:00:00+01:00","action":"read","category":"medical","purpose":"treatment"})");
  ASSERT_EQ(grants.status, 200) << grants.body;
  const nlohmann::json j = nlohmann::json::parse(grants.body);
  EXPECT_EQ(j["patient"], "pat-1");
  EXPECT_EQ(j["sequence"], engine_->LastSequence());
  ASSERT_EQ(j["grants"].size(), 1u) << grants.body;
  EXPECT_EQ(j["grants"][0]["actor"], "clin-1");
  EXPECT_EQ(j["grants"][0]["valid_until"], "2026-05-31T22:00:00Z");
  Reply decided = post("/v1/decisions",
                       R"({"at":"2026-03-10T10:00:00+01:00","actor":{"id":"clin-1","role":"clinician"},"patient":"pat-1","action":"read","category":"medical","purpose":"treatment"})");
  EXPECT_THAT(decided.body, HasSubstr(R"("rule":"treating_clinician")"));
  // Bad input names the field.
  EXPECT_THAT(post("/v1/patients/pat-1/grants", R"({"action":"read"})").body, HasSubstr("at: required"));
  EXPECT_THAT(post("/v1/patients/pat-1/grants", R"({"at":"2026-03-10T10:00:00+01:00","purpose":"marketing"})").body,
              HasSubstr("purpose: unknown purpose"));
  EXPECT_EQ(post("/v1/patients/pat-1/grants", R"({"at":"2026-03-10T10:00:00+01:00","colour":"red"})").status, 400);
  EXPECT_EQ(post("/v1/patients/pat-1/grants", "[]").status, 400);
  EXPECT_EQ(Get("/v1/patients/pat-1/grants").status, 405);
}

// POST /v1/actors/{id}/patients and AuthZEN's resource search: the dossiers an actor
// may open, a page at a time, each what /v1/decisions answers; bad pages named.
TEST_F(ServiceTest, PatientsAnActorMayOpenArePagedAndAgreeWithDecisions) {
  using nlohmann::json;
  auto post = [&](absl::string_view path, absl::string_view body) {
    return service_->Route("POST", path, body, [](const char*) { return std::string(); }, Caller::Trusted());
  };
  std::string facts;
  for (int i = 1; i <= 5; ++i) {
    absl::StrAppend(&facts, R"({"type":"person","id":"pat-)", i, R"(","birth_date":"1980-01-01"})", "\n");
    if (i != 3) {
      absl::StrAppend(&facts, R"({"type":"relationship","subject":"clin-1","relation":"treating","object":"pat-)", i,
                      R"("})", "\n");
    }
  }
  ASSERT_EQ(post("/v1/facts", facts).status, 200);
  const std::string ask = R"("at":"2026-03-10T10:00:00+01:00","role":"clinician","purpose":"treatment")";
  Reply first = post("/v1/actors/clin-1/patients", "{" + ask + R"(,"page_size":3})");
  ASSERT_EQ(first.status, 200) << first.body;
  json j = json::parse(first.body);
  EXPECT_EQ(j["actor"]["id"], "clin-1");
  EXPECT_EQ(j["sequence"], engine_->LastSequence());
  EXPECT_EQ(j["complete"], false);
  ASSERT_EQ(j["patients"].size(), 3u);
  EXPECT_EQ(j["patients"][2]["patient"], "pat-4");  // pat-3 is not treated
  Reply next = post("/v1/actors/clin-1/patients", "{" + ask + R"(,"page_size":3,"cursor":")" +
                                                      j["cursor"].get<std::string>() + "\"}");
  ASSERT_EQ(next.status, 200) << next.body;
  json k = json::parse(next.body);
  EXPECT_EQ(k["complete"], true);
  ASSERT_EQ(k["patients"].size(), 1u);
  EXPECT_EQ(k["patients"][0]["patient"], "pat-5");
  EXPECT_TRUE(k["cursor"].is_null());

  // The same as a resource search: page.limit and page.token.
  const std::string search = R"({
    "subject":{"type":"user","id":"clin-1","properties":{"role":"clinician"}},
    "resource":{"type":"dossier","properties":{"category":"medical"}},
    "action":{"name":"read"},
    "context":{"time":"2026-03-10T10:00:00+01:00","purpose":"treatment"})";
  Reply found = post("/access/v1/search/resource", search + R"(,"page":{"limit":2}})");
  ASSERT_EQ(found.status, 200) << found.body;
  EXPECT_EQ(found.body.rfind("{\"page\":", 0), 0u) << "page first, as AuthZEN recommends";
  json r = json::parse(found.body);
  ASSERT_EQ(r["results"].size(), 2u);
  EXPECT_EQ(r["results"][0], json::parse(R"({"type":"dossier","id":"pat-1","properties":{"rule":"treating_clinician"}})"));
  EXPECT_EQ(r["page"]["count"], 2);
  std::vector<std::string> all = {"pat-1", "pat-2"};
  for (std::string token = r["page"]["next_token"]; !token.empty();) {
    Reply more = post("/access/v1/search/resource", search + R"(,"page":{"limit":2,"token":")" + token + "\"}}");
    ASSERT_EQ(more.status, 200) << more.body;
    json m = json::parse(more.body);
    for (const json& x : m["results"]) all.push_back(x["id"]);
    token = m["page"]["next_token"];
  }
  EXPECT_EQ(all, (std::vector<std::string>{"pat-1", "pat-2", "pat-4", "pat-5"}));

  // Bad input names the field; nothing is listed.
  struct Bad {
    std::string path, body;
    const char* message;
  } bad[] = {
      {"/v1/actors/clin-1/patients", "{" + ask + R"(,"page_size":0})", "page_size: must be an integer from 1 to 1000"},
      {"/v1/actors/clin-1/patients", "{" + ask + R"(,"page_size":1001})", "page_size"},
      {"/v1/actors/clin-1/patients", "{" + ask + R"(,"page_size":"10"})", "page_size"},
      {"/v1/actors/clin-1/patients", "{" + ask + R"(,"cursor":"garbage"})", "cursor: not a cursor of this listing"},
      {"/v1/actors/clin-2/patients", "{" + ask + R"(,"cursor":")" + j["cursor"].get<std::string>() + "\"}",
       "cursor: made for another request"},
      {"/v1/actors/clin-1/patients", "{" + ask + R"(,"deadline_ms":0})", "deadline_ms"},
      {"/v1/actors/clin-1/patients", R"({"role":"clinician","purpose":"treatment"})", "at: required"},
      {"/v1/actors/clin-1/patients", R"({"at":"2026-03-10T10:00:00+01:00","purpose":"treatment"})", "role"},
      {"/v1/actors/clin-1/patients", "{" + ask + R"(,"patient":"pat-1"})", "patient"},
      {"/v1/actors/clin-1/patients", "[]", "the body is an object"},
      {"/access/v1/search/resource", search + R"(,"page":{"limit":0}})", "page.limit"},
      {"/access/v1/search/resource", search + R"(,"page":{"token":"x"}})", "cursor"},
      {"/access/v1/search/resource", search + R"(,"page":{"size":3}})", "page"},
  };
  for (const Bad& b : bad) {
    SCOPED_TRACE(b.body);
    Reply reply = post(b.path, b.body);
    EXPECT_EQ(reply.status, 400) << reply.body;
    EXPECT_THAT(reply.body, HasSubstr(b.message));
  }
  EXPECT_EQ(Get("/v1/actors/clin-1/patients").status, 405);
  Caller decide_only{true, Scopes::Of(Scope::kDecide)};
  EXPECT_EQ(service_->Route("POST", "/v1/actors/clin-1/patients", "{" + ask + "}",
                            [](const char*) { return std::string(); }, decide_only)
                .status,
            403);
  EXPECT_EQ(service_->Route("POST", "/access/v1/search/resource", search + "}",
                            [](const char*) { return std::string(); }, decide_only)
                .status,
            403);
}

// GET /v1/patients/{id}/retention: what is held and when it is due, the access log's
// records about the patient counted; an erasure request and its deadline.
TEST_F(ServiceTest, RetentionReportCountsTheAccessLog) {
  using nlohmann::json;
  auto post = [&](absl::string_view path, absl::string_view body) {
    return service_->Route("POST", path, body, [](const char*) { return std::string(); }, Caller::Trusted());
  };
  auto get = [&](absl::string_view path, std::string at) {
    return service_->Route("GET", path, "", [&](const char* name) { return std::string(name) == "at" ? at : ""; },
                           Caller::Trusted());
  };
  ASSERT_EQ(post("/v1/facts", std::string(kTreatedPatient) + "\n" +
                                  R"({"type":"erasure_request","id":"era-1","patient":"pat-1","by":"pat-1","at":"2026-03-11T09:00:00+01:00"})")
                .status,
            200);
  ASSERT_EQ(post("/v1/decisions", R"({"at":"2026-03-10T10:00:00+01:00","actor":{"id":"clin-1","role":"clinician"},"patient":"pat-1","action":"read","category":"medical","purpose":"treatment"})")
                .status,
            200);
  ASSERT_TRUE(engine_->FlushAccessLog().ok());
  Reply r = get("/v1/patients/pat-1/retention", "2026-03-12T00:00:00+01:00");
  ASSERT_EQ(r.status, 200) << r.body;
  json j = json::parse(r.body);
  EXPECT_EQ(j["patient"], "pat-1");
  EXPECT_EQ(j["facts"]["count"], 2);
  EXPECT_EQ(j["facts"]["term"], "erasure_request era-1");
  EXPECT_EQ(j["facts"]["due_now"], true);
  ASSERT_EQ(j["erasure_requests"].size(), 1u);
  EXPECT_EQ(j["erasure_requests"][0]["deadline"], "2026-06-11T07:00:00Z");
  ASSERT_EQ(j["access_log"].size(), 1u) << r.body;
  EXPECT_EQ(j["access_log"][0]["term"], "access_log_5_years");
  EXPECT_EQ(j["access_log"][0]["due_now"], false);
  EXPECT_EQ(get("/v1/patients/pat-1/retention", "yesterday").status, 400);
  EXPECT_EQ(service_->Route("POST", "/v1/patients/pat-1/retention", "", [](const char*) { return std::string(); },
                            Caller::Trusted())
                .status,
            405);
  // Without the access log there is no report: its records decide what must stay.
  Options off;
  off.audit.reset();
  std::unique_ptr<Engine> no_log = *Engine::Open(std::move(off));
  Service without(no_log.get(), Limits{}, [] { return BuiltinPolicy("wgbo-default"); });
  Reply refused = without.Route("GET", "/v1/patients/pat-1/retention", "", [](const char*) { return std::string(); },
                                Caller::Trusted());
  EXPECT_EQ(refused.status, 409);
  EXPECT_THAT(refused.body, HasSubstr("access log is off"));
}

// AuthZEN 1.0 over the same engine: an evaluation answers what /v1/decisions answers;
// evaluations take defaults from the top level and stop as options say; a subject
// search lists the grants; what does not map is a 400 naming the AuthZEN field.
TEST_F(ServiceTest, AuthzenEvaluatesAsDecisionsDo) {
  using nlohmann::json;
  auto post = [&](absl::string_view path, absl::string_view body) {
    return service_->Route("POST", path, body, [](const char*) { return std::string(); }, Caller::Trusted());
  };
  ASSERT_EQ(post("/v1/facts", kTreatedPatient).status, 200);
  const std::string evaluation = R"({
    "subject":{"type":"user","id":"clin-1","properties":{"role":"clinician","organization":"praktijk-a"}},
    "resource":{"type":"dossier","id":"pat-1","properties":{"category":"medical"}},
    "action":{"name":"read"},
    "context":{"time":"2026-03-10T10:00:00+01:00","purpose":"treatment"}})";
  Reply one = post("/access/v1/evaluation", evaluation);
  ASSERT_EQ(one.status, 200) << one.body;
  json j = json::parse(one.body);
  EXPECT_EQ(j["decision"], true);
  EXPECT_EQ(j["context"]["rule"], "treating_clinician");
  EXPECT_EQ(j["context"]["legal_basis"], "gdpr_9_2_h_health_care");

  Reply many = post("/access/v1/evaluations", R"({
    "subject":{"type":"user","id":"clin-1","properties":{"role":"clinician"}},
    "resource":{"type":"dossier","id":"pat-1","properties":{"category":"medical"}},
    "context":{"time":"2026-03-10T10:00:00+01:00","purpose":"treatment"},
    "evaluations":[{"action":{"name":"read"}},
                   {"action":{"name":"read"},"subject":{"type":"user","id":"clin-7","properties":{"role":"clinician"}}},
                   {"action":{"name":"fly"}}]})");
  ASSERT_EQ(many.status, 200) << many.body;
  json m = json::parse(many.body);
  ASSERT_EQ(m["evaluations"].size(), 3u);
  EXPECT_EQ(m["evaluations"][0]["decision"], true);
  EXPECT_EQ(m["evaluations"][1]["decision"], false);
  EXPECT_EQ(m["evaluations"][2]["decision"], false);
  EXPECT_THAT(m["evaluations"][2]["context"]["error"].get<std::string>(), HasSubstr("evaluations[2].action.name"));
  Reply first_deny = post("/access/v1/evaluations", R"({
    "subject":{"type":"user","id":"clin-7","properties":{"role":"clinician"}},
    "resource":{"type":"dossier","id":"pat-1","properties":{"category":"medical"}},
    "context":{"time":"2026-03-10T10:00:00+01:00","purpose":"treatment"},
    "evaluations":[{"action":{"name":"read"}},{"action":{"name":"write"}}],
    "options":{"evaluations_semantic":"deny_on_first_deny"}})");
  EXPECT_EQ(json::parse(first_deny.body)["evaluations"].size(), 1u) << first_deny.body;

  Reply search = post("/access/v1/search/subject", R"({
    "subject":{"type":"user"},
    "resource":{"type":"dossier","id":"pat-1","properties":{"category":"medical"}},
    "action":{"name":"read"},
    "context":{"time":"2026-03-10T10:00:00+01:00","purpose":"treatment"}})");
  ASSERT_EQ(search.status, 200) << search.body;
  json found = json::parse(search.body);
  ASSERT_EQ(found["results"].size(), 1u) << search.body;
  EXPECT_EQ(found["results"][0]["id"], "clin-1");
  EXPECT_EQ(found["page"]["next_token"], "");
  EXPECT_FALSE(found["context"]["anyone"].empty());  // a substitute of clin-1, said as a condition

  // What does not map, named as AuthZEN names it.
  struct Bad {
    const char* body;
    const char* field;
  } bad[] = {
      {R"({"subject":{"type":"user","id":"clin-1"},"resource":{"type":"dossier","id":"pat-1","properties":{"category":"medical"}},"action":{"name":"read"},"context":{"time":"2026-03-10T10:00:00+01:00","purpose":"treatment"}})", "subject.properties.role"},
      {R"({"subject":{"type":"group","id":"g"},"resource":{"type":"dossier","id":"pat-1"},"action":{"name":"read"},"context":{}})", "subject.type"},
      {R"({"subject":{"type":"user","id":"clin-1","properties":{"role":"nurse"}},"resource":{"type":"dossier","id":"pat-1","properties":{"category":"medical"}},"action":{"name":"read"},"context":{"time":"2026-03-10T10:00:00+01:00","purpose":"treatment"}})", "subject.properties.role"},
      {R"({"subject":{"type":"user","id":"clin-1","properties":{"role":"clinician"}},"resource":{"type":"dossier","id":"pat-1","properties":{"category":"medical"}},"action":{"name":"read"},"context":{"time":"2026-03-10T10:00:00+01:00","purpose":"marketing"}})", "context.purpose"},
      {R"({"subject":{"type":"user","id":"clin-1","properties":{"role":"clinician"}},"resource":{"type":"dossier","id":"pat-1","properties":{"category":"medical"}},"action":{"name":"read"},"context":{"purpose":"treatment"}})", "context.time"},
      {R"({"subject":{"type":"user","id":"clin-1","properties":{"role":"clinician","shoe_size":"44"}},"resource":{"type":"dossier","id":"pat-1"},"action":{"name":"read"},"context":{}})", "subject.properties"},
      {R"({"subject":{"type":"user","id":"clin-1","properties":{"role":"clinician"}},"resource":{"type":"dossier","id":"pat-1"},"action":{"name":"read"},"context":{"time":"2026-03-10T10:00:00+01:00","purpose":"treatment"}})", "resource.properties.category"},
  };
  for (const Bad& b : bad) {
    SCOPED_TRACE(b.field);
    Reply r = post("/access/v1/evaluation", b.body);
    EXPECT_EQ(r.status, 400) << r.body;
    EXPECT_THAT(r.body, HasSubstr(b.field));
  }
  EXPECT_EQ(post("/access/v1/evaluation", "not json").status, 400);
  EXPECT_EQ(Get("/access/v1/evaluation").status, 405);
  Caller decide_only{true, Scopes::Of(Scope::kDecide)};
  EXPECT_EQ(service_->Route("POST", "/access/v1/search/subject", "{}", [](const char*) { return std::string(); },
                            decide_only)
                .status,
            403);
}

// GET /fhir/Consent, /fhir/Consent/{id}, its _history and /fhir/metadata: what toegang
// holds, in FHIR, paged, each status as it is now.
TEST_F(ServiceTest, FhirReadsConsentsBack) {
  auto post = [&](absl::string_view path, absl::string_view body) {
    return service_->Route("POST", path, body, [](const char*) { return std::string(); }, Caller::Trusted());
  };
  auto get = [&](absl::string_view path, std::map<std::string, std::string> args = {}) {
    return service_->Route("GET", path, "", [&](const char* name) { return args[name]; }, Caller::Trusted());
  };
  ASSERT_EQ(post("/v1/facts", R"({"type":"person","id":"pat-1","birth_date":"1980-01-01"})"
                              "\n"
                              R"({"type":"consent","id":"con#1","patient":"pat-1","granted_by":"pat-1","to":{"role":"researcher"},"purposes":["research"],"categories":["medical"],"actions":["read"]})"
                              "\n"
                              R"({"type":"consent","id":"con-2","patient":"pat-1","granted_by":"pat-1","to":{"actor":"clin-9"},"purposes":["referral"],"categories":["medical"],"actions":["read"]})"
                              "\n"
                              R"({"type":"withdrawal","consent":"con-2","by":"pat-1","at":"2026-01-01T00:00:00Z"})")
                .status,
            200);
  Reply all = get("/fhir/Consent", {{"patient", "pat-1"}, {"_count", "1"}});
  ASSERT_EQ(all.status, 200) << all.body;
  EXPECT_EQ(all.content_type, "application/fhir+json");
  nlohmann::json bundle = nlohmann::json::parse(all.body);
  EXPECT_EQ(bundle["type"], "searchset");
  EXPECT_EQ(bundle["total"], 2);
  ASSERT_EQ(bundle["entry"].size(), 1u);
  EXPECT_EQ(bundle["entry"][0]["resource"]["id"], "x.con.231");
  EXPECT_EQ(bundle["entry"][0]["resource"]["provision"]["extension"][0]["valueCode"], "researcher");
  EXPECT_THAT(bundle["link"][1]["url"].get<std::string>(), HasSubstr("_offset=1"));
  Reply active = get("/fhir/Consent", {{"patient", "Patient/pat-1"}, {"status", "inactive"}});
  nlohmann::json inactive = nlohmann::json::parse(active.body);
  EXPECT_EQ(inactive["total"], 1);
  EXPECT_EQ(inactive["entry"][0]["resource"]["id"], "con-2");

  Reply one = get("/fhir/Consent/x.con.231");
  ASSERT_EQ(one.status, 200) << one.body;
  EXPECT_THAT(one.body, HasSubstr(R"("status":"active")"));
  Reply history = get("/fhir/Consent/con-2/_history");
  ASSERT_EQ(history.status, 200) << history.body;
  nlohmann::json versions = nlohmann::json::parse(history.body);
  ASSERT_EQ(versions["entry"].size(), 2u);
  EXPECT_EQ(versions["entry"][0]["resource"]["status"], "inactive");
  EXPECT_EQ(versions["entry"][1]["resource"]["status"], "active");

  Reply missing = get("/fhir/Consent/no-such");
  EXPECT_EQ(missing.status, 404) << missing.body;
  EXPECT_THAT(missing.body, HasSubstr("OperationOutcome"));
  EXPECT_EQ(get("/fhir/Consent", {}).status, 400);
  EXPECT_EQ(get("/fhir/Consent", {{"patient", "pat-1"}, {"_count", "0"}}).status, 400);
  Reply metadata = get("/fhir/metadata");
  EXPECT_EQ(metadata.status, 200);
  EXPECT_THAT(metadata.body, HasSubstr(R"("fhirVersion":"4.0.1")"));
  Caller importer{true, Scopes::Of(Scope::kFactsImport)};
  EXPECT_EQ(service_->Route("GET", "/fhir/Consent/con-2", "", [](const char*) { return std::string(); }, importer).status, 403);
}

TEST(ServiceHealth, FullDiskIsDegradedThenRecoversByItself) {
  const char* tmp = std::getenv("TEST_TMPDIR");
  const std::string dir = std::string(tmp != nullptr ? tmp : "/tmp") + "/service_full_disk";
  std::filesystem::remove_all(dir);
  Options options;
  options.db_path = dir;
  options.audit->retry_interval = absl::Milliseconds(50);
  auto faults = std::make_shared<DiskFaults>();
  auto engine = ::toegang::testing::OpenEngineWithDiskFaults(std::move(options), faults);
  ASSERT_TRUE(engine.ok()) << engine.status();
  Service service(engine->get(), Limits{}, [] { return BuiltinPolicy("wgbo-default"); });
  auto get = [&](absl::string_view path) {
    return service.Route("GET", path, "", [](const char*) { return std::string(); }, Caller::Trusted());
  };
  auto post = [&](absl::string_view path, absl::string_view body) {
    return service.Route("POST", path, body, [](const char*) { return std::string(); }, Caller::Trusted());
  };
  const std::string request =
      R"({"at":"2026-03-10T10:00:00+01:00","actor":{"id":"clin-1","role":"clinician"},"patient":"pat-1","action":"read","category":"medical","purpose":"treatment"})";
  ASSERT_EQ(get("/healthz").status, 200);
  faults->full = true;
  Reply denied = post("/v1/decisions", request);
  EXPECT_THAT(denied.body, HasSubstr("audit_log_unavailable"));
  Reply fact = post("/v1/facts", R"({"type":"person","id":"pat-1","birth_date":"1980-01-01"})");
  EXPECT_GE(fact.status, 500) << fact.body;
  Reply degraded = get("/healthz");
  EXPECT_EQ(degraded.status, 503) << degraded.body;
  EXPECT_THAT(degraded.body, HasSubstr("\"status\":\"degraded\""));
  EXPECT_THAT(degraded.body, HasSubstr("space"));
  faults->full = false;
  Reply health = get("/healthz");
  for (int i = 0; i < 300 && health.status != 200; ++i) {
    absl::SleepFor(absl::Milliseconds(10));
    health = get("/healthz");
  }
  EXPECT_EQ(health.status, 200) << health.body;
  EXPECT_THAT(health.body, HasSubstr("\"status\":\"ok\""));
  EXPECT_EQ(post("/v1/facts", R"({"type":"person","id":"pat-1","birth_date":"1980-01-01"})").status, 200);
  EXPECT_THAT(post("/v1/decisions", request).body, ::testing::Not(HasSubstr("audit_log_unavailable")));
}

}  // namespace
}  // namespace toegang::sidecar
