// Copyright toegang authors.
//
// status_macros.h: the small early-return helpers Debian's Abseil (20220623) lacks.
//
//   TOEGANG_RETURN_IF_ERROR(expr);          // returns the absl::Status if not OK
//   TOEGANG_ASSIGN_OR_RETURN(auto x, expr); // unwraps an absl::StatusOr<T>
#ifndef TOEGANG_MODEL_STATUS_MACROS_H_
#define TOEGANG_MODEL_STATUS_MACROS_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define TOEGANG_RETURN_IF_ERROR(expr)                 \
  do {                                                \
    ::absl::Status toegang_status_ = (expr);          \
    if (!toegang_status_.ok()) return toegang_status_; \
  } while (0)

#define TOEGANG_STATUS_CONCAT_INNER_(a, b) a##b
#define TOEGANG_STATUS_CONCAT_(a, b) TOEGANG_STATUS_CONCAT_INNER_(a, b)

#define TOEGANG_ASSIGN_OR_RETURN(lhs, expr) \
  TOEGANG_ASSIGN_OR_RETURN_IMPL_(TOEGANG_STATUS_CONCAT_(toegang_statusor_, __LINE__), lhs, expr)

#define TOEGANG_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, expr) \
  auto statusor = (expr);                                   \
  if (!statusor.ok()) return statusor.status();             \
  lhs = std::move(statusor).value()

#endif  // TOEGANG_MODEL_STATUS_MACROS_H_
