// Copyright toegang authors.
//
// shipper.h: each node's access log, also kept in PostgreSQL (README "Running several
// nodes"). The log stays the node's own — hash-chained, durable mode keeping its promise
// locally — and a thread copies every record, in order, to `toegang_access_log`, filed
// under the chain's id and the record's sequence, so a record shipped twice (after a
// crash) is stored once. A patient's accesses and `audit verify` then cover every node,
// and say when some node's records are not all there yet.
#ifndef TOEGANG_ENGINE_REPLICA_SHIPPER_H_
#define TOEGANG_ENGINE_REPLICA_SHIPPER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "engine/audit/audit_log.h"
#include "engine/audit/audit_storage.h"
#include "engine/replica/replica.h"

namespace toegang {

struct ShippingStatus {
  std::string chain;      // this node's chain id
  uint64_t head = 0;      // the last record logged here
  uint64_t shipped = 0;   // the last record known to be in PostgreSQL
  absl::Status connection;
};

// Accesses logged by the other nodes, and what could not be included.
struct OtherNodesAccesses {
  std::vector<AuditEvent> accesses;  // newest first
  std::vector<std::string> missing;  // e.g. "node web-2 has 12 records not shipped yet (as of ...)"
};

// One shipped chain, verified.
struct ShippedChainReport {
  std::string node;
  std::string chain;
  AuditVerifyReport report;
};

class AccessLogShipper {
 public:
  // Starts shipping `local` (which must outlive the shipper). The tables are the
  // history's (ReplicatedStore::Open makes them).
  static absl::StatusOr<std::unique_ptr<AccessLogShipper>> Start(const ReplicaOptions& options, AuditStorage* local);
  virtual ~AccessLogShipper() = default;

  virtual ShippingStatus Status() const = 0;

  // Ships what is logged now and returns once it is in PostgreSQL (or why not).
  virtual absl::Status ShipNow() = 0;

  // The accesses of `patient` with `at` in [from, until) logged by other nodes, newest
  // first, at most `limit`; replays left out. Unavailable when PostgreSQL cannot be read.
  virtual absl::StatusOr<OtherNodesAccesses> OthersAccesses(absl::string_view patient, absl::Time from,
                                                            absl::Time until, size_t limit) = 0;

  // Every chain in PostgreSQL, each verified; this node's also against its own log.
  virtual absl::StatusOr<std::vector<ShippedChainReport>> VerifyShipped() = 0;
};

// Adds the other nodes' accesses to this node's own `mine`: newest first, each access
// once (a record of this node may be among the shipped ones too: they are told apart
// by event id), at most `limit`.
void MergeAccesses(std::vector<AuditEvent>* mine, std::vector<AuditEvent> others, size_t limit);

// The same reads for tools beside a running node (`toegang audit --replicate`), on a
// connection of their own: the accesses of `patient` logged by every chain but
// `exclude_chain`; every chain, verified on its own.
absl::StatusOr<OtherNodesAccesses> ShippedAccesses(const std::string& conninfo, absl::string_view exclude_chain,
                                                   absl::string_view patient, absl::Time from, absl::Time until,
                                                   size_t limit);
absl::StatusOr<std::vector<ShippedChainReport>> VerifyShippedChains(const std::string& conninfo);

}  // namespace toegang

#endif  // TOEGANG_ENGINE_REPLICA_SHIPPER_H_
