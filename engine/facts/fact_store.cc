// Copyright toegang authors.
#include "engine/facts/fact_store.h"

#include "absl/strings/str_cat.h"

namespace toegang {

std::vector<absl::StatusOr<std::shared_ptr<const PatientRecord>>> FactStore::Patients(
    absl::Span<const absl::string_view> patients) {
  std::vector<absl::StatusOr<std::shared_ptr<const PatientRecord>>> out;
  out.reserve(patients.size());
  for (absl::string_view p : patients) out.push_back(Patient(p));
  return out;
}

absl::Status CheckContinues(const std::vector<Fact>& facts, uint64_t last_seq) {
  uint64_t expected = last_seq + 1;
  absl::Time previous = absl::InfinitePast();
  for (const Fact& f : facts) {
    if (f.provenance.seq != expected) {
      return absl::DataLossError(absl::StrCat("a replicated fact is numbered ", f.provenance.seq, " where ", expected,
                                              " was due: the replica would skip or repeat facts"));
    }
    if (f.provenance.arrival < previous) {
      return absl::DataLossError(absl::StrCat("replicated fact ", expected, " arrived before the fact preceding it"));
    }
    previous = f.provenance.arrival;
    ++expected;
  }
  return absl::OkStatus();
}

absl::Status MayBind(absl::string_view bound, absl::string_view history, uint64_t last_seq) {
  if (history.empty()) return absl::InvalidArgumentError("a replicated history needs a name");
  if (!bound.empty() && bound != history) {
    return absl::FailedPreconditionError(absl::StrCat("this store is a replica of history ", bound,
                                                      ", not of history ", history,
                                                      ": give each history its own store"));
  }
  if (bound.empty() && last_seq != 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "this store holds ", last_seq,
        " facts recorded without replication; a replica starts empty (load its facts through the replicated "
        "history instead: toegang load --replicate)"));
  }
  return absl::OkStatus();
}

absl::Time WallClock() { return absl::Now(); }
absl::Time NoArrivalClock() { return absl::InfinitePast(); }

}  // namespace toegang
