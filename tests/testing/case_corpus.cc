// Copyright toegang authors.
#include "tests/testing/case_corpus.h"

#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "model/fact_index.h"
#include "model/json.h"
#include "policy/evaluator.h"
#include "policy/policy.h"
#include "tests/testing/e2e.h"

namespace toegang::corpus {

using nlohmann::json;

std::vector<Case> LoadDomainCases() {
  std::ifstream in(e2e::Runfile("tests/cases/domain_cases.json"));
  EXPECT_TRUE(in.good()) << "cannot open tests/cases/domain_cases.json";
  std::stringstream buf;
  buf << in.rdbuf();
  const json doc = json::parse(buf.str());
  std::vector<Case> cases;
  for (const json& c : doc["cases"]) {
    Case out;
    out.name = c["name"].get<std::string>();
    for (const json& set : c["fact_sets"]) {
      for (const json& f : doc["fact_sets"][set.get<std::string>()]) out.facts.push_back(f);
    }
    for (const json& f : c["facts"]) out.facts.push_back(f);
    out.request = c["request"];
    out.expect = c["expect"];
    if (out.expect.contains("load_error")) out.load_error = out.expect["load_error"].get<std::string>();
    const std::string policy = c.value("policy", "");
    if (!policy.empty() && policy[0] == '@') {
      out.policy_text = "policy wgbo-variant\nversion 1\nextends wgbo-default\n" +
                        doc["variants"][policy].get<std::string>() + "\n";
    } else {
      out.policy_name = policy;
    }
    cases.push_back(std::move(out));
  }
  return cases;
}

json LoadRefused(absl::string_view message) { return json{{"load_error", std::string(message)}}; }

void ExpectDecision(const Case& c, const json& got) {
  if (!got.is_object()) {
    ADD_FAILURE() << "no decision";
    return;
  }
  if (!c.load_error.empty() || got.contains("load_error")) {
    ASSERT_FALSE(c.load_error.empty()) << "facts refused: " << got.dump();
    ASSERT_TRUE(got.contains("load_error")) << "facts loaded, but must be refused: " << got.dump();
    EXPECT_NE(got["load_error"].get<std::string>().find(c.load_error), std::string::npos) << got.dump();
    return;
  }
  for (auto it = c.expect.begin(); it != c.expect.end(); ++it) {
    if (it.key() == "reasons_first") {
      ASSERT_FALSE(got["reasons"].empty()) << got.dump();
      EXPECT_EQ(got["reasons"][0], it.value()) << got.dump();
    } else {
      EXPECT_EQ(got[it.key()], it.value()) << it.key() << " in " << got.dump();
    }
  }
  // D1: a permit always carries a basis; a deny never does and always says why.
  if (got["decision"] == "permit") {
    EXPECT_FALSE(got["legal_basis"].is_null()) << got.dump();
  } else {
    EXPECT_TRUE(got["legal_basis"].is_null()) << got.dump();
    EXPECT_FALSE(got["reasons"].empty()) << got.dump();
  }
}

std::shared_ptr<const Policy> PolicyOf(const Case& c) {
  absl::StatusOr<std::shared_ptr<const Policy>> p =
      !c.policy_text.empty() ? CompilePolicy(c.policy_text)
                             : BuiltinPolicy(c.policy_name.empty() ? "wgbo-default" : c.policy_name);
  EXPECT_TRUE(p.ok()) << p.status();
  return p.ok() ? *p : nullptr;
}

std::vector<Fact> FactsOf(const Case& c) {
  std::vector<Fact> facts;
  for (const json& f : c.facts) {
    absl::StatusOr<Fact> fact = ParseFact(f);
    EXPECT_TRUE(fact.ok()) << f.dump() << ": " << fact.status();
    if (fact.ok()) facts.push_back(*std::move(fact));
  }
  return facts;
}

namespace {

class EvaluatorDoor final : public Decider {
 public:
  std::string name() const override { return "evaluator"; }
  json Decide(const Case& c) override {
    FactIndex index;
    const std::vector<Fact> facts = FactsOf(c);
    absl::Status s = index.Append(facts);
    if (!s.ok()) return LoadRefused(s.message());
    absl::StatusOr<AccessRequest> req = ParseRequest(c.request);
    EXPECT_TRUE(req.ok()) << req.status();
    std::shared_ptr<const Policy> policy = PolicyOf(c);
    if (!req.ok() || !policy) return json();
    PatientRecord record = index.RecordFor(req->patient);
    std::vector<Stored<Relationship>> subs = index.SubstitutionsOf(req->actor.id);
    std::vector<Stored<OrgCategory>> categories;
    for (const Fact& f : facts) {
      if (const auto* oc = std::get_if<OrgCategory>(&f.body)) categories.push_back({*oc, f.provenance});
    }
    return DecisionToJsonValue(Evaluate(*policy, *req, record, subs, categories), "");
  }
};

}  // namespace

std::unique_ptr<Decider> NewEvaluatorDoor() { return std::make_unique<EvaluatorDoor>(); }

}  // namespace toegang::corpus
