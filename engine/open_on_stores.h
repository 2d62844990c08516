// Copyright toegang authors.
//
// open_on_stores.h (internal): an Engine over stores already open. Engine::Open opens
// its stores from Options and calls this; engine/testing/engine_factory.h lets tests
// pass stores of their own (a broken access-log storage, a disk that fills up).
#ifndef TOEGANG_ENGINE_OPEN_ON_STORES_H_
#define TOEGANG_ENGINE_OPEN_ON_STORES_H_

#include <memory>

#include "absl/status/statusor.h"
#include "engine/audit/audit_storage.h"
#include "engine/facts/fact_store.h"
#include "engine/toegang.h"

namespace toegang::engine_internal {

// `options.db_path` and `options.durable` are not used: the stores are given.
// REQUIRES: `facts` and `access_log` non-null.
absl::StatusOr<std::unique_ptr<Engine>> OpenOnStores(Options options, std::unique_ptr<FactStore> facts,
                                                    std::unique_ptr<AuditStorage> access_log);

}  // namespace toegang::engine_internal

#endif  // TOEGANG_ENGINE_OPEN_ON_STORES_H_
