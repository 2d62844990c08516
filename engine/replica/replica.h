// Copyright toegang authors.
//
// replica.h: several nodes, one consent history (README "Running several nodes").
//
// PostgreSQL holds the history: one append-only table of facts, each numbered and
// stamped by the transaction that stored it, so every node sees the same order and the
// same arrival instants (`--as-of` replays alike everywhere). Each node keeps its own
// store — RocksDB or memory — as a replica of that table, applied in sequence order by a
// thread woken by LISTEN/NOTIFY (and by a poll, should a notification be missed).
// Decisions read only the local replica; nothing on their path touches PostgreSQL.
//
//   ReplicaOptions o;
//   o.conninfo = "host=db.internal dbname=toegang user=toegang";
//   absl::StatusOr<std::unique_ptr<ReplicatedStore>> store = ReplicatedStore::Open(o, std::move(local));
//
// A write (Append) takes a transaction-level advisory lock in PostgreSQL, so writes
// through different nodes follow one another: under it the node applies whatever it had
// not yet, checks the batch as a single store would (DOMAIN D40: ids, withdrawal
// targets, all or nothing), numbers and stores it, and answers once PostgreSQL has
// committed. When PostgreSQL cannot be reached, writes fail at once and decisions go on.
//
// A consistency token ("tg1.<history>.<sequence>") names a point of the history: a node
// that has applied that sequence decides on facts at least that new.
#ifndef TOEGANG_ENGINE_REPLICA_REPLICA_H_
#define TOEGANG_ENGINE_REPLICA_REPLICA_H_

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "engine/facts/fact_store.h"

namespace toegang {

struct ReplicaOptions {
  // A libpq connection string ("host=... dbname=... user=..." or a postgresql:// URI).
  // Required.
  std::string conninfo;
  // Names this node in the rows it writes. Default: the host's name.
  std::string node;
  // How often the applier asks PostgreSQL for new facts when no notification came.
  // Default: 250 ms.
  absl::Duration poll_interval = absl::Milliseconds(250);
  // How long a request carrying a token waits for this node to apply it, unless it
  // says otherwise. Default: 1 s.
  absl::Duration max_wait = absl::Seconds(1);
};

// What a node knows of its replication, for /healthz, /metrics and `replica status`.
struct ReplicaStatus {
  std::string history;   // the history's name (32 hex digits)
  std::string node;
  uint64_t applied = 0;  // the last sequence applied here
  uint64_t newest = 0;   // the newest sequence PostgreSQL last reported
  absl::Time contact = absl::InfinitePast();  // when PostgreSQL last answered the applier
  absl::Status connection;  // OK while the applier is connected
  absl::Status applying;    // OK unless the applier stopped on facts it cannot apply
};

class ReplicatedStore : public FactStore {
 public:
  // Connects, creates the history's tables in an empty database (or checks the ones it
  // finds: another history than `local` replicates, or a newer format, is refused), binds
  // `local` to the history, applies what it lacks, and starts the applier. When
  // PostgreSQL cannot be reached but `local` already replicates a history, the node
  // opens on what it has and catches up once PostgreSQL returns.
  static absl::StatusOr<std::unique_ptr<ReplicatedStore>> Open(const ReplicaOptions& options,
                                                               std::unique_ptr<FactStore> local);

  // The token naming `seq` in this history.
  virtual std::string Token(uint64_t seq) const = 0;

  // The sequence `token` names. InvalidArgument when it is no token, or one of another
  // history.
  virtual absl::StatusOr<uint64_t> TokenSequence(absl::string_view token) const = 0;

  // True once facts up to `seq` are applied here; false when `max_wait` passed first.
  virtual bool WaitApplied(uint64_t seq, absl::Duration max_wait) = 0;

  virtual ReplicaStatus Status() const = 0;
  virtual const ReplicaOptions& options() const = 0;
};

// What PostgreSQL holds, read without changing anything (`toegang replica status`).
struct HistoryInfo {
  std::string history;  // "" when the database holds no toegang history yet
  int format = 0;
  uint64_t newest = 0;  // the newest sequence
  absl::Time newest_arrival = absl::InfinitePast();
  std::vector<std::pair<std::string, uint64_t>> facts_by_node;  // who wrote how many
};
absl::StatusOr<HistoryInfo> DescribeHistory(const std::string& conninfo);

// The host's name: a node's name when ReplicaOptions::node is empty.
std::string DefaultNodeName();

// "tg1.<history>.<seq>".
std::string ConsistencyToken(absl::string_view history, uint64_t seq);
// The history and sequence of a token; InvalidArgument naming what is wrong.
absl::Status ParseConsistencyToken(absl::string_view token, std::string* history, uint64_t* seq);

}  // namespace toegang

#endif  // TOEGANG_ENGINE_REPLICA_REPLICA_H_
