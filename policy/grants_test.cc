// Copyright toegang authors.
//
// Grants agree with decide by construction; these tests hold them to it. Over every
// case of the corpus, at the case's instant and later ones: each listed grant is a
// permit when decided; the case's own request, when permitted, is among the grants or
// the conditional grants; `valid_until` is the first instant the permit stops (still
// the same permit a microsecond before it); each denial is a deny naming the fact.
#include "policy/grants.h"

#include <map>

#include "absl/strings/match.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "model/fact_index.h"
#include "model/json.h"
#include "model/time.h"
#include "tests/testing/case_corpus.h"

namespace toegang {
namespace {

using ::testing::HasSubstr;

// The actors' side from a fact index and the case's categories.
class IndexSources final : public GrantSources {
 public:
  IndexSources(const FactIndex& index, const std::vector<Fact>& facts) : index_(index) {
    for (const Fact& f : facts) {
      if (const auto* oc = std::get_if<OrgCategory>(&f.body)) categories_[oc->organization].push_back({*oc, f.provenance});
    }
  }
  absl::Span<const Stored<Relationship>> SubstitutionsOf(absl::string_view actor) override {
    auto [it, fresh] = subs_.try_emplace(std::string(actor));
    if (fresh) it->second = index_.SubstitutionsOf(actor);
    return it->second;
  }
  absl::Span<const Stored<OrgCategory>> CategoriesOf(absl::string_view organization) override {
    auto it = categories_.find(std::string(organization));
    if (it == categories_.end()) return {};
    return it->second;
  }
  // An organisation of `category` at `t` among the facts ("" when none).
  std::string OrganizationOf(absl::string_view category, absl::Time t) const {
    for (const auto& [org, list] : categories_) {
      for (const Stored<OrgCategory>& c : list) {
        if (c.value.category == category && c.value.window.Contains(t)) return org;
      }
    }
    return "";
  }

 private:
  const FactIndex& index_;
  std::map<std::string, std::vector<Stored<Relationship>>> subs_;
  std::map<std::string, std::vector<Stored<OrgCategory>>> categories_;
};

// The decision `decide` gives the grantee (as a request of it would say).
Decision DecideFor(const Policy& policy, const PatientRecord& record, IndexSources& sources, const GrantsQuery& q,
                   const Grantee& who, Purpose purpose, absl::Time at) {
  AccessRequest r;
  r.at = at;
  r.patient = record.patient;
  r.action = q.action;
  r.category = q.category;
  r.purpose = purpose;
  r.actor = {who.actor.value_or(""), who.role, who.organization.value_or("")};
  // Anyone of an organisation category: someone acting for one of the facts' organisations
  // of it (a grant that holds at `at` must hold for it).
  if (who.organization_category) r.actor.organization = sources.OrganizationOf(*who.organization_category, at);
  struct Facts final : ActorFactSource {
    Facts(IndexSources& s, std::string actor) : sources(s), actor(std::move(actor)) {}
    absl::Span<const Stored<Relationship>> Substitutions() override { return sources.SubstitutionsOf(actor); }
    absl::Span<const Stored<OrgCategory>> CategoriesOf(absl::string_view org) override { return sources.CategoriesOf(org); }
    IndexSources& sources;
    std::string actor;
  } facts(sources, r.actor.id);
  return Evaluate(policy, r, record, facts);
}

bool Covers(const Grantee& g, const AccessRequest& req) {
  if (g.actor && *g.actor != req.actor.id) return false;
  if (g.role != req.actor.role) return false;
  if (g.organization && *g.organization != req.actor.organization) return false;
  return !g.organization_category;  // checked through the category's organisations below
}

TEST(Grants, AgreeWithDecideOnEveryCase) {
  int listed = 0, found = 0;
  for (const corpus::Case& c : corpus::LoadDomainCases()) {
    SCOPED_TRACE(c.name);
    std::shared_ptr<const Policy> policy = corpus::PolicyOf(c);
    absl::StatusOr<AccessRequest> req = ParseRequest(c.request);
    if (!policy || !req.ok() || req->emergency || req->legal_order || req->recipient) continue;
    const std::vector<Fact> facts = corpus::FactsOf(c);
    FactIndex index;
    if (!index.Append(facts).ok()) continue;
    const PatientRecord record = index.RecordFor(req->patient);
    IndexSources sources(index, facts);
    for (absl::Duration later : {absl::ZeroDuration(), absl::Hours(24 * 30), absl::Hours(24 * 400)}) {
      GrantsQuery q{req->at + later, req->action, req->category, req->purpose};
      GrantList list = ListGrants(*policy, record, q, sources);
      for (const Grant& g : list.grants) {
        if (g.who.organization_category && sources.OrganizationOf(*g.who.organization_category, q.at).empty()) continue;
        ++listed;
        const Decision d = DecideFor(*policy, record, sources, q, g.who, g.purpose, q.at);
        EXPECT_TRUE(d.permitted()) << "listed but denied: " << g.who.actor.value_or("(anyone)") << " " << Name(g.who.role);
        EXPECT_EQ(d.rule, g.decision.rule);
        if (g.valid_until) {
          EXPECT_GT(*g.valid_until, q.at);
          const Decision before = DecideFor(*policy, record, sources, q, g.who, g.purpose, *g.valid_until - absl::Microseconds(1));
          const Decision after = DecideFor(*policy, record, sources, q, g.who, g.purpose, *g.valid_until);
          EXPECT_TRUE(before.permitted() && before.rule == g.decision.rule) << "ended before valid_until";
          EXPECT_FALSE(after.permitted() && after.rule == g.decision.rule && after.consents == g.decision.consents)
              << "still the same permit at valid_until " << FormatInstant(*g.valid_until);
        }
      }
      for (const Denial& d : list.denied) {
        EXPECT_FALSE(d.decision.permitted());
        EXPECT_FALSE(d.facts.empty());
      }
      // The case's own request, moved to the instant: permitted => listed.
      AccessRequest moved = *req;
      moved.at = q.at;
      struct Facts final : ActorFactSource {
        Facts(IndexSources& s, std::string actor) : sources(s), actor(std::move(actor)) {}
        absl::Span<const Stored<Relationship>> Substitutions() override { return sources.SubstitutionsOf(actor); }
        absl::Span<const Stored<OrgCategory>> CategoriesOf(absl::string_view org) override {
          return sources.CategoriesOf(org);
        }
        IndexSources& sources;
        std::string actor;
      } actor_facts(sources, moved.actor.id);
      const Decision want = Evaluate(*policy, moved, record, actor_facts);
      if (!want.permitted()) continue;
      bool covered = false;
      for (const std::vector<Grant>* in : {&list.grants, &list.conditional}) {
        for (const Grant& g : *in) {
          if (g.purpose != moved.purpose) continue;
          if (Covers(g.who, moved) && (in == &list.grants || g.conditions.empty() ||
                                       absl::StartsWith(g.conditions.front(), "substitute_for"))) {
            covered = true;
          }
          // Anyone of the organisation's category.
          if (g.who.organization_category && g.who.role == moved.actor.role && !moved.actor.organization.empty()) {
            for (const Stored<OrgCategory>& oc : sources.CategoriesOf(moved.actor.organization)) {
              covered = covered || (oc.value.category == *g.who.organization_category && oc.value.window.Contains(moved.at));
            }
          }
        }
      }
      EXPECT_TRUE(covered) << "decide permits " << moved.actor.id << " (" << Name(moved.actor.role)
                           << ") but no grant lists them";
      found += covered;
    }
    if (HasFailure()) return;
  }
  EXPECT_GT(listed, 300);
  EXPECT_GT(found, 100);
}

Fact F(const char* json) {
  absl::StatusOr<Fact> f = ParseFactJson(json);
  EXPECT_TRUE(f.ok()) << f.status();
  return *f;
}

TEST(Grants, APatientSeesWhoMayReadAndUntilWhen) {
  const std::vector<Fact> facts = {
      F(R"({"type":"person","id":"pat-1","birth_date":"1980-04-02"})"),
      F(R"({"type":"relationship","id":"rel-1","subject":"clin-1","relation":"treating","object":"pat-1","from":"2026-01-05T00:00:00+01:00","until":"2026-06-01T00:00:00+02:00"})"),
      F(R"({"type":"relationship","subject":"praktijk-a","relation":"registered_with","object":"pat-1"})"),
      F(R"({"type":"consent","id":"con-1","patient":"pat-1","granted_by":"pat-1","to":{"actor":"clin-9"},"purposes":["referral"],"categories":["medical"],"actions":["read"],"from":"2026-03-01T00:00:00+01:00","until":"2026-09-01T00:00:00+02:00"})"),
      F(R"({"type":"objection","id":"obj-1","patient":"pat-1","by":"pat-1","to":{"actor":"clin-2"},"purposes":["treatment"]})"),
      F(R"({"type":"relationship","id":"rel-2","subject":"clin-2","relation":"treating","object":"pat-1"})")};
  FactIndex index;
  ASSERT_TRUE(index.Append(facts).ok());
  const PatientRecord record = index.RecordFor("pat-1");
  IndexSources sources(index, facts);
  std::shared_ptr<const Policy> policy = *BuiltinPolicy("wgbo-default");
  GrantsQuery q{*ParseInstant("2026-03-10T10:00:00+01:00"), Action::kRead, Category::kMedical, std::nullopt};
  const std::string text = GrantsJson(ListGrants(*policy, record, q, sources), "pat-1", q.at, 7);
  ASSERT_TRUE(nlohmann::json::accept(text)) << text;
  const nlohmann::json j = nlohmann::json::parse(text);
  EXPECT_EQ(j["patient"], "pat-1");
  EXPECT_EQ(j["at"], "2026-03-10T09:00:00Z");
  EXPECT_EQ(j["sequence"], 7);
  auto find = [&](const char* list, const char* actor, const char* purpose, const char* rule) -> nlohmann::json {
    for (const nlohmann::json& g : j[list]) {
      const bool same_actor = actor == nullptr ? g["actor"].is_null() : g["actor"] == actor;
      if (same_actor && g["purpose"] == purpose && g["rule"] == rule) return g;
    }
    return nullptr;
  };
  // The treating clinician, until the relationship ends.
  nlohmann::json treating = find("grants", "clin-1", "treatment", "treating_clinician");
  ASSERT_FALSE(treating.is_null()) << text;
  EXPECT_EQ(treating["valid_until"], "2026-05-31T22:00:00Z");
  EXPECT_EQ(treating["legal_basis"], "gdpr_9_2_h_health_care");
  EXPECT_EQ(treating["reasons"], nlohmann::json::array({"treating_relationship"}));
  // The referral consent, until it ends.
  nlohmann::json referral = find("grants", "clin-9", "referral", "consent_to_recipient");
  ASSERT_FALSE(referral.is_null()) << text;
  EXPECT_EQ(referral["consents"], nlohmann::json::array({"con-1"}));
  EXPECT_EQ(referral["valid_until"], "2026-08-31T22:00:00Z");
  // Conditions, not lists of everyone: emergency with a justification, research
  // pseudonymised, whoever covers clin-1 (until clin-1's relationship ends).
  nlohmann::json emergency = find("conditional", nullptr, "emergency", "emergency_access");
  ASSERT_FALSE(emergency.is_null()) << text;
  EXPECT_EQ(emergency["conditions"], nlohmann::json::array({"emergency.justification"}));
  nlohmann::json research = find("conditional", nullptr, "research", "research_deidentified");
  ASSERT_FALSE(research.is_null()) << text;
  EXPECT_EQ(research["obligations"], nlohmann::json::array({"pseudonymize"}));
  bool covering = false;
  for (const nlohmann::json& g : j["conditional"]) {
    covering = covering || (g["conditions"] == nlohmann::json::array({"substitute_for clin-1"}) &&
                            g["rule"] == "substitute_clinician" && g["valid_until"] == "2026-05-31T22:00:00Z");
  }
  EXPECT_TRUE(covering) << text;
  // clin-2 treats the patient but the patient objected: denied, naming the objection.
  EXPECT_TRUE(find("grants", "clin-2", "treatment", "treating_clinician").is_null());
  nlohmann::json denied = find("denied", "clin-2", "treatment", "patient_objection");
  ASSERT_FALSE(denied.is_null()) << text;
  EXPECT_EQ(denied["facts"], nlohmann::json::array({"objection obj-1"}));
  // The practice's assistant reads contact data, not medical.
  EXPECT_TRUE(find("grants", nullptr, "treatment", "practice_assistant").is_null());
  GrantsQuery contact = q;
  contact.category = Category::kContact;
  contact.purpose = Purpose::kTreatment;
  const nlohmann::json c = nlohmann::json::parse(GrantsJson(ListGrants(*policy, record, contact, sources), "pat-1", q.at, 7));
  bool assistant = false;
  for (const nlohmann::json& g : c["grants"]) {
    assistant = assistant || (g["role"] == "assistant" && g["organization"] == "praktijk-a" && g["rule"] == "practice_assistant");
  }
  EXPECT_TRUE(assistant) << c.dump();
}

}  // namespace
}  // namespace toegang
