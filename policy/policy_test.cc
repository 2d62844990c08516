// Copyright toegang authors.
// The pack compiler and checker: both built-in packs are clean; every kind of mistake
// is reported with its line.
#include "policy/policy.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "policy/internal/rules.h"

namespace toegang {
namespace {

using ::testing::HasSubstr;

std::string Joined(const std::vector<PolicyDiagnostic>& ds, PolicyDiagnostic::Severity min) {
  std::string out;
  for (const PolicyDiagnostic& d : ds) {
    if (d.severity <= min) out += FormatDiagnostic("pack", d) + "\n";
  }
  return out;
}

TEST(BuiltinPacks, CompileAndCheckClean) {
  for (const std::string& name : BuiltinPolicyNames()) {
    SCOPED_TRACE(name);
    std::vector<PolicyDiagnostic> ds = CheckPolicy(BuiltinPolicyText(name));
    EXPECT_EQ(Joined(ds, PolicyDiagnostic::Severity::kWarning), "");
    absl::StatusOr<std::shared_ptr<const Policy>> p = BuiltinPolicy(name);
    ASSERT_TRUE(p.ok()) << p.status();
    EXPECT_EQ((*p)->name(), name);
  }
}

TEST(BuiltinPacks, WgboDefaultParametersAreDomainDefaults) {
  absl::StatusOr<std::shared_ptr<const Policy>> p = BuiltinPolicy("wgbo-default");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ((*p)->id(), "wgbo-default@1");
  const PolicyParams& params = (*p)->params();
  EXPECT_EQ(params.leap_day_rule, LeapDayRule::kMarch1);
  EXPECT_EQ(params.consent_12_to_15, PolicyParams::Consent12To15::kChildAndParent);
  EXPECT_EQ(params.parent_consent_at_16, PolicyParams::ParentConsentAt16::kRequireReconfirmation);
  EXPECT_EQ(params.research_deidentification, Obligation::kPseudonymize);
  EXPECT_EQ(params.treatment_grace_days, 0);
  EXPECT_EQ(params.mitz_grantor, PolicyParams::MitzGrantor::kSatisfiesD20);
  // Mitz's Behandelgegevens is the clinical record; nothing narrower is mapped.
  EXPECT_EQ((*p)->DataCategory("GGC002"), std::optional<CategorySet>(ClinicalCategories()));
  EXPECT_EQ((*p)->DataCategory("GGC013"), std::nullopt);
}

TEST(DataCategories, APackMapsCodesAndAnExtendingPackOverridesThem) {
  absl::StatusOr<std::shared_ptr<const Policy>> p = CompilePolicy(
      "policy p\nversion 1\nextends wgbo-default\nparam mitz_grantor as_patient\n"
      "data_category GGC002 medical\ndata_category GGC013 medical\n");
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ((*p)->params().mitz_grantor, PolicyParams::MitzGrantor::kAsPatient);
  EXPECT_EQ((*p)->DataCategory("GGC002"), std::optional<CategorySet>(CategorySet{Category::kMedical}));
  EXPECT_EQ((*p)->DataCategory("GGC013"), std::optional<CategorySet>(CategorySet{Category::kMedical}));
  EXPECT_EQ((*p)->data_categories().size(), 2u);
  EXPECT_EQ((*p)->DataCategory("ggc002"), std::nullopt);  // codes are exact
}

TEST(BuiltinPacks, YouthCareExtendsWgboDefault) {
  absl::StatusOr<std::shared_ptr<const Policy>> wgbo = BuiltinPolicy("wgbo-default");
  absl::StatusOr<std::shared_ptr<const Policy>> youth = BuiltinPolicy("youth-care-opvoedrijk");
  ASSERT_TRUE(wgbo.ok() && youth.ok());
  EXPECT_EQ((*youth)->rules().size(), (*wgbo)->rules().size() + 1);
  EXPECT_EQ((*youth)->rules().back().id, "minor_needs_parental_consent");
}

TEST(BuiltinPacks, EveryRuleCitesDomainOrSource) {
  absl::StatusOr<std::shared_ptr<const Policy>> p = BuiltinPolicy("youth-care-opvoedrijk");
  ASSERT_TRUE(p.ok());
  for (const auto& r : (*p)->rules()) {
    SCOPED_TRACE(r.id);
    EXPECT_FALSE(r.cites.empty());
  }
}

const char kHeader[] = "policy test\nversion 1\n";

struct BadPack {
  const char* name;
  std::string text;
  int line;
  const char* message;
};

TEST(PolicyCheck, ReportsMistakesWithLines) {
  const BadPack kCases[] = {
      {"unknown_keyword", std::string(kHeader) + "rule a\n  effect permit\n  colour red\n", 5, "unknown rule keyword 'colour'"},
      {"unknown_role", std::string(kHeader) + "rule a\n  effect forbid\n  role nurse\n  reason employer_never\n", 5, "unknown role 'nurse'"},
      {"unknown_predicate", std::string(kHeader) + "rule a\n  effect permit\n  require vibes\n  reason consent\n  basis gdpr_6_1_a_consent\n", 5, "unknown predicate 'vibes'"},
      {"unknown_reason", std::string(kHeader) + "rule a\n  effect forbid\n  reason because\n", 5, "unknown reason 'because'"},
      {"unknown_param", std::string(kHeader) + "param colour red\n", 3, "unknown parameter 'colour'"},
      {"bad_param_value", std::string(kHeader) + "param consent_12_to_15 parent_only\n", 3, "consent_12_to_15 is one of"},
      {"permit_without_basis", std::string(kHeader) + "rule a\n  effect permit\n  reason consent\n", 3, "has no 'basis'"},
      {"forbid_with_basis", std::string(kHeader) + "rule a\n  effect forbid\n  reason employer_never\n  basis gdpr_6_1_a_consent\n", 3, "has a 'basis'"},
      {"no_effect", std::string(kHeader) + "rule a\n  reason consent\n", 3, "has no 'effect"},
      {"duplicate_id", std::string(kHeader) + "rule a\n  effect forbid\n  role employer\n  reason employer_never\nrule a\n  effect forbid\n  role insurer\n  reason employer_never\n", 7, "used twice"},
      {"never_matches", std::string(kHeader) + "rule a\n  effect forbid\n  category not clinical contact identification financial insurance\n  reason employer_never\n", 3, "can never match"},
      {"requires_and_excludes", std::string(kHeader) + "rule a\n  effect permit\n  require consent\n  unless consent\n  reason consent\n  basis gdpr_6_1_a_consent\n", 3, "requires and excludes consent"},
      {"shadowed_permit", std::string(kHeader) +
           "rule broad\n  effect permit\n  role clinician\n  reason quality_review\n  basis gdpr_9_2_h_health_care\n"
           "rule narrow\n  effect permit\n  role clinician\n  purpose treatment\n  require treating_relationship\n  reason treating_relationship\n  basis gdpr_9_2_h_health_care\n",
       8, "rule narrow is shadowed by rule broad (line 3)"},
      {"shadowed_forbid", std::string(kHeader) +
           "rule a\n  effect forbid\n  role employer insurer\n  reason employer_never\n"
           "rule b\n  effect forbid\n  role employer\n  reason needs_legal_review\n",
       7, "rule b is shadowed by rule a"},
      {"unless_permitted_by_unknown", std::string(kHeader) + "rule a\n  effect forbid\n  when deceased\n  unless_permitted_by nothing\n  reason needs_professional_judgement\n", 6, "names no rule 'nothing'"},
      {"extends_unknown", std::string(kHeader) + "extends nonsense\n", 1, "no built-in pack 'nonsense'"},
      {"no_name", "version 1\n", 1, "no 'policy NAME'"},
      {"rule_without_id", std::string(kHeader) + "rule\n", 3, "a rule starts with"},
      {"data_category_unknown", std::string(kHeader) + "data_category GGC002 medical vibes\n", 3, "unknown category 'vibes'"},
      {"data_category_twice", std::string(kHeader) + "data_category GGC002 medical\ndata_category GGC002 intake\n", 4, "mapped twice"},
      {"data_category_not", std::string(kHeader) + "data_category GGC002 not financial\n", 3, "'not' would reach"},
      {"data_category_bad_code", std::string(kHeader) + "data_category GGC/002 medical\n", 3, "maps a data-category code"},
      {"data_category_empty", std::string(kHeader) + "data_category GGC002\n", 3, "maps a data-category code"},
      {"data_category_in_rule", std::string(kHeader) + "rule a\n  effect forbid\n  role employer\n  reason employer_never\ndata_category GGC002 medical\n", 7, "belongs before the first rule"},
      {"bad_mitz_grantor", std::string(kHeader) + "param mitz_grantor mitz\n", 3, "mitz_grantor is one of"},
  };
  for (const BadPack& c : kCases) {
    SCOPED_TRACE(c.name);
    std::vector<PolicyDiagnostic> ds = CheckPolicy(c.text);
    std::string all = Joined(ds, PolicyDiagnostic::Severity::kWarning);
    bool found = false;
    for (const PolicyDiagnostic& d : ds) {
      if (d.line == c.line && d.message.find(c.message) != std::string::npos) found = true;
    }
    EXPECT_TRUE(found) << "expected line " << c.line << " '" << c.message << "' in:\n" << all;
    EXPECT_FALSE(CompilePolicy(c.text).ok());
  }
}

TEST(PolicyCheck, OnlyIfDisablesWithANote) {
  std::string text = std::string(kHeader) +
                     "rule a\n  only_if emergency_overrides_objection true\n  effect forbid\n  role employer\n  reason employer_never\n";
  std::vector<PolicyDiagnostic> ds = CheckPolicy(text);
  ASSERT_EQ(ds.size(), 1u);
  EXPECT_EQ(ds[0].severity, PolicyDiagnostic::Severity::kNote);
  EXPECT_THAT(ds[0].message, HasSubstr("is off"));
  absl::StatusOr<std::shared_ptr<const Policy>> p = CompilePolicy(text);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_TRUE((*p)->Candidates(Role::kEmployer, Purpose::kTreatment).empty());
}

TEST(PolicyCheck, IndexPutsForbidsFirst) {
  absl::StatusOr<std::shared_ptr<const Policy>> p = BuiltinPolicy("wgbo-default");
  ASSERT_TRUE(p.ok());
  bool seen_permit = false;
  for (uint16_t i : (*p)->Candidates(Role::kClinician, Purpose::kTreatment)) {
    const auto& r = (*p)->rules()[i];
    if (!r.is_forbid()) seen_permit = true;
    EXPECT_FALSE(seen_permit && r.is_forbid()) << r.id;
  }
  EXPECT_TRUE(seen_permit);
}

}  // namespace
}  // namespace toegang
