// Copyright toegang authors.
//
// policy.h: policy packs — the rules toegang decides by, as data — compiled once into
// an immutable, indexed Policy.
//
// A pack is a small text file (docs/policy-format.md): a name and version, the DOMAIN
// parameters (`param consent_12_to_15 child_and_parent`), and rules. Each rule matches
// on role, purpose, action, category and age band; has conditions over domain
// predicates (treating relationship in force, effective consent, objection, ...); and
// yields an effect (permit or forbid), a reason code, a legal basis and obligations.
// Forbid rules beat every permit (DOMAIN D1, D30-D33).
//
// Example:
//
//   absl::StatusOr<std::shared_ptr<const Policy>> policy = BuiltinPolicy("wgbo-default");
//   Decision d = Evaluate(**policy, request, record, substitutions);  // evaluator.h
//
// A Policy never changes once built: share it between threads freely and swap a
// std::shared_ptr<const Policy> to reload. Every function here is thread-safe.
#ifndef TOEGANG_POLICY_POLICY_H_
#define TOEGANG_POLICY_POLICY_H_

#include <memory>
#include <optional>
#include <utility>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "model/time.h"
#include "model/vocabulary.h"

namespace toegang {

namespace policy_internal {
struct CompiledRule;
}  // namespace policy_internal

// The DOMAIN parameters a pack sets that the evaluator's C++ reads. Defaults are
// wgbo-default's. Every parameter a pack may set is in one table (policy.cc
// ParamSpecs: name, DOMAIN rule, values, default, and the field it sets here); those
// only the pack's own rules read through `only_if` (child_under_12_self_access, D8;
// emergency_overrides_objection, D15) have no field.
struct PolicyParams {
  LeapDayRule leap_day_rule = LeapDayRule::kMarch1;  // D4
  enum class Consent12To15 : uint8_t { kChildAndParent, kChildOnly };
  Consent12To15 consent_12_to_15 = Consent12To15::kChildAndParent;  // D20
  enum class ParentConsentAt16 : uint8_t { kRequireReconfirmation, kContinue };
  ParentConsentAt16 parent_consent_at_16 = ParentConsentAt16::kRequireReconfirmation;  // D20
  Obligation research_deidentification = Obligation::kPseudonymize;  // D23
  int treatment_grace_days = 0;                                     // D12
  // Who a yes recorded in Mitz (a consent to an organization_category) counts as given
  // by: the patient's own consent that Mitz checked (as_patient), or the patient's, still
  // held to D20's grantors (satisfies_d20: a 12-15 year old's needs a parent's consent
  // too; an under-12's never counts alone). Fail closed by default.
  enum class MitzGrantor : uint8_t { kSatisfiesD20, kAsPatient };
  MitzGrantor mitz_grantor = MitzGrantor::kSatisfiesD20;
  // Retention (policy/retention.h): the dossier from its last change (D60, WGBO
  // 7:454(3)), access-log records from when they were written (D51, NEN 7513), records
  // of financial and insurance data (fiscal). Minimums: a pack may only lengthen them.
  int retention_dossier_years = 20;
  int retention_access_log_years = 5;
  int retention_financial_years = 7;
};

class Policy {
 public:
  ~Policy();
  Policy(const Policy&) = delete;
  Policy& operator=(const Policy&) = delete;

  const std::string& name() const { return name_; }
  int version() const { return version_; }
  // "name@version", as decisions and audit records cite it.
  absl::string_view id() const { return id_; }
  const PolicyParams& params() const { return params_; }
  // Every parameter a pack may set, with the value in force (as set, or the default),
  // in the order docs/policy-format.md lists them.
  const std::vector<std::pair<std::string, std::string>>& parameters() const { return parameters_; }
  // The toegang categories a consent's data-category code stands for (Mitz's
  // "gegevenscategorie", e.g. "GGC002"), as the pack's `data_category` lines map them;
  // nullopt for a code the pack does not map (an import refuses it rather than widen).
  std::optional<CategorySet> DataCategory(absl::string_view code) const;
  // Every mapped code, in order.
  const std::vector<std::pair<std::string, CategorySet>>& data_categories() const { return data_categories_; }

  // The pack's text, as compiled (for `policy show` and the audit trail).
  const std::string& source() const { return source_; }

  // For the evaluator and checker: every rule in pack order (enabled or not).
  const std::vector<policy_internal::CompiledRule>& rules() const { return rules_; }
  // The enabled rules whose role and purpose sets hold (role, purpose): forbid rules
  // first, each group in pack order.
  absl::Span<const uint16_t> Candidates(Role role, Purpose purpose) const;

 private:
  friend class PolicyCompiler;
  Policy();

  std::string name_;
  int version_ = 0;
  std::string id_;
  PolicyParams params_;
  std::vector<std::pair<std::string, std::string>> parameters_;
  std::string source_;
  std::vector<std::pair<std::string, CategorySet>> data_categories_;
  std::vector<policy_internal::CompiledRule> rules_;
  std::vector<std::vector<uint16_t>> index_;  // [role * kPurposes + purpose]
};

// One finding of the compiler or the checker, with the pack line it is about.
struct PolicyDiagnostic {
  enum class Severity : uint8_t { kError, kWarning, kNote };
  Severity severity = Severity::kError;
  int line = 0;  // 1-based; 0 when about the whole pack
  std::string message;
};

// "file:12: error: unknown role 'nurse'".
std::string FormatDiagnostic(absl::string_view source_name, const PolicyDiagnostic& d);

// Compiles a pack. Any error (syntax, unknown name, a rule that can never match, a
// rule shadowed by an earlier one) fails with every error in the status message, one
// per line as "LINE: message". `extends NAME` resolves against the built-in packs.
absl::StatusOr<std::shared_ptr<const Policy>> CompilePolicy(absl::string_view text);

// Everything `toegang policy check` reports: errors (the pack does not compile),
// warnings (unreachable or shadowed rules — these also fail CompilePolicy) and notes
// (overlapping permits where the earlier wins, rules a parameter disables). Sorted by
// line. The pack is usable iff there is no error or warning.
std::vector<PolicyDiagnostic> CheckPolicy(absl::string_view text);

// The packs compiled into the binary: "wgbo-default" and "youth-care-opvoedrijk".
absl::StatusOr<std::shared_ptr<const Policy>> BuiltinPolicy(absl::string_view name);
// The text of a built-in pack, or nullptr.
const char* BuiltinPolicyText(absl::string_view name);
std::vector<std::string> BuiltinPolicyNames();

}  // namespace toegang

#endif  // TOEGANG_POLICY_POLICY_H_
