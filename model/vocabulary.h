// Copyright toegang authors.
//
// vocabulary.h: the closed vocabularies of API.md as enums, with their stable
// snake_case names, and small bit-mask sets over them.
//
// Every enum here is also a value stored on disk (schemas/fact.fbs stores sets as bit
// masks over these enums): append new values at the end only, never reorder.
// Everything here is a constant or a value: thread-safe.
//
// Example:
//
//   Role role;
//   if (!ParseName("clinician", &role)) { ... unknown role ... }
//   absl::string_view n = Name(role);                // "clinician"
//   EnumSet<Category> clinical = ClinicalCategories();
//   if (clinical.Contains(Category::kMedical)) { ... }
#ifndef TOEGANG_MODEL_VOCABULARY_H_
#define TOEGANG_MODEL_VOCABULARY_H_

#include <cstdint>
#include <initializer_list>

#include "absl/strings/string_view.h"

namespace toegang {

// X-macro tables: (Enumerator, "wire name"). The order is the numeric value.
#define TOEGANG_ROLES(X)                  \
  X(kPatient, "patient")                  \
  X(kParent, "parent")                    \
  X(kRepresentative, "representative")    \
  X(kClinician, "clinician")              \
  X(kAssistant, "assistant")              \
  X(kAdministrator, "administrator")      \
  X(kResearcher, "researcher")            \
  X(kInsurer, "insurer")                  \
  X(kMunicipality, "municipality")        \
  X(kLawEnforcement, "law_enforcement")   \
  X(kEmployer, "employer")

#define TOEGANG_RELATIONS(X)                            \
  X(kTreating, "treating")                              \
  X(kSubstituteFor, "substitute_for")                   \
  X(kRegisteredWith, "registered_with")                 \
  X(kParentWithAuthority, "parent_with_authority")      \
  X(kParentWithoutAuthority, "parent_without_authority") \
  X(kGuardian, "guardian")                              \
  X(kRepresentative, "representative")

#define TOEGANG_ACTIONS(X) \
  X(kRead, "read")         \
  X(kWrite, "write")       \
  X(kDisclose, "disclose") \
  X(kExport, "export")     \
  X(kErase, "erase")

#define TOEGANG_CATEGORIES(X)                \
  X(kMedical, "medical")                     \
  X(kTreatmentPlan, "treatment_plan")        \
  X(kIntake, "intake")                       \
  X(kConsultChat, "consult_chat")            \
  X(kSymptomChecker, "symptom_checker")      \
  X(kContact, "contact")                     \
  X(kIdentification, "identification")      \
  X(kFinancial, "financial")                 \
  X(kInsurance, "insurance")

#define TOEGANG_PURPOSES(X)                  \
  X(kTreatment, "treatment")                 \
  X(kEmergency, "emergency")                 \
  X(kReferral, "referral")                   \
  X(kBilling, "billing")                     \
  X(kResearch, "research")                   \
  X(kQualityReview, "quality_review")        \
  X(kLegalObligation, "legal_obligation")    \
  X(kPatientRequest, "patient_request")      \
  X(kComplaint, "complaint")

#define TOEGANG_AGE_BANDS(X)  \
  X(kUnder12, "under_12")     \
  X(k12To15, "12_to_15")      \
  X(k16To17, "16_to_17")      \
  X(kAdult, "adult")

#define TOEGANG_LEGAL_BASES(X)                                          \
  X(kConsent, "gdpr_6_1_a_consent")                                     \
  X(kContract, "gdpr_6_1_b_contract")                                   \
  X(kLegalObligation, "gdpr_6_1_c_legal_obligation")                    \
  X(kVitalInterest, "gdpr_6_1_d_vital_interest")                        \
  X(kLegitimateInterest, "gdpr_6_1_f_legitimate_interest")              \
  X(kHealthCare, "gdpr_9_2_h_health_care")                              \
  X(kRightOfAccess, "gdpr_15_right_of_access")

#define TOEGANG_OBLIGATIONS(X)                                     \
  X(kLogAccess, "log_access")                                      \
  X(kEmergencyReview, "emergency_review")                          \
  X(kNotifyTreatingClinician, "notify_treating_clinician")         \
  X(kPseudonymize, "pseudonymize")                                 \
  X(kAnonymize, "anonymize")                                       \
  X(kBillingFieldsOnly, "billing_fields_only")                     \
  X(kNotifyDataProtectionOfficer, "notify_data_protection_officer")

// Why a patient's records are kept past their term or from an erasure (DOMAIN D60, D61):
// a dispute, a legal order, a child-protection measure (Jeugdwet: 30 years after the
// 18th birthday), someone else's substantial interest, good care.
#define TOEGANG_HOLD_REASONS(X)                       \
  X(kDispute, "dispute")                              \
  X(kLegalOrder, "legal_order")                       \
  X(kChildProtection, "child_protection")             \
  X(kSubstantialInterest, "substantial_interest")     \
  X(kGoodCare, "good_care")

// Reason codes: stable, documented in docs/reasons.md with the rule each comes from.
#define TOEGANG_REASONS(X)                                                     \
  X(kTreatingRelationship, "treating_relationship")                            \
  X(kSubstituteCoverage, "substitute_coverage")                                \
  X(kNoTreatmentRelationship, "no_treatment_relationship")                     \
  X(kParentWithAuthority, "parent_with_authority")                             \
  X(kWithheldByClinician, "withheld_by_clinician")                             \
  X(kNeedsProfessionalJudgement, "needs_professional_judgement")               \
  X(kPatientObjection, "patient_objection")                                    \
  X(kConsent, "consent")                                                       \
  X(kNoEffectiveConsent, "no_effective_consent")                               \
  X(kEmergencyAccess, "emergency_access")                                      \
  X(kInsurerNeverSeesTreatmentContent, "insurer_never_sees_treatment_content") \
  X(kEmployerNever, "employer_never")                                          \
  X(kNeedsLegalReview, "needs_legal_review")                                   \
  X(kNoApplicableRule, "no_applicable_rule")                                   \
  X(kInvalidRequest, "invalid_request")                                        \
  X(kPatientSelfAccess, "patient_self_access")                                 \
  X(kErasureRequest, "erasure_request")                                        \
  X(kRegisteredWithPractice, "registered_with_practice")                       \
  X(kBillingAdministration, "billing_administration")                          \
  X(kResearchDeidentified, "research_deidentified")                            \
  X(kQualityReview, "quality_review")                                          \
  X(kInsurerBilling, "insurer_billing")                                        \
  X(kMunicipalityBilling, "municipality_billing")                              \
  X(kLegalOrder, "legal_order")                                                \
  X(kRepresentativeOfIncapablePatient, "representative_of_incapable_patient")  \
  X(kNoParentalAuthority, "no_parental_authority")                             \
  X(kNotThePatient, "not_the_patient")                                         \
  X(kNoRepresentation, "no_representation")                                    \
  X(kNotRegisteredWithOrganization, "not_registered_with_organization")        \
  X(kEmergencyJustificationRequired, "emergency_justification_required")       \
  X(kAgeUnknown, "age_unknown")                                                \
  X(kBirthDateAfterRequest, "birth_date_after_request")                        \
  X(kPatientDeceased, "patient_deceased")                                      \
  X(kNoParentalConsent, "no_parental_consent")                                 \
  X(kParentalConsent, "parental_consent")                                      \
  X(kPolicyError, "policy_error")                                              \
  X(kChildSelfAccessWithParent, "child_self_access_with_parent")              \
  X(kAuditLogUnavailable, "audit_log_unavailable")                            \
  X(kReplicaBehind, "replica_behind")                                          \
  X(kFactsRemovedByRetention, "facts_removed_by_retention")

#define TOEGANG_DECLARE_ENUM_(Enumerator, wire) Enumerator,
enum class Role : uint8_t { TOEGANG_ROLES(TOEGANG_DECLARE_ENUM_) };
enum class Relation : uint8_t { TOEGANG_RELATIONS(TOEGANG_DECLARE_ENUM_) };
enum class Action : uint8_t { TOEGANG_ACTIONS(TOEGANG_DECLARE_ENUM_) };
enum class Category : uint8_t { TOEGANG_CATEGORIES(TOEGANG_DECLARE_ENUM_) };
enum class Purpose : uint8_t { TOEGANG_PURPOSES(TOEGANG_DECLARE_ENUM_) };
enum class AgeBand : uint8_t { TOEGANG_AGE_BANDS(TOEGANG_DECLARE_ENUM_) };
enum class LegalBasis : uint8_t { TOEGANG_LEGAL_BASES(TOEGANG_DECLARE_ENUM_) };
enum class Obligation : uint8_t { TOEGANG_OBLIGATIONS(TOEGANG_DECLARE_ENUM_) };
enum class Reason : uint8_t { TOEGANG_REASONS(TOEGANG_DECLARE_ENUM_) };
enum class HoldReason : uint8_t { TOEGANG_HOLD_REASONS(TOEGANG_DECLARE_ENUM_) };
#undef TOEGANG_DECLARE_ENUM_

// The number of values of an enum of this file.
template <typename E>
constexpr int EnumCount();

// Whether `v` (a number read from a frame or a stored record) is a value of enum E.
template <typename E>
constexpr bool IsEnumValue(int v);

#define TOEGANG_COUNT_ONE_(Enumerator, wire) +1
template <> constexpr int EnumCount<Role>() { return 0 TOEGANG_ROLES(TOEGANG_COUNT_ONE_); }
template <> constexpr int EnumCount<Relation>() { return 0 TOEGANG_RELATIONS(TOEGANG_COUNT_ONE_); }
template <> constexpr int EnumCount<Action>() { return 0 TOEGANG_ACTIONS(TOEGANG_COUNT_ONE_); }
template <> constexpr int EnumCount<Category>() { return 0 TOEGANG_CATEGORIES(TOEGANG_COUNT_ONE_); }
template <> constexpr int EnumCount<Purpose>() { return 0 TOEGANG_PURPOSES(TOEGANG_COUNT_ONE_); }
template <> constexpr int EnumCount<AgeBand>() { return 0 TOEGANG_AGE_BANDS(TOEGANG_COUNT_ONE_); }
template <> constexpr int EnumCount<LegalBasis>() { return 0 TOEGANG_LEGAL_BASES(TOEGANG_COUNT_ONE_); }
template <> constexpr int EnumCount<Obligation>() { return 0 TOEGANG_OBLIGATIONS(TOEGANG_COUNT_ONE_); }
template <> constexpr int EnumCount<Reason>() { return 0 TOEGANG_REASONS(TOEGANG_COUNT_ONE_); }
template <> constexpr int EnumCount<HoldReason>() { return 0 TOEGANG_HOLD_REASONS(TOEGANG_COUNT_ONE_); }
#undef TOEGANG_COUNT_ONE_

template <typename E>
constexpr bool IsEnumValue(int v) {
  return v >= 0 && v < EnumCount<E>();
}

// The wire name of a value ("clinician"). Never empty for a valid value.
absl::string_view Name(Role v);
absl::string_view Name(Relation v);
absl::string_view Name(Action v);
absl::string_view Name(Category v);
absl::string_view Name(Purpose v);
absl::string_view Name(AgeBand v);
absl::string_view Name(LegalBasis v);
absl::string_view Name(Obligation v);
absl::string_view Name(Reason v);
absl::string_view Name(HoldReason v);

// Parses a wire name. Exact and case-sensitive: "Clinician" is unknown. Returns false
// and leaves *out unchanged for an unknown name.
bool ParseName(absl::string_view name, Role* out);
bool ParseName(absl::string_view name, Relation* out);
bool ParseName(absl::string_view name, Action* out);
bool ParseName(absl::string_view name, Category* out);
bool ParseName(absl::string_view name, Purpose* out);
bool ParseName(absl::string_view name, AgeBand* out);
bool ParseName(absl::string_view name, LegalBasis* out);
bool ParseName(absl::string_view name, Obligation* out);
bool ParseName(absl::string_view name, Reason* out);
bool ParseName(absl::string_view name, HoldReason* out);

// A set of values of one enum, as a bit mask (bit i = value i). Trivially copyable.
template <typename E>
class EnumSet {
 public:
  static_assert(EnumCount<E>() <= 32, "EnumSet holds at most 32 values");

  constexpr EnumSet() = default;
  constexpr EnumSet(std::initializer_list<E> values) {
    for (E v : values) bits_ |= Bit(v);
  }
  static constexpr EnumSet All() { return FromBits((uint32_t{1} << EnumCount<E>()) - 1); }
  static constexpr EnumSet FromBits(uint32_t bits) {
    EnumSet s;
    s.bits_ = bits & ((uint64_t{1} << EnumCount<E>()) - 1);
    return s;
  }

  constexpr bool Contains(E v) const { return (bits_ & Bit(v)) != 0; }
  constexpr bool empty() const { return bits_ == 0; }
  constexpr uint32_t bits() const { return bits_; }
  void Insert(E v) { bits_ |= Bit(v); }
  void Erase(E v) { bits_ &= ~Bit(v); }
  constexpr EnumSet Union(EnumSet o) const { return FromBits(bits_ | o.bits_); }
  constexpr EnumSet Intersect(EnumSet o) const { return FromBits(bits_ & o.bits_); }
  constexpr EnumSet Minus(EnumSet o) const { return FromBits(bits_ & ~o.bits_); }
  constexpr bool IsSubsetOf(EnumSet o) const { return (bits_ & ~o.bits_) == 0; }
  int size() const { return __builtin_popcount(bits_); }

  friend constexpr bool operator==(EnumSet a, EnumSet b) { return a.bits_ == b.bits_; }
  friend constexpr bool operator!=(EnumSet a, EnumSet b) { return a.bits_ != b.bits_; }

  // Calls f(value) for each member in enum order.
  template <typename F>
  void ForEach(F f) const {
    for (int i = 0; i < EnumCount<E>(); ++i) {
      if (bits_ & (uint32_t{1} << i)) f(static_cast<E>(i));
    }
  }

 private:
  static constexpr uint32_t Bit(E v) { return uint32_t{1} << static_cast<int>(v); }
  uint32_t bits_ = 0;
};

using RoleSet = EnumSet<Role>;
using ActionSet = EnumSet<Action>;
using CategorySet = EnumSet<Category>;
using PurposeSet = EnumSet<Purpose>;
using AgeBandSet = EnumSet<AgeBand>;
using ObligationSet = EnumSet<Obligation>;

// The clinical categories (DOMAIN D25, D31): what insurers, municipalities and
// employers never see.
constexpr CategorySet ClinicalCategories() {
  return CategorySet{Category::kMedical, Category::kTreatmentPlan, Category::kIntake,
                     Category::kConsultChat, Category::kSymptomChecker};
}

}  // namespace toegang

#endif  // TOEGANG_MODEL_VOCABULARY_H_
