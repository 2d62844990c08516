// Copyright toegang authors.
#include "engine/facts/fact_store.h"

namespace toegang {

std::vector<absl::StatusOr<std::shared_ptr<const PatientRecord>>> FactStore::Patients(
    absl::Span<const absl::string_view> patients) {
  std::vector<absl::StatusOr<std::shared_ptr<const PatientRecord>>> out;
  out.reserve(patients.size());
  for (absl::string_view p : patients) out.push_back(Patient(p));
  return out;
}

absl::Time WallClock() { return absl::Now(); }
absl::Time NoArrivalClock() { return absl::InfinitePast(); }

}  // namespace toegang
