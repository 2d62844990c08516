// Copyright toegang authors.
//
// The facade itself (toegang.h): what Engine adds over the evaluator and the stores —
// every decision logged or denied, replays logged but no access, batches in order, a
// store that cannot be read is a deny, the policy swapped atomically, and the access
// log's calls refused clearly when the log is off. The rules themselves run through
// the Engine in tests/domain_cases_test.cc.
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "engine/testing/engine_factory.h"
#include "engine/toegang.h"
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

AccessRequest Req(const std::string& actor, const std::string& purpose = "treatment") {
  absl::StatusOr<AccessRequest> r = ParseRequestJson(absl::StrCat(
      R"({"at":"2026-03-10T10:00:00+01:00","actor":{"id":")", actor,
      R"(","role":"clinician"},"patient":"pat-1","action":"read","category":"medical","purpose":")", purpose,
      R"("})"));
  EXPECT_TRUE(r.ok()) << r.status();
  return *r;
}

std::unique_ptr<Engine> Treated(Options options = Options()) {
  absl::StatusOr<std::unique_ptr<Engine>> engine = Engine::Open(std::move(options));
  EXPECT_TRUE(engine.ok()) << engine.status();
  EXPECT_TRUE((*engine)
                  ->Record({F(R"({"type":"person","id":"pat-1","birth_date":"1980-04-02"})"),
                            F(R"({"type":"relationship","subject":"clin-1","relation":"treating","object":"pat-1"})")})
                  .ok());
  return *std::move(engine);
}

TEST(Engine, D50_EveryDecisionPermitAndDenyIsLogged) {
  std::unique_ptr<Engine> engine = Treated();
  EngineDecision permit = engine->Decide(Req("clin-1"));
  EngineDecision deny = engine->Decide(Req("clin-9"));
  EXPECT_TRUE(permit.decision.permitted());
  EXPECT_FALSE(deny.decision.permitted());
  EXPECT_NE(permit.decision_id, deny.decision_id);
  ASSERT_TRUE(engine->FlushAccessLog().ok());
  absl::StatusOr<std::vector<AuditEvent>> accesses =
      engine->PatientAccesses("pat-1", absl::InfinitePast(), absl::InfiniteFuture());
  ASSERT_TRUE(accesses.ok()) << accesses.status();
  ASSERT_EQ(accesses->size(), 2u);
  EXPECT_EQ((*accesses)[0].event_id, deny.decision_id);  // newest first
  EXPECT_FALSE((*accesses)[0].permitted);
  EXPECT_EQ((*accesses)[1].event_id, permit.decision_id);
  EXPECT_EQ(engine->AccessLogStats()->appended, 2u);
}

TEST(Engine, D3_AReplayIsLoggedButIsNoAccess) {
  std::unique_ptr<Engine> engine = Treated();
  EngineDecision replay = engine->DecideAsOf(Req("clin-1"), absl::FromUnixSeconds(2000000000));
  EXPECT_TRUE(replay.decision.permitted());
  ASSERT_TRUE(engine->FlushAccessLog().ok());
  EXPECT_EQ(engine->AccessLogStats()->appended, 1u);
  EXPECT_TRUE(engine->PatientAccesses("pat-1", absl::InfinitePast(), absl::InfiniteFuture())->empty());
}

TEST(Engine, DecideBatchAnswersInOrderAsDecideWould) {
  std::unique_ptr<Engine> engine = Treated();
  std::vector<AccessRequest> requests;
  for (int i = 0; i < 150; ++i) requests.push_back(Req(i % 3 == 0 ? "clin-1" : "clin-9"));
  std::vector<EngineDecision> decided = engine->DecideBatch(requests);
  ASSERT_EQ(decided.size(), requests.size());
  for (size_t i = 0; i < decided.size(); ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ(decided[i].decision.permitted(), engine->Decide(requests[i]).decision.permitted());
  }
  ASSERT_TRUE(engine->FlushAccessLog().ok());
  EXPECT_EQ(engine->AccessLogStats()->appended, 300u);
}

// A fact store whose reads fail.
class UnreadableStore final : public FactStore {
 public:
  absl::StatusOr<uint64_t> Append(std::vector<Fact>) override { return absl::InternalError("unwritable"); }
  absl::StatusOr<std::shared_ptr<const PatientRecord>> Patient(absl::string_view, absl::Time) override {
    return absl::DataLossError("stored fact under 'pat-1' is corrupt");
  }
  absl::StatusOr<std::shared_ptr<const std::vector<Stored<Relationship>>>> SubstitutionsOf(absl::string_view,
                                                                                           absl::Time) override {
    return std::make_shared<const std::vector<Stored<Relationship>>>();
  }
  absl::StatusOr<std::shared_ptr<const std::vector<Stored<OrgCategory>>>> CategoriesOf(absl::string_view,
                                                                                       absl::Time) override {
    return absl::DataLossError("unreadable");
  }
  absl::StatusOr<std::vector<Fact>> History(absl::string_view, absl::Time) override {
    return absl::DataLossError("unreadable");
  }
  // The index answers; the records it leads to cannot be read.
  absl::StatusOr<std::vector<std::string>> IndexedPatients(absl::Span<const std::string>, absl::string_view after,
                                                           size_t) override {
    if (after.empty()) return std::vector<std::string>{"pat-1"};
    return std::vector<std::string>();
  }
  uint64_t LastSequence() const override { return 0; }
  absl::StatusOr<std::optional<std::string>> PatientOfFact(absl::string_view) override {
    return absl::DataLossError("unreadable");
  }
  absl::Status Check(const std::vector<Fact>&) override { return absl::DataLossError("unreadable"); }
  absl::StatusOr<uint64_t> AppendReplicated(std::vector<Fact>) override { return absl::InternalError("unwritable"); }
  absl::Status BindReplica(absl::string_view) override { return absl::InternalError("unwritable"); }
  absl::StatusOr<std::string> ReplicaOf() override { return std::string(); }
  absl::Status Remove(const FactRemoval&, AuditStorage*) override { return absl::InternalError("unwritable"); }
};

TEST(Engine, D1_AStoreThatCannotBeReadIsADenyWithTheCause) {
  absl::StatusOr<std::unique_ptr<Engine>> engine =
      testing::OpenEngineOnStores(Options(), std::make_unique<UnreadableStore>(), NewMemoryAuditStorage());
  ASSERT_TRUE(engine.ok()) << engine.status();
  EngineDecision d = (*engine)->Decide(Req("clin-1"));
  EXPECT_FALSE(d.decision.permitted());
  ASSERT_EQ(d.decision.reasons.size(), 1u);
  EXPECT_EQ(d.decision.reasons[0], Reason::kPolicyError);
  EXPECT_THAT(d.decision.error, HasSubstr("corrupt"));
  EXPECT_FALSE(d.decision.legal_basis.has_value());
}

// A listing of patients whose records cannot be read is an error, never a short list.
TEST(Engine, PatientsOnAStoreThatCannotBeReadIsAnErrorNotAShortList) {
  absl::StatusOr<std::unique_ptr<Engine>> engine =
      testing::OpenEngineOnStores(Options(), std::make_unique<UnreadableStore>(), NewMemoryAuditStorage());
  ASSERT_TRUE(engine.ok()) << engine.status();
  PatientsQuery q;
  q.request = Req("clin-1");
  absl::StatusOr<PatientPage> page = (*engine)->Patients(q);
  EXPECT_EQ(page.status().code(), absl::StatusCode::kDataLoss) << page.status();
  EXPECT_THAT(std::string(page.status().message()), HasSubstr("corrupt"));
}

TEST(Engine, SetPolicySwapsForTheNextDecision) {
  std::unique_ptr<Engine> engine = Treated();
  EXPECT_EQ(engine->Decide(Req("clin-1")).decision.policy, "wgbo-default@1");
  absl::StatusOr<std::shared_ptr<const Policy>> youth = BuiltinPolicy("youth-care-opvoedrijk");
  ASSERT_TRUE(youth.ok());
  std::shared_ptr<const Policy> before = engine->policy();
  engine->SetPolicy(*youth);
  EXPECT_EQ(engine->policy(), *youth);
  EngineDecision d = engine->Decide(Req("clin-1"));
  EXPECT_EQ(d.policy, *youth);
  EXPECT_EQ(before->id(), "wgbo-default@1");  // a decision holding the old one keeps it
}

TEST(Engine, WithTheLogOffAccessLogCallsAreRefusedNotEmpty) {
  Options options;
  options.audit = std::nullopt;
  std::unique_ptr<Engine> engine = Treated(std::move(options));
  EXPECT_TRUE(engine->Decide(Req("clin-1")).decision.permitted());
  EXPECT_FALSE(engine->AccessLogStats().has_value());
  EXPECT_TRUE(engine->FlushAccessLog().ok());
  EXPECT_EQ(engine->PatientAccesses("pat-1", absl::InfinitePast(), absl::InfiniteFuture()).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(engine->VerifyAccessLog().status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(engine->PurgeAccessLog(absl::InfinitePast(), absl::Now()).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(engine->Health().ok());
}

TEST(Engine, HistoryAndLastSequenceComeFromTheStore) {
  std::unique_ptr<Engine> engine = Treated();
  EXPECT_EQ(engine->LastSequence(), 2u);
  absl::StatusOr<std::vector<Fact>> history = engine->History("pat-1");
  ASSERT_TRUE(history.ok());
  EXPECT_EQ(history->size(), 2u);
  EXPECT_TRUE(engine->History("pat-1", absl::InfinitePast())->empty());
  absl::StatusOr<AuditVerifyReport> verified = engine->VerifyAccessLog();
  ASSERT_TRUE(verified.ok());
  EXPECT_TRUE(verified->ok);
}

}  // namespace
}  // namespace toegang
