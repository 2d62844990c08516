// Copyright toegang authors.
//
// fact_index.h: facts in memory, indexed the way decisions read them: every fact about
// a patient, and every substitute_for coverage of a clinician.
//
// FactIndex also owns the rules a set of facts must satisfy together (DOMAIN D40,
// API.md): fact ids are unique per kind, a withdrawal names an existing consent,
// objection or restriction. Append() checks a whole batch first and then adds all of
// it, or nothing.
//
// Not thread-safe: the stores guard it.
#ifndef TOEGANG_MODEL_FACT_INDEX_H_
#define TOEGANG_MODEL_FACT_INDEX_H_

#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "model/facts.h"
#include "model/patient_record.h"

namespace toegang {

class FactIndex {
 public:
  // Checks `batch` against what is indexed and against itself; on success files every
  // fact. On failure nothing changes and the message names the batch position
  // ("fact 3: ...", 1-based) and the problem.
  absl::Status Append(const std::vector<Fact>& batch);

  // Checks without filing.
  absl::Status Validate(const std::vector<Fact>& batch) const;

  // Every fact about `patient` (empty record if none).
  PatientRecord RecordFor(absl::string_view patient) const;

  // The substitute_for relationships whose subject is `clinician`.
  std::vector<Stored<Relationship>> SubstitutionsOf(absl::string_view clinician) const;

  // The patient a withdrawal's target belongs to, or "" if unknown.
  std::string PatientOfTarget(absl::string_view target) const;

  size_t size() const { return count_; }

 private:
  absl::Status Check(const Fact& fact, const absl::flat_hash_map<std::string, std::string>& batch_targets,
                     const absl::flat_hash_map<std::string, int>& batch_ids, std::string* key) const;

  absl::flat_hash_map<std::string, PatientRecord> records_;
  absl::flat_hash_map<std::string, std::vector<Stored<Relationship>>> substitutions_;
  // "kind:id" of every fact id seen, and target id -> patient for withdrawals.
  absl::flat_hash_map<std::string, int> ids_;
  absl::flat_hash_map<std::string, std::string> target_patient_;
  size_t count_ = 0;
};

}  // namespace toegang

#endif  // TOEGANG_MODEL_FACT_INDEX_H_
