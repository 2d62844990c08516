// Copyright toegang authors.
//
// sidecar_process.h: a real `toegang serve` for end-to-end tests and the soak test, on
// free ports, with its own store and socket; SIGTERM and a wait when it goes.
#ifndef TOEGANG_TESTS_TESTING_SIDECAR_PROCESS_H_
#define TOEGANG_TESTS_TESTING_SIDECAR_PROCESS_H_

#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include <sys/stat.h>

#include <cstdio>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gtest/gtest.h"
#include "tests/testing/e2e.h"

extern char** environ;

namespace toegang::e2e {

// Tokens of every sidecar the tests start: one with every scope (what the tests use
// unless they test scopes), and one per scope, named "scope-<scope>-token-0123456789".
inline constexpr char kTestToken[] = "all-scopes-token-0123456789abcdef";
inline const char* const kTestScopes[] = {"decide",          "facts:write", "facts:import", "read:history",
                                          "read:access-log", "admin",       "metrics"};
inline std::string ScopeToken(const std::string& scope) { return "scope-" + scope + "-token-0123456789"; }

// A token file (mode 0600) in `dir` with the tokens above; returns its path.
inline std::string WriteTestTokens(const std::string& dir) {
  std::string text = absl::StrCat("# written by the tests\n", absl::StrJoin(kTestScopes, ","), " ", kTestToken, "\n");
  for (const char* scope : kTestScopes) absl::StrAppend(&text, scope, " ", ScopeToken(scope), "\n");
  const std::string path = dir + "/tokens";
  const mode_t old = umask(077);
  FILE* f = fopen(path.c_str(), "w");
  umask(old);
  EXPECT_NE(f, nullptr);
  fputs(text.c_str(), f);
  fclose(f);
  return path;
}

// A running `toegang serve`.
class Sidecar {
 public:
  explicit Sidecar(const std::string& name, const std::string& policy = "", std::vector<std::string> extra = {}) {
    db_ = Tmp(name + "_db");
    // Unix socket paths are limited to 108 bytes and the sandbox's temp dir is longer;
    // pids repeat across sandboxes (PID namespaces), so take a fresh directory.
    char dir[] = "/tmp/toegang-test-XXXXXX";
    EXPECT_NE(mkdtemp(dir), nullptr);
    socket_dir_ = dir;
    socket_ = socket_dir_ + "/" + name + ".sock";
    std::filesystem::remove_all(db_);
    int out[2];
    EXPECT_EQ(pipe(out), 0);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, out[1], 1);
    posix_spawn_file_actions_addclose(&actions, out[0]);
    tokens_ = WriteTestTokens(socket_dir_);
    std::vector<std::string> args = {Runfile("toegang"), "serve",          "--db",        db_,
                                     "--http",           "127.0.0.1:0",    "--socket",    socket_,
                                     "--tcp",            "127.0.0.1:0",    "--io-timeout", "1",
                                     "--token-file",     tokens_};
    // A later --http wins (absl flags): tests may listen elsewhere.
    if (!policy.empty()) {
      args.push_back("--policy");
      args.push_back(policy);
    }
    args.insert(args.end(), extra.begin(), extra.end());
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    EXPECT_EQ(posix_spawn(&pid_, argv[0], &actions, nullptr, argv.data(), environ), 0);
    posix_spawn_file_actions_destroy(&actions);
    close(out[1]);
    std::string line;
    char c;
    while (read(out[0], &c, 1) == 1 && c != '\n') line += c;
    out_fd_ = out[0];
    size_t h = line.find("http=");
    size_t t = line.find("tcp=");
    EXPECT_NE(h, std::string::npos) << line;
    http_port_ = std::atoi(line.c_str() + line.find(':', h) + 1);
    tcp_port_ = std::atoi(line.c_str() + t + 4);
  }
  ~Sidecar() {
    if (pid_ > 0) Stop();
    close(out_fd_);
    std::filesystem::remove_all(socket_dir_);
  }
  int Stop() {
    kill(pid_, SIGTERM);
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }
  void Signal(int sig) { kill(pid_, sig); }
  std::string url(const std::string& path) const { return absl::StrCat("http://127.0.0.1:", http_port_, path); }
  const std::string& socket() const { return socket_; }
  const std::string& tokens() const { return tokens_; }
  const std::string& db() const { return db_; }
  int tcp_port() const { return tcp_port_; }
  int http_port() const { return http_port_; }
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
  int out_fd_ = -1;
  std::string db_, socket_, socket_dir_, tokens_;
  int http_port_ = 0, tcp_port_ = 0;
};

}  // namespace toegang::e2e

#endif  // TOEGANG_TESTS_TESTING_SIDECAR_PROCESS_H_
