// Copyright toegang authors.
#include "engine/fact_store.h"

#include "absl/strings/numbers.h"
#include "absl/strings/strip.h"

namespace toegang {

absl::Time WallClock() { return absl::Now(); }
absl::Time NoArrivalClock() { return absl::InfinitePast(); }

int BadFactPosition(absl::string_view message, absl::string_view* rest) {
  *rest = message;
  absl::string_view m = message;
  if (!absl::ConsumePrefix(&m, "fact ")) return 0;
  size_t colon = m.find(": ");
  int n = 0;
  if (colon == absl::string_view::npos || !absl::SimpleAtoi(m.substr(0, colon), &n) || n < 1) return 0;
  *rest = m.substr(colon + 2);
  return n;
}

}  // namespace toegang
