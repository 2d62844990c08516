// Copyright toegang authors.
#include "base/files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>

#include "gtest/gtest.h"

namespace toegang {
namespace {

std::string TempDir() {
  const char* t = std::getenv("TEST_TMPDIR");
  return t != nullptr ? t : "/tmp";
}

std::string WriteTemp(const std::string& name, const std::string& contents) {
  std::string path = TempDir() + "/" + name;
  std::ofstream(path, std::ios::binary | std::ios::trunc) << contents;
  EXPECT_EQ(::chmod(path.c_str(), 0600), 0);
  return path;
}

TEST(ReadWholeFile, ReadsEverything) {
  std::string big(200 * 1024, 'x');  // more than one read
  big[123456] = 'y';
  std::string path = WriteTemp("big", big);
  absl::StatusOr<std::string> got = ReadWholeFile(path);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, big);
}

TEST(ReadWholeFile, AReadErrorPartWayIsAnErrorNotAShortFile) {
  std::string path = WriteTemp("eio", std::string(300 * 1024, 'a'));
  int calls = 0;
  ReadCall failing_third = [&](int fd, void* buf, size_t n) -> ssize_t {
    if (++calls == 3) {
      errno = EIO;
      return -1;
    }
    return ::read(fd, buf, n);
  };
  absl::StatusOr<std::string> got = ReadWholeFile(path, size_t{1} << 30, failing_third);
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(got.status().message().find("Input/output error"), std::string::npos) << got.status();
  EXPECT_NE(got.status().message().find("after 131072 bytes"), std::string::npos) << got.status();
}

TEST(ReadWholeFile, EintrIsRetried) {
  std::string path = WriteTemp("eintr", "hello");
  int calls = 0;
  ReadCall interrupted_once = [&](int fd, void* buf, size_t n) -> ssize_t {
    if (++calls == 1) {
      errno = EINTR;
      return -1;
    }
    return ::read(fd, buf, n);
  };
  absl::StatusOr<std::string> got = ReadWholeFile(path, 1 << 20, interrupted_once);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, "hello");
}

TEST(ReadWholeFile, ADirectoryIsNotAFile) {
  absl::StatusOr<std::string> got = ReadWholeFile(TempDir());
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(got.status().message().find("is a directory"), std::string::npos) << got.status();
}

TEST(ReadWholeFile, MissingAndTooLarge) {
  absl::StatusOr<std::string> missing = ReadWholeFile(TempDir() + "/no-such-file");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  std::string path = WriteTemp("large", std::string(100, 'z'));
  absl::StatusOr<std::string> large = ReadWholeFile(path, 99);
  EXPECT_EQ(large.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(ReadWholeFile, UnreadableIsAnError) {
  if (::geteuid() == 0) {
    // root reads a 0000 file anyway; the open(2) error path is covered by a path
    // below a file, which fails for every user.
    std::string file = WriteTemp("plain", "x");
    absl::StatusOr<std::string> got = ReadWholeFile(file + "/below");
    EXPECT_FALSE(got.ok());
    return;
  }
  std::string path = WriteTemp("secret", "x");
  ASSERT_EQ(::chmod(path.c_str(), 0), 0);
  absl::StatusOr<std::string> got = ReadWholeFile(path);
  EXPECT_EQ(got.status().code(), absl::StatusCode::kFailedPrecondition) << got.status();
}

TEST(ReadSecretFile, RefusesAFileOthersMayRead) {
  std::string path = WriteTemp("key", "s3cret-key-material");
  ASSERT_EQ(::chmod(path.c_str(), 0640), 0);
  absl::StatusOr<std::string> got = ReadSecretFile(path);
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(got.status().message().find("0640"), std::string::npos) << got.status();
  EXPECT_EQ(got.status().message().find("s3cret"), std::string::npos) << "a secret is never part of an error";
  ASSERT_EQ(::chmod(path.c_str(), 0604), 0);
  EXPECT_FALSE(ReadSecretFile(path).ok());
  ASSERT_EQ(::chmod(path.c_str(), 0600), 0);
  absl::StatusOr<std::string> ok = ReadSecretFile(path);
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(*ok, "s3cret-key-material");
  EXPECT_EQ(ReadSecretFile(TempDir()).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(ErrnoStatus, CodesFitTheCause) {
  EXPECT_EQ(ErrnoStatus("write", ENOSPC).code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(ErrnoStatus("open", EACCES).code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(ErrnoStatus("open", ENOENT).code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(ErrnoStatus("read", EIO).code(), absl::StatusCode::kInternal);
  EXPECT_NE(ErrnoStatus("read", EIO).message().find("read: Input/output error"), std::string::npos);
}

}  // namespace
}  // namespace toegang
