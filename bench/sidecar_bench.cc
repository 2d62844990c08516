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
#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <memory>
#include <string>
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
