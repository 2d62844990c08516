// Copyright toegang authors.
//
// raw_store.h: test-only raw access to a closed store's RocksDB column families, for
// tests that must tamper with what is on disk (format version, audit records).
#ifndef TOEGANG_ENGINE_ROCKSDB_RAW_STORE_H_
#define TOEGANG_ENGINE_ROCKSDB_RAW_STORE_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace toegang::testing {

// Puts (or, with erase, deletes) one key in column family `cf` of the closed store at
// `path`, synced.
absl::Status RawPutForTesting(const std::string& path, const std::string& cf, const std::string& key,
                              const std::string& value, bool erase = false);

// Deletes every key of column family `cf` that starts with `prefix`, synced; the count.
absl::StatusOr<int> RawErasePrefixForTesting(const std::string& path, const std::string& cf,
                                             const std::string& prefix);

// Reads one key of column family `cf` of the closed store at `path`.
absl::StatusOr<std::string> RawGetForTesting(const std::string& path, const std::string& cf, const std::string& key);

// The access log's entry of record `seq` in the closed store at `path`, wherever it is
// kept (its own key, or within a part: engine/rocksdb/audit_parts.h).
absl::StatusOr<std::string> RawAuditEntryForTesting(const std::string& path, uint64_t seq);

// Stores `entry` as record `seq`'s in the closed store at `path` (or, with erase,
// removes the record and leaves the rest of its part), synced: what a forger with
// the files would do. NotFound when no key holds the record.
absl::Status RawPutAuditEntryForTesting(const std::string& path, uint64_t seq, const std::string& entry,
                                        bool erase = false);

}  // namespace toegang::testing

#endif  // TOEGANG_ENGINE_ROCKSDB_RAW_STORE_H_
