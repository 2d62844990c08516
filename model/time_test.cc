// Copyright toegang authors.
// DOMAIN D4–D5: age on the civil date of `at` in Europe/Amsterdam.
#include "model/time.h"

#include <random>
#include <string>

#include "absl/strings/str_format.h"

#include "gtest/gtest.h"

namespace toegang {
namespace {

absl::Time At(const char* text) {
  absl::StatusOr<absl::Time> t = ParseInstant(text);
  EXPECT_TRUE(t.ok()) << text << ": " << t.status();
  return t.ok() ? *t : absl::InfinitePast();
}

struct AgeCase {
  const char* name;
  absl::CivilDay birth;
  const char* at;
  LeapDayRule rule;
  int age;
  AgeBand band;
};

TEST(AgeTest, D4_D5_Table) {
  const AgeCase kCases[] = {
      {"D4_birthday_counts_all_day", absl::CivilDay(2010, 5, 14), "2026-05-14T00:00:00+02:00", LeapDayRule::kMarch1, 16, AgeBand::k16To17},
      {"D4_day_before_birthday", absl::CivilDay(2010, 5, 14), "2026-05-13T23:59:59+02:00", LeapDayRule::kMarch1, 15, AgeBand::k12To15},
      // Local midnight is still the previous day in UTC: the Amsterdam date decides.
      {"D4_local_midnight_utc_previous_day", absl::CivilDay(2010, 5, 14), "2026-05-13T22:00:00Z", LeapDayRule::kMarch1, 16, AgeBand::k16To17},
      {"D4_utc_same_day_before_local", absl::CivilDay(2010, 5, 14), "2026-05-13T21:59:59Z", LeapDayRule::kMarch1, 15, AgeBand::k12To15},
      // Across the autumn DST change (2026-10-25 03:00 CEST -> 02:00 CET).
      {"D4_dst_autumn_midnight", absl::CivilDay(2014, 10, 26), "2026-10-25T23:00:00Z", LeapDayRule::kMarch1, 12, AgeBand::k12To15},
      {"D4_dst_autumn_before", absl::CivilDay(2014, 10, 26), "2026-10-25T22:59:59Z", LeapDayRule::kMarch1, 11, AgeBand::kUnder12},
      // E14: born 29 Feb 2012; 2028 is a leap year.
      {"E14_leap_year_day_before", absl::CivilDay(2012, 2, 29), "2028-02-28T12:00:00+01:00", LeapDayRule::kMarch1, 15, AgeBand::k12To15},
      {"E14_leap_year_birthday", absl::CivilDay(2012, 2, 29), "2028-02-29T00:00:00+01:00", LeapDayRule::kMarch1, 16, AgeBand::k16To17},
      // Non-leap year: 1 March by default, 28 February with leap_day_rule feb_28.
      {"D4_leap_birth_non_leap_year_march_1", absl::CivilDay(2012, 2, 29), "2024-02-28T12:00:00+01:00", LeapDayRule::kMarch1, 11, AgeBand::kUnder12},
      {"D4_leap_birth_non_leap_year_march_1_b", absl::CivilDay(2012, 2, 29), "2026-02-28T23:59:00+01:00", LeapDayRule::kMarch1, 13, AgeBand::k12To15},
      {"D4_leap_birth_non_leap_year_march_1_c", absl::CivilDay(2012, 2, 29), "2026-03-01T00:00:00+01:00", LeapDayRule::kMarch1, 14, AgeBand::k12To15},
      {"D4_leap_birth_non_leap_year_feb_28", absl::CivilDay(2012, 2, 29), "2026-02-28T00:00:00+01:00", LeapDayRule::kFeb28, 14, AgeBand::k12To15},
      {"D4_leap_birth_non_leap_year_feb_27", absl::CivilDay(2012, 2, 29), "2026-02-27T23:59:00+01:00", LeapDayRule::kFeb28, 13, AgeBand::k12To15},
      {"D5_adult_at_18", absl::CivilDay(2008, 11, 23), "2026-11-23T00:00:00+01:00", LeapDayRule::kMarch1, 18, AgeBand::kAdult},
      {"D5_17", absl::CivilDay(2008, 11, 24), "2026-11-23T12:00:00+01:00", LeapDayRule::kMarch1, 17, AgeBand::k16To17},
      {"D5_12", absl::CivilDay(2014, 3, 1), "2026-03-01T08:00:00+01:00", LeapDayRule::kMarch1, 12, AgeBand::k12To15},
      {"D5_newborn", absl::CivilDay(2026, 3, 1), "2026-03-01T08:00:00+01:00", LeapDayRule::kMarch1, 0, AgeBand::kUnder12},
  };
  for (const AgeCase& c : kCases) {
    SCOPED_TRACE(c.name);
    int age = AgeInYears(c.birth, AmsterdamDay(At(c.at)), c.rule);
    EXPECT_EQ(age, c.age);
    EXPECT_EQ(BandForAge(age), c.band);
  }
}

TEST(AgeTest, D5_BirthAfterAtIsNegative) {
  EXPECT_LT(AgeInYears(absl::CivilDay(2026, 3, 2), absl::CivilDay(2026, 3, 1), LeapDayRule::kMarch1), 0);
}

// AmsterdamDay keeps the bounds of the last day per thread; whatever order instants
// come in, each must get the day the time zone gives it. Around midnight, on the days
// summer time starts and ends, on the 1940 day whose midnight did not exist (clocks
// went from 00:00 to 01:40), and far in the past and future.
TEST(AmsterdamDayTest, EveryInstantGetsTheZonesDay) {
  const absl::TimeZone& zone = Amsterdam();
  std::vector<absl::Time> around;
  for (absl::CivilDay d : {absl::CivilDay(2026, 3, 28), absl::CivilDay(2026, 3, 29), absl::CivilDay(2026, 3, 30),
                           absl::CivilDay(2026, 10, 24), absl::CivilDay(2026, 10, 25), absl::CivilDay(2026, 10, 26),
                           absl::CivilDay(1940, 5, 15), absl::CivilDay(1940, 5, 16), absl::CivilDay(1937, 7, 1),
                           absl::CivilDay(2000, 2, 29), absl::CivilDay(1900, 1, 1), absl::CivilDay(2200, 12, 31)}) {
    const absl::Time midnight = absl::FromCivil(d, zone);
    for (absl::Duration step : {absl::Nanoseconds(1), absl::Seconds(1), absl::Minutes(20), absl::Hours(1),
                                absl::Hours(2), absl::Hours(3), absl::Hours(12), absl::Hours(23), absl::Hours(24)}) {
      around.push_back(midnight + step);
      around.push_back(midnight - step);
    }
    around.push_back(midnight);
  }
  around.push_back(absl::InfiniteFuture());
  around.push_back(absl::InfinitePast());
  auto check = [&](absl::Time t) {
    ASSERT_EQ(AmsterdamDay(t), absl::ToCivilDay(t, zone)) << absl::FormatTime(t, zone);
  };
  // In order (each day's bounds are filled and then crossed), each instant twice in a
  // row (filled on the spot), and shuffled.
  for (absl::Time t : around) check(t);
  for (absl::Time t : around) {
    check(t);
    check(t);
  }
  std::mt19937 rng(7);
  for (int round = 0; round < 20; ++round) {
    std::shuffle(around.begin(), around.end(), rng);
    for (size_t i = 0; i + 1 < around.size(); ++i) {
      check(around[i]);
      check(around[i]);
      check(around[i + 1]);
    }
  }
  // A minute at a time over both 2026 changes of the clock.
  for (absl::Time t = absl::FromCivil(absl::CivilDay(2026, 3, 28), zone);
       t < absl::FromCivil(absl::CivilDay(2026, 3, 31), zone); t += absl::Minutes(1)) {
    check(t);
  }
  for (absl::Time t = absl::FromCivil(absl::CivilDay(2026, 10, 24), zone);
       t < absl::FromCivil(absl::CivilDay(2026, 10, 27), zone); t += absl::Minutes(1)) {
    check(t);
  }
}

TEST(ParseInstantTest, AcceptsOffsetsAndFractions) {
  EXPECT_EQ(At("2026-11-23T10:15:00+01:00"), At("2026-11-23T09:15:00Z"));
  EXPECT_EQ(At("2026-11-23T09:15:00.5Z") - At("2026-11-23T09:15:00Z"), absl::Milliseconds(500));
  EXPECT_EQ(FormatInstant(At("2026-03-01T00:00:00+01:00")), "2026-02-28T23:00:00Z");
  // Kept to the microsecond, the store's resolution: further digits are dropped, toward
  // the past also before 1970.
  EXPECT_EQ(At("2026-01-01T00:00:00.666666666+01:00"), At("2026-01-01T00:00:00.666666+01:00"));
  EXPECT_EQ(FormatInstant(At("2026-01-01T00:00:00.1234567Z")), "2026-01-01T00:00:00.123456Z");
  EXPECT_EQ(At("1900-01-01T00:00:00.9999999Z"), At("1900-01-01T00:00:00.999999Z"));
}

TEST(ParseInstantTest, RejectsWhatIsNotAnInstant) {
  const char* kBad[] = {
      "",
      "2026-11-23",                 // a date
      "2026-11-23T10:15:00",        // no offset
      "2026-11-23 10:15:00Z",       // space
      "2026-02-30T10:00:00Z",       // no such day
      "2026-11-23T24:00:00Z",       // hour 24
      "2026-11-23T10:60:00Z",
      "2026-1-23T10:15:00Z",
      "2026-11-23T10:15:00+1:00",
      "2026-11-23T10:15:00+25:00",
      "0001-01-01T00:00:00Z",       // outside 1800..2999
      "1800-01-01T00:00:00+01:00",  // 1799 in UTC, as it would be written back
      "2999-12-31T23:30:00-01:00",  // 3000 in UTC
      "2026-11-23T10:15:00.Z",
      "2026-11-23T10:15:00Zjunk",
  };
  for (const char* text : kBad) {
    SCOPED_TRACE(text);
    EXPECT_FALSE(ParseInstant(text).ok());
  }
  // Every instant that parses is written back as one that parses to the same instant.
  for (const char* text : {"1800-01-01T00:00:00Z", "1800-01-01T00:30:00+00:30", "2999-12-31T23:59:59Z"}) {
    SCOPED_TRACE(text);
    absl::StatusOr<absl::Time> t = ParseInstant(text);
    ASSERT_TRUE(t.ok()) << t.status();
    absl::StatusOr<absl::Time> again = ParseInstant(FormatInstant(*t));
    ASSERT_TRUE(again.ok()) << again.status();
    EXPECT_EQ(*again, *t);
  }
}

// ParseInstant reads the fields it has checked as RFC 3339 does: the same instant as
// absl::ParseTime(RFC3339_full) gives (kept to the microsecond), over random instants
// in every shape it accepts, near the ends of the years it takes among them.
TEST(ParseInstantTest, ReadsAsAbslParseTimeDoes) {
  std::mt19937_64 rng(20261204);
  auto pick = [&](int lo, int hi) { return static_cast<int>(lo + rng() % static_cast<uint64_t>(hi - lo + 1)); };
  int accepted = 0;
  for (int i = 0; i < 20000; ++i) {
    const int year = i % 10 == 0 ? pick(1800, 1801) : i % 10 == 1 ? pick(2998, 2999) : pick(1800, 2999);
    const int month = pick(1, 12);
    const absl::CivilMonth first(year, month);
    const int day = pick(1, static_cast<int>(absl::CivilDay(first + 1) - absl::CivilDay(first)));
    std::string text = absl::StrFormat("%04d-%02d-%02d%c%02d:%02d:%02d", year, month, day, pick(0, 1) ? 'T' : 't',
                                       pick(0, 23), pick(0, 59), pick(0, 59));
    if (const int digits = pick(0, 9); digits > 0) {
      text += '.';
      for (int k = 0; k < digits; ++k) text += static_cast<char>('0' + pick(0, 9));
    }
    switch (pick(0, 3)) {
      case 0: text += 'Z'; break;
      case 1: text += 'z'; break;
      default: text += absl::StrFormat("%c%02d:%02d", pick(0, 1) ? '+' : '-', pick(0, 23), pick(0, 59));
    }
    SCOPED_TRACE(text);
    absl::Time want;
    std::string err;
    ASSERT_TRUE(absl::ParseTime(absl::RFC3339_full, text, &want, &err)) << err;
    want = absl::FromUnixMicros(absl::ToUnixMicros(want));
    const bool in_range = want >= absl::FromCivil(absl::CivilSecond(1800, 1, 1, 0, 0, 0), absl::UTCTimeZone()) &&
                          want < absl::FromCivil(absl::CivilSecond(3000, 1, 1, 0, 0, 0), absl::UTCTimeZone());
    absl::StatusOr<absl::Time> got = ParseInstant(text);
    ASSERT_EQ(got.ok(), in_range) << got.status();
    if (got.ok()) {
      EXPECT_EQ(*got, want);
      ++accepted;
    }
  }
  EXPECT_GT(accepted, 19000);
}

TEST(ParseCivilDateTest, D5_NonexistentDatesAreRejected) {
  EXPECT_TRUE(ParseCivilDate("2012-02-29").ok());
  EXPECT_FALSE(ParseCivilDate("2010-02-29").ok());
  EXPECT_FALSE(ParseCivilDate("2026-04-31").ok());
  EXPECT_FALSE(ParseCivilDate("2026-13-01").ok());
  EXPECT_FALSE(ParseCivilDate("2026-1-01").ok());
  EXPECT_FALSE(ParseCivilDate("26-01-01").ok());
  EXPECT_FALSE(ParseCivilDate("1700-01-01").ok());
  EXPECT_EQ(*ParseCivilDate("2015-09-01"), absl::CivilDay(2015, 9, 1));
}

}  // namespace
}  // namespace toegang
