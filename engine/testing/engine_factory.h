// Copyright toegang authors.
//
// engine_factory.h (tests only): Engines the public Options cannot make — over stores a
// test built itself, or on a durable store whose disk a test can fill.
#ifndef TOEGANG_ENGINE_TESTING_ENGINE_FACTORY_H_
#define TOEGANG_ENGINE_TESTING_ENGINE_FACTORY_H_

#include <memory>

#include "absl/status/statusor.h"
#include "engine/audit/audit_storage.h"
#include "engine/facts/fact_store.h"
#include "engine/rocksdb/fault_injection.h"
#include "engine/toegang.h"

namespace toegang::testing {

// An engine over `facts` and `access_log` (options.db_path and options.durable unused).
absl::StatusOr<std::unique_ptr<Engine>> OpenEngineOnStores(Options options, std::unique_ptr<FactStore> facts,
                                                          std::unique_ptr<AuditStorage> access_log);

// An engine on the durable store at options.db_path, whose file writes fail as on a
// full disk while `faults->full` is set.
absl::StatusOr<std::unique_ptr<Engine>> OpenEngineWithDiskFaults(Options options, std::shared_ptr<DiskFaults> faults);

}  // namespace toegang::testing

#endif  // TOEGANG_ENGINE_TESTING_ENGINE_FACTORY_H_
