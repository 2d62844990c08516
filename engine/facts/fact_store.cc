// Copyright toegang authors.
#include "engine/facts/fact_store.h"

#include <algorithm>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "model/patient_index.h"

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

absl::Status ApplyRemoval(const FactRemoval& removal, std::vector<Fact>* history, AppliedRemoval* applied) {
  PatientRecord record;  // what says which facts are about retention itself
  record.patient = removal.patient;
  for (const Fact& f : *history) record.Add(f);
  const absl::flat_hash_set<uint64_t> wanted(removal.seqs.begin(), removal.seqs.end());
  absl::flat_hash_set<std::string> before, after;
  for (size_t i = 0; i < history->size(); ++i) {
    Fact& f = (*history)[i];
    const std::optional<std::string> key = IndexKeyOf(f.body);
    if (key) before.insert(*key);
    if (!wanted.contains(f.provenance.seq) || std::holds_alternative<Removed>(f.body)) {
      if (key) after.insert(*key);
      continue;
    }
    const auto* w = std::get_if<Withdrawal>(&f.body);
    if (std::holds_alternative<ErasureRequest>(f.body) || std::holds_alternative<RetentionHold>(f.body) ||
        (w != nullptr && record.IsRetentionFact(w->target))) {
      return absl::InvalidArgumentError(absl::StrCat("fact ", f.provenance.seq, " of '", removal.patient, "' is a ",
                                                     FactTypeName(f.body),
                                                     ": it says why the dossier goes or stays, and is kept"));
    }
    // A person is recorded once (UniqueIdKey), so a patient who returns after their
    // dossier went could never be again; nothing withdraws a person by id.
    if (std::holds_alternative<Person>(f.body)) applied->freed.push_back(UniqueIdKey(f.body));
    const std::string* patient = FactPatient(f.body);
    f.body = Removed{FactId(f.body), patient != nullptr ? *patient : removal.patient, FactTypeName(f.body),
                     removal.removed_at, removal.term, removal.covered_seq};
    f.source.reset();
    applied->changed.push_back(i);
  }
  size_t found = 0;
  for (const Fact& f : *history) found += wanted.contains(f.provenance.seq);
  if (found != wanted.size()) {
    return absl::InvalidArgumentError(absl::StrCat("the removal names facts that are not '", removal.patient,
                                                   "''s: ", wanted.size() - found, " of ", wanted.size()));
  }
  for (const std::string& key : before) {
    if (!after.contains(key)) applied->dropped.push_back(key);
  }
  std::sort(applied->dropped.begin(), applied->dropped.end());
  return absl::OkStatus();
}

absl::Time WallClock() { return absl::Now(); }
absl::Time NoArrivalClock() { return absl::InfinitePast(); }

}  // namespace toegang
