// Copyright toegang authors.
//
// crash_harness.h: what the crash tests share — a fresh directory, and running the
// crash_writer helper for a while before SIGKILLing it.
#ifndef TOEGANG_ENGINE_TESTING_CRASH_HARNESS_H_
#define TOEGANG_ENGINE_TESTING_CRASH_HARNESS_H_

#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

extern char** environ;

namespace toegang::testing {

// An empty directory under the test's temporary directory.
inline std::string FreshDir(const std::string& name) {
  const char* tmp = std::getenv("TEST_TMPDIR");
  std::string dir = std::string(tmp ? tmp : "/tmp") + "/" + name;
  std::filesystem::remove_all(dir);
  return dir;
}

// The crash_writer binary in the test's runfiles.
inline std::string CrashWriter() {
  const char* srcdir = std::getenv("TEST_SRCDIR");
  return std::string(srcdir ? srcdir : ".") + "/toegang/engine/testing/crash_writer";
}

// Runs crash_writer with `args` for `run_us` microseconds — counted from its first
// acknowledgement (waiting at most 60 s) if `after_first_ack`, so a slow start under a
// sanitizer still gets to write; from its start otherwise, so the kill may land while
// the store is being created — SIGKILLs it, and returns everything it wrote on stdout before it
// died (its acknowledgements). Empty with *ok = false if it could not be started.
inline std::string RunThenKill(std::vector<std::string> args, useconds_t run_us, bool after_first_ack, bool* ok) {
  *ok = false;
  int out[2];
  if (pipe(out) != 0) return "";
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, out[1], 1);
  posix_spawn_file_actions_addclose(&actions, out[0]);
  std::string binary = CrashWriter();
  std::vector<char*> argv = {binary.data()};
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid;
  int spawned = posix_spawn(&pid, binary.c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  close(out[1]);
  if (spawned != 0) {
    close(out[0]);
    return "";
  }
  std::string text;
  pollfd first = {out[0], POLLIN, 0};
  char c;
  if (after_first_ack && poll(&first, 1, 60000) == 1 && read(out[0], &c, 1) == 1) text.push_back(c);
  usleep(run_us);
  kill(pid, SIGKILL);
  int status;
  waitpid(pid, &status, 0);
  char buf[4096];
  ssize_t n;
  while ((n = read(out[0], buf, sizeof buf)) > 0) text.append(buf, static_cast<size_t>(n));
  close(out[0]);
  *ok = true;
  return text;
}

}  // namespace toegang::testing

#endif  // TOEGANG_ENGINE_TESTING_CRASH_HARNESS_H_
