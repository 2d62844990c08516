// Copyright toegang authors.
//
// A well-behaved HTTP client of the sidecar (one keep-alive connection, one decision at
// a time, durable access log) alone and while others abuse the server:
//   /abuse:0  alone
//   /abuse:1  1,100 slowloris connections, each sending a header line every 3 s
//   /abuse:2  16 connections sending 1,000-request batches back to back
// Budget (the sidecar issue): under abuse the client keeps at least 90% of its answers
// and its p99 stays under 10 times its p99 alone, measured in one run.
//
//   bazel build -c opt //:toegang //bench:abuse_bench && bazel-bin/bench/abuse_bench
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "bench/sidecar_server.h"
#include "benchmark/benchmark.h"
#include "httplib.h"

namespace toegang {
namespace {

constexpr int kSlowConnections = 1100;
constexpr int kFlooders = 16;
constexpr int kBatch = 1000;

int Connect(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
  connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);  // completes in the background
  return fd;
}

// Keeps kSlowConnections open, each sending a header line every 3 s; a connection the
// server closes is opened again (as a slowloris does).
void Slowloris(int port, const std::atomic<bool>& stop) {
  std::vector<int> fds(kSlowConnections, -1);
  const std::string start = "POST /v1/decisions HTTP/1.1\r\nHost: x\r\n";
  while (!stop.load()) {
    for (int& fd : fds) {
      if (fd >= 0 && send(fd, "X-Slow: 1\r\n", 11, MSG_NOSIGNAL | MSG_DONTWAIT) < 0 && errno != EAGAIN &&
          errno != ENOTCONN) {
        close(fd);
        fd = -1;
      }
      if (fd < 0) {
        fd = Connect(port);
        (void)send(fd, start.data(), start.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
      }
    }
    for (int i = 0; i < 30 && !stop.load(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  for (int fd : fds) {
    if (fd >= 0) close(fd);
  }
}

void Flood(int port, const std::atomic<bool>& stop) {
  std::string body = "{\"requests\":[";
  for (int i = 0; i < kBatch; ++i) absl::StrAppend(&body, i ? "," : "", DecisionJson(i));
  body += "]}";
  httplib::Client http("127.0.0.1", port);
  http.set_bearer_token_auth(kToken);
  http.set_keep_alive(true);
  http.set_read_timeout(30, 0);
  while (!stop.load()) http.Post("/v1/decisions", body, "application/json");
}

void BM_WellBehavedClient(benchmark::State& state) {
  Server server(ServerOptions{true, "durable", {}});
  httplib::Client http("127.0.0.1", server.http_port());
  http.set_bearer_token_auth(kToken);
  http.set_keep_alive(true);
  http.set_tcp_nodelay(true);
  http.set_read_timeout(5, 0);
  // Connected before the abuse begins, as a backend's pool would be.
  if (auto warm = http.Post("/v1/decisions", DecisionJson(0), "application/json"); !warm || warm->status != 200) {
    state.SkipWithError("the server did not answer");
    return;
  }
  std::atomic<bool> stop{false};
  std::vector<std::thread> abusers;
  if (state.range(0) == 1) abusers.emplace_back([&] { Slowloris(server.http_port(), stop); });
  if (state.range(0) == 2) {
    for (int i = 0; i < kFlooders; ++i) abusers.emplace_back([&] { Flood(server.http_port(), stop); });
  }
  std::this_thread::sleep_for(std::chrono::seconds(2));  // the abuse in full swing
  std::vector<int64_t> ns;
  int64_t asked = 0, answered = 0;
  int i = 0;
  for (auto _ : state) {
    auto a = std::chrono::steady_clock::now();
    auto res = http.Post("/v1/decisions", DecisionJson(i++), "application/json");
    auto b = std::chrono::steady_clock::now();
    ++asked;
    if (res && res->status == 200) {
      ++answered;
      ns.push_back(std::chrono::duration_cast<std::chrono::nanoseconds>(b - a).count());
    }
  }
  stop.store(true);
  for (auto& t : abusers) t.join();
  std::sort(ns.begin(), ns.end());
  state.counters["answered_pct"] = 100.0 * static_cast<double>(answered) / static_cast<double>(std::max<int64_t>(1, asked));
  if (!ns.empty()) {
    state.counters["p50_us"] = static_cast<double>(ns[ns.size() / 2]) / 1000;
    state.counters["p99_us"] = static_cast<double>(ns[ns.size() * 99 / 100]) / 1000;
  }
}
BENCHMARK(BM_WellBehavedClient)->ArgName("abuse")->Arg(0)->Arg(1)->Arg(2)->MinTime(8.0)->UseRealTime();

}  // namespace
}  // namespace toegang
