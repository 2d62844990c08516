// Copyright toegang authors.
#include "model/time.h"

#include <cstdint>

#include "absl/base/internal/raw_logging.h"
#include "absl/strings/str_cat.h"

namespace toegang {
namespace {

constexpr absl::civil_year_t kMinYear = 1800;
constexpr absl::civil_year_t kMaxYear = 2999;

bool IsDigits(absl::string_view s) {
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

// The value of `s`, digits only (checked by the caller).
int Number(absl::string_view s) {
  int n = 0;
  for (char c : s) n = n * 10 + (c - '0');
  return n;
}

}  // namespace

const absl::TimeZone& Amsterdam() {
  static const absl::TimeZone* const zone = [] {
    auto* tz = new absl::TimeZone;
    if (!absl::LoadTimeZone("Europe/Amsterdam", tz)) {
      ABSL_RAW_LOG(FATAL, "toegang: no tzdata for Europe/Amsterdam (install tzdata)");
    }
    return tz;
  }();
  return *zone;
}

// Errors never repeat the input (it may hold a BSN, API.md), except a part that passed
// the shape check, which holds only digits between '-', 'T' and ':'.
absl::StatusOr<absl::Time> ParseInstant(absl::string_view text) {
  // Shape first, so that absl's lenient parser never sees "2026-1-5" or a bare date.
  // YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM)
  if (text.size() < 20 || text.size() > 40 || !IsDigits(text.substr(0, 4)) ||
      text[4] != '-' || !IsDigits(text.substr(5, 2)) || text[7] != '-' ||
      !IsDigits(text.substr(8, 2)) || (text[10] != 'T' && text[10] != 't') ||
      !IsDigits(text.substr(11, 2)) || text[13] != ':' || !IsDigits(text.substr(14, 2)) ||
      text[16] != ':' || !IsDigits(text.substr(17, 2))) {
    return absl::InvalidArgumentError(
        "not an RFC 3339 instant with offset (YYYY-MM-DDTHH:MM:SS, then Z or +HH:MM)");
  }
  absl::string_view rest = text.substr(19);
  // Microseconds from the fraction: its first six digits; further ones are dropped (the
  // store keeps instants to the microsecond: a fact reads the same from memory, from the
  // store and from its JSON; found by fuzzing: .666666666 came back .666666). The second
  // is whole, so dropping them is toward the past also before 1970.
  int64_t micros = 0;
  if (!rest.empty() && rest[0] == '.') {
    size_t n = 1;
    while (n < rest.size() && rest[n] >= '0' && rest[n] <= '9') ++n;
    if (n == 1 || n > 10) {
      return absl::InvalidArgumentError("bad fractional seconds (1 to 9 digits after the seconds)");
    }
    for (size_t i = 1; i <= 6; ++i) micros = micros * 10 + (i < n ? rest[i] - '0' : 0);
    rest.remove_prefix(n);
  }
  bool zone_ok = (rest == "Z" || rest == "z") ||
                 (rest.size() == 6 && (rest[0] == '+' || rest[0] == '-') &&
                  IsDigits(rest.substr(1, 2)) && rest[3] == ':' && IsDigits(rest.substr(4, 2)));
  if (!zone_ok) {
    return absl::InvalidArgumentError(
        "the instant needs an offset after the time (Z or +HH:MM)");
  }
  // Field ranges: absl normalizes 2026-02-30 to 2026-03-02; we refuse it instead.
  const int y = Number(text.substr(0, 4));
  const int mo = Number(text.substr(5, 2));
  const int d = Number(text.substr(8, 2));
  const int h = Number(text.substr(11, 2));
  const int mi = Number(text.substr(14, 2));
  const int s = Number(text.substr(17, 2));
  absl::CivilDay day(y, mo, d);
  if (day.year() != y || day.month() != mo || day.day() != d || h > 23 || mi > 59 || s > 59) {
    // The first 19 bytes passed the shape check (digits between - T :): safe to show.
    return absl::InvalidArgumentError(absl::StrCat("instant ", text.substr(0, 19), " does not exist"));
  }
  if (y < kMinYear || y > kMaxYear) {
    return absl::InvalidArgumentError(
        "the instant is outside the years 1800..2999");
  }
  absl::Duration offset;  // east of UTC
  if (rest.size() == 6) {
    const int oh = Number(rest.substr(1, 2));
    const int om = Number(rest.substr(4, 2));
    if (oh > 23 || om > 59) {
      return absl::InvalidArgumentError("bad offset (hours 00..23, minutes 00..59)");
    }
    offset = (rest[0] == '-' ? -1 : 1) * (absl::Hours(oh) + absl::Minutes(om));
  }
  // Every field checked: the instant is the civil time at that offset, as RFC 3339 reads
  // it. Made from the fields rather than by absl::ParseTime reading the text again, which
  // cost a decision request a third of its parsing (bench/RESULTS.md).
  const absl::Time t = absl::FromCivil(absl::CivilSecond(y, mo, d, h, mi, s), absl::UTCTimeZone()) - offset +
                       absl::Microseconds(micros);
  // The range holds in UTC, as instants are written back: 1800-01-01T00:00:00+01:00 is
  // 1799 there, and would not parse again once re-serialized (found by fuzzing).
  static const absl::Time kFirst = absl::FromCivil(absl::CivilSecond(kMinYear, 1, 1, 0, 0, 0), absl::UTCTimeZone());
  static const absl::Time kEnd = absl::FromCivil(absl::CivilSecond(kMaxYear + 1, 1, 1, 0, 0, 0), absl::UTCTimeZone());
  if (t < kFirst || t >= kEnd) return absl::InvalidArgumentError("the instant is outside the years 1800..2999 (UTC)");
  return t;
}

std::string FormatInstant(absl::Time t) {
  if (t == absl::InfinitePast()) return "-infinity";
  if (t == absl::InfiniteFuture()) return "infinity";
  return absl::FormatTime("%Y-%m-%d%ET%H:%M:%E*SZ", t, absl::UTCTimeZone());
}

absl::StatusOr<absl::CivilDay> ParseCivilDate(absl::string_view text) {
  if (text.size() != 10 || !IsDigits(text.substr(0, 4)) || text[4] != '-' ||
      !IsDigits(text.substr(5, 2)) || text[7] != '-' || !IsDigits(text.substr(8, 2))) {
    return absl::InvalidArgumentError(
        "not a YYYY-MM-DD date");
  }
  const int y = Number(text.substr(0, 4));
  const int m = Number(text.substr(5, 2));
  const int d = Number(text.substr(8, 2));
  absl::CivilDay day(y, m, d);
  // CivilDay normalizes (2010-02-29 becomes 2010-03-01); a date that moved does not exist.
  if (day.year() != y || day.month() != m || day.day() != d) {
    return absl::InvalidArgumentError(absl::StrCat("date '", text, "' does not exist"));
  }
  if (y < kMinYear || y > kMaxYear) {
    return absl::InvalidArgumentError(
        absl::StrCat("date '", text, "' is outside the years 1800..2999"));
  }
  return day;
}

std::string FormatCivilDate(absl::CivilDay day) { return absl::FormatCivilTime(day); }

absl::CivilDay BirthdayIn(absl::CivilDay birth, absl::civil_year_t year, LeapDayRule rule) {
  if (birth.month() == 2 && birth.day() == 29) {
    // absl normalizes 29 February of a non-leap year to 1 March: that is kMarch1.
    absl::CivilDay normalized(year, 2, 29);
    bool leap = normalized.month() == 2;
    if (!leap && rule == LeapDayRule::kFeb28) return absl::CivilDay(year, 2, 28);
    return normalized;
  }
  return absl::CivilDay(year, birth.month(), birth.day());
}

int AgeInYears(absl::CivilDay birth, absl::CivilDay on, LeapDayRule rule) {
  if (on < birth) return -1;
  int years = static_cast<int>(on.year() - birth.year());
  if (on < BirthdayIn(birth, on.year(), rule)) --years;
  return years;
}

AgeBand BandForAge(int age) {
  if (age < 12) return AgeBand::kUnder12;
  if (age < 16) return AgeBand::k12To15;
  if (age < 18) return AgeBand::k16To17;
  return AgeBand::kAdult;
}

namespace {

// The instants [start, end) of one civil day in Amsterdam, kept per thread.
struct DayBounds {
  absl::Time start = absl::InfiniteFuture();
  absl::Time end = absl::InfinitePast();
  absl::CivilDay day;
};

// The bounds of `day`, if the zone's offset is the same all day (it is on every day but
// those of a change to or from summer time): then the civil time moves with the instant
// and every instant in [start, end) falls on `day`. Unset otherwise.
DayBounds BoundsOf(absl::CivilDay day, absl::Time t) {
  const absl::TimeZone& zone = Amsterdam();
  const absl::Time start = absl::FromCivil(day, zone);
  const absl::Time end = absl::FromCivil(day + 1, zone);
  const int offset = zone.At(t).offset;
  if (zone.At(start).offset != offset || zone.At(end - absl::Nanoseconds(1)).offset != offset) return {};
  return {start, end, day};
}

}  // namespace

// Decisions ask for the day of instants that mostly fall on one day: now, for every
// request of a running server; a grants query's instant, for every candidate. A thread
// keeps the bounds of the last day asked for twice in a row, and an instant inside them
// costs two comparisons instead of a time-zone lookup (bench/RESULTS.md). Instants of
// other days are converted as before: a second miss on the same day fills the bounds.
absl::CivilDay AmsterdamDay(absl::Time t) {
  thread_local DayBounds kept;
  thread_local absl::CivilDay last_missed;
  if (t >= kept.start && t < kept.end) return kept.day;
  const absl::CivilDay day = absl::ToCivilDay(t, Amsterdam());
  if (day == last_missed && t != absl::InfiniteFuture() && t != absl::InfinitePast()) {
    kept = BoundsOf(day, t);
  }
  last_missed = day;
  return day;
}

}  // namespace toegang
