// Copyright toegang authors.
//
// patient_index.h: the index from parties to the patients whose facts name them — the
// reverse of a patient's record, which lists "patients this actor may open"
// (engine/patient_search.h) reads. Every store files a patient under these keys in the
// same atomic write as the fact that names them, and never removes an entry: a
// patient, once named, stays a candidate, and the evaluator decides.
//
// Keys (bytes; ids never hold control bytes, model/json.cc):
//   "a" ID   an actor: the subject of a treating, parent, guardian or representative
//            relationship, a consent's actor recipient
//   "o" ID   an organisation: the subject of registered_with, a consent's recipient
//   "k" CODE an organisation category: a consent's recipient (Mitz)
//   "r" ROLE a role: a consent's recipient
// and two a store answers from the patients' records themselves, with no entries:
//   "*"      every patient the store holds facts about
//   "=" ID   the patient ID, if the store holds facts about them (an actor as patient)
#ifndef TOEGANG_MODEL_PATIENT_INDEX_H_
#define TOEGANG_MODEL_PATIENT_INDEX_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "model/facts.h"

namespace toegang {

inline constexpr absl::string_view kEveryPatientKey = "*";
std::string SelfKey(absl::string_view patient);

std::string ActorIndexKey(absl::string_view actor);
std::string OrganizationIndexKey(absl::string_view organization);
std::string OrganizationCategoryIndexKey(absl::string_view category);
std::string RoleIndexKey(Role role);
// The key of a consent's recipient.
std::string PartyIndexKey(const Party& party);

// The key a fact files its patient under: the party a relationship or a consent names;
// nullopt for any other fact (a coverage, filed under its clinician, names no patient).
std::optional<std::string> IndexKeyOf(const FactBody& body);

// For stores: the ids of several sources, each sorted ascending, merged: each id once,
// in order, at most `limit`. A Source has `bool Valid()`, `absl::string_view Id()` and
// `void Next()`.
template <typename Source>
std::vector<std::string> MergeIndexed(std::vector<Source>& sources, size_t limit) {
  std::vector<std::string> out;
  while (out.size() < limit) {
    Source* least = nullptr;
    for (Source& s : sources) {
      if (s.Valid() && (least == nullptr || s.Id() < least->Id())) least = &s;
    }
    if (least == nullptr) break;
    out.emplace_back(least->Id());
    for (Source& s : sources) {
      while (s.Valid() && s.Id() == out.back()) s.Next();
    }
  }
  return out;
}

}  // namespace toegang

#endif  // TOEGANG_MODEL_PATIENT_INDEX_H_
