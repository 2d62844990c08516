// Copyright toegang authors.
//
// Replicated stores on a real PostgreSQL (engine/testing/postgres.h), several nodes in
// one process: what one node writes the others apply, in the same order with the same
// arrival; conflicting writes on two nodes; PostgreSQL going away and coming back; a
// node catching up after a restart; histories and formats it must refuse.
#include "engine/replica/replica.h"

#include <atomic>
#include <filesystem>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "engine/rocksdb/rocksdb_store.h"
#include "engine/testing/postgres_fixture.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "model/json.h"

namespace toegang {
namespace {

using ::testing::HasSubstr;

Fact F(const std::string& json) {
  absl::StatusOr<Fact> f = ParseFactJson(json);
  EXPECT_TRUE(f.ok()) << json << ": " << f.status();
  return *f;
}

Fact Person(const std::string& id) {
  return F(absl::StrCat(R"({"type":"person","id":")", id, R"(","birth_date":"1990-01-01"})"));
}

class ReplicaTest : public testing::PostgresTest {
 protected:
  ReplicaOptions Options(const std::string& node) const {
    ReplicaOptions o;
    o.conninfo = conninfo_;
    o.node = node;
    o.poll_interval = absl::Milliseconds(50);
    return o;
  }

  std::unique_ptr<ReplicatedStore> Node(const std::string& name, std::unique_ptr<FactStore> local = nullptr) {
    if (local == nullptr) local = NewMemoryFactStore();
    absl::StatusOr<std::unique_ptr<ReplicatedStore>> s = ReplicatedStore::Open(Options(name), std::move(local));
    EXPECT_TRUE(s.ok()) << s.status();
    return s.ok() ? *std::move(s) : nullptr;
  }

  static std::unique_ptr<FactStore> Durable(const std::string& name, bool fresh = true) {
    const char* tmp = std::getenv("TEST_TMPDIR");
    const std::string dir = absl::StrCat(tmp != nullptr ? tmp : "/tmp", "/replica-", name);
    if (fresh) std::filesystem::remove_all(dir);
    absl::StatusOr<std::unique_ptr<FactStore>> s = OpenDurableFactStore(dir, DurableStoreOptions());
    EXPECT_TRUE(s.ok()) << s.status();
    return s.ok() ? *std::move(s) : nullptr;
  }

};

TEST_F(ReplicaTest, WhatOneNodeRecordsTheOthersApplyInTheSameOrderAndInstant) {
  std::unique_ptr<ReplicatedStore> a = Node("a"), b = Node("b"), c = Node("c", Durable("c"));
  ASSERT_TRUE(a && b && c);
  absl::StatusOr<uint64_t> last = a->Append({Person("pat-1"), Person("pat-2")});
  ASSERT_TRUE(last.ok()) << last.status();
  EXPECT_EQ(*last, 2u);
  EXPECT_EQ(a->LastSequence(), 2u);  // the writing node reads its own write at once
  absl::StatusOr<uint64_t> more = c->Append({Person("pat-3")});
  ASSERT_TRUE(more.ok()) << more.status();
  EXPECT_EQ(*more, 3u);

  const std::string token = c->Token(*more);
  for (ReplicatedStore* node : {a.get(), b.get(), c.get()}) {
    absl::StatusOr<uint64_t> seq = node->TokenSequence(token);
    ASSERT_TRUE(seq.ok()) << seq.status();
    ASSERT_TRUE(node->WaitApplied(*seq, absl::Seconds(5)));
  }
  for (const char* p : {"pat-1", "pat-3"}) {
    absl::StatusOr<std::vector<Fact>> ha = a->History(p), hb = b->History(p), hc = c->History(p);
    ASSERT_EQ(ha->size(), 1u);
    ASSERT_EQ(hb->size(), 1u);
    ASSERT_EQ(hc->size(), 1u);
    EXPECT_EQ((*ha)[0].provenance.seq, (*hb)[0].provenance.seq);
    EXPECT_EQ((*ha)[0].provenance.arrival, (*hb)[0].provenance.arrival);
    EXPECT_EQ((*ha)[0].provenance.arrival, (*hc)[0].provenance.arrival);
  }
  EXPECT_LE((*a->History("pat-1"))[0].provenance.arrival, (*b->History("pat-3"))[0].provenance.arrival);
  ReplicaStatus st = b->Status();
  EXPECT_EQ(st.applied, 3u);
  EXPECT_EQ(st.node, "b");
  EXPECT_TRUE(st.connection.ok()) << st.connection;
  EXPECT_EQ(st.history.size(), 32u);
}

TEST_F(ReplicaTest, AWithdrawalThroughOneNodeIsSeenWithItsTokenOnAnother) {
  std::unique_ptr<ReplicatedStore> a = Node("a"), c = Node("c");
  ASSERT_TRUE(a->Append({F(R"({"type":"person","id":"pat-7","birth_date":"1980-01-10"})"),
                         F(R"({"type":"consent","id":"con-7","patient":"pat-7","granted_by":"pat-7","to":{"actor":"doc-2"},"purposes":["treatment"],"categories":["medical"],"actions":["read"],"from":"2026-01-01T00:00:00+01:00"})")})
                  .ok());
  absl::StatusOr<uint64_t> w = a->Append({F(R"({"type":"withdrawal","consent":"con-7","by":"pat-7","at":"2026-06-01T00:00:00+02:00"})")});
  ASSERT_TRUE(w.ok()) << w.status();
  ASSERT_TRUE(c->WaitApplied(*c->TokenSequence(a->Token(*w)), absl::Seconds(5)));
  absl::StatusOr<std::shared_ptr<const PatientRecord>> rec = c->Patient("pat-7");
  ASSERT_TRUE(rec.ok());
  EXPECT_EQ((*rec)->withdrawals.size(), 1u);
}

TEST_F(ReplicaTest, OfTwoConflictingBatchesOnTwoNodesExactlyOneIsStored) {
  std::unique_ptr<ReplicatedStore> a = Node("a"), b = Node("b");
  for (int i = 0; i < 100; ++i) {
    const std::string id = absl::StrCat("pat-c", i);
    absl::StatusOr<uint64_t> ra = 0, rb = 0;
    std::thread ta([&] { ra = a->Append({Person(id), Person(absl::StrCat(id, "-a"))}); });
    std::thread tb([&] { rb = b->Append({Person(absl::StrCat(id, "-b")), Person(id)}); });
    ta.join();
    tb.join();
    ASSERT_NE(ra.ok(), rb.ok()) << i << ": " << ra.status() << " / " << rb.status();
    const absl::Status& refused = ra.ok() ? rb.status() : ra.status();
    EXPECT_THAT(std::string(refused.message()), HasSubstr("already")) << refused;
  }
  const uint64_t last = std::max(a->LastSequence(), b->LastSequence());
  EXPECT_EQ(last, 200u);
  ASSERT_TRUE(a->WaitApplied(last, absl::Seconds(5)));
  ASSERT_TRUE(b->WaitApplied(last, absl::Seconds(5)));
  for (int i = 0; i < 100; ++i) {
    EXPECT_EQ(a->History(absl::StrCat("pat-c", i))->size(), 1u);
    EXPECT_EQ(b->History(absl::StrCat("pat-c", i))->size(), 1u);
  }
}

TEST_F(ReplicaTest, WithPostgresGoneWritesFailAtOnceAndReadsGoOnThenItConverges) {
  std::unique_ptr<ReplicatedStore> a = Node("a"), b = Node("b");
  ASSERT_TRUE(a->Append({Person("pat-1")}).ok());
  ASSERT_TRUE(b->WaitApplied(1, absl::Seconds(5)));
  ASSERT_TRUE(pg_->Stop().ok());
  const absl::Time start = absl::Now();
  absl::StatusOr<uint64_t> refused = a->Append({Person("pat-2")});
  EXPECT_LT(absl::Now() - start, absl::Seconds(6));
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kUnavailable) << refused.status();
  EXPECT_THAT(std::string(refused.status().message()), HasSubstr("nothing was stored"));
  EXPECT_EQ(b->History("pat-1")->size(), 1u);  // decisions' reads go on
  absl::SleepFor(absl::Milliseconds(200));
  EXPECT_FALSE(b->Status().connection.ok());
  ASSERT_TRUE(pg_->Resume().ok());
  absl::StatusOr<uint64_t> again = a->Append({Person("pat-2")});
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(*again, 2u);
  ASSERT_TRUE(b->WaitApplied(2, absl::Seconds(10)));
  EXPECT_EQ(b->History("pat-2")->size(), 1u);
}

TEST_F(ReplicaTest, PostgresStoppedUnderWriteLoadThenBackAndEveryNodeConverges) {
  std::unique_ptr<ReplicatedStore> a = Node("a"), b = Node("b"), c = Node("c");
  std::atomic<bool> stop{false};
  std::atomic<int> ok{0}, refused{0}, next{0};
  std::vector<std::thread> writers;
  for (ReplicatedStore* node : {a.get(), b.get()}) {
    writers.emplace_back([&, node] {
      while (!stop.load()) {
        const int i = next++;
        absl::StatusOr<uint64_t> s = node->Append({Person(absl::StrCat("pat-", i)), Person(absl::StrCat("pat-", i, "b"))});
        if (s.ok()) {
          ++ok;
        } else {
          ++refused;
          // Refused writes say why, at once; never a hang.
          EXPECT_TRUE(absl::IsUnavailable(s.status()) || absl::IsInternal(s.status())) << s.status();
          absl::SleepFor(absl::Milliseconds(5));
        }
      }
    });
  }
  absl::SleepFor(absl::Milliseconds(300));
  ASSERT_TRUE(pg_->Stop().ok());
  absl::SleepFor(absl::Milliseconds(300));
  EXPECT_EQ(c->History("pat-0")->size(), c->LastSequence() > 0 ? 1u : 0u);  // reads go on
  ASSERT_TRUE(pg_->Resume().ok());
  absl::SleepFor(absl::Milliseconds(300));
  stop = true;
  for (std::thread& t : writers) t.join();
  EXPECT_GT(ok.load(), 0);
  EXPECT_GT(refused.load(), 0);
  // Every node ends at the same sequence with the same facts.
  absl::StatusOr<HistoryInfo> info = DescribeHistory(conninfo_);
  ASSERT_TRUE(info.ok()) << info.status();
  for (ReplicatedStore* node : {a.get(), b.get(), c.get()}) {
    ASSERT_TRUE(node->WaitApplied(info->newest, absl::Seconds(10))) << node->Status().applied;
    EXPECT_EQ(node->LastSequence(), info->newest);
  }
  for (int i = 0; i < next.load(); i += 7) {
    const std::string p = absl::StrCat("pat-", i);
    absl::StatusOr<std::vector<Fact>> ha = a->History(p), hc = c->History(p);
    ASSERT_EQ(ha->size(), hc->size()) << p;
    if (!ha->empty()) {
      EXPECT_EQ((*ha)[0].provenance.seq, (*hc)[0].provenance.seq) << p;
    }
  }
}

TEST_F(ReplicaTest, TheFirstWriteAfterPostgresRestartedSucceeds) {
  std::unique_ptr<ReplicatedStore> a = Node("a");
  ASSERT_TRUE(a->Append({Person("pat-1")}).ok());
  ASSERT_TRUE(pg_->Stop().ok());
  ASSERT_TRUE(pg_->Resume().ok());
  absl::StatusOr<uint64_t> after = a->Append({Person("pat-2")});  // its connection broke meanwhile
  EXPECT_TRUE(after.ok()) << after.status();
}

TEST_F(ReplicaTest, ARestartedNodeResumesFromWhatItApplied) {
  {
    std::unique_ptr<ReplicatedStore> b = Node("b", Durable("b"));
    std::unique_ptr<ReplicatedStore> a = Node("a");
    ASSERT_TRUE(a->Append({Person("pat-0")}).ok());
    ASSERT_TRUE(b->WaitApplied(1, absl::Seconds(5)));
  }
  std::unique_ptr<ReplicatedStore> a = Node("a");
  // 100,000 facts while it was down: one batch over a chunk (applied whole), then more.
  int next = 1;
  for (int size : {12000, 8000, 10000, 10000, 10000, 10000, 10000, 10000, 10000, 10000}) {
    std::vector<Fact> batch;
    for (int i = 0; i < size; ++i) batch.push_back(Person(absl::StrCat("pat-", next++)));
    ASSERT_TRUE(a->Append(std::move(batch)).ok());
  }
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(a->Append({Person(absl::StrCat("pat-x", i))}).ok());
  std::unique_ptr<ReplicatedStore> b = Node("b", Durable("b", /*fresh=*/false));
  ASSERT_TRUE(b);
  EXPECT_EQ(b->LastSequence(), 100006u);  // caught up before it opened
  EXPECT_EQ(b->History("pat-100000")->size(), 1u);
  EXPECT_EQ((*b->History("pat-12000"))[0].provenance.seq, 12001u);
  EXPECT_EQ((*b->History("pat-0"))[0].provenance.seq, 1u);
}

TEST_F(ReplicaTest, AStoreOfAnotherHistoryOrANewerFormatIsRefused) {
  std::unique_ptr<FactStore> local = Durable("other");
  ASSERT_TRUE(local->BindReplica("0123456789abcdef0123456789abcdef").ok());
  absl::StatusOr<std::unique_ptr<ReplicatedStore>> other = ReplicatedStore::Open(Options("a"), std::move(local));
  EXPECT_EQ(other.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(other.status().message()), HasSubstr("replica of history 0123456789abcdef"));

  std::unique_ptr<FactStore> own = NewMemoryFactStore();
  ASSERT_TRUE(own->Append({Person("pat-1")}).ok());
  absl::StatusOr<std::unique_ptr<ReplicatedStore>> holds = ReplicatedStore::Open(Options("a"), std::move(own));
  EXPECT_THAT(std::string(holds.status().message()), HasSubstr("recorded without replication"));

  ASSERT_TRUE(pg_->Sql(database_, "UPDATE toegang_meta SET value = '2' WHERE key = 'format'").ok());
  absl::StatusOr<std::unique_ptr<ReplicatedStore>> newer = ReplicatedStore::Open(Options("a"), NewMemoryFactStore());
  EXPECT_EQ(newer.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(newer.status().message()), HasSubstr("format 2; this build reads format 1: upgrade"));
}

TEST_F(ReplicaTest, TheHistoryIsAppendOnlyInPostgresToo) {
  std::unique_ptr<ReplicatedStore> a = Node("a");
  ASSERT_TRUE(a->Append({Person("pat-1")}).ok());
  absl::StatusOr<std::string> changed = pg_->Sql(database_, "UPDATE toegang_facts SET arrival_us = 0");
  EXPECT_FALSE(changed.ok());
  EXPECT_THAT(std::string(changed.status().message()), HasSubstr("append-only"));
  EXPECT_FALSE(pg_->Sql(database_, "DELETE FROM toegang_facts").ok());
  EXPECT_FALSE(pg_->Sql(database_, "TRUNCATE toegang_facts").ok());
}

TEST_F(ReplicaTest, ABadBatchIsRefusedWholeAndNothingReachesTheHistory) {
  std::unique_ptr<ReplicatedStore> a = Node("a"), b = Node("b");
  ASSERT_TRUE(a->Append({Person("pat-1")}).ok());
  absl::StatusOr<uint64_t> bad = b->Append({Person("pat-2"), Person("pat-1")});
  EXPECT_FALSE(bad.ok());
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("fact 2"));
  EXPECT_EQ(*pg_->Sql(database_, "SELECT count(*) FROM toegang_facts"), "1");
  EXPECT_EQ(b->LastSequence(), 1u);
}

TEST(ConsistencyToken, ParsesItsOwnFormAndNamesWhatIsWrong) {
  std::string history;
  uint64_t seq = 0;
  const std::string h(32, 'a');
  ASSERT_TRUE(ParseConsistencyToken(ConsistencyToken(h, 42), &history, &seq).ok());
  EXPECT_EQ(history, h);
  EXPECT_EQ(seq, 42u);
  for (const std::string& bad : {std::string("tg1.abc.1"), "tg2." + h + ".1", "tg1." + h + ".", "tg1." + h + ".-1",
                                "tg1." + h + ".1.2", "tg1." + std::string(32, 'z') + ".1", std::string("")}) {
    absl::Status s = ParseConsistencyToken(bad, &history, &seq);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(std::string(s.message()), HasSubstr("not a consistency token")) << bad;
  }
}

}  // namespace
}  // namespace toegang
