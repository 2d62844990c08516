// Copyright toegang authors.
//
// fact_store.h: where facts live. Two implementations: MemoryFactStore (tests, and
// `decide --facts FILE`) and the RocksDB store (durable; engine/rocksdb_fact_store.h).
//
// Facts are history (DOMAIN D40): Append never overwrites; every fact gets the next
// sequence number and its arrival instant. Reads "as of" an instant see only facts
// that had arrived by then, so any past decision can be replayed exactly.
//
// Implementations are safe to share between threads.
#ifndef TOEGANG_ENGINE_FACT_STORE_H_
#define TOEGANG_ENGINE_FACT_STORE_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "engine/audit_storage.h"
#include "model/facts.h"
#include "model/patient_record.h"

namespace toegang {

class FactStore {
 public:
  virtual ~FactStore() = default;

  // Appends `facts` atomically: all of them, or (on any invalid fact) none, with the
  // 1-based position of the first bad fact as "fact N: ..." and as data
  // (model/facts.h FactPositionOf). Stamps sequence numbers
  // and the arrival instant. Returns the last sequence number. Durable when it
  // returns OK, for a durable store.
  virtual absl::StatusOr<uint64_t> Append(std::vector<Fact> facts) = 0;

  // Every fact about `patient` that had arrived by `as_of`. The record is an
  // immutable snapshot: later appends do not change it.
  virtual absl::StatusOr<std::shared_ptr<const PatientRecord>> Patient(
      absl::string_view patient, absl::Time as_of = absl::InfiniteFuture()) = 0;

  // The substitute_for relationships of `clinician` that had arrived by `as_of`, as an
  // immutable snapshot (shared with the cache: no copy per decision).
  virtual absl::StatusOr<std::shared_ptr<const std::vector<Stored<Relationship>>>> SubstitutionsOf(
      absl::string_view clinician, absl::Time as_of = absl::InfiniteFuture()) = 0;

  // The patient's facts in arrival order, as the store knew them at `as_of`.
  virtual absl::StatusOr<std::vector<Fact>> History(absl::string_view patient,
                                                    absl::Time as_of = absl::InfiniteFuture()) = 0;

  // The last sequence number given out (0: empty store).
  virtual uint64_t LastSequence() const = 0;

  // Where this store keeps the access log (engine/audit_log.h): the same database.
  virtual AuditStorage& audit_storage() = 0;

  // OK while the store can write; otherwise the error that stops it (a full disk, an
  // I/O error). A durable store in error first tries to recover (RocksDB's Resume),
  // at most once a second, so it heals by itself once the cause is gone.
  virtual absl::Status Health() { return absl::OkStatus(); }
};

// The clock that stamps arrival. Tests inject their own; `decide --facts FILE` uses one
// that returns InfinitePast (facts from a file have no arrival, DOMAIN D19).
using ArrivalClock = absl::Time (*)();
absl::Time WallClock();
absl::Time NoArrivalClock();

// An in-memory store with the same semantics as the durable one.
std::unique_ptr<FactStore> NewMemoryFactStore(ArrivalClock clock = WallClock);

// Tests only: switches that make the durable store's file writes fail the way a full
// disk does (ENOSPC), with the store's real code paths handling it.
struct DiskFaults {
  std::atomic<bool> full{false};
};

struct DurableStoreOptions {
  // Create an empty store when `path` has none. Default: true.
  bool create_if_missing = true;
  // RocksDB block cache (data, index and filter blocks). Default: 64 MiB.
  size_t block_cache_bytes = size_t{64} << 20;
  // Patient records and clinician coverages kept decoded in memory. Default: 100,000.
  size_t record_cache_entries = 100000;
  // Stamps arrival. Default: the wall clock.
  ArrivalClock clock = WallClock;
  // Open for reading only, beside a process that may be writing the store (a RocksDB
  // secondary instance): history, audit verify and the patient's access list while
  // `serve` runs. It sees the store as it was when opened. Append fails. Default: false.
  bool read_only = false;
  // Open a store that comes back shorter than it acknowledged (a damaged or removed
  // write-ahead log), and record what it now holds as acknowledged: the lost facts stay
  // lost and must be recorded again. `toegang store accept-loss` only. Default: false.
  bool accept_loss = false;
  // Tests only. Default: null.
  std::shared_ptr<DiskFaults> disk_faults;
};

// Opens (or creates) the RocksDB store at `path`: engine/rocksdb_fact_store.cc.
// Fails with a clear message — never a silent empty store, never a repaired history —
// when the store is newer than this build, corrupt, not a toegang store, locked by
// another process (unless read_only), holds a store's files but no CURRENT, or comes
// back shorter than it acknowledged (engine/ack_record.h): DataLoss, nothing changed.
// Appends are durable (write-ahead log synced, acknowledgement recorded) when they
// return OK; concurrent appends share one sync (group commit).
absl::StatusOr<std::unique_ptr<FactStore>> OpenDurableFactStore(const std::string& path,
                                                                const DurableStoreOptions& options);

// The store format this build writes and reads. 2: every id, a person's included, is
// in the `ids` column family, and TOEGANG-ACK records what was acknowledged (a version
// 1 store is upgraded when first opened for writing).
inline constexpr int kStoreFormatVersion = 2;

}  // namespace toegang

#endif  // TOEGANG_ENGINE_FACT_STORE_H_
