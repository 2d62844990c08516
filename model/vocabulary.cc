// Copyright toegang authors.
#include "model/vocabulary.h"

#include <array>

namespace toegang {
namespace {

template <typename E, size_t N>
bool ParseFrom(const std::array<absl::string_view, N>& names, absl::string_view name,
               E* out) {
  for (size_t i = 0; i < N; ++i) {
    if (names[i] == name) {
      *out = static_cast<E>(i);
      return true;
    }
  }
  return false;
}

template <typename E, size_t N>
absl::string_view NameFrom(const std::array<absl::string_view, N>& names, E v) {
  size_t i = static_cast<size_t>(v);
  return i < N ? names[i] : absl::string_view("?");
}

#define TOEGANG_WIRE_NAME_(Enumerator, wire) absl::string_view(wire),
constexpr std::array kRoleNames{TOEGANG_ROLES(TOEGANG_WIRE_NAME_)};
constexpr std::array kRelationNames{TOEGANG_RELATIONS(TOEGANG_WIRE_NAME_)};
constexpr std::array kActionNames{TOEGANG_ACTIONS(TOEGANG_WIRE_NAME_)};
constexpr std::array kCategoryNames{TOEGANG_CATEGORIES(TOEGANG_WIRE_NAME_)};
constexpr std::array kPurposeNames{TOEGANG_PURPOSES(TOEGANG_WIRE_NAME_)};
constexpr std::array kAgeBandNames{TOEGANG_AGE_BANDS(TOEGANG_WIRE_NAME_)};
constexpr std::array kLegalBasisNames{TOEGANG_LEGAL_BASES(TOEGANG_WIRE_NAME_)};
constexpr std::array kObligationNames{TOEGANG_OBLIGATIONS(TOEGANG_WIRE_NAME_)};
constexpr std::array kReasonNames{TOEGANG_REASONS(TOEGANG_WIRE_NAME_)};
constexpr std::array kHoldReasonNames{TOEGANG_HOLD_REASONS(TOEGANG_WIRE_NAME_)};
#undef TOEGANG_WIRE_NAME_

}  // namespace

#define TOEGANG_DEFINE_NAMES_(Type, table)                                          \
  absl::string_view Name(Type v) { return NameFrom(table, v); }                    \
  bool ParseName(absl::string_view name, Type* out) { return ParseFrom(table, name, out); }

TOEGANG_DEFINE_NAMES_(Role, kRoleNames)
TOEGANG_DEFINE_NAMES_(Relation, kRelationNames)
TOEGANG_DEFINE_NAMES_(Action, kActionNames)
TOEGANG_DEFINE_NAMES_(Category, kCategoryNames)
TOEGANG_DEFINE_NAMES_(Purpose, kPurposeNames)
TOEGANG_DEFINE_NAMES_(AgeBand, kAgeBandNames)
TOEGANG_DEFINE_NAMES_(LegalBasis, kLegalBasisNames)
TOEGANG_DEFINE_NAMES_(Obligation, kObligationNames)
TOEGANG_DEFINE_NAMES_(Reason, kReasonNames)
TOEGANG_DEFINE_NAMES_(HoldReason, kHoldReasonNames)
#undef TOEGANG_DEFINE_NAMES_

}  // namespace toegang
