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

// Where the evaluator finds the actor's substitute_for relationships (DOMAIN D13). It
// asks only when a rule needs them, at most once per decision: most requests never
// touch them, and an engine reads them from its store only then.
class SubstitutionSource {
 public:
  virtual ~SubstitutionSource() = default;
  // The substitute_for relationships whose subject is the actor. The span stays valid
  // until Evaluate returns.
  virtual absl::Span<const Stored<Relationship>> Substitutions() = 0;
};

// Decides `request` over `record` (every fact about request.patient) and the actor's
// substitutions. The decision's string views (policy, rule, consent ids) point into
// `policy` and `record`, which must outlive it.
Decision Evaluate(const Policy& policy, const AccessRequest& request, const PatientRecord& record,
                  SubstitutionSource& substitutions);

// The same with the substitutions at hand.
Decision Evaluate(const Policy& policy, const AccessRequest& request, const PatientRecord& record,
                  absl::Span<const Stored<Relationship>> substitutions);

}  // namespace toegang

#endif  // TOEGANG_POLICY_EVALUATOR_H_
