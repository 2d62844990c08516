// Copyright toegang authors.
//
// The sidecar as a client sees it (issue: the sidecar): one client's round trip over the
// Unix socket, TCP frames and HTTP/JSON with keep-alive, p50/p99, beside the machine's
// own floor (a bare socketpair ping-pong, BM_SocketpairFloor) in the same run. The server is the real
// `toegang serve` binary (buffered access log; with a durable log every single-client
// round trip would include an fsync), started on free ports. Each benchmark runs twice:
// /pinned:1 is the server as shipped (--pin-threads, base/threads.h), /pinned:0 lets the
// scheduler place every thread.
//
//   bazel build -c opt //:toegang //bench:sidecar_bench && bazel-bin/bench/sidecar_bench
//   (TOEGANG_BIN=path/to/toegang to use another binary.) HTTP throughput: see RESULTS.md (wrk).
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "benchmark/benchmark.h"
#include "bench/sidecar_server.h"
#include "engine/sidecar/client.h"
#include "httplib.h"

namespace toegang {
namespace {

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
    current = std::make_unique<Server>(ServerOptions{pinned, "buffered", {}});
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

// The machine's own floor for a round trip: a bare socketpair ping-pong between two
// threads of this process (64 bytes each way), no toegang at all. The sidecar's budgets
// are stated against it (within 5 µs for frames, 15 µs for HTTP, at p50), because on a
// VM the absolute figures move several-fold from one host to the next.
void BM_SocketpairFloor(benchmark::State& state) {
  int fds[2];
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, fds) != 0) {
    state.SkipWithError("socketpair failed");
    return;
  }
  std::thread echo([fd = fds[1]] {
    char buf[64];
    while (true) {
      ssize_t n = read(fd, buf, sizeof buf);
      if (n <= 0 || write(fd, buf, static_cast<size_t>(n)) != n) return;
    }
  });
  std::vector<int64_t> ns;
  ns.reserve(1 << 20);
  char buf[64] = {};
  for (auto _ : state) {
    auto a = std::chrono::steady_clock::now();
    if (write(fds[0], buf, sizeof buf) != static_cast<ssize_t>(sizeof buf)) state.SkipWithError("write failed");
    size_t got = 0;
    while (got < sizeof buf) {
      ssize_t n = read(fds[0], buf + got, sizeof buf - got);
      if (n <= 0) break;
      got += static_cast<size_t>(n);
    }
    auto b = std::chrono::steady_clock::now();
    if (ns.size() < ns.capacity()) ns.push_back(std::chrono::duration_cast<std::chrono::nanoseconds>(b - a).count());
  }
  shutdown(fds[0], SHUT_RDWR);
  echo.join();
  close(fds[0]);
  close(fds[1]);
  Report(state, ns);
}
BENCHMARK(BM_SocketpairFloor)->MinTime(3.0);

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
    std::string body = DecisionJson(i++);
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
