// Copyright toegang authors.
//
// time.h: instants, civil dates and age in Europe/Amsterdam (DOMAIN D3–D5).
//
// An instant is RFC 3339 with an offset ("2026-11-23T10:15:00+01:00" or "...Z"); a
// civil date is "YYYY-MM-DD" and is read in Europe/Amsterdam. Age is whole years from
// the birth date to the civil date of the instant in Europe/Amsterdam, so a child
// born on 14 May is 16 from 2026-05-14T00:00+02:00 on, although that instant is still
// 13 May in UTC. A 29 February birthday falls on 1 March in a non-leap year, or on 28
// February when the policy says so (`leap_day_rule`).
//
// No function here reads the clock.
#ifndef TOEGANG_MODEL_TIME_H_
#define TOEGANG_MODEL_TIME_H_

#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "model/vocabulary.h"

namespace toegang {

// The zone every civil date is read in. Loaded once; aborts the process at first use
// if the system has no tzdata for Europe/Amsterdam, since no age could be right then.
const absl::TimeZone& Amsterdam();

// Parses an RFC 3339 instant with an explicit offset. Rejects a missing offset,
// out-of-range fields (2026-02-30, 25:00) and years outside 1800..2999. Up to nine
// fractional digits are read; the instant is kept to the microsecond (toward the past).
// The error message is about the value only; the caller names the field.
absl::StatusOr<absl::Time> ParseInstant(absl::string_view text);

// RFC 3339 in UTC with as many fractional digits as needed: "2026-03-01T23:00:00Z".
std::string FormatInstant(absl::Time t);

// Parses a "YYYY-MM-DD" civil date. A date that does not exist (2010-02-29,
// 2026-04-31) is an error, not normalized; so are years outside 1800..2999.
absl::StatusOr<absl::CivilDay> ParseCivilDate(absl::string_view text);

// "YYYY-MM-DD".
std::string FormatCivilDate(absl::CivilDay day);

// DOMAIN D4 `leap_day_rule`.
enum class LeapDayRule : uint8_t { kMarch1, kFeb28 };

// The birthday of someone born on `birth` in `year`: the same month and day, except
// that 29 February becomes 1 March (kMarch1) or 28 February (kFeb28) in a non-leap year.
absl::CivilDay BirthdayIn(absl::CivilDay birth, absl::civil_year_t year, LeapDayRule rule);

// Whole years from `birth` to the civil day `on`; negative when `on` is before `birth`
// (the caller decides what that means: DOMAIN D5 says deny).
int AgeInYears(absl::CivilDay birth, absl::CivilDay on, LeapDayRule rule);

// DOMAIN D5. REQUIRES: age >= 0.
AgeBand BandForAge(int age);

// The civil day of `t` in Europe/Amsterdam.
absl::CivilDay AmsterdamDay(absl::Time t);

}  // namespace toegang

#endif  // TOEGANG_MODEL_TIME_H_
