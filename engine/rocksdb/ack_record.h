// Copyright toegang authors.
//
// ack_record.h (internal): what the store has acknowledged, kept outside RocksDB.
//
// RocksDB's write-ahead log holds the newest facts and access-log records until they
// are flushed. A damaged, truncated or deleted WAL is recovered by RocksDB as a shorter
// history, without a word: a withdrawal the patient was told is recorded is gone and the
// consent counts again. RocksDB tracks the sizes of closed WALs in the MANIFEST
// (track_and_verify_wals_in_manifest), never the live one. So the store also writes,
// after every synced write and before answering, the highest fact and access-log
// sequence numbers it has acknowledged into this small file beside the database
// (TOEGANG-ACK). Opening compares: a store that comes back shorter than it acknowledged
// is refused, saying so, before RocksDB is allowed to change a file.
//
// The file holds two slots in different disk sectors, each with a generation and a
// checksum; a write goes to the older slot, so a write torn by a crash leaves the other
// (the previous acknowledgement, which is all that was promised) intact.
//
// Thread-safe.
#ifndef TOEGANG_ENGINE_ROCKSDB_ACK_RECORD_H_
#define TOEGANG_ENGINE_ROCKSDB_ACK_RECORD_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "base/sync.h"

namespace toegang {

struct Acknowledged {
  uint64_t facts = 0;  // the last fact sequence number acknowledged
  uint64_t audit = 0;  // the last access-log record synced
};

class AckRecord {
 public:
  static constexpr char kFileName[] = "TOEGANG-ACK";

  // What the file in `dir` says; nullopt when there is no file. DataLoss when neither
  // slot is readable.
  static absl::StatusOr<std::optional<Acknowledged>> Read(const std::string& dir);

  // Opens the file in `dir` for writing and takes an exclusive lock on it (a second
  // writer of the same store gets Unavailable). A missing file is created holding
  // `create_with` (and the directory synced), or, without it, NotFound.
  static absl::StatusOr<std::unique_ptr<AckRecord>> OpenForWriting(const std::string& dir,
                                                                   std::optional<Acknowledged> create_with);
  ~AckRecord();

  // Raises the recorded values to at least these and syncs the file. Returns once the
  // new values are on disk.
  absl::Status AdvanceFacts(uint64_t seq);
  absl::Status AdvanceAudit(uint64_t seq);

  // Replaces the recorded values, also downwards (an operator accepting a loss).
  absl::Status Reset(const Acknowledged& values);

  Acknowledged values() const;

 private:
  AckRecord(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  absl::Status WriteLocked(const Acknowledged& next) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const int fd_;
  const std::string path_;
  mutable Mutex mu_;
  Acknowledged values_ ABSL_GUARDED_BY(mu_);
  uint64_t generation_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace toegang

#endif  // TOEGANG_ENGINE_ROCKSDB_ACK_RECORD_H_
