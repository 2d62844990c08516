// Copyright toegang authors.
#include "model/facts.h"

#include "absl/strings/str_cat.h"

namespace toegang {
namespace {

struct TypeName {
  const char* operator()(const Person&) const { return "person"; }
  const char* operator()(const Relationship&) const { return "relationship"; }
  const char* operator()(const Consent&) const { return "consent"; }
  const char* operator()(const Withdrawal&) const { return "withdrawal"; }
  const char* operator()(const Objection&) const { return "objection"; }
  const char* operator()(const Restriction&) const { return "restriction"; }
  const char* operator()(const Capacity&) const { return "capacity"; }
};

const std::string& Empty() {
  static const std::string* const empty = new std::string;
  return *empty;
}

}  // namespace

const char* FactTypeName(const FactBody& body) { return std::visit(TypeName{}, body); }

bool IsWithdrawable(const FactBody& body) {
  return std::holds_alternative<Consent>(body) || std::holds_alternative<Objection>(body) ||
         std::holds_alternative<Restriction>(body) || std::holds_alternative<Capacity>(body);
}

std::string UniqueIdKey(const FactBody& body) {
  if (std::holds_alternative<Withdrawal>(body)) return "";
  const std::string& id = FactId(body);
  if (id.empty()) return "";
  return absl::StrCat(IsWithdrawable(body) ? "w" : FactTypeName(body), ":", id);
}

const std::string& FactId(const FactBody& body) {
  return std::visit(
      [](const auto& f) -> const std::string& {
        using T = std::decay_t<decltype(f)>;
        if constexpr (std::is_same_v<T, Withdrawal>) {
          return Empty();
        } else {
          return f.id;
        }
      },
      body);
}

const std::string* FactPatient(const FactBody& body) {
  return std::visit(
      [](const auto& f) -> const std::string* {
        using T = std::decay_t<decltype(f)>;
        if constexpr (std::is_same_v<T, Person>) {
          return &f.id;
        } else if constexpr (std::is_same_v<T, Relationship>) {
          return f.relation == Relation::kSubstituteFor ? nullptr : &f.object;
        } else if constexpr (std::is_same_v<T, Withdrawal>) {
          return nullptr;
        } else {
          return &f.patient;
        }
      },
      body);
}

}  // namespace toegang
