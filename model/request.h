// Copyright toegang authors.
//
// request.h: an access request and the decision toegang answers it with (API.md
// "Access request and decision"). Plain values: thread-compatible.
#ifndef TOEGANG_MODEL_REQUEST_H_
#define TOEGANG_MODEL_REQUEST_H_

#include <optional>
#include <string>

#include "absl/container/inlined_vector.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "model/facts.h"
#include "model/vocabulary.h"

namespace toegang {

struct Actor {
  std::string id;
  Role role = Role::kPatient;
  std::string organization;  // may be empty
};

struct AccessRequest {
  absl::Time at;  // DOMAIN D3: time comes with the request
  Actor actor;
  std::string patient;
  Action action = Action::kRead;
  Category category = Category::kMedical;
  Purpose purpose = Purpose::kTreatment;
  bool emergency = false;               // an `emergency` object was given
  std::string emergency_justification;  // its justification (may be empty: D25 denies)
  std::optional<std::string> legal_order;  // a reference to the order (D28)
  std::optional<Party> recipient;       // who receives the data on a disclose
  // A consistency token (engine/replica/replica.h): decide on facts at least as new as
  // the point of the history it names. Empty: on what the node has.
  std::string at_least;
  // Answer with how the decision was reached (policy/explain.h); the decision is the same.
  bool explain = false;
};

enum class Effect : uint8_t { kPermit, kDeny };

// A decision. Cheap to produce: the evaluator fills it without heap allocation on the
// common paths (reasons and consent ids fit inline; consent ids are views into the
// facts the decision was made over, so they live as long as those facts).
struct Decision {
  Effect effect = Effect::kDeny;
  absl::InlinedVector<Reason, 4> reasons;
  std::optional<LegalBasis> legal_basis;
  absl::InlinedVector<Obligation, 4> obligations;  // in the pack's order
  absl::InlinedVector<absl::string_view, 2> consents;
  std::optional<AgeBand> age_band;
  absl::string_view policy;  // "wgbo-default@1"; owned by the compiled policy
  absl::string_view rule;    // the id of the rule that decided, if one did
  std::string error;         // the parse or evaluation error behind invalid_request

  bool permitted() const { return effect == Effect::kPermit; }
};

}  // namespace toegang

#endif  // TOEGANG_MODEL_REQUEST_H_
