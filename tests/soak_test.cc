// Copyright toegang authors.
//
// The soak test: the real sidecar driven for TOEGANG_SOAK_MINUTES (default 10) with
// everything at once — decisions over HTTP (single and batch) and frames (pipelined),
// fact writes (some refused on purpose), policy reloads (by POST and SIGHUP, some with a
// pack that fails the check), malformed input of every kind and clients that hang up
// mid-request. Then it checks what a platform engineer would:
//   - the process never died, and answered every well-formed request;
//   - memory (RSS) is flat after warm-up: no window's peak is far above the first's;
//   - every acknowledged fact is in the store, and nothing of a refused write is;
//   - the answers to a fixed set of requests are what they were at the start;
//   - it stops cleanly on SIGTERM and `toegang audit verify` passes on its access log,
//     which holds at least one record per decision answered.
// Tagged manual: `./run soak [MINUTES]` runs it (an optimised build).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "base/sync.h"
#include "engine/sidecar/client.h"
#include "gtest/gtest.h"
#include "httplib.h"
#include "nlohmann/json.hpp"
#include "tests/testing/e2e.h"
#include "tests/testing/sidecar_process.h"

namespace toegang {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

double SoakMinutes() {
  const char* v = std::getenv("TOEGANG_SOAK_MINUTES");
  double m = v ? std::atof(v) : 10.0;
  return m > 0 ? m : 10.0;
}

// The resident set of a process, in KiB (0 if it is gone).
long RssKib(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::atol(line.c_str() + 6);
  }
  return 0;
}

// Fixed requests whose answers must not change: the base patients never get new facts.
std::vector<std::string> FixedRequests() {
  std::vector<std::string> out;
  for (int i = 0; i < 4; ++i) {
    for (const char* who : {"clin-base-", "clin-other-"}) {
      for (const char* purpose : {"treatment", "research"}) {
        out.push_back(absl::StrCat(R"({"at":"2026-03-10T10:00:00+01:00","actor":{"id":")", who, i,
                                   R"(","role":"clinician","organization":"praktijk-a"},"patient":"pat-base-)", i,
                                   R"(","action":"read","category":"medical","purpose":")", purpose, R"("})"));
      }
    }
  }
  return out;
}

std::string BaseFacts() {
  std::string out;
  for (int i = 0; i < 4; ++i) {
    absl::StrAppend(&out, R"({"type":"person","id":"pat-base-)", i, R"(","birth_date":"19)", 50 + i * 10, "-04-02\"}\n");
    absl::StrAppend(&out, R"({"type":"relationship","id":"rel-base-)", i, R"(","subject":"clin-base-)", i,
                    R"(","relation":"treating","object":"pat-base-)", i, R"(","from":"2026-01-05T00:00:00+01:00"})", "\n");
  }
  return out;
}

// What a fixed answer is compared on (decision ids differ by design).
std::string Essence(const std::string& body) {
  json j = json::parse(body);
  j.erase("decision_id");
  return j.dump();
}

class Soak {
 public:
  Soak(e2e::Sidecar* server, std::string pack_path, std::string good_pack)
      : server_(server), pack_path_(std::move(pack_path)), good_pack_(std::move(good_pack)) {}

  std::atomic<bool> stop{false};
  std::atomic<uint64_t> http_decisions{0}, frame_decisions{0}, frames_unread{0}, batches{0};
  std::atomic<uint64_t> facts_ok{0}, facts_refused{0}, reloads{0}, reloads_refused{0}, abuse{0};
  std::atomic<uint64_t> failures{0};  // a well-formed request not answered as it should be

  void Fail(const std::string& what) {
    if (failures.fetch_add(1) < 20) std::fprintf(stderr, "soak: %s\n", what.c_str());
  }

  // Decisions over HTTP keep-alive: the fixed set, patients written during the soak,
  // and batches.
  void HttpDecider(int seed) {
    std::mt19937 rng(seed);
    httplib::Client http("127.0.0.1", server_->http_port());
    http.set_bearer_token_auth(e2e::kTestToken);
    http.set_keep_alive(true);
    http.set_tcp_nodelay(true);
    const std::vector<std::string> fixed = FixedRequests();
    while (!stop) {
      std::string body;
      const int kind = static_cast<int>(rng() % 10);
      if (kind < 6) {
        body = fixed[rng() % fixed.size()];
      } else {
        const uint64_t n = std::max<uint64_t>(1, written_.load());
        const uint64_t p = n - 1 - rng() % std::min<uint64_t>(n, 200);
        std::string one = absl::StrCat(R"({"at":"2026-03-10T10:00:00+01:00","actor":{"id":"clin-s-)", p,
                                       R"(","role":"clinician"},"patient":"pat-s-)", p,
                                       R"(","action":"read","category":"medical","purpose":"treatment"})");
        if (kind == 9) {
          body = "{\"requests\":[" + one;
          for (int i = 0; i < 9; ++i) body += "," + fixed[rng() % fixed.size()];
          body += "]}";
        } else {
          body = one;
        }
      }
      auto r = http.Post("/v1/decisions", body, "application/json");
      if (!r || r->status != 200) {
        Fail(absl::StrCat("POST /v1/decisions: ", r ? std::to_string(r->status) + " " + r->body : "no answer"));
        continue;
      }
      json j = json::parse(r->body, nullptr, false);
      if (j.is_discarded()) {
        Fail("a decision answer that is not JSON");
      } else if (j.contains("decisions")) {
        http_decisions += j["decisions"].size();
        ++batches;
      } else {
        ++http_decisions;
      }
    }
  }

  // Frames on the Unix socket, pipelined 16 deep; every 100 rounds it sends 8 more and
  // hangs up without reading them.
  void FrameDecider() {
    AccessRequest req;
    req.at = absl::FromUnixSeconds(1773133200);
    req.actor = {"clin-base-1", Role::kClinician, "praktijk-a"};
    req.patient = "pat-base-1";
    int round = 0;
    while (!stop) {
      auto client = sidecar::Client::ConnectUnix(server_->socket());
      if (!client.ok()) {
        Fail(absl::StrCat("connect to the socket: ", client.status().message()));
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        continue;
      }
      for (; !stop && ++round % 100 != 0;) {
        for (int i = 0; i < 16; ++i) {
          if (!(*client)->Send(req).ok()) Fail("frame send");
        }
        for (int i = 0; i < 16; ++i) {
          auto a = (*client)->Receive();
          if (!a.ok() || !a->error.empty() || !a->permitted) {
            Fail(absl::StrCat("frame answer: ", a.ok() ? a->error : std::string(a.status().message())));
            break;
          }
          ++frame_decisions;
        }
      }
      for (int i = 0; i < 8; ++i) (void)(*client)->Send(req);
      frames_unread += 8;
      // The client goes away here with answers unread.
    }
  }

  // New patients, each with a person, a treating relationship and a consent; every
  // 25th write repeats a relationship id already stored, so the whole batch (a new
  // person with it) must be refused.
  void Writer() {
    httplib::Client http("127.0.0.1", server_->http_port());
    http.set_bearer_token_auth(e2e::kTestToken);
    http.set_keep_alive(true);
    http.set_tcp_nodelay(true);
    uint64_t n = 0;
    while (!stop) {
      if (n > 0 && n % 25 == 0) {
        std::string bad = absl::StrCat(R"({"type":"person","id":"pat-refused-)", n, R"(","birth_date":"1990-01-01"})", "\n",
                                       R"({"type":"relationship","id":"rel-s-0","subject":"clin-x","relation":"treating","object":"pat-refused-)",
                                       n, R"(","from":"2026-01-05T00:00:00+01:00"})", "\n");
        auto r = http.Post("/v1/facts", bad, "application/x-ndjson");
        if (!r || r->status != 400) Fail(absl::StrCat("a write repeating an id was not refused: ", r ? r->status : 0));
        MutexLock lock(&mu_);
        refused_patients_.push_back(absl::StrCat("pat-refused-", n));
        ++facts_refused;
      }
      std::string facts = absl::StrCat(
          R"({"type":"person","id":"pat-s-)", n, R"(","birth_date":"1985-06-15"})", "\n",
          R"({"type":"relationship","id":"rel-s-)", n, R"(","subject":"clin-s-)", n,
          R"(","relation":"treating","object":"pat-s-)", n, R"(","from":"2026-01-05T00:00:00+01:00"})", "\n",
          R"({"type":"consent","id":"con-s-)", n, R"(","patient":"pat-s-)", n, R"(","granted_by":"pat-s-)", n,
          R"(","to":{"role":"researcher"},"purposes":["research"],"categories":["medical"],"actions":["read"],"from":"2026-01-01T00:00:00+01:00"})",
          "\n");
      auto r = http.Post("/v1/facts", facts, "application/x-ndjson");
      if (!r || r->status != 200) {
        Fail(absl::StrCat("POST /v1/facts: ", r ? std::to_string(r->status) + " " + r->body : "no answer"));
      } else {
        ++facts_ok;
        written_ = ++n;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }

  // Every 2 s: a reload by POST, a reload by SIGHUP, or a pack that fails the check
  // (refused with 422; the old pack stays).
  void Reloader() {
    httplib::Client http("127.0.0.1", server_->http_port());
    http.set_bearer_token_auth(e2e::kTestToken);
    for (int i = 0; !stop; ++i) {
      for (int t = 0; t < 20 && !stop; ++t) std::this_thread::sleep_for(std::chrono::milliseconds(100));
      if (stop) break;
      switch (i % 3) {
        case 0: {
          auto r = http.Post("/v1/policy/reload", "", "application/json");
          if (!r || r->status != 200) Fail("POST /v1/policy/reload of a good pack");
          ++reloads;
          break;
        }
        case 1:
          server_->Signal(SIGHUP);
          ++reloads;
          break;
        case 2: {
          WritePack("policy broken\nversion 1\n\nrule nothing\n  effect maybe\n");
          auto r = http.Post("/v1/policy/reload", "", "application/json");
          if (!r || r->status != 422) Fail("a pack failing the check was not refused");
          ++reloads_refused;
          WritePack(good_pack_);
          break;
        }
      }
    }
  }

  // Malformed input of every kind, and clients that leave mid-request.
  void Abuser(int seed) {
    std::mt19937 rng(seed);
    httplib::Client http("127.0.0.1", server_->http_port());
    http.set_bearer_token_auth(e2e::kTestToken);
    while (!stop) {
      switch (rng() % 8) {
        case 0: RawHttp(std::string("\x16\x03\x01\x02\x00garbage\r\n\r\n", 16), true); break;
        case 1: RawHttp("POST /v1/decisions HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{\"at\":", false); break;
        case 2: RawHttp("POST /v1/decisions HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999\r\n\r\n", true); break;
        case 3: {
          auto r = http.Post("/v1/decisions", R"({"at":"2026-03-10T10:00:00+01:00","actor":{"id":"x"}})", "application/json");
          if (!r || r->status != 400) Fail("a request missing fields was not a 400");
          break;
        }
        case 4: {
          auto r = http.Post("/v1/facts", "{\"type\":\"person\",\"id\":", "application/x-ndjson");
          if (!r || r->status != 400) Fail("a malformed fact line was not a 400");
          break;
        }
        case 5: RawSocket(std::string("\x08\x00\x00\x00garbage!", 12)); break;
        case 6: RawSocket(std::string("\xff\xff\xff\x7f", 4)); break;
        case 7: RawSocket(""); break;  // connect and hang up
      }
      ++abuse;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }

  // Slowloris: connections that send a header line every 2 s and never finish; the
  // server's request deadline closes them, and they come back. Fewer than the per-client
  // connection limit, which the other threads (on the same address) share.
  void Slowloris() {
    constexpr int kConnections = 32;
    std::vector<int> fds(kConnections, -1);
    while (!stop) {
      for (int& fd : fds) {
        if (fd >= 0 && send(fd, "X-Slow: 1\r\n", 11, MSG_NOSIGNAL) <= 0) {
          close(fd);
          fd = -1;
          ++abuse;  // cut off (or refused): a slowloris that did not last
        }
        if (fd < 0) {
          fd = socket(AF_INET, SOCK_STREAM, 0);
          sockaddr_in a{};
          a.sin_family = AF_INET;
          a.sin_port = htons(static_cast<uint16_t>(server_->http_port()));
          inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
          if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
            close(fd);
            fd = -1;
            continue;
          }
          const std::string start = "POST /v1/decisions HTTP/1.1\r\nHost: x\r\n";
          (void)!send(fd, start.data(), start.size(), MSG_NOSIGNAL);
        }
      }
      for (int i = 0; i < 20 && !stop; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    for (int fd : fds) {
      if (fd >= 0) close(fd);
    }
  }

  // A client sending 1,000-request batches back to back: every answer must be whole.
  void BatchFlooder() {
    httplib::Client http("127.0.0.1", server_->http_port());
    http.set_bearer_token_auth(e2e::kTestToken);
    http.set_keep_alive(true);
    http.set_read_timeout(60, 0);
    const std::vector<std::string> fixed = FixedRequests();
    std::string body = "{\"requests\":[";
    for (int i = 0; i < 1000; ++i) body += (i ? "," : "") + fixed[i % fixed.size()];
    body += "]}";
    while (!stop) {
      auto r = http.Post("/v1/decisions", body, "application/json");
      if (!r || r->status != 200) {
        Fail(absl::StrCat("a 1,000-request batch: ", r ? std::to_string(r->status) : "no answer"));
        continue;
      }
      json j = json::parse(r->body, nullptr, false);
      if (j.is_discarded() || !j.contains("decisions") || j["decisions"].size() != 1000) {
        Fail("a 1,000-request batch was not answered whole");
        continue;
      }
      http_decisions += 1000;
      ++batches;
    }
  }

  uint64_t written() const { return written_; }
  std::vector<std::string> refused_patients() {
    MutexLock lock(&mu_);
    return refused_patients_;
  }

 private:
  void WritePack(const std::string& text) {
    std::string tmp = pack_path_ + ".tmp";
    std::ofstream(tmp, std::ios::binary | std::ios::trunc) << text;
    std::rename(tmp.c_str(), pack_path_.c_str());
  }

  // Sends bytes on a fresh HTTP connection; reads a little of the answer if asked, then
  // hangs up.
  void RawHttp(const std::string& bytes, bool read_answer) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(server_->http_port()));
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) {
      (void)!write(fd, bytes.data(), bytes.size());
      if (read_answer) {
        timeval tv{1, 0};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        char buf[512];
        (void)!read(fd, buf, sizeof buf);
      }
    }
    close(fd);
  }

  void RawSocket(const std::string& bytes) {
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::snprintf(a.sun_path, sizeof a.sun_path, "%s", server_->socket().c_str());
    if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 && !bytes.empty()) {
      (void)!write(fd, bytes.data(), bytes.size());
      timeval tv{1, 0};
      setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
      char buf[512];
      (void)!read(fd, buf, sizeof buf);
    }
    close(fd);
  }

  e2e::Sidecar* const server_;
  const std::string pack_path_;
  const std::string good_pack_;
  std::atomic<uint64_t> written_{0};
  Mutex mu_;
  std::vector<std::string> refused_patients_;
};

TEST(Soak, SidecarUnderMixedLoadAndAbuse) {
  const double minutes = SoakMinutes();
  std::ifstream pack_in(e2e::Runfile("policy/packs/wgbo-default.policy"));
  std::string good_pack((std::istreambuf_iterator<char>(pack_in)), std::istreambuf_iterator<char>());
  ASSERT_FALSE(good_pack.empty());
  const std::string pack_path = e2e::Write("soak.policy", good_pack);

  // Small caches, so they fill during warm-up and what remains is the steady state.
  e2e::Sidecar server("soak", pack_path, {"--cache-mb", "4", "--threads", "4"});
  httplib::Client http("127.0.0.1", server.http_port());
  http.set_bearer_token_auth(e2e::kTestToken);
  auto loaded = http.Post("/v1/facts", BaseFacts(), "application/x-ndjson");
  ASSERT_TRUE(loaded && loaded->status == 200) << (loaded ? loaded->body : "no answer");

  std::map<std::string, std::string> before;
  for (const std::string& r : FixedRequests()) {
    auto a = http.Post("/v1/decisions", r, "application/json");
    ASSERT_TRUE(a && a->status == 200);
    before[r] = Essence(a->body);
  }

  Soak soak(&server, pack_path, good_pack);
  std::vector<std::thread> threads;
  threads.emplace_back([&] { soak.HttpDecider(1); });
  threads.emplace_back([&] { soak.HttpDecider(2); });
  threads.emplace_back([&] { soak.FrameDecider(); });
  threads.emplace_back([&] { soak.Writer(); });
  threads.emplace_back([&] { soak.Reloader(); });
  threads.emplace_back([&] { soak.Abuser(3); });
  threads.emplace_back([&] { soak.Slowloris(); });
  threads.emplace_back([&] { soak.BatchFlooder(); });

  // Watch: alive, and RSS every 2 s.
  const auto start = Clock::now();
  const auto end = start + std::chrono::milliseconds(static_cast<int64_t>(minutes * 60000));
  std::vector<std::pair<double, long>> rss;  // (seconds since start, KiB)
  bool died = false;
  while (Clock::now() < end) {
    std::this_thread::sleep_for(std::chrono::seconds(2));
    int status = 0;
    if (waitpid(server.pid(), &status, WNOHANG) != 0) {
      died = true;
      break;
    }
    const double t = std::chrono::duration<double>(Clock::now() - start).count();
    rss.emplace_back(t, RssKib(server.pid()));
    if (rss.size() % 15 == 0) {
      std::fprintf(stderr, "soak: %5.0fs rss %6ld KiB, decisions http %lu frames %lu, facts %lu, reloads %lu, abuse %lu\n",
                   t, rss.back().second, static_cast<unsigned long>(soak.http_decisions.load()),
                   static_cast<unsigned long>(soak.frame_decisions.load()),
                   static_cast<unsigned long>(soak.facts_ok.load()), static_cast<unsigned long>(soak.reloads.load()),
                   static_cast<unsigned long>(soak.abuse.load()));
    }
  }
  soak.stop = true;
  for (std::thread& t : threads) t.join();
  ASSERT_FALSE(died) << "the sidecar died during the soak";
  EXPECT_EQ(soak.failures.load(), 0u) << "well-formed requests that were not answered as they should be";

  // Memory: after warm-up (the first 30%), split the rest into three windows; the last
  // window's peak may not exceed the first's by more than 10% + 16 MiB.
  const double total = std::chrono::duration<double>(Clock::now() - start).count();
  const double warm = total * 0.3;
  long peak[3] = {0, 0, 0};
  for (const auto& [t, kib] : rss) {
    if (t < warm) continue;
    int w = std::min(2, static_cast<int>((t - warm) / ((total - warm) / 3)));
    peak[w] = std::max(peak[w], kib);
  }
  std::fprintf(stderr, "soak: RSS peaks after warm-up: %ld, %ld, %ld KiB\n", peak[0], peak[1], peak[2]);
  EXPECT_LE(peak[2], peak[0] + peak[0] / 10 + 16 * 1024) << "RSS keeps growing after warm-up";

  // The fixed answers are unchanged.
  for (const auto& [r, essence] : before) {
    auto a = http.Post("/v1/decisions", r, "application/json");
    ASSERT_TRUE(a && a->status == 200);
    EXPECT_EQ(Essence(a->body), essence) << r;
  }

  // Every acknowledged fact is there; nothing of a refused write is.
  const uint64_t written = soak.written();
  for (uint64_t n = 0; n < written; ++n) {
    auto h = http.Get(absl::StrCat("/v1/patients/pat-s-", n, "/history").c_str());
    ASSERT_TRUE(h && h->status == 200);
    json facts = json::parse(h->body)["facts"];
    std::vector<std::string> ids;
    for (const json& f : facts) ids.push_back(f.value("id", ""));
    for (const char* kind : {"pat-s-", "rel-s-", "con-s-"}) {
      EXPECT_NE(std::find(ids.begin(), ids.end(), absl::StrCat(kind, n)), ids.end()) << kind << n << " is missing";
    }
  }
  for (const std::string& p : soak.refused_patients()) {
    auto h = http.Get(absl::StrCat("/v1/patients/", p, "/history").c_str());
    ASSERT_TRUE(h && h->status == 200);
    EXPECT_TRUE(json::parse(h->body)["facts"].empty()) << p << " was stored from a refused write";
  }

  // A clean stop, and a verifiable access log with a record for every decision answered.
  EXPECT_EQ(server.Stop(), 0);
  e2e::Shell verify = e2e::Sh(absl::StrCat(e2e::Runfile("toegang"), " audit verify --db ", server.db()));
  EXPECT_EQ(verify.status, 0) << verify.out;
  const uint64_t answered = soak.http_decisions + soak.frame_decisions + 2 * before.size();
  uint64_t records = 0;
  std::sscanf(verify.out.c_str(), "ok: %lu records", &records);
  EXPECT_GE(records, answered) << verify.out;

  std::fprintf(stderr,
               "soak: %.1f min: %lu HTTP decisions (%lu batches), %lu frame decisions (+%lu left unread), "
               "%lu fact writes (%lu refused on purpose), %lu reloads (+%lu refused packs), %lu abusive requests; "
               "%s",
               total / 60, static_cast<unsigned long>(soak.http_decisions.load()),
               static_cast<unsigned long>(soak.batches.load()), static_cast<unsigned long>(soak.frame_decisions.load()),
               static_cast<unsigned long>(soak.frames_unread.load()), static_cast<unsigned long>(soak.facts_ok.load()),
               static_cast<unsigned long>(soak.facts_refused.load()), static_cast<unsigned long>(soak.reloads.load()),
               static_cast<unsigned long>(soak.reloads_refused.load()), static_cast<unsigned long>(soak.abuse.load()),
               verify.out.c_str());
}

}  // namespace
}  // namespace toegang
