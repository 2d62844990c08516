// Copyright toegang authors.
//
// toegang replica status --replicate CONNINFO [--db DIR]: what the history in
// PostgreSQL holds (its name, format, newest sequence, who wrote how many facts) and,
// with --db, how far the replica there has applied it. Reads only; works while the
// node serves (its store is opened for reading beside it).
#include <iostream>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "engine/cli/cli.h"
#include "engine/replica/replica.h"
#include "engine/rocksdb/rocksdb_store.h"
#include "model/time.h"

namespace toegang::cli {

int Replica(const std::vector<std::string>& args) {
  const std::string conninfo = absl::GetFlag(FLAGS_replicate);
  if (args.size() != 1 || args[0] != "status" || conninfo.empty()) {
    Complain("usage: toegang replica status --replicate CONNINFO [--db DIR]");
    return kBadInput;
  }
  absl::StatusOr<HistoryInfo> info = DescribeHistory(conninfo);
  if (!info.ok()) {
    Complain(std::string(info.status().message()));
    return absl::IsInvalidArgument(info.status()) ? kBadInput : kFailure;
  }
  if (info->history.empty()) {
    std::cout << "no toegang history in this database yet (the first node or load with --replicate makes one)\n";
    return kOk;
  }
  std::cout << "history " << info->history << "\nformat " << info->format << "\nnewest sequence " << info->newest
            << "\n";
  if (info->newest_arrival != absl::InfinitePast()) {
    std::cout << "newest arrival " << FormatInstant(info->newest_arrival) << "\n";
  }
  for (const auto& [node, count] : info->facts_by_node) std::cout << "facts written by " << node << " " << count << "\n";
  if (!DbFlagGiven()) return kOk;
  DurableStoreOptions o;
  o.read_only = true;
  o.create_if_missing = false;
  o.record_cache_bytes = 0;
  absl::StatusOr<std::unique_ptr<FactStore>> local = OpenDurableFactStore(absl::GetFlag(FLAGS_db), o);
  if (!local.ok()) {
    Complain(std::string(local.status().message()));
    return OpenFailure(local.status());
  }
  absl::StatusOr<std::string> bound = (*local)->ReplicaOf();
  if (!bound.ok()) {
    Complain(std::string(bound.status().message()));
    return kFailure;
  }
  if (*bound != info->history) {
    std::cout << "replica at " << absl::GetFlag(FLAGS_db) << ": "
              << (bound->empty() ? std::string("not a replica") : absl::StrCat("a replica of another history, ", *bound))
              << "\n";
    return kFailure;
  }
  const uint64_t applied = (*local)->LastSequence();
  std::cout << "replica at " << absl::GetFlag(FLAGS_db) << ": applied " << applied << ", behind "
            << (info->newest > applied ? info->newest - applied : 0) << "\n";
  return kOk;
}

}  // namespace toegang::cli
