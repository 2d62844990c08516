// Copyright toegang authors.
#include "engine/facts/fact_store.h"

namespace toegang {

absl::Time WallClock() { return absl::Now(); }
absl::Time NoArrivalClock() { return absl::InfinitePast(); }

}  // namespace toegang
