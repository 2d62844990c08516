// Copyright toegang authors.
//
// bsn.h: finding citizen service numbers (BSN) where none may be (API.md: no BSN ever
// appears in an id, a log or an error message).
//
// A BSN is nine digits passing the eleven test (9·d1 + 8·d2 + … + 2·d8 − d9 ≡ 0 mod 11),
// often written with its leading zero dropped (eight digits), in groups
// ("111 222 333", "111.22.333"), or behind a prefix ("bsn-111222333", "BSN111222333").
// So a run of digits counts as one number across single spaces and dots; any other
// character ends it — a date such as 2026-03-01 is three numbers, not one.
//
//   if (ContainsBsn(id)) ... refuse the id
//   std::string safe = RedactBsn(justification);   // "... BSN [bsn] J. Jansen ..."
//
// Thread-safe.
#ifndef TOEGANG_MODEL_BSN_H_
#define TOEGANG_MODEL_BSN_H_

#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"

namespace toegang {

// Whether the nine digits pass the eleven test (and are not all zeros).
bool PassesElevenTest(absl::string_view nine_digits);

// Whether `text` holds a number (see above) that is a BSN: nine digits passing the
// eleven test, or eight with the leading zero restored, or more digits whose extra
// leading zeros hide one of those.
bool ContainsBsn(absl::string_view text);

// `text` with every such number replaced by "[bsn]" (its separators included).
// Counts each replacement in BsnRedactions().
std::string RedactBsn(absl::string_view text);

// Replacements made by RedactBsn since the process started (for /metrics).
uint64_t BsnRedactions();

}  // namespace toegang

#endif  // TOEGANG_MODEL_BSN_H_
