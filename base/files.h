// Copyright toegang authors.
//
// files.h: reading whole files where every error is an error.
//
// std::ifstream stops at a read error as at the end of the file, so a facts file whose
// third read fails loads its first part and reports success; a directory opens and
// reads as empty. These calls say what went wrong instead:
//
//   absl::StatusOr<std::string> text = toegang::ReadWholeFile("facts.jsonl");
//   if (!text.ok()) ...  // "cannot read 'facts.jsonl': Input/output error"
//
// Thread-compatible (no shared state).
#ifndef TOEGANG_BASE_FILES_H_
#define TOEGANG_BASE_FILES_H_

#include <sys/types.h>

#include <cstddef>
#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace toegang {

// The read(2) to use; tests inject one that fails part-way.
using ReadCall = std::function<ssize_t(int fd, void* buf, size_t count)>;

// The whole contents of the regular file (or pipe) at `path`. Errors: NotFound when it
// does not exist, InvalidArgument for a directory or anything that is not a file or a
// pipe, FailedPrecondition when it may not be read, DataLoss when a read fails part-way
// (nothing of what was read is returned), InvalidArgument past `max_bytes`.
absl::StatusOr<std::string> ReadWholeFile(const std::string& path, size_t max_bytes = size_t{1} << 32,
                                          const ReadCall& read_call = nullptr);

// Everything readable from `fd` until end of file; `what` names it in errors. A read
// error part-way is DataLoss. EINTR is retried.
absl::StatusOr<std::string> ReadAllFrom(int fd, absl::string_view what, size_t max_bytes = size_t{1} << 32,
                                        const ReadCall& read_call = nullptr);

// The contents of a file that holds a secret (a key, tokens): refused (FailedPrecondition,
// naming the mode) when the group or others may read or write it, or when it is not a
// regular file. The contents are never part of an error.
absl::StatusOr<std::string> ReadSecretFile(const std::string& path, size_t max_bytes = 1 << 20);

// "call: strerror(errno)" as a status whose code fits errno (ENOSPC: ResourceExhausted,
// EACCES/EPERM: PermissionDenied, ENOENT: NotFound, else Internal).
absl::Status ErrnoStatus(absl::string_view call, int err);

// ErrnoStatus for the errno the last failed call left. Call it first thing after the
// failure, before anything else can change errno.
absl::Status ErrnoStatus(absl::string_view call);

}  // namespace toegang

#endif  // TOEGANG_BASE_FILES_H_
