// Copyright toegang authors.
#include "tests/testing/doors.h"

#include <filesystem>

#include "absl/strings/str_cat.h"
#include <set>

#include "engine/fhir/fhir_import.h"
#include "engine/fhir/fhir_read.h"
#include "engine/sidecar/client.h"
#include "engine/toegang.h"
#include "gtest/gtest.h"
#include "httplib.h"
#include "model/json.h"
#include "tests/testing/e2e.h"
#include "tests/testing/sidecar_process.h"

namespace toegang::corpus {

using nlohmann::json;

namespace {

std::string FactsFile(const Case& c) {
  std::string text;
  for (const json& f : c.facts) absl::StrAppend(&text, f.dump(), "\n");
  return e2e::Write("corpus-facts.jsonl", text);
}

// --policy for the binary: a built-in pack's name, or a file with the variant's text.
std::vector<std::string> PolicyArgs(const Case& c) {
  if (!c.policy_text.empty()) return {"--policy", e2e::Write("corpus-variant.policy", c.policy_text)};
  if (!c.policy_name.empty()) return {"--policy", c.policy_name};
  return {};
}

class EngineDoor final : public Decider {
 public:
  explicit EngineDoor(bool durable) : durable_(durable) {}
  std::string name() const override { return durable_ ? "engine-rocksdb" : "engine-memory"; }
  json Decide(const Case& c) override {
    Options options;
    options.policy = PolicyOf(c);
    options.clock = NoArrivalClock;
    if (durable_) {
      options.db_path = e2e::Tmp("corpus-store");
      std::filesystem::remove_all(options.db_path);
    }
    absl::StatusOr<std::unique_ptr<Engine>> engine = Engine::Open(std::move(options));
    EXPECT_TRUE(engine.ok()) << engine.status();
    absl::StatusOr<AccessRequest> req = ParseRequest(c.request);
    EXPECT_TRUE(req.ok()) << req.status();
    if (!engine.ok() || !req.ok()) return json();
    absl::StatusOr<uint64_t> recorded = (*engine)->Record(FactsOf(c));
    if (!recorded.ok()) return LoadRefused(recorded.status().message());
    EngineDecision d = (*engine)->Decide(*req);
    return DecisionToJsonValue(d.decision, d.decision_id);
  }

 private:
  const bool durable_;
};

// The case's consents and objections exported as FHIR and imported into a new engine
// beside the rest of its facts: the same decision (docs/fhir.md "Export"). Two exports
// carry the history: every consent and objection as recorded, then each as it is at the
// request's instant, whose inactive versions become withdrawals.
class FhirRoundTripDoor final : public Decider {
 public:
  std::string name() const override { return "fhir-round-trip"; }
  json Decide(const Case& c) override {
    absl::StatusOr<AccessRequest> req = ParseRequest(c.request);
    EXPECT_TRUE(req.ok()) << req.status();
    if (!req.ok()) return json();
    std::unique_ptr<Engine> original = Open(c);
    const std::vector<Fact> facts = FactsOf(c);
    absl::StatusOr<uint64_t> recorded = original->Record(facts);
    if (!recorded.ok()) return LoadRefused(recorded.status().message());

    // What FHIR carries: consents, objections and their withdrawals. The rest goes over as
    // it is.
    std::set<std::string> carried;
    std::set<std::string> patients;
    for (const Fact& f : facts) {
      if (std::holds_alternative<Consent>(f.body) || std::holds_alternative<Objection>(f.body)) {
        carried.insert(FactId(f.body));
        patients.insert(*FactPatient(f.body));
      }
    }
    std::vector<Fact> rest;
    for (const Fact& f : facts) {
      const auto* w = std::get_if<Withdrawal>(&f.body);
      if (carried.count(FactId(f.body)) || (w != nullptr && carried.count(w->target))) continue;
      rest.push_back(f);
    }
    std::unique_ptr<Engine> copy = Open(c);
    absl::StatusOr<uint64_t> rest_recorded = copy->Record(rest);
    EXPECT_TRUE(rest_recorded.ok()) << rest_recorded.status();
    FhirConsentReader reader(*original);
    FhirImporter importer(*copy, {});
    for (absl::Time at : {absl::InfinitePast(), req->at}) {
      for (const std::string& patient : patients) {
        absl::StatusOr<std::string> bundle = reader.Export(patient, at, absl::InfiniteFuture());
        EXPECT_TRUE(bundle.ok()) << bundle.status();
        if (!bundle.ok()) return json();
        absl::StatusOr<FhirImportReport> imported = importer.Import(*bundle);
        EXPECT_TRUE(imported.ok()) << imported.status() << "\n" << *bundle;
        if (!imported.ok()) return json();
      }
    }
    EngineDecision d = copy->Decide(*req);
    return DecisionToJsonValue(d.decision, d.decision_id);
  }

 private:
  static std::unique_ptr<Engine> Open(const Case& c) {
    Options options;
    options.policy = PolicyOf(c);
    options.clock = NoArrivalClock;
    options.audit.reset();
    absl::StatusOr<std::unique_ptr<Engine>> engine = Engine::Open(std::move(options));
    EXPECT_TRUE(engine.ok()) << engine.status();
    return engine.ok() ? *std::move(engine) : nullptr;
  }
};

class CliDoor final : public Decider {
 public:
  std::string name() const override { return "cli"; }
  json Decide(const Case& c) override {
    std::string command = absl::StrCat(e2e::Runfile("toegang"), " decide --facts ", FactsFile(c));
    for (const std::string& a : PolicyArgs(c)) absl::StrAppend(&command, " ", a);
    absl::StrAppend(&command, " < ", e2e::Write("corpus-request.jsonl", c.request.dump() + "\n"));
    if (!c.load_error.empty()) {
      // Refused facts: exit 2, and the reason on standard error.
      e2e::Shell r = e2e::Sh(command + " 2>&1 >/dev/null");
      EXPECT_EQ(r.status, 2) << r.out;
      return r.status == 2 ? LoadRefused(r.out) : json::object();
    }
    e2e::Shell r = e2e::Sh(command);
    EXPECT_EQ(r.status, 0) << r.out;
    json got = json::parse(r.out, nullptr, /*allow_exceptions=*/false);
    EXPECT_FALSE(got.is_discarded()) << r.out;
    if (got.is_discarded()) return json();
    EXPECT_FALSE(got.value("decision_id", "").empty()) << r.out;
    return got;
  }
};

// One `toegang serve --facts` per case, shared by the HTTP and the frame door: the
// corpus test runs a case through every door before the next.
class CaseSidecar {
 public:
  e2e::Sidecar& For(const Case& c) {
    if (sidecar_ == nullptr || case_ != c.name) {
      sidecar_.reset();
      // Facts the case expects refused are posted to a sidecar over none.
      const std::string facts = c.load_error.empty() ? FactsFile(c) : e2e::Write("corpus-none.jsonl", "");
      std::vector<std::string> extra = {"--facts", facts, "--pin-threads=false", "--threads", "2"};
      for (const std::string& a : PolicyArgs(c)) extra.push_back(a);
      sidecar_ = std::make_unique<e2e::Sidecar>("corpus", "", extra);
      case_ = c.name;
    }
    return *sidecar_;
  }

 private:
  std::unique_ptr<e2e::Sidecar> sidecar_;
  std::string case_;
};

class HttpDoor final : public Decider {
 public:
  explicit HttpDoor(std::shared_ptr<CaseSidecar> sidecar) : sidecar_(std::move(sidecar)) {}
  std::string name() const override { return "http"; }
  json Decide(const Case& c) override {
    e2e::Sidecar& s = sidecar_->For(c);
    if (!c.load_error.empty()) return PostFacts(s, c);
    httplib::Client http("127.0.0.1", s.http_port());
    httplib::Headers auth = {{"Authorization", absl::StrCat("Bearer ", e2e::kTestToken)}};
    httplib::Result r = http.Post("/v1/decisions", auth, c.request.dump(), "application/json");
    EXPECT_TRUE(r) << "POST /v1/decisions failed";
    if (!r) return json();
    EXPECT_EQ(r->status, 200) << r->body;
    json got = json::parse(r->body, nullptr, /*allow_exceptions=*/false);
    EXPECT_FALSE(got.is_discarded()) << r->body;
    return got.is_discarded() ? json() : got;
  }

 private:
  // POST /v1/facts with the case's facts: a 400 is the refusal.
  static json PostFacts(e2e::Sidecar& s, const Case& c) {
    std::string lines;
    for (const json& f : c.facts) absl::StrAppend(&lines, f.dump(), "\n");
    httplib::Client http("127.0.0.1", s.http_port());
    httplib::Headers auth = {{"Authorization", absl::StrCat("Bearer ", e2e::kTestToken)}};
    httplib::Result r = http.Post("/v1/facts", auth, lines, "application/x-ndjson");
    EXPECT_TRUE(r) << "POST /v1/facts failed";
    if (!r) return json();
    if (r->status != 400) return json{{"status", r->status}, {"body", r->body}};
    json body = json::parse(r->body, nullptr, /*allow_exceptions=*/false);
    return LoadRefused(body.is_object() ? body.value("error", r->body) : r->body);
  }

  std::shared_ptr<CaseSidecar> sidecar_;
};

// A frame's answer as the API's decision JSON.
json AnswerJson(const sidecar::Answer& a) {
  json j = json::object();
  j["decision"] = a.permitted ? "permit" : "deny";
  json reasons = json::array();
  for (Reason r : a.reasons) reasons.push_back(std::string(Name(r)));
  j["reasons"] = std::move(reasons);
  j["legal_basis"] = a.legal_basis ? json(std::string(Name(*a.legal_basis))) : json(nullptr);
  json obligations = json::array();
  for (Obligation o : a.obligations) obligations.push_back(std::string(Name(o)));
  j["obligations"] = std::move(obligations);
  j["consents"] = a.consents;
  j["age_band"] = a.age_band ? json(std::string(Name(*a.age_band))) : json(nullptr);
  j["policy"] = a.policy;
  if (!a.rule.empty()) j["rule"] = a.rule;
  if (!a.decision_id.empty()) j["decision_id"] = a.decision_id;
  if (!a.error.empty()) j["error"] = a.error;
  return j;
}

class FrameDoor final : public Decider {
 public:
  explicit FrameDoor(std::shared_ptr<CaseSidecar> sidecar) : sidecar_(std::move(sidecar)) {}
  std::string name() const override { return "frames"; }
  bool records_facts() const override { return false; }
  json Decide(const Case& c) override {
    e2e::Sidecar& s = sidecar_->For(c);
    absl::StatusOr<AccessRequest> req = ParseRequest(c.request);
    EXPECT_TRUE(req.ok()) << req.status();
    absl::StatusOr<std::unique_ptr<sidecar::Client>> client = sidecar::Client::ConnectUnix(s.socket());
    EXPECT_TRUE(client.ok()) << client.status();
    if (!req.ok() || !client.ok()) return json();
    absl::StatusOr<sidecar::Answer> a = (*client)->Decide(*req);
    EXPECT_TRUE(a.ok()) << a.status();
    return a.ok() ? AnswerJson(*a) : json();
  }

 private:
  std::shared_ptr<CaseSidecar> sidecar_;
};

}  // namespace

std::vector<std::unique_ptr<Decider>> AllDoors() {
  auto sidecar = std::make_shared<CaseSidecar>();
  std::vector<std::unique_ptr<Decider>> doors;
  doors.push_back(NewEvaluatorDoor());
  doors.push_back(std::make_unique<EngineDoor>(/*durable=*/false));
  doors.push_back(std::make_unique<EngineDoor>(/*durable=*/true));
  doors.push_back(std::make_unique<CliDoor>());
  doors.push_back(std::make_unique<HttpDoor>(sidecar));
  doors.push_back(std::make_unique<FrameDoor>(sidecar));
  doors.push_back(std::make_unique<FhirRoundTripDoor>());
  return doors;
}

}  // namespace toegang::corpus
