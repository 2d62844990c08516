// Copyright toegang authors.
//
// fault_injection.h (tests only): a durable store whose file writes fail the way a
// full disk makes them fail (ENOSPC) while a switch is on, so the store's real code
// paths handle it.
#ifndef TOEGANG_ENGINE_ROCKSDB_FAULT_INJECTION_H_
#define TOEGANG_ENGINE_ROCKSDB_FAULT_INJECTION_H_

#include <atomic>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "engine/rocksdb/rocksdb_store.h"

namespace toegang {

struct DiskFaults {
  std::atomic<bool> full{false};
};

// OpenDurableStore, writing through a file system that fails while `faults->full`.
absl::StatusOr<DurableStore> OpenDurableStoreWithFaults(const std::string& path, const DurableStoreOptions& options,
                                                        std::shared_ptr<DiskFaults> faults);

}  // namespace toegang

#endif  // TOEGANG_ENGINE_ROCKSDB_FAULT_INJECTION_H_
