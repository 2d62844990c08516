// Copyright toegang authors.
//
// explain.h: how a decision was reached — every rule of the pack the evaluator
// considered, in its order (those for the actor's role and the purpose: the others
// never apply), what became of each (a parameter switched it off, its target missed,
// a condition failed, it fired or permitted, or the decision was made before it), every
// domain predicate the decision computed with the facts that made it hold, and the
// parameters in force (docs/explain.md has the JSON).
//
// The explanation comes from the same evaluation as the decision, not a second one:
// EvaluateExplained returns exactly what Evaluate returns for the same inputs.
//
//   Explanation why;
//   Decision d = EvaluateExplained(*policy, request, record, actor_facts, &why);
//   std::string json = ExplanationJson(*policy, d, why);
//
// Values: thread-compatible. The string views point into the policy, which must
// outlive the explanation (an EngineDecision keeps it).
#ifndef TOEGANG_POLICY_EXPLAIN_H_
#define TOEGANG_POLICY_EXPLAIN_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/container/inlined_vector.h"
#include "absl/strings/string_view.h"
#include "absl/time/civil_time.h"
#include "model/facts.h"
#include "model/request.h"
#include "policy/evaluator.h"
#include "policy/policy.h"

namespace toegang {

// A fact that made a predicate hold. It owns its strings: a substitute's coverage comes
// from the actor's side, which a decision does not keep.
struct CitedFact {
  absl::string_view type;  // "relationship", "consent", "objection", "restriction", "capacity", "person"
  std::string id;          // "" for a relationship recorded without one
  // A relationship: who, how, to whom (what names it when it has no id).
  std::string subject;
  std::optional<Relation> relation;
  std::string object;
  Window window;
  std::optional<absl::CivilDay> death_date;  // a person: deceased from this day on
};

// One domain predicate the decision computed (each at most once).
struct PredicateTrace {
  absl::string_view predicate;  // as the pack names it: "treating_relationship"
  bool holds = false;
  absl::InlinedVector<CitedFact, 2> facts;  // when it holds and facts make it so
};

// What became of one rule.
struct RuleTrace {
  enum class Outcome : uint8_t {
    kOff,            // a parameter switches it off (`because`: "NAME is VALUE")
    kNoMatch,        // its target does not hold (`because`: action, category, band)
    kNotApplicable,  // an `unless` predicate held (`because`), or a rule of
                     // unless_permitted_by permits (`permitted_by`)
    kFailed,         // a permit's requirement failed (`because`: the predicate, or the age error)
    kNotFired,       // a forbid's condition did not hold (`because`: the predicate)
    kFired,          // a forbid denied: the decision (`because`: the age error, when on doubt)
    kPermitted,      // a permit permitted: the decision
    kNotReached,     // the decision was made by an earlier rule
  };
  absl::string_view rule;
  Effect effect = Effect::kDeny;
  Outcome outcome = Outcome::kNotReached;
  absl::string_view because;
  absl::string_view permitted_by;
};

struct Explanation {
  // The rules for the request's role and purpose: forbid rules, then permit rules, each
  // in pack order.
  std::vector<RuleTrace> rules;
  std::vector<PredicateTrace> predicates;  // in the order they were computed
};

// Decides as Evaluate does, recording how into `*out` (its capacity is reused: a caller
// explaining many decisions may pass the same one).
Decision EvaluateExplained(const Policy& policy, const AccessRequest& request, const PatientRecord& record,
                           ActorFactSource& actor_facts, Explanation* out);

// The explanation as a JSON object (docs/explain.md): {"policy","parameters","age_band",
// "rules","predicates"}, members in that order, written without building a tree.
std::string ExplanationJson(const Policy& policy, const Decision& decision, const Explanation& explanation);

// `decision_json` (an object, as DecisionToJson writes it) with "explanation" added.
std::string WithExplanation(absl::string_view decision_json, absl::string_view explanation_json);

const char* OutcomeName(RuleTrace::Outcome outcome);

}  // namespace toegang

#endif  // TOEGANG_POLICY_EXPLAIN_H_
