// Copyright toegang authors.
#include "engine/toegang.h"

#include <array>
#include <atomic>
#include <random>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/container/inlined_vector.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "base/sync.h"
#include "engine/open_on_stores.h"
#include "engine/patient_search.h"
#include "model/patient_index.h"
#include "model/json.h"
#include "model/status_macros.h"
#include "model/time.h"
#include "policy/evaluator.h"
#include "absl/types/span.h"

namespace toegang {

namespace {

// The actors' side, read once per actor and organisation the lists ask about.
class StoredSources final : public GrantSources {
 public:
  explicit StoredSources(FactStore& store) : store_(store) {}
  absl::Span<const Stored<Relationship>> SubstitutionsOf(absl::string_view actor) override {
    return Read(subs_, actor, [&] { return store_.SubstitutionsOf(actor); });
  }
  absl::Span<const Stored<OrgCategory>> CategoriesOf(absl::string_view organization) override {
    return Read(categories_, organization, [&] { return store_.CategoriesOf(organization); });
  }
  const absl::Status& error() const { return error_; }

 private:
  // The list under `key`, read once; a read that fails is kept, to refuse the lists on.
  template <typename T, typename ReadFn>
  absl::Span<const Stored<T>> Read(absl::flat_hash_map<std::string, std::shared_ptr<const std::vector<Stored<T>>>>& cache,
                                   absl::string_view key, ReadFn read_fn) {
    auto [it, fresh] = cache.try_emplace(std::string(key));
    if (fresh) {
      absl::StatusOr<std::shared_ptr<const std::vector<Stored<T>>>> read = read_fn();
      if (read.ok()) {
        it->second = *std::move(read);
      } else if (error_.ok()) {
        error_ = read.status();
      }
    }
    return it->second ? absl::Span<const Stored<T>>(*it->second) : absl::Span<const Stored<T>>();
  }

  FactStore& store_;
  absl::flat_hash_map<std::string, std::shared_ptr<const std::vector<Stored<Relationship>>>> subs_;
  absl::flat_hash_map<std::string, std::shared_ptr<const std::vector<Stored<OrgCategory>>>> categories_;
  absl::Status error_;
};

class EngineImpl final : public Engine {
 public:
  EngineImpl(std::unique_ptr<FactStore> store, ReplicatedStore* replica, std::unique_ptr<AuditStorage> audit_storage,
             std::unique_ptr<AuditLog> audit, std::shared_ptr<const Policy> policy, ArrivalClock log_clock)
      : log_clock_(log_clock),
        store_(std::move(store)),
        replica_(replica),
        audit_storage_(std::move(audit_storage)),
        audit_(std::move(audit)),
        policy_(std::move(policy)) {
    std::random_device rd;
    id_prefix_ = absl::StrFormat("%08x", rd());
  }

  ~EngineImpl() override {
    if (shipper_ != nullptr) {
      // What was decided last is shipped too, if PostgreSQL is there (a log in memory
      // would otherwise take it along).
      if (audit_->Flush().ok()) shipper_->ShipNow().IgnoreError();
      shipper_.reset();
    }
  }

  absl::Status StartShipping(const ReplicaOptions& options) {
    absl::StatusOr<std::unique_ptr<AccessLogShipper>> shipper = AccessLogShipper::Start(options, audit_storage_.get());
    if (!shipper.ok()) return shipper.status();
    shipper_ = *std::move(shipper);
    return absl::OkStatus();
  }

  EngineDecision Decide(const AccessRequest& request) override {
    return DecideAsOf(request, absl::InfiniteFuture());
  }

  EngineDecision DecideAsOf(const AccessRequest& request, absl::Time as_of) override {
    EngineDecision out;
    if (!request.at_least.empty()) {
      Consistency c = WaitConsistent(request.at_least);
      if (!c.status.ok()) out = Refused(c.reason, c.status);
    }
    if (out.policy == nullptr) out = Evaluated(request, as_of);
    if (audit_ == nullptr) return out;
    std::optional<absl::Time> replay;
    if (as_of != absl::InfiniteFuture()) replay = as_of;
    absl::Status logged = audit_->AppendDecision(request, out.decision, out.decision_id, replay);
    if (!logged.ok()) Deny(&out, Reason::kAuditLogUnavailable, logged);
    return out;
  }

  std::vector<EngineDecision> DecideBatch(absl::Span<const AccessRequest> requests) override {
    // A slice of 64 bounds what one batch puts in the log's queue at once, so other
    // callers' records interleave with it.
    constexpr size_t kSlice = 64;
    std::vector<EngineDecision> out;
    out.reserve(requests.size());
    // The records are read a window at a time (FactStore::Patients), so a store can
    // overlap the lookups' waits for memory; 16 keeps what it loads in the CPU's caches
    // until the window is decided.
    constexpr size_t kWindow = 16;
    std::vector<absl::string_view> patients;
    for (size_t start = 0; start < requests.size(); start += kWindow) {
      const size_t end = std::min(requests.size(), start + kWindow);
      patients.clear();
      for (size_t i = start; i < end; ++i) patients.push_back(requests[i].patient);
      // Tokens are waited for before the window's records are read.
      std::array<Consistency, kWindow> consistent;
      for (size_t i = start; i < end; ++i) {
        if (!requests[i].at_least.empty()) consistent[i - start] = WaitConsistent(requests[i].at_least);
      }
      std::vector<absl::StatusOr<std::shared_ptr<const PatientRecord>>> records = store_->Patients(patients);
      for (size_t i = start; i < end; ++i) {
        const Consistency& c = consistent[i - start];
        out.push_back(c.status.ok() ? EvaluatedOn(requests[i], std::move(records[i - start]), absl::InfiniteFuture())
                                    : Refused(c.reason, c.status));
      }
    }
    if (audit_ == nullptr) return out;
    std::vector<AuditLog::LoggedDecision> slice;
    for (size_t start = 0; start < out.size(); start += kSlice) {
      const size_t end = std::min(out.size(), start + kSlice);
      slice.clear();
      for (size_t i = start; i < end; ++i) slice.push_back({&requests[i], &out[i].decision, out[i].decision_id});
      std::vector<absl::Status> logged = audit_->AppendDecisions(slice);
      for (size_t i = start; i < end; ++i) {
        if (!logged[i - start].ok()) Deny(&out[i], Reason::kAuditLogUnavailable, logged[i - start]);
      }
    }
    return out;
  }

  absl::StatusOr<uint64_t> Record(std::vector<Fact> facts) override { return store_->Append(std::move(facts)); }

  absl::StatusOr<GrantsAnswer> Grants(absl::string_view patient, const GrantsQuery& query) override {
    GrantsAnswer out;
    out.patient = std::string(patient);
    out.at = query.at;
    out.sequence = store_->LastSequence();
    out.policy = policy();
    absl::StatusOr<std::shared_ptr<const PatientRecord>> record = store_->Patient(patient, absl::InfiniteFuture());
    if (!record.ok()) return record.status();
    out.facts = *std::move(record);
    StoredSources sources(*store_);
    out.list = ListGrants(*out.policy, *out.facts, query, sources);
    // A list made on facts that could not all be read would be wrong: none at all.
    if (!sources.error().ok()) return sources.error();
    return out;
  }

  absl::StatusOr<std::vector<std::string>> PatientIds(absl::string_view after, size_t limit) override {
    return store_->IndexedPatients({std::string(kEveryPatientKey)}, after, limit);
  }

  absl::StatusOr<RetentionReport> Retention(absl::string_view patient, absl::Time at) override {
    if (audit_ == nullptr) {
      return absl::FailedPreconditionError(
          "the access log is off: a retention report counts its records (DOMAIN D41, D51)");
    }
    absl::StatusOr<std::shared_ptr<const PatientRecord>> record = store_->Patient(patient);
    if (!record.ok()) return record.status();
    return RetentionOn(**record, at);
  }

  // The report on `record` (the patient's facts, read once by the caller) and the
  // patient's access-log records. REQUIRES: audit_ != nullptr.
  absl::StatusOr<RetentionReport> RetentionOn(const PatientRecord& record, absl::Time at) {
    uint64_t removed = 0;
    absl::StatusOr<std::vector<AuditEvent>> events = audit_->PatientRecords(record.patient, &removed);
    if (!events.ok()) return events.status();
    std::vector<LoggedRecord> logged;
    logged.reserve(events->size());
    for (AuditEvent& e : *events) logged.push_back({e.seq, e.logged_at, e.category, std::move(e.consents)});
    RetentionReport report = RetentionOf(policy()->params(), record, logged, at);
    report.access_log_removed = removed;
    return report;
  }

  absl::StatusOr<RetentionRemoval> ApplyRetention(absl::string_view patient, absl::Time at) override {
    if (audit_ == nullptr) {
      return absl::FailedPreconditionError(
          "the access log is off: what retention removes depends on its records (DOMAIN D41, D51)");
    }
    if (const absl::Time now = log_clock_(); at > now) {
      return absl::FailedPreconditionError(absl::StrCat("retention apply at ", FormatInstant(at),
                                                        " is ahead of the clock (", FormatInstant(now),
                                                        "): nothing is removed before it is due"));
    }
    absl::StatusOr<std::string> bound = store_->ReplicaOf();
    if (!bound.ok()) return bound.status();
    if (!bound->empty()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "this store is a replica of history ", *bound,
          ": removing facts from one node would leave them in the history and on every other node"));
    }
    const uint64_t known = store_->LastSequence();
    // One read of the facts for both what is due and which facts those are.
    absl::StatusOr<std::shared_ptr<const PatientRecord>> record = store_->Patient(patient);
    if (!record.ok()) return record.status();
    absl::StatusOr<RetentionReport> report = RetentionOn(**record, at);
    if (!report.ok()) return report.status();
    RetentionRemoval out;
    out.patient = std::string(patient);
    FactRemoval removal;
    removal.patient = std::string(patient);
    removal.removed_at = at;
    removal.term = report->facts_term;
    removal.covered_seq = std::min(report->facts_through_seq, known);
    if (report->facts_due_now) {
      absl::flat_hash_set<absl::string_view> kept;
      for (const RetentionReport::Kept& k : report->kept) kept.insert(k.fact);
      (*record)->ForEachDossierFact([&](const auto& f) {
        using T = std::decay_t<decltype(f.value)>;
        if (f.provenance.seq > removal.covered_seq) return;
        if constexpr (std::is_same_v<T, Consent>) {
          if (kept.contains(f.value.id)) {
            ++out.kept;
            return;
          }
        }
        removal.seqs.push_back(f.provenance.seq);
      });
      out.facts = removal.seqs.size();
      if (out.facts > 0) out.facts_term = report->facts_term;
    }
    std::vector<AuditLog::RecordRemoval> records;
    for (const RetentionReport::Record& r : report->access_log) {
      if (r.due_now) records.push_back({r.seq, r.term, r.years});
    }
    // Asked even for no record: without the key nothing is removed, facts included, so
    // that a removal never depends on whether the patient's records happen to be due.
    absl::StatusOr<std::vector<AuditRow>> rows = audit_->Tombstones(patient, records, at);
    if (!rows.ok()) return rows.status();
    removal.access_log = *std::move(rows);
    out.access_log = removal.access_log.size();
    if (removal.seqs.empty() && removal.access_log.empty()) return out;
    TOEGANG_RETURN_IF_ERROR(store_->Remove(removal, audit_storage_.get()));
    return out;
  }

  absl::StatusOr<PatientPage> Patients(const PatientsQuery& query) override {
    return engine_internal::SearchPatients(*store_, policy(), query);
  }

  absl::StatusOr<std::vector<Fact>> OrganizationHistory(absl::string_view organization, absl::Time as_of) override {
    absl::StatusOr<std::shared_ptr<const std::vector<Stored<OrgCategory>>>> categories =
        store_->CategoriesOf(organization, as_of);
    if (!categories.ok()) return categories.status();
    std::vector<Fact> out;
    out.reserve((*categories)->size());
    for (const Stored<OrgCategory>& c : **categories) out.emplace_back(c.value, c.provenance);
    return out;
  }

  absl::StatusOr<std::vector<Fact>> History(absl::string_view patient, absl::Time as_of) override {
    return store_->History(patient, as_of);
  }

  uint64_t LastSequence() const override { return store_->LastSequence(); }

  absl::StatusOr<std::optional<std::string>> PatientOfFact(absl::string_view id) override {
    return store_->PatientOfFact(id);
  }

  std::string ConsistencyToken(uint64_t seq) const override {
    return replica_ == nullptr ? std::string() : replica_->Token(seq);
  }

  std::optional<ReplicaStatus> Replication() const override {
    if (replica_ == nullptr) return std::nullopt;
    return replica_->Status();
  }

  // Every decision reads the policy; a policy seldom changes. Each thread keeps the
  // pointer it last read and takes the lock only when SetPolicy has moved the version
  // since (or the thread last read another engine's). So a thread keeps the last policy
  // it read alive until it reads another or ends.
  std::shared_ptr<const Policy> policy() const override {
    struct View {
      uint64_t engine = 0;
      uint64_t version = 0;
      std::shared_ptr<const Policy> policy;
    };
    thread_local View view;
    const uint64_t version = policy_version_.load(std::memory_order_acquire);
    if (view.engine != serial_ || view.version != version) {
      ReaderMutexLock lock(&mu_);
      view = {serial_, policy_version_.load(std::memory_order_relaxed), policy_};
    }
    return view.policy;
  }

  void SetPolicy(std::shared_ptr<const Policy> policy) override {
    WriterMutexLock lock(&mu_);
    policy_ = std::move(policy);
    policy_version_.fetch_add(1, std::memory_order_release);
  }

  absl::StatusOr<std::vector<AuditEvent>> PatientAccesses(absl::string_view patient, absl::Time from,
                                                          absl::Time until, size_t limit) override {
    if (audit_ == nullptr) return LogOff();
    return audit_->PatientAccesses(patient, from, until, limit);
  }

  absl::StatusOr<PatientAccessList> AccessesEverywhere(absl::string_view patient, absl::Time from, absl::Time until,
                                                       size_t limit) override {
    PatientAccessList out;
    absl::StatusOr<std::vector<AuditEvent>> mine = PatientAccesses(patient, from, until, limit);
    if (!mine.ok()) return mine.status();
    out.accesses = *std::move(mine);
    if (shipper_ == nullptr) return out;
    absl::StatusOr<OtherNodesAccesses> others = shipper_->OthersAccesses(patient, from, until, limit);
    if (!others.ok()) {
      if (!absl::IsUnavailable(others.status())) return others.status();
      out.missing.push_back(absl::StrCat("only this node's accesses are listed: ", others.status().message()));
      return out;
    }
    out.missing = std::move(others->missing);
    MergeAccesses(&out.accesses, std::move(others->accesses), limit);
    return out;
  }

  absl::StatusOr<std::vector<ShippedChainReport>> VerifyShippedAccessLogs() override {
    if (shipper_ == nullptr) {
      return absl::FailedPreconditionError("this node does not replicate its access log (no --replicate, or the log is off)");
    }
    if (absl::Status flushed = audit_->Flush(); !flushed.ok()) return flushed;
    if (absl::Status shipped = shipper_->ShipNow(); !shipped.ok()) return shipped;
    return shipper_->VerifyShipped();
  }

  std::optional<ShippingStatus> AccessLogShipping() const override {
    if (shipper_ == nullptr) return std::nullopt;
    return shipper_->Status();
  }

  absl::StatusOr<AuditVerifyReport> VerifyAccessLog() override {
    if (audit_ == nullptr) return LogOff();
    return audit_->Verify();
  }

  absl::StatusOr<AuditPurgeReport> PurgeAccessLog(absl::Time before, absl::Time now) override {
    if (audit_ == nullptr) return LogOff();
    return audit_->Purge(before, now);
  }

  absl::Status ScrubRemoved() override { return store_->Scrub(); }

  absl::Status FlushAccessLog() override { return audit_ == nullptr ? absl::OkStatus() : audit_->Flush(); }

  std::optional<AuditStats> AccessLogStats() const override {
    if (audit_ == nullptr) return std::nullopt;
    return audit_->stats();
  }

  absl::Status Health() override {
    absl::Status store = store_->Health();
    if (!store.ok()) return store;
    return audit_ ? audit_->Health() : absl::OkStatus();
  }

 private:
  static absl::Status LogOff() { return absl::FailedPreconditionError("the access log is off"); }

  // D1: a deny with `reason` and the error's cause, in place of what was decided (its
  // age band kept). NEN 7513: an access that cannot be logged does not happen.
  static void Deny(EngineDecision* out, Reason reason, const absl::Status& why) {
    Decision denied;
    denied.policy = out->policy->id();
    denied.age_band = out->decision.age_band;
    denied.reasons.push_back(reason);
    denied.error = std::string(why.message());
    out->decision = std::move(denied);
    out->explanation.reset();  // it explained a decision that no longer stands
  }

  // The facts on the actor's side, read from the store only if the decision asks: the
  // actor's substitutions when a rule needs them (most never do: a parent, an insurer,
  // a clinician treating the patient), an organisation's categories when the patient's
  // facts name one (a consent recorded in Mitz). A read that fails is kept, to deny on.
  class StoredActorFacts final : public ActorFactSource {
   public:
    StoredActorFacts(FactStore& store, absl::string_view actor, absl::Time as_of)
        : store_(store), actor_(actor), as_of_(as_of) {}
    absl::Span<const Stored<Relationship>> Substitutions() override {
      if (!read_) {
        read_ = true;
        absl::StatusOr<std::shared_ptr<const std::vector<Stored<Relationship>>>> subs =
            store_.SubstitutionsOf(actor_, as_of_);
        if (subs.ok()) {
          subs_ = *std::move(subs);
        } else {
          error_ = subs.status();
        }
      }
      return subs_ ? absl::Span<const Stored<Relationship>>(*subs_) : absl::Span<const Stored<Relationship>>();
    }
    absl::Span<const Stored<OrgCategory>> CategoriesOf(absl::string_view organization) override {
      for (const auto& [org, list] : categories_) {
        if (org == organization) return *list;
      }
      absl::StatusOr<std::shared_ptr<const std::vector<Stored<OrgCategory>>>> list =
          store_.CategoriesOf(organization, as_of_);
      if (!list.ok()) {
        error_ = list.status();
        return {};
      }
      categories_.emplace_back(std::string(organization), *std::move(list));
      return *categories_.back().second;
    }
    const absl::Status& error() const { return error_; }

   private:
    FactStore& store_;
    absl::string_view actor_;
    absl::Time as_of_;
    bool read_ = false;
    std::shared_ptr<const std::vector<Stored<Relationship>>> subs_;
    // The actor's organisation and a disclosure's recipient: two at most.
    absl::InlinedVector<std::pair<std::string, std::shared_ptr<const std::vector<Stored<OrgCategory>>>>, 2> categories_;
    absl::Status error_;
  };

  // Whether a request's consistency token is met here; if not, the reason to deny.
  struct Consistency {
    absl::Status status;
    Reason reason = Reason::kReplicaBehind;
  };
  Consistency WaitConsistent(absl::string_view token) {
    if (replica_ == nullptr) {
      return {absl::InvalidArgumentError(
                  "consistency.at_least: this node does not replicate a history, so no consistency token is its own"),
              Reason::kInvalidRequest};
    }
    absl::StatusOr<uint64_t> seq = replica_->TokenSequence(token);
    if (!seq.ok()) {
      return {absl::InvalidArgumentError(absl::StrCat("consistency.at_least: ", seq.status().message())),
              Reason::kInvalidRequest};
    }
    const absl::Duration wait = replica_->options().max_wait;
    if (replica_->WaitApplied(*seq, wait)) return {};
    return {absl::UnavailableError(absl::StrCat("this node has applied the history up to ", replica_->Status().applied,
                                                ", not yet ", *seq, " (waited ", absl::FormatDuration(wait), ")"))};
  }

  // A deny made before any record was read.
  EngineDecision Refused(Reason reason, const absl::Status& why) {
    EngineDecision out;
    out.policy = policy();
    out.decision_id = NextDecisionId();
    Deny(&out, reason, why);
    return out;
  }

  EngineDecision Evaluated(const AccessRequest& request, absl::Time as_of) {
    return EvaluatedOn(request, store_->Patient(request.patient, as_of), as_of);
  }

  // Decides `request` on `record`, the patient's record as of `as_of` (or why it could
  // not be read).
  EngineDecision EvaluatedOn(const AccessRequest& request,
                             absl::StatusOr<std::shared_ptr<const PatientRecord>> record, absl::Time as_of) {
    EngineDecision out;
    out.policy = policy();
    out.decision_id = NextDecisionId();
    if (!record.ok()) {
      Deny(&out, Reason::kPolicyError, record.status());
      return out;
    }
    out.facts = *std::move(record);
    StoredActorFacts actor_facts(*store_, request.actor.id, as_of);
    if (request.explain) {
      auto explanation = std::make_shared<Explanation>();
      out.decision = EvaluateExplained(*out.policy, request, *out.facts, actor_facts, explanation.get());
      out.explanation = std::move(explanation);
    } else {
      out.decision = Evaluate(*out.policy, request, *out.facts, actor_facts);
    }
    // D1: a read that failed on the way is a deny with its cause, whatever the rules
    // made of the missing substitutions or categories.
    if (!actor_facts.error().ok()) Deny(&out, Reason::kPolicyError, actor_facts.error());
    return out;
  }

  // A number no other engine of this process has had (serial_).
  static uint64_t NextSerial() {
    static std::atomic<uint64_t> last{0};
    return last.fetch_add(1, std::memory_order_relaxed) + 1;
  }

  // "<8 hex digits of this engine>-<a base-36 count>": up to 15 characters for the first
  // 2 billion decisions, so it fits a std::string without a heap allocation.
  std::string NextDecisionId() {
    uint64_t n = next_id_.fetch_add(1, std::memory_order_relaxed);
    char buf[32];
    char* end = buf + sizeof buf;
    char* p = end;
    do {
      p[-1] = "0123456789abcdefghijklmnopqrstuvwxyz"[n % 36];
      --p;
      n /= 36;
    } while (n != 0);
    std::string id;
    id.reserve(id_prefix_.size() + 1 + static_cast<size_t>(end - p));
    id.append(id_prefix_).push_back('-');
    id.append(p, end);
    return id;
  }

 private:
  // Destroyed in reverse: the log (writing what it queues), its storage, the facts.
  const ArrivalClock log_clock_;  // the access log's: what "now" is to a removal
  std::unique_ptr<FactStore> store_;
  ReplicatedStore* const replica_;  // store_ itself when replicating; else null
  std::unique_ptr<AuditStorage> audit_storage_;
  std::unique_ptr<AuditLog> audit_;
  std::unique_ptr<AccessLogShipper> shipper_;  // replicating with the log on; stopped first
  mutable SharedMutex mu_;
  std::shared_ptr<const Policy> policy_ ABSL_GUARDED_BY(mu_);
  std::atomic<uint64_t> policy_version_{0};  // moved by SetPolicy, under mu_
  // Tells this engine's policy apart in a thread's view from an engine that was at the
  // same address before.
  const uint64_t serial_ = NextSerial();
  std::string id_prefix_;
  std::atomic<uint64_t> next_id_{1};
};

}  // namespace

namespace engine_internal {

absl::StatusOr<std::unique_ptr<Engine>> OpenOnStores(Options options, std::unique_ptr<FactStore> facts,
                                                    std::unique_ptr<AuditStorage> access_log) {
  std::shared_ptr<const Policy> policy = options.policy;
  if (!policy) {
    absl::StatusOr<std::shared_ptr<const Policy>> builtin = BuiltinPolicy("wgbo-default");
    if (!builtin.ok()) return builtin.status();
    policy = *builtin;
  }
  std::unique_ptr<AuditLog> audit;
  if (options.audit) {
    absl::StatusOr<std::unique_ptr<AuditLog>> log = AuditLog::Open(access_log.get(), *options.audit);
    if (!log.ok()) return log.status();
    audit = *std::move(log);
  }
  ReplicatedStore* replica = nullptr;
  if (options.replicate) {
    absl::StatusOr<std::unique_ptr<ReplicatedStore>> replicated =
        ReplicatedStore::Open(*options.replicate, std::move(facts));
    if (!replicated.ok()) return replicated.status();
    replica = replicated->get();
    facts = *std::move(replicated);
  }
  auto engine =
      std::make_unique<EngineImpl>(std::move(facts), replica, std::move(access_log), std::move(audit), std::move(policy),
                                   options.audit ? options.audit->clock : options.clock);
  if (options.replicate && options.audit) TOEGANG_RETURN_IF_ERROR(engine->StartShipping(*options.replicate));
  return std::unique_ptr<Engine>(std::move(engine));
}

}  // namespace engine_internal

std::string EngineDecision::Json() const {
  std::string out = DecisionToJson(decision, decision_id);
  if (explanation == nullptr || policy == nullptr) return out;
  return WithExplanation(out, ExplanationJson(*policy, decision, *explanation));
}

absl::StatusOr<std::unique_ptr<Engine>> Engine::Open(Options options) {
  if (options.db_path.empty()) {
    std::unique_ptr<FactStore> facts = NewMemoryFactStore(options.clock);
    return engine_internal::OpenOnStores(std::move(options), std::move(facts), NewMemoryAuditStorage());
  }
  options.durable.clock = options.clock;
  absl::StatusOr<DurableStore> store = OpenDurableStore(options.db_path, options.durable);
  if (!store.ok()) return store.status();
  return engine_internal::OpenOnStores(std::move(options), std::move(store->facts), std::move(store->access_log));
}

}  // namespace toegang
