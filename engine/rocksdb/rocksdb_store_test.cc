// Copyright toegang authors.
//
// The durable store: atomic rejection, as-of history, replay around a withdrawal,
// reopening, format version, corruption, concurrent writers (group commit), and the
// same contract as the in-memory twin.
#include <sched.h>
#include <sys/stat.h>
#include <sys/mount.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <map>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "engine/facts/fact_store.h"
#include "engine/rocksdb/fault_injection.h"
#include "engine/rocksdb/rocksdb_store.h"
#include "engine/testing/crash_harness.h"
#include "engine/rocksdb/raw_store.h"
#include "engine/toegang.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "model/json.h"

namespace toegang {
namespace {

using ::testing::HasSubstr;

using testing::FreshDir;

Fact F(const std::string& json) {
  absl::StatusOr<Fact> f = ParseFactJson(json);
  EXPECT_TRUE(f.ok()) << json << ": " << f.status();
  return *f;
}

// A settable clock for arrival stamps.
absl::Time g_now = absl::FromUnixSeconds(1767225600);  // 2026-01-01T00:00:00Z
absl::Time TestClock() { return g_now; }

// With record_cache_bytes 0, every read of a patient goes to RocksDB.
std::unique_ptr<FactStore> Open(const std::string& dir, bool create = true,
                                size_t record_cache_bytes = DurableStoreOptions().record_cache_bytes) {
  DurableStoreOptions o;
  o.clock = TestClock;
  o.create_if_missing = create;
  o.record_cache_bytes = record_cache_bytes;
  absl::StatusOr<std::unique_ptr<FactStore>> s = OpenDurableFactStore(dir, o);
  EXPECT_TRUE(s.ok()) << s.status();
  return s.ok() ? *std::move(s) : nullptr;
}

const char kPerson[] = R"({"type":"person","id":"pat-7","birth_date":"2009-01-10"})";
const char kParent[] = R"({"type":"relationship","id":"rel-7","subject":"par-7","relation":"parent_with_authority","object":"pat-7"})";
const char kConsent[] = R"({"type":"consent","id":"con-7","patient":"pat-7","granted_by":"pat-7","to":{"actor":"par-7"},"purposes":["patient_request"],"categories":["medical"],"actions":["read"],"from":"2026-01-01T00:00:00+01:00","recorded_at":"2026-01-01T00:00:00+01:00"})";
const char kWithdrawal[] = R"({"type":"withdrawal","consent":"con-7","by":"pat-7","at":"2026-06-01T00:00:00+02:00"})";

TEST(DurableStore, AppendIsAtomicAndNamesTheBadFact) {
  std::string dir = FreshDir("atomic");
  auto store = Open(dir);
  ASSERT_TRUE(store->Append({F(kPerson), F(kParent)}).ok());
  struct Case {
    const char* name;
    std::vector<Fact> batch;
    const char* message;
  };
  std::vector<Case> cases;
  cases.push_back({"duplicate_id_in_store", {F(kConsent), F(kParent)}, "fact 2: relationship id 'rel-7' is already used"});
  cases.push_back({"duplicate_id_in_batch", {F(kConsent), F(kConsent)}, "fact 2: consent id 'con-7' is already used"});
  cases.push_back({"withdrawal_of_unknown", {F(kConsent), F(R"({"type":"withdrawal","consent":"con-x","by":"pat-7","at":"2026-06-01T00:00:00Z"})")},
                   "fact 2: withdrawal names no known consent"});
  for (Case& c : cases) {
    SCOPED_TRACE(c.name);
    absl::StatusOr<uint64_t> r = store->Append(std::move(c.batch));
    ASSERT_FALSE(r.ok());
    EXPECT_THAT(std::string(r.status().message()), HasSubstr(c.message));
    // The position also travels as data, and the text without it.
    EXPECT_EQ(FactPositionOf(r.status()), 2u);
    EXPECT_EQ("fact 2: " + WhatAtFact(r.status()), std::string(r.status().message()));
    EXPECT_EQ(store->LastSequence(), 2u);
    absl::StatusOr<std::vector<Fact>> h = store->History("pat-7");
    ASSERT_TRUE(h.ok());
    EXPECT_EQ(h->size(), 2u) << "a rejected batch left facts behind";
  }
  // A withdrawal in the same batch as its consent is fine.
  ASSERT_TRUE(store->Append({F(kConsent), F(kWithdrawal)}).ok());
  EXPECT_EQ(store->LastSequence(), 4u);
}

TEST(DurableStore, HistoryAsOfAndReplayAroundWithdrawal) {
  std::string dir = FreshDir("asof");
  g_now = absl::FromUnixSeconds(1767225600);  // 2026-01-01
  auto store = Open(dir);
  ASSERT_TRUE(store->Append({F(kPerson), F(kParent), F(kConsent)}).ok());
  g_now = absl::FromUnixSeconds(1780300800);  // 2026-06-01T08:00Z: the withdrawal arrives
  ASSERT_TRUE(store->Append({F(kWithdrawal)}).ok());
  const absl::Time before = absl::FromUnixSeconds(1777600000);  // 2026-05-01
  absl::StatusOr<std::vector<Fact>> then = store->History("pat-7", before);
  absl::StatusOr<std::vector<Fact>> now = store->History("pat-7");
  ASSERT_TRUE(then.ok() && now.ok());
  EXPECT_EQ(then->size(), 3u);
  EXPECT_EQ(now->size(), 4u);
  EXPECT_EQ((*now)[3].provenance.seq, 4u);
  EXPECT_EQ((*now)[3].provenance.arrival, g_now);

  // Replay: a request dated 2026-06-02, decided with the facts known on 2026-05-01
  // (no withdrawal yet) and with the facts known now.
  store.reset();
  Options options;
  options.db_path = dir;
  options.clock = TestClock;
  auto engine = Engine::Open(std::move(options));
  ASSERT_TRUE(engine.ok());
  absl::StatusOr<AccessRequest> req = ParseRequestJson(
      R"({"at":"2026-06-02T10:00:00+02:00","actor":{"id":"par-7","role":"parent"},"patient":"pat-7","action":"read","category":"medical","purpose":"patient_request"})");
  ASSERT_TRUE(req.ok());
  EXPECT_TRUE((*engine)->DecideAsOf(*req, before).decision.permitted());
  EngineDecision current = (*engine)->Decide(*req);
  EXPECT_FALSE(current.decision.permitted());
  // D21: an earlier request is unchanged by the withdrawal.
  absl::StatusOr<AccessRequest> april = ParseRequestJson(
      R"({"at":"2026-04-01T10:00:00+02:00","actor":{"id":"par-7","role":"parent"},"patient":"pat-7","action":"read","category":"medical","purpose":"patient_request"})");
  EngineDecision replay = (*engine)->Decide(*april);
  EXPECT_TRUE(replay.decision.permitted());
  EXPECT_THAT(replay.decision.consents, ::testing::ElementsAre("con-7"));
}

TEST(DurableStore, CacheIsInvalidatedOnWrite) {
  std::string dir = FreshDir("cache");
  auto store = Open(dir);
  ASSERT_TRUE(store->Append({F(kPerson)}).ok());
  auto first = store->Patient("pat-7");
  ASSERT_TRUE(first.ok());
  EXPECT_TRUE((*first)->relationships.empty());
  ASSERT_TRUE(store->Append({F(kParent)}).ok());
  auto second = store->Patient("pat-7");
  ASSERT_TRUE(second.ok());
  EXPECT_EQ((*second)->relationships.size(), 1u);
  EXPECT_TRUE((*first)->relationships.empty()) << "a snapshot changed under its reader";
}

// With no record cache every read goes to RocksDB, through an iterator kept from the
// read before where one is (Database::Use::Facts). Such an iterator reads the
// facts as they were when it was made: after a write, none made before it may serve.
TEST(DurableStore, EveryReadSeesTheWritesBeforeItWithNoRecordCache) {
  std::unique_ptr<FactStore> opened = Open(FreshDir("no_record_cache"), true, /*record_cache_bytes=*/0);
  ASSERT_NE(opened, nullptr);
  FactStore& store = *opened;
  ASSERT_TRUE(store.Append({F(kPerson)}).ok());
  for (int i = 0; i < 3; ++i) {
    absl::StatusOr<std::shared_ptr<const PatientRecord>> read = store.Patient("pat-7");
    ASSERT_TRUE(read.ok()) << read.status();
    EXPECT_TRUE((*read)->relationships.empty());
    EXPECT_EQ(store.History("pat-7")->size(), 1u);
  }
  ASSERT_TRUE(store.Append({F(kParent)}).ok());
  absl::StatusOr<std::shared_ptr<const PatientRecord>> after = store.Patient("pat-7");
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ((*after)->relationships.size(), 1u) << "a read after a write did not see it";
  EXPECT_EQ(store.History("pat-7")->size(), 2u);
  // The window reads (Patients) keep and take iterators the same way.
  std::vector<absl::string_view> both = {"pat-8", "pat-7"};
  std::vector<absl::StatusOr<std::shared_ptr<const PatientRecord>>> window = store.Patients(both);
  ASSERT_TRUE(window[1].ok()) << window[1].status();
  EXPECT_EQ((*window[1])->relationships.size(), 1u);
  EXPECT_TRUE((*window[1])->consents.empty());
  ASSERT_TRUE(store.Append({F(kConsent)}).ok());
  window = store.Patients(both);
  ASSERT_TRUE(window[1].ok()) << window[1].status();
  EXPECT_EQ((*window[1])->consents.size(), 1u) << "a window read after a write did not see it";
  absl::StatusOr<std::shared_ptr<const PatientRecord>> last = store.Patient("pat-7");
  ASSERT_TRUE(last.ok()) << last.status();
  EXPECT_EQ((*last)->consents.size(), 1u);
}

// A store at a fresh `name` with no record cache (every read goes to RocksDB) holding
// pat-7; null when it does not open.
std::unique_ptr<FactStore> Pat7WithoutRecordCache(const std::string& name) {
  std::unique_ptr<FactStore> store = Open(FreshDir(name), true, /*record_cache_bytes=*/0);
  if (store == nullptr) return nullptr;
  absl::StatusOr<uint64_t> appended = store->Append({F(kPerson)});
  EXPECT_TRUE(appended.ok()) << appended.status();
  return appended.ok() ? std::move(store) : nullptr;
}

// The i-th parent with authority of pat-7, each its own relationship.
Fact ParentOfPat7(int i) {
  return F(absl::StrCat(R"({"type":"relationship","id":"rel-)", i, R"(","subject":"par-)", i,
                        R"(","relation":"parent_with_authority","object":"pat-7"})"));
}

// Readers and a writer at once, with no record cache: each read goes through an
// iterator kept from another read or a new one. No reader sees fewer facts than were
// written before its read began, or than it saw before.
TEST(DurableStore, ConcurrentReadersSeeEveryWriteBeforeThem) {
  std::unique_ptr<FactStore> opened = Pat7WithoutRecordCache("readers_and_writer");
  ASSERT_NE(opened, nullptr);
  FactStore& store = *opened;
  constexpr int kWrites = 60;
  std::atomic<int> written{0};
  std::atomic<bool> done{false};
  std::atomic<int> behind{0};
  std::atomic<int> reads{0};
  std::vector<std::thread> readers;
  for (int r = 0; r < 3; ++r) {
    readers.emplace_back([&] {
      size_t seen = 0;
      while (!done.load(std::memory_order_acquire)) {
        const size_t before = static_cast<size_t>(written.load(std::memory_order_acquire));
        absl::StatusOr<std::shared_ptr<const PatientRecord>> read = store.Patient("pat-7");
        if (!read.ok()) {
          behind.fetch_add(1000);
          continue;
        }
        const size_t now = (*read)->relationships.size();
        if (now < before || now < seen) behind.fetch_add(1);
        seen = now;
        reads.fetch_add(1);
      }
    });
  }
  for (int i = 0; i < kWrites; ++i) {
    ASSERT_TRUE(store.Append({ParentOfPat7(i)}).ok());
    written.store(i + 1, std::memory_order_release);
  }
  done.store(true, std::memory_order_release);
  for (std::thread& t : readers) t.join();
  EXPECT_EQ(behind.load(), 0) << "a read missed a write that was done before it began";
  EXPECT_GT(reads.load(), kWrites) << "the readers hardly ran: this test measured little";
  EXPECT_EQ((*store.Patient("pat-7"))->relationships.size(), static_cast<size_t>(kWrites));
}

// Scrub rewrites every file and reopens the database while readers and a writer go
// on: none of them fails, no write is lost, and no read sees less than was written
// before it began.
TEST(DurableStore, ScrubBesideReadersAndAWriter) {
  std::unique_ptr<FactStore> opened = Pat7WithoutRecordCache("scrub_beside");
  ASSERT_NE(opened, nullptr);
  FactStore& store = *opened;
  constexpr int kWrites = 200;
  std::atomic<int> written{0};
  std::atomic<bool> done{false};
  std::atomic<int> failed{0};
  std::atomic<int> behind{0};
  std::thread reader([&] {
    while (!done.load(std::memory_order_acquire)) {
      const size_t before = static_cast<size_t>(written.load(std::memory_order_acquire));
      absl::StatusOr<std::shared_ptr<const PatientRecord>> read = store.Patient("pat-7");
      if (!read.ok()) {
        failed.fetch_add(1);
        continue;
      }
      if ((*read)->relationships.size() < before) behind.fetch_add(1);
    }
  });
  std::thread writer([&] {
    for (int i = 0; i < kWrites; ++i) {
      absl::StatusOr<uint64_t> s = store.Append({ParentOfPat7(i)});
      if (!s.ok()) {
        ADD_FAILURE() << "write " << i << " beside a scrub: " << s.status();
        failed.fetch_add(1);
      }
      written.store(i + 1, std::memory_order_release);
    }
  });
  int scrubs = 0;
  while (written.load(std::memory_order_acquire) < kWrites) {
    absl::Status s = store.Scrub();
    ASSERT_TRUE(s.ok()) << s;
    ++scrubs;
  }
  writer.join();
  done.store(true, std::memory_order_release);
  reader.join();
  EXPECT_GE(scrubs, 1);
  EXPECT_EQ(failed.load(), 0);
  EXPECT_EQ(behind.load(), 0) << "a read missed a write that was done before it began";
  EXPECT_TRUE(store.Health().ok()) << store.Health();
  EXPECT_EQ((*store.Patient("pat-7"))->relationships.size(), static_cast<size_t>(kWrites));
}

TEST(DurableStore, ReopenKeepsEverythingAndTheSequence) {
  std::string dir = FreshDir("reopen");
  {
    auto store = Open(dir);
    ASSERT_TRUE(store->Append({F(kPerson), F(kParent), F(kConsent)}).ok());
    ASSERT_TRUE(store->Append({F(R"({"type":"relationship","subject":"clin-2","relation":"substitute_for","object":"clin-1","from":"2026-07-01T00:00:00+02:00"})"),
                               F(R"({"type":"org_category","organization":"apotheek-1","category":"RPZAC005"})")}).ok());
  }
  auto store = Open(dir, /*create=*/false);
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->LastSequence(), 5u);
  auto categories = store->CategoriesOf("apotheek-1");
  ASSERT_TRUE(categories.ok()) << categories.status();
  ASSERT_EQ((*categories)->size(), 1u);
  EXPECT_EQ((**categories)[0].value.category, "RPZAC005");
  auto h = store->History("pat-7");
  ASSERT_TRUE(h.ok());
  ASSERT_EQ(h->size(), 3u);
  EXPECT_EQ(FactToJson((*h)[2], false), FactToJson(F(kConsent), false));
  auto subs = store->SubstitutionsOf("clin-2");
  ASSERT_TRUE(subs.ok());
  ASSERT_EQ((*subs)->size(), 1u);
  EXPECT_EQ((**subs)[0].value.object, "clin-1");
  // Ids survive reopening: a duplicate is still refused.
  EXPECT_FALSE(store->Append({F(kConsent)}).ok());
  ASSERT_TRUE(store->Append({F(kWithdrawal)}).ok());
  EXPECT_EQ(store->LastSequence(), 6u);
}

// An erasure request and a retention hold come back as they went in, with the patient's
// other facts; their ids are in the one space withdrawals name.
TEST(DurableStore, ErasureRequestsAndHoldsAreKept) {
  std::string dir = FreshDir("retention_facts");
  const char kRequest[] = R"({"type":"erasure_request","id":"era-7","patient":"pat-7","by":"pat-7","at":"2026-03-01T09:00:00Z"})";
  const char kHold[] = R"({"type":"retention_hold","id":"hold-7","patient":"pat-7","by":"clin-1","reason":"child_protection","from":"2026-02-01T00:00:00Z","until":"2040-01-10T00:00:00Z"})";
  {
    auto store = Open(dir);
    ASSERT_TRUE(store->Append({F(kPerson), F(kParent), F(kRequest), F(kHold)}).ok());
  }
  auto store = Open(dir, /*create=*/false);
  auto h = store->History("pat-7");
  ASSERT_TRUE(h.ok());
  ASSERT_EQ(h->size(), 4u);
  EXPECT_EQ(FactToJson((*h)[2], false), FactToJson(F(kRequest), false));
  EXPECT_EQ(FactToJson((*h)[3], false), FactToJson(F(kHold), false));
  auto record = store->Patient("pat-7");
  ASSERT_TRUE(record.ok());
  ASSERT_EQ((*record)->erasure_requests.size(), 1u);
  ASSERT_EQ((*record)->holds.size(), 1u);
  EXPECT_EQ((*record)->holds[0].value.reason, HoldReason::kChildProtection);
  EXPECT_EQ(*store->PatientOfFact("hold-7"), std::optional<std::string>("pat-7"));
  EXPECT_EQ(store->Append({F(R"({"type":"consent","id":"era-7","patient":"pat-7","granted_by":"pat-7","to":{"actor":"par-7"},"purposes":["treatment"],"categories":["medical"],"actions":["read"]})")})
                .status()
                .code(),
            absl::StatusCode::kAlreadyExists);
  ASSERT_TRUE(store->Append({F(R"({"type":"withdrawal","consent":"hold-7","by":"clin-1","at":"2026-04-01T00:00:00Z"})")}).ok());
  EXPECT_EQ((*store->Patient("pat-7"))->withdrawals.size(), 1u);
}

TEST(DurableStore, NoStoreIsNotASilentEmptyStore) {
  DurableStoreOptions o;
  o.create_if_missing = false;
  absl::StatusOr<std::unique_ptr<FactStore>> s = OpenDurableFactStore(FreshDir("missing"), o);
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(std::string(s.status().message()), HasSubstr("no toegang store"));
}

TEST(DurableStore, CreationInterruptedBeforeTheVersionIsCompleted) {
  std::string dir = FreshDir("interrupted");
  { ASSERT_NE(Open(dir), nullptr); }
  // As if killed after RocksDB created the files but before the version was written.
  ASSERT_TRUE(testing::RawPutForTesting(dir, "default", "toegang/format_version", "", /*erase=*/true).ok());
  auto store = Open(dir, /*create=*/false);
  ASSERT_NE(store, nullptr);
  EXPECT_TRUE(store->Append({F(kPerson)}).ok());
}

TEST(DurableStore, NewerFormatIsRefused) {
  std::string dir = FreshDir("newer");
  { ASSERT_NE(Open(dir), nullptr); }
  ASSERT_TRUE(testing::RawPutForTesting(dir, "default", "toegang/format_version", "99").ok());
  absl::StatusOr<std::unique_ptr<FactStore>> s = OpenDurableFactStore(dir, {});
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(std::string(s.status().message()), HasSubstr("format version 99, newer than this build"));
}

// A store an older build wrote (format 2) has no index of patients: it is built the
// first time the store is opened for writing; a reader before that refuses to list.
TEST(DurableStore, PatientIndexIsBuiltWhenAnOlderStoreIsOpened) {
  std::string dir = FreshDir("index_upgrade");
  {
    auto store = Open(dir);
    ASSERT_TRUE(store->Append({F(kPerson), F(kParent), F(kConsent)}).ok());
  }
  absl::StatusOr<int> erased = testing::RawErasePrefixForTesting(dir, "facts", "i");
  ASSERT_TRUE(erased.ok()) << erased.status();
  EXPECT_EQ(*erased, 1);  // the parent (by the relationship and the consent)
  ASSERT_TRUE(testing::RawPutForTesting(dir, "default", "toegang/format_version", "2").ok());
  {
    DurableStoreOptions ro;
    ro.read_only = true;
    absl::StatusOr<std::unique_ptr<FactStore>> reader = OpenDurableFactStore(dir, ro);
    ASSERT_TRUE(reader.ok()) << reader.status();
    absl::StatusOr<std::vector<std::string>> refused = (*reader)->IndexedPatients({"apar-7"}, "", 10);
    EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);
    EXPECT_THAT(std::string(refused.status().message()), HasSubstr("open it once for writing"));
  }
  {
    auto store = Open(dir);
    absl::StatusOr<std::vector<std::string>> listed = store->IndexedPatients({"apar-7"}, "", 10);
    ASSERT_TRUE(listed.ok()) << listed.status();
    EXPECT_EQ(*listed, std::vector<std::string>{"pat-7"});
  }
  EXPECT_EQ(*testing::RawGetForTesting(dir, "default", "toegang/format_version"), std::to_string(kStoreFormatVersion));
}

TEST(DurableStore, MissingFormatVersionIsNotAToegangStore) {
  std::string dir = FreshDir("noversion");
  {
    auto store = Open(dir);
    ASSERT_TRUE(store->Append({F(kPerson)}).ok());
  }
  ASSERT_TRUE(testing::RawPutForTesting(dir, "default", "toegang/format_version", "", /*erase=*/true).ok());
  absl::StatusOr<std::unique_ptr<FactStore>> s = OpenDurableFactStore(dir, {});
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(std::string(s.status().message()), HasSubstr("not a toegang store"));
}

TEST(DurableStore, CorruptStoreIsRefused) {
  std::string dir = FreshDir("corrupt");
  {
    auto store = Open(dir);
    ASSERT_TRUE(store->Append({F(kPerson)}).ok());
  }
  // Overwrite the manifest with garbage.
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().filename().string().rfind("MANIFEST", 0) == 0) {
      std::ofstream(entry.path(), std::ios::binary | std::ios::trunc) << std::string(4096, '\x5a');
    }
  }
  absl::StatusOr<std::unique_ptr<FactStore>> s = OpenDurableFactStore(dir, {});
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(std::string(s.status().message()), ::testing::AnyOf(HasSubstr("corrupt"), HasSubstr("cannot open")));
}

TEST(DurableStore, CorruptRecordDeniesNeverPermits) {
  std::string dir = FreshDir("badrecord");
  {
    auto store = Open(dir);
    ASSERT_TRUE(store->Append({F(R"({"type":"relationship","subject":"clin-1","relation":"treating","object":"pat-1"})")}).ok());
  }
  // Replace the stored relationship (seq 1 under pat-1) with garbage bytes.
  std::string key = std::string("ppat-1") + '\0' + std::string("\0\0\0\0\0\0\0\x01", 8);
  ASSERT_TRUE(testing::RawPutForTesting(dir, "facts", key, "garbage that is no flatbuffer").ok());
  Options options;
  options.db_path = dir;
  auto engine = Engine::Open(std::move(options));
  ASSERT_TRUE(engine.ok()) << engine.status();
  absl::StatusOr<AccessRequest> req = ParseRequestJson(
      R"({"at":"2026-06-02T10:00:00+02:00","actor":{"id":"clin-1","role":"clinician"},"patient":"pat-1","action":"read","category":"medical","purpose":"treatment"})");
  EngineDecision d = (*engine)->Decide(*req);
  EXPECT_FALSE(d.decision.permitted());
  EXPECT_EQ(d.decision.reasons[0], Reason::kPolicyError);
  EXPECT_THAT(d.decision.error, HasSubstr("corrupt"));
}

TEST(DurableStore, ConcurrentWritersAllLandWithDistinctSequences) {
  std::string dir = FreshDir("concurrent");
  auto store = Open(dir);
  constexpr int kThreads = 8, kBatches = 40;
  std::vector<std::thread> threads;
  std::vector<std::vector<uint64_t>> seqs(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int b = 0; b < kBatches; ++b) {
        std::string p = absl::StrCat("pat-", t, "-", b);
        absl::StatusOr<uint64_t> r = store->Append(
            {F(absl::StrCat(R"({"type":"person","id":")", p, R"(","birth_date":"1990-01-01"})")),
             F(absl::StrCat(R"({"type":"relationship","id":"rel-)", p, R"(","subject":"clin-1","relation":"treating","object":")", p, R"("})"))});
        ASSERT_TRUE(r.ok()) << r.status();
        seqs[t].push_back(*r);
      }
      // One bad batch per thread: it must not take a good one down with it.
      EXPECT_FALSE(store->Append({F(kPerson), F(R"({"type":"withdrawal","consent":"nope","by":"x","at":"2026-01-01T00:00:00Z"})")}).ok());
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(store->LastSequence(), uint64_t{kThreads * kBatches * 2});
  std::vector<uint64_t> all;
  for (auto& v : seqs) all.insert(all.end(), v.begin(), v.end());
  std::sort(all.begin(), all.end());
  EXPECT_TRUE(std::adjacent_find(all.begin(), all.end()) == all.end());
  for (int t = 0; t < kThreads; ++t) {
    auto h = store->History(absl::StrCat("pat-", t, "-", kBatches - 1));
    ASSERT_TRUE(h.ok());
    EXPECT_EQ(h->size(), 2u);
  }
}


// --- Integrity under damage ---------------------------------------------------------

// Every file of the store with its bytes: what "nothing was changed" compares.
std::map<std::string, std::string> Snapshot(const std::string& dir) {
  std::map<std::string, std::string> files;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    if (name == "LOG" || name == "LOCK") continue;  // diagnostics and the lock file
    std::ifstream in(e.path(), std::ios::binary);
    files[name] = std::string(std::istreambuf_iterator<char>(in), {});
  }
  return files;
}

// The bytes of the write-ahead log files in `dir`.
uintmax_t WalBytes(const std::string& dir) {
  uintmax_t bytes = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    if (e.path().extension() == ".log") bytes += std::filesystem::file_size(e.path());
  }
  return bytes;
}

std::string NewestWal(const std::string& dir) {
  std::string newest;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    if (absl::EndsWith(name, ".log") && name > newest) newest = name;
  }
  return newest.empty() ? "" : dir + "/" + newest;
}

const char kParentRequestAfter[] =
    R"({"at":"2026-07-01T00:00:00+02:00","actor":{"id":"par-7","role":"parent"},"patient":"pat-7","action":"read","category":"medical","purpose":"patient_request"})";

// A 17-year-old's consent to a parent, then its withdrawal: both acknowledged, and the
// store's files as a crash right after would leave them. A store closed as usual has
// written its write-ahead log into tables; the copy is taken while it is still open, so
// the acknowledged facts are in the log alone.
std::string StoreWithAcknowledgedWithdrawal(const std::string& name) {
  std::string live = FreshDir(name + "_live");
  std::string dir = FreshDir(name);
  auto store = Open(live);
  EXPECT_TRUE(store->Append({F(kPerson), F(kParent), F(kConsent)}).ok());
  absl::StatusOr<uint64_t> last = store->Append({F(kWithdrawal)});
  EXPECT_TRUE(last.ok() && *last == 4) << last.status();
  std::filesystem::copy(live, dir, std::filesystem::copy_options::recursive);
  return dir;
}

// Closing writes what the write-ahead log holds into tables, so the next open has
// nothing to replay (after a bulk load that was seconds, twice): the logs of a store
// closed as usual can even be lost without losing a fact.
TEST(DurableStore, AStoreClosedAsUsualNeedsNoWriteAheadLog) {
  std::string dir = FreshDir("clean_close");
  {
    auto store = Open(dir);
    ASSERT_TRUE(store->Append({F(kPerson), F(kParent), F(kConsent)}).ok());
    ASSERT_TRUE(store->Append({F(kWithdrawal)}).ok());
  }
  EXPECT_EQ(WalBytes(dir), 0u) << "the write-ahead log still held records after a clean close";
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    if (e.path().extension() == ".log") std::filesystem::remove(e.path());
  }
  auto store = Open(dir, /*create=*/false);
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->LastSequence(), 4u);
  auto h = store->History("pat-7");
  ASSERT_TRUE(h.ok()) << h.status();
  EXPECT_EQ(h->size(), 4u);
}

TEST(DurableStore, DamagedOrRemovedWalIsRefusedNeverRecoveredShorter) {
  struct Case {
    const char* name;
    void (*damage)(const std::string& dir);
  };
  const Case cases[] = {
      {"one byte flipped in the newest WAL",
       [](const std::string& dir) {
         std::string wal = NewestWal(dir);
         std::fstream f(wal, std::ios::in | std::ios::out | std::ios::binary);
         f.seekg(-20, std::ios::end);
         char c = 0;
         f.get(c);
         f.seekp(-20, std::ios::end);
         f.put(static_cast<char>(c ^ 0xff));
       }},
      {"newest WAL truncated to half", [](const std::string& dir) {
         std::string wal = NewestWal(dir);
         std::filesystem::resize_file(wal, std::filesystem::file_size(wal) / 2);
       }},
      {"newest WAL emptied", [](const std::string& dir) { std::filesystem::resize_file(NewestWal(dir), 0); }},
      {"every WAL deleted",
       [](const std::string& dir) {
         for (const auto& e : std::filesystem::directory_iterator(dir)) {
           if (e.path().extension() == ".log") std::filesystem::remove(e.path());
         }
       }},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    std::string dir = StoreWithAcknowledgedWithdrawal("wal_damage");
    ASSERT_FALSE(NewestWal(dir).empty()) << "the facts are expected in the write-ahead log";
    c.damage(dir);
    const auto before = Snapshot(dir);
    Options options;
    options.db_path = dir;
    absl::StatusOr<std::unique_ptr<Engine>> engine = Engine::Open(std::move(options));
    ASSERT_FALSE(engine.ok()) << "a store missing an acknowledged withdrawal was opened";
    EXPECT_EQ(engine.status().code(), absl::StatusCode::kDataLoss);
    EXPECT_THAT(std::string(engine.status().message()), HasSubstr("shorter than it acknowledged"));
    EXPECT_THAT(std::string(engine.status().message()), HasSubstr("of 4"));
    EXPECT_EQ(Snapshot(dir), before) << "refusing changed the store's files";
    // Readers refuse it too.
    DurableStoreOptions ro;
    ro.read_only = true;
    EXPECT_EQ(OpenDurableFactStore(dir, ro).status().code(), absl::StatusCode::kDataLoss);
  }
}

TEST(DurableStore, AcceptingTheLossOpensWhatIsLeftAndSaysSo) {
  std::string dir = StoreWithAcknowledgedWithdrawal("accept_loss");
  std::filesystem::resize_file(NewestWal(dir), 0);
  DurableStoreOptions o;
  o.clock = TestClock;
  o.accept_loss = true;
  absl::StatusOr<std::unique_ptr<FactStore>> s = OpenDurableFactStore(dir, o);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_LT((*s)->LastSequence(), 4u);
  s->reset();
  EXPECT_NE(Open(dir, false), nullptr) << "once accepted, the store opens as usual";
}

TEST(DurableStore, IntactStoreOpensAfterACrashLeftATornTail) {
  // A torn last record (a write the crash interrupted) was never acknowledged: the
  // store opens, holding everything that was.
  std::string dir = StoreWithAcknowledgedWithdrawal("torn_tail");
  {
    std::ofstream wal(NewestWal(dir), std::ios::binary | std::ios::app);
    wal << std::string("\x12\x34\x56\x78\x09\x00\x01", 7);  // half a record header
  }
  auto store = Open(dir, false);
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->LastSequence(), 4u);
}

TEST(DurableStore, StoreWithoutCurrentIsRefusedNeverRecreated) {
  std::string dir = StoreWithAcknowledgedWithdrawal("no_current");
  std::filesystem::remove(dir + "/CURRENT");
  const auto before = Snapshot(dir);
  absl::StatusOr<std::unique_ptr<FactStore>> s = OpenDurableFactStore(dir, {});
  ASSERT_FALSE(s.ok()) << "an empty store took the place of one with facts";
  EXPECT_EQ(s.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(s.status().message()), HasSubstr("but no CURRENT"));
  EXPECT_EQ(Snapshot(dir), before);
}

TEST(DurableStore, StoreWithoutItsAcknowledgementRecordIsRefused) {
  std::string dir = StoreWithAcknowledgedWithdrawal("no_ack");
  std::filesystem::remove(dir + "/TOEGANG-ACK");
  absl::StatusOr<std::unique_ptr<FactStore>> s = OpenDurableFactStore(dir, {});
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(std::string(s.status().message()), HasSubstr("has lost TOEGANG-ACK"));
}

TEST(DurableStore, D40_APersonIdIsStoredOnce) {
  std::string dir = FreshDir("person_once");
  auto store = Open(dir);
  ASSERT_TRUE(store->Append({F(kPerson)}).ok());
  // A later file restating the person with another birth date would turn a 17-year-old
  // into a child whose parent reads everything.
  absl::StatusOr<uint64_t> again = store->Append({F(R"({"type":"person","id":"pat-7","birth_date":"2020-01-10"})")});
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(std::string(again.status().message()), HasSubstr("person id 'pat-7' is already used"));
  absl::StatusOr<uint64_t> twice = store->Append(
      {F(R"({"type":"person","id":"pat-8","birth_date":"2001-01-01"})"),
       F(R"({"type":"person","id":"pat-8","birth_date":"2002-01-01"})")});
  EXPECT_THAT(std::string(twice.status().message()), HasSubstr("fact 2: person id 'pat-8'"));
  absl::StatusOr<std::vector<Fact>> history = store->History("pat-7");
  ASSERT_TRUE(history.ok());
  EXPECT_EQ(history->size(), 1u);
  // The memory store keeps the same rule.
  auto memory = NewMemoryFactStore(TestClock);
  ASSERT_TRUE(memory->Append({F(kPerson)}).ok());
  EXPECT_EQ(memory->Append({F(kPerson)}).status().code(), absl::StatusCode::kAlreadyExists);
}

// A store at `dir` whose disk is full while `faults->full`.
absl::StatusOr<DurableStore> OpenWithFaults(const std::string& dir, std::shared_ptr<DiskFaults> faults) {
  DurableStoreOptions o;
  o.clock = TestClock;
  return OpenDurableStoreWithFaults(dir, o, std::move(faults));
}

TEST(DurableStore, FullDiskIsAnErrorNotACrashAndTheStoreWritesAgainByItself) {
  std::string dir = FreshDir("full_disk");
  auto faults = std::make_shared<DiskFaults>();
  absl::StatusOr<DurableStore> s = OpenWithFaults(dir, faults);
  ASSERT_TRUE(s.ok()) << s.status();
  FactStore& store = *s->facts;
  ASSERT_TRUE(store.Append({F(kPerson)}).ok());
  EXPECT_EQ(store.History("pat-7")->size(), 1u);  // an iterator kept across the failure
  faults->full = true;
  absl::StatusOr<uint64_t> refused = store.Append({F(kParent)});
  ASSERT_FALSE(refused.ok());
  EXPECT_THAT(std::string(refused.status().message()), HasSubstr("space"));
  EXPECT_FALSE(store.Health().ok());
  EXPECT_FALSE(store.Append({F(kParent)}).ok());
  faults->full = false;
  absl::Status health;
  for (int i = 0; i < 300 && !(health = store.Health()).ok(); ++i) absl::SleepFor(absl::Milliseconds(10));
  ASSERT_TRUE(health.ok()) << health;
  absl::StatusOr<uint64_t> written = store.Append({F(kParent)});
  ASSERT_TRUE(written.ok()) << written.status();
  EXPECT_EQ(*written, 2u) << "a refused fact was stored, or a number skipped";
  EXPECT_EQ(store.History("pat-7")->size(), 2u);
  s->facts.reset();
  s->access_log.reset();
  auto reopened = Open(dir, false);
  ASSERT_NE(reopened, nullptr);
  EXPECT_EQ(reopened->LastSequence(), 2u);
  EXPECT_EQ(reopened->History("pat-7")->size(), 2u);
}

// A write the disk refused leaves nothing behind: the sync after it stores the head of
// the last write that succeeded, not of the refused one (whose records are not stored).
TEST(DurableStore, AccessLogSyncAfterARefusedWriteKeepsTheLastStoredHead) {
  std::string dir = FreshDir("audit_head_after_refusal");
  auto faults = std::make_shared<DiskFaults>();
  absl::StatusOr<DurableStore> s = OpenWithFaults(dir, faults);
  ASSERT_TRUE(s.ok()) << s.status();
  AuditStorage& log = *s->access_log;
  const std::string first(32, 'a');
  const std::string refused(32, 'b');
  AuditRow row;
  row.seq = 1;
  row.entry = std::string(100, 'x');
  row.patient = "pat-7";
  row.at_us = 1780000000000000;
  ASSERT_TRUE(log.Append({row}, first, /*sync=*/false).ok());
  faults->full = true;
  row.seq = 2;
  ASSERT_FALSE(log.Append({row}, refused, /*sync=*/false).ok());
  faults->full = false;
  absl::Status recovered;
  for (int i = 0; i < 300 && !(recovered = log.Recover()).ok(); ++i) absl::SleepFor(absl::Milliseconds(10));
  ASSERT_TRUE(recovered.ok()) << recovered;
  ASSERT_TRUE(log.Sync().ok());
  uint64_t last = 0;
  std::string hash;
  ASSERT_TRUE(log.ReadHead(&last, &hash).ok());
  EXPECT_EQ(last, 1u);
  EXPECT_EQ(hash, first);
}

// The buffered access log writes its batches to the write-ahead log as they come and
// syncs them when a sync is due: a Flush, here, with the interval an hour.
TEST(DurableStore, BufferedAccessLogSyncsTheWriteAheadLogOnlyWhenDue) {
  std::string dir = FreshDir("buffered_syncs");
  auto faults = std::make_shared<DiskFaults>();
  absl::StatusOr<DurableStore> s = OpenWithFaults(dir, faults);
  ASSERT_TRUE(s.ok()) << s.status();
  AuditOptions o;
  o.mode = AuditMode::kBuffered;
  o.sync_interval = absl::Hours(1);
  absl::StatusOr<std::unique_ptr<AuditLog>> log = AuditLog::Open(s->access_log.get(), o);
  ASSERT_TRUE(log.ok()) << log.status();
  AuditEvent e;
  e.at = absl::FromUnixSeconds(1780000000);
  e.patient = "pat-7";
  e.actor = {"clin-1", Role::kClinician, ""};
  e.policy = "wgbo-default@1";
  const uint64_t before = faults->wal_syncs;
  for (int i = 0; i < 5; ++i) {
    e.event_id = absl::StrCat("ev-", i);
    ASSERT_TRUE((*log)->Append(e).ok());
    for (int t = 0; t < 2000 && (*log)->stats().written < static_cast<uint64_t>(i + 1); ++t) {
      absl::SleepFor(absl::Milliseconds(1));
    }
  }
  ASSERT_EQ((*log)->stats().written, 5u);
  EXPECT_EQ(faults->wal_syncs, before) << "a buffered batch was synced before a sync was due";
  ASSERT_TRUE((*log)->Flush().ok());
  EXPECT_GT(faults->wal_syncs, before) << "Flush returned without syncing the write-ahead log";
  log->reset();
  s->facts.reset();
  s->access_log.reset();
  auto engine = Engine::Open([&] {
    Options opt;
    opt.db_path = dir;
    return opt;
  }());
  ASSERT_TRUE(engine.ok()) << engine.status();
  absl::StatusOr<std::vector<AuditEvent>> events =
      (*engine)->PatientAccesses("pat-7", absl::InfinitePast(), absl::InfiniteFuture(), 100);
  ASSERT_TRUE(events.ok()) << events.status();
  EXPECT_EQ(events->size(), 5u);
  absl::StatusOr<AuditVerifyReport> v = (*engine)->VerifyAccessLog();
  ASSERT_TRUE(v.ok());
  EXPECT_TRUE(v->ok) << v->problem;
}

// The disk fills up after the last write and before the close: the flush at close
// fails, and the write-ahead log, which holds every acknowledged fact, is replayed at
// the next open as after a crash. Nothing is lost.
TEST(DurableStore, AFullDiskAtCloseLeavesTheLogToReplay) {
  std::string dir = FreshDir("full_at_close");
  auto faults = std::make_shared<DiskFaults>();
  {
    absl::StatusOr<DurableStore> s = OpenWithFaults(dir, faults);
    ASSERT_TRUE(s.ok()) << s.status();
    ASSERT_TRUE(s->facts->Append({F(kPerson), F(kParent), F(kConsent)}).ok());
    ASSERT_TRUE(s->facts->Append({F(kWithdrawal)}).ok());
    faults->full = true;
  }
  EXPECT_GT(WalBytes(dir), 0u) << "the flush was expected to fail on the full disk";
  auto reopened = Open(dir, false);
  ASSERT_NE(reopened, nullptr);
  EXPECT_EQ(reopened->LastSequence(), 4u);
  EXPECT_EQ(reopened->History("pat-7")->size(), 4u);
}

// The same on a real full file system. Needs root (a tmpfs mounted in a private mount
// namespace); as another user the fault-injecting test above covers the code paths.
TEST(DurableStore, RealFullDiskOnATmpfs) {
  if (::geteuid() != 0 || ::unshare(CLONE_NEWNS) != 0 ||
      ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
    std::cerr << "RealFullDiskOnATmpfs: needs root to mount a tmpfs; covered by the fault-injecting test\n";
    return;
  }
  std::string mnt = FreshDir("tmpfs");
  std::filesystem::create_directories(mnt);
  ASSERT_EQ(::mount("tmpfs", mnt.c_str(), "tmpfs", 0, "size=2m"), 0) << std::strerror(errno);
  std::string dir = mnt + "/store";
  absl::Status failure;
  uint64_t acknowledged = 0;
  {
    auto store = Open(dir);
    ASSERT_NE(store, nullptr);
    for (int batch = 0; batch < 200 && failure.ok(); ++batch) {
      std::vector<Fact> facts;
      for (int i = 0; i < 200; ++i) {
        facts.push_back(F(absl::StrCat(R"({"type":"person","id":"p-)", batch, "-", i,
                                       R"(","birth_date":"1980-01-01"})")));
      }
      absl::StatusOr<uint64_t> r = store->Append(std::move(facts));
      if (r.ok()) {
        acknowledged = *r;
      } else {
        failure = r.status();
      }
    }
    ASSERT_FALSE(failure.ok()) << "2 MiB never filled up";
    EXPECT_FALSE(store->Health().ok());
    ASSERT_EQ(::mount(nullptr, mnt.c_str(), nullptr, MS_REMOUNT, "size=64m"), 0) << std::strerror(errno);
    absl::Status health;
    for (int i = 0; i < 300 && !(health = store->Health()).ok(); ++i) absl::SleepFor(absl::Milliseconds(10));
    ASSERT_TRUE(health.ok()) << health;
    absl::StatusOr<uint64_t> more = store->Append({F(kPerson)});
    ASSERT_TRUE(more.ok()) << more.status();
    acknowledged = *more;
  }
  auto reopened = Open(dir, false);
  ASSERT_NE(reopened, nullptr);
  EXPECT_EQ(reopened->LastSequence(), acknowledged);
  EXPECT_EQ(reopened->History("pat-7")->size(), 1u);
  ::umount2(mnt.c_str(), MNT_DETACH);
}

TEST(DurableStore, ReadersOpenBesideAWriterAndSeeWhatWasWritten) {
  std::string dir = FreshDir("beside_writer");
  auto writer = Open(dir);
  ASSERT_TRUE(writer->Append({F(kPerson), F(kParent)}).ok());
  DurableStoreOptions ro;
  ro.read_only = true;
  absl::StatusOr<std::unique_ptr<FactStore>> reader = OpenDurableFactStore(dir, ro);
  ASSERT_TRUE(reader.ok()) << reader.status();
  EXPECT_EQ((*reader)->LastSequence(), 2u);
  EXPECT_EQ((*reader)->History("pat-7")->size(), 2u);
  EXPECT_EQ((*reader)->Append({F(kConsent)}).status().code(), absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(writer->Append({F(kConsent)}).ok());
  absl::StatusOr<std::unique_ptr<FactStore>> later = OpenDurableFactStore(dir, ro);
  ASSERT_TRUE(later.ok()) << later.status();
  EXPECT_EQ((*later)->History("pat-7")->size(), 3u);
  // A second writer is still refused.
  EXPECT_EQ(OpenDurableFactStore(dir, {}).status().code(), absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace toegang

namespace toegang {
namespace {

// Patient ids are readable in the store's files: owner only, whatever the umask.
TEST(DurableStore, FilesAreTheOwnersOnlyWhateverTheUmask) {
  std::string dir = FreshDir("owner_only");
  const mode_t old = ::umask(0);
  {
    auto store = Open(dir);
    ASSERT_TRUE(store->Append({F(kPerson), F(kParent)}).ok());
  }
  { auto again = Open(dir, false); }  // flushes the log into table files
  ::umask(old);
  struct stat st;
  ASSERT_EQ(::stat(dir.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  int files = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    ASSERT_EQ(::stat(e.path().c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0077, 0u) << e.path() << " is readable by others";
    ++files;
  }
  EXPECT_GT(files, 5);
}

}  // namespace
}  // namespace toegang
