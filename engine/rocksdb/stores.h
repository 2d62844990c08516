// Copyright toegang authors.
//
// stores.h (internal): the two views of one Database (database.h).
#ifndef TOEGANG_ENGINE_ROCKSDB_STORES_H_
#define TOEGANG_ENGINE_ROCKSDB_STORES_H_

#include <memory>
#include <vector>

#include "engine/audit/audit_storage.h"
#include "engine/facts/fact_store.h"
#include "engine/rocksdb/database.h"

namespace toegang {

// The facts: rocksdb_fact_store.cc.
std::unique_ptr<FactStore> NewRocksDbFactStore(std::shared_ptr<Database> db);

// The access log's entries: rocksdb_audit_storage.cc.
std::unique_ptr<AuditStorage> NewRocksDbAuditStorage(std::shared_ptr<Database> db);

// The database `log` keeps its entries in, when it is a durable store's; else null. A
// retention removal writes the log's tombstones with the facts when both share one.
const Database* DatabaseOf(const AuditStorage* log);

// Puts `rows`' entries over the stored ones into `batch` (AuditStorage::Replace);
// NotFound, with nothing put, when one is not stored.
absl::Status PutReplacements(const Database::Use& use, const std::vector<AuditRow>& rows, rocksdb::WriteBatch* batch);

}  // namespace toegang

#endif  // TOEGANG_ENGINE_ROCKSDB_STORES_H_
