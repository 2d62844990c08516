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

std::string SelfKey(absl::string_view patient) { return absl::StrCat("=", patient); }

std::optional<std::string> IndexKeyOf(const FactBody& body) {
  if (const auto* r = std::get_if<Relationship>(&body)) {
    if (r->relation == Relation::kSubstituteFor) return std::nullopt;
    return r->relation == Relation::kRegisteredWith ? OrganizationIndexKey(r->subject) : ActorIndexKey(r->subject);
  }
  if (const auto* c = std::get_if<Consent>(&body)) return PartyIndexKey(c->to);
  return std::nullopt;
}

}  // namespace toegang
