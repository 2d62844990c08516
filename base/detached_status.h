// Copyright toegang authors.
//
// detached_status.h: a status handed from one thread to another, sharing nothing.
//
// A copy of an absl::Status shares its message with the original through a reference
// count kept by Debian's uninstrumented libabsl_status. When the original is replaced
// on its own thread while a copy is read on another, ThreadSanitizer cannot see that
// the count orders the read before the free, and reports a race (base/tsan.supp). A
// status read under a lock and handed out of it goes through Detached.
#ifndef TOEGANG_BASE_DETACHED_STATUS_H_
#define TOEGANG_BASE_DETACHED_STATUS_H_

#include "absl/status/status.h"

namespace toegang {

// A copy of `s` with a message of its own (payloads are not kept).
inline absl::Status Detached(const absl::Status& s) { return s.ok() ? s : absl::Status(s.code(), s.message()); }

}  // namespace toegang

#endif  // TOEGANG_BASE_DETACHED_STATUS_H_
