// Copyright toegang authors.
#include "engine/rocksdb/database.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "base/detached_status.h"
#include "engine/facts/fact_codec.h"
#include "engine/rocksdb/file_systems.h"
#include "engine/rocksdb/index_memtable.h"
#include "model/fact_index.h"
#include "model/patient_index.h"
#include "model/status_macros.h"
#include "rocksdb/filter_policy.h"
#include "rocksdb/listener.h"
#include "rocksdb/memtablerep.h"
#include "rocksdb/options.h"
#include "rocksdb/slice_transform.h"
#include "rocksdb/table.h"

namespace toegang {

using namespace rocksdb_layout;  // NOLINT: the layout's names are this file's vocabulary

absl::StatusOr<std::shared_ptr<Database>> Database::Open(const std::string& path, const DurableStoreOptions& options,
                                                         FileSystemWrap wrap) {
  std::shared_ptr<Database> d(new Database(path, options, std::move(wrap)));
  TOEGANG_RETURN_IF_ERROR(options.read_only ? d->OpenSecondary() : d->OpenPrimary());
  return d;
}

Database::~Database() {
  FlushForClose();
  CloseDb();
  if (!secondary_dir_.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(secondary_dir_, ec);  // our scratch directory only
  }
}

// What the memtables hold is otherwise only in the write-ahead log, and the next open
// replays it twice: once read-only to check the store before anything changes, once for
// writing. After a bulk load that was seconds (bench/RESULTS.md); written to tables
// here, the next open has almost nothing to replay. A store in error keeps its log as
// it is: what it holds is replayed as after a crash.
void Database::FlushForClose() {
  if (read_only() || !db_) return;
  {
    MutexLock lock(&mu_);
    if (!sticky_.ok()) return;
  }
  rocksdb::FlushOptions fo;
  fo.wait = true;
  fo.allow_write_stall = true;
  rocksdb::Status s = db_->Flush(fo, handles_);
  if (!s.ok()) {
    rocksdb::Log(rocksdb::InfoLogLevel::WARN_LEVEL, db_options_.info_log,
                 "toegang: not flushed at close (the next open replays the log): %s", s.ToString().c_str());
  }
}

// Readers of the facts take turns at one iterator each; more than this many kept means
// a burst of readers, whose extra iterators are dropped.
constexpr size_t kKeptIterators = 16;

Database::FactsIterator Database::Use::Facts(uint64_t generation) const {
  const uint64_t files = d_.facts_files_.load(std::memory_order_acquire);
  std::vector<FactsIterator> stale;  // destroyed after the lock, still under this Use
  if (generation != kUnsettled) {
    MutexLock lock(&d_.kept_mu_);
    while (!d_.kept_.empty()) {
      FactsIterator kept = std::move(d_.kept_.back());
      d_.kept_.pop_back();
      if (kept.generation == generation && kept.files == files) return kept;
      stale.push_back(std::move(kept));
    }
  }
  rocksdb::ReadOptions ro;
  ro.prefix_same_as_start = true;
  // The last iterator over files a compaction replaced deletes them as it is destroyed:
  // on RocksDB's own thread, not a reader's or a flush's (FactsFilesChanged).
  ro.background_purge_on_iterator_cleanup = true;
  return FactsIterator{std::unique_ptr<rocksdb::Iterator>(db()->NewIterator(ro, cf(rocksdb_layout::kFacts))),
                       generation, files};
}

void Database::Use::Keep(FactsIterator it) const {
  if (it.it == nullptr || it.generation == kUnsettled || !it.it->status().ok()) return;
  MutexLock lock(&d_.kept_mu_);
  if (d_.kept_.size() < kKeptIterators) d_.kept_.push_back(std::move(it));
}

std::vector<Database::FactsIterator> Database::TakeKeptIterators() {
  std::vector<FactsIterator> taken;
  MutexLock lock(&kept_mu_);
  taken.swap(kept_);
  return taken;
}

void Database::DropKeptIterators() {
  Use use(*this);  // the database stays open while they are destroyed
  TakeKeptIterators();
}

void Database::FactsFilesChanged() {
  facts_files_.fetch_add(1, std::memory_order_release);
  // The kept iterators now read replaced files, and none would be used again: dropped
  // now rather than at the next read, which on a quiet server may be hours away. This
  // runs on RocksDB's thread, which a closing or reopening database (db_mu_ held
  // exclusively) waits for: it never waits for db_mu_, and leaves them to the close.
  if (!db_mu_.TryReaderLock()) return;
  TakeKeptIterators();  // destroyed with the database still open
  db_mu_.ReaderUnlock();
}

void Database::CloseDb() {
  {
    MutexLock lock(&kept_mu_);
    kept_.clear();  // iterators must not outlive the database they read
  }
  if (!db_) return;
  for (rocksdb::ColumnFamilyHandle* h : handles_) db_->DestroyColumnFamilyHandle(h);
  handles_.clear();
  db_->Close().PermitUncheckedError();  // closing after a write error reports it again
  db_.reset();
}

absl::Status Database::Closed() {
  return absl::UnavailableError("the store is closed after a write error; it is reopened once the cause is gone");
}

absl::Status Database::ReadOnlyError() {
  return absl::FailedPreconditionError("the store is open read-only (beside a running server): nothing is written");
}

// --- Writing and healing --------------------------------------------------------------

absl::Status Database::Write(rocksdb::WriteBatch* batch, bool sync, uint64_t instance, absl::string_view what) {
  if (read_only()) return ReadOnlyError();
  rocksdb::Status ws;
  {
    ReaderMutexLock live(&db_mu_);
    if (!db_ || db_instance_ != instance) {
      ws = rocksdb::Status::Aborted("the store was reopened after a write error; nothing was written");
    } else {
      rocksdb::WriteOptions wo;
      wo.sync = sync;
      ws = db_->Write(wo, batch);
    }
  }
  if (ws.ok()) return absl::OkStatus();
  MutexLock lock(&mu_);
  if (sticky_.ok()) {
    sticky_ = FromRocks(ws, absl::StrCat(what, " (the store refuses writes until the cause is gone)"));
    last_recovery_attempt_ = absl::Now();
  }
  return Detached(sticky_);
}

void Database::Acknowledge(uint64_t facts, uint64_t audit) {
  // Recorded before anyone is told: a store that later comes back without these
  // records is refused when opened (ack_record.h).
  if (ack_ == nullptr) return;  // read-only: nothing is written, nothing acknowledged
  absl::Status acked = absl::OkStatus();
  if (facts > 0) acked = ack_->AdvanceFacts(facts);
  if (acked.ok() && audit > 0) acked = ack_->AdvanceAudit(audit);
  MutexLock lock(&mu_);
  facts_written_ = std::max(facts_written_, facts);
  // The records are durable in the store even when TOEGANG-ACK could not follow: they
  // are acknowledged, and Health says what is wrong until it can.
  ack_error_ = acked.ok() ? absl::OkStatus()
                          : absl::UnavailableError(absl::StrCat(
                                "written, but what was acknowledged could not be recorded: ", acked.message()));
}

absl::Status Database::Recover() {
  if (read_only()) return ReadOnlyError();
  MutexLock lock(&mu_);
  if (!sticky_.ok()) TryRecoverLocked();
  return Detached(sticky_);
}

absl::Status Database::Health() {
  if (read_only()) return absl::OkStatus();
  MutexLock lock(&mu_);
  if (!sticky_.ok()) TryRecoverLocked();
  if (!sticky_.ok()) return Detached(sticky_);
  return Detached(ack_error_);
}

void Database::TryRecoverLocked() {
  const absl::Time now = absl::Now();
  if (now - last_recovery_attempt_ < absl::Seconds(1)) return;
  last_recovery_attempt_ = now;
  absl::Status recovered = absl::OkStatus();
  {
    ReaderMutexLock live(&db_mu_);
    if (!db_ || !db_->Resume().ok()) recovered = absl::UnavailableError("resume failed");
  }
  if (!recovered.ok()) recovered = ReopenLocked();
  if (recovered.ok()) {
    rocksdb::Log(rocksdb::InfoLogLevel::WARN_LEVEL, db_options_.info_log, "toegang: writing again after: %s",
                 std::string(sticky_.message()).c_str());
    sticky_ = absl::OkStatus();
  }
}

absl::Status Database::Scrub() {
  if (read_only()) return ReadOnlyError();
  {
    ReaderMutexLock live(&db_mu_);
    if (!db_) return Closed();
    rocksdb::FlushOptions fo;
    fo.wait = true;
    fo.allow_write_stall = true;
    rocksdb::Status s = db_->Flush(fo, handles_);
    // Forced to the last level, rewritten even where a file is alone in its range: an
    // older version is dropped only where a compaction meets it beside the newer one
    // or the deletion, and a deletion itself only at the last level.
    rocksdb::CompactRangeOptions all;
    all.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForce;
    for (rocksdb::ColumnFamilyHandle* h : handles_) {
      if (s.ok()) s = db_->CompactRange(all, h, nullptr, nullptr);
    }
    if (!s.ok()) return FromRocks(s, "rewriting the store's files");
  }
  MutexLock lock(&mu_);
  if (!sticky_.ok()) return Detached(sticky_);  // a write failed meanwhile; recovery reopens it
  absl::Status s = ReopenLocked(/*new_instance=*/false);
  if (!s.ok()) {
    sticky_ = absl::Status(s.code(), absl::StrCat("reopening the store after rewriting its files: ", s.message()));
    last_recovery_attempt_ = absl::Now();
    return Detached(sticky_);
  }
  return absl::OkStatus();
}

absl::Status Database::ReopenLocked(bool new_instance) {
  WriterMutexLock exclusive(&db_mu_);
  CloseDb();
  if (new_instance) ++db_instance_;
  std::vector<std::string> names;
  rocksdb::Status ls = rocksdb::DB::ListColumnFamilies(db_options_, path_, &names);
  absl::Status s = ls.ok() ? OpenReadWrite(names) : Explain(ls);
  if (s.ok()) {
    absl::StatusOr<Inventory> inv = TakeInventory(db_.get(), handles_);
    if (!inv.ok()) {
      s = inv.status();
    } else if (inv->facts < facts_written_) {
      s = absl::DataLossError(absl::StrCat("the store came back after a write error holding facts up to ",
                                           inv->facts, " of ", facts_written_, ": restart and restore it"));
    }
  }
  if (!s.ok()) CloseDb();
  return s;
}

// --- Opening ------------------------------------------------------------------------

// Tells the database of each flush and compaction of the facts (FactsFilesChanged).
// RocksDB calls it without its own lock held, and stops calling before a close ends.
class FactsFilesListener : public rocksdb::EventListener {
 public:
  explicit FactsFilesListener(Database* db) : db_(db) {}
  void OnFlushCompleted(rocksdb::DB*, const rocksdb::FlushJobInfo& info) override { Changed(info.cf_name); }
  void OnCompactionCompleted(rocksdb::DB*, const rocksdb::CompactionJobInfo& info) override { Changed(info.cf_name); }

 private:
  void Changed(const std::string& cf) {
    if (cf == kFactsCf) db_->FactsFilesChanged();
  }
  Database* const db_;  // owns the options this listener is in
};

// The database options every open shares.
rocksdb::DBOptions Database::DbOptions(const std::string& info_log_path) {
  rocksdb::DBOptions o;
  o.listeners.push_back(std::make_shared<FactsFilesListener>(this));
  o.paranoid_checks = true;
  // Point-in-time recovery replays the write-ahead log up to its first damaged record
  // and no further, so a torn tail left by a crash (never acknowledged) costs nothing.
  // Damage to what was acknowledged is found by comparing with TOEGANG-ACK before
  // the store is opened for writing, not by RocksDB: kAbsoluteConsistency would also
  // refuse the torn tail of every power cut.
  o.wal_recovery_mode = rocksdb::WALRecoveryMode::kPointInTimeRecovery;
  // A closed WAL that is missing or of another size than the MANIFEST recorded is an
  // error at open. (The live WAL is not tracked: TOEGANG-ACK covers it.)
  o.track_and_verify_wals_in_manifest = !options_.accept_loss;
  o.max_background_jobs = 2;
  // Two flushes may run at once (RocksDB gives one of two jobs otherwise): a flush of the
  // access log's patient index sorts every key it holds, and the log's own memtables
  // filled up behind it until writes stopped; the writer then held the deciders past the
  // queue's wait and decisions were refused (bench/RESULTS.md).
  o.max_background_flushes = 2;
  o.keep_log_file_num = 4;
  // The default column family holds two tiny keys and is almost never flushed; without
  // a cap it would keep every write-ahead log file alive.
  o.max_total_wal_size = uint64_t{256} << 20;
  // Required by the vector memtables below; writes are serialized by our own queues.
  o.allow_concurrent_memtable_write = false;
  o.info_log = NewInfoLog(info_log_path);
  std::shared_ptr<rocksdb::FileSystem> fs = NewOwnerOnlyFileSystem(rocksdb::FileSystem::Default());
  if (wrap_) fs = wrap_(std::move(fs));
  env_ = rocksdb::NewCompositeEnv(fs);
  o.env = env_.get();
  return o;
}

// Our column families, then any a newer build added (kept as they are).
std::vector<rocksdb::ColumnFamilyDescriptor> Database::ColumnFamilies(const std::vector<std::string>& existing,
                                                                      bool for_reading) {
  if (!block_cache_) {
    // Few shards: an LRU shard must hold the largest block it caches, or that block is
    // evicted as soon as it is released and read from disk again on the next lookup.
    const int shard_bits = options_.block_cache_bytes >= (size_t{64} << 20) ? 4 : 2;
    block_cache_ = rocksdb::NewLRUCache(options_.block_cache_bytes, shard_bits);
  }
  // Index and filter blocks are partitioned (a few KiB each) and live in the block
  // cache, so the cache bounds memory and large files' filters still cache well.
  auto tune = [&](rocksdb::BlockBasedTableOptions& t) {
    t.block_cache = block_cache_;
    t.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
    t.index_type = rocksdb::BlockBasedTableOptions::kTwoLevelIndexSearch;
    t.partition_filters = true;
    t.metadata_block_size = 4096;
    t.cache_index_and_filter_blocks = true;
    t.cache_index_and_filter_blocks_with_high_priority = true;
    t.pin_top_level_index_and_filter = true;
    t.pin_l0_filter_and_index_blocks_in_cache = true;
  };
  rocksdb::BlockBasedTableOptions facts_table;
  tune(facts_table);
  facts_table.whole_key_filtering = false;  // lookups are by prefix
  rocksdb::ColumnFamilyOptions facts_cf;
  facts_cf.prefix_extractor = std::make_shared<OwnerPrefix>();
  facts_cf.memtable_prefix_bloom_size_ratio = 0.05;
  facts_cf.table_factory.reset(rocksdb::NewBlockBasedTableFactory(facts_table));
  facts_cf.compression = rocksdb::kNoCompression;

  rocksdb::BlockBasedTableOptions ids_table;
  tune(ids_table);
  rocksdb::ColumnFamilyOptions ids_cf;
  ids_cf.table_factory.reset(rocksdb::NewBlockBasedTableFactory(ids_table));
  ids_cf.compression = rocksdb::kNoCompression;

  std::vector<rocksdb::ColumnFamilyDescriptor> cfs = {
      {rocksdb::kDefaultColumnFamilyName, rocksdb::ColumnFamilyOptions()},
      {kFactsCf, facts_cf},
      {kIdsCf, ids_cf},
      {kAuditCf, rocksdb::ColumnFamilyOptions()},
      {kAuditIndexCf, rocksdb::ColumnFamilyOptions()},
  };
  // The access log is append-mostly. A third memtable lets a burst of records wait out a
  // slow flush rather than stop the writer.
  for (size_t i = kAudit; i < cfs.size(); ++i) {
    rocksdb::BlockBasedTableOptions t;
    t.block_cache = block_cache_;
    cfs[i].options.table_factory.reset(rocksdb::NewBlockBasedTableFactory(t));
    cfs[i].options.max_write_buffer_number = 3;
  }
  // Records arrive in key order (their sequence numbers): the skip list, told where the
  // last one went (one hint for every key), appends without searching, and stays sorted
  // for a flush and for each read. (A vector memtable sorted itself at every flush, and a
  // copy of itself at every read: a patient's listing on a busy server took seconds.)
  cfs[kAudit].options.memtable_insert_with_hint_prefix_extractor.reset(rocksdb::NewFixedPrefixTransform(0));
  // The patient index's keys arrive in random order, which a skip list takes at half
  // the writer's pace: its memtable appends them and sorts them when read or flushed
  // (index_memtable.h). Should this RocksDB not take that memtable, its vector memtable
  // does the same more slowly, and sorts a copy for every read of the active one: kept
  // small (4 MiB, some 80,000 keys), a patient's listing on a busy primary sorts tens of
  // milliseconds, not seconds. A reader (secondary or read-only) only reads: it keeps
  // RocksDB's skip list.
  if (!for_reading) {
    std::shared_ptr<rocksdb::MemTableRepFactory> index = PatientIndexMemTables();
    cfs[kAuditIndex].options.memtable_factory =
        index != nullptr ? std::move(index) : std::make_shared<rocksdb::VectorRepFactory>();
    cfs[kAuditIndex].options.write_buffer_size = size_t{16} << 20;
  }
  for (const std::string& n : existing) {
    if (n != rocksdb::kDefaultColumnFamilyName && n != kFactsCf && n != kIdsCf && n != kAuditCf &&
        n != kAuditIndexCf) {
      cfs.push_back({n, rocksdb::ColumnFamilyOptions()});  // from a newer build: keep it
    }
  }
  return cfs;
}

// What an open database holds: its keys are in the default column family, handles[0].
absl::StatusOr<Database::Inventory> Database::TakeInventory(rocksdb::DB* db, const std::vector<rocksdb::ColumnFamilyHandle*>& handles) {
  Inventory inv;
  for (rocksdb::ColumnFamilyHandle* h : handles) {
    std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions(), h));
    it->SeekToFirst();
    if (!it->status().ok()) return Explain(it->status());
    if (it->Valid()) inv.empty = false;
  }
  std::string v;
  rocksdb::Status s = db->Get(rocksdb::ReadOptions(), handles[kDefault], kFormatKey, &v);
  if (s.ok()) {
    if (!absl::SimpleAtoi(v, &inv.format) || inv.format < 1) {
      return absl::DataLossError(absl::StrCat("'", path_, "': unreadable format version '", v, "'"));
    }
  } else if (!s.IsNotFound()) {
    return Explain(s);
  }
  s = db->Get(rocksdb::ReadOptions(), handles[kDefault], kLastSeqKey, &v);
  if (s.ok()) {
    inv.facts = ReadBigEndian64(v);
  } else if (!s.IsNotFound()) {
    return Explain(s);
  }
  s = db->Get(rocksdb::ReadOptions(), handles[kDefault], kAuditHeadKey, &v);
  if (s.ok()) {
    inv.audit = ReadBigEndian64(v);
  } else if (!s.IsNotFound()) {
    return Explain(s);
  }
  return inv;
}

// Refuses a store newer than this build, or one that is not toegang's.
absl::Status Database::CheckFormat(const Inventory& inv, bool had_facts_cf) {
  if (inv.format > kStoreFormatVersion) {
    return absl::FailedPreconditionError(absl::StrCat("the store at '", path_, "' has format version ", inv.format,
                                                      ", newer than this build reads (", kStoreFormatVersion,
                                                      "): upgrade toegang"));
  }
  if (!inv.empty && (!had_facts_cf || inv.format == 0)) {
    // A database with data but without our column families or version belongs to
    // someone else: refuse it, and leave it as it is. Without data it is a creation
    // a crash interrupted before the version was recorded: finish it.
    return absl::FailedPreconditionError(absl::StrCat("'", path_, "' is a RocksDB database but not a toegang store"));
  }
  return absl::OkStatus();
}

// Refuses a store that holds less than it acknowledged.
absl::Status Database::CheckAcknowledged(const Inventory& inv, const std::optional<Acknowledged>& ack) {
  if (!ack) {
    // Stores of format 1 predate TOEGANG-ACK; a creation interrupted before the file
    // was written holds nothing. Anything else lost its record of what it promised.
    if (inv.format >= 2 && (inv.facts > 0 || inv.audit > 0)) {
      return absl::DataLossError(absl::StrCat(
          "the store at '", path_, "' has lost ", AckRecord::kFileName,
          " (what it acknowledged): whether its write-ahead log is whole cannot be known. Nothing was changed. "
          "Restore the store from a backup, or accept it as it is with `toegang store accept-loss --db ",
          path_, "`"));
    }
    return absl::OkStatus();
  }
  if (inv.facts >= ack->facts && inv.audit >= ack->audit) return absl::OkStatus();
  return absl::DataLossError(absl::StrCat(
      "the store at '", path_, "' comes back shorter than it acknowledged: facts up to sequence ", inv.facts,
      " of ", ack->facts, ", access-log records up to ", inv.audit, " of ", ack->audit,
      ". Its write-ahead log (*.log) was damaged, truncated or removed. Nothing was changed. Restore the store "
      "from a backup, or accept the loss with `toegang store accept-loss --db ",
      path_, "` (the lost facts must then be recorded again)"));
}

// kNone: nothing of a store's (missing, empty, or a creation a crash interrupted
// before any fact could be written); kDamaged: a store's data without its CURRENT.
Database::DirState Database::Inspect(std::string* found) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::path dir(path_);
  if (!fs::exists(dir, ec)) return DirState::kNone;
  if (!fs::is_directory(dir, ec)) return DirState::kNotDirectory;
  if (fs::exists(dir / "CURRENT", ec)) return DirState::kStore;
  std::vector<std::string> data;
  for (const fs::directory_entry& e : fs::directory_iterator(dir, ec)) {
    const std::string name = e.path().filename().string();
    if (name == AckRecord::kFileName || absl::EndsWith(name, ".sst") || absl::EndsWith(name, ".log")) {
      data.push_back(name);
    }
  }
  if (data.empty()) return DirState::kNone;
  std::sort(data.begin(), data.end());
  if (data.size() > 4) data.resize(4);
  *found = absl::StrJoin(data, ", ");
  return DirState::kDamaged;
}

absl::Status Database::OpenPrimary() {
  std::string found;
  switch (Inspect(&found)) {
    case DirState::kNotDirectory:
      return absl::InvalidArgumentError(absl::StrCat("'", path_, "' is not a directory"));
    case DirState::kDamaged:
      return absl::DataLossError(absl::StrCat(
          "'", path_, "' holds a store's files (", found,
          "...) but no CURRENT: the store is damaged. It is refused, never recreated empty; restore it from a "
          "backup"));
    case DirState::kNone:
      if (!options_.create_if_missing) {
        return absl::NotFoundError(absl::StrCat("no toegang store at '", path_, "' (load facts first)"));
      }
      return Create();
    case DirState::kStore:
      return OpenExisting();
  }
  return absl::InternalError("unreachable");
}

absl::Status Database::MakePrivateDir() {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::create_directories(path_, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot create '", path_, "': ", ec.message()));
  // Patient ids are readable in the store's files: owner only, whatever the umask.
  fs::permissions(path_, fs::perms::owner_all, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot make '", path_, "' private: ", ec.message()));
  return absl::OkStatus();
}

absl::Status Database::Create() {
  TOEGANG_RETURN_IF_ERROR(MakePrivateDir());
  db_options_ = DbOptions(path_ + "/LOG");
  db_options_.create_if_missing = true;
  db_options_.create_missing_column_families = true;
  TOEGANG_RETURN_IF_ERROR(OpenReadWrite({}));
  rocksdb::WriteOptions wo;
  wo.sync = true;
  rocksdb::Status ps = db_->Put(wo, handles_[kDefault], kFormatKey, std::to_string(kStoreFormatVersion));
  if (!ps.ok()) return FromRocks(ps, "writing the format version");
  format_ = kStoreFormatVersion;
  absl::StatusOr<std::unique_ptr<AckRecord>> ack = AckRecord::OpenForWriting(path_, Acknowledged{});
  if (!ack.ok()) return ack.status();
  ack_ = *std::move(ack);
  return absl::OkStatus();
}

absl::Status Database::OpenExisting() {
  // First the lock (a running server holds it), then what the store promised.
  std::optional<Acknowledged> acked;
  absl::StatusOr<std::unique_ptr<AckRecord>> ack = AckRecord::OpenForWriting(path_, std::nullopt);
  if (ack.ok()) {
    ack_ = *std::move(ack);
    acked = ack_->values();
  } else if (!absl::IsNotFound(ack.status())) {
    return ack.status();
  }
  db_options_ = DbOptions(path_ + "/LOG");
  db_options_.create_missing_column_families = true;  // stores from before the access log
  std::vector<std::string> names;
  rocksdb::Status ls = rocksdb::DB::ListColumnFamilies(db_options_, path_, &names);
  if (!ls.ok()) return Explain(ls);
  const bool had_facts_cf = std::find(names.begin(), names.end(), kFactsCf) != names.end();

  // Look before RocksDB may change anything: a read-only open replays the WAL in
  // memory, so a store that would come back short is refused while its files are
  // still as they were.
  absl::StatusOr<Inventory> before = ReadOnlyInventory(names);
  if (!before.ok()) return before.status();
  TOEGANG_RETURN_IF_ERROR(CheckFormat(*before, had_facts_cf));
  if (!options_.accept_loss) TOEGANG_RETURN_IF_ERROR(CheckAcknowledged(*before, acked));

  TOEGANG_RETURN_IF_ERROR(OpenReadWrite(names));
  absl::StatusOr<Inventory> inv = TakeInventory(db_.get(), handles_);
  if (!inv.ok()) return inv.status();
  TOEGANG_RETURN_IF_ERROR(CheckFormat(*inv, had_facts_cf));
  if (inv->format < kStoreFormatVersion) TOEGANG_RETURN_IF_ERROR(Upgrade(inv->format));
  format_ = kStoreFormatVersion;
  facts_at_open_ = inv->facts;
  TOEGANG_RETURN_IF_ERROR(AdoptAcknowledged(*inv));
  // Owner only, also for stores created before toegang set it.
  std::error_code ec;
  std::filesystem::permissions(path_, std::filesystem::perms::owner_all, ec);
  return absl::OkStatus();
}

// A store from before TOEGANG-ACK gets one holding what it has; an operator accepting
// a loss makes what the store has the new acknowledgement.
absl::Status Database::AdoptAcknowledged(const Inventory& inv) {
  if (!ack_) {
    absl::StatusOr<std::unique_ptr<AckRecord>> created =
        AckRecord::OpenForWriting(path_, Acknowledged{inv.facts, inv.audit});
    if (!created.ok()) return created.status();
    ack_ = *std::move(created);
  } else if (options_.accept_loss) {
    TOEGANG_RETURN_IF_ERROR(ack_->Reset(Acknowledged{inv.facts, inv.audit}));
  }
  MutexLock lock(&mu_);
  facts_written_ = inv.facts;
  return absl::OkStatus();
}

absl::StatusOr<Database::Inventory> Database::ReadOnlyInventory(const std::vector<std::string>& names) {
  std::vector<rocksdb::ColumnFamilyDescriptor> cfs;
  for (const rocksdb::ColumnFamilyDescriptor& d : ColumnFamilies(names, /*for_reading=*/true)) {
    if (std::find(names.begin(), names.end(), d.name) != names.end()) cfs.push_back(d);
  }
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s = rocksdb::DB::OpenForReadOnly(db_options_, path_, cfs, &handles, &raw);
  if (!s.ok()) return Explain(s);
  std::unique_ptr<rocksdb::DB> db(raw);
  // The default column family (first) holds every key read; any family may hold data.
  absl::StatusOr<Inventory> inv = TakeInventory(db.get(), handles);
  for (rocksdb::ColumnFamilyHandle* h : handles) db->DestroyColumnFamilyHandle(h);
  return inv;
}

absl::Status Database::OpenReadWrite(const std::vector<std::string>& names) {
  rocksdb::DB* raw = nullptr;
  rocksdb::Status os = rocksdb::DB::Open(db_options_, path_, ColumnFamilies(names), &handles_, &raw);
  if (!os.ok()) return Explain(os);
  db_.reset(raw);
  return absl::OkStatus();
}

// Format 1 → 2: persons' ids go into `ids`, so a second person fact with the same id
// is refused like any other duplicate. Format 2 → 3: the index from parties to patients
// (model/patient_index.h), built from every patient's facts. Its entries are idempotent,
// so an upgrade a crash interrupts is done again, whole, at the next open; the format is
// recorded last. Format 3 → 4 changes nothing stored: the access log's records already
// stored one per key stay so, and are read as they are.
absl::Status Database::Upgrade(int from) {
  rocksdb::WriteOptions wo;
  wo.sync = true;
  rocksdb::WriteBatch batch;
  // Written as it grows: a store of millions of facts is not held in one batch.
  auto flush = [&](size_t at_least) -> absl::Status {
    if (batch.Count() < at_least) return absl::OkStatus();
    TOEGANG_RETURN_IF_ERROR(FromRocks(db_->Write(wo, &batch), "upgrading the store"));
    batch.Clear();
    return absl::OkStatus();
  };
  rocksdb::ReadOptions every_patient;
  every_patient.total_order_seek = true;  // across owners' prefixes
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(every_patient, handles_[kFacts]));
  // Only formats before 3 have anything to build from the facts.
  if (from < 3) it->Seek("p");
  for (; from < 3 && it->Valid() && it->key().starts_with("p"); it->Next()) {
    absl::StatusOr<Fact> fact = DecodeFact(absl::string_view(it->value().data(), it->value().size()));
    if (!fact.ok()) return absl::DataLossError(absl::StrCat("upgrading the store: ", fact.status().message()));
    if (from < 2 && std::holds_alternative<Person>(fact->body)) {
      batch.Put(handles_[kIds], UniqueIdKey(fact->body), "");
    }
    if (std::optional<std::string> index_key = IndexKeyOf(fact->body); from < 3 && index_key) {
      const absl::string_view key(it->key().data(), it->key().size());
      const absl::string_view patient = key.substr(1, key.find('\0') - 1);
      batch.Put(handles_[kFacts], absl::StrCat(PatientIndexPrefix(*index_key), patient), "");
    }
    TOEGANG_RETURN_IF_ERROR(flush(100000));
  }
  if (!it->status().ok()) return FromRocks(it->status(), "upgrading the store");
  batch.Put(handles_[kDefault], kFormatKey, std::to_string(kStoreFormatVersion));
  return flush(0);
}

// A RocksDB secondary instance: it reads the store's files without its lock, beside a
// server that writes them, with its own scratch directory for its info log.
absl::Status Database::OpenSecondary() {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::exists(fs::path(path_) / "CURRENT", ec)) {
    std::string found;
    if (Inspect(&found) == DirState::kDamaged) {
      return absl::DataLossError(
          absl::StrCat("'", path_, "' holds a store's files (", found, "...) but no CURRENT: the store is damaged"));
    }
    return absl::NotFoundError(absl::StrCat("no toegang store at '", path_, "'"));
  }
  // What was acknowledged, read before the store: the store can only have grown since.
  absl::StatusOr<std::optional<Acknowledged>> acked = AckRecord::Read(path_);
  if (!acked.ok()) return acked.status();
  const char* tmp = std::getenv("TMPDIR");
  std::string scratch = absl::StrCat(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp", "/toegang-reader-XXXXXX");
  if (::mkdtemp(scratch.data()) == nullptr) {
    return absl::InternalError(absl::StrCat("cannot create a scratch directory for reading the store: ",
                                            std::strerror(errno)));
  }
  secondary_dir_ = scratch;
  db_options_ = DbOptions(secondary_dir_ + "/LOG");
  db_options_.track_and_verify_wals_in_manifest = false;  // not supported by secondaries
  db_options_.max_open_files = -1;                        // required by secondaries
  std::vector<std::string> names;
  rocksdb::Status ls = rocksdb::DB::ListColumnFamilies(db_options_, path_, &names);
  if (!ls.ok()) return Explain(ls);
  if (std::find(names.begin(), names.end(), kFactsCf) == names.end()) {
    return absl::FailedPreconditionError(absl::StrCat("'", path_, "' is not a toegang store"));
  }
  std::vector<rocksdb::ColumnFamilyDescriptor> cfs;
  for (const rocksdb::ColumnFamilyDescriptor& d : ColumnFamilies(names, /*for_reading=*/true)) {
    if (std::find(names.begin(), names.end(), d.name) != names.end()) cfs.push_back(d);
  }
  rocksdb::DB* raw = nullptr;
  rocksdb::Status os = rocksdb::DB::OpenAsSecondary(db_options_, path_, secondary_dir_, cfs, &handles_, &raw);
  if (!os.ok()) return Explain(os);
  db_.reset(raw);
  rocksdb::Status cs = db_->TryCatchUpWithPrimary();
  if (!cs.ok()) return Explain(cs);
  if (handles_.size() < kColumnFamilies) {
    return absl::FailedPreconditionError(
        absl::StrCat("the store at '", path_, "' was written by an older toegang: open it once for writing first"));
  }
  absl::StatusOr<Inventory> inv = TakeInventory(db_.get(), handles_);
  if (!inv.ok()) return inv.status();
  TOEGANG_RETURN_IF_ERROR(CheckFormat(*inv, true));
  TOEGANG_RETURN_IF_ERROR(CheckAcknowledged(*inv, *acked));
  format_ = inv->format;
  facts_at_open_ = inv->facts;
  return absl::OkStatus();
}

absl::Status Database::Explain(const rocksdb::Status& s) const {
  std::string msg = s.ToString();
  if (s.IsIOError() && (msg.find("lock") != std::string::npos || msg.find("LOCK") != std::string::npos)) {
    return absl::UnavailableError(
        absl::StrCat("the store at '", path_, "' is in use by another process (its LOCK is held): ", msg));
  }
  if (s.IsCorruption()) {
    return absl::DataLossError(absl::StrCat("the store at '", path_, "' is corrupt: ", msg));
  }
  if (s.IsNoSpace()) {
    return absl::ResourceExhaustedError(absl::StrCat("cannot open the store at '", path_, "': ", msg));
  }
  return absl::InternalError(absl::StrCat("cannot open the store at '", path_, "': ", msg));
}
}  // namespace toegang
