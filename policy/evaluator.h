// Copyright toegang authors.
//
// evaluator.h: the decision, as a pure function of (compiled policy, request, the
// patient's facts). No I/O, no clock, no globals: the same inputs give the same
// decision (DOMAIN D3), which makes decisions replayable and cheap to test.
//
// How it decides (DOMAIN D1):
//   1. Any forbid rule whose target holds and whose conditions hold denies, with its
//      reason. A prohibition beats every permit, consent included.
//   2. Otherwise the first permit rule whose target holds and whose requirements all
//      hold permits, with its reason, legal basis, obligations and the consents relied
//      on.
//   3. Otherwise deny. The reasons are those of the permit rules whose target held but
//      whose requirement failed (in pack order, without repeats), or
//      no_applicable_rule when no rule's target held.
// An error anywhere — an unknown birth date a rule needs, a birth date after `at`,
// facts of another patient — is a deny with the error in the reasons, never a permit.
//
// Cost: no heap allocation on the common paths; see bench/RESULTS.md. Thread-safe: it
// reads only its arguments.
#ifndef TOEGANG_POLICY_EVALUATOR_H_
#define TOEGANG_POLICY_EVALUATOR_H_

#include "absl/types/span.h"
#include "model/patient_record.h"
#include "model/request.h"
#include "policy/policy.h"

namespace toegang {

// Where the evaluator finds the facts filed on the actor's side rather than the
// patient's: the actor's substitute_for relationships (DOMAIN D13) and the care-provider
// categories of an organisation (a consent, objection or restriction naming an
// organization_category). It asks only when a rule or a fact needs them, at most once
// per decision and organisation: most requests never touch them, and an engine reads
// them from its store only then.
class ActorFactSource {
 public:
  virtual ~ActorFactSource() = default;
  // The substitute_for relationships whose subject is the actor. The span stays valid
  // until Evaluate returns.
  virtual absl::Span<const Stored<Relationship>> Substitutions() = 0;
  // The org_category facts of `organization` (the actor's, or a disclosure's recipient).
  // The span stays valid until Evaluate returns.
  virtual absl::Span<const Stored<OrgCategory>> CategoriesOf(absl::string_view organization) = 0;
};

// Decides `request` over `record` (every fact about request.patient) and the facts on
// the actor's side. The decision's string views (policy, rule, consent ids) point into
// `policy` and `record`, which must outlive it.
Decision Evaluate(const Policy& policy, const AccessRequest& request, const PatientRecord& record,
                  ActorFactSource& actor_facts);

// The same with the facts at hand: the actor's substitutions, and the org_category facts
// of any organisations (those of other organisations are passed over).
Decision Evaluate(const Policy& policy, const AccessRequest& request, const PatientRecord& record,
                  absl::Span<const Stored<Relationship>> substitutions,
                  absl::Span<const Stored<OrgCategory>> categories = {});

}  // namespace toegang

#endif  // TOEGANG_POLICY_EVALUATOR_H_
