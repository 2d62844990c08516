// Copyright toegang authors.
//
// rules.h (internal): a compiled rule and the domain predicates rules are written in.
#ifndef TOEGANG_POLICY_INTERNAL_RULES_H_
#define TOEGANG_POLICY_INTERNAL_RULES_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/inlined_vector.h"
#include "absl/strings/string_view.h"
#include "model/request.h"
#include "model/vocabulary.h"

namespace toegang::policy_internal {

// The domain predicates a rule's conditions name (docs/policy-format.md lists them with
// the DOMAIN rule each implements). Each knows the reason it gives when it fails as a
// permit rule's requirement.
#define TOEGANG_PREDICATES(X)                                                                 \
  X(kTreatingRelationship, "treating_relationship", kNoTreatmentRelationship)                 \
  X(kSubstituteCoverage, "substitute_coverage", kNoTreatmentRelationship)                     \
  X(kRegisteredWith, "registered_with", kNotRegisteredWithOrganization)                       \
  X(kSelf, "self", kNotThePatient)                                                            \
  X(kParentWithAuthority, "parent_with_authority", kNoParentalAuthority)                      \
  X(kRepresentativeOfIncapable, "representative_of_incapable", kNoRepresentation)             \
  X(kConsent, "consent", kNoEffectiveConsent)                                                 \
  X(kParentalConsent, "parental_consent", kNoParentalConsent)                                 \
  X(kObjection, "objection", kPatientObjection)                                               \
  X(kChildObjection, "child_objection", kNeedsProfessionalJudgement)                          \
  X(kRestriction, "restriction", kWithheldByClinician)                                        \
  X(kEmergencyJustification, "emergency_justification", kEmergencyJustificationRequired)      \
  X(kLegalOrder, "legal_order", kNeedsLegalReview)                                            \
  X(kDeceased, "deceased", kPatientDeceased)

#define TOEGANG_DECLARE_PREDICATE_(Enumerator, name, reason) Enumerator,
enum class Predicate : uint8_t { TOEGANG_PREDICATES(TOEGANG_DECLARE_PREDICATE_) };
#undef TOEGANG_DECLARE_PREDICATE_

absl::string_view PredicateName(Predicate p);
bool ParsePredicate(absl::string_view name, Predicate* out);
Reason PredicateFailureReason(Predicate p);
constexpr int kPredicateCount = 0
#define TOEGANG_COUNT_PREDICATE_(Enumerator, name, reason) +1
    TOEGANG_PREDICATES(TOEGANG_COUNT_PREDICATE_);
#undef TOEGANG_COUNT_PREDICATE_

struct CompiledRule {
  std::string id;
  int line = 0;
  Effect effect = Effect::kDeny;  // kDeny: a forbid rule
  bool enabled = true;            // false when an only_if parameter does not hold
  std::string disabled_because;

  // Target: the request must fall in every set.
  RoleSet roles = RoleSet::All();
  PurposeSet purposes = PurposeSet::All();
  ActionSet actions = ActionSet::All();
  CategorySet categories = CategorySet::All();
  AgeBandSet bands = AgeBandSet::All();
  bool needs_band = false;  // a `band` line was given: the age must be known

  // Conditions. Forbid: fires when every `when` holds and no `unless` holds and no
  // rule of `unless_permitted_by` permits. Permit: permits when every `require` holds
  // (in order; the first that fails gives the reason) and no `unless` holds.
  absl::InlinedVector<Predicate, 4> when;
  absl::InlinedVector<Predicate, 4> require;
  absl::InlinedVector<Predicate, 4> unless;
  std::vector<uint16_t> unless_permitted_by;

  Reason reason = Reason::kNoApplicableRule;
  std::optional<LegalBasis> basis;
  absl::InlinedVector<Obligation, 4> obligations;
  std::vector<std::string> cites;

  bool is_forbid() const { return effect == Effect::kDeny; }
};

}  // namespace toegang::policy_internal

#endif  // TOEGANG_POLICY_INTERNAL_RULES_H_
