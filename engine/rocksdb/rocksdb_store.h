// Copyright toegang authors.
//
// rocksdb_store.h: the durable store, one RocksDB database holding both the facts
// (engine/facts/fact_store.h) and the access log's entries (engine/audit/audit_storage.h).
//
//   DurableStoreOptions options;
//   absl::StatusOr<DurableStore> store = OpenDurableStore("/var/lib/toegang", options);
//   if (!store.ok()) { ... }
//   absl::StatusOr<uint64_t> last = store->facts->Append(std::move(facts));
//
// Opening fails with a clear message — never a silent empty store, never a repaired
// history — when the store is newer than this build, corrupt, not a toegang store,
// locked by another process (unless read_only), holds a store's files but no CURRENT,
// or comes back shorter than it acknowledged (DataLoss, nothing changed; see
// ack_record.h). Appends are durable (write-ahead log synced, acknowledgement
// recorded) when they return OK; concurrent appends share one sync (group commit).
//
// The package is the only code that includes RocksDB headers (STYLE.md).
#ifndef TOEGANG_ENGINE_ROCKSDB_ROCKSDB_STORE_H_
#define TOEGANG_ENGINE_ROCKSDB_ROCKSDB_STORE_H_

#include <cstddef>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "engine/audit/audit_storage.h"
#include "engine/facts/fact_store.h"

namespace toegang {

struct DurableStoreOptions {
  // Create an empty store when `path` has none. Default: true.
  bool create_if_missing = true;
  // RocksDB block cache (data, index and filter blocks). Default: 64 MiB.
  size_t block_cache_bytes = size_t{64} << 20;
  // Patient records and clinician coverages kept decoded in memory, in bytes: a decision
  // on a patient found here reads no RocksDB block. Default: 192 MiB (about 200,000
  // patients of the usual size). 0: none.
  size_t record_cache_bytes = size_t{192} << 20;
  // Stamps arrival. Default: the wall clock. (Engine::Open sets it from Options::clock.)
  ArrivalClock clock = WallClock;
  // Open for reading only, beside a process that may be writing the store (a RocksDB
  // secondary instance): history, audit verify and the patient's access list while
  // `serve` runs. It sees the store as it was when opened. Writes fail. Default: false.
  bool read_only = false;
  // Open a store that comes back shorter than it acknowledged (a damaged or removed
  // write-ahead log), and record what it now holds as acknowledged: the lost facts stay
  // lost and must be recorded again. `toegang store accept-loss` only. Default: false.
  bool accept_loss = false;
};

// The two faces of one open database. Each keeps the database open while it lives;
// either may be destroyed first. Both are safe to share between threads.
struct DurableStore {
  std::unique_ptr<FactStore> facts;
  std::unique_ptr<AuditStorage> access_log;
};

// Opens (or, with create_if_missing, creates) the store at `path`; see above.
absl::StatusOr<DurableStore> OpenDurableStore(const std::string& path, const DurableStoreOptions& options);

// The same, for callers that only read or write facts (`load`, `history`, tools).
absl::StatusOr<std::unique_ptr<FactStore>> OpenDurableFactStore(const std::string& path,
                                                                const DurableStoreOptions& options);

// The store format this build writes and reads. 2: every id, a person's included, is
// in the `ids` column family, and TOEGANG-ACK records what was acknowledged. 3: the
// index from parties to patients (model/patient_index.h). 4: the access log keeps runs
// of records as parts (engine/rocksdb/audit_parts.h), which a build for format 3 would
// take for damage; records stored one per key are read as they are. An older store is
// upgraded when first opened for writing.
inline constexpr int kStoreFormatVersion = 4;

}  // namespace toegang

#endif  // TOEGANG_ENGINE_ROCKSDB_ROCKSDB_STORE_H_
