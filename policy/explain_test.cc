// Copyright toegang authors.
//
// Explain: the explanation comes with the same decision Evaluate gives, for every case
// of the corpus, and says truthfully how it was reached — every rule once, in the
// evaluator's order; the deciding rule fired or permitted, every one before it met and
// every one after it not reached; the deciding rule's conditions held, citing the
// facts (the consents relied on among them).
#include "policy/explain.h"

#include <map>
#include <memory>
#include <set>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "model/fact_index.h"
#include "model/json.h"
#include "policy/internal/rules.h"
#include "tests/testing/case_corpus.h"

namespace toegang {
namespace {

using ::testing::HasSubstr;
using Outcome = RuleTrace::Outcome;

// The decisions' consent ids point into `record`: it lives as long as they do.
struct Decided {
  PatientRecord record;
  Decision plain;
  Decision explained;
  Explanation why;
};

Decided& DecideBothWays(const Policy& policy, const AccessRequest& req, const std::vector<Fact>& facts) {
  static std::vector<std::unique_ptr<Decided>>* const kept = new std::vector<std::unique_ptr<Decided>>;
  kept->push_back(std::make_unique<Decided>());
  Decided& out = *kept->back();
  FactIndex index;
  EXPECT_TRUE(index.Append(facts).ok());
  out.record = index.RecordFor(req.patient);
  const PatientRecord& record = out.record;
  const std::vector<Stored<Relationship>> subs = index.SubstitutionsOf(req.actor.id);
  std::vector<Stored<OrgCategory>> categories;
  for (const Fact& f : facts) {
    if (const auto* oc = std::get_if<OrgCategory>(&f.body)) categories.push_back({*oc, f.provenance});
  }
  out.plain = Evaluate(policy, req, record, subs, categories);
  struct AtHand final : ActorFactSource {
    absl::Span<const Stored<Relationship>> Substitutions() override { return subs; }
    absl::Span<const Stored<OrgCategory>> CategoriesOf(absl::string_view organization) override {
      auto& mine = by_org[std::string(organization)];
      mine.clear();
      for (const Stored<OrgCategory>& c : all) {
        if (c.value.organization == organization) mine.push_back(c);
      }
      return mine;
    }
    absl::Span<const Stored<Relationship>> subs;
    absl::Span<const Stored<OrgCategory>> all;
    std::map<std::string, std::vector<Stored<OrgCategory>>> by_org;
  } at_hand;
  at_hand.subs = subs;
  at_hand.all = categories;
  out.explained = EvaluateExplained(policy, req, record, at_hand, &out.why);
  return out;
}

// What every explanation must say of the decision it comes with.
void ExpectTruthful(const Policy& policy, const AccessRequest& req, const Decision& d, const Explanation& why) {
  size_t considered = 0;
  for (const policy_internal::CompiledRule& r : policy.rules()) {
    considered += r.roles.Contains(req.actor.role) && r.purposes.Contains(req.purpose);
  }
  ASSERT_EQ(why.rules.size(), considered);
  std::set<std::string> seen;
  bool forbids_done = false;
  size_t deciding = why.rules.size();
  for (size_t i = 0; i < why.rules.size(); ++i) {
    const RuleTrace& r = why.rules[i];
    EXPECT_TRUE(seen.insert(std::string(r.rule)).second) << r.rule << " twice";
    if (r.effect == Effect::kPermit) forbids_done = true;
    EXPECT_TRUE(r.effect == Effect::kPermit || !forbids_done) << "a forbid rule after a permit rule: " << r.rule;
    if (r.outcome == Outcome::kFired || r.outcome == Outcome::kPermitted) {
      EXPECT_EQ(deciding, why.rules.size()) << "two rules decided";
      deciding = i;
      EXPECT_EQ(r.rule, d.rule);
      EXPECT_EQ(r.outcome == Outcome::kPermitted, d.permitted());
    } else if (deciding < why.rules.size()) {
      EXPECT_TRUE(r.outcome == Outcome::kNotReached || r.outcome == Outcome::kOff) << r.rule << " after the decision";
    } else {
      EXPECT_NE(r.outcome, Outcome::kNotReached) << r.rule << " not reached before any decision";
    }
  }
  EXPECT_EQ(deciding == why.rules.size(), d.rule.empty());
  std::map<std::string, const PredicateTrace*> computed;
  for (const PredicateTrace& p : why.predicates) {
    EXPECT_TRUE(computed.emplace(std::string(p.predicate), &p).second) << p.predicate << " computed twice";
    if (!p.holds) {
      EXPECT_TRUE(p.facts.empty()) << p.predicate << " cites facts but does not hold";
    }
  }
  if (deciding == why.rules.size()) return;
  // The deciding rule's conditions held, as computed.
  const auto& rule = *std::find_if(policy.rules().begin(), policy.rules().end(),
                                   [&](const policy_internal::CompiledRule& r) { return r.id == d.rule; });
  for (policy_internal::Predicate p : rule.is_forbid() ? rule.when : rule.require) {
    auto it = computed.find(std::string(policy_internal::PredicateName(p)));
    ASSERT_NE(it, computed.end()) << policy_internal::PredicateName(p) << " held but was not computed";
    EXPECT_TRUE(it->second->holds);
  }
  // The consents relied on are cited.
  for (absl::string_view id : d.consents) {
    bool cited = false;
    for (const PredicateTrace& p : why.predicates) {
      for (const CitedFact& f : p.facts) cited = cited || (f.type == "consent" && f.id == id);
    }
    EXPECT_TRUE(cited) << "consent " << id << " relied on but not cited";
  }
}

TEST(Explain, EveryCaseDecidesAlikeAndIsExplainedTruthfully) {
  int explained = 0;
  for (const corpus::Case& c : corpus::LoadDomainCases()) {
    SCOPED_TRACE(c.name);
    std::shared_ptr<const Policy> policy = corpus::PolicyOf(c);
    absl::StatusOr<AccessRequest> req = ParseRequest(c.request);
    if (!policy || !req.ok()) continue;  // cases of bad input: no decision to explain
    std::vector<Fact> facts = corpus::FactsOf(c);
    FactIndex check;
    if (!check.Append(facts).ok()) continue;  // cases the load refuses
    Decided& d = DecideBothWays(*policy, *req, facts);
    EXPECT_EQ(DecisionToJson(d.explained, ""), DecisionToJson(d.plain, ""));
    ExpectTruthful(*policy, *req, d.explained, d.why);
    const std::string json = ExplanationJson(*policy, d.explained, d.why);
    EXPECT_TRUE(nlohmann::json::accept(json)) << json;
    ++explained;
    if (HasFailure()) return;
  }
  EXPECT_GT(explained, 150);
}

Fact F(const char* json) {
  absl::StatusOr<Fact> f = ParseFactJson(json);
  EXPECT_TRUE(f.ok()) << f.status();
  return *f;
}

AccessRequest Request(const char* json) {
  absl::StatusOr<AccessRequest> r = ParseRequestJson(json);
  EXPECT_TRUE(r.ok()) << r.status();
  return *r;
}

TEST(Explain, ATreatingClinicianIsPermittedByTheRelationship) {
  std::shared_ptr<const Policy> policy = *BuiltinPolicy("wgbo-default");
  const std::vector<Fact> facts = {
      F(R"({"type":"person","id":"pat-1","birth_date":"1980-04-02"})"),
      F(R"({"type":"relationship","id":"rel-1","subject":"clin-1","relation":"treating","object":"pat-1","from":"2026-01-05T00:00:00+01:00"})")};
  const AccessRequest req = Request(
      R"({"at":"2026-03-10T10:00:00+01:00","actor":{"id":"clin-1","role":"clinician"},"patient":"pat-1","action":"read","category":"medical","purpose":"treatment","explain":true})");
  EXPECT_TRUE(req.explain);
  Decided& d = DecideBothWays(*policy, req, facts);
  ASSERT_TRUE(d.explained.permitted());
  const std::string json = ExplanationJson(*policy, d.explained, d.why);
  EXPECT_THAT(json, ::testing::Not(HasSubstr("employer_never")));  // never for a clinician
  EXPECT_THAT(json, HasSubstr(R"({"rule":"patient_objection","effect":"forbid","outcome":"not_fired","because":"objection"})"));
  EXPECT_THAT(json, HasSubstr(R"({"rule":"treating_clinician","effect":"permit","outcome":"permitted"})"));
  EXPECT_THAT(json, HasSubstr(R"({"rule":"substitute_clinician","effect":"permit","outcome":"not_reached"})"));
  EXPECT_THAT(json, HasSubstr(
                        R"({"predicate":"treating_relationship","holds":true,"facts":[{"type":"relationship","id":"rel-1","subject":"clin-1","relation":"treating","object":"pat-1","from":"2026-01-04T23:00:00Z","until":null}]})"));
  // Rules a parameter switches off say which.
  AccessRequest child = req;
  child.actor = {"pat-1", Role::kPatient, ""};
  child.purpose = Purpose::kPatientRequest;
  Decided& self = DecideBothWays(*policy, child, facts);
  EXPECT_THAT(ExplanationJson(*policy, self.explained, self.why),
              HasSubstr(R"({"rule":"child_under_12_with_parent","effect":"permit","outcome":"off","because":"child_under_12_self_access is none"})"));
  EXPECT_THAT(json, HasSubstr(R"("parameters":{"leap_day_rule":"march_1","child_under_12_self_access":"none",)"));
  EXPECT_THAT(json, HasSubstr(R"("mitz_grantor":"satisfies_d20")"));
  EXPECT_THAT(json, HasSubstr(R"("age_band":"adult")"));
  EXPECT_THAT(json, HasSubstr(R"({"policy":"wgbo-default@1",)"));
  EXPECT_TRUE(nlohmann::json::accept(json)) << json;
}

TEST(Explain, ADenyNamesTheObjectionAndTheRulesThatFailed) {
  std::shared_ptr<const Policy> policy = *BuiltinPolicy("wgbo-default");
  const std::vector<Fact> facts = {
      F(R"({"type":"person","id":"pat-1","birth_date":"1980-04-02"})"),
      F(R"({"type":"relationship","id":"rel-1","subject":"clin-1","relation":"treating","object":"pat-1"})"),
      F(R"({"type":"objection","id":"obj-1","patient":"pat-1","by":"pat-1","to":{"actor":"clin-1"},"purposes":["treatment"],"from":"2026-02-01T00:00:00+01:00"})")};
  Decided& d = DecideBothWays(*policy, Request(R"({"at":"2026-03-10T10:00:00+01:00","actor":{"id":"clin-1","role":"clinician"},"patient":"pat-1","action":"read","category":"medical","purpose":"treatment"})"), facts);
  ASSERT_FALSE(d.explained.permitted());
  const std::string json = ExplanationJson(*policy, d.explained, d.why);
  EXPECT_THAT(json, HasSubstr(R"({"rule":"patient_objection","effect":"forbid","outcome":"fired"})"));
  EXPECT_THAT(json, HasSubstr(R"({"predicate":"objection","holds":true,"facts":[{"type":"objection","id":"obj-1","from":"2026-01-31T23:00:00Z","until":null}]})"));
  EXPECT_THAT(json, HasSubstr(R"({"rule":"treating_clinician","effect":"permit","outcome":"not_reached"})"));

  // Without a relationship or a consent: each permit rule that nearly applied says
  // which requirement failed.
  Decided& stranger = DecideBothWays(*policy, Request(R"({"at":"2026-03-10T10:00:00+01:00","actor":{"id":"clin-7","role":"clinician"},"patient":"pat-1","action":"read","category":"medical","purpose":"treatment"})"), facts);
  const std::string why = ExplanationJson(*policy, stranger.explained, stranger.why);
  EXPECT_THAT(why, HasSubstr(R"({"rule":"treating_clinician","effect":"permit","outcome":"failed","because":"treating_relationship"})"));
  EXPECT_THAT(why, HasSubstr(R"({"rule":"consent_to_recipient","effect":"permit","outcome":"failed","because":"consent"})"));
  EXPECT_THAT(why, HasSubstr(R"({"predicate":"consent","holds":false,"facts":[]})"));
}

TEST(Explain, WithExplanationAddsTheMemberToTheDecisionObject) {
  EXPECT_EQ(WithExplanation(R"({"decision":"deny"})", "{}"), R"({"decision":"deny","explanation":{}})");
  EXPECT_EQ(WithExplanation("{}", "{}"), R"({"explanation":{}})");
  EXPECT_EQ(WithExplanation("", "{}"), "");
}

}  // namespace
}  // namespace toegang
