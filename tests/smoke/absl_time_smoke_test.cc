// Abseil civil time in Europe/Amsterdam across a DST change (DOMAIN D4 depends on it).
#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"

namespace {

TEST(AbslTimeSmoke, AmsterdamSpringForward) {
  absl::TimeZone ams;
  ASSERT_TRUE(absl::LoadTimeZone("Europe/Amsterdam", &ams));
  // 2026-03-29 02:00 CET jumps to 03:00 CEST: the day has 23 hours.
  absl::Time start = absl::FromCivil(absl::CivilDay(2026, 3, 29), ams);
  absl::Time next = absl::FromCivil(absl::CivilDay(2026, 3, 30), ams);
  EXPECT_EQ(next - start, absl::Hours(23));
  EXPECT_EQ(ams.At(start).offset, 3600);
  EXPECT_EQ(ams.At(next).offset, 7200);
}

TEST(AbslTimeSmoke, LocalMidnightIsPreviousUtcDay) {
  absl::TimeZone ams;
  ASSERT_TRUE(absl::LoadTimeZone("Europe/Amsterdam", &ams));
  absl::Time t;
  std::string err;
  ASSERT_TRUE(absl::ParseTime(absl::RFC3339_full, "2026-05-14T00:00:00+02:00", &t, &err)) << err;
  EXPECT_EQ(absl::ToCivilDay(t, ams), absl::CivilDay(2026, 5, 14));
  EXPECT_EQ(absl::ToCivilDay(t, absl::UTCTimeZone()), absl::CivilDay(2026, 5, 13));
}

}  // namespace
