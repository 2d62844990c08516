// Copyright toegang authors.
//
// Several `toegang serve` nodes sharing one history through a real PostgreSQL, driven
// over HTTP like a platform would: the README's walk-through (consent on one node,
// decide with its token on another, withdraw on a third, deny on the first), replay
// alike on every node, nodes killed with SIGKILL while writing and while applying, and
// PostgreSQL going away under them.
#include <signal.h>

#include <atomic>
#include <random>
#include <set>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "engine/testing/postgres_fixture.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "model/time.h"
#include "nlohmann/json.hpp"
#include "tests/testing/e2e.h"
#include "tests/testing/sidecar_process.h"

namespace toegang {
namespace {

using e2e::Runfile;
using e2e::Sh;
using e2e::Shell;
using e2e::Sidecar;
using e2e::Tmp;
using nlohmann::json;
using ::testing::HasSubstr;

// curl: returns "BODY\nSTATUS".
Shell Curl(const std::string& args) {
  return Sh(absl::StrCat("curl -s -H 'Content-Type: application/json' -H 'Authorization: Bearer ", e2e::kTestToken,
                         "' -w '\\n%{http_code}' ", args));
}
int StatusOf(const Shell& s) { return std::atoi(s.out.substr(s.out.rfind('\n') + 1).c_str()); }
json BodyOf(const Shell& s) { return json::parse(s.out.substr(0, s.out.rfind('\n')), nullptr, false); }

Shell Post(const Sidecar& node, const std::string& path, const std::string& body) {
  const std::string file = e2e::Write(absl::StrCat("body-", node.http_port(), "-", std::hash<std::thread::id>()(std::this_thread::get_id())), body);
  return Curl(absl::StrCat("--data-binary @", file, " ", node.url(path)));
}

// The walk-through's facts and request, around the time the test runs: a fact counts
// from when it arrived (DOMAIN D19), so a request must come after the facts it needs.
// The patient is 17 (16+ consents for herself, D10).
struct Walk {
  absl::Time t0 = absl::Now();
  std::string Facts() const {
    const absl::CivilDay today = AmsterdamDay(t0);
    const absl::CivilDay birth(today.year() - 17, today.month(), std::min(today.day(), 28));
    return absl::StrCat(
        R"({"type":"person","id":"pat-7","birth_date":")", absl::FormatCivilTime(birth), R"("})", "\n",
        R"({"type":"relationship","subject":"par-7","relation":"parent_with_authority","object":"pat-7"})", "\n",
        R"({"type":"consent","id":"con-7","patient":"pat-7","granted_by":"pat-7","to":{"actor":"par-7"},)",
        R"("purposes":["patient_request"],"categories":["medical"],"actions":["read"],"from":")",
        FormatInstant(t0 - absl::Hours(24)), R"("})", "\n");
  }
  std::string Withdrawal() const {
    return absl::StrCat(R"({"type":"withdrawal","consent":"con-7","by":"pat-7","at":")", FormatInstant(t0), R"("})",
                        "\n");
  }
  // An hour on: after every fact the test records.
  std::string Request() const {
    return absl::StrCat(R"("at":")", FormatInstant(t0 + absl::Hours(1)),
                        R"(","actor":{"id":"par-7","role":"parent"},"patient":"pat-7","action":"read",)",
                        R"("category":"medical","purpose":"patient_request")");
  }
  std::string RequestWith(const std::string& token) const {
    return absl::StrCat("{", Request(), R"(,"consistency":{"at_least":")", token, R"("}})");
  }
  std::string Plain() const { return absl::StrCat("{", Request(), "}"); }
};

class Cluster : public testing::PostgresTest {
 protected:
  std::unique_ptr<Sidecar> Node(const std::string& name, const std::string& db = "") {
    std::vector<std::string> extra = {"--replicate", conninfo_, "--node", name, "--pin-threads=false"};
    if (!db.empty()) {
      extra.push_back("--db");
      extra.push_back(db);
    }
    return std::make_unique<Sidecar>(name, "", extra);
  }

};

TEST_F(Cluster, ConsentOnOneNodeWithdrawalOnAnotherAndEveryNodeDecidesAlike) {
  const Walk w;
  const std::string dbs[3] = {Tmp("walk-1"), Tmp("walk-2"), Tmp("walk-3")};
  std::unique_ptr<Sidecar> n1 = Node("n1", dbs[0]), n2 = Node("n2", dbs[1]), n3 = Node("n3", dbs[2]);

  Shell stored = Post(*n1, "/v1/facts", w.Facts());
  ASSERT_EQ(StatusOf(stored), 200) << stored.out;
  const json answer = BodyOf(stored);
  EXPECT_EQ(answer["stored"], 3);
  EXPECT_EQ(answer["last_sequence"], 3);
  const std::string consent_token = answer["token"];
  EXPECT_THAT(consent_token, ::testing::StartsWith("tg1."));

  Shell permit = Post(*n2, "/v1/decisions", w.RequestWith(consent_token));
  ASSERT_EQ(StatusOf(permit), 200) << permit.out;
  EXPECT_EQ(BodyOf(permit)["decision"], "permit") << permit.out;

  absl::SleepFor(absl::Milliseconds(20));
  const absl::Time between = absl::Now();
  absl::SleepFor(absl::Milliseconds(20));
  Shell withdrawn = Post(*n3, "/v1/facts", w.Withdrawal());
  ASSERT_EQ(StatusOf(withdrawn), 200) << withdrawn.out;
  const std::string withdrawal_token = BodyOf(withdrawn)["token"];

  Shell deny = Post(*n1, "/v1/decisions", w.RequestWith(withdrawal_token));
  ASSERT_EQ(StatusOf(deny), 200) << deny.out;
  EXPECT_EQ(BodyOf(deny)["decision"], "deny") << deny.out;

  // A token of a point the history has not reached: 503, replica_behind.
  std::string ahead = withdrawal_token.substr(0, withdrawal_token.rfind('.') + 1) + "999";
  Shell behind = Post(*n2, "/v1/decisions", w.RequestWith(ahead));
  EXPECT_EQ(StatusOf(behind), 503) << behind.out;
  EXPECT_EQ(BodyOf(behind)["reasons"][0], "replica_behind") << behind.out;
  // Of another history: 400.
  Shell foreign = Post(*n2, "/v1/decisions", w.RequestWith("tg1.0123456789abcdef0123456789abcdef.1"));
  EXPECT_EQ(StatusOf(foreign), 400) << foreign.out;
  EXPECT_THAT(foreign.out, HasSubstr("this node replicates history"));

  Shell health = Curl(n2->url("/healthz"));
  ASSERT_EQ(StatusOf(health), 200) << health.out;
  const json rep = BodyOf(health)["replication"];
  EXPECT_EQ(rep["applied_sequence"], 4) << health.out;
  EXPECT_EQ(rep["lag"], 0) << health.out;
  EXPECT_EQ(rep["connected"], true) << health.out;
  EXPECT_EQ(rep["node"], "n2");
  Shell metrics = Curl(n3->url("/metrics"));
  EXPECT_THAT(metrics.out, HasSubstr("toegang_replica_applied_sequence 4"));

  n1.reset();
  n2.reset();
  n3.reset();
  // Replayed on each node's own store, the history's arrival instants decide alike.
  for (const std::string& db : dbs) {
    for (const auto& [as_of, expected] : {std::pair{between, "permit"}, std::pair{absl::Now(), "deny"}}) {
      Shell replay = Sh(absl::StrCat("echo '", w.Plain(), "' | ", Runfile("toegang"), " decide --audit-mode buffered --db ",
                                     db, " --as-of ", FormatInstant(as_of)));
      ASSERT_EQ(replay.status, 0) << db << ": " << replay.out;
      EXPECT_EQ(json::parse(replay.out)["decision"], expected) << db << " as of " << FormatInstant(as_of);
    }
  }
}

TEST_F(Cluster, NodesKilledWhileWritingOrApplyingKeepEveryAcknowledgedBatchOnceInOrder) {
  const std::string db_a = Tmp("kill-a"), db_b = Tmp("kill-b");
  std::set<std::string> acknowledged;
  std::mt19937 rng(20261202);
  int next = 0;
  for (int round = 0; round < 20; ++round) {
    std::unique_ptr<Sidecar> a = Node("a", db_a), b = Node("b", db_b);
    std::atomic<bool> stop{false};
    std::vector<std::string> acked;
    std::thread writer([&] {
      while (!stop.load()) {
        std::string body;
        std::vector<std::string> ids;
        for (int i = 0; i < 5; ++i) {
          ids.push_back(absl::StrCat("rel-", next++));
          absl::StrAppend(&body, R"({"type":"relationship","id":")", ids.back(),
                          R"(","subject":"clin-1","relation":"treating","object":"pat-k"})", "\n");
        }
        Shell s = Post(*a, "/v1/facts", body);
        if (StatusOf(s) == 200) acked.insert(acked.end(), ids.begin(), ids.end());
      }
    });
    absl::SleepFor(absl::Milliseconds(std::uniform_int_distribution<int>(50, 300)(rng)));
    Sidecar& victim = round % 2 == 0 ? *b : *a;  // the applier, then the writer
    victim.Signal(SIGKILL);
    absl::SleepFor(absl::Milliseconds(50));
    stop = true;
    writer.join();
    acknowledged.insert(acked.begin(), acked.end());
  }
  // Both back once more: each applies what it lacks before it answers.
  std::unique_ptr<Sidecar> a = Node("a", db_a), b = Node("b", db_b);
  ASSERT_FALSE(acknowledged.empty());
  Shell ha = Curl(a->url("/v1/patients/pat-k/history")), hb = Curl(b->url("/v1/patients/pat-k/history"));
  ASSERT_EQ(StatusOf(ha), 200) << ha.out;
  ASSERT_EQ(StatusOf(hb), 200) << hb.out;
  const json fa = BodyOf(ha)["facts"], fb = BodyOf(hb)["facts"];
  ASSERT_EQ(fa.size(), fb.size());
  std::set<std::string> seen;
  uint64_t last_seq = 0;
  for (size_t i = 0; i < fa.size(); ++i) {
    EXPECT_EQ(fa[i], fb[i]) << i;  // same fact, number and arrival on both
    const std::string id = fa[i]["id"];
    EXPECT_TRUE(seen.insert(id).second) << id << " twice";
    const uint64_t seq = fa[i]["seq"];
    EXPECT_GT(seq, last_seq);
    last_seq = seq;
  }
  for (const std::string& id : acknowledged) EXPECT_TRUE(seen.count(id)) << id << " was acknowledged but is missing";
  // Nothing half-stored: a batch (rel-5k .. rel-5k+4) is there whole or not at all.
  for (const std::string& id : seen) {
    const int n = std::atoi(id.c_str() + 4);
    for (int k = n - n % 5; k < n - n % 5 + 5; ++k) {
      EXPECT_TRUE(seen.count(absl::StrCat("rel-", k))) << "rel-" << k << " is missing from the batch of " << id;
    }
  }
  EXPECT_EQ(*pg_->Sql(database_, "SELECT count(*) FROM toegang_facts"),
            absl::StrCat(seen.size()));
}

TEST_F(Cluster, WithPostgresGoneWritesAre503AndDecisionsGoOnThenNodesConverge) {
  const Walk w;
  std::unique_ptr<Sidecar> n1 = Node("n1"), n2 = Node("n2");
  Shell stored = Post(*n1, "/v1/facts", w.Facts());
  ASSERT_EQ(StatusOf(stored), 200) << stored.out;
  ASSERT_EQ(StatusOf(Post(*n2, "/v1/decisions", w.RequestWith(BodyOf(stored)["token"]))), 200);
  ASSERT_TRUE(pg_->Stop().ok());
  Shell refused = Post(*n2, "/v1/facts", w.Withdrawal());
  EXPECT_EQ(StatusOf(refused), 503) << refused.out;
  EXPECT_THAT(refused.out, HasSubstr("cannot be reached"));
  EXPECT_THAT(refused.out, HasSubstr("nothing was stored"));
  Shell decided = Post(*n2, "/v1/decisions", w.Plain());
  EXPECT_EQ(StatusOf(decided), 200) << decided.out;
  EXPECT_EQ(BodyOf(decided)["decision"], "permit");
  absl::SleepFor(absl::Milliseconds(600));
  Shell health = Curl(n1->url("/healthz"));
  EXPECT_EQ(StatusOf(health), 200) << health.out;  // decisions go on: the node is healthy
  EXPECT_EQ(BodyOf(health)["replication"]["connected"], false) << health.out;

  // A node started while PostgreSQL is away opens on what its store has.
  ASSERT_TRUE(pg_->Resume().ok());
  Shell again = Post(*n2, "/v1/facts", w.Withdrawal());
  ASSERT_EQ(StatusOf(again), 200) << again.out;
  Shell deny = Post(*n1, "/v1/decisions", w.RequestWith(BodyOf(again)["token"]));
  EXPECT_EQ(BodyOf(deny)["decision"], "deny") << deny.out;
}

TEST_F(Cluster, APatientSeesTheAccessesOfEveryNodeAndTamperingInPostgresIsFound) {
  const Walk w;
  const std::string db1 = Tmp("log-1");
  std::unique_ptr<Sidecar> n1 = Node("n1", db1), n2 = Node("n2"), n3 = Node("n3");
  Shell stored = Post(*n1, "/v1/facts", w.Facts());
  ASSERT_EQ(StatusOf(stored), 200) << stored.out;
  const std::string token = BodyOf(stored)["token"];
  for (Sidecar* node : {n1.get(), n2.get(), n3.get()}) {
    Shell d = Post(*node, "/v1/decisions", w.RequestWith(token));
    ASSERT_EQ(StatusOf(d), 200) << d.out;
  }
  // Each node ships within its poll interval: the list on node 1 fills up to three.
  json list;
  for (int i = 0; i < 100; ++i) {
    Shell got = Curl(n1->url("/v1/patients/pat-7/access-log"));
    ASSERT_EQ(StatusOf(got), 200) << got.out;
    list = BodyOf(got);
    if (list["accesses"].size() == 3 && !list.contains("missing")) break;
    absl::SleepFor(absl::Milliseconds(100));
  }
  ASSERT_EQ(list["accesses"].size(), 3u) << list.dump();
  for (const json& a : list["accesses"]) EXPECT_EQ(a["actor"]["id"], "par-7");
  Shell health = Curl(n2->url("/healthz"));
  EXPECT_EQ(BodyOf(health)["replication"]["access_log"]["unshipped"], 0) << health.out;

  // A node whose records are not all there says so in every other node's answer.
  const std::string chain3 = BodyOf(Curl(n3->url("/healthz")))["replication"]["access_log"]["chain"];
  n3.reset();
  const std::string& database = database_;
  ASSERT_TRUE(pg_->Sql(database, absl::StrCat("UPDATE toegang_log_chains SET head = shipped + 5 WHERE chain = '",
                                              chain3, "'"))
                  .ok());
  Shell partial = Curl(n2->url("/v1/patients/pat-7/access-log"));
  ASSERT_EQ(StatusOf(partial), 200) << partial.out;
  ASSERT_TRUE(BodyOf(partial).contains("missing")) << partial.out;
  EXPECT_THAT(BodyOf(partial)["missing"][0].get<std::string>(), HasSubstr("node n3 had 5 access-log records not yet"));

  Shell verified = Sh(absl::StrCat(Runfile("toegang"), " audit verify --db ", db1, " --replicate '", conninfo_, "'"));
  EXPECT_EQ(verified.status, 0) << verified.out;
  EXPECT_THAT(verified.out, HasSubstr("ok: node n2"));
  EXPECT_THAT(verified.out, HasSubstr("ok: node n3"));
  // One byte of node 2's shipped record changed: verify names node and record.
  ASSERT_TRUE(pg_->Sql(database, "UPDATE toegang_access_log SET entry = set_byte(entry, 40, get_byte(entry, 40) # 1) "
                                 "WHERE node = 'n2'")
                  .ok());
  Shell tampered = Sh(absl::StrCat(Runfile("toegang"), " audit verify --db ", db1, " --replicate '", conninfo_, "'"));
  EXPECT_EQ(tampered.status, 1) << tampered.out;
  EXPECT_THAT(tampered.out, HasSubstr("FAILED: node n2"));
  EXPECT_THAT(tampered.out, HasSubstr("access log record 1 was changed"));
  Shell listed = Sh(absl::StrCat(Runfile("toegang"), " audit --db ", db1, " --patient pat-7 --replicate '", conninfo_,
                                 "' 2>&1"));
  EXPECT_NE(listed.status, 0) << listed.out;  // a damaged record is not shown as an access
}

TEST_F(Cluster, LoadAndReplicaStatusSpeakTheHistory) {
  const Walk w;
  const std::string file = e2e::Write("load.jsonl", w.Facts());
  Shell loaded = Sh(absl::StrCat(Runfile("toegang"), " load --replicate '", conninfo_, "' ", file));
  ASSERT_EQ(loaded.status, 0) << loaded.out;
  EXPECT_THAT(loaded.out, HasSubstr("loaded 3 facts; last sequence 3\ntoken tg1."));
  Shell again = Sh(absl::StrCat(Runfile("toegang"), " load --replicate '", conninfo_, "' ", file, " 2>&1"));
  EXPECT_EQ(again.status, 2) << again.out;
  EXPECT_THAT(again.out, HasSubstr("load.jsonl:1"));
  Shell status = Sh(absl::StrCat(Runfile("toegang"), " replica status --replicate '", conninfo_, "'"));
  ASSERT_EQ(status.status, 0) << status.out;
  EXPECT_THAT(status.out, HasSubstr("newest sequence 3"));
  // A replica's progress, read beside the running node.
  const std::string db = Tmp("status-node");
  {
    std::unique_ptr<Sidecar> node = Node("s1", db);
    Shell health = Curl(node->url("/healthz"));
    ASSERT_EQ(StatusOf(health), 200) << health.out;
    Shell beside = Sh(absl::StrCat(Runfile("toegang"), " replica status --replicate '", conninfo_, "' --db ", db));
    ASSERT_EQ(beside.status, 0) << beside.out;
    EXPECT_THAT(beside.out, HasSubstr("applied 3, behind 0"));
  }
  // PostgreSQL out of reach: load fails at once, exit 1, nothing stored anywhere.
  Shell away = Sh(absl::StrCat(Runfile("toegang"), " load --replicate 'host=/nonexistent-dir port=5432 user=toegang' ",
                               file, " 2>&1"));
  EXPECT_EQ(away.status, 1) << away.out;
  EXPECT_THAT(away.out, HasSubstr("cannot be reached"));
  Shell bad = Sh(absl::StrCat(Runfile("toegang"), " replica status --replicate 'host=x dbname' 2>&1"));
  EXPECT_EQ(bad.status, 2) << bad.out;
  EXPECT_THAT(bad.out, HasSubstr("not a PostgreSQL connection string"));
}

}  // namespace
}  // namespace toegang
