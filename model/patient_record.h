// Copyright toegang authors.
//
// patient_record.h: every fact about one patient, by type, as the evaluator reads them.
//
// A PatientRecord is a value: the stores build one per decision (or serve a cached
// one) and the evaluator only reads it. Each fact keeps its provenance, so that a
// consent never counts before it was recorded (DOMAIN D19).
#ifndef TOEGANG_MODEL_PATIENT_RECORD_H_
#define TOEGANG_MODEL_PATIENT_RECORD_H_

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "model/facts.h"

namespace toegang {

template <typename T>
struct Stored {
  T value;
  Provenance provenance;
};

struct PatientRecord {
  std::string patient;
  std::optional<Stored<Person>> person;  // the latest person fact (by sequence)
  std::vector<Stored<Relationship>> relationships;  // every relationship whose object is the patient
  std::vector<Stored<Consent>> consents;
  std::vector<Stored<Withdrawal>> withdrawals;  // of this patient's consents, objections, restrictions
  std::vector<Stored<Objection>> objections;
  std::vector<Stored<Restriction>> restrictions;
  std::vector<Stored<Capacity>> capacities;
  std::vector<Stored<ErasureRequest>> erasure_requests;  // DOMAIN D61
  std::vector<Stored<RetentionHold>> holds;              // D60, D61
  std::vector<Stored<Removed>> removed;  // what is left of facts removed by retention
  // The instant the store's knowledge was taken at (FactStore::Patient's `as_of`):
  // InfiniteFuture for the facts as they are now.
  absl::Time as_of = absl::InfiniteFuture();

  // Whether a decision on this record would be made without facts it once held (DOMAIN
  // D60, D61): the record is as the store knew it before a removal (a replay of the
  // facts then), or facts known before a removal remain beside it (consents kept while
  // an access-log record relies on them, D41: kept as evidence, never to grant). Facts
  // recorded after every removal stand on their own.
  bool MissesRemovedFacts() const {
    if (removed.empty()) return false;
    uint64_t covered = 0;
    for (const Stored<Removed>& r : removed) {
      if (as_of < r.value.removed_at) return true;
      covered = std::max(covered, r.value.covered_seq);
    }
    bool survivor = false;
    ForEachDossierFact([&](const auto& f) { survivor = survivor || f.provenance.seq <= covered; });
    return survivor;
  }

  // Calls `fn` with every fact held, as its Stored<T> (the person first, then each type
  // in the order above). The one place that lists a record's facts: a type added here is
  // seen by every caller.
  template <typename Fn>
  void ForEachStored(Fn fn) const {
    if (person) fn(*person);
    for (const auto& f : relationships) fn(f);
    for (const auto& f : consents) fn(f);
    for (const auto& f : withdrawals) fn(f);
    for (const auto& f : objections) fn(f);
    for (const auto& f : restrictions) fn(f);
    for (const auto& f : capacities) fn(f);
    for (const auto& f : erasure_requests) fn(f);
    for (const auto& f : holds) fn(f);
    for (const auto& f : removed) fn(f);
  }

  // Whether `id` is one of the record's erasure requests or retention holds.
  bool IsRetentionFact(absl::string_view id) const {
    for (const auto& e : erasure_requests) {
      if (e.value.id == id) return true;
    }
    for (const auto& h : holds) {
      if (h.value.id == id) return true;
    }
    return false;
  }

  // Calls `fn` with each fact of the dossier, as its Stored<T>: every fact held but
  // erasure requests, retention holds, their withdrawals and what is left of removed
  // facts — what the retention terms count from and what a removal removes
  // (policy/retention.h).
  template <typename Fn>
  void ForEachDossierFact(Fn fn) const {
    ForEachStored([&](const auto& f) {
      using T = std::decay_t<decltype(f.value)>;
      if constexpr (!std::is_same_v<T, ErasureRequest> && !std::is_same_v<T, RetentionHold> &&
                    !std::is_same_v<T, Removed>) {
        if constexpr (std::is_same_v<T, Withdrawal>) {
          if (IsRetentionFact(f.value.target)) return;
        }
        fn(f);
      }
    });
  }

  // Files `fact` under its type. REQUIRES: the fact is about this patient (a withdrawal:
  // of one of this patient's facts). A person fact replaces an older one.
  void Add(const Fact& fact) {
    std::visit(
        [&](const auto& f) {
          using T = std::decay_t<decltype(f)>;
          if constexpr (std::is_same_v<T, Person>) {
            if (!person || person->provenance.seq <= fact.provenance.seq) {
              person = Stored<Person>{f, fact.provenance};
            }
          } else if constexpr (std::is_same_v<T, Relationship>) {
            relationships.push_back({f, fact.provenance});
          } else if constexpr (std::is_same_v<T, Consent>) {
            consents.push_back({f, fact.provenance});
          } else if constexpr (std::is_same_v<T, Withdrawal>) {
            withdrawals.push_back({f, fact.provenance});
          } else if constexpr (std::is_same_v<T, Objection>) {
            objections.push_back({f, fact.provenance});
          } else if constexpr (std::is_same_v<T, Restriction>) {
            restrictions.push_back({f, fact.provenance});
          } else if constexpr (std::is_same_v<T, Capacity>) {
            capacities.push_back({f, fact.provenance});
          } else if constexpr (std::is_same_v<T, ErasureRequest>) {
            erasure_requests.push_back({f, fact.provenance});
          } else if constexpr (std::is_same_v<T, RetentionHold>) {
            holds.push_back({f, fact.provenance});
          } else if constexpr (std::is_same_v<T, Removed>) {
            removed.push_back({f, fact.provenance});
          }
        },
        fact.body);
  }
};

}  // namespace toegang

#endif  // TOEGANG_MODEL_PATIENT_RECORD_H_
