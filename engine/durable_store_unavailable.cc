// Copyright toegang authors.
//
// Until the RocksDB store lands (issue: durable consent history), opening a durable
// store fails loudly instead of silently giving an empty in-memory one.
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "engine/fact_store.h"

namespace toegang {

std::unique_ptr<FactStore> OpenDurableFactStore(const std::string& path, absl::Status* status) {
  *status = absl::FailedPreconditionError(
      "the durable store at '" + path + "' cannot be opened by this build: use --facts FILE");
  return nullptr;
}

}  // namespace toegang
