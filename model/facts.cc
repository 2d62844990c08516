// Copyright toegang authors.
#include "model/facts.h"

#include <optional>

#include "absl/strings/cord.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

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
  const char* operator()(const OrgCategory&) const { return "org_category"; }
  const char* operator()(const ErasureRequest&) const { return "erasure_request"; }
  const char* operator()(const RetentionHold&) const { return "retention_hold"; }
  const char* operator()(const Removed&) const { return "removed"; }
};

const std::string& Empty() {
  static const std::string* const empty = new std::string;
  return *empty;
}

}  // namespace

const char* FactTypeName(const FactBody& body) { return std::visit(TypeName{}, body); }

bool IsWithdrawable(const FactBody& body) {
  return std::holds_alternative<Consent>(body) || std::holds_alternative<Objection>(body) ||
         std::holds_alternative<Restriction>(body) || std::holds_alternative<Capacity>(body) ||
         std::holds_alternative<ErasureRequest>(body) || std::holds_alternative<RetentionHold>(body);
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
        } else if constexpr (std::is_same_v<T, Withdrawal> || std::is_same_v<T, OrgCategory>) {
          return nullptr;
        } else {
          return &f.patient;
        }
      },
      body);
}

namespace {

// "<word> N: <what>", with N as a payload under `url`.
absl::Status Positioned(absl::string_view word, absl::string_view url, size_t n, const absl::Status& what) {
  absl::Status out(what.code(), absl::StrCat(word, " ", n, ": ", what.message()));
  out.SetPayload(url, absl::Cord(std::to_string(n)));
  return out;
}

size_t PositionOf(absl::string_view url, const absl::Status& status) {
  auto payload = status.GetPayload(url);
  size_t n = 0;
  if (!payload || !absl::SimpleAtoi(std::string(*payload), &n)) return 0;
  return n;
}

std::string WithoutPosition(absl::string_view word, absl::string_view url, const absl::Status& status) {
  absl::string_view message = status.message();
  const size_t n = PositionOf(url, status);
  if (n > 0) absl::ConsumePrefix(&message, absl::StrCat(word, " ", n, ": "));
  return std::string(message);
}

constexpr char kFactPositionUrl[] = "type.toegang/fact-position";
constexpr char kLineUrl[] = "type.toegang/line";

}  // namespace

absl::Status AtFact(size_t position, const absl::Status& what) {
  return Positioned("fact", kFactPositionUrl, position, what);
}
size_t FactPositionOf(const absl::Status& status) { return PositionOf(kFactPositionUrl, status); }
std::string WhatAtFact(const absl::Status& status) { return WithoutPosition("fact", kFactPositionUrl, status); }

absl::Status AtLine(size_t line, const absl::Status& what) { return Positioned("line", kLineUrl, line, what); }
size_t LineOf(const absl::Status& status) { return PositionOf(kLineUrl, status); }
std::string WhatAtLine(const absl::Status& status) { return WithoutPosition("line", kLineUrl, status); }

bool IsCallersFault(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kAlreadyExists:
    case absl::StatusCode::kNotFound:
      return true;
    default:
      return false;
  }
}

absl::Status DuplicateIdError(const FactBody& body) {
  return absl::AlreadyExistsError(
      absl::StrCat(FactTypeName(body), " id '", FactId(body), "' is already used; facts are never overwritten"));
}

absl::Status UnknownWithdrawalTargetError(absl::string_view target) {
  return absl::NotFoundError(
      absl::StrCat("withdrawal names no known consent, objection, restriction or capacity assessment '", target, "'"));
}

}  // namespace toegang
