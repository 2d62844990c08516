// Copyright toegang authors.
#include "engine/testing/engine_factory.h"

#include "engine/open_on_stores.h"

namespace toegang::testing {

absl::StatusOr<std::unique_ptr<Engine>> OpenEngineOnStores(Options options, std::unique_ptr<FactStore> facts,
                                                          std::unique_ptr<AuditStorage> access_log) {
  return engine_internal::OpenOnStores(std::move(options), std::move(facts), std::move(access_log));
}

absl::StatusOr<std::unique_ptr<Engine>> OpenEngineWithDiskFaults(Options options, std::shared_ptr<DiskFaults> faults) {
  options.durable.clock = options.clock;
  absl::StatusOr<DurableStore> store = OpenDurableStoreWithFaults(options.db_path, options.durable, std::move(faults));
  if (!store.ok()) return store.status();
  return engine_internal::OpenOnStores(std::move(options), std::move(store->facts), std::move(store->access_log));
}

}  // namespace toegang::testing
