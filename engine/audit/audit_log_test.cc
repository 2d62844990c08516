// Copyright toegang authors.
//
// The access log (NEN 7513, DOMAIN D50-D51): every decision logged with its fields,
// the patient's overview, tamper evidence on raw RocksDB edits (changed, removed,
// reordered), purge then verify, back-pressure that never loses a record, fail-closed
// decisions when the log cannot be written, and a crash in durable mode.
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "base/sync.h"
#include "base/testing/thread_cpus.h"
#include "base/threads.h"
#include "engine/audit/audit_log.h"
#include "engine/testing/crash_harness.h"
#include "engine/rocksdb/raw_store.h"
#include "engine/testing/engine_factory.h"
#include "engine/toegang.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "model/json.h"
#include "schemas/audit_generated.h"
#include "flatbuffers/flatbuffers.h"

namespace toegang {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

using testing::FreshDir;

AccessRequest Req(const std::string& actor, Role role, const std::string& patient, int64_t at_s) {
  AccessRequest r;
  r.at = absl::FromUnixSeconds(at_s);
  r.actor = {actor, role, "praktijk-a"};
  r.patient = patient;
  return r;
}

Fact Treats(const std::string& clinician, const std::string& patient) {
  return Fact{Relationship{"", clinician, Relation::kTreating, patient, {}}, {}};
}

std::unique_ptr<Engine> OpenEngine(const std::string& dir, AuditOptions audit = {}) {
  Options options;
  options.db_path = dir;
  options.audit = audit;
  absl::StatusOr<std::unique_ptr<Engine>> e = Engine::Open(std::move(options));
  EXPECT_TRUE(e.ok()) << e.status();
  return e.ok() ? *std::move(e) : nullptr;
}

std::string BigEndian(uint64_t v) {
  std::string s(8, '\0');
  for (int i = 7; i >= 0; --i, v >>= 8) s[i] = static_cast<char>(v & 0xff);
  return s;
}

// Four decisions on pat-1 and one on pat-2, logged as one batch (records 1-5) in a
// fresh store; returns the dir.
std::string StoreWithFiveRecords(const std::string& name) {
  std::string dir = FreshDir(name);
  auto engine = OpenEngine(dir);
  EXPECT_TRUE(engine->Record({Treats("clin-1", "pat-1")}).ok());
  std::vector<AccessRequest> requests;
  for (int i = 0; i < 4; ++i) requests.push_back(Req(i % 2 ? "clin-1" : "clin-2", Role::kClinician, "pat-1", 1780000000 + i * 3600));
  requests.push_back(Req("clin-1", Role::kClinician, "pat-2", 1780000000));
  engine->DecideBatch(requests);
  return dir;
}

constexpr char kCheckpointKey[] = "0123456789abcdef-checkpoint-key";

AuditVerifyReport VerifyStore(const std::string& dir, std::string key = kCheckpointKey) {
  AuditOptions audit;
  audit.checkpoint_key = std::move(key);
  auto engine = OpenEngine(dir, audit);
  absl::StatusOr<AuditVerifyReport> r = engine->VerifyAccessLog();
  EXPECT_TRUE(r.ok()) << r.status();
  return r.ok() ? *r : AuditVerifyReport{};
}

TEST(AuditLog, D50_EveryDecisionIsLoggedWithItsFields) {
  std::string dir = FreshDir("fields");
  auto engine = OpenEngine(dir);
  ASSERT_TRUE(engine->Record({Treats("clin-1", "pat-1")}).ok());
  AccessRequest emergency = Req("clin-5", Role::kClinician, "pat-1", 1780003600);
  emergency.purpose = Purpose::kEmergency;
  emergency.emergency = true;
  emergency.emergency_justification = "unconscious at ER";
  EngineDecision permit = engine->Decide(Req("clin-1", Role::kClinician, "pat-1", 1780000000));
  EngineDecision deny = engine->Decide(Req("clin-2", Role::kClinician, "pat-1", 1780001800));
  EngineDecision glass = engine->Decide(emergency);
  ASSERT_TRUE(permit.decision.permitted());
  ASSERT_FALSE(deny.decision.permitted());
  ASSERT_TRUE(glass.decision.permitted());
  absl::StatusOr<std::vector<AuditEvent>> log =
      engine->PatientAccesses("pat-1", absl::InfinitePast(), absl::InfiniteFuture());
  ASSERT_TRUE(log.ok()) << log.status();
  ASSERT_EQ(log->size(), 3u);
  // Newest first.
  const AuditEvent& e = (*log)[0];
  EXPECT_EQ(e.event_id, glass.decision_id);
  EXPECT_EQ(e.at, emergency.at);
  EXPECT_EQ(e.patient, "pat-1");
  EXPECT_EQ(e.actor.id, "clin-5");
  EXPECT_EQ(e.actor.role, Role::kClinician);
  EXPECT_EQ(e.actor.organization, "praktijk-a");
  EXPECT_EQ(e.purpose, Purpose::kEmergency);
  EXPECT_TRUE(e.permitted);
  EXPECT_EQ(e.legal_basis, LegalBasis::kVitalInterest);
  EXPECT_TRUE(e.emergency);
  EXPECT_EQ(e.justification, "unconscious at ER");
  EXPECT_EQ(e.policy, "wgbo-default@1");
  EXPECT_THAT(e.obligations, ::testing::Contains(Obligation::kEmergencyReview));
  EXPECT_FALSE((*log)[1].permitted);
  EXPECT_EQ((*log)[1].reasons[0], Reason::kNoTreatmentRelationship);
  EXPECT_EQ((*log)[2].event_id, permit.decision_id);
  // By period: [from, until).
  auto period = engine->PatientAccesses("pat-1", absl::FromUnixSeconds(1780001800), absl::FromUnixSeconds(1780003600));
  ASSERT_TRUE(period.ok());
  ASSERT_EQ(period->size(), 1u);
  EXPECT_EQ((*period)[0].event_id, deny.decision_id);
  // Replays are logged (verify counts them) but are no access to the dossier.
  engine->DecideAsOf(Req("clin-1", Role::kClinician, "pat-1", 1780000000), absl::Now());
  EXPECT_EQ(engine->PatientAccesses("pat-1", absl::InfinitePast(), absl::InfiniteFuture())->size(), 3u);
  absl::StatusOr<AuditVerifyReport> v = engine->VerifyAccessLog();
  ASSERT_TRUE(v.ok());
  EXPECT_TRUE(v->ok) << v->problem;
  EXPECT_EQ(v->records, 4u);
}

// Every field of a record survives the queue (its body encoded by the deciding thread) and the store.
// Every field of `want` as `have` read it back from the log; `have` numbered by it.
void ExpectSameFields(const AuditEvent& have, const AuditEvent& want) {
  SCOPED_TRACE(want.event_id);
  EXPECT_EQ(have.event_id, want.event_id);
  EXPECT_EQ(have.at, want.at);
  EXPECT_EQ(have.patient, want.patient);
  EXPECT_EQ(have.actor.id, want.actor.id);
  EXPECT_EQ(have.actor.role, want.actor.role);
  EXPECT_EQ(have.actor.organization, want.actor.organization);
  EXPECT_EQ(have.action, want.action);
  EXPECT_EQ(have.category, want.category);
  EXPECT_EQ(have.purpose, want.purpose);
  EXPECT_EQ(have.permitted, want.permitted);
  EXPECT_EQ(have.reasons, want.reasons);
  EXPECT_EQ(have.legal_basis, want.legal_basis);
  EXPECT_EQ(have.obligations, want.obligations);
  EXPECT_EQ(have.consents, want.consents);
  EXPECT_EQ(have.emergency, want.emergency);
  EXPECT_EQ(have.justification, want.justification);
  EXPECT_EQ(have.policy, want.policy);
  EXPECT_EQ(have.rule, want.rule);
  EXPECT_EQ(have.error, want.error);
  EXPECT_EQ(have.recipient, want.recipient);
  EXPECT_EQ(have.age_band, want.age_band);
  EXPECT_EQ(have.replay_as_of, want.replay_as_of);
  EXPECT_NE(have.seq, 0u);
}

TEST(AuditLog, EveryFieldSurvivesTheQueueAndTheStore) {
  for (AuditMode mode : {AuditMode::kDurable, AuditMode::kBuffered}) {
    std::unique_ptr<AuditStorage> storage = NewMemoryAuditStorage();
    AuditOptions options;
    options.mode = mode;
    auto log = AuditLog::Open(storage.get(), options);
    ASSERT_TRUE(log.ok()) << log.status();
    AuditEvent e;
    e.event_id = "0123456789abcdef-42";
    e.at = absl::FromUnixMicros(1780000000123456);
    e.patient = "pat-\xC3\xAB";  // UTF-8, not ASCII
    e.actor = {"clin-1", Role::kClinician, "praktijk-a"};
    e.action = Action::kDisclose;
    e.category = Category::kTreatmentPlan;
    e.purpose = Purpose::kEmergency;
    e.permitted = true;
    e.reasons = {Reason::kEmergencyAccess};
    e.legal_basis = LegalBasis::kVitalInterest;
    e.obligations = {Obligation::kLogAccess, Obligation::kEmergencyReview};
    e.consents = {"con-1", std::string(300, 'c')};
    e.emergency = true;
    e.justification = std::string(4000, 'j');
    e.policy = "wgbo-default@1";
    e.rule = "emergency_access_with_justification";
    e.error = "";
    Party to;
    to.kind = Party::Kind::kOrganization;
    to.id = "seh-noord";
    e.recipient = to;
    e.age_band = AgeBand::kAdult;
    AuditEvent other = e;
    other.event_id = "other";
    other.permitted = false;
    other.reasons = {Reason::kNoTreatmentRelationship, Reason::kNoEffectiveConsent};
    other.legal_basis.reset();
    other.obligations.clear();
    other.consents.clear();
    other.recipient.reset();
    other.age_band.reset();
    other.error = "the store could not be read";
    other.at += absl::Seconds(1);
    ASSERT_TRUE((*log)->Append(e).ok());
    ASSERT_TRUE((*log)->Append(other).ok());
    ASSERT_TRUE((*log)->Flush().ok());
    auto got = (*log)->PatientAccesses(e.patient, absl::InfinitePast(), absl::InfiniteFuture());
    ASSERT_TRUE(got.ok()) << got.status();
    ASSERT_EQ(got->size(), 2u);
    ExpectSameFields((*got)[0], other);
    ExpectSameFields((*got)[1], e);
  }
}

// Records written before recipient_party kept the recipient as text; they still read.
TEST(AuditLog, ARecipientWrittenAsTextStillReads) {
  for (const auto& [text, kind] : {std::pair{"actor:gemeente-7", Party::Kind::kActor},
                                   std::pair{"role:insurer", Party::Kind::kRole},
                                   std::pair{"organization:ggd", Party::Kind::kOrganization}}) {
    SCOPED_TRACE(text);
    flatbuffers::FlatBufferBuilder b;
    std::vector<uint8_t> none;
    std::vector<flatbuffers::Offset<flatbuffers::String>> no_consents;
    auto rec = schema::CreateAuditRecordDirect(b, 1, "ev-1", 1780000000000000, 1780000000000000, "pat-1", "clin-1", 3,
                                               nullptr, 3, 0, 0, false, &none, -1, &none, &no_consents, false, nullptr,
                                               "wgbo-default@1", nullptr, nullptr, text);
    schema::FinishAuditRecordBuffer(b, rec);
    absl::StatusOr<AuditEvent> e =
        DecodeAuditBody(absl::string_view(reinterpret_cast<const char*>(b.GetBufferPointer()), b.GetSize()));
    ASSERT_TRUE(e.ok()) << e.status();
    ASSERT_TRUE(e->recipient.has_value());
    EXPECT_EQ(e->recipient->kind, kind);
  }
}

TEST(AuditLog, VerifyPassesOnAnUntouchedLogAcrossReopen) {
  std::string dir = StoreWithFiveRecords("untouched");
  {
    auto engine = OpenEngine(dir);
    engine->Decide(Req("clin-1", Role::kClinician, "pat-1", 1780100000));
  }
  AuditVerifyReport r = VerifyStore(dir);
  EXPECT_TRUE(r.ok) << r.problem;
  EXPECT_EQ(r.records, 6u);
  EXPECT_EQ(r.last_seq, 6u);
}

TEST(AuditLog, RawEditOfOneRecordIsCaught) {
  std::string dir = StoreWithFiveRecords("edited");
  absl::StatusOr<std::string> entry = testing::RawAuditEntryForTesting(dir, 3);
  ASSERT_TRUE(entry.ok()) << entry.status();
  // Flip one byte in the middle of the stored bytes (inside the record's body).
  std::string changed = *entry;
  changed[changed.size() / 2] ^= 0x01;
  ASSERT_TRUE(testing::RawPutAuditEntryForTesting(dir, 3, changed).ok());
  AuditVerifyReport r = VerifyStore(dir);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.bad_seq, 3u);
  EXPECT_THAT(r.problem, HasSubstr("changed"));
}

TEST(AuditLog, ChangedOutcomeWithRecomputedHashIsCaughtByTheNextLink) {
  std::string dir = StoreWithFiveRecords("rehashed");
  // The tamperer rewrites record 2 and its own hash consistently; record 3 still links
  // to the old hash.
  absl::StatusOr<std::string> entry2 = testing::RawAuditEntryForTesting(dir, 2);
  absl::StatusOr<std::string> entry4 = testing::RawAuditEntryForTesting(dir, 4);
  ASSERT_TRUE(entry2.ok() && entry4.ok());
  // Put record 4's bytes (a valid, self-consistent entry) in place 2: a different
  // record with a correct hash of its own, but the wrong sequence and link.
  ASSERT_TRUE(testing::RawPutAuditEntryForTesting(dir, 2, *entry4).ok());
  AuditVerifyReport r = VerifyStore(dir);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.bad_seq, 2u);
}

TEST(AuditLog, DeletedRecordIsCaught) {
  std::string dir = StoreWithFiveRecords("deleted");
  ASSERT_TRUE(testing::RawPutAuditEntryForTesting(dir, 3, "", /*erase=*/true).ok());
  AuditVerifyReport r = VerifyStore(dir);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.bad_seq, 3u);
  EXPECT_THAT(r.problem, HasSubstr("removed"));
}

TEST(AuditLog, DeletedLastRecordIsCaught) {
  std::string dir = StoreWithFiveRecords("deleted_tail");
  ASSERT_TRUE(testing::RawPutAuditEntryForTesting(dir, 5, "", /*erase=*/true).ok());
  AuditVerifyReport r = VerifyStore(dir);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.bad_seq, 5u);
  EXPECT_THAT(r.problem, HasSubstr("removed"));
}

TEST(AuditLog, SwappedPairIsCaught) {
  std::string dir = StoreWithFiveRecords("swapped");
  absl::StatusOr<std::string> a = testing::RawAuditEntryForTesting(dir, 2);
  absl::StatusOr<std::string> b = testing::RawAuditEntryForTesting(dir, 3);
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_TRUE(testing::RawPutAuditEntryForTesting(dir, 2, *b).ok());
  ASSERT_TRUE(testing::RawPutAuditEntryForTesting(dir, 3, *a).ok());
  AuditVerifyReport r = VerifyStore(dir);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.bad_seq, 2u);
  EXPECT_THAT(r.problem, HasSubstr("reordered"));
}

// A batch's records share one key (engine/rocksdb/audit_parts.h). Damage to how that
// key holds them is named by record, and a patient's list fails rather than leave one out.
TEST(AuditLog, ABatchIsStoredAsOnePartAndDamageToThePartNamesTheRecord) {
  std::string dir = StoreWithFiveRecords("part");
  const std::string key = BigEndian(1) + BigEndian(5);
  absl::StatusOr<std::string> part = testing::RawGetForTesting(dir, "audit", key);
  ASSERT_TRUE(part.ok()) << "records 1-5 are not one part: " << part.status();
  absl::StatusOr<std::string> fourth = testing::RawAuditEntryForTesting(dir, 4);
  ASSERT_TRUE(fourth.ok()) << fourth.status();
  const size_t at = part->find(*fourth);
  ASSERT_NE(at, std::string::npos);
  ASSERT_TRUE(testing::RawPutForTesting(dir, "audit", key, part->substr(0, at + fourth->size() / 2)).ok());
  auto engine = OpenEngine(dir);
  absl::StatusOr<AuditVerifyReport> v = engine->VerifyAccessLog();
  ASSERT_FALSE(v.ok() && v->ok);
  const std::string said = v.ok() ? v->problem : std::string(v.status().message());
  EXPECT_THAT(said, HasSubstr("record 4"));
  absl::StatusOr<std::vector<AuditEvent>> listed =
      engine->PatientAccesses("pat-1", absl::InfinitePast(), absl::InfiniteFuture());
  EXPECT_EQ(listed.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(listed.status().message()), HasSubstr("record 4"));
}

// A store of format 3 keeps one record per key. It reads and verifies as it is, new
// records go in parts beside the old ones, and a change to an old one is still named.
TEST(AuditLog, RecordsStoredOnePerKeyStillReadAndVerifyBesideParts) {
  std::string dir = StoreWithFiveRecords("one_per_key");
  std::vector<std::string> entries;
  for (uint64_t seq = 1; seq <= 5; ++seq) {
    absl::StatusOr<std::string> e = testing::RawAuditEntryForTesting(dir, seq);
    ASSERT_TRUE(e.ok()) << e.status();
    entries.push_back(*e);
  }
  ASSERT_TRUE(testing::RawPutForTesting(dir, "audit", BigEndian(1) + BigEndian(5), "", /*erase=*/true).ok());
  for (uint64_t seq = 1; seq <= 5; ++seq) {
    ASSERT_TRUE(testing::RawPutForTesting(dir, "audit", BigEndian(seq), entries[seq - 1]).ok());
  }
  ASSERT_TRUE(testing::RawPutForTesting(dir, "default", "toegang/format_version", "3").ok());
  {
    auto engine = OpenEngine(dir);
    absl::StatusOr<std::vector<AuditEvent>> listed =
        engine->PatientAccesses("pat-1", absl::InfinitePast(), absl::InfiniteFuture());
    ASSERT_TRUE(listed.ok()) << listed.status();
    EXPECT_EQ(listed->size(), 4u);
    engine->DecideBatch({Req("clin-1", Role::kClinician, "pat-1", 1780090000),
                         Req("clin-1", Role::kClinician, "pat-1", 1780090001)});
    listed = engine->PatientAccesses("pat-1", absl::InfinitePast(), absl::InfiniteFuture());
    ASSERT_TRUE(listed.ok()) << listed.status();
    EXPECT_EQ(listed->size(), 6u);
  }
  EXPECT_TRUE(testing::RawGetForTesting(dir, "audit", BigEndian(6) + BigEndian(7)).ok()) << "new records go in parts";
  EXPECT_EQ(*testing::RawGetForTesting(dir, "default", "toegang/format_version"), "4");
  AuditVerifyReport r = VerifyStore(dir);
  EXPECT_TRUE(r.ok) << r.problem;
  EXPECT_EQ(r.records, 7u);
  std::string changed = entries[1];
  changed[changed.size() / 2] ^= 0x01;
  ASSERT_TRUE(testing::RawPutAuditEntryForTesting(dir, 2, changed).ok());
  EXPECT_EQ(*testing::RawGetForTesting(dir, "audit", BigEndian(2)), changed) << "changed where it was";
  r = VerifyStore(dir);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.bad_seq, 2u);
}

absl::Time g_logged_at;
absl::Time LoggedAt() { return g_logged_at; }

TEST(AuditLog, D51_PurgeKeepsFiveYearsAndTheChainVerifiable) {
  std::string dir = FreshDir("purge");
  AuditOptions audit;
  audit.clock = LoggedAt;
  audit.checkpoint_key = kCheckpointKey;
  {
    auto engine = OpenEngine(dir, audit);
    g_logged_at = absl::FromUnixSeconds(1546300800);  // 2019-01-01
    // Each year's records one batch: one part in the store, purged whole or kept whole.
    engine->DecideBatch({Req("clin-1", Role::kClinician, "pat-1", 1546300800),
                         Req("clin-1", Role::kClinician, "pat-1", 1546300801),
                         Req("clin-1", Role::kClinician, "pat-1", 1546300802)});
    g_logged_at = absl::FromUnixSeconds(1767225600);  // 2026-01-01
    engine->DecideBatch({Req("clin-1", Role::kClinician, "pat-1", 1767225600),
                         Req("clin-1", Role::kClinician, "pat-1", 1767225601)});
  }
  const absl::Time now = absl::FromUnixSeconds(1795000000);  // 2026-11-18
  auto engine = OpenEngine(dir, audit);
  // Younger than 5 years: refused.
  absl::StatusOr<AuditPurgeReport> refused = engine->PurgeAccessLog(absl::FromUnixSeconds(1700000000), now);
  ASSERT_FALSE(refused.ok());
  EXPECT_THAT(std::string(refused.status().message()), HasSubstr("at least 5 years"));
  absl::StatusOr<AuditPurgeReport> purged = engine->PurgeAccessLog(absl::FromUnixSeconds(1577836800), now);  // 2020
  ASSERT_TRUE(purged.ok()) << purged.status();
  EXPECT_EQ(purged->purged, 3u);
  EXPECT_EQ(purged->first_kept, 4u);
  absl::StatusOr<AuditVerifyReport> v = engine->VerifyAccessLog();
  ASSERT_TRUE(v.ok());
  EXPECT_TRUE(v->ok) << v->problem;
  EXPECT_EQ(v->records, 2u);
  EXPECT_EQ(v->first_seq, 4u);
  EXPECT_EQ(engine->PatientAccesses("pat-1", absl::InfinitePast(), absl::InfiniteFuture())->size(), 2u);
  // The chain goes on after the purge, and still verifies after reopening.
  engine->Decide(Req("clin-1", Role::kClinician, "pat-1", 1767300000));
  engine.reset();
  AuditVerifyReport again = VerifyStore(dir);
  EXPECT_TRUE(again.ok) << again.problem;
  EXPECT_EQ(again.records, 3u);
  // Deleting the first kept record after a purge is still caught.
  ASSERT_TRUE(testing::RawPutAuditEntryForTesting(dir, 4, "", true).ok());
  AuditVerifyReport broken = VerifyStore(dir);
  EXPECT_FALSE(broken.ok);
  EXPECT_EQ(broken.bad_seq, 4u);
}

// The patient index is not in the hash chain: verification checks it against the chain,
// and the patient's list checks each entry against its record.
std::string IndexKey(const std::string& patient, int64_t at_s, uint64_t seq) {
  return absl::StrCat(patient, std::string(1, '\0'),
                      BigEndian(static_cast<uint64_t>(at_s * 1000000) ^ (uint64_t{1} << 63)), BigEndian(seq));
}

TEST(AuditLog, DeletedIndexEntryIsCaught) {
  std::string dir = StoreWithFiveRecords("index_deleted");
  // Decisions 1..4 are on pat-1 at 1780000000 + (seq - 1) * 3600.
  ASSERT_TRUE(testing::RawGetForTesting(dir, "audit_by_patient", IndexKey("pat-1", 1780000000 + 2 * 3600, 3)).ok());
  ASSERT_TRUE(testing::RawPutForTesting(dir, "audit_by_patient", IndexKey("pat-1", 1780000000 + 2 * 3600, 3), "",
                                        /*erase=*/true)
                  .ok());
  AuditVerifyReport r = VerifyStore(dir);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.bad_seq, 3u);
  EXPECT_THAT(r.problem, HasSubstr("missing from the patient index"));
}

TEST(AuditLog, IndexEntryUnderAnotherPatientIsCaughtByVerifyAndByTheList) {
  std::string dir = StoreWithFiveRecords("index_moved");
  // pat-2 is made to appear to have been read by pat-1's record 2.
  ASSERT_TRUE(testing::RawPutForTesting(dir, "audit_by_patient", IndexKey("pat-2", 1780000000 + 3600, 2), "").ok());
  AuditVerifyReport r = VerifyStore(dir);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.bad_seq, 2u);
  EXPECT_THAT(r.problem, HasSubstr("another patient"));
  auto engine = OpenEngine(dir);
  absl::StatusOr<std::vector<AuditEvent>> list =
      engine->PatientAccesses("pat-2", absl::InfinitePast(), absl::InfiniteFuture());
  ASSERT_FALSE(list.ok()) << "a forged entry is shown as pat-2's access";
  EXPECT_EQ(list.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(list.status().message()), HasSubstr("patient index is damaged"));
}

// Records logged in 2019 and 2026, purged with the key; returns the dir.
std::string PurgedStore(const std::string& name) {
  std::string dir = FreshDir(name);
  AuditOptions audit;
  audit.clock = LoggedAt;
  audit.checkpoint_key = kCheckpointKey;
  auto engine = OpenEngine(dir, audit);
  g_logged_at = absl::FromUnixSeconds(1546300800);  // 2019-01-01
  for (int i = 0; i < 3; ++i) engine->Decide(Req("clin-1", Role::kClinician, "pat-1", 1546300800 + i));
  g_logged_at = absl::FromUnixSeconds(1767225600);  // 2026-01-01
  for (int i = 0; i < 2; ++i) engine->Decide(Req("clin-1", Role::kClinician, "pat-1", 1767225600 + i));
  absl::StatusOr<AuditPurgeReport> purged =
      engine->PurgeAccessLog(absl::FromUnixSeconds(1577836800), absl::FromUnixSeconds(1795000000));
  EXPECT_TRUE(purged.ok()) << purged.status();
  return dir;
}

TEST(AuditLog, PurgeNeedsTheKeyAndVerifyAuthenticatesTheCheckpoint) {
  std::string dir = FreshDir("purge_nokey");
  {
    auto engine = OpenEngine(dir);
    engine->Decide(Req("clin-1", Role::kClinician, "pat-1", 1546300800));
    absl::StatusOr<AuditPurgeReport> r =
        engine->PurgeAccessLog(absl::FromUnixSeconds(1577836800), absl::FromUnixSeconds(1795000000));
    ASSERT_FALSE(r.ok());
    EXPECT_THAT(std::string(r.status().message()), HasSubstr("--audit-key-file"));
  }
  std::string purged = PurgedStore("purge_keyed");
  EXPECT_TRUE(VerifyStore(purged).ok);
  AuditVerifyReport no_key = VerifyStore(purged, "");
  EXPECT_FALSE(no_key.ok);
  EXPECT_EQ(no_key.bad_seq, 4u);
  EXPECT_THAT(no_key.problem, HasSubstr("cannot be authenticated"));
  AuditVerifyReport wrong_key = VerifyStore(purged, "another-key-of-enough-length");
  EXPECT_FALSE(wrong_key.ok);
  EXPECT_THAT(wrong_key.problem, HasSubstr("did not write with this key"));
}

TEST(AuditLog, ForgedCheckpointHidingTheStartOfTheChainIsRefused) {
  // Records 1-4 are young (logged today), so purge would refuse them; the attacker
  // deletes them by hand and writes a checkpoint that continues at record 5.
  std::string dir = FreshDir("forged_checkpoint");
  {
    auto engine = OpenEngine(dir);
    for (int i = 0; i < 6; ++i) engine->Decide(Req("clin-1", Role::kClinician, "pat-1", 1780000000 + i));
  }
  absl::StatusOr<std::string> fourth = testing::RawAuditEntryForTesting(dir, 4);
  ASSERT_TRUE(fourth.ok());
  const std::string hash4 = fourth->substr(fourth->size() - 32);
  for (uint64_t seq = 1; seq <= 4; ++seq) {
    ASSERT_TRUE(testing::RawPutAuditEntryForTesting(dir, seq, "", /*erase=*/true).ok());
    ASSERT_TRUE(testing::RawPutForTesting(dir, "audit_by_patient", IndexKey("pat-1", 1780000000 + seq - 1, seq), "",
                                          /*erase=*/true)
                    .ok());
  }
  flatbuffers::FlatBufferBuilder b;
  auto prev = b.CreateVector(reinterpret_cast<const uint8_t*>(hash4.data()), hash4.size());
  auto mac = b.CreateVector(std::vector<uint8_t>(32, 0x5a));  // no key: a guess
  b.Finish(schema::CreateAuditCheckpoint(b, 5, prev, 4, absl::ToUnixMicros(absl::Now()),
                                         absl::ToUnixMicros(absl::Now()), mac));
  ASSERT_TRUE(testing::RawPutForTesting(dir, "default", "toegang/audit_checkpoint",
                                        std::string(reinterpret_cast<const char*>(b.GetBufferPointer()), b.GetSize()))
                  .ok());
  AuditVerifyReport r = VerifyStore(dir);
  EXPECT_FALSE(r.ok) << "the chain now starts at 5 and links";
  EXPECT_EQ(r.bad_seq, 5u);
  EXPECT_THAT(r.problem, HasSubstr("did not write with this key"));
}

TEST(AuditLog, D51_APurgeUnderAClockYearsAheadIsRefusedByVerify) {
  std::string dir = FreshDir("purge_skewed");
  AuditOptions audit;
  audit.clock = LoggedAt;
  audit.checkpoint_key = kCheckpointKey;
  auto engine = OpenEngine(dir, audit);
  g_logged_at = absl::FromUnixSeconds(1767225600);  // 2026-01-01
  for (int i = 0; i < 3; ++i) engine->Decide(Req("clin-1", Role::kClinician, "pat-1", 1767225600 + i));
  // The purge believes it is 2040: a cut-off in 2031 passes its own check.
  absl::StatusOr<AuditPurgeReport> purged =
      engine->PurgeAccessLog(absl::FromUnixSeconds(1924992000), absl::FromUnixSeconds(2208988800));
  ASSERT_TRUE(purged.ok()) << purged.status();
  EXPECT_EQ(purged->purged, 3u);
  g_logged_at = absl::FromUnixSeconds(1795000000);  // back to 2026-11-18
  absl::StatusOr<AuditVerifyReport> v = engine->VerifyAccessLog();
  ASSERT_TRUE(v.ok());
  EXPECT_FALSE(v->ok);
  EXPECT_THAT(v->problem, HasSubstr("younger than 5 years"));
}

// Storage that takes its time, to fill the queue.
class SlowStorage : public AuditStorage {
 public:
  explicit SlowStorage(absl::Duration delay) : inner_(NewMemoryAuditStorage()), delay_(delay) {}
  absl::Status Append(absl::Span<const AuditRow> rows, absl::string_view head, bool sync) override {
    absl::SleepFor(delay_);
    stored_ += rows.size();
    return inner_->Append(rows, head, sync);
  }
  absl::Status Sync() override {
    ++syncs_;
    return inner_->Sync();
  }
  absl::Status ReadHead(uint64_t* s, std::string* h) override { return inner_->ReadHead(s, h); }
  absl::StatusOr<std::string> ChainId() override { return inner_->ChainId(); }
  absl::Status ScanChain(const AuditVisitor& v) override { return inner_->ScanChain(v); }
  absl::Status ScanPatient(absl::string_view p, int64_t f, int64_t u, const AuditVisitor& v) override {
    return inner_->ScanPatient(p, f, u, v);
  }
  absl::Status Purge(const std::vector<AuditRow>& r, absl::string_view c) override { return inner_->Purge(r, c); }
  absl::StatusOr<std::string> ReadCheckpoint() override { return inner_->ReadCheckpoint(); }
  absl::Status Replace(const std::vector<AuditRow>& r) override { return inner_->Replace(r); }
  absl::StatusOr<std::string> ReadEntry(uint64_t seq) override { return inner_->ReadEntry(seq); }
  absl::Status ScanIndex(const AuditIndexVisitor& v) override { return inner_->ScanIndex(v); }
  absl::StatusOr<bool> HasIndexEntry(absl::string_view p, int64_t at, uint64_t seq) override {
    return inner_->HasIndexEntry(p, at, seq);
  }
  std::atomic<uint64_t> stored_{0};
  std::atomic<uint64_t> syncs_{0};  // calls of Sync
  bool fail = false;

 private:
  std::unique_ptr<AuditStorage> inner_;
  absl::Duration delay_;
};

AuditEvent Event(int i) {
  AuditEvent e;
  e.event_id = absl::StrCat("ev-", i);
  e.at = absl::FromUnixSeconds(1780000000 + i);
  e.patient = absl::StrCat("pat-", i % 5);
  e.actor = {"clin-1", Role::kClinician, ""};
  e.policy = "wgbo-default@1";
  return e;
}

// A record waits in the queue as its fields while the queue is short (the writer
// encodes it) and as its body once it is deep (the thread that logged it encoded it):
// both are stored as the same record, every field kept.
TEST(AuditLog, EveryFieldSurvivesBothFormsOfTheQueue) {
  SlowStorage storage(absl::Milliseconds(300));
  AuditOptions options;
  options.mode = AuditMode::kBuffered;
  options.queue_capacity = 4096;
  auto log = AuditLog::Open(&storage, options);
  ASSERT_TRUE(log.ok()) << log.status();
  AuditEvent first;
  first.event_id = "first";
  first.at = absl::FromUnixSeconds(1780000000);
  first.patient = "pat-0";
  first.actor = {"clin-1", Role::kClinician, ""};
  first.policy = "wgbo-default@1";
  ASSERT_TRUE((*log)->Append(first).ok());
  // The writer takes that one and is held in the storage while the queue fills.
  for (int i = 0; i < 200 && (*log)->stats().queue_depth != 0; ++i) absl::SleepFor(absl::Milliseconds(1));
  std::vector<AuditEvent> sent;
  for (int i = 0; i < 600; ++i) {
    AuditEvent e;
    e.event_id = absl::StrCat("ev-", i);
    e.at = absl::FromUnixMicros(1780000000123456 + i);
    e.patient = "pat-\xC3\xAB";
    e.actor = {absl::StrCat("clin-", i % 7), i % 2 ? Role::kClinician : Role::kParent, i % 3 ? "praktijk-a" : ""};
    e.action = i % 2 ? Action::kDisclose : Action::kRead;
    e.category = Category::kTreatmentPlan;
    e.purpose = i % 5 ? Purpose::kTreatment : Purpose::kEmergency;
    e.permitted = i % 4 != 0;
    e.reasons = {Reason::kEmergencyAccess, Reason::kNoEffectiveConsent};
    if (i % 3) e.legal_basis = LegalBasis::kVitalInterest;
    if (i % 2) e.obligations = {Obligation::kLogAccess, Obligation::kEmergencyReview};
    for (int c = 0; c < i % 4; ++c) e.consents.push_back(absl::StrCat("con-", i, "-", c));
    e.emergency = i % 5 == 0;
    e.justification = std::string(i % 50, 'j');
    e.policy = "wgbo-default@1";
    e.rule = i % 2 ? "emergency_access_with_justification" : "";
    e.error = i % 9 ? "" : "the store could not be read";
    if (i % 3 == 1) {
      Party to;
      to.kind = i % 2 ? Party::Kind::kOrganization : Party::Kind::kRole;
      to.id = to.kind == Party::Kind::kRole ? "" : "seh-noord";
      to.role = Role::kInsurer;
      e.recipient = to;
    }
    if (i % 4) e.age_band = AgeBand::k12To15;
    if (i % 11 == 0) e.replay_as_of = absl::FromUnixMicros(1770000000000001 + i);
    ASSERT_TRUE((*log)->Append(e).ok());
    sent.push_back(e);
  }
  ASSERT_TRUE((*log)->Flush().ok());
  const AuditStats stats = (*log)->stats();
  EXPECT_EQ(stats.written, 601u);
  EXPECT_GT(stats.encoded_by_writer, 1u) << "no record of the 600 waited as its fields";
  EXPECT_LT(stats.encoded_by_writer, 601u) << "no record waited as its body";
  auto got = (*log)->PatientAccesses("pat-\xC3\xAB", absl::InfinitePast(), absl::InfiniteFuture());
  ASSERT_TRUE(got.ok()) << got.status();
  // Newest first; a replay is no access and is not listed (D50).
  std::vector<const AuditEvent*> accesses;
  for (const AuditEvent& e : sent) {
    if (!e.replay_as_of) accesses.push_back(&e);
  }
  ASSERT_EQ(got->size(), accesses.size());
  for (size_t i = 0; i < accesses.size(); ++i) ExpectSameFields((*got)[accesses.size() - 1 - i], *accesses[i]);
  absl::StatusOr<AuditVerifyReport> v = (*log)->Verify();
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_TRUE(v->ok) << v->problem;
  EXPECT_EQ(v->records, 601u);
}

TEST(AuditLog, FullBufferedQueueAppliesBackPressureAndLosesNothing) {
  SlowStorage storage(absl::Milliseconds(3));
  AuditOptions o;
  o.mode = AuditMode::kBuffered;
  o.queue_capacity = 8;
  o.max_wait = absl::Seconds(30);
  auto log = AuditLog::Open(&storage, o);
  ASSERT_TRUE(log.ok());
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 100; ++i) {
        if ((*log)->Append(Event(t * 1000 + i)).ok()) ok.fetch_add(1);
      }
    });
  }
  for (auto& th : threads) th.join();
  ASSERT_TRUE((*log)->Flush().ok());
  AuditStats s = (*log)->stats();
  EXPECT_EQ(ok.load(), 400);
  EXPECT_EQ(s.appended, 400u);
  EXPECT_EQ(s.written, 400u);
  EXPECT_EQ(storage.stored_.load(), 400u);
  EXPECT_GT(s.waits, 0u) << "the queue never filled: the test proves little";
  EXPECT_LE(s.max_queue_depth, 8u);
  EXPECT_EQ(s.refused, 0u);
  absl::StatusOr<AuditVerifyReport> v = (*log)->Verify();
  ASSERT_TRUE(v.ok());
  EXPECT_TRUE(v->ok) << v->problem;
  EXPECT_EQ(v->records, 400u);
}

// Each deciding thread encodes its own records (in a builder of its own) before it
// queues them: records from threads logging at once, one at a time and in batches,
// each keep their own fields, their number and the time they were written.
TEST(AuditLog, RecordsEncodedOnManyThreadsEachKeepTheirOwnFields) {
  std::unique_ptr<AuditStorage> storage = NewMemoryAuditStorage();
  AuditOptions o;
  o.mode = AuditMode::kBuffered;
  o.queue_capacity = 64;  // small: the threads also wait for room
  o.max_wait = absl::Seconds(30);
  auto log = AuditLog::Open(storage.get(), o);
  ASSERT_TRUE(log.ok());
  constexpr int kThreads = 4, kEach = 400, kBatch = 10;
  std::vector<std::thread> threads;
  std::atomic<int> failed{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::vector<AccessRequest> requests(kBatch);
      std::vector<Decision> decisions(kBatch);
      std::vector<std::string> ids(kBatch), consents(kBatch);
      const std::string policy = absl::StrCat("policy-", t), rule = absl::StrCat("rule-", t);  // Decision holds views
      for (int i = 0; i < kEach; i += kBatch) {
        std::vector<AuditLog::LoggedDecision> batch;
        for (int k = 0; k < kBatch; ++k) {
          const int n = i + k;
          requests[k] = Req(absl::StrCat("clin-", t), Role::kClinician, absl::StrCat("pat-", t, "-", n), 1780000000 + n);
          decisions[k] = Decision{};
          decisions[k].policy = policy;
          decisions[k].rule = n % 3 == 0 ? absl::string_view() : absl::string_view(rule);
          consents[k] = absl::StrCat("consent-", t, "-", n);
          decisions[k].consents = {consents[k]};
          ids[k] = absl::StrCat("t", t, "-", n);
          batch.push_back({&requests[k], &decisions[k], ids[k]});
        }
        if (i % (2 * kBatch) == 0) {
          for (const absl::Status& s : (*log)->AppendDecisions(batch)) {
            if (!s.ok()) failed.fetch_add(1);
          }
        } else {
          for (const AuditLog::LoggedDecision& d : batch) {
            if (!(*log)->AppendDecision(*d.request, *d.decision, d.decision_id, std::nullopt).ok()) failed.fetch_add(1);
          }
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  ASSERT_TRUE((*log)->Flush().ok());
  EXPECT_EQ(failed.load(), 0);

  uint64_t expected_seq = 1;
  std::set<std::string> seen;
  ASSERT_TRUE(storage
                  ->ScanChain([&](uint64_t seq, absl::string_view entry) {
                    absl::StatusOr<AuditEvent> e = DecodeAuditEntry(entry);
                    if (!e.ok()) return e.status();
                    EXPECT_EQ(seq, expected_seq);
                    EXPECT_EQ(e->seq, expected_seq);
                    ++expected_seq;
                    int t = -1, n = -1;
                    EXPECT_EQ(std::sscanf(e->event_id.c_str(), "t%d-%d", &t, &n), 2) << e->event_id;
                    EXPECT_EQ(e->patient, absl::StrCat("pat-", t, "-", n));
                    EXPECT_EQ(e->actor.id, absl::StrCat("clin-", t));
                    EXPECT_EQ(e->at, absl::FromUnixSeconds(1780000000 + n));
                    EXPECT_EQ(e->policy, absl::StrCat("policy-", t));
                    EXPECT_EQ(e->rule, n % 3 == 0 ? "" : absl::StrCat("rule-", t));
                    EXPECT_THAT(e->consents, ElementsAre(absl::StrCat("consent-", t, "-", n)));
                    EXPECT_GT(e->logged_at, absl::FromUnixSeconds(1700000000)) << "the time of writing was not set";
                    EXPECT_TRUE(seen.insert(e->event_id).second) << e->event_id << " twice";
                    return absl::OkStatus();
                  })
                  .ok());
  EXPECT_EQ(seen.size(), static_cast<size_t>(kThreads * kEach));
  absl::StatusOr<AuditVerifyReport> v = (*log)->Verify();
  ASSERT_TRUE(v.ok());
  EXPECT_TRUE(v->ok) << v->problem;
}

// stats().queue_depth counts records waiting (the queue holds their bytes).
TEST(AuditLog, QueueDepthCountsRecords) {
  SlowStorage storage(absl::Milliseconds(300));
  AuditOptions o;
  o.mode = AuditMode::kBuffered;
  auto log = AuditLog::Open(&storage, o);
  ASSERT_TRUE(log.ok());
  ASSERT_TRUE((*log)->Append(Event(0)).ok());
  absl::SleepFor(absl::Milliseconds(50));  // the writer takes it and sits in storage
  for (int i = 1; i <= 3; ++i) ASSERT_TRUE((*log)->Append(Event(i)).ok());
  const size_t depth = (*log)->stats().queue_depth;
  EXPECT_GE(depth, 3u);
  EXPECT_LE(depth, 4u) << "queue_depth is not a count of records";
  ASSERT_TRUE((*log)->Flush().ok());
  EXPECT_EQ((*log)->stats().queue_depth, 0u);
}

// base/threads.h: serve keeps the writer off the CPUs that answer requests.
TEST(AuditLog, WriterRunsOnTheCpusItIsGiven) {
  std::vector<int> all = *AllowedCpus();
  std::unique_ptr<AuditStorage> storage = NewMemoryAuditStorage();
  AuditOptions o;
  o.mode = AuditMode::kBuffered;
  o.writer_cpus = {all.back()};
  auto log = AuditLog::Open(storage.get(), o);
  ASSERT_TRUE(log.ok()) << log.status();
  // One writer thread, as ps -L shows it, on that CPU alone.
  EXPECT_THAT(testing::ThreadCpus()["toegang-audit"], ElementsAre(ElementsAre(all.back())));
  ASSERT_TRUE((*log)->Append(Event(0)).ok());
  ASSERT_TRUE((*log)->Flush().ok());
  EXPECT_EQ((*log)->stats().queue_depth, 0u);
}

TEST(AuditLog, WriterCpusThatDoNotExistAreRefusedAndNothingIsWritten) {
  std::unique_ptr<AuditStorage> storage = NewMemoryAuditStorage();
  AuditOptions o;
  o.writer_cpus = {CPU_SETSIZE - 1};
  auto log = AuditLog::Open(storage.get(), o);
  ASSERT_FALSE(log.ok());
  EXPECT_EQ(log.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(log.status().message(), HasSubstr("writer_cpus"));
  EXPECT_THAT(log.status().message(), HasSubstr(std::to_string(CPU_SETSIZE - 1)));
  // A joined thread can stay listed under /proc/self/task for a moment after it ended.
  for (int i = 0; i < 100 && testing::ThreadCpus().count("toegang-audit") > 0; ++i) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  EXPECT_EQ(testing::ThreadCpus().count("toegang-audit"), 0u) << "the refused log's writer is still running";
  uint64_t last = 1;
  std::string head = "x";
  ASSERT_TRUE(storage->ReadHead(&last, &head).ok());
  EXPECT_EQ(last, 0u);
}

TEST(AuditLog, QueueFullPastTheWaitRefusesLoudlyNeverSilently) {
  SlowStorage storage(absl::Milliseconds(20));
  AuditOptions o;
  o.mode = AuditMode::kBuffered;
  o.queue_capacity = 2;
  o.max_wait = absl::Milliseconds(1);
  auto log = AuditLog::Open(&storage, o);
  ASSERT_TRUE(log.ok());
  int ok = 0, refused = 0;
  for (int i = 0; i < 50; ++i) {
    absl::Status s = (*log)->Append(Event(i));
    if (s.ok()) {
      ++ok;
    } else {
      ++refused;
      EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted);
      EXPECT_THAT(std::string(s.message()), HasSubstr("refused rather than left unlogged"));
    }
  }
  ASSERT_TRUE((*log)->Flush().ok());
  EXPECT_GT(refused, 0);
  EXPECT_EQ((*log)->stats().refused, static_cast<uint64_t>(refused));
  EXPECT_EQ(storage.stored_.load(), static_cast<uint64_t>(ok)) << "an accepted record was lost";
}

// Access-log storage that cannot be written.
class BrokenAuditStorage : public SlowStorage {
 public:
  BrokenAuditStorage() : SlowStorage(absl::ZeroDuration()) {}
  absl::Status Append(absl::Span<const AuditRow>, absl::string_view, bool) override {
    return absl::InternalError("disk full");
  }
};

// Storage whose writes fail while `full` is set, as on a full disk, and whose recovery
// succeeds only once space is back.
class FullDiskStorage : public SlowStorage {
 public:
  FullDiskStorage() : SlowStorage(absl::ZeroDuration()) {}
  absl::Status Append(absl::Span<const AuditRow> rows, absl::string_view head, bool sync) override {
    if (full) return absl::ResourceExhaustedError("injected: no space left on device");
    return SlowStorage::Append(rows, head, sync);
  }
  absl::Status Sync() override {
    if (full) return absl::ResourceExhaustedError("injected: no space left on device");
    return SlowStorage::Sync();
  }
  absl::Status Recover() override {
    return full ? absl::ResourceExhaustedError("injected: no space left on device") : absl::OkStatus();
  }
  std::atomic<bool> full{false};
};

bool WaitUntilHealthy(AuditLog& log) {
  for (int i = 0; i < 500; ++i) {
    if (log.Health().ok()) return true;
    absl::SleepFor(absl::Milliseconds(10));
  }
  return false;
}

std::vector<std::string> LoggedIds(AuditStorage& storage) {
  std::vector<std::string> ids;
  EXPECT_TRUE(storage
                  .ScanChain([&](uint64_t, absl::string_view entry) {
                    absl::StatusOr<AuditEvent> e = DecodeAuditBody(entry.substr(0, entry.size() - 64));
                    if (!e.ok()) return e.status();
                    ids.push_back(e->event_id);
                    return absl::OkStatus();
                  })
                  .ok());
  return ids;
}

TEST(AuditLog, DurableFullDiskRefusesThenWritesAgainByItself) {
  FullDiskStorage storage;
  AuditOptions o;
  o.retry_interval = absl::Milliseconds(20);
  absl::StatusOr<std::unique_ptr<AuditLog>> log = AuditLog::Open(&storage, o);
  ASSERT_TRUE(log.ok());
  ASSERT_TRUE((*log)->Append(Event(1)).ok());
  storage.full = true;
  absl::Status refused = (*log)->Append(Event(2));
  EXPECT_EQ(refused.code(), absl::StatusCode::kUnavailable) << refused;
  EXPECT_THAT(std::string(refused.message()), HasSubstr("no space left"));
  EXPECT_FALSE((*log)->Health().ok());
  EXPECT_FALSE((*log)->Append(Event(3)).ok()) << "accepted while the disk is full";
  storage.full = false;
  ASSERT_TRUE(WaitUntilHealthy(**log)) << (*log)->Health();
  ASSERT_TRUE((*log)->Append(Event(4)).ok());
  EXPECT_EQ((*log)->stats().recoveries, 1u);
  absl::StatusOr<AuditVerifyReport> v = (*log)->Verify();
  ASSERT_TRUE(v.ok());
  EXPECT_TRUE(v->ok) << v->problem;
  // The refused decisions were denied and are not in the log; the chain has no gap.
  EXPECT_THAT(LoggedIds(storage), ElementsAre("ev-1", "ev-4"));
}

TEST(AuditLog, BufferedFullDiskKeepsWhatItAcceptedAndWritesItLater) {
  FullDiskStorage storage;
  AuditOptions o;
  o.mode = AuditMode::kBuffered;
  o.retry_interval = absl::Milliseconds(20);
  absl::StatusOr<std::unique_ptr<AuditLog>> log = AuditLog::Open(&storage, o);
  ASSERT_TRUE(log.ok());
  ASSERT_TRUE((*log)->Append(Event(0)).ok());
  ASSERT_TRUE((*log)->Flush().ok());
  storage.full = true;
  std::vector<std::string> accepted = {"ev-0"};
  for (int i = 1; i <= 50; ++i) {
    if ((*log)->Append(Event(i)).ok()) accepted.push_back(absl::StrCat("ev-", i));
    absl::SleepFor(absl::Microseconds(200));
  }
  EXPECT_FALSE((*log)->Health().ok());
  EXPECT_LT(accepted.size(), 51u) << "nothing was refused while the disk was full";
  storage.full = false;
  ASSERT_TRUE(WaitUntilHealthy(**log)) << (*log)->Health();
  ASSERT_TRUE((*log)->Append(Event(99)).ok());
  ASSERT_TRUE((*log)->Flush().ok());
  accepted.push_back("ev-99");
  EXPECT_EQ(LoggedIds(storage), accepted) << "an accepted record was lost, or a refused one written";
  absl::StatusOr<AuditVerifyReport> v = (*log)->Verify();
  ASSERT_TRUE(v.ok());
  EXPECT_TRUE(v->ok) << v->problem;
}

// Storage that holds the writer inside Append while `hold` is set, records each write
// it is handed, and fails the write numbered `fail_write` (counting from 1).
class PartsStorage : public SlowStorage {
 public:
  PartsStorage() : SlowStorage(absl::ZeroDuration()) {}
  absl::Status Append(absl::Span<const AuditRow> rows, absl::string_view head, bool sync) override {
    ++entered;
    while (hold) absl::SleepFor(absl::Milliseconds(1));
    MutexLock lock(&mu_);
    writes.push_back({rows.size(), sync});
    if (static_cast<int>(writes.size()) == fail_write) return absl::UnavailableError("injected: write failed");
    return SlowStorage::Append(rows, head, sync);
  }
  std::vector<std::pair<size_t, bool>> Writes() {
    MutexLock lock(&mu_);
    return writes;
  }
  std::atomic<bool> hold{false};
  std::atomic<int> entered{0};
  std::atomic<int> fail_write{0};

 private:
  Mutex mu_;
  std::vector<std::pair<size_t, bool>> writes ABSL_GUARDED_BY(mu_);
};

TEST(AuditLog, ALargeBufferedBatchIsWrittenInPartsAndSyncedOnceAtItsEnd) {
  PartsStorage storage;
  AuditOptions o;
  o.mode = AuditMode::kBuffered;
  o.queue_capacity = 10000;
  o.sync_interval = absl::ZeroDuration();  // every batch synced, as a batch's parts are the point here
  absl::StatusOr<std::unique_ptr<AuditLog>> log = AuditLog::Open(&storage, o);
  ASSERT_TRUE(log.ok());
  storage.hold = true;
  ASSERT_TRUE((*log)->Append(Event(0)).ok());
  while (storage.entered == 0) absl::SleepFor(absl::Milliseconds(1));
  // The writer is inside the first write: these wait for it as one batch.
  for (int i = 1; i <= 3000; ++i) ASSERT_TRUE((*log)->Append(Event(i)).ok());
  storage.hold = false;
  ASSERT_TRUE((*log)->Flush().ok());
  std::vector<std::pair<size_t, bool>> writes = storage.Writes();
  ASSERT_GE(writes.size(), 3u);
  EXPECT_EQ(writes[0], std::make_pair(size_t{1}, true));
  size_t records = 0;
  for (size_t i = 1; i < writes.size(); ++i) {
    records += writes[i].first;
    EXPECT_EQ(writes[i].second, i + 1 == writes.size()) << "write " << i << ": only a batch's last part syncs";
  }
  EXPECT_EQ(records, 3000u);
  EXPECT_EQ(LoggedIds(storage).size(), 3001u);
  absl::StatusOr<AuditVerifyReport> v = (*log)->Verify();
  ASSERT_TRUE(v.ok());
  EXPECT_TRUE(v->ok) << v->problem;
}

TEST(AuditLog, ABufferedBatchWhosePartFailsIsWrittenAgainInTheSamePartsAndOnce) {
  PartsStorage storage;
  AuditOptions o;
  o.mode = AuditMode::kBuffered;
  o.queue_capacity = 10000;
  o.sync_interval = absl::ZeroDuration();  // every batch synced, as a batch's parts are the point here
  o.retry_interval = absl::Milliseconds(20);
  absl::StatusOr<std::unique_ptr<AuditLog>> log = AuditLog::Open(&storage, o);
  ASSERT_TRUE(log.ok());
  storage.hold = true;
  ASSERT_TRUE((*log)->Append(Event(0)).ok());
  while (storage.entered == 0) absl::SleepFor(absl::Milliseconds(1));
  std::vector<std::string> accepted = {"ev-0"};
  for (int i = 1; i <= 3000; ++i) {
    ASSERT_TRUE((*log)->Append(Event(i)).ok());
    accepted.push_back(absl::StrCat("ev-", i));
  }
  storage.fail_write = 3;  // the batch's second part, after its first was written unsynced
  storage.hold = false;
  for (int i = 0; i < 500 && (*log)->stats().recoveries == 0; ++i) absl::SleepFor(absl::Milliseconds(10));
  ASSERT_TRUE(WaitUntilHealthy(**log)) << (*log)->Health();
  ASSERT_TRUE((*log)->Flush().ok());
  // The first attempt: record 0, then the batch's first part (unsynced) and its second
  // (failed). Then the whole batch again, in the same parts (a storage may key a part by
  // its first record), only the last synced.
  std::vector<std::pair<size_t, bool>> writes = storage.Writes();
  ASSERT_GE(writes.size(), 5u);
  EXPECT_FALSE(writes[1].second);
  const size_t part = writes[1].first;
  size_t again = 0;
  for (size_t i = 3; i < writes.size(); ++i) {
    again += writes[i].first;
    EXPECT_EQ(writes[i].second, i + 1 == writes.size()) << "write " << i;
    if (i + 1 < writes.size()) {
      EXPECT_EQ(writes[i].first, part) << "write " << i;
    }
  }
  EXPECT_EQ(again, 3000u) << "the whole batch";
  EXPECT_EQ(LoggedIds(storage), accepted) << "a record was lost or written twice";
  EXPECT_EQ((*log)->stats().written, 3001u);
  EXPECT_EQ((*log)->stats().recoveries, 1u);
  absl::StatusOr<AuditVerifyReport> v = (*log)->Verify();
  ASSERT_TRUE(v.ok());
  EXPECT_TRUE(v->ok) << v->problem;
}

// Appends record `i` and waits until the writer has handed it to the storage: each
// record its own batch.
void AppendAlone(AuditLog& log, int i) {
  const uint64_t before = log.stats().written;
  ASSERT_TRUE(log.Append(Event(i)).ok());
  for (int t = 0; t < 2000 && log.stats().written == before; ++t) absl::SleepFor(absl::Milliseconds(1));
  ASSERT_EQ(log.stats().written, before + 1);
}

TEST(AuditLog, BufferedBatchesAreSyncedOnlyWhenASyncIsDue) {
  PartsStorage storage;
  AuditOptions o;
  o.mode = AuditMode::kBuffered;
  o.sync_interval = absl::Hours(1);
  absl::StatusOr<std::unique_ptr<AuditLog>> log = AuditLog::Open(&storage, o);
  ASSERT_TRUE(log.ok());
  for (int i = 0; i < 20; ++i) AppendAlone(**log, i);
  std::vector<std::pair<size_t, bool>> writes = storage.Writes();
  ASSERT_EQ(writes.size(), 20u);
  for (const auto& [records, synced] : writes) EXPECT_FALSE(synced) << "a batch synced before its sync was due";
  EXPECT_EQ(storage.syncs_, 0u);
  EXPECT_EQ((*log)->stats().syncs, 0u);
  // Flush asks for the sync: one, for all twenty.
  ASSERT_TRUE((*log)->Flush().ok());
  EXPECT_EQ(storage.syncs_, 1u);
  EXPECT_EQ((*log)->stats().syncs, 1u);
  ASSERT_TRUE((*log)->Flush().ok());
  EXPECT_EQ(storage.syncs_, 1u) << "nothing new to sync";
  // Closing syncs what was written since.
  AppendAlone(**log, 20);
  log->reset();
  EXPECT_EQ(storage.syncs_, 2u);
  EXPECT_EQ(LoggedIds(storage).size(), 21u);
}

TEST(AuditLog, BufferedRecordsAreSyncedWithinTheIntervalWithoutAFlush) {
  PartsStorage storage;
  AuditOptions o;
  o.mode = AuditMode::kBuffered;
  o.sync_interval = absl::Milliseconds(20);
  absl::StatusOr<std::unique_ptr<AuditLog>> log = AuditLog::Open(&storage, o);
  ASSERT_TRUE(log.ok());
  AppendAlone(**log, 0);
  for (int t = 0; t < 5000 && (*log)->stats().syncs == 0; ++t) absl::SleepFor(absl::Milliseconds(1));
  EXPECT_EQ((*log)->stats().syncs, 1u) << "a written record waited past its sync";
}

// With a sync interval, every batch written but not yet synced keeps its queue buffer
// until the sync. The deciding threads must not pay for that by growing a fresh buffer
// under the lock for each batch: once a sync has given the buffers back, a round of
// batches as long as the last grows none.
TEST(AuditLog, BufferedProducersReuseTheBuffersOfSyncedBatches) {
  std::unique_ptr<AuditStorage> storage = NewMemoryAuditStorage();
  AuditOptions o;
  o.mode = AuditMode::kBuffered;
  o.sync_interval = absl::Hours(1);
  absl::StatusOr<std::unique_ptr<AuditLog>> log = AuditLog::Open(storage.get(), o);
  ASSERT_TRUE(log.ok());
  const AccessRequest request = Req("clin-1", Role::kClinician, "pat-1", 1780000000);
  Decision decision;
  decision.policy = "wgbo-default@1";
  decision.rule = "treating_clinician";
  decision.reasons = {Reason::kTreatingRelationship};
  const std::string id = "dec-0000000000000001";
  constexpr int kBatches = 12;
  // Each record its own batch: the writer takes it before the next is appended.
  auto one_batch_each = [&] {
    for (int i = 0; i < kBatches; ++i) {
      const uint64_t written = (*log)->stats().written;
      ASSERT_TRUE((*log)->AppendDecision(request, decision, id, std::nullopt).ok());
      for (int t = 0; t < 2000 && (*log)->stats().written == written; ++t) absl::SleepFor(absl::Milliseconds(1));
      ASSERT_EQ((*log)->stats().written, written + 1);
    }
  };
  one_batch_each();
  const uint64_t first_round = (*log)->stats().queue_grown;
  EXPECT_EQ((*log)->stats().syncs, 0u) << "a batch synced before its sync was due";
  ASSERT_TRUE((*log)->Flush().ok());
  one_batch_each();
  const uint64_t second_round = (*log)->stats().queue_grown - first_round;
  EXPECT_GT(first_round, 0u) << "the first batches grow their buffers: this test measures nothing";
  EXPECT_EQ(second_round, 0u) << "the batches after a sync started on buffers that had to grow again";
  ASSERT_TRUE((*log)->Flush().ok());
  EXPECT_EQ((*log)->stats().written, 2u * kBatches);
  absl::StatusOr<AuditVerifyReport> v = (*log)->Verify();
  ASSERT_TRUE(v.ok());
  EXPECT_TRUE(v->ok) << v->problem;
  EXPECT_EQ(v->records, 2u * kBatches);
}

// Storage that, like a store reopened after a failed write, keeps only what was synced:
// a write not yet synced is lost by Recover. Writes and syncs fail while `fail` is set.
class UnsyncedLostStorage : public SlowStorage {
 public:
  UnsyncedLostStorage() : SlowStorage(absl::ZeroDuration()) {}
  absl::Status Append(absl::Span<const AuditRow> rows, absl::string_view head, bool sync) override {
    if (fail) return absl::UnavailableError("injected: write failed");
    MutexLock lock(&mu_);
    calls_.push_back(rows.size());
    pending_.push_back({std::vector<AuditRow>(rows.begin(), rows.end()), std::string(head)});
    return sync ? SyncLocked() : absl::OkStatus();
  }
  absl::Status Sync() override {
    if (fail) return absl::UnavailableError("injected: sync failed");
    MutexLock lock(&mu_);
    return SyncLocked();
  }
  absl::Status Recover() override {
    if (fail) return absl::UnavailableError("injected: still failing");
    MutexLock lock(&mu_);
    pending_.clear();
    return absl::OkStatus();
  }
  std::vector<size_t> Calls() {
    MutexLock lock(&mu_);
    return calls_;
  }
  std::atomic<bool> fail{false};

 private:
  absl::Status SyncLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    for (const auto& [rows, head] : pending_) {
      absl::Status s = SlowStorage::Append(rows, head, true);
      if (!s.ok()) return s;
    }
    pending_.clear();
    return absl::OkStatus();
  }
  Mutex mu_;
  std::vector<std::pair<std::vector<AuditRow>, std::string>> pending_ ABSL_GUARDED_BY(mu_);
  std::vector<size_t> calls_ ABSL_GUARDED_BY(mu_);
};

TEST(AuditLog, BufferedWritesNotYetSyncedAreWrittenAgainAfterAFailedSync) {
  UnsyncedLostStorage storage;
  AuditOptions o;
  o.mode = AuditMode::kBuffered;
  o.sync_interval = absl::Hours(1);
  o.retry_interval = absl::Milliseconds(20);
  absl::StatusOr<std::unique_ptr<AuditLog>> log = AuditLog::Open(&storage, o);
  ASSERT_TRUE(log.ok());
  for (int i = 0; i < 5; ++i) AppendAlone(**log, i);
  EXPECT_TRUE(LoggedIds(storage).empty()) << "written, not synced: not yet stored";
  storage.fail = true;
  absl::Status flushed = (*log)->Flush();
  EXPECT_FALSE(flushed.ok()) << "the sync failed, yet Flush says the records are in";
  EXPECT_FALSE((*log)->Health().ok());
  storage.fail = false;
  ASSERT_TRUE(WaitUntilHealthy(**log)) << (*log)->Health();
  ASSERT_TRUE((*log)->Flush().ok());
  EXPECT_THAT(LoggedIds(storage), ElementsAre("ev-0", "ev-1", "ev-2", "ev-3", "ev-4"))
      << "records written before the failed sync were lost";
  // Written again in the calls they were first written in (one record each).
  EXPECT_THAT(storage.Calls(), ElementsAre(1, 1, 1, 1, 1, 1, 1, 1, 1, 1));
  EXPECT_EQ((*log)->stats().written, 5u);
  EXPECT_EQ((*log)->stats().recoveries, 1u);
  absl::StatusOr<AuditVerifyReport> v = (*log)->Verify();
  ASSERT_TRUE(v.ok());
  EXPECT_TRUE(v->ok) << v->problem;
}

// An engine over a store whose access log cannot be written, pat-1 treated by clin-1.
std::unique_ptr<Engine> EngineWithBrokenLog() {
  absl::StatusOr<std::unique_ptr<Engine>> engine =
      testing::OpenEngineOnStores(Options(), NewMemoryFactStore(), std::make_unique<BrokenAuditStorage>());
  EXPECT_TRUE(engine.ok()) << engine.status();
  EXPECT_TRUE((*engine)->Record({Treats("clin-1", "pat-1")}).ok());
  return *std::move(engine);
}

TEST(AuditLog, D1_UnloggableDecisionIsADeny) {
  std::unique_ptr<Engine> engine = EngineWithBrokenLog();
  EngineDecision d = engine->Decide(Req("clin-1", Role::kClinician, "pat-1", 1780000000));
  EXPECT_FALSE(d.decision.permitted());
  ASSERT_EQ(d.decision.reasons.size(), 1u);
  EXPECT_EQ(d.decision.reasons[0], Reason::kAuditLogUnavailable);
  EXPECT_THAT(d.decision.error, HasSubstr("disk full"));
  // And it stays so: the log does not pretend to recover.
  EXPECT_FALSE(engine->Decide(Req("clin-1", Role::kClinician, "pat-1", 1780000001)).decision.permitted());
}

// The crash tests' body: `mode` is crash_writer's ("decide" or "decide-buffered").
void CrashLosesNoAcknowledgedRecord(const std::string& mode) {
  std::string dir = FreshDir(absl::StrCat("audit_crash_", mode));
  std::mt19937 rng(51);
  size_t acked_total = 0;
  std::set<std::string> acked;
  for (int round = 0; round < 10; ++round) {
    SCOPED_TRACE(absl::StrCat("round ", round));
    std::string tag = absl::StrCat("r", round);
    bool started = false;
    std::string text = testing::RunThenKill({dir, tag, mode}, 20000 + rng() % 80000, round % 2 == 1, &started);
    ASSERT_TRUE(started);
    std::istringstream lines(text);
    std::string word, id;
    while (lines >> word >> id) acked.insert(id);

    auto engine = OpenEngine(dir);
    absl::StatusOr<AuditVerifyReport> v = engine->VerifyAccessLog();
    ASSERT_TRUE(v.ok());
    EXPECT_TRUE(v->ok) << v->problem;
    std::set<std::string> logged;
    for (int r = 0; r <= round; ++r) {
      auto events = engine->PatientAccesses(absl::StrCat("r", r, "-pat"), absl::InfinitePast(), absl::InfiniteFuture(), 1000000);
      ASSERT_TRUE(events.ok());
      for (const AuditEvent& e : *events) logged.insert(e.event_id);
    }
    for (const std::string& a : acked) EXPECT_TRUE(logged.count(a)) << "acknowledged decision " << a << " has no record";
    acked_total = acked.size();
  }
  EXPECT_GT(acked_total, 20u) << "the writer hardly decided: the test proves little";
}

TEST(AuditLog, CrashInDurableModeLosesNoAcknowledgedRecord) { CrashLosesNoAcknowledgedRecord("decide"); }

// Buffered, a record is acknowledged once a Flush returned after it: written unsynced
// batch by batch, then synced by that Flush (the storage's Sync on RocksDB).
TEST(AuditLog, CrashInBufferedModeLosesNoFlushedRecord) { CrashLosesNoAcknowledgedRecord("decide-buffered"); }

}  // namespace
}  // namespace toegang

namespace toegang {
namespace {

// A batch decides as single requests would, in order, and logs every decision.
TEST(AuditLog, DecideBatchDecidesAndLogsLikeSingleRequests) {
  std::string dir = FreshDir("batch");
  auto engine = OpenEngine(dir);
  ASSERT_TRUE(engine->Record({Treats("clin-1", "pat-1")}).ok());
  std::vector<AccessRequest> requests;
  for (int i = 0; i < 150; ++i) {
    requests.push_back(Req(i % 3 == 0 ? "clin-2" : "clin-1", Role::kClinician, "pat-1", 1780000000 + i));
  }
  std::vector<EngineDecision> batch = engine->DecideBatch(requests);
  ASSERT_EQ(batch.size(), requests.size());
  for (size_t i = 0; i < requests.size(); ++i) {
    SCOPED_TRACE(i);
    EngineDecision single = engine->Decide(requests[i]);
    EXPECT_EQ(batch[i].decision.permitted(), single.decision.permitted());
    EXPECT_EQ(batch[i].decision.reasons, single.decision.reasons);
  }
  absl::StatusOr<std::vector<AuditEvent>> logged =
      engine->PatientAccesses("pat-1", absl::InfinitePast(), absl::InfiniteFuture(), 1000);
  ASSERT_TRUE(logged.ok());
  EXPECT_EQ(logged->size(), 300u);
  absl::StatusOr<AuditVerifyReport> v = engine->VerifyAccessLog();
  ASSERT_TRUE(v.ok());
  EXPECT_TRUE(v->ok) << v->problem;
}

TEST(AuditLog, D1_ABatchThatCannotBeLoggedIsDeniedWhole) {
  std::unique_ptr<Engine> engine = EngineWithBrokenLog();
  std::vector<AccessRequest> requests(70, Req("clin-1", Role::kClinician, "pat-1", 1780000000));
  for (const EngineDecision& d : engine->DecideBatch(requests)) {
    EXPECT_FALSE(d.decision.permitted());
    EXPECT_THAT(d.decision.reasons, ElementsAre(Reason::kAuditLogUnavailable));
  }
}

}  // namespace
}  // namespace toegang
