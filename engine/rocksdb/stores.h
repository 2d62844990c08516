// Copyright toegang authors.
//
// stores.h (internal): the two views of one Database (database.h).
#ifndef TOEGANG_ENGINE_ROCKSDB_STORES_H_
#define TOEGANG_ENGINE_ROCKSDB_STORES_H_

#include <memory>

#include "engine/audit/audit_storage.h"
#include "engine/facts/fact_store.h"
#include "engine/rocksdb/database.h"

namespace toegang {

// The facts: rocksdb_fact_store.cc.
std::unique_ptr<FactStore> NewRocksDbFactStore(std::shared_ptr<Database> db);

// The access log's entries: rocksdb_audit_storage.cc.
std::unique_ptr<AuditStorage> NewRocksDbAuditStorage(std::shared_ptr<Database> db);

}  // namespace toegang

#endif  // TOEGANG_ENGINE_ROCKSDB_STORES_H_
