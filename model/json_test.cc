// Copyright toegang authors.
// The strict JSON form of API.md: every shape of the contract parses, every bad input
// is refused with a message naming the field, and printing round-trips.
#include "model/json.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace toegang {
namespace {

using ::testing::HasSubstr;
using nlohmann::json;

// The fact lines of API.md, verbatim.
const char* const kApiFacts[] = {
    R"({"type":"person","id":"pat-1","birth_date":"2014-02-28","death_date":null})",
    R"({"type":"relationship","id":"rel-1","subject":"clin-1","relation":"treating","object":"pat-1","from":"2026-01-05T00:00:00+01:00","until":null})",
    R"({"type":"relationship","id":"rel-2","subject":"clin-2","relation":"substitute_for","object":"clin-1","from":"2026-07-01T00:00:00+02:00","until":"2026-07-22T00:00:00+02:00"})",
    R"({"type":"relationship","id":"rel-3","subject":"par-1","relation":"parent_with_authority","object":"pat-1"})",
    R"({"type":"consent","id":"con-1","patient":"pat-1","granted_by":"pat-1","to":{"actor":"clin-9"},"purposes":["referral"],"categories":["medical"],"actions":["read","disclose"],"from":"2026-03-01T00:00:00+01:00","until":null,"evidence":"intake form 2026-03-01"})",
    R"({"type":"withdrawal","consent":"con-1","by":"pat-1","at":"2026-09-01T12:00:00+02:00"})",
    R"({"type":"objection","id":"obj-1","patient":"pat-1","by":"pat-1","purposes":["research"],"from":"2026-02-01T00:00:00+01:00"})",
    R"({"type":"restriction","id":"res-1","patient":"pat-1","by":"clin-1","to":{"role":"parent"},"categories":["medical"],"from":"2026-05-01T00:00:00+02:00","reason":"not in the child's interest"})",
    R"({"type":"capacity","id":"cap-1","patient":"pat-7","by":"clin-3","capable":false,"from":"2026-02-01T00:00:00+01:00"})",
    R"({"type":"org_category","organization":"apotheek-1","category":"RPZAC005","from":"2026-01-01T00:00:00+01:00"})",
    R"({"type":"org_category","id":"oc-1","organization":"huisarts-1","category":"RPZAC001","until":"2027-01-01T00:00:00+01:00"})",
    R"({"type":"consent","id":"mitz-1","patient":"pat-1","granted_by":"pat-1","to":{"organization_category":"RPZAC005"},"purposes":["treatment"],"categories":["medical"],"actions":["read","disclose"]})",
    R"({"type":"objection","id":"obj-2","patient":"pat-1","by":"pat-1","to":{"organization_category":"RPZAC001"}})",
};

// DecisionToJson writes the text itself; it must be exactly the tree's text, for every
// field present or absent and for strings that need escaping or are not UTF-8.
TEST(DecisionJsonTest, WrittenTextIsTheTreesText) {
  const std::string odd[] = {"", "plain", "with \"quotes\" and \\", "tab\tnew\nline\x01", "caf\xC3\xA9 \xE2\x82\xAC",
                             "bad \xFF\xC3 utf-8", std::string(300, 'x'), "\x7F del"};
  int checked = 0;
  for (const std::string& text : odd) {
    for (int shape = 0; shape < 16; ++shape) {
      Decision d;
      d.effect = shape % 2 ? Effect::kPermit : Effect::kDeny;
      if (shape & 2) {
        d.reasons = {Reason::kTreatingRelationship, Reason::kNoEffectiveConsent};
        d.obligations = {Obligation::kLogAccess};
        d.legal_basis = LegalBasis::kVitalInterest;
        d.age_band = AgeBand::k12To15;
      }
      if (shape & 4) d.consents = {text, "con-2"};
      d.policy = shape & 8 ? absl::string_view(text) : absl::string_view("wgbo-default@1");
      d.rule = shape & 4 ? absl::string_view(text) : absl::string_view();
      d.error = shape & 8 ? text : "";
      for (absl::string_view id : {absl::string_view(), absl::string_view("57b2cbd2-1z"), absl::string_view(text)}) {
        SCOPED_TRACE(absl::StrCat("shape ", shape, " text ", JsonText(json(text)), " id ", id));
        EXPECT_EQ(DecisionToJson(d, id), JsonText(DecisionToJsonValue(d, id)));
        ++checked;
      }
    }
  }
  EXPECT_EQ(checked, 8 * 16 * 3);
}

// Requests of the usual shape are read straight from the text (no tree); whatever the
// text, the answer must be the full reading's. Near misses of the usual shape too.
TEST(RequestJsonTest, StraightReadingAgreesWithTheTree) {
  const std::string base =
      R"({"at":"2026-06-15T08:30:00Z","actor":{"id":"clin-334","role":"clinician"},"patient":"pat-65334","action":"read","category":"medical","purpose":"treatment"})";
  const std::vector<std::string> lines = {
      base,
      R"(  { "purpose" : "treatment", "patient":"pat-1", "actor": {"role":"parent","id":"par-1","organization":"org-1"},
           "category":"medical","action":"read","at":"2026-06-15T10:30:00+02:00" }  )",
      R"({"at":"2026-06-15T08:30:00Z","actor":{"id":"clin-334","role":"clinician","organization":""},"patient":"p","action":"read","category":"medical","purpose":"treatment"})",
      R"({"at":"2026-06-15T08:30:00Z","actor":{"id":"clin-334","role":"clinician","organization":null},"patient":"p","action":"read","category":"medical","purpose":"treatment"})",
      R"({"at":"2026-06-15T08:30:00Z","actor":{"id":"clin-334"},"patient":"p","action":"read","category":"medical","purpose":"treatment"})",
      R"({"at":"2026-06-15T08:30:00Z","actor":{"id":"clin-334","role":"clinician","role":"parent"},"patient":"p","action":"read","category":"medical","purpose":"treatment"})",
      R"({"at":"2026-06-15T08:30:00Z","at":"2026-06-15T08:30:00Z","actor":{"id":"c","role":"clinician"},"patient":"p","action":"read","category":"medical","purpose":"treatment"})",
      R"({"at":"2026-06-15T08:30:00Z","actor":{"id":"c","role":"clinician"},"actor":{"id":"d","role":"clinician"},"patient":"p","action":"read","category":"medical","purpose":"treatment"})",
      R"({"at":"2026-06-15T08:30:00Z","actor":{"id":"c","role":"clinician"},"patient":"p","action":"read","category":"medical","purpose":"treatment","id":"x"})",
      R"({"at":"2026-06-15T08:30:00Z","actor":{"id":"c","role":"clinician","patient":"q"},"patient":"p","action":"read","category":"medical","purpose":"treatment"})",
      R"({"at":"2026-06-15T08:30:00Z","actor":{"id":"c","role":"clinician"},"patient":"p","action":"read","category":"medical","purpose":"marketing"})",
      R"({"at":"2026-06-15T08:30:00Z","actor":{"id":"c","role":"nurse"},"patient":"p","action":"read","category":"medical","purpose":"treatment"})",
      R"({"at":"yesterday","actor":{"id":"c","role":"clinician"},"patient":"p","action":"read","category":"medical","purpose":"treatment"})",
      R"({"at":"2026-06-15T08:30:00Z","actor":{"id":"c","role":"clinician"},"patient":"","action":"read","category":"medical","purpose":"treatment"})",
      R"({"at":"2026-06-15T08:30:00Z","actor":{"id":"c","role":"clinician"},"patient":"111222333","action":"read","category":"medical","purpose":"treatment"})",
      R"({"at":"2026-06-15T08:30:00Z","actor":{"id":"c","role":"clinician"},"patient":"p\u0041","action":"read","category":"medical","purpose":"treatment"})",
      R"({"at":"2026-06-15T08:30:00Z","actor":{"id":"c","role":"clinician"},"patient":"pat-Ã«","action":"read","category":"medical","purpose":"treatment"})",
      R"({"at":"2026-06-15T08:30:00Z","actor":{"id":"c","role":"clinician"},"patient":"p","action":"read","category":"medical","purpose":"treatment","emergency":{"justification":"x"}})",
      R"({"at":"2026-06-15T08:30:00Z","actor":{"id":"c","role":"clinician"},"patient":"p","action":"read","category":"medical","purpose":"treatment"} x)",
      R"({"at":"2026-06-15T08:30:00Z","actor":{"id":"c","role":"clinician"},"patient":"p","action":"read","category":"medical","purpose":"treatment",})",
      R"({"at":"2026-06-15T08:30:00Z","actor":{"id":"c","role":"clinician"},"patient":"p","action":"read","category":"medical","purpose":"treatment")",
      R"({"at":"2026-06-15T08:30:00Z","actor":{},"patient":"p","action":"read","category":"medical","purpose":"treatment"})",
      R"({})",
      R"([])",
      "",
      std::string("{\"at\":\"2026-06-15T08:30:00Z\"\0}"),
      R"({"at":"2026-06-15T08:30:00Z","actor":{"id":"c","role":"clinician"},"patient":"p","action":"read","category":"medical","purpose":1})",
  };
  int straight = 0;
  for (const std::string& line : lines) {
    SCOPED_TRACE(line);
    absl::StatusOr<AccessRequest> got = ParseRequestJson(line);
    absl::StatusOr<json> tree = ParseJsonStrict(line);
    absl::StatusOr<AccessRequest> full = tree.ok() ? ParseRequest(*tree) : absl::StatusOr<AccessRequest>(tree.status());
    ASSERT_EQ(got.ok(), full.ok()) << (got.ok() ? full.status() : got.status());
    if (got.ok()) {
      EXPECT_EQ(RequestToJsonValue(*got), RequestToJsonValue(*full));
      ++straight;
    } else {
      EXPECT_EQ(got.status(), full.status());
    }
  }
  EXPECT_GE(straight, 4);
}

TEST(FactJsonTest, ApiExamplesParseAndRoundTrip) {
  for (const char* line : kApiFacts) {
    SCOPED_TRACE(line);
    absl::StatusOr<Fact> fact = ParseFactJson(line);
    ASSERT_TRUE(fact.ok()) << fact.status();
    std::string printed = FactToJson(*fact, /*with_provenance=*/false);
    absl::StatusOr<Fact> again = ParseFactJson(printed);
    ASSERT_TRUE(again.ok()) << printed << ": " << again.status();
    EXPECT_EQ(FactToJson(*again, false), printed);
  }
}

TEST(FactJsonTest, ConsentFields) {
  absl::StatusOr<Fact> fact = ParseFactJson(kApiFacts[4]);
  ASSERT_TRUE(fact.ok());
  const Consent& c = std::get<Consent>(fact->body);
  EXPECT_EQ(c.to.kind, Party::Kind::kActor);
  EXPECT_EQ(c.to.id, "clin-9");
  EXPECT_TRUE(c.actions.Contains(Action::kDisclose));
  EXPECT_FALSE(c.actions.Contains(Action::kWrite));
  EXPECT_EQ(c.window.until, absl::InfiniteFuture());
  EXPECT_FALSE(fact->provenance.recorded_at.has_value());
}

TEST(FactJsonTest, RecordedAtIsKept) {
  absl::StatusOr<Fact> fact = ParseFactJson(
      R"({"type":"withdrawal","consent":"con-1","by":"pat-1","at":"2026-09-01T12:00:00+02:00","recorded_at":"2026-09-02T08:00:00+02:00"})");
  ASSERT_TRUE(fact.ok()) << fact.status();
  ASSERT_TRUE(fact->provenance.recorded_at.has_value());
}

struct BadFact {
  const char* name;
  const char* line;
  const char* message_part;
};

TEST(FactJsonTest, BadFactsNameTheField) {
  const BadFact kCases[] = {
      {"not_json", R"({"type":"person",)", "malformed JSON"},
      {"not_object", R"(["person"])", "JSON object"},
      {"unknown_type", R"({"type":"diagnosis","id":"x"})", "unknown fact type (expected person"},
      {"missing_type", R"({"id":"x"})", "type: required"},
      {"unknown_field", R"({"type":"person","id":"p","bsn":"x"})", "person.bsn: unknown field"},
      {"D5_impossible_birth_date", R"({"type":"person","id":"p","birth_date":"2010-02-29"})", "person.birth_date: date '2010-02-29' does not exist"},
      {"death_before_birth", R"({"type":"person","id":"p","birth_date":"2010-02-28","death_date":"2009-01-01"})", "person.death_date"},
      {"unknown_relation", R"({"type":"relationship","subject":"a","relation":"friend","object":"b"})", "relationship.relation: unknown relation (expected "},
      {"until_before_from", R"({"type":"relationship","subject":"a","relation":"treating","object":"b","from":"2026-02-01T00:00:00Z","until":"2026-01-01T00:00:00Z"})", "relationship.until: must be after from"},
      {"until_equals_from", R"({"type":"relationship","subject":"a","relation":"treating","object":"b","from":"2026-02-01T00:00:00Z","until":"2026-02-01T00:00:00Z"})", "relationship.until"},
      {"instant_without_offset", R"({"type":"relationship","subject":"a","relation":"treating","object":"b","from":"2026-02-01T00:00:00"})", "relationship.from: not an RFC 3339 instant"},
      {"D32_marketing_purpose", R"({"type":"consent","id":"c","patient":"p","granted_by":"p","to":{"actor":"x"},"purposes":["treatment","marketing"],"categories":["medical"],"actions":["read"]})", "consent.purposes[1]: unknown purpose (expected "},
      {"consent_without_categories", R"({"type":"consent","id":"c","patient":"p","granted_by":"p","to":{"actor":"x"},"purposes":["treatment"],"actions":["read"]})", "consent.categories: required"},
      {"consent_empty_actions", R"({"type":"consent","id":"c","patient":"p","granted_by":"p","to":{"actor":"x"},"purposes":["treatment"],"categories":["medical"],"actions":[]})", "consent.actions: must not be empty"},
      {"party_two_kinds", R"({"type":"consent","id":"c","patient":"p","granted_by":"p","to":{"actor":"x","role":"parent"},"purposes":["treatment"],"categories":["medical"],"actions":["read"]})", "consent.to: names exactly one party"},
      {"party_unknown_role", R"({"type":"objection","id":"o","patient":"p","by":"p","to":{"role":"neighbour"}})", "objection.to.role: unknown role (expected "},
      {"empty_id", R"({"type":"person","id":""})", "person.id: an id is 1..128 bytes"},
      {"control_char_in_id", R"({"type":"person","id":"pat\u0000-1"})", "person.id: an id has no control characters"},
      {"capable_not_bool", R"({"type":"capacity","id":"c","patient":"p","by":"d","capable":"no"})", "capacity.capable: must be true or false"},
      {"withdrawal_without_at", R"({"type":"withdrawal","consent":"c","by":"p"})", "withdrawal.at: required"},
      {"org_category_without_category", R"({"type":"org_category","organization":"o"})", "org_category.category: required"},
      {"org_category_without_organization", R"({"type":"org_category","category":"RPZAC005"})", "org_category.organization: required"},
      {"org_category_patient", R"({"type":"org_category","organization":"o","category":"c","patient":"p"})", "org_category.patient: unknown field"},
      {"party_category_not_string", R"({"type":"objection","id":"o","patient":"p","by":"p","to":{"organization_category":5}})", "objection.to.organization_category"},
  };
  for (const BadFact& c : kCases) {
    SCOPED_TRACE(c.name);
    absl::StatusOr<Fact> fact = ParseFactJson(c.line);
    ASSERT_FALSE(fact.ok());
    EXPECT_EQ(fact.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(fact.status().message()), HasSubstr(c.message_part));
  }
}

TEST(FactJsonTest, IdLongerThan128BytesIsRefused) {
  std::string line = R"({"type":"person","id":")" + std::string(129, 'x') + "\"}";
  absl::StatusOr<Fact> fact = ParseFactJson(line);
  ASSERT_FALSE(fact.ok());
  EXPECT_THAT(std::string(fact.status().message()), HasSubstr("person.id: an id is 1..128 bytes"));
  EXPECT_TRUE(ParseFactJson(R"({"type":"person","id":")" + std::string(128, 'x') + "\"}").ok());
}

TEST(FactJsonTest, BsnIsNeverAnIdAndNeverEchoed) {
  // 111222333 passes the eleven test; every written form of it is refused as an id, in
  // every id field, and no error repeats it.
  const char* forms[] = {"111222333", "bsn-111222333", "111 222 333", "1112.22.333", "0111222333"};
  for (const char* bsn : forms) {
    SCOPED_TRACE(bsn);
    const std::string id = bsn;
    const std::string lines[] = {
        R"({"type":"person","id":")" + id + R"("})",
        R"({"type":"relationship","subject":")" + id + R"(","relation":"treating","object":"pat-1"})",
        R"({"type":"consent","id":"c","patient":"pat-1","granted_by":"pat-1","to":{"actor":")" + id +
            R"("},"purposes":["referral"],"categories":["medical"],"actions":["read"]})",
    };
    for (const std::string& line : lines) {
      absl::StatusOr<Fact> fact = ParseFactJson(line);
      ASSERT_FALSE(fact.ok()) << line;
      EXPECT_THAT(std::string(fact.status().message()), HasSubstr("may be a BSN"));
      EXPECT_THAT(std::string(fact.status().message()), ::testing::Not(HasSubstr("222")));
    }
    absl::StatusOr<AccessRequest> req = ParseRequestJson(
        R"({"at":"2026-03-10T10:00:00+01:00","actor":{"id":")" + id +
        R"(","role":"clinician"},"patient":"p","action":"read","category":"medical","purpose":"treatment"})");
    ASSERT_FALSE(req.ok());
    EXPECT_THAT(std::string(req.status().message()), ::testing::Not(HasSubstr("222")));
  }
  // A date is three numbers, never joined into one.
  EXPECT_TRUE(ParseFactJson(R"({"type":"person","id":"born-2011-12-23"})").ok());
}

TEST(FactJsonTest, ErrorsSayWhatIsWrongWithoutRepeatingTheValue) {
  struct Case {
    const char* name;
    std::string json;
    const char* says;
  };
  const Case cases[] = {
      {"unknown enum", R"({"at":"2026-03-10T10:00:00+01:00","actor":{"id":"a","role":"clinician"},"patient":"p","action":"read","category":"medical","purpose":"BSN 111222333 J. Jansen"})",
       "purpose: unknown purpose (expected treatment, "},
      {"unknown field", R"({"at":"2026-03-10T10:00:00+01:00","actor":{"id":"a","role":"clinician","111222333":1},"patient":"p","action":"read","category":"medical","purpose":"treatment"})",
       "actor.(a field whose name is not shown): unknown field"},
      {"unknown party field", R"({"at":"2026-03-10T10:00:00+01:00","actor":{"id":"a","role":"clinician"},"patient":"p","action":"read","category":"medical","purpose":"treatment","recipient":{"111222333":"x"}})",
       "unknown field (expected actor, role, organization or organization_category)"},
      {"bad instant", R"({"at":"2026-03-10T10:00:00 111222333","actor":{"id":"a","role":"clinician"},"patient":"p","action":"read","category":"medical","purpose":"treatment"})",
       "at: the instant needs an offset"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    absl::StatusOr<AccessRequest> req = ParseRequestJson(c.json);
    ASSERT_FALSE(req.ok());
    EXPECT_THAT(std::string(req.status().message()), HasSubstr(c.says));
    EXPECT_THAT(std::string(req.status().message()), ::testing::Not(HasSubstr("111222333")));
  }
  absl::StatusOr<Fact> type = ParseFactJson(R"({"type":"111222333"})");
  ASSERT_FALSE(type.ok());
  EXPECT_THAT(std::string(type.status().message()), ::testing::Not(HasSubstr("111222333")));
}

TEST(FactJsonTest, FreeTextHasItsBsnsReplaced) {
  absl::StatusOr<Fact> consent = ParseFactJson(
      R"({"type":"consent","id":"c","patient":"pat-1","granted_by":"pat-1","to":{"actor":"d"},"purposes":["referral"],"categories":["medical"],"actions":["read"],"evidence":"form of BSN 111 222 333, signed 2026-03-01"})");
  ASSERT_TRUE(consent.ok()) << consent.status();
  EXPECT_EQ(std::get<Consent>(consent->body).evidence, "form of BSN [bsn], signed 2026-03-01");
  absl::StatusOr<Fact> restriction = ParseFactJson(
      R"({"type":"restriction","id":"r","patient":"pat-1","by":"c","reason":"see 0111222333"})");
  ASSERT_TRUE(restriction.ok()) << restriction.status();
  EXPECT_EQ(std::get<Restriction>(restriction->body).reason, "see [bsn]");
  absl::StatusOr<AccessRequest> req = ParseRequestJson(
      R"({"at":"2026-03-10T10:00:00+01:00","actor":{"id":"a","role":"clinician"},"patient":"p","action":"read","category":"medical","purpose":"emergency","emergency":{"justification":"unconscious, BSN 1112.22.333"}})");
  ASSERT_TRUE(req.ok()) << req.status();
  EXPECT_EQ(req->emergency_justification, "unconscious, BSN [bsn]");
}

TEST(FactJsonTest, OversizedInputIsRefused) {
  std::string big = R"({"type":"person","id":"p","x":")" + std::string(kMaxJsonLineBytes, 'a') + "\"}";
  absl::StatusOr<Fact> fact = ParseFactJson(big);
  ASSERT_FALSE(fact.ok());
  EXPECT_THAT(std::string(fact.status().message()), HasSubstr("exceeds the limit"));
}

const char kApiRequest[] =
    R"({"at":"2026-11-23T10:15:00+01:00",
        "actor":{"id":"clin-1","role":"clinician","organization":"praktijk-a"},
        "patient":"pat-1","action":"read","category":"medical","purpose":"treatment",
        "emergency":{"justification":"unresponsive patient at the out-of-hours post"},
        "legal_order":null})";

TEST(RequestJsonTest, ApiExampleParsesAndRoundTrips) {
  absl::StatusOr<AccessRequest> req = ParseRequestJson(kApiRequest);
  ASSERT_TRUE(req.ok()) << req.status();
  EXPECT_EQ(req->actor.role, Role::kClinician);
  EXPECT_EQ(req->actor.organization, "praktijk-a");
  EXPECT_TRUE(req->emergency);
  EXPECT_FALSE(req->legal_order.has_value());
  std::string printed = RequestToJsonValue(*req).dump();
  absl::StatusOr<AccessRequest> again = ParseRequestJson(printed);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(RequestToJsonValue(*again).dump(), printed);
}

TEST(RequestJsonTest, AConsistencyTokenIsReadAndWrittenBack) {
  absl::StatusOr<AccessRequest> req = ParseRequestJson(
      R"({"at":"2026-11-23T10:15:00Z","actor":{"id":"a","role":"clinician"},"patient":"p","action":"read","category":"medical","purpose":"treatment","consistency":{"at_least":"tg1.0123456789abcdef0123456789abcdef.42"}})");
  ASSERT_TRUE(req.ok()) << req.status();
  EXPECT_EQ(req->at_least, "tg1.0123456789abcdef0123456789abcdef.42");
  EXPECT_EQ(RequestToJsonValue(*req)["consistency"]["at_least"], req->at_least);
}

TEST(RequestJsonTest, BadRequestsNameTheField) {
  const BadFact kCases[] = {
      {"D32_marketing", R"({"at":"2026-11-23T10:15:00Z","actor":{"id":"a","role":"clinician"},"patient":"p","action":"read","category":"medical","purpose":"marketing"})", "purpose: unknown purpose (expected "},
      {"unknown_role", R"({"at":"2026-11-23T10:15:00Z","actor":{"id":"a","role":"nurse"},"patient":"p","action":"read","category":"medical","purpose":"treatment"})", "actor.role: unknown role (expected "},
      {"missing_at", R"({"actor":{"id":"a","role":"clinician"},"patient":"p","action":"read","category":"medical","purpose":"treatment"})", "at: required"},
      {"bad_at", R"({"at":"yesterday","actor":{"id":"a","role":"clinician"},"patient":"p","action":"read","category":"medical","purpose":"treatment"})", "at: not an RFC 3339"},
      {"unknown_top_level", R"({"at":"2026-11-23T10:15:00Z","actor":{"id":"a","role":"clinician"},"patient":"p","action":"read","category":"medical","purpose":"treatment","override":true})", "override: unknown field"},
      {"unknown_actor_field", R"({"at":"2026-11-23T10:15:00Z","actor":{"id":"a","role":"clinician","admin":true},"patient":"p","action":"read","category":"medical","purpose":"treatment"})", "actor.admin: unknown field"},
      {"unknown_category", R"({"at":"2026-11-23T10:15:00Z","actor":{"id":"a","role":"clinician"},"patient":"p","action":"read","category":"genome","purpose":"treatment"})", "category: unknown category (expected "},
      {"duplicate_purpose", R"({"at":"2026-11-23T10:15:00Z","actor":{"id":"a","role":"clinician"},"patient":"p","action":"read","category":"medical","purpose":"treatment","purpose":"research"})", "purpose: appears twice"},
      {"duplicate_nested", R"({"at":"2026-11-23T10:15:00Z","actor":{"id":"a","role":"clinician","role":"patient"},"patient":"p","action":"read","category":"medical","purpose":"treatment"})", "role: appears twice"},
      {"duplicate_in_array_object", R"({"at":"2026-11-23T10:15:00Z","actor":{"id":"a","role":"clinician"},"patient":"p","action":"read","category":"medical","purpose":"treatment","x":[{"k":1,"k":2}]})", "k: appears twice"},
      {"duplicate_then_malformed", R"({"at":"2026-11-23T10:15:00Z","at":"2026-11-23T10:15:00Z","actor":{)", "malformed JSON"},
      {"same_key_in_two_objects_is_fine_but_unknown", R"({"at":"2026-11-23T10:15:00Z","actor":{"id":"a","role":"clinician"},"patient":"p","action":"read","category":"medical","purpose":"treatment","x":{"id":"b"}})", "x: unknown field"},
      {"action_not_string", R"({"at":"2026-11-23T10:15:00Z","actor":{"id":"a","role":"clinician"},"patient":"p","action":1,"category":"medical","purpose":"treatment"})", "action: must be a action name"},
      {"consistency_not_object", R"({"at":"2026-11-23T10:15:00Z","actor":{"id":"a","role":"clinician"},"patient":"p","action":"read","category":"medical","purpose":"treatment","consistency":"tg1.x.1"})", "consistency: must be an object with at_least"},
      {"consistency_without_token", R"({"at":"2026-11-23T10:15:00Z","actor":{"id":"a","role":"clinician"},"patient":"p","action":"read","category":"medical","purpose":"treatment","consistency":{}})", "consistency.at_least: required"},
      {"consistency_empty_token", R"({"at":"2026-11-23T10:15:00Z","actor":{"id":"a","role":"clinician"},"patient":"p","action":"read","category":"medical","purpose":"treatment","consistency":{"at_least":""}})", "consistency.at_least: must be a consistency token"},
      {"consistency_unknown_field", R"({"at":"2026-11-23T10:15:00Z","actor":{"id":"a","role":"clinician"},"patient":"p","action":"read","category":"medical","purpose":"treatment","consistency":{"at_least":"tg1","within":"1s"}})", "consistency.within: unknown field"},
  };
  for (const BadFact& c : kCases) {
    SCOPED_TRACE(c.name);
    absl::StatusOr<AccessRequest> req = ParseRequestJson(c.line);
    ASSERT_FALSE(req.ok());
    EXPECT_THAT(std::string(req.status().message()), HasSubstr(c.message_part));
  }
}

TEST(DecisionJsonTest, InvalidRequestShape) {
  nlohmann::json j = nlohmann::json::parse(InvalidRequestJson("at: required field is missing"));
  EXPECT_EQ(j["decision"], "deny");
  EXPECT_EQ(j["reasons"], nlohmann::json::array({"invalid_request"}));
  EXPECT_EQ(j["error"], "at: required field is missing");
}

// Found by fuzzing (fuzz/corpus/http_request/regression-non-utf8-patient-in-path.http):
// ids from URL paths and frames do not pass the JSON parser, and one that was not UTF-8
// made the answer's JSON encoder throw.
TEST(TextTest, Utf8Validation) {
  struct Case {
    std::string text;
    bool valid;
  };
  const Case cases[] = {
      {"", true},
      {"pat-1", true},
      {"Zoë van 't Hof", true},
      {"\xE2\x82\xAC", true},          // €
      {"\xF0\x9F\x98\x80", true},      // U+1F600
      {"\xF4\x8F\xBF\xBF", true},      // U+10FFFF
      {"pa\xC5-1", false},             // a lead byte without its continuation
      {"\xC5", false},                 // truncated at the end
      {"\x80", false},                 // a lone continuation byte
      {"\xC0\xAF", false},             // overlong '/'
      {"\xE0\x80\xAF", false},         // overlong, three bytes
      {"\xED\xA0\x80", false},         // a surrogate (U+D800)
      {"\xF4\x90\x80\x80", false},     // past U+10FFFF
      {"\xF5\x80\x80\x80", false},
      {"\xFF", false},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(IsValidUtf8(c.text), c.valid) << testing::PrintToString(c.text);
    EXPECT_EQ(CheckId(c.text.empty() ? "x" : c.text, "patient").ok(), c.valid) << testing::PrintToString(c.text);
    EXPECT_EQ(CheckText(c.text, "justification").ok(), c.valid) << testing::PrintToString(c.text);
  }
  EXPECT_THAT(std::string(CheckId("pa\xC5-1", "patient").message()), testing::HasSubstr("patient"));
  EXPECT_FALSE(CheckText(std::string(kMaxTextBytes + 1, 'a'), "legal_order").ok());
}

TEST(TextTest, JsonTextNeverThrows) {
  EXPECT_EQ(JsonText(nlohmann::json{{"patient", "pa\xC5-1"}}), "{\"patient\":\"pa\xEF\xBF\xBD-1\"}");
}

}  // namespace
}  // namespace toegang

namespace toegang {
namespace {

// The JSON parser stops at a NUL as at the end of input: without a check, whatever
// followed one on a line (an objection after a person) would vanish without a word.
TEST(FactJsonTest, ANulByteAnywhereIsBadInputNamingWhere) {
  const std::string fact = std::string(R"({"type":"person","id":"pat-1"})") + std::string(1, '\0') +
                           R"({"type":"objection","id":"o","patient":"pat-1","by":"pat-1"})";
  absl::StatusOr<Fact> f = ParseFactJson(fact);
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(f.status().message().find("a NUL byte at byte 31"), std::string::npos) << f.status();
  const std::string request =
      std::string(R"({"at":"2026-03-10T10:00:00+01:00","actor":{"id":"c","role":"clinician"},"patient":"p",)") +
      std::string(1, '\0') + R"("action":"read","category":"medical","purpose":"treatment"})";
  EXPECT_FALSE(ParseRequestJson(request).ok());
  EXPECT_FALSE(ParseFactJson(std::string(R"({"type":"person","id":"pat-1"})") + std::string(1, '\0')).ok());
}

}  // namespace
}  // namespace toegang

namespace toegang {
namespace {

TEST(FactLinesTest, LinesAreNumberedAndABadOneIsNamedAsData) {
  const std::string text = std::string(R"({"type":"person","id":"pat-1"})") + "\n\n  \n" +
                           R"({"type":"person","id":"pat-2"})" + "\n";
  absl::StatusOr<FactLines> ok = ParseFactLines(text);
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->facts.size(), 2u);
  EXPECT_EQ(ok->lines, (std::vector<int>{1, 4}));
  absl::StatusOr<FactLines> bad = ParseFactLines(text + R"({"type":"person","id":"pat-3","birth_date":"2010-02-29"})");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(LineOf(bad.status()), 5u);
  EXPECT_EQ(std::string(bad.status().message()), "line 5: " + WhatAtLine(bad.status()));
  EXPECT_THAT(WhatAtLine(bad.status()), HasSubstr("person.birth_date"));
  EXPECT_EQ(ParseFactLines(text, 1).status().code(), absl::StatusCode::kResourceExhausted);
}

}  // namespace
}  // namespace toegang
