// Copyright toegang authors.
//
// The sidecar as its clients see it: the real `toegang serve` binary on free ports,
// curl for HTTP/JSON, the C++ client for frames. Malformed and oversized input, a slow
// client, a policy reload under load, and SIGTERM with requests in flight.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/stat.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <algorithm>
#include <fstream>
#include <functional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "base/sync.h"
#include "base/testing/thread_cpus.h"
#include "base/threads.h"
#include "engine/sidecar/client.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/testing/e2e.h"
#include "tests/testing/sidecar_process.h"

extern char** environ;

namespace toegang {
namespace {

using nlohmann::json;
using ::testing::AllOf;
using ::testing::Each;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

using e2e::Runfile;
using e2e::Sh;
using e2e::Shell;
using e2e::Tmp;
using e2e::Write;
using e2e::Sidecar;

// curl: returns "BODY\nSTATUS".
Shell Curl(const std::string& args, const std::string& token = e2e::kTestToken) {
  const std::string auth = token.empty() ? "" : "-H 'Authorization: Bearer " + token + "' ";
  return Sh("curl -s -H 'Content-Type: application/json' " + auth + "-w '\\n%{http_code}' " + args);
}
int StatusOf(const Shell& s) { return std::atoi(s.out.substr(s.out.rfind('\n') + 1).c_str()); }
json BodyOf(const Shell& s) { return json::parse(s.out.substr(0, s.out.rfind('\n'))); }

const char kFacts[] =
    R"({"type":"person","id":"pat-1","birth_date":"1980-04-02"})" "\n"
    R"({"type":"relationship","id":"rel-1","subject":"clin-1","relation":"treating","object":"pat-1","from":"2026-01-05T00:00:00+01:00"})" "\n";
const char kRequest[] =
    R"({"at":"2026-03-10T10:00:00+01:00","actor":{"id":"clin-1","role":"clinician","organization":"praktijk-a"},"patient":"pat-1","action":"read","category":"medical","purpose":"treatment"})";

AccessRequest FrameRequest() {
  AccessRequest r;
  r.at = absl::FromUnixSeconds(1773133200);  // 2026-03-10T09:00Z
  r.actor = {"clin-1", Role::kClinician, "praktijk-a"};
  r.patient = "pat-1";
  return r;
}

// base/threads.h: with two CPUs or more, background work (the access log's writer, the
// store's flushes and compactions) runs on the last, everything answering requests on
// the others; --pin-threads=false leaves placement to the scheduler.
TEST(Sidecar, BackgroundWorkIsKeptOffTheCpusThatAnswer) {
  const std::vector<int> all = *AllowedCpus();  // the sidecar inherits the test's CPUs
  std::vector<int> background = all, requests = all;
  if (all.size() >= 2) {
    background = {all.back()};
    requests.pop_back();
  }
  {
    Sidecar sc("placement");
    // Each thread names itself as it starts; on a loaded machine some may not have run
    // yet when the server says it listens.
    auto threads = testing::ThreadCpus(sc.pid());
    for (int i = 0; i < 200 && (threads["toegang-frames"].empty() || threads["toegang-worker"].empty() ||
                                threads["MHD-worker"].empty());
         ++i) {
      absl::SleepFor(absl::Milliseconds(10));
      threads = testing::ThreadCpus(sc.pid());
    }
    for (const char* name : {"toegang-audit", "rocksdb:low", "rocksdb:high"}) {
      SCOPED_TRACE(name);
      EXPECT_THAT(threads[name], AllOf(Not(IsEmpty()), Each(background)));
    }
    for (const char* name : {"toegang-frames", "toegang-worker", "MHD-worker"}) {
      SCOPED_TRACE(name);
      EXPECT_THAT(threads[name], AllOf(Not(IsEmpty()), Each(requests)));
    }
    // And it answers.
    Shell r = Curl("-X POST --data '" + std::string(kRequest) + "' " + sc.url("/v1/decisions"));
    EXPECT_EQ(StatusOf(r), 200) << r.out;
  }
  Sidecar unpinned("placement_off", "", {"--pin-threads=false"});
  for (const auto& [name, threads] : testing::ThreadCpus(unpinned.pid())) {
    SCOPED_TRACE(name);
    EXPECT_THAT(threads, Each(all));
  }
}

// An operator checks the access log, a privacy officer reads a patient's accesses and
// history, while the sidecar holds the store (a read-only reader beside it).
TEST(Sidecar, VerifyHistoryAndAccessListWorkWhileServing) {
  Sidecar s("beside");
  Shell facts = Curl("-X POST --data-binary @" + Write("facts.jsonl", kFacts) + " " + s.url("/v1/facts"));
  ASSERT_EQ(StatusOf(facts), 200) << facts.out;
  for (int i = 0; i < 3; ++i) {
    Shell one = Curl("-X POST -d '" + std::string(kRequest) + "' " + s.url("/v1/decisions"));
    ASSERT_EQ(StatusOf(one), 200) << one.out;
  }
  const std::string bin = e2e::Runfile("toegang");
  Shell verify = e2e::Sh(bin + " audit verify --db " + s.db() + " 2>&1");
  EXPECT_EQ(verify.status, 0) << verify.out;
  EXPECT_THAT(verify.out, HasSubstr("ok: 3 records"));
  EXPECT_THAT(verify.out, HasSubstr("3 patient-index entries"));
  Shell history = e2e::Sh(bin + " history --db " + s.db() + " --patient pat-1 2>&1");
  EXPECT_EQ(history.status, 0) << history.out;
  EXPECT_EQ(std::count(history.out.begin(), history.out.end(), '\n'), 2) << history.out;
  Shell accesses = e2e::Sh(bin + " audit --db " + s.db() + " --patient pat-1 2>&1");
  EXPECT_EQ(accesses.status, 0) << accesses.out;
  EXPECT_EQ(std::count(accesses.out.begin(), accesses.out.end(), '\n'), 3) << accesses.out;
  // Writing still needs the store to itself.
  Shell load = e2e::Sh(bin + " load --db " + s.db() + " " + Write("more.jsonl", R"({"type":"person","id":"pat-9"})") +
                       " 2>&1");
  EXPECT_EQ(load.status, 1) << load.out;
  EXPECT_THAT(load.out, HasSubstr("in use by another process"));
  // And the server goes on.
  Shell health = Curl(s.url("/healthz"));
  EXPECT_EQ(StatusOf(health), 200) << health.out;
}

TEST(Sidecar, HttpJsonEndpoints) {
  Sidecar s("http");
  Shell facts = Curl("-X POST --data-binary @" + Write("facts.jsonl", kFacts) + " " + s.url("/v1/facts"));
  ASSERT_EQ(StatusOf(facts), 200) << facts.out;
  EXPECT_EQ(BodyOf(facts)["stored"], 2);
  Shell one = Curl("-X POST -d '" + std::string(kRequest) + "' " + s.url("/v1/decisions"));
  ASSERT_EQ(StatusOf(one), 200) << one.out;
  EXPECT_EQ(BodyOf(one)["decision"], "permit");
  EXPECT_EQ(BodyOf(one)["reasons"], json::array({"treating_relationship"}));
  Shell batch = Curl("-X POST -d '{\"requests\":[" + std::string(kRequest) + ",{\"at\":1}]}' " + s.url("/v1/decisions"));
  ASSERT_EQ(StatusOf(batch), 200) << batch.out;
  json decisions = BodyOf(batch)["decisions"];
  ASSERT_EQ(decisions.size(), 2u);
  EXPECT_EQ(decisions[0]["decision"], "permit");
  EXPECT_EQ(decisions[1]["reasons"], json::array({"invalid_request"}));
  EXPECT_THAT(decisions[1]["error"].get<std::string>(), HasSubstr("requests[1]: at:"));
  Shell history = Curl(s.url("/v1/patients/pat-1/history"));
  ASSERT_EQ(StatusOf(history), 200);
  EXPECT_EQ(BodyOf(history)["facts"].size(), 2u);
  Shell before = Curl("'" + s.url("/v1/patients/pat-1/history?as_of=2020-01-01T00:00:00Z") + "'");
  EXPECT_EQ(BodyOf(before)["facts"].size(), 0u);
  Shell log = Curl(s.url("/v1/patients/pat-1/access-log"));
  ASSERT_EQ(StatusOf(log), 200);
  EXPECT_EQ(BodyOf(log)["accesses"].size(), 2u);
  EXPECT_EQ(BodyOf(log)["accesses"][0]["actor"]["id"], "clin-1");
  Shell health = Curl(s.url("/healthz"));
  EXPECT_EQ(BodyOf(health)["status"], "ok");
  Shell metrics = Sh(absl::StrCat("curl -s -H 'Authorization: Bearer ", e2e::kTestToken, "' ", s.url("/metrics")));
  EXPECT_THAT(metrics.out, HasSubstr("toegang_decisions_total{outcome=\"permit\",reason=\"treating_relationship\"} 2"));
  EXPECT_THAT(metrics.out, HasSubstr("toegang_facts_written_total 2"));
  EXPECT_THAT(metrics.out, HasSubstr("toegang_decision_seconds_bucket{le=\"+Inf\"} 2"));
  EXPECT_THAT(metrics.out, HasSubstr("toegang_audit_queue_depth"));

  // Who may, why, and AuthZEN, over the real server.
  Shell grants = Curl("-X POST -d '{\"at\":\"2026-03-10T10:00:00+01:00\",\"purpose\":\"treatment\"}' " +
                      s.url("/v1/patients/pat-1/grants"));
  ASSERT_EQ(StatusOf(grants), 200) << grants.out;
  ASSERT_EQ(BodyOf(grants)["grants"].size(), 1u) << grants.out;
  EXPECT_EQ(BodyOf(grants)["grants"][0]["actor"], "clin-1");
  std::string explained(kRequest);
  explained.insert(explained.size() - 1, ",\"explain\":true");
  Shell why = Curl("-X POST -d '" + explained + "' " + s.url("/v1/decisions"));
  ASSERT_EQ(StatusOf(why), 200) << why.out;
  EXPECT_EQ(BodyOf(why)["explanation"]["policy"], "wgbo-default@1");
  Shell authzen = Curl(
      "-X POST -d '{\"subject\":{\"type\":\"user\",\"id\":\"clin-1\",\"properties\":{\"role\":\"clinician\"}},"
      "\"resource\":{\"type\":\"dossier\",\"id\":\"pat-1\",\"properties\":{\"category\":\"medical\"}},"
      "\"action\":{\"name\":\"read\"},\"context\":{\"time\":\"2026-03-10T10:00:00+01:00\",\"purpose\":\"treatment\"}}' " +
      s.url("/access/v1/evaluation"));
  ASSERT_EQ(StatusOf(authzen), 200) << authzen.out;
  EXPECT_EQ(BodyOf(authzen)["decision"], true);
  Shell mine = Curl(
      "-X POST -d '{\"at\":\"2026-03-10T10:00:00+01:00\",\"role\":\"clinician\",\"purpose\":\"treatment\"}' " +
      s.url("/v1/actors/clin-1/patients"));
  ASSERT_EQ(StatusOf(mine), 200) << mine.out;
  EXPECT_EQ(BodyOf(mine)["patients"].size(), 1u) << mine.out;
  EXPECT_EQ(BodyOf(mine)["complete"], true);
  Shell resources = Curl(
      "-X POST -d '{\"subject\":{\"type\":\"user\",\"id\":\"clin-1\",\"properties\":{\"role\":\"clinician\"}},"
      "\"resource\":{\"type\":\"dossier\",\"properties\":{\"category\":\"medical\"}},"
      "\"action\":{\"name\":\"read\"},\"context\":{\"time\":\"2026-03-10T10:00:00+01:00\",\"purpose\":\"treatment\"}}' " +
      s.url("/access/v1/search/resource"));
  ASSERT_EQ(StatusOf(resources), 200) << resources.out;
  EXPECT_EQ(BodyOf(resources)["results"][0]["id"], "pat-1");
  EXPECT_EQ(s.Stop(), 0);
}

TEST(Sidecar, MalformedAndOversizedInputIsRefusedAndNothingIsStored) {
  Sidecar s("abuse");
  ASSERT_EQ(StatusOf(Curl("-X POST --data-binary @" + Write("f.jsonl", kFacts) + " " + s.url("/v1/facts"))), 200);
  struct Case {
    const char* name;
    std::string args;
    int status;
    const char* message;
  };
  std::string big(2 << 20, 'x');
  std::string many = "{\"requests\":[";
  for (int i = 0; i < 1001; ++i) many += std::string(i ? "," : "") + kRequest;
  many += "]}";
  const Case kCases[] = {
      {"not_json", "-X POST -d '{\"at\":' " + s.url("/v1/decisions"), 400, "malformed JSON"},
      {"marketing", "-X POST -d '" + std::string(kRequest).replace(std::string(kRequest).find("treatment"), 9, "marketing") + "' " + s.url("/v1/decisions"), 400, "purpose: unknown purpose (expected "},
      {"duplicate_key", "-X POST -d '{\"at\":\"2026-03-10T10:00:00Z\",\"at\":\"2026-03-11T10:00:00Z\"}' " + s.url("/v1/decisions"), 400, "at: appears twice"},
      {"oversized_body", "-X POST --data-binary @" + Write("big", big) + " " + s.url("/v1/decisions"), 413, ""},
      {"batch_too_large", "-X POST --data-binary @" + Write("many", many) + " " + s.url("/v1/decisions"), 413, "at most 1000"},
      {"bad_fact_line", "-X POST --data-binary @" + Write("bad.jsonl", std::string(R"({"type":"person","id":"pat-9"})") + "\n" + R"({"type":"person","id":"pat-8","birth_date":"2010-02-29"})" + "\n") + " " + s.url("/v1/facts"), 400, "line 2: person.birth_date"},
      {"duplicate_fact", "-X POST --data-binary @" + Write("dup.jsonl", std::string(R"({"type":"person","id":"pat-9"})") + "\n" + R"({"type":"relationship","id":"rel-1","subject":"x","relation":"treating","object":"pat-9"})" + "\n") + " " + s.url("/v1/facts"), 400, "line 2: relationship id 'rel-1' is already used"},
      {"bad_as_of", s.url("/v1/patients/pat-1/history?as_of=yesterday"), 400, "as_of:"},
      {"no_endpoint", s.url("/v1/nothing"), 404, ""},
  };
  for (const Case& c : kCases) {
    SCOPED_TRACE(c.name);
    Shell r = Curl(c.args);
    EXPECT_EQ(StatusOf(r), c.status) << r.out.substr(0, 300);
    EXPECT_THAT(r.out, HasSubstr(c.message));
  }
  // Nothing from the refused requests was stored; the server still answers.
  Shell history = Curl(s.url("/v1/patients/pat-9/history"));
  EXPECT_EQ(BodyOf(history)["facts"].size(), 0u);
  Shell health = Curl(s.url("/healthz"));
  EXPECT_EQ(StatusOf(health), 200);
  EXPECT_EQ(BodyOf(health)["last_sequence"], 2);
}

TEST(Sidecar, FramesOverUnixSocketAndTcpWithPipelining) {
  Sidecar s("frames");
  ASSERT_EQ(StatusOf(Curl("-X POST --data-binary @" + Write("f.jsonl", kFacts) + " " + s.url("/v1/facts"))), 200);
  auto unix_client = sidecar::Client::ConnectUnix(s.socket());
  ASSERT_TRUE(unix_client.ok()) << unix_client.status();
  absl::StatusOr<sidecar::Answer> a = (*unix_client)->Decide(FrameRequest());
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_TRUE(a->permitted);
  EXPECT_EQ(a->reasons, std::vector<Reason>{Reason::kTreatingRelationship});
  EXPECT_EQ(a->legal_basis, LegalBasis::kHealthCare);
  EXPECT_EQ(a->policy, "wgbo-default@1");
  EXPECT_FALSE(a->decision_id.empty());

  auto tcp = sidecar::Client::ConnectTcp("127.0.0.1", s.tcp_port(), e2e::kTestToken);
  ASSERT_TRUE(tcp.ok()) << tcp.status();
  std::set<uint64_t> sent;
  for (int i = 0; i < 200; ++i) {
    AccessRequest r = FrameRequest();
    if (i % 2) r.actor.id = "clin-2";
    absl::StatusOr<uint64_t> id = (*tcp)->Send(r);
    ASSERT_TRUE(id.ok());
    sent.insert(*id);
  }
  int permits = 0;
  for (int i = 0; i < 200; ++i) {
    absl::StatusOr<sidecar::Answer> ans = (*tcp)->Receive();
    ASSERT_TRUE(ans.ok()) << ans.status();
    EXPECT_EQ(sent.erase(ans->id), 1u);
    permits += ans->permitted;
  }
  EXPECT_EQ(permits, 100);
  EXPECT_TRUE(sent.empty());
}

TEST(Sidecar, MalformedFramesGetErrorFramesAndOthersAreUnaffected) {
  Sidecar s("badframes");
  ASSERT_EQ(StatusOf(Curl("-X POST --data-binary @" + Write("f.jsonl", kFacts) + " " + s.url("/v1/facts"))), 200);
  auto bystander = sidecar::Client::ConnectUnix(s.socket());
  ASSERT_TRUE(bystander.ok());
  // Garbage inside a well-formed frame: an error frame; the connection goes on.
  auto c = sidecar::Client::ConnectUnix(s.socket());
  ASSERT_TRUE(c.ok());
  ASSERT_TRUE((*c)->SendFrameBytes("this is not a flatbuffer at all").ok());
  absl::StatusOr<sidecar::Answer> err = (*c)->Receive();
  ASSERT_TRUE(err.ok()) << err.status();
  EXPECT_FALSE(err->permitted);
  EXPECT_THAT(err->error, HasSubstr("fails FlatBuffers verification"));
  absl::StatusOr<sidecar::Answer> after = (*c)->Decide(FrameRequest());
  ASSERT_TRUE(after.ok());
  EXPECT_TRUE(after->permitted);
  // An impossible length: an error frame, then the connection is closed.
  ASSERT_TRUE((*c)->SendRaw(std::string("\xff\xff\xff\x7f", 4)).ok());
  absl::StatusOr<sidecar::Answer> too_big = (*c)->Receive();
  ASSERT_TRUE(too_big.ok());
  EXPECT_THAT(too_big->error, HasSubstr("exceeds the limit"));
  EXPECT_FALSE((*c)->Receive().ok());
  // Unknown enum values in a valid frame.
  AccessRequest odd = FrameRequest();
  odd.purpose = static_cast<Purpose>(200);
  auto d = sidecar::Client::ConnectTcp("127.0.0.1", s.tcp_port(), e2e::kTestToken);
  absl::StatusOr<sidecar::Answer> bad_enum = (*d)->Decide(odd);
  ASSERT_TRUE(bad_enum.ok());
  EXPECT_FALSE(bad_enum->permitted);
  EXPECT_THAT(bad_enum->error, HasSubstr("purpose: unknown purpose"));
  // The bystander never noticed.
  absl::StatusOr<sidecar::Answer> fine = (*bystander)->Decide(FrameRequest());
  ASSERT_TRUE(fine.ok());
  EXPECT_TRUE(fine->permitted);
}

TEST(Sidecar, SlowClientIsCutOffOthersAreServed) {
  Sidecar s("slow");
  ASSERT_EQ(StatusOf(Curl("-X POST --data-binary @" + Write("f.jsonl", kFacts) + " " + s.url("/v1/facts"))), 200);
  auto slow = sidecar::Client::ConnectUnix(s.socket());
  ASSERT_TRUE(slow.ok());
  ASSERT_TRUE((*slow)->SendRaw(std::string("\x40\x00\x00\x00" "half a frame", 16)).ok());
  auto other = sidecar::Client::ConnectUnix(s.socket());
  for (int i = 0; i < 5; ++i) {
    absl::StatusOr<sidecar::Answer> a = (*other)->Decide(FrameRequest());
    ASSERT_TRUE(a.ok());
    EXPECT_TRUE(a->permitted);
  }
  // The io timeout is 1 s; within 3 s the slow connection is closed.
  absl::Time deadline = absl::Now() + absl::Seconds(3);
  absl::StatusOr<sidecar::Answer> r = (*slow)->Receive();
  EXPECT_FALSE(r.ok());
  EXPECT_LT(absl::Now(), deadline);
  // A slow HTTP client likewise: it holds a half-sent request; the server keeps answering.
  Sh(absl::StrCat("bash -c 'exec 3<>/dev/tcp/127.0.0.1/", s.http_port(),
                  "; printf \"POST /v1/decisions HTTP/1.1\\r\\nContent-Length: 100\\r\\n\\r\\n{\" >&3; sleep 3' "
                  ">/dev/null 2>&1 &"));
  absl::SleepFor(absl::Milliseconds(200));
  EXPECT_EQ(StatusOf(Curl(s.url("/healthz"))), 200);
  EXPECT_TRUE((*other)->Decide(FrameRequest()).ok());
}

TEST(Sidecar, BufferedModeClientThatNeverReadsStallsNobody) {
  Sidecar s("noread", "", {"--audit-mode", "buffered"});
  ASSERT_EQ(StatusOf(Curl("-X POST --data-binary @" + Write("f.jsonl", kFacts) + " " + s.url("/v1/facts"))), 200);
  auto hog = sidecar::Client::ConnectUnix(s.socket());
  ASSERT_TRUE(hog.ok());
  // Thousands of pipelined requests, answers never read: the socket buffer fills.
  std::thread flood([&] {
    for (int i = 0; i < 20000; ++i) {
      if (!(*hog)->Send(FrameRequest()).ok()) break;
    }
  });
  absl::SleepFor(absl::Milliseconds(300));
  auto other = sidecar::Client::ConnectUnix(s.socket());
  ASSERT_TRUE(other.ok());
  for (int i = 0; i < 20; ++i) {
    absl::Time start = absl::Now();
    absl::StatusOr<sidecar::Answer> a = (*other)->Decide(FrameRequest());
    ASSERT_TRUE(a.ok()) << a.status();
    EXPECT_TRUE(a->permitted);
    EXPECT_LT(absl::Now() - start, absl::Milliseconds(500)) << "a stalled reader held up another client";
  }
  hog->reset();  // the flooder's writes now fail and it stops
  flood.join();
  EXPECT_EQ(s.Stop(), 0);
}

TEST(Sidecar, PolicyReloadUnderLoad) {
  std::string pack = Write("reload.policy", "policy first\nversion 1\nextends wgbo-default\n");
  Sidecar s("reload", pack);
  ASSERT_EQ(StatusOf(Curl("-X POST --data-binary @" + Write("f.jsonl", kFacts) + " " + s.url("/v1/facts"))), 200);
  std::atomic<bool> stop{false};
  std::atomic<int> answered{0}, failed{0};
  std::set<std::string> policies_seen;
  Mutex mu;
  std::vector<std::thread> load;
  for (int t = 0; t < 4; ++t) {
    load.emplace_back([&] {
      auto c = sidecar::Client::ConnectUnix(s.socket());
      if (!c.ok()) {
        failed++;
        return;
      }
      while (!stop.load()) {
        absl::StatusOr<sidecar::Answer> a = (*c)->Decide(FrameRequest());
        if (!a.ok() || !a->permitted) {
          failed++;
          continue;
        }
        answered++;
        MutexLock lock(&mu);
        policies_seen.insert(a->policy);
      }
    });
  }
  absl::SleepFor(absl::Milliseconds(200));
  Write("reload.policy", "policy second\nversion 2\nextends wgbo-default\n");
  Shell ok = Curl("-X POST -d '' " + s.url("/v1/policy/reload"));
  EXPECT_EQ(StatusOf(ok), 200) << ok.out;
  EXPECT_EQ(BodyOf(ok)["policy"], "second@2");
  absl::SleepFor(absl::Milliseconds(200));
  // A pack that fails the check is refused; the running one stays.
  Write("reload.policy", "policy broken\nversion 3\nrule x\n  effect permit\n  role nurse\n");
  Shell refused = Curl("-X POST -d '' " + s.url("/v1/policy/reload"));
  EXPECT_EQ(StatusOf(refused), 422);
  EXPECT_THAT(refused.out, HasSubstr("unknown role 'nurse'"));
  // SIGHUP reloads too.
  Write("reload.policy", "policy third\nversion 3\nextends wgbo-default\n");
  s.Signal(SIGHUP);
  absl::SleepFor(absl::Milliseconds(300));
  stop = true;
  for (auto& th : load) th.join();
  EXPECT_EQ(failed.load(), 0);
  EXPECT_GT(answered.load(), 100);
  EXPECT_TRUE(policies_seen.count("first@1"));
  EXPECT_TRUE(policies_seen.count("second@2"));
  EXPECT_FALSE(policies_seen.count("broken@3"));
  EXPECT_EQ(BodyOf(Curl(s.url("/healthz")))["policy"], "third@3");
}

TEST(Sidecar, SigtermWithRequestsInFlightLosesNoneAndHalfAnswersNone) {
  Sidecar s("sigterm");
  ASSERT_EQ(StatusOf(Curl("-X POST --data-binary @" + Write("f.jsonl", kFacts) + " " + s.url("/v1/facts"))), 200);
  std::atomic<int> answered{0}, bad{0};
  std::vector<std::thread> clients;
  for (int t = 0; t < 4; ++t) {
    clients.emplace_back([&] {
      auto c = sidecar::Client::ConnectUnix(s.socket());
      if (!c.ok()) return;
      while (true) {
        absl::StatusOr<sidecar::Answer> a = (*c)->Decide(FrameRequest());
        if (!a.ok()) {
          // Closed: acceptable only as a clean close, never a corrupt frame.
          if (absl::IsDataLoss(a.status())) bad++;
          return;
        }
        if (!a->permitted || a->decision_id.empty()) bad++;
        answered++;
      }
    });
  }
  absl::SleepFor(absl::Milliseconds(300));
  EXPECT_EQ(s.Stop(), 0);
  for (auto& th : clients) th.join();
  EXPECT_EQ(bad.load(), 0);
  EXPECT_GT(answered.load(), 10);
  // Every answered decision is in the access log, and the chain verifies.
  Shell verify = Sh(Runfile("toegang") + " audit verify --db " + s.db());
  EXPECT_EQ(verify.status, 0) << verify.out;
  int records = std::atoi(verify.out.substr(verify.out.find("ok: ") + 4).c_str());
  EXPECT_GE(records, answered.load());
}

}  // namespace
}  // namespace toegang

namespace toegang {
namespace {

using e2e::kTestToken;
using e2e::ScopeToken;

// Every endpoint, without a token, with a wrong one, and with a token of each scope:
// only its own scope passes (API: 401 without a valid token, 403 without the scope).
TEST(SidecarAuth, EveryEndpointNeedsItsScope) {
  Sidecar s("auth_scopes");
  ASSERT_EQ(StatusOf(Curl("-X POST --data-binary @" + Write("f.jsonl", kFacts) + " " + s.url("/v1/facts"))), 200);
  int fact = 0;
  auto new_fact = [&] {
    return Write("fact.jsonl", absl::StrCat(R"({"type":"person","id":"auth-)", ++fact, "\"}\n"));
  };
  struct Endpoint {
    const char* name;
    std::function<std::string()> args;
    const char* scope;  // null: no token needed
  };
  const std::vector<Endpoint> endpoints = {
      {"decide", [&] { return "-X POST -d '" + std::string(kRequest) + "' " + s.url("/v1/decisions"); }, "decide"},
      {"facts", [&] { return "-X POST --data-binary @" + new_fact() + " " + s.url("/v1/facts"); }, "facts:write"},
      {"history", [&] { return s.url("/v1/patients/pat-1/history"); }, "read:history"},
      {"access_log", [&] { return s.url("/v1/patients/pat-1/access-log"); }, "read:access-log"},
      {"reload", [&] { return "-X POST " + s.url("/v1/policy/reload"); }, "admin"},
      {"metrics", [&] { return s.url("/metrics"); }, "metrics"},
      {"healthz", [&] { return s.url("/healthz"); }, nullptr},
  };
  for (const Endpoint& e : endpoints) {
    SCOPED_TRACE(e.name);
    Shell none = Curl(e.args(), "");
    Shell wrong = Curl(e.args(), "not-a-token-0123456789abcdef");
    if (e.scope == nullptr) {
      EXPECT_EQ(StatusOf(none), 200) << none.out;
      continue;
    }
    EXPECT_EQ(StatusOf(none), 401) << none.out;
    EXPECT_THAT(none.out, HasSubstr("\"error\""));
    EXPECT_EQ(StatusOf(wrong), 401) << wrong.out;
    for (const char* scope : e2e::kTestScopes) {
      SCOPED_TRACE(scope);
      Shell r = Curl(e.args(), ScopeToken(scope));
      if (std::string(scope) == e.scope) {
        EXPECT_EQ(StatusOf(r), 200) << r.out;
      } else {
        EXPECT_EQ(StatusOf(r), 403) << r.out;
        EXPECT_THAT(r.out, HasSubstr(std::string("lacks the ") + e.scope + " scope"));
      }
    }
  }
  // Back-dating (recorded_at) is an import: facts:write alone is not enough.
  const std::string dated = Write("dated.jsonl", R"({"type":"consent","id":"con-x","patient":"pat-1","granted_by":"pat-1","to":{"actor":"eve"},"purposes":["referral"],"categories":["medical"],"actions":["read"],"recorded_at":"2026-01-01T00:00:00Z"})" "\n");
  Shell write_only = Curl("-X POST --data-binary @" + dated + " " + s.url("/v1/facts"), ScopeToken("facts:write"));
  EXPECT_EQ(StatusOf(write_only), 403) << write_only.out;
  EXPECT_THAT(write_only.out, HasSubstr("recorded_at needs the facts:import scope"));
  EXPECT_EQ(StatusOf(Curl("-X POST --data-binary @" + dated + " " + s.url("/v1/facts"))), 200);
  // Refusals are counted.
  Shell metrics = Curl(s.url("/metrics"));
  EXPECT_THAT(metrics.out, HasSubstr("toegang_auth_failures_total{reason=\"missing_token\"} 6"));
  EXPECT_THAT(metrics.out, HasSubstr("toegang_auth_failures_total{reason=\"unknown_token\"} 6"));
}

TEST(SidecarAuth, GuessingTokensIsSlowedDown) {
  Sidecar s("auth_guess");
  int limited = 0;
  for (int i = 0; i < 40; ++i) {
    Shell r = Curl(s.url("/v1/patients/pat-1/history"), absl::StrCat("guess-", i, "-0123456789abcdef"));
    if (StatusOf(r) == 429) ++limited;
  }
  EXPECT_GT(limited, 0) << "a flood of wrong tokens was never answered 429";
  // The backend, on the same address, is not locked out by its neighbour's flood.
  EXPECT_EQ(StatusOf(Curl(s.url("/v1/patients/pat-1/history"))), 200);
  Shell metrics = Curl(s.url("/metrics"));
  EXPECT_THAT(metrics.out, HasSubstr("toegang_auth_failures_total{reason=\"rate_limited\"} " + std::to_string(limited)));
}

TEST(SidecarAuth, TcpFramesNeedAHelloWithADecideToken) {
  Sidecar s("auth_tcp");
  ASSERT_EQ(StatusOf(Curl("-X POST --data-binary @" + Write("f.jsonl", kFacts) + " " + s.url("/v1/facts"))), 200);
  auto wrong = sidecar::Client::ConnectTcp("127.0.0.1", s.tcp_port(), "not-a-token-0123456789abcdef");
  ASSERT_FALSE(wrong.ok());
  EXPECT_EQ(wrong.status().code(), absl::StatusCode::kPermissionDenied);
  auto reader = sidecar::Client::ConnectTcp("127.0.0.1", s.tcp_port(), ScopeToken("read:history"));
  ASSERT_FALSE(reader.ok());
  EXPECT_THAT(std::string(reader.status().message()), HasSubstr("decide scope"));
  // A decide frame without a hello first: refused and closed, never decided.
  auto bare = sidecar::Client::ConnectUnix(s.socket());  // (the Unix socket needs no hello)
  ASSERT_TRUE(bare.ok());
  ASSERT_TRUE((*bare)->Decide(FrameRequest())->permitted);
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(s.tcp_port()));
  inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
  ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  close(fd);
  auto good = sidecar::Client::ConnectTcp("127.0.0.1", s.tcp_port(), ScopeToken("decide"));
  ASSERT_TRUE(good.ok()) << good.status();
  absl::StatusOr<sidecar::Answer> answer = (*good)->Decide(FrameRequest());
  ASSERT_TRUE(answer.ok());
  EXPECT_TRUE(answer->permitted);
}

// The Unix socket admits its own uid by default, and whoever --allow-uid/--allow-gid
// name; anyone else is closed at once.
TEST(SidecarAuth, UnixSocketPeersAreCheckedByUidAndGid) {
  {
    Sidecar others("peer_others", "", {"--allow-uid", "54321"});
    auto c = sidecar::Client::ConnectUnix(others.socket());
    ASSERT_TRUE(c.ok());
    absl::StatusOr<sidecar::Answer> refused = (*c)->Decide(FrameRequest());
    EXPECT_FALSE(refused.ok()) << "a peer whose uid is not allowed was answered";
  }
  Sidecar own("peer_own", "", {"--allow-uid", std::to_string(geteuid())});
  struct stat st;
  ASSERT_EQ(stat(own.socket().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0660u) << "the socket is not 0660";
  auto c = sidecar::Client::ConnectUnix(own.socket());
  ASSERT_TRUE(c.ok());
  EXPECT_TRUE((*c)->Decide(FrameRequest()).ok());
  if (geteuid() != 0) return;  // the part below switches users
  // An unprivileged local user (nobody), with the socket's own permissions opened up so
  // that only the peer check stands in the way.
  const std::string dir = own.socket().substr(0, own.socket().rfind('/'));
  ASSERT_EQ(chmod(dir.c_str(), 0755), 0);
  ASSERT_EQ(chmod(own.socket().c_str(), 0666), 0);
  pid_t child = fork();
  if (child == 0) {
    if (setgid(65534) != 0 || setuid(65534) != 0) _exit(3);
    auto n = sidecar::Client::ConnectUnix(own.socket());
    if (!n.ok()) _exit(2);                             // could not even connect: not what is tested
    _exit((*n)->Decide(FrameRequest()).ok() ? 1 : 0);  // answered: a failure
  }
  int status = 0;
  waitpid(child, &status, 0);
  ASSERT_TRUE(WIFEXITED(status)) << status;
  if (WEXITSTATUS(status) == 3) {
    // The sandbox maps no other user: the --allow-uid case above is the peer check.
    std::cerr << "UnixSocketPeersAreCheckedByUidAndGid: cannot switch to nobody here\n";
    return;
  }
  EXPECT_EQ(WEXITSTATUS(status), 0) << "nobody was answered on the Unix socket";
}

Shell Serve(const std::string& flags) {
  return Sh("timeout 10 " + Runfile("toegang") + " serve --db " + Tmp("refused_db") + " " + flags + " 2>&1");
}

TEST(SidecarAuth, ServeRefusesToExposeItselfWithoutTokensOrTls) {
  const std::string tokens = e2e::WriteTestTokens(Tmp(""));
  struct Case {
    const char* name;
    std::string flags;
    const char* message;
  };
  const Case cases[] = {
      {"http without tokens", "--socket '' --http 127.0.0.1:0", "need bearer tokens"},
      {"tcp without tokens", "--socket '' --http '' --tcp 127.0.0.1:0", "need bearer tokens"},
      {"http beyond loopback without TLS", "--socket '' --token-file " + tokens + " --http 0.0.0.0:0",
       "give --tls-cert and --tls-key"},
      {"tcp beyond loopback", "--socket '' --http '' --token-file " + tokens + " --tcp 0.0.0.0:0",
       "frame protocol has no TLS"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    Shell r = Serve(c.flags);
    EXPECT_EQ(r.status, 2) << r.out;
    EXPECT_THAT(r.out, HasSubstr(c.message));
  }
  std::filesystem::permissions(tokens, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write |
                                           std::filesystem::perms::others_read);
  Shell readable = Serve("--socket '' --token-file " + tokens + " --http 127.0.0.1:0");
  EXPECT_EQ(readable.status, 2) << readable.out;
  EXPECT_THAT(readable.out, HasSubstr("make it 0600"));
  EXPECT_THAT(readable.out, Not(HasSubstr(kTestToken)));
}

TEST(SidecarAuth, SocketPathIsNeverTakenFromAnythingButAStaleSocket) {
  char dir[] = "/tmp/toegang-path-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  const std::string tokens = e2e::WriteTestTokens(dir);
  // A regular file at the path stays, and serve refuses.
  const std::string file = std::string(dir) + "/not-a-socket";
  { std::ofstream(file) << "precious"; }
  Shell r = Serve("--http '' --socket " + file);
  EXPECT_EQ(r.status, 1) << r.out;
  EXPECT_THAT(r.out, HasSubstr("exists and is not a socket"));
  std::ifstream in(file);
  std::string kept((std::istreambuf_iterator<char>(in)), {});
  EXPECT_EQ(kept, "precious");
  // A live server's socket is not taken over, and stays when the refused one exits.
  Sidecar live("path_live");
  Shell second = Serve("--http '' --db " + Tmp("second_db") + " --socket " + live.socket());
  EXPECT_EQ(second.status, 1) << second.out;
  EXPECT_THAT(second.out, HasSubstr("already answering"));
  auto still = sidecar::Client::ConnectUnix(live.socket());
  ASSERT_TRUE(still.ok()) << "the live server lost its socket";
  // A stale socket (its server gone) is replaced.
  const std::string stale = std::string(dir) + "/stale.sock";
  {
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", stale.c_str());
    ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    close(fd);  // bound, never listened: nobody answers
  }
  pid_t pid = fork();
  if (pid == 0) {
    execl(Runfile("toegang").c_str(), "toegang", "serve", "--db", Tmp("stale_db").c_str(), "--http", "", "--socket",
          stale.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  bool answered = false;
  for (int i = 0; i < 100 && !answered; ++i) {
    absl::SleepFor(absl::Milliseconds(50));
    auto c = sidecar::Client::ConnectUnix(stale);
    answered = c.ok() && (*c)->Decide(FrameRequest()).ok();
  }
  kill(pid, SIGTERM);
  waitpid(pid, nullptr, 0);
  EXPECT_TRUE(answered) << "a stale socket was not replaced";
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace toegang

namespace toegang {
namespace {

// openssl(1) makes a CA, a server certificate for 127.0.0.1 and a client certificate.
struct Pki {
  explicit Pki(const std::string& dir) : dir(dir) {
    const std::string q = " 2>/dev/null";
    Run("openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=toegang-test-ca -keyout " + dir +
        "/ca.key -out " + dir + "/ca.pem" + q);
    for (const char* who : {"server", "client"}) {
      Run(absl::StrCat("openssl req -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 "
                       "-keyout ", dir, "/", who, ".key -out ", dir, "/", who, ".csr", q));
      Run(absl::StrCat("openssl x509 -req -days 1 -in ", dir, "/", who, ".csr -CA ", dir, "/ca.pem -CAkey ", dir,
                       "/ca.key -CAcreateserial -copy_extensions copy -out ", dir, "/", who, ".pem", q));
      chmod((dir + "/" + who + ".key").c_str(), 0600);
    }
  }
  static void Run(const std::string& command) { ASSERT_EQ(Sh(command).status, 0) << command; }
  std::string dir;
};

TEST(SidecarAuth, BeyondLoopbackItSpeaksHttpsAndCanRequireClientCertificates) {
  char dir[] = "/tmp/toegang-tls-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  Pki pki(dir);
  const std::string d = dir;
  Sidecar s("tls", "", {"--http", "0.0.0.0:0", "--tls-cert", d + "/server.pem", "--tls-key", d + "/server.key",
                        "--tls-client-ca", d + "/ca.pem"});
  const std::string https = absl::StrCat("https://127.0.0.1:", s.http_port());
  const std::string client = " --cacert " + d + "/ca.pem --cert " + d + "/client.pem --key " + d + "/client.key ";
  Shell ok = Curl(client + https + "/v1/patients/pat-1/history");
  EXPECT_EQ(StatusOf(ok), 200) << ok.out;
  Shell no_cert = Curl(" --cacert " + d + "/ca.pem " + https + "/v1/patients/pat-1/history");
  EXPECT_NE(StatusOf(no_cert), 200) << no_cert.out;
  Shell health = Curl(" --cacert " + d + "/ca.pem " + https + "/healthz", "");
  EXPECT_EQ(StatusOf(health), 200) << "load balancers probe /healthz without a client certificate: " << health.out;
  Shell plain = Curl(absl::StrCat("http://127.0.0.1:", s.http_port(), "/healthz"));
  EXPECT_NE(StatusOf(plain), 200) << "answered in clear text: " << plain.out;
  std::filesystem::remove_all(d);
}

}  // namespace
}  // namespace toegang

namespace toegang {
namespace {

int RawConnect(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
  EXPECT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  return fd;
}

// Whether the server closed `fd` (a read returns 0 or an error) within `wait`.
bool ClosedWithin(int fd, absl::Duration wait) {
  timeval tv{static_cast<time_t>(absl::ToInt64Seconds(wait)), 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  char buf[256];
  while (true) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n > 0) continue;  // an error answer first is fine
    return n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK);
  }
}

// A slowloris keeps sending, so the inactivity timeout never fires: the request
// deadline closes it, whether it dribbles headers or the request line itself.
TEST(SidecarAbuse, DribblingClientsAreClosedAtTheRequestDeadline) {
  Sidecar s("slowloris", "", {"--request-deadline", "2"});
  const int headers = RawConnect(s.http_port());
  const int line = RawConnect(s.http_port());
  const std::string request_line = "GET /healthz HTTP/1.1\r\n";
  ASSERT_GT(write(headers, request_line.data(), request_line.size()), 0);
  const absl::Time start = absl::Now();
  size_t sent = 0;
  bool headers_open = true, line_open = true;
  while (absl::Now() - start < absl::Seconds(8) && (headers_open || line_open)) {
    // A header line every 0.5 s on one, a byte of the request line on the other: both
    // well inside the 1 s inactivity timeout.
    if (headers_open) headers_open = send(headers, "X-A: b\r\n", 8, MSG_NOSIGNAL) > 0;
    if (line_open) line_open = send(line, &request_line[sent++ % request_line.size()], 1, MSG_NOSIGNAL) > 0;
    absl::SleepFor(absl::Milliseconds(500));
  }
  EXPECT_TRUE(ClosedWithin(headers, absl::Seconds(1))) << "a header dribbler outlived the deadline";
  EXPECT_TRUE(ClosedWithin(line, absl::Seconds(1))) << "a request-line dribbler outlived deadline + io-timeout";
  EXPECT_LT(absl::Now() - start, absl::Seconds(8));
  close(headers);
  close(line);
  // Others were served all along, and are still.
  EXPECT_EQ(StatusOf(Curl(s.url("/v1/patients/pat-1/history"))), 200);
}

// SIGTERM closes the store as usual: what was written is in its tables, and the next
// open has no write-ahead log to replay (after a day of traffic, that was seconds).
TEST(Sidecar, SigtermLeavesNothingToReplay) {
  std::string db;
  {
    Sidecar s("sigterm_flush");
    db = s.db();
    ASSERT_EQ(StatusOf(Curl("-X POST --data-binary @" + Write("f.jsonl", kFacts) + " " + s.url("/v1/facts"))), 200);
    auto client = sidecar::Client::ConnectUnix(s.socket());
    ASSERT_TRUE(client.ok()) << client.status();
    ASSERT_TRUE((*client)->Decide(FrameRequest()).ok());
    ASSERT_EQ(s.Stop(), 0);
  }
  uintmax_t wal_bytes = 0;
  for (const auto& e : std::filesystem::directory_iterator(db)) {
    if (e.path().extension() == ".log") wal_bytes += std::filesystem::file_size(e.path());
  }
  EXPECT_EQ(wal_bytes, 0u) << "the server left its memtables to be replayed";
  Shell history = e2e::Sh(Runfile("toegang") + " history --db " + db + " --patient pat-1 2>&1");
  EXPECT_EQ(history.status, 0) << history.out;
  EXPECT_EQ(std::count(history.out.begin(), history.out.end(), '\n'), 2) << history.out;
  Shell verify = e2e::Sh(Runfile("toegang") + " audit verify --db " + db + " 2>&1");
  EXPECT_EQ(verify.status, 0) << verify.out;
}

std::string EnvironmentOf(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/environ"), std::ios::binary);
  std::string env((std::istreambuf_iterator<char>(in)), {});
  std::replace(env.begin(), env.end(), '\0', '\n');
  return env;
}

// The server runs with its heap on huge pages where the kernel gives them on request
// (it starts itself again with glibc's tunable: same pid), and not when told not to.
TEST(Sidecar, RunsWithHugePagesUnlessToldNot) {
  std::ifstream thp("/sys/kernel/mm/transparent_hugepage/enabled");
  std::string modes;
  const bool available = std::getline(thp, modes) && modes.find("[never]") == std::string::npos;
  {
    Sidecar s("huge_pages");
    ASSERT_EQ(StatusOf(Curl(s.url("/healthz"))), 200);
    if (available) {
      EXPECT_THAT(EnvironmentOf(s.pid()), HasSubstr("GLIBC_TUNABLES=glibc.malloc.hugetlb=1\n"));
    } else {
      EXPECT_THAT(EnvironmentOf(s.pid()), Not(HasSubstr("glibc.malloc.hugetlb")));
    }
    EXPECT_EQ(s.Stop(), 0);
  }
  setenv("TOEGANG_HUGE_PAGES", "0", 1);
  Sidecar off("huge_pages_off");
  unsetenv("TOEGANG_HUGE_PAGES");
  ASSERT_EQ(StatusOf(Curl(off.url("/healthz"))), 200);
  EXPECT_THAT(EnvironmentOf(off.pid()), Not(HasSubstr("glibc.malloc.hugetlb")));
  EXPECT_EQ(off.Stop(), 0);
}

// SIGTERM: no new connections, but a request on a keep-alive connection that is
// already open is answered — with Connection: close — and the server exits 0.
TEST(SidecarAbuse, SigtermAnswersKeepAliveClientsWithConnectionClose) {
  Sidecar s("sigterm_keepalive");
  const int fd = RawConnect(s.http_port());
  const std::string request = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
  ASSERT_GT(write(fd, request.data(), request.size()), 0);
  char buf[4096];
  ssize_t n = read(fd, buf, sizeof buf);
  ASSERT_GT(n, 0);
  ASSERT_THAT(std::string(buf, n), HasSubstr("200 OK"));
  s.Signal(SIGTERM);
  absl::SleepFor(absl::Milliseconds(20));
  ASSERT_GT(write(fd, request.data(), request.size()), 0);
  std::string answer;
  timeval tv{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  while ((n = read(fd, buf, sizeof buf)) > 0) answer.append(buf, n);
  close(fd);
  EXPECT_THAT(answer, HasSubstr("200 OK")) << "the last request of a keep-alive client went unanswered";
  EXPECT_THAT(answer, HasSubstr("Connection: close"));
  EXPECT_EQ(s.Stop(), 0);
}

}  // namespace
}  // namespace toegang
