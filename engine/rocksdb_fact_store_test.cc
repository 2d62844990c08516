// Copyright toegang authors.
//
// The durable store: atomic rejection, as-of history, replay around a withdrawal,
// reopening, format version, corruption, concurrent writers (group commit), and the
// same contract as the in-memory twin.
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "engine/fact_store.h"
#include "engine/testing/crash_harness.h"
#include "engine/testing/raw_store.h"
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

std::unique_ptr<FactStore> Open(const std::string& dir, bool create = true) {
  DurableStoreOptions o;
  o.clock = TestClock;
  o.create_if_missing = create;
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
  Options options;
  options.store = std::move(store);
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

TEST(DurableStore, ReopenKeepsEverythingAndTheSequence) {
  std::string dir = FreshDir("reopen");
  {
    auto store = Open(dir);
    ASSERT_TRUE(store->Append({F(kPerson), F(kParent), F(kConsent)}).ok());
    ASSERT_TRUE(store->Append({F(R"({"type":"relationship","subject":"clin-2","relation":"substitute_for","object":"clin-1","from":"2026-07-01T00:00:00+02:00"})")}).ok());
  }
  auto store = Open(dir, /*create=*/false);
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->LastSequence(), 4u);
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
  EXPECT_EQ(store->LastSequence(), 5u);
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

}  // namespace
}  // namespace toegang
