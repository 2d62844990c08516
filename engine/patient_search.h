// Copyright toegang authors.
//
// patient_search.h (internal): Engine::Patients over a fact store — the candidates
// policy/patients.h plans, read from the store's index a batch at a time, each decided
// on the facts up to the listing's pinned sequence; and the cursor that carries the
// listing from page to page.
#ifndef TOEGANG_ENGINE_PATIENT_SEARCH_H_
#define TOEGANG_ENGINE_PATIENT_SEARCH_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "engine/facts/fact_store.h"
#include "engine/patients.h"
#include "policy/policy.h"

namespace toegang::engine_internal {

// A page of the listing `query` asks for. `clock` measures the deadline (tests pass one
// that jumps).
absl::StatusOr<PatientPage> SearchPatients(FactStore& store, std::shared_ptr<const Policy> policy,
                                           const PatientsQuery& query, absl::Time (*clock)() = absl::Now);

// The cursor's contents, for tests: what a cursor says, or why it is refused.
struct CursorState {
  uint64_t sequence = 0;
  std::string after;  // the last patient id examined
};
std::string EncodeCursor(const CursorState& state, absl::string_view fingerprint);
absl::StatusOr<CursorState> DecodeCursor(absl::string_view cursor, absl::string_view fingerprint);
// What a cursor is bound to: the request (but its patient) and the policy's id.
std::string QueryFingerprint(const AccessRequest& request, absl::string_view policy_id);

}  // namespace toegang::engine_internal

#endif  // TOEGANG_ENGINE_PATIENT_SEARCH_H_
