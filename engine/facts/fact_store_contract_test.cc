// Copyright toegang authors.
//
// The FactStore contract (fact_store.h, DOMAIN D40), one set of tests over both
// stores: the in-memory one and the durable one (engine/rocksdb). Whatever a caller can
// observe through the interface must be the same in each.
#include <filesystem>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "engine/facts/fact_store.h"
#include "engine/rocksdb/rocksdb_store.h"
#include "model/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "model/json.h"
#include "model/patient_index.h"

namespace toegang {
namespace {

using ::testing::HasSubstr;

// A settable clock for arrival stamps.
absl::Time g_now = absl::FromUnixSeconds(1767225600);  // 2026-01-01T00:00:00Z
absl::Time TestClock() { return g_now; }

struct MemoryStore {
  static std::unique_ptr<FactStore> Open(const std::string&) { return NewMemoryFactStore(TestClock); }
};

struct DurableStore_ {
  static std::unique_ptr<FactStore> Open(const std::string& name) {
    const char* tmp = std::getenv("TEST_TMPDIR");
    const std::string dir = absl::StrCat(tmp != nullptr ? tmp : "/tmp", "/contract-", name);
    std::filesystem::remove_all(dir);
    DurableStoreOptions o;
    o.clock = TestClock;
    absl::StatusOr<std::unique_ptr<FactStore>> s = OpenDurableFactStore(dir, o);
    EXPECT_TRUE(s.ok()) << s.status();
    return s.ok() ? *std::move(s) : nullptr;
  }
};

template <typename Store>
class FactStoreContract : public ::testing::Test {
 protected:
  void SetUp() override {
    g_now = absl::FromUnixSeconds(1767225600);
    store_ = Store::Open(::testing::UnitTest::GetInstance()->current_test_info()->name());
    ASSERT_NE(store_, nullptr);
  }
  std::unique_ptr<FactStore> store_;
};

using Stores = ::testing::Types<MemoryStore, DurableStore_>;
TYPED_TEST_SUITE(FactStoreContract, Stores);

Fact F(const std::string& json) {
  absl::StatusOr<Fact> f = ParseFactJson(json);
  EXPECT_TRUE(f.ok()) << json << ": " << f.status();
  return *f;
}

const char kPerson[] = R"({"type":"person","id":"pat-7","birth_date":"2009-01-10"})";
const char kParent[] = R"({"type":"relationship","id":"rel-7","subject":"par-7","relation":"parent_with_authority","object":"pat-7"})";
const char kConsent[] = R"({"type":"consent","id":"con-7","patient":"pat-7","granted_by":"pat-7","to":{"actor":"par-7"},"purposes":["patient_request"],"categories":["medical"],"actions":["read"],"from":"2026-01-01T00:00:00+01:00"})";
const char kWithdrawal[] = R"({"type":"withdrawal","consent":"con-7","by":"pat-7","at":"2026-06-01T00:00:00+02:00"})";
const char kOther[] = R"({"type":"person","id":"pat-8","birth_date":"1980-02-02"})";
const char kSubstitute[] = R"({"type":"relationship","subject":"clin-2","relation":"substitute_for","object":"clin-1"})";

TYPED_TEST(FactStoreContract, D40_AppendNumbersAndStampsEveryFact) {
  FactStore& store = *this->store_;
  EXPECT_EQ(store.LastSequence(), 0u);
  absl::StatusOr<uint64_t> last = store.Append({F(kPerson), F(kParent)});
  ASSERT_TRUE(last.ok()) << last.status();
  EXPECT_EQ(*last, 2u);
  g_now += absl::Hours(1);
  EXPECT_EQ(*store.Append({F(kConsent)}), 3u);
  EXPECT_EQ(store.LastSequence(), 3u);
  absl::StatusOr<std::vector<Fact>> history = store.History("pat-7");
  ASSERT_TRUE(history.ok());
  ASSERT_EQ(history->size(), 3u);
  for (size_t i = 0; i < history->size(); ++i) EXPECT_EQ((*history)[i].provenance.seq, i + 1);
  EXPECT_EQ((*history)[0].provenance.arrival, absl::FromUnixSeconds(1767225600));
  EXPECT_EQ((*history)[2].provenance.arrival, g_now);
}

TYPED_TEST(FactStoreContract, D40_ABadBatchStoresNothingAndNamesTheFact) {
  FactStore& store = *this->store_;
  ASSERT_TRUE(store.Append({F(kPerson)}).ok());
  // The second fact withdraws a consent nobody recorded.
  absl::StatusOr<uint64_t> refused = store.Append(
      {F(kParent), F(R"({"type":"withdrawal","consent":"con-404","by":"pat-7","at":"2026-06-01T00:00:00+02:00"})")});
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(FactPositionOf(refused.status()), 2u);
  EXPECT_EQ(store.LastSequence(), 1u);
  EXPECT_EQ(store.History("pat-7")->size(), 1u);
  // The numbers go on where they were: nothing was given out to the refused batch.
  EXPECT_EQ(*store.Append({F(kParent)}), 2u);
}

TYPED_TEST(FactStoreContract, D40_IdsAreUniqueAcrossBatchesAndWithinOne) {
  FactStore& store = *this->store_;
  ASSERT_TRUE(store.Append({F(kPerson), F(kConsent)}).ok());
  absl::StatusOr<uint64_t> again = store.Append({F(kConsent)});
  EXPECT_EQ(again.status().code(), absl::StatusCode::kAlreadyExists) << again.status();
  absl::StatusOr<uint64_t> twice = store.Append({F(kOther), F(kOther)});
  EXPECT_EQ(twice.status().code(), absl::StatusCode::kAlreadyExists) << twice.status();
  EXPECT_EQ(FactPositionOf(twice.status()), 2u);
  EXPECT_THAT(std::string(twice.status().message()), HasSubstr("pat-8"));
  EXPECT_EQ(store.LastSequence(), 2u);
}

// The index from parties to patients (model/patient_index.h), which lists the patients
// an actor may open: written with the facts, in id order, each patient once.
TYPED_TEST(FactStoreContract, IndexFilesPatientsUnderThePartiesTheirFactsName) {
  FactStore& store = *this->store_;
  ASSERT_TRUE(store.Append({F(kPerson), F(kParent), F(kConsent), F(kOther), F(kSubstitute)}).ok());
  ASSERT_TRUE(store
                  .Append({F(R"({"type":"relationship","subject":"clin-1","relation":"treating","object":"pat-9"})"),
                           F(R"({"type":"relationship","subject":"gp-1","relation":"registered_with","object":"pat-8"})"),
                           F(R"({"type":"consent","id":"con-8","patient":"pat-8","granted_by":"pat-8","to":{"role":"researcher"},"purposes":["research"],"categories":["medical"],"actions":["read"]})"),
                           F(R"({"type":"consent","id":"con-9","patient":"pat-9","granted_by":"pat-9","to":{"organization_category":"RPZAC005"},"purposes":["treatment"],"categories":["medical"],"actions":["read"]})"),
                           F(R"({"type":"relationship","subject":"par-7","relation":"parent_with_authority","object":"pat-10"})")})
                  .ok());
  auto list = [&](std::vector<std::string> keys, absl::string_view after = "", size_t limit = 100) {
    absl::StatusOr<std::vector<std::string>> got = store.IndexedPatients(keys, after, limit);
    EXPECT_TRUE(got.ok()) << got.status();
    return got.ok() ? *got : std::vector<std::string>{"error"};
  };
  using V = std::vector<std::string>;
  EXPECT_EQ(list({"*"}), (V{"pat-10", "pat-7", "pat-8", "pat-9"}));  // byte order
  EXPECT_EQ(list({"apar-7"}), (V{"pat-10", "pat-7"}));             // a relationship and a consent, once
  EXPECT_EQ(list({"=pat-7"}), (V{"pat-7"}));                       // the patient themself
  EXPECT_EQ(list({"=pat-7"}, "pat-7"), V{});
  EXPECT_EQ(list({"=par-7"}), V{});                                // no facts about par-7
  EXPECT_EQ(list({"apat-7"}), V{});
  EXPECT_EQ(list({"aclin-1"}), (V{"pat-9"}));                      // not the substitute_for coverage
  EXPECT_EQ(list({"aclin-2"}), V{});
  EXPECT_EQ(list({"ogp-1"}), (V{"pat-8"}));
  EXPECT_EQ(list({"rresearcher"}), (V{"pat-8"}));
  EXPECT_EQ(list({"kRPZAC005"}), (V{"pat-9"}));
  // Several keys merge; `after` and `limit` page through.
  EXPECT_EQ(list({"apar-7", "ogp-1", "kRPZAC005", "nothing"}), (V{"pat-10", "pat-7", "pat-8", "pat-9"}));
  EXPECT_EQ(list({"apar-7", "ogp-1", "kRPZAC005"}, "pat-7", 2), (V{"pat-8", "pat-9"}));
  EXPECT_EQ(list({"apar-7", "ogp-1", "kRPZAC005"}, "pat-7x", 1), (V{"pat-8"}));
  EXPECT_EQ(list({"*"}, "pat-9"), V{});
  EXPECT_EQ(list({"*"}, "pat-1"), (V{"pat-10", "pat-7", "pat-8", "pat-9"}));  // "pat-1" is no patient
  EXPECT_EQ(list({"*"}, "", 2), (V{"pat-10", "pat-7"}));
  EXPECT_EQ(list({"*", "=pat-8", "apar-7"}, "pat-10"), (V{"pat-7", "pat-8", "pat-9"}));
  EXPECT_EQ(list({}), V{});
  // A refused batch indexes nothing.
  ASSERT_FALSE(store
                   .Append({F(R"({"type":"relationship","subject":"clin-5","relation":"treating","object":"pat-11"})"),
                            F(kOther)})
                   .ok());
  EXPECT_EQ(list({"aclin-5"}), V{});
  EXPECT_EQ(list({"*"}, "pat-10"), (V{"pat-7", "pat-8", "pat-9"}));

  // A pass over many records reads what Patient reads, cached or not.
  ASSERT_TRUE(store.Patient("pat-8").ok());  // one of them in the cache
  std::vector<absl::string_view> ids = {"pat-10", "pat-7", "pat-8", "pat-9", "pat-99"};
  std::vector<absl::StatusOr<std::shared_ptr<const PatientRecord>>> scanned = store.ScanPatients(ids);
  ASSERT_EQ(scanned.size(), ids.size());
  for (size_t i = 0; i < ids.size(); ++i) {
    SCOPED_TRACE(ids[i]);
    ASSERT_TRUE(scanned[i].ok()) << scanned[i].status();
    const PatientRecord& got = **scanned[i];
    const std::shared_ptr<const PatientRecord> read = *store.Patient(ids[i]);
    const PatientRecord& want = *read;
    EXPECT_EQ(got.patient, ids[i]);
    EXPECT_EQ(got.person.has_value(), want.person.has_value());
    EXPECT_EQ(got.relationships.size(), want.relationships.size());
    EXPECT_EQ(got.consents.size(), want.consents.size());
    EXPECT_EQ(got.withdrawals.size(), want.withdrawals.size());
  }
  EXPECT_EQ((*scanned[1])->consents.size(), 1u);
  EXPECT_EQ((*scanned[3])->relationships.size(), 1u);
}

TYPED_TEST(FactStoreContract, D21_WithdrawalInTheSameBatchAsItsConsentIsFiledUnderThePatient) {
  FactStore& store = *this->store_;
  ASSERT_TRUE(store.Append({F(kPerson), F(kConsent), F(kWithdrawal)}).ok());
  absl::StatusOr<std::shared_ptr<const PatientRecord>> record = store.Patient("pat-7");
  ASSERT_TRUE(record.ok());
  EXPECT_EQ((*record)->consents.size(), 1u);
  EXPECT_EQ((*record)->withdrawals.size(), 1u);
  EXPECT_EQ(store.History("pat-7")->size(), 3u);
}

TYPED_TEST(FactStoreContract, D40_AsOfSeesOnlyWhatHadArrived) {
  FactStore& store = *this->store_;
  ASSERT_TRUE(store.Append({F(kPerson), F(kConsent)}).ok());
  const absl::Time before = g_now + absl::Minutes(30);
  g_now += absl::Hours(1);
  ASSERT_TRUE(store.Append({F(kWithdrawal)}).ok());
  EXPECT_EQ(store.History("pat-7", before)->size(), 2u);
  EXPECT_EQ(store.History("pat-7")->size(), 3u);
  EXPECT_EQ((*store.Patient("pat-7", before))->withdrawals.size(), 0u);
  EXPECT_EQ((*store.Patient("pat-7"))->withdrawals.size(), 1u);
  EXPECT_TRUE(store.History("pat-7", absl::FromUnixSeconds(0))->empty());
}

TYPED_TEST(FactStoreContract, ARecordIsASnapshotThatLaterAppendsDoNotChange) {
  FactStore& store = *this->store_;
  ASSERT_TRUE(store.Append({F(kPerson), F(kConsent)}).ok());
  absl::StatusOr<std::shared_ptr<const PatientRecord>> then = store.Patient("pat-7");
  ASSERT_TRUE(then.ok());
  ASSERT_TRUE(store.Append({F(kWithdrawal)}).ok());
  EXPECT_EQ((*then)->withdrawals.size(), 0u);
  EXPECT_EQ((*store.Patient("pat-7"))->withdrawals.size(), 1u);
}

// Patients() (a batch of decisions reads its records with it) gives each patient what
// Patient() gives: known, unknown and repeated patients, before and after the records
// are cached.
TYPED_TEST(FactStoreContract, PatientsGivesEachWhatPatientGives) {
  FactStore& store = *this->store_;
  ASSERT_TRUE(store.Append({F(kPerson), F(kConsent), F(kOther), F(kParent)}).ok());
  const std::vector<absl::string_view> asked = {"pat-7", "pat-404", "pat-8", "pat-7"};
  for (int round = 0; round < 2; ++round) {
    SCOPED_TRACE(round);
    std::vector<absl::StatusOr<std::shared_ptr<const PatientRecord>>> got = store.Patients(asked);
    ASSERT_EQ(got.size(), asked.size());
    for (size_t i = 0; i < asked.size(); ++i) {
      SCOPED_TRACE(asked[i]);
      ASSERT_TRUE(got[i].ok()) << got[i].status();
      absl::StatusOr<std::shared_ptr<const PatientRecord>> one = store.Patient(asked[i]);
      ASSERT_TRUE(one.ok());
      EXPECT_EQ((*got[i])->patient, asked[i]);
      EXPECT_EQ((*got[i])->person.has_value(), (*one)->person.has_value());
      EXPECT_EQ((*got[i])->relationships.size(), (*one)->relationships.size());
      EXPECT_EQ((*got[i])->consents.size(), (*one)->consents.size());
    }
    EXPECT_EQ((*got[0])->consents.size(), 1u);
    EXPECT_FALSE((*got[1])->person.has_value());
  }
}

TYPED_TEST(FactStoreContract, D1_AnotherPatientsFactsAreNotInTheRecord) {
  FactStore& store = *this->store_;
  ASSERT_TRUE(store.Append({F(kPerson), F(kOther), F(kParent)}).ok());
  absl::StatusOr<std::vector<Fact>> history = store.History("pat-8");
  ASSERT_TRUE(history.ok());
  ASSERT_EQ(history->size(), 1u);
  EXPECT_EQ(std::get<Person>((*history)[0].body).id, "pat-8");
  EXPECT_EQ((*store.Patient("pat-8"))->relationships.size(), 0u);
  EXPECT_TRUE(store.History("pat-404")->empty());
}

TYPED_TEST(FactStoreContract, D11_SubstitutionsAreFiledUnderTheClinicianAndReadAsOf) {
  FactStore& store = *this->store_;
  const absl::Time before = g_now - absl::Seconds(1);
  ASSERT_TRUE(store.Append({F(kSubstitute)}).ok());
  auto subs = store.SubstitutionsOf("clin-2");
  ASSERT_TRUE(subs.ok());
  ASSERT_EQ((*subs)->size(), 1u);
  EXPECT_EQ((**subs)[0].value.object, "clin-1");
  EXPECT_TRUE((*store.SubstitutionsOf("clin-2", before))->empty());
  EXPECT_TRUE((*store.SubstitutionsOf("clin-1"))->empty());
}

// A care-provider category is about an organisation, not a patient: filed under it (a
// decision naming the category reads it there), read as of an instant, in no history.
TYPED_TEST(FactStoreContract, OrgCategoriesAreFiledUnderTheOrganisationAndReadAsOf) {
  FactStore& store = *this->store_;
  const absl::Time before = g_now - absl::Seconds(1);
  ASSERT_TRUE(store.Append({F(R"({"type":"org_category","organization":"apotheek-1","category":"RPZAC005"})"),
                            F(R"({"type":"org_category","id":"oc-2","organization":"apotheek-1","category":"RPZAC001","until":"2027-01-01T00:00:00+01:00"})"),
                            F(R"({"type":"org_category","organization":"huisarts-1","category":"RPZAC001"})")})
                  .ok());
  auto mine = store.CategoriesOf("apotheek-1");
  ASSERT_TRUE(mine.ok()) << mine.status();
  ASSERT_EQ((*mine)->size(), 2u);
  EXPECT_EQ((**mine)[0].value.category, "RPZAC005");
  EXPECT_EQ((**mine)[1].value.id, "oc-2");
  EXPECT_EQ((**mine)[1].value.window.until, *ParseInstant("2027-01-01T00:00:00+01:00"));
  EXPECT_EQ((**mine)[1].provenance.seq, 2u);
  EXPECT_TRUE((*store.CategoriesOf("apotheek-1", before))->empty());
  EXPECT_TRUE((*store.CategoriesOf("nobody"))->empty());
  EXPECT_TRUE((*store.CategoriesOf("RPZAC005"))->empty());
  // Ids are unique as any other: the same id again is refused, nothing stored.
  absl::StatusOr<uint64_t> again =
      store.Append({F(R"({"type":"org_category","id":"oc-2","organization":"x","category":"RPZAC005"})")});
  EXPECT_FALSE(again.ok());
  EXPECT_TRUE((*store.CategoriesOf("x"))->empty());
  // A later append is seen by the next read (the durable store caches the list).
  ASSERT_TRUE(store.Append({F(R"({"type":"org_category","organization":"apotheek-1","category":"RPZAC104"})")}).ok());
  EXPECT_EQ((*store.CategoriesOf("apotheek-1"))->size(), 3u);
}

// D36: who may withdraw an objection is judged on the stored facts and on those of the
// same batch before it; a refusal names the fact and stores nothing.
TYPED_TEST(FactStoreContract, D36_OnlyWhoMayWithdrawAnObjectionDoes) {
  FactStore& store = *this->store_;
  const char kObjection[] = R"({"type":"objection","id":"obj-7","patient":"pat-7","by":"pat-7","to":{"actor":"par-7"},"purposes":["patient_request"],"from":"2026-01-01T00:00:00+01:00"})";
  ASSERT_TRUE(store.Append({F(kPerson), F(kParent), F(kObjection)}).ok());  // pat-7 is 17
  absl::StatusOr<uint64_t> by_parent = store.Append(
      {F(R"({"type":"withdrawal","consent":"obj-7","by":"par-7","at":"2026-02-01T00:00:00+01:00"})")});
  ASSERT_EQ(by_parent.status().code(), absl::StatusCode::kInvalidArgument) << by_parent.status();
  EXPECT_EQ(FactPositionOf(by_parent.status()), 1u);
  EXPECT_THAT(std::string(by_parent.status().message()), HasSubstr("may not withdraw objection 'obj-7'"));
  EXPECT_EQ(store.LastSequence(), 3u);
  EXPECT_TRUE(store.Append({F(R"({"type":"withdrawal","consent":"obj-7","by":"pat-7","at":"2026-02-01T00:00:00+01:00"})")})
                  .ok());
  // In one batch with what it withdraws: judged on the batch's facts before it.
  absl::StatusOr<uint64_t> same_batch = store.Append(
      {F(R"({"type":"restriction","id":"res-7","patient":"pat-7","by":"clin-7","purposes":["treatment"],"from":"2026-01-01T00:00:00+01:00"})"),
       F(R"({"type":"withdrawal","consent":"res-7","by":"par-7","at":"2026-02-01T00:00:00+01:00"})")});
  ASSERT_FALSE(same_batch.ok());
  EXPECT_EQ(FactPositionOf(same_batch.status()), 2u);
  EXPECT_THAT(std::string(same_batch.status().message()), HasSubstr("its author ('clin-7')"));
  EXPECT_EQ(store.LastSequence(), 4u);
}

TYPED_TEST(FactStoreContract, ConcurrentAppendsGetDistinctConsecutiveNumbers) {
  FactStore& store = *this->store_;
  constexpr int kThreads = 4, kEach = 25;
  std::vector<std::thread> threads;
  std::vector<std::vector<uint64_t>> got(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        absl::StatusOr<uint64_t> last = store.Append(
            {F(absl::StrCat(R"({"type":"person","id":"pat-)", t, "-", i, R"(","birth_date":"1990-01-01"})"))});
        EXPECT_TRUE(last.ok()) << last.status();
        if (last.ok()) got[t].push_back(*last);
      }
    });
  }
  for (std::thread& t : threads) t.join();
  std::set<uint64_t> all;
  for (const auto& g : got) all.insert(g.begin(), g.end());
  EXPECT_EQ(all.size(), static_cast<size_t>(kThreads * kEach));
  EXPECT_EQ(*all.begin(), 1u);
  EXPECT_EQ(*all.rbegin(), static_cast<uint64_t>(kThreads * kEach));
  EXPECT_EQ(store.LastSequence(), static_cast<uint64_t>(kThreads * kEach));
}

// Facts as a replicated history numbers and stamps them.
std::vector<Fact> Numbered(std::vector<Fact> facts, uint64_t first, absl::Time arrival) {
  for (Fact& f : facts) {
    f.provenance.seq = first++;
    f.provenance.arrival = arrival;
  }
  return facts;
}

TYPED_TEST(FactStoreContract, ReplicatedFactsKeepTheirNumbersAndArrival) {
  FactStore& store = *this->store_;
  ASSERT_TRUE(store.BindReplica("h1").ok());
  const absl::Time t1 = absl::FromUnixSeconds(1767300000);
  absl::StatusOr<uint64_t> last = store.AppendReplicated(Numbered({F(kPerson), F(kParent)}, 1, t1));
  ASSERT_TRUE(last.ok()) << last.status();
  EXPECT_EQ(*last, 2u);
  ASSERT_TRUE(store.AppendReplicated(Numbered({F(kConsent)}, 3, t1 + absl::Seconds(5))).ok());
  EXPECT_EQ(store.LastSequence(), 3u);
  absl::StatusOr<std::vector<Fact>> history = store.History("pat-7");
  ASSERT_TRUE(history.ok());
  ASSERT_EQ(history->size(), 3u);
  EXPECT_EQ((*history)[2].provenance.seq, 3u);
  EXPECT_EQ((*history)[2].provenance.arrival, t1 + absl::Seconds(5));  // not the store's clock
  // As of between the two: the consent had not arrived.
  EXPECT_EQ(store.History("pat-7", t1 + absl::Seconds(1))->size(), 2u);
  EXPECT_EQ((*store.Patient("pat-7"))->consents.size(), 1u);
}

TYPED_TEST(FactStoreContract, ReplicatedFactsThatSkipOrRepeatAreRefusedWhole) {
  FactStore& store = *this->store_;
  const absl::Time t1 = absl::FromUnixSeconds(1767300000);
  ASSERT_TRUE(store.AppendReplicated(Numbered({F(kPerson)}, 1, t1)).ok());
  absl::StatusOr<uint64_t> skip = store.AppendReplicated(Numbered({F(kParent)}, 3, t1));
  EXPECT_EQ(skip.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(skip.status().message()), HasSubstr("numbered 3 where 2 was due"));
  absl::StatusOr<uint64_t> repeat = store.AppendReplicated(Numbered({F(kParent)}, 1, t1));
  EXPECT_EQ(repeat.status().code(), absl::StatusCode::kDataLoss);
  // Checked as Append checks: a duplicate id refuses the whole batch.
  absl::StatusOr<uint64_t> dup = store.AppendReplicated(Numbered({F(kParent), F(kPerson)}, 2, t1));
  EXPECT_FALSE(dup.ok());
  EXPECT_THAT(std::string(dup.status().message()), HasSubstr("fact 2"));
  EXPECT_EQ(store.LastSequence(), 1u);
  EXPECT_EQ(store.History("pat-7")->size(), 1u);
}

TYPED_TEST(FactStoreContract, CheckJudgesABatchAndStoresNothing) {
  FactStore& store = *this->store_;
  ASSERT_TRUE(store.Append({F(kPerson), F(kParent), F(kConsent)}).ok());
  EXPECT_TRUE(store.Check({F(kWithdrawal)}).ok());
  absl::Status dup = store.Check({F(kOther), F(kConsent)});
  EXPECT_FALSE(dup.ok());
  EXPECT_THAT(std::string(dup.message()), HasSubstr("fact 2"));
  EXPECT_EQ(store.LastSequence(), 3u);
  EXPECT_TRUE(store.History("pat-8")->empty());
}

TYPED_TEST(FactStoreContract, AReplicaBindsToOneHistoryAndOnlyWhenEmpty) {
  FactStore& store = *this->store_;
  EXPECT_EQ(*store.ReplicaOf(), "");
  ASSERT_TRUE(store.BindReplica("h1").ok());
  EXPECT_TRUE(store.BindReplica("h1").ok());
  EXPECT_EQ(*store.ReplicaOf(), "h1");
  absl::Status other = store.BindReplica("h2");
  EXPECT_EQ(other.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(other.message()), HasSubstr("replica of history h1"));

  std::unique_ptr<FactStore> local = TypeParam::Open("local-history");
  ASSERT_TRUE(local->Append({F(kPerson)}).ok());
  absl::Status holds = local->BindReplica("h1");
  EXPECT_EQ(holds.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(holds.message()), HasSubstr("1 facts recorded without replication"));
}


// Retention (FactStore::Remove): a removed fact leaves its tombstone in its place, its
// id taken and its patient out of the index where nothing else files them there.
TYPED_TEST(FactStoreContract, D60_RemoveLeavesTombstonesKeepsIdsAndDropsIndexEntries) {
  FactStore& store = *this->store_;
  ASSERT_TRUE(store.Append({F(kPerson), F(kParent), F(kConsent), F(kOther)}).ok());
  const absl::Time removed_at = g_now + absl::Hours(2);
  FactRemoval r;
  r.patient = "pat-7";
  r.seqs = {1, 3};
  r.removed_at = removed_at;
  r.term = "dossier_20_years";
  r.covered_seq = 4;
  ASSERT_TRUE(store.Remove(r, nullptr).ok());

  absl::StatusOr<std::vector<Fact>> history = store.History("pat-7");
  ASSERT_TRUE(history.ok());
  ASSERT_EQ(history->size(), 3u);
  const auto* person = std::get_if<Removed>(&(*history)[0].body);
  ASSERT_NE(person, nullptr);
  EXPECT_EQ(person->type, "person");
  EXPECT_EQ(person->id, "pat-7");
  EXPECT_EQ(person->removed_at, removed_at);
  EXPECT_EQ(person->term, "dossier_20_years");
  EXPECT_EQ(person->covered_seq, 4u);
  EXPECT_EQ((*history)[0].provenance.seq, 1u);
  EXPECT_TRUE(std::holds_alternative<Relationship>((*history)[1].body));
  const auto* consent = std::get_if<Removed>(&(*history)[2].body);
  ASSERT_NE(consent, nullptr);
  EXPECT_EQ(consent->type, "consent");
  EXPECT_EQ(consent->id, "con-7");

  std::shared_ptr<const PatientRecord> rec = *store.Patient("pat-7");
  EXPECT_FALSE(rec->person.has_value());
  EXPECT_TRUE(rec->consents.empty());
  EXPECT_EQ(rec->relationships.size(), 1u);
  EXPECT_EQ(rec->removed.size(), 2u);
  // The relationship still files pat-7 under par-7 (as the consent did).
  EXPECT_EQ(*store.IndexedPatients({ActorIndexKey("par-7")}, "", 10), std::vector<std::string>{"pat-7"});

  // Ids stay taken; what was removed cannot be withdrawn.
  absl::Status dup = store.Append({F(kConsent)}).status();
  EXPECT_EQ(dup.code(), absl::StatusCode::kAlreadyExists) << dup;
  absl::Status withdrawn = store.Append({F(kWithdrawal)}).status();
  EXPECT_EQ(withdrawn.code(), absl::StatusCode::kInvalidArgument) << withdrawn;
  EXPECT_THAT(std::string(withdrawn.message()), HasSubstr("was removed by retention"));

  // Applying again changes nothing; the last fact filing pat-7 under par-7 goes.
  ASSERT_TRUE(store.Remove(r, nullptr).ok());
  EXPECT_EQ(store.History("pat-7")->size(), 3u);
  r.seqs = {2};
  ASSERT_TRUE(store.Remove(r, nullptr).ok());
  EXPECT_TRUE(store.IndexedPatients({ActorIndexKey("par-7")}, "", 10)->empty());
  EXPECT_EQ(*store.IndexedPatients({std::string(kEveryPatientKey)}, "", 10),
            (std::vector<std::string>{"pat-7", "pat-8"}));

  // As the store knew it before the removal, the record misses what went.
  EXPECT_TRUE((*store.Patient("pat-7", removed_at - absl::Seconds(1)))->MissesRemovedFacts());
  EXPECT_FALSE((*store.Patient("pat-7"))->MissesRemovedFacts());
  EXPECT_EQ(store.LastSequence(), 4u);
}

TYPED_TEST(FactStoreContract, D60_RemoveRefusesWhatIsNotThePatientsOrSaysWhy) {
  FactStore& store = *this->store_;
  ASSERT_TRUE(store.Append({F(kPerson), F(kParent), F(kOther)}).ok());
  ASSERT_TRUE(store
                  .Append({F(R"({"type":"erasure_request","id":"era-7","patient":"pat-7","by":"par-7",)"
                             R"("at":"2018-01-01T00:00:00Z"})")})
                  .ok());
  FactRemoval r;
  r.patient = "pat-7";
  r.removed_at = g_now;
  r.term = "erasure_request era-7";
  r.seqs = {1, 3};  // 3 is pat-8's
  absl::Status other = store.Remove(r, nullptr);
  EXPECT_EQ(other.code(), absl::StatusCode::kInvalidArgument) << other;
  r.seqs = {1, 4};  // 4 is the erasure request itself
  absl::Status request = store.Remove(r, nullptr);
  EXPECT_EQ(request.code(), absl::StatusCode::kInvalidArgument) << request;
  EXPECT_THAT(std::string(request.message()), HasSubstr("erasure_request"));
  // Nothing changed by either.
  EXPECT_TRUE((*store.Patient("pat-7"))->removed.empty());
  EXPECT_TRUE((*store.Patient("pat-7"))->person.has_value());
  // An access-log entry that is not stored: refused by the log.
  std::unique_ptr<AuditStorage> log = NewMemoryAuditStorage();
  r.seqs = {1};
  r.access_log = {{9, "tombstone", "pat-7", 0}};
  EXPECT_EQ(store.Remove(r, log.get()).code(), absl::StatusCode::kNotFound);
  ASSERT_TRUE(log->Append({{9, "record", "pat-7", 0}}, "head", true).ok());
  ASSERT_TRUE(store.Remove(r, log.get()).ok());
  EXPECT_EQ(*log->ReadEntry(9), "tombstone");
}

}  // namespace
}  // namespace toegang
