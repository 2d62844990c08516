// Copyright toegang authors.
#include "policy/patients.h"

#include <algorithm>

#include "model/patient_index.h"
#include "policy/internal/rules.h"

namespace toegang {
namespace {

using policy_internal::CompiledRule;
using policy_internal::Predicate;

// Whether `p` holds only when a fact filed under one of the plan's keys names the actor
// (or the recipient). The list is closed: a predicate added to rules.h that is not here
// makes its rules search every patient, never too few.
bool NamesTheActor(Predicate p) {
  switch (p) {
    case Predicate::kTreatingRelationship:
    case Predicate::kSubstituteCoverage:
    case Predicate::kRegisteredWith:
    case Predicate::kSelf:
    case Predicate::kParentWithAuthority:
    case Predicate::kRepresentativeOfIncapable:
    case Predicate::kConsent:
    case Predicate::kParentalConsent:
      return true;
    default:
      return false;
  }
}

bool CouldPermitAnyone(const CompiledRule& r) {
  return std::none_of(r.require.begin(), r.require.end(), NamesTheActor);
}

}  // namespace

PatientSearch PlanPatientSearch(const Policy& policy, const AccessRequest& request,
                                absl::Span<const Stored<Relationship>> substitutions,
                                absl::Span<const Stored<OrgCategory>> categories) {
  PatientSearch plan;
  for (uint16_t i : policy.Candidates(request.actor.role, request.purpose)) {
    const CompiledRule& r = policy.rules()[i];
    if (r.is_forbid() || !r.actions.Contains(request.action) || !r.categories.Contains(request.category)) continue;
    if (CouldPermitAnyone(r)) {
      plan.every_patient = true;
      return plan;
    }
  }
  std::vector<std::string>& keys = plan.keys;
  keys.push_back(ActorIndexKey(request.actor.id));
  keys.push_back(SelfKey(request.actor.id));
  keys.push_back(RoleIndexKey(request.actor.role));
  auto organization = [&](absl::string_view org) {
    keys.push_back(OrganizationIndexKey(org));
    for (const Stored<OrgCategory>& c : categories) {
      if (c.value.organization == org) keys.push_back(OrganizationCategoryIndexKey(c.value.category));
    }
  };
  if (!request.actor.organization.empty()) organization(request.actor.organization);
  for (const Stored<Relationship>& s : substitutions) {
    if (s.value.relation == Relation::kSubstituteFor && s.value.subject == request.actor.id) {
      keys.push_back(ActorIndexKey(s.value.object));
    }
  }
  if (request.recipient) {
    if (request.recipient->kind == Party::Kind::kOrganization) {
      organization(request.recipient->id);
    } else {
      keys.push_back(PartyIndexKey(*request.recipient));
    }
  }
  std::sort(keys.begin(), keys.end());
  keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
  return plan;
}

}  // namespace toegang
