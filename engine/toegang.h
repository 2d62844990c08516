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
// is a deny whose reasons say so (DOMAIN D1). An Engine is safe to share between
// threads.
#ifndef TOEGANG_ENGINE_TOEGANG_H_
#define TOEGANG_ENGINE_TOEGANG_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "engine/audit_log.h"
#include "engine/fact_store.h"
#include "model/request.h"
#include "policy/policy.h"

namespace toegang {

struct Options {
  // Where the durable store lives. Empty: an in-memory store (lost at exit).
  // Default: empty.
  std::string db_path;

  // The policy to decide by. Default: null, meaning the built-in wgbo-default.
  std::shared_ptr<const Policy> policy;

  // How the durable store at db_path is opened (cache sizes, create_if_missing).
  DurableStoreOptions durable;

  // The access log (NEN 7513): every decision is logged in the store's database before
  // (kDurable) or while (kBuffered) it is returned; a decision that cannot be logged is
  // a deny. nullopt turns logging off — for benchmarks only: no access is then provable.
  // Default: durable, 65,536 queued records at most, 1 s of back-pressure.
  std::optional<AuditOptions> audit = AuditOptions{};

  // An already-open store to use instead of opening one (tests, `--facts`).
  // Default: null.
  std::unique_ptr<FactStore> store;
};

// A decision with what keeps its string views alive.
struct EngineDecision {
  Decision decision;
  std::string decision_id;                      // unique per engine and process run
  std::shared_ptr<const PatientRecord> facts;   // the facts decided over
  std::shared_ptr<const Policy> policy;         // the policy decided by
};

class Engine {
 public:
  virtual ~Engine() = default;

  // Opens the store at options.db_path (or in memory) and the policy.
  static absl::StatusOr<std::unique_ptr<Engine>> Open(Options options);

  // Decides `request` on the facts as they are now. Never fails: see above.
  virtual EngineDecision Decide(const AccessRequest& request) = 0;

  // Decides `request` on the facts as the store knew them at `as_of` (replay).
  virtual EngineDecision DecideAsOf(const AccessRequest& request, absl::Time as_of) = 0;

  // Decides each request as Decide would, in order, logging them in slices that share a
  // sync: with the durable log a batch of 1,000 takes about 16 syncs instead of 1,000,
  // so it holds its caller's thread for milliseconds, not seconds.
  virtual std::vector<EngineDecision> DecideBatch(absl::Span<const AccessRequest> requests) = 0;

  // Records facts atomically (all or none). Returns the last sequence number.
  virtual absl::StatusOr<uint64_t> Record(std::vector<Fact> facts) = 0;

  // The store behind the engine (history, as-of reads).
  virtual FactStore& store() = 0;

  // The access log, or null when logging is off.
  virtual AuditLog* audit_log() = 0;

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
