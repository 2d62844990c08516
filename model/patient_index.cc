// Copyright toegang authors.
#include "model/patient_index.h"

#include <variant>

#include "absl/strings/str_cat.h"

namespace toegang {

std::string ActorIndexKey(absl::string_view actor) { return absl::StrCat("a", actor); }
std::string OrganizationIndexKey(absl::string_view organization) { return absl::StrCat("o", organization); }
std::string OrganizationCategoryIndexKey(absl::string_view category) { return absl::StrCat("k", category); }
std::string RoleIndexKey(Role role) { return absl::StrCat("r", Name(role)); }

std::string PartyIndexKey(const Party& party) {
  switch (party.kind) {
    case Party::Kind::kActor:
      return ActorIndexKey(party.id);
    case Party::Kind::kRole:
      return RoleIndexKey(party.role);
    case Party::Kind::kOrganization:
      return OrganizationIndexKey(party.id);
    case Party::Kind::kOrganizationCategory:
      return OrganizationCategoryIndexKey(party.id);
  }
  return ActorIndexKey(party.id);
}

PatientIndexKeys IndexKeysOf(const FactBody& body, absl::string_view patient) {
  PatientIndexKeys keys;
  if (std::holds_alternative<OrgCategory>(body)) return keys;
  const auto* r = std::get_if<Relationship>(&body);
  if (r != nullptr && r->relation == Relation::kSubstituteFor) return keys;
  keys.push_back(std::string(kEveryPatientKey));
  keys.push_back(ActorIndexKey(patient));
  if (r != nullptr) {
    keys.push_back(r->relation == Relation::kRegisteredWith ? OrganizationIndexKey(r->subject)
                                                            : ActorIndexKey(r->subject));
  } else if (const auto* c = std::get_if<Consent>(&body)) {
    keys.push_back(PartyIndexKey(c->to));
  }
  return keys;
}

}  // namespace toegang
