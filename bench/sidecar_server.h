// Copyright toegang authors.
//
// sidecar_server.h: a real `toegang serve` for the benchmarks that measure it as a
// client does, on free ports, with its own store, socket and token file, and 1,000
// patients each treated by clin-1. One per process at a time.
#ifndef TOEGANG_BENCH_SIDECAR_SERVER_H_
#define TOEGANG_BENCH_SIDECAR_SERVER_H_

#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "httplib.h"

extern char** environ;

namespace toegang {

// The benchmarks' bearer token (the server reads it from a 0600 file of its own).
inline constexpr char kToken[] = "bench-token-0123456789abcdef";

struct ServerOptions {
  bool pinned = true;                 // --pin-threads (base/threads.h)
  std::string audit_mode = "buffered";
  std::vector<std::string> extra;     // more flags
};

class Server {
 public:
  explicit Server(ServerOptions options) : options_(std::move(options)) {
    const char* bin = std::getenv("TOEGANG_BIN");
    std::string binary = bin ? bin : "bazel-bin/toegang";
    std::filesystem::remove_all(db_);
    int out[2];
    if (pipe(out) != 0) std::abort();
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, out[1], 1);
    {
      const mode_t old = umask(077);
      std::ofstream(tokens_) << "decide,facts:write " << kToken << "\n";
      umask(old);
    }
    std::vector<std::string> args = {binary,     "serve",   "--db",  db_,           "--http",       "127.0.0.1:0",
                                     "--socket", socket_,   "--tcp", "127.0.0.1:0", "--audit-mode", options_.audit_mode,
                                     absl::StrCat("--pin-threads=", options_.pinned ? "true" : "false"),
                                     "--token-file", tokens_};
    args.insert(args.end(), options_.extra.begin(), options_.extra.end());
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    if (posix_spawn(&pid_, argv[0], &actions, nullptr, argv.data(), environ) != 0) std::abort();
    posix_spawn_file_actions_destroy(&actions);
    close(out[1]);
    std::string line;
    char c;
    while (read(out[0], &c, 1) == 1 && c != '\n') line += c;
    close(out[0]);
    http_port_ = std::atoi(line.c_str() + line.find("http=127.0.0.1:") + 15);
    tcp_port_ = std::atoi(line.c_str() + line.find("tcp=") + 4);
    httplib::Client http("127.0.0.1", http_port_);
    http.set_bearer_token_auth(kToken);
    std::string facts;
    for (int i = 0; i < 1000; ++i) {
      absl::StrAppend(&facts, R"({"type":"relationship","subject":"clin-1","relation":"treating","object":"pat-)", i, "\"}\n");
    }
    auto res = http.Post("/v1/facts", facts, "application/x-ndjson");
    if (!res || res->status != 200) std::abort();
  }
  ~Server() {
    kill(pid_, SIGTERM);
    waitpid(pid_, nullptr, 0);
    std::filesystem::remove_all(db_);
    std::filesystem::remove(tokens_);
  }
  bool pinned() const { return options_.pinned; }
  const ServerOptions& options() const { return options_; }
  int http_port() const { return http_port_; }
  int tcp_port() const { return tcp_port_; }
  const std::string& socket() const { return socket_; }

 private:
  const ServerOptions options_;
  pid_t pid_ = -1;
  int http_port_ = 0;
  int tcp_port_ = 0;
  // Per benchmark process, so that two runs at once do not share a store.
  std::string db_ = absl::StrCat("/tmp/toegang-sidecar-bench-", getpid());
  std::string socket_ = absl::StrCat("/tmp/toegang-bench-", getpid(), ".sock");
  std::string tokens_ = absl::StrCat("/tmp/toegang-bench-", getpid(), ".tokens");
};

// The JSON request of clin-1 reading pat-(i mod 1000)'s medical data: a permit.
inline std::string DecisionJson(int i) {
  return absl::StrCat(R"({"at":"2026-03-10T10:00:00+01:00","actor":{"id":"clin-1","role":"clinician"},"patient":"pat-)",
                      i % 1000, R"(","action":"read","category":"medical","purpose":"treatment"})");
}

}  // namespace toegang

#endif  // TOEGANG_BENCH_SIDECAR_SERVER_H_
