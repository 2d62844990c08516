// Copyright toegang authors.
#include "base/files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace toegang {

absl::Status ErrnoStatus(absl::string_view call, int err) {
  std::string msg = absl::StrCat(call, ": ", std::strerror(err));
  switch (err) {
    case ENOSPC:
    case EDQUOT:
      return absl::ResourceExhaustedError(msg);
    case EACCES:
    case EPERM:
      return absl::PermissionDeniedError(msg);
    case ENOENT:
      return absl::NotFoundError(msg);
    default:
      return absl::InternalError(msg);
  }
}

absl::Status ErrnoStatus(absl::string_view call) { return ErrnoStatus(call, errno); }

absl::StatusOr<std::string> ReadAllFrom(int fd, absl::string_view what, size_t max_bytes, const ReadCall& read_call) {
  std::string out;
  char buf[64 * 1024];
  while (true) {
    ssize_t n = read_call ? read_call(fd, buf, sizeof buf) : ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      return absl::DataLossError(absl::StrCat("cannot read ", what, " after ", out.size(),
                                              " bytes: ", std::strerror(err)));
    }
    if (n == 0) return out;
    if (out.size() + static_cast<size_t>(n) > max_bytes) {
      return absl::InvalidArgumentError(absl::StrCat(what, " is larger than ", max_bytes, " bytes"));
    }
    out.append(buf, static_cast<size_t>(n));
  }
}

absl::StatusOr<std::string> ReadWholeFile(const std::string& path, size_t max_bytes, const ReadCall& read_call) {
  const std::string what = absl::StrCat("'", path, "'");
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    if (err == ENOENT) return absl::NotFoundError(absl::StrCat(what, " does not exist"));
    if (err == EACCES || err == EPERM) {
      return absl::FailedPreconditionError(absl::StrCat("cannot read ", what, ": ", std::strerror(err)));
    }
    return ErrnoStatus(absl::StrCat("cannot open ", what), err);
  }
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    return ErrnoStatus(absl::StrCat("cannot stat ", what), err);
  }
  if (S_ISDIR(st.st_mode)) {
    ::close(fd);
    return absl::InvalidArgumentError(absl::StrCat(what, " is a directory, not a file"));
  }
  if (!S_ISREG(st.st_mode) && !S_ISFIFO(st.st_mode) && !S_ISCHR(st.st_mode)) {
    ::close(fd);
    return absl::InvalidArgumentError(absl::StrCat(what, " is not a regular file"));
  }
  absl::StatusOr<std::string> out = ReadAllFrom(fd, what, max_bytes, read_call);
  ::close(fd);
  return out;
}

absl::StatusOr<std::string> ReadSecretFile(const std::string& path, size_t max_bytes) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    const int err = errno;
    if (err == ENOENT) return absl::NotFoundError(absl::StrCat("'", path, "' does not exist"));
    return ErrnoStatus(absl::StrCat("cannot stat '", path, "'"), err);
  }
  if (!S_ISREG(st.st_mode)) return absl::InvalidArgumentError(absl::StrCat("'", path, "' is not a regular file"));
  if ((st.st_mode & 077) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return absl::FailedPreconditionError(absl::StrCat("'", path, "' holds a secret but its mode is ", mode,
                                                      ": the group or others may use it; make it 0600 (chmod 600)"));
  }
  return ReadWholeFile(path, max_bytes);
}


}  // namespace toegang
