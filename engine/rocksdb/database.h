// Copyright toegang authors.
//
// database.h (internal): the one RocksDB database behind a durable store — opening it
// (with every refusal rocksdb_store.h lists), writing to it, and healing after a failed
// write. The fact store (rocksdb_fact_store.cc) and the access log's storage
// (rocksdb_audit_storage.cc) are two views of one Database.
//
// A write that fails (a full disk, an I/O error) makes the database refuse writes
// (sticky) until Recover() succeeds: RocksDB's Resume, and when RocksDB holds the error
// unrecoverable (a failed write-ahead log write is, in RocksDB 7.8) a reopen, as a
// restart would: the write-ahead log is replayed up to the failed write, which was
// never acknowledged, and checked against what was. Recover tries at most once a
// second. Memory and disk never disagree.
//
// After every synced write and before answering, the caller records what it wrote as
// acknowledged (TOEGANG-ACK, ack_record.h), so a store whose write-ahead log was
// damaged or removed is refused when opened instead of coming back shorter.
//
// Thread-safe.
#ifndef TOEGANG_ENGINE_ROCKSDB_DATABASE_H_
#define TOEGANG_ENGINE_ROCKSDB_DATABASE_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "base/sync.h"
#include "engine/rocksdb/ack_record.h"
#include "engine/rocksdb/layout.h"
#include "engine/rocksdb/rocksdb_store.h"
#include "rocksdb/cache.h"
#include "rocksdb/db.h"
#include "rocksdb/env.h"
#include "rocksdb/file_system.h"
#include "rocksdb/write_batch.h"

namespace toegang {

// Wraps the file system the database writes through (fault_injection.h).
using FileSystemWrap = std::function<std::shared_ptr<rocksdb::FileSystem>(std::shared_ptr<rocksdb::FileSystem>)>;

class Database {
 public:
  // Opens the store at `path`: the primary (read-write) or, with options.read_only, a
  // secondary that reads beside a running primary. `wrap`, when set, wraps the file
  // system (tests inject a full disk through it).
  static absl::StatusOr<std::shared_ptr<Database>> Open(const std::string& path, const DurableStoreOptions& options,
                                                        FileSystemWrap wrap = nullptr);
  ~Database();

  const DurableStoreOptions& options() const { return options_; }
  bool read_only() const { return options_.read_only; }
  // The last fact sequence the store held when opened.
  uint64_t facts_at_open() const { return facts_at_open_; }
  // Whether the store holds the index from parties to patients (format 3): a reader of a
  // store an older build wrote, not yet opened for writing, has none.
  bool has_patient_index() const { return format_ >= 3; }

  // A generation no kept iterator serves: the fact store's while a write of facts is in
  // flight, when a new iterator may see the write or not.
  static constexpr uint64_t kUnsettled = ~uint64_t{0};

  // An iterator over the facts, with what it reads: the fact store's generation and
  // the facts' files (their flushes and compactions so far) when it was made.
  struct FactsIterator {
    std::unique_ptr<rocksdb::Iterator> it;
    uint64_t generation = 0;
    uint64_t files = 0;
  };

  // The database as it is now, kept open (not reopened) while this lives. Never hold
  // one across a call to Write or Recover.
  class Use {
   public:
    explicit Use(const Database& d) ABSL_SHARED_LOCK_FUNCTION(d.db_mu_) : d_(d) { d_.db_mu_.ReaderLock(); }
    ~Use() ABSL_UNLOCK_FUNCTION() { d_.db_mu_.ReaderUnlock(); }
    Use(const Use&) = delete;
    Use& operator=(const Use&) = delete;

    // False after a reopen failed: every read then fails with Closed().
    bool open() const { return d_.db_ != nullptr; }
    // REQUIRES: open().
    rocksdb::DB* db() const { return d_.db_.get(); }
    rocksdb::ColumnFamilyHandle* cf(rocksdb_layout::Cf cf) const { return d_.handles_[cf]; }
    // Which opening of the database this is: a batch built here is written only to it.
    uint64_t instance() const { return d_.db_instance_; }

    // An iterator over the facts (prefix_same_as_start): one kept by Keep when no fact
    // was written and no file of the facts changed since it was made, else a new one.
    // `generation` is the fact store's count of its writes, read before this call, or
    // kUnsettled (a new iterator, never kept). A
    // kept iterator reads the facts as they were when it was made, which with no write
    // since is what a new one would read, through the same files. Making one cost as
    // much as a fifth of a read of a patient not cached (bench/RESULTS.md).
    // REQUIRES: open().
    FactsIterator Facts(uint64_t generation) const;
    // Keeps `it` (from Facts, in good health) for a later read.
    void Keep(FactsIterator it) const;

   private:
    const Database& d_;
  };

  // Drops the kept iterators: each holds on to the memtables and files of when it was
  // made. The fact store calls it after writing facts (its generation moved on, so none
  // would be used again); the database itself after a flush or compaction of the facts.
  void DropKeptIterators() ABSL_LOCKS_EXCLUDED(db_mu_, kept_mu_);

  // Writes `batch`, built under a Use of `instance`; synced when `sync`. Refused while
  // the database is in error (see above), and when it was reopened since the batch was
  // built. A failed write puts the database in error, saying it was `what`.
  // REQUIRES: no Use held by this thread.
  absl::Status Write(rocksdb::WriteBatch* batch, bool sync, uint64_t instance, absl::string_view what)
      ABSL_LOCKS_EXCLUDED(db_mu_, mu_);

  // Records a synced write as acknowledged (facts up to `facts`, access-log records up
  // to `audit`; 0 leaves one as it is). A failure to record it is kept for Health: the
  // write itself stands.
  void Acknowledge(uint64_t facts, uint64_t audit) ABSL_LOCKS_EXCLUDED(mu_);

  // OK when the database can write; otherwise tries to make it (at most once a second)
  // and returns the error that still stops it.
  // REQUIRES: no Use held by this thread.
  absl::Status Recover() ABSL_LOCKS_EXCLUDED(db_mu_, mu_);

  // Recover's answer, and then whether acknowledgements are being recorded.
  absl::Status Health() ABSL_LOCKS_EXCLUDED(db_mu_, mu_);

  // Rewrites every file of the database so that no file holds what was deleted or
  // overwritten (FactStore::Scrub): every memtable flushed (so no write-ahead log keeps
  // old bytes), every column family compacted to its last level, then the database
  // reopened, so that its list of files (the MANIFEST, which names each file's first
  // and last key) is written afresh. Reads and writes go on beside the rewrite; they wait
  // only while the database is reopened. A batch built before the reopen is still
  // written: the data and the column families are the same.
  // REQUIRES: no Use held by this thread.
  absl::Status Scrub() ABSL_LOCKS_EXCLUDED(db_mu_, mu_);

  static absl::Status Closed();
  static absl::Status ReadOnlyError();

 private:
  // What the store held when opened, and what it had acknowledged.
  struct Inventory {
    int format = 0;       // 0: no format version recorded
    uint64_t facts = 0;   // last fact sequence
    uint64_t audit = 0;   // last access-log record
    bool empty = true;    // no key in any column family
  };
  enum class DirState { kNone, kStore, kDamaged, kNotDirectory };

  Database(std::string path, const DurableStoreOptions& o, FileSystemWrap wrap)
      : path_(std::move(path)), options_(o), wrap_(std::move(wrap)) {}

  // Opening, in the order OpenPrimary takes the steps.
  absl::Status OpenPrimary();
  DirState Inspect(std::string* found);
  absl::Status MakePrivateDir();
  absl::Status Create();
  absl::Status OpenExisting();
  absl::StatusOr<Inventory> ReadOnlyInventory(const std::vector<std::string>& names);
  absl::Status OpenReadWrite(const std::vector<std::string>& names);
  absl::Status Upgrade(int from);
  absl::Status AdoptAcknowledged(const Inventory& inv);
  absl::Status OpenSecondary();
  absl::StatusOr<Inventory> TakeInventory(rocksdb::DB* db, const std::vector<rocksdb::ColumnFamilyHandle*>& handles);
  absl::Status CheckFormat(const Inventory& inv, bool had_facts_cf);
  absl::Status CheckAcknowledged(const Inventory& inv, const std::optional<Acknowledged>& ack);
  rocksdb::DBOptions DbOptions(const std::string& info_log_path);
  std::vector<rocksdb::ColumnFamilyDescriptor> ColumnFamilies(const std::vector<std::string>& existing,
                                                              bool for_reading = false);
  absl::Status Explain(const rocksdb::Status& s) const;

  // REQUIRES: mu_ held and sticky_ set.
  void TryRecoverLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // REQUIRES: mu_ held. Closes the database and opens it again; with `new_instance`,
  // batches built before are refused (after a write error, what they were built on may
  // not have been written).
  absl::Status ReopenLocked(bool new_instance = true) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // REQUIRES: db_mu_ held exclusively, or the database not yet shared.
  void CloseDb();
  // The kept iterators, out of kept_ (destroyed by the caller, with the database open).
  std::vector<FactsIterator> TakeKeptIterators() ABSL_LOCKS_EXCLUDED(kept_mu_);
  // A flush or compaction of the facts finished (on RocksDB's thread; see database.cc).
  void FactsFilesChanged() ABSL_LOCKS_EXCLUDED(db_mu_, kept_mu_);
  friend class FactsFilesListener;
  // At the end of a healthy primary's life: writes the memtables to tables.
  void FlushForClose() ABSL_LOCKS_EXCLUDED(mu_);

  const std::string path_;
  const DurableStoreOptions options_;
  const FileSystemWrap wrap_;
  std::unique_ptr<rocksdb::Env> env_;  // owner-only files (and tests' faults); outlives db_
  rocksdb::DBOptions db_options_;
  std::shared_ptr<rocksdb::Cache> block_cache_;
  uint64_t facts_at_open_ = 0;
  int format_ = 0;                  // as opened (after any upgrade)
  std::unique_ptr<AckRecord> ack_;  // null when read_only
  std::string secondary_dir_;       // read_only: the scratch directory

  // The database, reopened (ReopenLocked) after a write error RocksDB cannot resume
  // from. Readers hold db_mu_ shared while they use it.
  mutable SharedMutex db_mu_;
  std::unique_ptr<rocksdb::DB> db_;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;  // in rocksdb_layout::Cf order
  uint64_t db_instance_ = 0;                           // bumped by every reopen

  // Iterators over the facts kept between reads (Use::Facts). Emptied before db_
  // closes. Lock order: db_mu_, then kept_mu_.
  mutable Mutex kept_mu_;
  mutable std::vector<FactsIterator> kept_ ABSL_GUARDED_BY(kept_mu_);
  // The flushes and compactions of the facts so far (a RocksDB listener counts them):
  // an iterator made before one reads the files it replaced, and keeps them on disk
  // (and a flushed memtable in memory) while it lives.
  std::atomic<uint64_t> facts_files_{0};

  // Lock order: mu_, then db_mu_.
  mutable Mutex mu_;
  absl::Status sticky_ ABSL_GUARDED_BY(mu_);  // the write error that stops writes
  absl::Time last_recovery_attempt_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  absl::Status ack_error_ ABSL_GUARDED_BY(mu_);
  uint64_t facts_written_ ABSL_GUARDED_BY(mu_) = 0;  // a reopen must find at least these
};

}  // namespace toegang

#endif  // TOEGANG_ENGINE_ROCKSDB_DATABASE_H_
