// Copyright toegang authors.
//
// grants.h: who may do this to this patient's dossier now — the reverse of a decision.
// Every party the patient's facts and the pack's rules name is decided by the same
// evaluator as a request would be (evaluator.h), so a listed grant is always what
// `decide` answers for it; nothing is listed that was not decided.
//
//   GrantsQuery q{at, Action::kRead, Category::kMedical, std::nullopt};
//   GrantList list = ListGrants(*policy, record, q, actor_facts);
//
// Three lists (docs/grants.md):
// - grants: a named actor (with the role the facts give them), or anyone of a role at
//   an organisation (registered_with, a consent to the organisation) or of an
//   organisation category, each with the decision that permits it and `valid_until`,
//   the first instant after `at` at which the facts known now stop permitting it;
// - conditional: what holds for anyone of a role, given a condition of the request
//   (an emergency justification, a legal order) or an obligation (research
//   de-identified) — said as conditions, not as lists of everyone;
// - denied: the parties an objection or a restriction names, with the decision that
//   denies them and the facts.
// A substitute (D13) stands in for a named clinician: who covers whom is filed under
// the substitute, so substitutes appear as a condition of each treating clinician.
//
// Thread-compatible: it reads only its arguments (and the sources, as they allow).
#ifndef TOEGANG_POLICY_GRANTS_H_
#define TOEGANG_POLICY_GRANTS_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "model/patient_record.h"
#include "model/request.h"
#include "policy/evaluator.h"
#include "policy/policy.h"

namespace toegang {

struct GrantsQuery {
  absl::Time at;
  Action action = Action::kRead;
  Category category = Category::kMedical;
  std::optional<Purpose> purpose;  // nullopt: every purpose
};

// Who a grant or a denial is about.
struct Grantee {
  std::optional<std::string> actor;                  // a named actor, or anyone of `role`
  Role role = Role::kPatient;
  std::optional<std::string> organization;          // acting for this organisation
  std::optional<std::string> organization_category;  // for an organisation of this category
  bool everyone = false;                             // an objection or restriction naming no one
};

struct Grant {
  Grantee who;
  Purpose purpose = Purpose::kTreatment;
  Decision decision;                     // the permit (rule, reasons, basis, obligations, consents)
  std::optional<absl::Time> valid_until;  // nullopt: as far as the facts know, no end
  std::vector<std::string> conditions;   // conditional grants: what the request must carry
};

struct Denial {
  Grantee who;
  Purpose purpose = Purpose::kTreatment;
  Decision decision;               // the deny
  std::vector<std::string> facts;  // the objections and restrictions that name them
};

struct GrantList {
  std::vector<Grant> grants;
  std::vector<Grant> conditional;
  std::vector<Denial> denied;
};

// What is filed on the actors' side, for any candidate: the engine reads it from its
// store. The spans stay valid until ListGrants returns.
class GrantSources {
 public:
  virtual ~GrantSources() = default;
  virtual absl::Span<const Stored<Relationship>> SubstitutionsOf(absl::string_view actor) = 0;
  virtual absl::Span<const Stored<OrgCategory>> CategoriesOf(absl::string_view organization) = 0;
};

// Lists who may do `query.action` on `query.category` of `record.patient` at
// `query.at`. The decisions' string views point into `policy` and `record`.
GrantList ListGrants(const Policy& policy, const PatientRecord& record, const GrantsQuery& query,
                     GrantSources& sources);

// The lists as JSON (docs/grants.md): {"patient","at","sequence","grants","conditional","denied"}.
std::string GrantsJson(const GrantList& list, absl::string_view patient, absl::Time at, uint64_t sequence);

}  // namespace toegang

#endif  // TOEGANG_POLICY_GRANTS_H_
