// Copyright toegang authors.
//
// toegang.h: the public facade. Open an engine, record facts, decide requests.
//
//   toegang::Options options;                 // in memory, wgbo-default
//   options.db_path = "/var/lib/toegang";     // durable (RocksDB)
//   absl::StatusOr<std::unique_ptr<toegang::Engine>> engine = toegang::Engine::Open(std::move(options));
//   if (!engine.ok()) { ... }
//   absl::StatusOr<uint64_t> last = (*engine)->Record(facts);   // all or nothing
//   toegang::EngineDecision d = (*engine)->Decide(request);
//   if (d.decision.permitted()) { ... honour d.decision.obligations ... }
//
// (engine/facade_example_test.cc compiles and runs these lines.)
//
// Decide never fails: an error anywhere (the store cannot be read, a fact is missing)
// is a deny whose reasons say so (DOMAIN D1). Every other call returns absl::Status;
// none throws. An Engine is safe to share between threads: every call may be made
// from any thread at any time. The caller owns the Engine; destroying it writes what
// the access log still queues, then closes the store.
#ifndef TOEGANG_ENGINE_TOEGANG_H_
#define TOEGANG_ENGINE_TOEGANG_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "engine/audit/audit_log.h"
#include "engine/facts/fact_store.h"
#include "engine/patients.h"
#include "engine/replica/replica.h"
#include "engine/replica/shipper.h"
#include "engine/rocksdb/rocksdb_store.h"
#include "model/request.h"
#include "policy/explain.h"
#include "policy/grants.h"
#include "policy/policy.h"
#include "policy/retention.h"

namespace toegang {

struct Options {
  // Where the durable store lives. Empty: an in-memory store (lost at exit).
  // Default: empty.
  std::string db_path;

  // The policy to decide by. Default: null, meaning the built-in wgbo-default.
  std::shared_ptr<const Policy> policy;

  // Stamps each recorded fact's arrival (DOMAIN D40), in either store. NoArrivalClock
  // records facts without one, so only their recorded_at limits them (D19): what
  // `decide --facts FILE` does. Default: the wall clock.
  ArrivalClock clock = WallClock;

  // How the durable store at db_path is opened (cache sizes, create_if_missing,
  // read_only). Its clock is replaced by `clock` above.
  DurableStoreOptions durable;

  // The access log (NEN 7513): every decision is logged in the store's database before
  // (kDurable) or while (kBuffered) it is returned; a decision that cannot be logged is
  // a deny. nullopt turns logging off — for benchmarks only: no access is then provable.
  // Default: durable, 65,536 queued records at most, 1 s of back-pressure.
  std::optional<AuditOptions> audit = AuditOptions{};

  // Several nodes, one history (engine/replica/replica.h): the store above becomes a
  // replica of the facts kept in the PostgreSQL `replicate->conninfo` names; Record
  // writes through it, and requests may carry a consistency token. nullopt: this node's
  // store is the history. Default: nullopt.
  std::optional<ReplicaOptions> replicate;
};

// A patient's accesses on every node of a replicated history (Engine::AccessesEverywhere).
struct PatientAccessList {
  std::vector<AuditEvent> accesses;  // newest first
  // What the list could not include: nodes whose records are not all shipped yet, or
  // PostgreSQL out of reach. Empty when the list is complete.
  std::vector<std::string> missing;
};

// A decision with what keeps its string views alive.
struct EngineDecision {
  Decision decision;
  std::string decision_id;                      // unique per engine and process run
  std::shared_ptr<const PatientRecord> facts;   // the facts decided over
  std::shared_ptr<const Policy> policy;         // the policy decided by
  // How the decision was reached, when the request asked (AccessRequest::explain) and
  // the rules were met; null otherwise (a request refused before, say).
  std::shared_ptr<const Explanation> explanation;

  // The decision as JSON (DecisionToJson), with "explanation" when there is one.
  std::string Json() const;
};

// Who may do what to one patient's dossier (Engine::Grants): the lists, with what keeps
// their string views alive.
struct GrantsAnswer {
  std::string patient;
  absl::Time at;
  uint64_t sequence = 0;                        // the store's, when the facts were read
  GrantList list;
  std::shared_ptr<const PatientRecord> facts;   // the facts listed over
  std::shared_ptr<const Policy> policy;

  std::string Json() const { return GrantsJson(list, patient, at, sequence); }
};

class Engine {
 public:
  virtual ~Engine() = default;

  // Opens the store at options.db_path (or in memory) and the policy.
  static absl::StatusOr<std::unique_ptr<Engine>> Open(Options options);

  // Decides `request` on the facts as they are now. Never fails: see above. A request
  // with a consistency token waits, at most ReplicaOptions::max_wait, for this node to
  // apply the facts it names; if it cannot, the answer is a deny with reason
  // replica_behind — never a decision on facts older than the caller asked for.
  virtual EngineDecision Decide(const AccessRequest& request) = 0;

  // Decides `request` on the facts as the store knew them at `as_of` (replay).
  virtual EngineDecision DecideAsOf(const AccessRequest& request, absl::Time as_of) = 0;

  // Decides each request as Decide would, in order, logging them in slices that share a
  // sync: with the durable log a batch of 1,000 takes about 16 syncs instead of 1,000,
  // so it holds its caller's thread for milliseconds, not seconds. The records are read
  // several at a time, their waits for memory overlapping: a decision in a batch costs
  // about half of one decided alone (bench/RESULTS.md).
  virtual std::vector<EngineDecision> DecideBatch(absl::Span<const AccessRequest> requests) = 0;

  // Records facts atomically: all of them, or (on any invalid fact) none, the error
  // naming the first bad fact's position as data (model/facts.h FactPositionOf).
  // Returns the last sequence number. Durable when it returns OK, for a durable store.
  virtual absl::StatusOr<uint64_t> Record(std::vector<Fact> facts) = 0;

  // The patient's facts in arrival order, as the store knew them at `as_of`.
  virtual absl::StatusOr<std::vector<Fact>> History(absl::string_view patient,
                                                    absl::Time as_of = absl::InfiniteFuture()) = 0;

  // Who may do `query.action` to `query.category` of the patient at `query.at`
  // (policy/grants.h): each grant is the decision Decide gives for that party, nothing
  // listed that was not decided. Errors: the store's (the facts cannot be read).
  virtual absl::StatusOr<GrantsAnswer> Grants(absl::string_view patient, const GrantsQuery& query) = 0;

  // The patients `query.request` would be permitted for, a page at a time: each decided
  // by the evaluator as Decide would on the facts up to the listing's pinned sequence
  // (PatientPage::sequence), so a listed patient is a Decide permit; not logged as
  // accesses (none is opened). Errors: InvalidArgument naming page_size or cursor (a
  // cursor of another request, policy or store, or damaged), and the store's — a page
  // that could not be read whole is an error, never a shorter list.
  virtual absl::StatusOr<PatientPage> Patients(const PatientsQuery& query) = 0;

  // The ids of the patients the store holds facts about, in byte order, those after
  // `after` only, at most `limit`.
  virtual absl::StatusOr<std::vector<std::string>> PatientIds(absl::string_view after, size_t limit) = 0;

  // What is held about the patient and when it is due, and why (policy/retention.h): the
  // dossier's facts by the pack's terms, holds, erasure requests, and every access-log
  // record about the patient. FailedPrecondition when the access log is off (the
  // report must count its records, D41).
  virtual absl::StatusOr<RetentionReport> Retention(absl::string_view patient, absl::Time at) = 0;

  // What ApplyRetention removed of one patient's.
  struct RetentionRemoval {
    std::string patient;
    size_t facts = 0;        // the dossier's facts replaced by tombstones
    std::string facts_term;  // under which term (RetentionReport::facts_term)
    size_t kept = 0;         // consents kept because an access-log record relies on them (D41)
    size_t access_log = 0;   // access-log records replaced by tombstones
  };
  // Removes what is due at `at` about `patient` and not held (docs/retention.md): the
  // dossier's facts covered by the term that ended (but consents an access-log record
  // still relies on, D41) and the access-log records whose term ended, each replaced by a
  // tombstone that says what went, when and under which term — in one atomic write, so a
  // crash leaves all of it or none. Applying again removes nothing more. Needs the access
  // log and its key (AuditOptions::checkpoint_key); FailedPrecondition without them, on a
  // replica of a shared history, and for an `at` after the engine's clock (nothing is
  // removed before it is due).
  virtual absl::StatusOr<RetentionRemoval> ApplyRetention(absl::string_view patient, absl::Time at) = 0;

  // The facts about an organisation — its care-provider categories (org_category), which
  // consents to an organization_category reach through — in arrival order, as the store
  // knew them at `as_of`.
  virtual absl::StatusOr<std::vector<Fact>> OrganizationHistory(absl::string_view organization,
                                                                absl::Time as_of = absl::InfiniteFuture()) = 0;

  // The patient of the consent, objection, restriction or capacity assessment `id`;
  // nullopt when there is none.
  virtual absl::StatusOr<std::optional<std::string>> PatientOfFact(absl::string_view id) = 0;

  // The last sequence number given out (0: nothing recorded).
  virtual uint64_t LastSequence() const = 0;

  // Replicating (Options::replicate): the consistency token naming `seq`, which a
  // request may carry (AccessRequest::at_least) to be decided on facts at least that
  // new on any node. "" on a node that does not replicate.
  virtual std::string ConsistencyToken(uint64_t seq) const = 0;

  // Replicating: what this node has applied and knows of the history; nullopt otherwise.
  virtual std::optional<ReplicaStatus> Replication() const = 0;

  // Who accessed `patient`'s dossier with `at` in [from, until), newest first, at most
  // `limit` entries; replays are no access and are left out (DOMAIN D50).
  // FailedPrecondition when the access log is off.
  virtual absl::StatusOr<std::vector<AuditEvent>> PatientAccesses(absl::string_view patient, absl::Time from,
                                                                  absl::Time until, size_t limit = 10000) = 0;

  // PatientAccesses on every node (Options::replicate: the other nodes' records as
  // shipped to PostgreSQL, merged with this node's own), saying what it could not
  // include. Without replication, PatientAccesses and nothing missing.
  virtual absl::StatusOr<PatientAccessList> AccessesEverywhere(absl::string_view patient, absl::Time from,
                                                               absl::Time until, size_t limit = 10000) = 0;

  // Replicating: every node's access log as shipped to PostgreSQL, each chain verified
  // (this node's also against its own records). FailedPrecondition otherwise.
  virtual absl::StatusOr<std::vector<ShippedChainReport>> VerifyShippedAccessLogs() = 0;

  // Replicating with the access log on: how far this node's log is shipped.
  virtual std::optional<ShippingStatus> AccessLogShipping() const = 0;

  // Walks the access log's chain and patient index (engine/audit/audit_log.h Verify).
  // FailedPrecondition when the access log is off.
  virtual absl::StatusOr<AuditVerifyReport> VerifyAccessLog() = 0;

  // Removes the access-log records logged before `before`, leaving an authenticated
  // checkpoint (audit_log.h Purge: refused within 5 years of `now`, D51, and without
  // AuditOptions::checkpoint_key). FailedPrecondition when the access log is off.
  virtual absl::StatusOr<AuditPurgeReport> PurgeAccessLog(absl::Time before, absl::Time now) = 0;

  // Rewrites the store's files so that what ApplyRetention and PurgeAccessLog removed is
  // gone from the disk too, not only from every answer. RocksDB keeps the old bytes —
  // the facts, the keys that say who treated whom, the access-log records — in the files
  // written before a removal until it compacts them, which for a quiet store may be
  // never (FactStore::Scrub). This rewrites every file of the store, which takes as long
  // as a copy of it, and then reopens it; reads and writes go on meanwhile but for the
  // reopen. Call it after a round of removals, not after each. Nothing to do for a store
  // in memory.
  virtual absl::Status ScrubRemoved() = 0;

  // Returns once every decision so far is in the access log on disk (OK when the log
  // is off). What a process calls before it exits.
  virtual absl::Status FlushAccessLog() = 0;

  // The access log's counters; nullopt when the log is off.
  virtual std::optional<AuditStats> AccessLogStats() const = 0;

  // OK while the store and the access log can write; otherwise why not (a full disk, an
  // I/O error). Both heal by themselves once the cause is gone.
  virtual absl::Status Health() = 0;

  // The policy now in force; SetPolicy swaps it atomically. Decisions already under
  // way finish on the policy they started with.
  virtual std::shared_ptr<const Policy> policy() const = 0;
  virtual void SetPolicy(std::shared_ptr<const Policy> policy) = 0;
};

}  // namespace toegang

#endif  // TOEGANG_ENGINE_TOEGANG_H_
