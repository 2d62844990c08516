// Copyright toegang authors.
//
// fault_injection.h (tests only): a durable store whose file writes fail the way a
// full disk makes them fail (ENOSPC) while a switch is on, so the store's real code
// paths handle it; it also counts the syncs of its write-ahead logs.
#ifndef TOEGANG_ENGINE_ROCKSDB_FAULT_INJECTION_H_
#define TOEGANG_ENGINE_ROCKSDB_FAULT_INJECTION_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "engine/rocksdb/rocksdb_store.h"

namespace toegang {

struct DiskFaults {
  std::atomic<bool> full{false};
  // Syncs of write-ahead log files that reached the disk (a test's view of fsync).
  std::atomic<uint64_t> wal_syncs{0};
};

// OpenDurableStore, writing through a file system that fails while `faults->full`.
absl::StatusOr<DurableStore> OpenDurableStoreWithFaults(const std::string& path, const DurableStoreOptions& options,
                                                        std::shared_ptr<DiskFaults> faults);

}  // namespace toegang

#endif  // TOEGANG_ENGINE_ROCKSDB_FAULT_INJECTION_H_
