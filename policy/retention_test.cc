// Copyright toegang authors.
//
// Retention terms (DOMAIN D41, D51, D60, D61), one table: each case a patient's facts,
// an instant, and what must be due then and by which term — leap days, DST, a last
// change restarting the term, a hold that ends, erasure deadlines, the access log's
// own terms and the consents it keeps.
#include "policy/retention.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "model/json.h"
#include "model/time.h"

namespace toegang {
namespace {

absl::Time T(const char* rfc3339) {
  absl::StatusOr<absl::Time> t = ParseInstant(rfc3339);
  EXPECT_TRUE(t.ok()) << rfc3339;
  return *t;
}

PatientRecord RecordOf(const std::vector<std::string>& facts) {
  PatientRecord r;
  r.patient = "pat-1";
  uint64_t seq = 0;
  for (const std::string& json : facts) {
    absl::StatusOr<Fact> f = ParseFactJson(json);
    EXPECT_TRUE(f.ok()) << json << ": " << f.status();
    if (!f.ok()) continue;
    f->provenance.seq = ++seq;
    r.Add(*f);
  }
  return r;
}

const char kAdult[] = R"({"type":"person","id":"pat-1","birth_date":"1980-04-02","recorded_at":"2026-03-10T10:00:00+01:00"})";
const char kConsent[] = R"({"type":"consent","id":"con-1","patient":"pat-1","granted_by":"pat-1","to":{"actor":"clin-2"},"purposes":["treatment"],"categories":["medical"],"actions":["read"],"recorded_at":"2026-03-10T10:00:00+01:00"})";

struct Case {
  const char* name;
  std::vector<std::string> facts;
  std::vector<LoggedRecord> logged;
  const char* at;
  const char* facts_due;  // nullptr: none can be told
  const char* term;
  bool due_now;
  int dossier_years = 20;
  LeapDayRule rule = LeapDayRule::kMarch1;
};

TEST(Retention, TermsAndExceptions) {
  const Case cases[] = {
      {"D60 20 years from the last change, a second before", {kAdult, kConsent}, {},
       "2046-03-10T09:59:59+01:00", "2046-03-10T09:00:00Z", "dossier_20_years", false},
      {"D60 20 years from the last change, at it", {kAdult, kConsent}, {},
       "2046-03-10T10:00:00+01:00", "2046-03-10T09:00:00Z", "dossier_20_years", true},
      {"a later change restarts the term",
       {kAdult, kConsent,
        R"({"type":"withdrawal","consent":"con-1","by":"pat-1","at":"2030-05-01T00:00:00+02:00","recorded_at":"2030-05-01T12:00:00+02:00"})"},
       {}, "2046-03-10T10:00:00+01:00", "2050-05-01T10:00:00Z", "dossier_20_years", false},
      {"a summer change is due at the same wall-clock time in summer",
       {R"({"type":"person","id":"pat-1","birth_date":"1980-04-02","recorded_at":"2026-07-01T12:00:00+02:00"})"}, {},
       "2046-07-01T12:00:00+02:00", "2046-07-01T10:00:00Z", "dossier_20_years", true},
      {"a leap day plus 20 years is a leap day",
       {R"({"type":"person","id":"pat-1","birth_date":"1980-04-02","recorded_at":"2024-02-29T12:00:00+01:00"})"}, {},
       "2044-02-29T12:00:00+01:00", "2044-02-29T11:00:00Z", "dossier_20_years", true},
      {"a leap day plus 21 years is 1 March (march_1)",
       {R"({"type":"person","id":"pat-1","birth_date":"1980-04-02","recorded_at":"2024-02-29T12:00:00+01:00"})"}, {},
       "2045-02-28T23:00:00+01:00", "2045-03-01T11:00:00Z", "dossier_21_years", false, 21},
      {"a leap day plus 21 years is 28 February (feb_28)",
       {R"({"type":"person","id":"pat-1","birth_date":"1980-04-02","recorded_at":"2024-02-29T12:00:00+01:00"})"}, {},
       "2045-02-28T12:00:00+01:00", "2045-02-28T11:00:00Z", "dossier_21_years", true, 21, LeapDayRule::kFeb28},
      {"a hold in force keeps what is due",
       {kAdult, kConsent,
        R"({"type":"retention_hold","id":"hold-1","patient":"pat-1","by":"clin-1","reason":"dispute","from":"2045-01-01T00:00:00+01:00","until":"2047-01-01T00:00:00+01:00","recorded_at":"2045-01-01T00:00:00+01:00"})"},
       {}, "2046-06-01T00:00:00+02:00", "2046-03-10T09:00:00Z", "dossier_20_years", false},
      {"a hold that has ended keeps nothing",
       {kAdult, kConsent,
        R"({"type":"retention_hold","id":"hold-1","patient":"pat-1","by":"clin-1","reason":"dispute","from":"2045-01-01T00:00:00+01:00","until":"2047-01-01T00:00:00+01:00","recorded_at":"2045-01-01T00:00:00+01:00"})"},
       {}, "2047-01-01T00:00:00+01:00", "2046-03-10T09:00:00Z", "dossier_20_years", true},
      {"a hold withdrawn by its author keeps nothing",
       {kAdult, kConsent,
        R"({"type":"retention_hold","id":"hold-1","patient":"pat-1","by":"clin-1","reason":"legal_order","recorded_at":"2045-01-01T00:00:00+01:00"})",
        R"({"type":"withdrawal","consent":"hold-1","by":"clin-1","at":"2046-05-01T00:00:00+02:00"})"},
       {}, "2046-06-01T00:00:00+02:00", "2046-03-10T09:00:00Z", "dossier_20_years", true},
      {"D61 an erasure request makes the dossier due when it is made",
       {kAdult, kConsent,
        R"({"type":"erasure_request","id":"era-1","patient":"pat-1","by":"pat-1","at":"2026-04-01T09:00:00+02:00"})"},
       {}, "2026-04-01T09:00:00+02:00", "2026-04-01T07:00:00Z", "erasure_request era-1", true},
      {"D61 an erasure request made later than now is not yet",
       {kAdult, kConsent,
        R"({"type":"erasure_request","id":"era-1","patient":"pat-1","by":"pat-1","at":"2026-04-01T09:00:00+02:00"})"},
       {}, "2026-03-31T09:00:00+02:00", "2046-03-10T09:00:00Z", "dossier_20_years", false},
      {"D61 a withdrawn erasure request erases nothing",
       {kAdult, kConsent,
        R"({"type":"erasure_request","id":"era-1","patient":"pat-1","by":"pat-1","at":"2026-04-01T09:00:00+02:00"})",
        R"({"type":"withdrawal","consent":"era-1","by":"pat-1","at":"2026-04-02T09:00:00+02:00"})"},
       {}, "2026-05-01T09:00:00+02:00", "2046-03-10T09:00:00Z", "dossier_20_years", false},
      {"D61 a hold keeps a dossier from erasure",
       {kAdult, kConsent,
        R"({"type":"erasure_request","id":"era-1","patient":"pat-1","by":"pat-1","at":"2026-04-01T09:00:00+02:00"})",
        R"({"type":"retention_hold","id":"hold-1","patient":"pat-1","by":"clin-1","reason":"substantial_interest","recorded_at":"2026-04-02T00:00:00+02:00"})"},
       {}, "2026-05-01T09:00:00+02:00", "2046-03-10T09:00:00Z", "dossier_20_years", false},
      {"Jeugdwet: a child-protection measure keeps it 30 years after the 18th birthday",
       {R"({"type":"person","id":"pat-1","birth_date":"2012-06-15","recorded_at":"2026-03-10T10:00:00+01:00"})",
        R"({"type":"retention_hold","id":"hold-1","patient":"pat-1","by":"jb-1","reason":"child_protection","from":"2020-01-01T00:00:00+01:00","until":"2024-01-01T00:00:00+01:00"})",
        R"({"type":"erasure_request","id":"era-1","patient":"pat-1","by":"pat-1","at":"2026-04-01T09:00:00+02:00"})"},
       {}, "2050-01-01T00:00:00+01:00", "2060-06-14T22:00:00Z", "child_protection_30_years_after_18", false},
      {"facts read from a file say not when: kept",
       {R"({"type":"person","id":"pat-1","birth_date":"1980-04-02"})"}, {}, "2999-01-01T00:00:00Z", nullptr, "", false},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    PolicyParams params;
    params.retention_dossier_years = c.dossier_years;
    params.leap_day_rule = c.rule;
    const PatientRecord record = RecordOf(c.facts);
    const RetentionReport r = RetentionOf(params, record, c.logged, T(c.at));
    if (c.facts_due == nullptr) {
      EXPECT_FALSE(r.facts_due.has_value()) << FormatInstant(*r.facts_due);
    } else {
      ASSERT_TRUE(r.facts_due.has_value());
      EXPECT_EQ(FormatInstant(*r.facts_due), c.facts_due);
    }
    EXPECT_EQ(r.facts_term, c.term);
    EXPECT_EQ(r.facts_due_now, c.due_now);
  }
}

TEST(Retention, ErasureDeadlineIsThreeCalendarMonths) {
  EXPECT_EQ(FormatInstant(AddCivilMonths(T("2026-04-01T09:00:00+02:00"), 3)), "2026-07-01T07:00:00Z");
  EXPECT_EQ(FormatInstant(AddCivilMonths(T("2026-11-30T09:00:00+01:00"), 3)), "2027-02-28T08:00:00Z");
  EXPECT_EQ(FormatInstant(AddCivilMonths(T("2027-11-30T09:00:00+01:00"), 3)), "2028-02-29T08:00:00Z");
  // Across the change to summer time: the same wall-clock time.
  EXPECT_EQ(FormatInstant(AddCivilMonths(T("2026-01-15T09:00:00+01:00"), 3)), "2026-04-15T07:00:00Z");
  const PatientRecord r = RecordOf(
      {kAdult, R"({"type":"erasure_request","id":"era-1","patient":"pat-1","by":"pat-1","at":"2026-11-30T09:00:00+01:00"})"});
  RetentionReport report = RetentionOf(PolicyParams{}, r, {}, T("2026-12-01T00:00:00+01:00"));
  ASSERT_EQ(report.erasures.size(), 1u);
  EXPECT_EQ(FormatInstant(report.erasures[0].deadline), "2027-02-28T08:00:00Z");
  EXPECT_EQ(report.erasures[0].status, "requested");
}

// D51: access-log records by their own term; D41: a consent a kept record relied on
// outlives an erasure.
TEST(Retention, AccessLogTermsAndTheConsentsTheyKeep) {
  const PatientRecord r = RecordOf(
      {kAdult, kConsent,
       R"({"type":"erasure_request","id":"era-1","patient":"pat-1","by":"pat-1","at":"2026-04-01T09:00:00+02:00"})"});
  std::vector<LoggedRecord> logged = {
      {7, T("2026-03-12T10:00:00+01:00"), Category::kMedical, {"con-1"}},
      {9, T("2026-03-20T10:00:00+01:00"), Category::kFinancial, {}},
  };
  RetentionReport report = RetentionOf(PolicyParams{}, r, logged, T("2026-04-02T00:00:00+02:00"));
  EXPECT_TRUE(report.facts_due_now);
  ASSERT_EQ(report.access_log.size(), 2u);
  EXPECT_EQ(FormatInstant(report.access_log[0].due), "2031-03-12T09:00:00Z");
  EXPECT_EQ(report.access_log[0].term, "access_log_5_years");
  EXPECT_EQ(FormatInstant(report.access_log[1].due), "2033-03-20T09:00:00Z");
  EXPECT_EQ(report.access_log[1].term, "financial_7_years");
  EXPECT_FALSE(report.access_log[0].due_now);
  ASSERT_EQ(report.kept.size(), 1u);
  EXPECT_EQ(report.kept[0].fact, "con-1");
  EXPECT_EQ(report.kept[0].record, 7u);
  EXPECT_EQ(FormatInstant(report.kept[0].until), "2031-03-12T09:00:00Z");
  // Five years on, the record is due and keeps nothing.
  report = RetentionOf(PolicyParams{}, r, logged, T("2031-03-12T10:00:00+01:00"));
  EXPECT_TRUE(report.access_log[0].due_now);
  EXPECT_FALSE(report.access_log[1].due_now);
  EXPECT_TRUE(report.kept.empty());
  // As JSON.
  const std::string json = RetentionJson(report);
  EXPECT_THAT(json, ::testing::HasSubstr(R"("term":"erasure_request era-1")"));
  EXPECT_THAT(json, ::testing::HasSubstr(R"("deadline":"2026-07-01T07:00:00Z")"));
}

}  // namespace
}  // namespace toegang
