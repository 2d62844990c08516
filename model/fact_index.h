// Copyright toegang authors.
//
// fact_index.h: facts in memory, indexed the way decisions read them: every fact about
// a patient, and every substitute_for coverage of a clinician.
//
// The rules a set of facts must satisfy together (DOMAIN D40, API.md: every id used
// once, a withdrawal names an existing consent, objection, restriction or capacity
// assessment) are CheckBatch's, which every store calls. FactIndex::Append checks a
// whole batch first and then adds all of it, or nothing.
//
// Not thread-safe: the stores guard it.
#ifndef TOEGANG_MODEL_FACT_INDEX_H_
#define TOEGANG_MODEL_FACT_INDEX_H_

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/btree_set.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "model/facts.h"
#include "model/patient_record.h"

namespace toegang {

// --- The rules a batch must satisfy (DOMAIN D40), once for every store -------------

// What a store already holds, as the batch check asks it.
class KnownIds {
 public:
  virtual ~KnownIds() = default;
  // Whether `key` (UniqueIdKey) is used by a stored fact.
  virtual absl::StatusOr<bool> Taken(const std::string& key) const = 0;
  // The patient of the stored withdrawable fact `id`, or nullopt when there is none.
  virtual absl::StatusOr<std::optional<std::string>> PatientOfTarget(absl::string_view id) const = 0;
  // Every stored fact about `patient` (who may withdraw what is judged on them, D36).
  virtual absl::StatusOr<PatientRecord> RecordOf(absl::string_view patient) const = 0;
};

// What batches add that later ones (and their withdrawals) must see.
struct BatchIds {
  absl::flat_hash_set<std::string> keys;                         // UniqueIdKey of each fact
  absl::flat_hash_map<std::string, std::string> target_patient;  // withdrawable id -> patient
  // The batches themselves (a withdrawal is judged on their facts too). REQUIRES: they
  // outlive this.
  std::vector<const std::vector<Fact>*> batches;

  void Merge(const BatchIds& other);
  // The patient of withdrawable fact `id` if one of these batches holds it.
  const std::string* PatientOf(absl::string_view id) const;
};

// Checks `batch` against `known` and against `earlier` (batches accepted before it but
// not yet stored: a group commit): every id used once, every withdrawal naming a fact
// that exists and made by someone who may withdraw it (D36: an objection by its author
// or whoever may act for the patient at the withdrawal's `at`, model/who_may_act.h; a
// restriction or a capacity assessment by its author or a clinician treating the
// patient then; ages by the default leap_day_rule, as no pack is known at load). A
// refusal names the fact (model/facts.h AtFact) and leaves `*added` unspecified; on
// success `*added` is what the batch adds.
absl::Status CheckBatch(const std::vector<Fact>& batch, const KnownIds& known, const BatchIds& earlier,
                        BatchIds* added);

// Where a fact is filed: a patient's facts together, a substitute_for coverage under
// the clinician it lets stand in (it is about two clinicians, no patient), and an
// org_category under its organisation. A withdrawal goes with what it withdraws:
// `withdrawal_patient` is that fact's patient.
struct FactOwner {
  enum class Kind { kPatient, kClinician, kOrganization };
  Kind kind;
  std::string id;
};
FactOwner OwnerOf(const FactBody& body, absl::string_view withdrawal_patient);

class FactIndex {
 public:
  // Checks `batch` against what is indexed and against itself; on success files every
  // fact. On failure nothing changes and the message names the batch position
  // ("fact 3: ...", 1-based) and the problem.
  absl::Status Append(const std::vector<Fact>& batch);

  // Retention (FactStore::Remove): `record` becomes the patient's record, the patient
  // leaves the index of patients under `dropped` keys, and the unique-id keys `freed` may
  // be used again. Other ids stay taken.
  void ReplaceRecord(const PatientRecord& record, absl::Span<const std::string> dropped,
                     absl::Span<const std::string> freed);

  // Checks without filing.
  absl::Status Validate(const std::vector<Fact>& batch) const;

  // Every fact about `patient` (empty record if none).
  PatientRecord RecordFor(absl::string_view patient) const;

  // The same, to be shared rather than copied (null if the index knows nothing of
  // `patient`): a look without touching the record's reference count, valid until the
  // next Append. An Append replaces the records it changes rather than changing them,
  // so a copy of the pointer taken here stays as it was.
  const std::shared_ptr<const PatientRecord>* FindRecord(absl::string_view patient) const {
    auto it = records_.find(patient);
    return it == records_.end() ? nullptr : &it->second;
  }

  // Starts loading what FindRecord(patient) will read into the CPU's caches, so that the
  // lookups of a batch overlap. Only a hint.
  void PrefetchRecord(absl::string_view patient) const { records_.prefetch(patient); }

  // The substitute_for relationships whose subject is `clinician`.
  std::vector<Stored<Relationship>> SubstitutionsOf(absl::string_view clinician) const;

  // The same, shared (null if there are none); unchanged by later appends.
  std::shared_ptr<const std::vector<Stored<Relationship>>> SharedSubstitutions(absl::string_view clinician) const;

  // The org_category facts of `organization`, shared (null if there are none);
  // unchanged by later appends.
  std::shared_ptr<const std::vector<Stored<OrgCategory>>> SharedCategories(absl::string_view organization) const;

  // The patient a withdrawal's target belongs to, or "" if unknown.
  std::string PatientOfTarget(absl::string_view target) const;

  // The patients filed under any of `keys` (model/patient_index.h) whose ids sort after
  // `after`, each once, in byte order, at most `limit`.
  std::vector<std::string> IndexedPatients(absl::Span<const std::string> keys, absl::string_view after,
                                           size_t limit) const;

  size_t size() const { return count_; }

 private:
  class Known;

  absl::flat_hash_map<std::string, std::shared_ptr<const PatientRecord>> records_;
  absl::flat_hash_map<std::string, std::shared_ptr<const std::vector<Stored<Relationship>>>> substitutions_;
  absl::flat_hash_map<std::string, std::shared_ptr<const std::vector<Stored<OrgCategory>>>> categories_;
  absl::flat_hash_map<std::string, absl::btree_set<std::string>> patients_by_key_;  // patient_index.h
  absl::btree_set<std::string> patients_;  // every patient with a record, in order
  BatchIds stored_;  // every fact id seen, and target id -> patient for withdrawals
  size_t count_ = 0;
};

}  // namespace toegang

#endif  // TOEGANG_MODEL_FACT_INDEX_H_
