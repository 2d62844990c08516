// Copyright toegang authors.
//
// e2e.h: what the end-to-end suites share to drive the real binary like a user.
#ifndef TOEGANG_TESTS_TESTING_E2E_H_
#define TOEGANG_TESTS_TESTING_E2E_H_

#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

namespace toegang::e2e {

// A file of the test's runfiles, e.g. Runfile("toegang") for the binary.
inline std::string Runfile(const std::string& path) {
  const char* srcdir = std::getenv("TEST_SRCDIR");
  return std::string(srcdir ? srcdir : ".") + "/toegang/" + path;
}

// A path in the test's private temporary directory.
inline std::string Tmp(const std::string& name) {
  const char* tmp = std::getenv("TEST_TMPDIR");
  return std::string(tmp ? tmp : "/tmp") + "/" + name;
}

// Writes `content` to Tmp(name) and returns the path.
inline std::string Write(const std::string& name, const std::string& content) {
  std::string path = Tmp(name);
  std::ofstream(path, std::ios::binary) << content;
  return path;
}

struct Shell {
  int status;       // the exit status, or -1 if killed
  std::string out;  // what it wrote on stdout
};

// Runs a shell command line; returns its exit status and stdout.
inline Shell Sh(const std::string& command) {
  FILE* p = popen(command.c_str(), "r");
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  int status = pclose(p);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

}  // namespace toegang::e2e

#endif  // TOEGANG_TESTS_TESTING_E2E_H_
