// Copyright toegang authors.
//
// The sidecar as a client sees it (issue: the sidecar): one client's round trip over the
// Unix socket, TCP frames and HTTP/JSON with keep-alive, p50/p99. The server is the real
// `toegang serve` binary (buffered access log; with a durable log every single-client
// round trip would include an fsync), started on free ports. Each benchmark runs twice:
// /pinned:1 is the server as shipped (--pin-threads, base/threads.h), /pinned:0 lets the
// scheduler place every thread.
//
//   bazel build -c opt //:toegang //bench:sidecar_bench && bazel-bin/bench/sidecar_bench
//   (TOEGANG_BIN=path/to/toegang to use another binary.) HTTP throughput: see RESULTS.md (wrk).
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "benchmark/benchmark.h"
#include "engine/sidecar/client.h"
#include "httplib.h"

extern char** environ;

namespace toegang {
namespace {

// The benchmark's bearer token (its server reads it from a 0600 file of its own).
constexpr char kToken[] = "bench-token-0123456789abcdef";

// One `toegang serve` at a time, with or without --pin-threads (base/threads.h).
class Server {
 public:
  explicit Server(bool pinned) : pinned_(pinned) {
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
    std::vector<std::string> args = {binary,        "serve",   "--db",   db_,         "--http", "127.0.0.1:0",
                                     "--socket",    socket_,   "--tcp",  "127.0.0.1:0", "--audit-mode", "buffered",
                                     absl::StrCat("--pin-threads=", pinned ? "true" : "false"), "--token-file", tokens_};
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
  bool pinned() const { return pinned_; }
  int http_port() const { return http_port_; }
  int tcp_port() const { return tcp_port_; }
  const std::string& socket() const { return socket_; }

 private:
  const bool pinned_;
  pid_t pid_ = -1;
  int http_port_ = 0;
  int tcp_port_ = 0;
  // Per benchmark process, so that two runs at once do not share a store.
  std::string db_ = absl::StrCat("/tmp/toegang-sidecar-bench-", getpid());
  std::string socket_ = absl::StrCat("/tmp/toegang-bench-", getpid(), ".sock");
  std::string tokens_ = absl::StrCat("/tmp/toegang-bench-", getpid(), ".tokens");
};

// The running server; stopped at exit.
std::unique_ptr<Server>& Current() {
  static auto* current = [] {
    std::atexit([] { Current().reset(); });
    return new std::unique_ptr<Server>;
  }();
  return *current;
}

Server& ServerFor(bool pinned) {
  std::unique_ptr<Server>& current = Current();
  if (!current || current->pinned() != pinned) {
    current.reset();  // one server at a time: an idle one would still wake a CPU
    current = std::make_unique<Server>(pinned);
  }
  return *current;
}

AccessRequest Request(int i) {
  AccessRequest r;
  r.at = absl::FromUnixSeconds(1773133200);
  r.actor = {"clin-1", Role::kClinician, "praktijk-a"};
  r.patient = absl::StrCat("pat-", i % 1000);
  return r;
}

void Report(benchmark::State& state, std::vector<int64_t>& ns) {
  std::sort(ns.begin(), ns.end());
  state.counters["p50_us"] = static_cast<double>(ns[ns.size() / 2]) / 1000;
  state.counters["p99_us"] = static_cast<double>(ns[ns.size() * 99 / 100]) / 1000;
}

// state.range(0): 1 with --pin-threads (the default), 0 without.
void FrameRoundTrip(benchmark::State& state, bool tcp) {
  Server& s = ServerFor(state.range(0) == 1);
  auto client = tcp ? sidecar::Client::ConnectTcp("127.0.0.1", s.tcp_port(), kToken) : sidecar::Client::ConnectUnix(s.socket());
  if (!client.ok()) {
    state.SkipWithError("cannot connect");
    return;
  }
  std::vector<int64_t> ns;
  ns.reserve(1 << 20);
  int i = 0;
  for (auto _ : state) {
    auto a = std::chrono::steady_clock::now();
    absl::StatusOr<sidecar::Answer> answer = (*client)->Decide(Request(i++));
    auto b = std::chrono::steady_clock::now();
    if (!answer.ok() || !answer->permitted) state.SkipWithError("bad answer");
    if (ns.size() < ns.capacity()) ns.push_back(std::chrono::duration_cast<std::chrono::nanoseconds>(b - a).count());
  }
  Report(state, ns);
}
void BM_SocketRoundTrip(benchmark::State& state) { FrameRoundTrip(state, false); }
void BM_TcpFrameRoundTrip(benchmark::State& state) { FrameRoundTrip(state, true); }
BENCHMARK(BM_SocketRoundTrip)->ArgName("pinned")->Arg(1)->Arg(0)->MinTime(3.0);
BENCHMARK(BM_TcpFrameRoundTrip)->ArgName("pinned")->Arg(1)->Arg(0)->MinTime(3.0);

void BM_HttpRoundTrip(benchmark::State& state) {
  Server& s = ServerFor(state.range(0) == 1);
  httplib::Client http("127.0.0.1", s.http_port());
  http.set_bearer_token_auth(kToken);
  http.set_keep_alive(true);
  http.set_tcp_nodelay(true);
  std::vector<int64_t> ns;
  ns.reserve(1 << 20);
  int i = 0;
  for (auto _ : state) {
    std::string body = absl::StrCat(
        R"({"at":"2026-03-10T10:00:00+01:00","actor":{"id":"clin-1","role":"clinician"},"patient":"pat-)", i++ % 1000,
        R"(","action":"read","category":"medical","purpose":"treatment"})");
    auto a = std::chrono::steady_clock::now();
    auto res = http.Post("/v1/decisions", body, "application/json");
    auto b = std::chrono::steady_clock::now();
    if (!res || res->status != 200) state.SkipWithError("bad answer");
    if (ns.size() < ns.capacity()) ns.push_back(std::chrono::duration_cast<std::chrono::nanoseconds>(b - a).count());
  }
  Report(state, ns);
}
BENCHMARK(BM_HttpRoundTrip)->ArgName("pinned")->Arg(1)->Arg(0)->MinTime(3.0);

}  // namespace
}  // namespace toegang
