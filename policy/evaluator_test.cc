// Copyright toegang authors.
//
// DOMAIN.md D1-D33 and E1-E14 through the library: every case of
// tests/cases/domain_cases.json (the file tests/domain_cases_test runs through every door
// of the product) is decided by Evaluate() and checked. Plus properties no table shows: replay
// gives the same answer, another patient's facts are never used, the decision needs no
// clock.
#include "policy/evaluator.h"

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "model/fact_index.h"
#include "model/json.h"
#include "tests/testing/case_corpus.h"

namespace toegang {
namespace {

TEST(EvaluatorTest, DomainCases) {
  const std::vector<corpus::Case> cases = corpus::LoadDomainCases();
  ASSERT_GE(cases.size(), 100u);
  std::unique_ptr<corpus::Decider> evaluator = corpus::NewEvaluatorDoor();
  for (const corpus::Case& c : cases) {
    SCOPED_TRACE(c.name);
    corpus::ExpectDecision(c, evaluator->Decide(c));
  }
}

// Every DOMAIN rule D1..D39 that decides has at least one permit and one deny case
// in the file, named by rule.
TEST(EvaluatorTest, EveryRuleHasPermitAndDenyCases) {
  std::map<std::string, std::pair<int, int>> seen;  // rule -> (permits, denies)
  for (const corpus::Case& c : corpus::LoadDomainCases()) {
    const std::string& name = c.name;
    // A case whose facts are refused at load counts on the deny side.
    const bool permit = c.expect.value("decision", "") == "permit";
    size_t pos = 0;
    while ((pos = name.find('D', pos)) != std::string::npos) {
      size_t end = pos + 1;
      while (end < name.size() && isdigit(static_cast<unsigned char>(name[end]))) ++end;
      if (end > pos + 1 && (pos == 0 || name[pos - 1] == '_')) {
        auto& counts = seen[name.substr(pos, end - pos)];
        (permit ? counts.first : counts.second)++;
      }
      pos = end;
    }
  }
  // D2, D3 (explainability, replay) are properties tested below; D32 (vocabulary) is
  // tested at parsing; D30/D31 are prohibitions (deny only) whose permit side is D26/D27.
  for (int rule : {4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 33,
                   34, 35, 36, 37, 38, 39}) {
    std::string key = "D" + std::to_string(rule);
    SCOPED_TRACE(key);
    EXPECT_GT(seen[key].first, 0) << "no permit case";
    EXPECT_GT(seen[key].second, 0) << "no deny case";
  }
  for (int rule : {30, 31}) {
    EXPECT_GT(seen["D" + std::to_string(rule)].second, 0) << "D" << rule;
  }
}

// D3: replaying a request with the same facts gives the same decision.
TEST(EvaluatorTest, D3_ReplayIsDeterministic) {
  std::unique_ptr<corpus::Decider> evaluator = corpus::NewEvaluatorDoor();
  for (const corpus::Case& c : corpus::LoadDomainCases()) {
    SCOPED_TRACE(c.name);
    EXPECT_EQ(evaluator->Decide(c), evaluator->Decide(c));
  }
}

// D20/D38 as a table: for each age band, which grantors make a consent to a third
// party count (policy/internal/who_may_act.h kWhoMayAct), one consent or two.
TEST(EvaluatorTest, D20_WhoMayGrantForEachBand) {
  struct Case {
    const char* name;
    const char* birth_date;            // the patient's, for the band on 2026-03-10
    std::vector<std::string> consents;  // grantor lists, one consent each
    bool incapable;                     // a capacity assessment says so
    bool counts;
  } const cases[] = {
      {"under_12_by_parent", "2018-03-03", {"par-1"}, false, true},
      {"under_12_by_child", "2018-03-03", {"pat-9"}, false, false},
      {"under_12_by_representative_incapable", "2018-03-03", {"rep-1"}, true, false},
      {"12_15_by_child_alone", "2012-05-05", {"pat-9"}, false, false},
      {"12_15_by_parent_alone", "2012-05-05", {"par-1"}, false, false},
      {"12_15_by_both_in_one", "2012-05-05", {"pat-9,par-1"}, false, true},
      {"12_15_by_both_in_two", "2012-05-05", {"pat-9", "par-1"}, false, true},
      {"16_17_by_child", "2009-05-05", {"pat-9"}, false, true},
      {"16_17_by_parent", "2009-05-05", {"par-1"}, false, false},
      {"adult_by_patient", "1980-05-05", {"pat-9"}, false, true},
      {"adult_by_parent", "1980-05-05", {"par-1"}, false, false},
      {"adult_by_representative_capable", "1980-05-05", {"rep-1"}, false, false},
      {"adult_by_representative_incapable", "1980-05-05", {"rep-1"}, true, true},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    std::vector<std::string> lines = {
        absl::StrCat(R"({"type":"person","id":"pat-9","birth_date":")", c.birth_date, R"("})"),
        R"({"type":"relationship","subject":"par-1","relation":"parent_with_authority","object":"pat-9"})",
        R"({"type":"relationship","subject":"rep-1","relation":"representative","object":"pat-9"})",
    };
    if (c.incapable) {
      lines.push_back(
          R"({"type":"capacity","id":"cap-9","patient":"pat-9","by":"clin-3","capable":false,"from":"2026-01-01T00:00:00+01:00"})");
    }
    int n = 0;
    for (const std::string& grantors : c.consents) {
      std::string list;
      for (absl::string_view g : absl::StrSplit(grantors, ',')) absl::StrAppend(&list, list.empty() ? "" : ",", "\"", g, "\"");
      lines.push_back(absl::StrCat(R"({"type":"consent","id":"con-)", ++n, R"(","patient":"pat-9","granted_by":[)", list,
                                   R"(],"to":{"actor":"clin-7"},"purposes":["referral"],"categories":["medical"],)",
                                   R"("actions":["read"],"from":"2026-01-01T00:00:00+01:00","recorded_at":"2026-01-01T00:00:00+01:00"})"));
    }
    std::vector<Fact> facts;
    for (const std::string& l : lines) {
      absl::StatusOr<Fact> f = ParseFactJson(l);
      ASSERT_TRUE(f.ok()) << l << ": " << f.status();
      facts.push_back(*std::move(f));
    }
    FactIndex index;
    ASSERT_TRUE(index.Append(facts).ok());
    absl::StatusOr<AccessRequest> req = ParseRequestJson(
        R"({"at":"2026-03-10T10:00:00+01:00","actor":{"id":"clin-7","role":"clinician"},"patient":"pat-9","action":"read","category":"medical","purpose":"referral"})");
    ASSERT_TRUE(req.ok()) << req.status();
    Decision d = Evaluate(**BuiltinPolicy("wgbo-default"), *req, index.RecordFor("pat-9"), {});
    EXPECT_EQ(d.permitted(), c.counts) << DecisionToJson(d, "");
    EXPECT_EQ(!d.consents.empty(), c.counts) << DecisionToJson(d, "");
  }
}

// D1: facts of another patient are never decided on.
TEST(EvaluatorTest, D1_AnotherPatientsFactsDeny) {
  PatientRecord record;
  record.patient = "pat-2";
  record.relationships.push_back({Relationship{"", "clin-1", Relation::kTreating, "pat-2", {}}, {}});
  AccessRequest req;
  req.at = absl::FromUnixSeconds(1770000000);
  req.actor = {"clin-1", Role::kClinician, ""};
  req.patient = "pat-1";
  req.action = Action::kRead;
  req.category = Category::kMedical;
  req.purpose = Purpose::kTreatment;
  Decision d = Evaluate(**BuiltinPolicy("wgbo-default"), req, record, {});
  EXPECT_FALSE(d.permitted());
  EXPECT_EQ(d.reasons[0], Reason::kPolicyError);
}

// D2: a permit names its policy, rule, basis and reason.
TEST(EvaluatorTest, D2_DecisionIsExplained) {
  PatientRecord record;
  record.patient = "pat-1";
  record.relationships.push_back({Relationship{"", "clin-1", Relation::kTreating, "pat-1", {}}, {}});
  AccessRequest req;
  req.at = absl::FromUnixSeconds(1770000000);
  req.actor = {"clin-1", Role::kClinician, ""};
  req.patient = "pat-1";
  Decision d = Evaluate(**BuiltinPolicy("wgbo-default"), req, record, {});
  ASSERT_TRUE(d.permitted());
  EXPECT_EQ(d.policy, "wgbo-default@1");
  EXPECT_EQ(d.rule, "treating_clinician");
  EXPECT_EQ(d.legal_basis, LegalBasis::kHealthCare);
}

}  // namespace
}  // namespace toegang
