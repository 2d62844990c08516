// Copyright toegang authors.
#include "engine/rocksdb/rocksdb_store.h"

#include "engine/rocksdb/database.h"
#include "engine/rocksdb/stores.h"

namespace toegang {

absl::StatusOr<DurableStore> OpenDurableStore(const std::string& path, const DurableStoreOptions& options) {
  absl::StatusOr<std::shared_ptr<Database>> db = Database::Open(path, options);
  if (!db.ok()) return db.status();
  return DurableStore{NewRocksDbFactStore(*db), NewRocksDbAuditStorage(*db)};
}

absl::StatusOr<std::unique_ptr<FactStore>> OpenDurableFactStore(const std::string& path,
                                                                const DurableStoreOptions& options) {
  absl::StatusOr<std::shared_ptr<Database>> db = Database::Open(path, options);
  if (!db.ok()) return db.status();
  return NewRocksDbFactStore(*std::move(db));
}

}  // namespace toegang
