// Copyright toegang authors.
//
// The durable fact store on RocksDB. The only file of toegang that includes RocksDB
// headers (STYLE.md): everything else sees FactStore.
//
// Layout (column families):
//   default  "toegang/format_version" -> decimal; "toegang/last_seq" -> 8 bytes big-endian
//   facts    'p' patient '\0' seq(8, big-endian) -> StoredFact  (every fact about a patient)
//            'c' clinician '\0' seq                -> StoredFact  (substitute_for coverage)
//   ids      kind ':' id -> patient     (duplicate ids; withdrawal targets)
//   audit    seq(8, big-endian) -> AuditRecord, prev hash(32), hash(32) (the chain)
//   audit_by_patient  patient '\0' at(8, big-endian, sign-flipped) seq(8) -> ""
//            (the patient's overview, newest first by scanning backwards)
//   default also "toegang/audit_head" -> seq(8) hash(32), "toegang/audit_checkpoint"
// "Every fact about P" is one prefix scan; the prefix extractor cuts at '\0', so bloom
// filters on prefixes skip SST files without P. Ids never contain control bytes
// (model/json.cc), so '\0' cannot occur inside one.
//
// Writes: a queue of writers as in LevelDB's DBImpl::Write. The writer at the head
// validates every queued batch (each atomically, on its own), merges the valid ones into
// one WriteBatch with the new last_seq, and writes it with sync=true: concurrent
// appends share one fsync. An I/O error on write is sticky: later appends fail until the
// store is reopened, so memory and disk never disagree.
//
// After the sync and before answering, the new last sequence goes into TOEGANG-ACK
// (engine/ack_record.h), so a store whose write-ahead log was damaged or removed is
// refused when opened instead of coming back shorter. An I/O error on write (a full
// disk) stops appends until RocksDB's Resume succeeds, tried at most once a second by
// the next append or health check; memory and disk never disagree.
//
// Reads: decoded, immutable PatientRecords in a bounded LRU, invalidated on write.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "model/status_macros.h"
#include "base/sync.h"
#include "engine/ack_record.h"
#include "engine/fact_codec.h"
#include "engine/fact_store.h"
#include "engine/record_cache.h"
#include "model/fact_index.h"
#include "rocksdb/cache.h"
#include "rocksdb/db.h"
#include "rocksdb/env.h"
#include "rocksdb/file_system.h"
#include "rocksdb/filter_policy.h"
#include "rocksdb/memtablerep.h"
#include "rocksdb/options.h"
#include "rocksdb/slice_transform.h"
#include "rocksdb/table.h"
#include "rocksdb/write_batch.h"

namespace toegang {
namespace {

constexpr char kFormatKey[] = "toegang/format_version";
constexpr char kLastSeqKey[] = "toegang/last_seq";
constexpr char kFactsCf[] = "facts";
constexpr char kIdsCf[] = "ids";
constexpr char kAuditCf[] = "audit";
constexpr char kAuditIndexCf[] = "audit_by_patient";
constexpr char kAuditHeadKey[] = "toegang/audit_head";
constexpr char kAuditCheckpointKey[] = "toegang/audit_checkpoint";
enum Cf { kDefault = 0, kFacts = 1, kIds = 2, kAudit = 3, kAuditIndex = 4 };

absl::Status FromRocks(const rocksdb::Status& s, absl::string_view what) {
  if (s.ok()) return absl::OkStatus();
  std::string msg = absl::StrCat(what, ": ", s.ToString());
  if (s.IsCorruption()) return absl::DataLossError(msg);
  if (s.IsNotFound()) return absl::NotFoundError(msg);
  if (s.IsNoSpace()) return absl::ResourceExhaustedError(msg);
  return absl::InternalError(msg);
}

std::string BigEndian64(uint64_t v) {
  std::string out(8, '\0');
  for (int i = 7; i >= 0; --i) {
    out[i] = static_cast<char>(v & 0xff);
    v >>= 8;
  }
  return out;
}

uint64_t ReadBigEndian64(absl::string_view s) {
  uint64_t v = 0;
  for (size_t i = 0; i < 8 && i < s.size(); ++i) v = (v << 8) | static_cast<unsigned char>(s[i]);
  return v;
}

std::string PatientPrefix(absl::string_view patient) { return absl::StrCat("p", patient, absl::string_view("\0", 1)); }
std::string ClinicianPrefix(absl::string_view clinician) {
  return absl::StrCat("c", clinician, absl::string_view("\0", 1));
}

// The prefix of a facts key: everything up to and including the first '\0'.
class OwnerPrefix : public rocksdb::SliceTransform {
 public:
  const char* Name() const override { return "toegang.OwnerPrefix.v1"; }
  rocksdb::Slice Transform(const rocksdb::Slice& key) const override {
    const void* nul = memchr(key.data(), '\0', key.size());
    return rocksdb::Slice(key.data(), static_cast<const char*>(nul) - key.data() + 1);
  }
  bool InDomain(const rocksdb::Slice& key) const override { return memchr(key.data(), '\0', key.size()) != nullptr; }
};

std::string AuditIndexKey(absl::string_view patient, int64_t at_us, uint64_t seq) {
  return absl::StrCat(patient, absl::string_view("\0", 1),
                      BigEndian64(static_cast<uint64_t>(at_us) ^ (uint64_t{1} << 63)), BigEndian64(seq));
}

// (patient, at_us, seq) of an index key; false when the key is malformed.
bool ParseAuditIndexKey(absl::string_view key, absl::string_view* patient, int64_t* at_us, uint64_t* seq) {
  size_t nul = key.find('\0');
  if (nul == absl::string_view::npos || key.size() != nul + 17) return false;
  *patient = key.substr(0, nul);
  *at_us = static_cast<int64_t>(ReadBigEndian64(key.substr(nul + 1, 8)) ^ (uint64_t{1} << 63));
  *seq = ReadBigEndian64(key.substr(nul + 9, 8));
  return true;
}

// RocksDB's own info log writes through the same file writer as its data files, and
// Debian's build keeps RocksDB's assertions: after a write to LOG failed for want of
// space, the next one aborted the process (exit 134, `sync_without_flush_called_`).
// This one writes with plain write(2) and drops a line it cannot write; the info log
// is for diagnosis, never a record. It stops growing at kMaxBytes.
class InfoLog final : public rocksdb::Logger {
 public:
  static constexpr off_t kMaxBytes = off_t{32} << 20;

  explicit InfoLog(const std::string& path) : rocksdb::Logger(rocksdb::InfoLogLevel::INFO_LEVEL) {
    struct stat st;
    if (::stat(path.c_str(), &st) == 0 && st.st_size > kMaxBytes / 2) {
      ::rename(path.c_str(), (path + ".old").c_str());
    }
    fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  }
  ~InfoLog() override {
    if (fd_ >= 0) ::close(fd_);
  }

  using rocksdb::Logger::Logv;
  void Logv(const char* format, va_list ap) override {
    if (fd_ < 0) return;
    char line[1024];
    const std::string stamp = absl::FormatTime("%Y/%m/%d-%H:%M:%E6S ", absl::Now(), absl::UTCTimeZone());
    int n = std::vsnprintf(line, sizeof line - 1, format, ap);
    if (n < 0) return;
    size_t len = std::min(static_cast<size_t>(n), sizeof line - 2);
    if (len == 0 || line[len - 1] != '\n') line[len++] = '\n';
    struct stat st;
    if (::fstat(fd_, &st) == 0 && st.st_size > kMaxBytes) return;
    std::string out = stamp + std::string(line, len);
    ssize_t written = ::write(fd_, out.data(), out.size());
    (void)written;  // a diagnostic line that cannot be written is dropped (see above)
  }

 private:
  int fd_ = -1;
};

// Patient ids are readable in every file of the store, so each is its owner's only
// (0600), whatever the umask: RocksDB's POSIX file system creates them 0644 (and this
// build ignores Env::SetAllowNonOwnerAccess). The store's directory is 0700 as well, so
// the moment between creation and chmod exposes nothing.
class OwnerOnlyFileSystem final : public rocksdb::FileSystemWrapper {
 public:
  explicit OwnerOnlyFileSystem(std::shared_ptr<rocksdb::FileSystem> target)
      : rocksdb::FileSystemWrapper(std::move(target)) {}
  const char* Name() const override { return "toegang.OwnerOnlyFileSystem"; }

  rocksdb::IOStatus NewWritableFile(const std::string& f, const rocksdb::FileOptions& o,
                                    std::unique_ptr<rocksdb::FSWritableFile>* r,
                                    rocksdb::IODebugContext* dbg) override {
    return Private(f, target()->NewWritableFile(f, o, r, dbg));
  }
  rocksdb::IOStatus ReopenWritableFile(const std::string& f, const rocksdb::FileOptions& o,
                                       std::unique_ptr<rocksdb::FSWritableFile>* r,
                                       rocksdb::IODebugContext* dbg) override {
    return Private(f, target()->ReopenWritableFile(f, o, r, dbg));
  }
  rocksdb::IOStatus ReuseWritableFile(const std::string& f, const std::string& old, const rocksdb::FileOptions& o,
                                      std::unique_ptr<rocksdb::FSWritableFile>* r,
                                      rocksdb::IODebugContext* dbg) override {
    return Private(f, target()->ReuseWritableFile(f, old, o, r, dbg));
  }
  rocksdb::IOStatus NewRandomRWFile(const std::string& f, const rocksdb::FileOptions& o,
                                    std::unique_ptr<rocksdb::FSRandomRWFile>* r,
                                    rocksdb::IODebugContext* dbg) override {
    return Private(f, target()->NewRandomRWFile(f, o, r, dbg));
  }
  rocksdb::IOStatus LockFile(const std::string& f, const rocksdb::IOOptions& o, rocksdb::FileLock** l,
                             rocksdb::IODebugContext* dbg) override {
    return Private(f, target()->LockFile(f, o, l, dbg));
  }

 private:
  static rocksdb::IOStatus Private(const std::string& f, rocksdb::IOStatus created) {
    if (created.ok()) ::chmod(f.c_str(), 0600);  // best effort: the directory is 0700
    return created;
  }
};

// Tests only (DurableStoreOptions::disk_faults): every file write fails as on a full
// disk while the switch is on, through RocksDB's real error handling.
class FullDiskFile final : public rocksdb::FSWritableFileOwnerWrapper {
 public:
  FullDiskFile(std::unique_ptr<rocksdb::FSWritableFile> f, std::shared_ptr<DiskFaults> faults)
      : rocksdb::FSWritableFileOwnerWrapper(std::move(f)), faults_(std::move(faults)) {}

  rocksdb::IOStatus Append(const rocksdb::Slice& data, const rocksdb::IOOptions& o,
                           rocksdb::IODebugContext* dbg) override {
    if (faults_->full) return rocksdb::IOStatus::NoSpace("injected: no space left on device");
    return target()->Append(data, o, dbg);
  }
  rocksdb::IOStatus Append(const rocksdb::Slice& data, const rocksdb::IOOptions& o,
                           const rocksdb::DataVerificationInfo& info, rocksdb::IODebugContext* dbg) override {
    if (faults_->full) return rocksdb::IOStatus::NoSpace("injected: no space left on device");
    return target()->Append(data, o, info, dbg);
  }
  rocksdb::IOStatus Sync(const rocksdb::IOOptions& o, rocksdb::IODebugContext* dbg) override {
    if (faults_->full) return rocksdb::IOStatus::NoSpace("injected: no space left on device");
    return target()->Sync(o, dbg);
  }
  rocksdb::IOStatus Fsync(const rocksdb::IOOptions& o, rocksdb::IODebugContext* dbg) override {
    if (faults_->full) return rocksdb::IOStatus::NoSpace("injected: no space left on device");
    return target()->Fsync(o, dbg);
  }

 private:
  std::shared_ptr<DiskFaults> faults_;
};

class FullDiskFileSystem final : public rocksdb::FileSystemWrapper {
 public:
  FullDiskFileSystem(std::shared_ptr<rocksdb::FileSystem> target, std::shared_ptr<DiskFaults> faults)
      : rocksdb::FileSystemWrapper(std::move(target)), faults_(std::move(faults)) {}
  const char* Name() const override { return "toegang.FullDiskFileSystem"; }

  rocksdb::IOStatus NewWritableFile(const std::string& f, const rocksdb::FileOptions& o,
                                    std::unique_ptr<rocksdb::FSWritableFile>* r,
                                    rocksdb::IODebugContext* dbg) override {
    if (faults_->full) return rocksdb::IOStatus::NoSpace("injected: no space left on device");
    std::unique_ptr<rocksdb::FSWritableFile> file;
    rocksdb::IOStatus s = target()->NewWritableFile(f, o, &file, dbg);
    if (s.ok()) r->reset(new FullDiskFile(std::move(file), faults_));
    return s;
  }

 private:
  std::shared_ptr<DiskFaults> faults_;
};

class RocksDbFactStore final : public FactStore, public AuditStorage {
 public:
  static absl::StatusOr<std::unique_ptr<FactStore>> Open(const std::string& path, const DurableStoreOptions& o) {
    std::unique_ptr<RocksDbFactStore> store(new RocksDbFactStore(path, o));
    absl::Status s = o.read_only ? store->OpenSecondary() : store->OpenPrimary();
    if (!s.ok()) return s;
    return std::unique_ptr<FactStore>(std::move(store));
  }

  ~RocksDbFactStore() override {
    if (db_) {
      for (rocksdb::ColumnFamilyHandle* h : handles_) db_->DestroyColumnFamilyHandle(h);
      db_->Close().PermitUncheckedError();
      db_.reset();
    }
    if (!secondary_dir_.empty()) {
      std::error_code ec;
      std::filesystem::remove_all(secondary_dir_, ec);  // our scratch directory only
    }
  }

  absl::StatusOr<uint64_t> Append(std::vector<Fact> facts) override {
    if (options_.read_only) return ReadOnlyError();
    Writer w(&facts);
    MutexLock lock(&mu_);
    writers_.push_back(&w);
    while (!w.done && &w != writers_.front()) writers_cv_.Wait(&mu_);
    if (w.done) return w.result;

    // This writer leads: take the whole queue as one group.
    std::vector<Writer*> group(writers_.begin(), writers_.end());
    uint64_t seq = last_seq_;
    rocksdb::WriteBatch batch;
    BatchIds accepted;  // what the group's batches accepted so far add
    std::vector<std::string> touched;
    bool any = false;
    const absl::Time arrival = clock_();
    if (!sticky_error_.ok()) TryRecoverLocked();
    if (!sticky_error_.ok()) {
      for (Writer* g : group) g->result = sticky_error_;
    } else {
      // The database is not reopened while the batch is built; it is built for this
      // instance (its column family handles), so the write checks it is still the one.
      db_mu_.ReaderLock();
      const uint64_t instance = db_instance_;
      const StoredIds known(this);
      for (Writer* g : group) {
        // Check this batch on its own; a bad batch leaves no trace in the group.
        BatchIds mine;
        absl::Status bad = CheckBatch(*g->facts, known, accepted, &mine);
        if (!bad.ok()) {
          g->result = bad;
          continue;
        }
        accepted.Merge(mine);
        for (Fact& f : *g->facts) {
          f.provenance.seq = ++seq;
          f.provenance.arrival = arrival;
          AddToBatch(f, accepted, &batch, &touched);
        }
        g->result = seq;
        any = true;
      }
      if (any) batch.Put(handles_[kDefault], kLastSeqKey, BigEndian64(seq));
      db_mu_.ReaderUnlock();
      if (any) {
        // Write with the lock released, so the next group can queue up meanwhile; never
        // holding db_mu_ while taking mu_ (a reopen holds mu_ and waits for db_mu_).
        mu_.Unlock();
        rocksdb::Status ws;
        {
          ReaderMutexLock live(&db_mu_);
          if (!db_ || db_instance_ != instance) {
            ws = rocksdb::Status::Aborted("the store was reopened after a write error; nothing was written");
          } else {
            rocksdb::WriteOptions wo;
            wo.sync = true;
            ws = db_->Write(wo, &batch);
          }
        }
        // Recorded before anyone is told: a store that later comes back without these
        // facts is refused when opened (engine/ack_record.h).
        absl::Status acked = ws.ok() ? ack_->AdvanceFacts(seq) : absl::OkStatus();
        mu_.Lock();
        if (!ws.ok()) {
          sticky_error_ = FromRocks(ws, "writing facts (the store refuses writes until the cause is gone)");
          last_recovery_attempt_ = absl::Now();
          for (Writer* g : group) {
            if (g->result.ok()) g->result = sticky_error_;
          }
        } else {
          // The facts are durable in the store even when TOEGANG-ACK could not follow:
          // they are acknowledged, and health says what is wrong until it can.
          NoteAck(acked);
          last_seq_ = seq;
          generation_.fetch_add(1, std::memory_order_release);
          for (const std::string& key : touched) {
            if (key[0] == 'p') {
              record_cache_.Erase(key);
            } else {
              coverage_cache_.Erase(key);
            }
          }
        }
      }
    }
    for (Writer* g : group) {
      writers_.pop_front();
      g->done = true;
    }
    writers_cv_.SignalAll();
    return w.result;
  }

  absl::StatusOr<std::shared_ptr<const PatientRecord>> Patient(absl::string_view patient, absl::Time as_of) override {
    const bool current = as_of == absl::InfiniteFuture();
    std::string prefix = PatientPrefix(patient);
    if (current) {
      if (auto hit = record_cache_.Get(prefix)) return hit;
    }
    uint64_t generation = generation_.load(std::memory_order_acquire);
    auto rec = std::make_shared<PatientRecord>();
    rec->patient = std::string(patient);
    absl::Status s = Scan(prefix, as_of, [&](Fact f) {
      rec->Add(f);
      return absl::OkStatus();
    });
    if (!s.ok()) return s;
    std::shared_ptr<const PatientRecord> out = std::move(rec);
    if (current && generation == generation_.load(std::memory_order_acquire)) record_cache_.Put(prefix, out);
    return out;
  }

  absl::StatusOr<std::shared_ptr<const std::vector<Stored<Relationship>>>> SubstitutionsOf(
      absl::string_view clinician, absl::Time as_of) override {
    const bool current = as_of == absl::InfiniteFuture();
    std::string prefix = ClinicianPrefix(clinician);
    if (current) {
      if (auto hit = coverage_cache_.Get(prefix)) return hit;
    }
    uint64_t generation = generation_.load(std::memory_order_acquire);
    auto subs = std::make_shared<std::vector<Stored<Relationship>>>();
    absl::Status s = Scan(prefix, as_of, [&](Fact f) {
      const Relationship* r = std::get_if<Relationship>(&f.body);
      if (r == nullptr) return absl::DataLossError("a coverage key holds no relationship");
      subs->push_back({*r, f.provenance});
      return absl::OkStatus();
    });
    if (!s.ok()) return s;
    std::shared_ptr<const std::vector<Stored<Relationship>>> out = std::move(subs);
    if (current && generation == generation_.load(std::memory_order_acquire)) coverage_cache_.Put(prefix, out);
    return out;
  }

  absl::StatusOr<std::vector<Fact>> History(absl::string_view patient, absl::Time as_of) override {
    std::vector<Fact> out;
    absl::Status s = Scan(PatientPrefix(patient), as_of, [&](Fact f) {
      out.push_back(std::move(f));
      return absl::OkStatus();
    });
    if (!s.ok()) return s;
    return out;
  }

  uint64_t LastSequence() const override {
    MutexLock lock(&mu_);
    return last_seq_;
  }

  AuditStorage& audit_storage() override { return *this; }

  absl::Status Health() override {
    if (options_.read_only) return absl::OkStatus();
    MutexLock lock(&mu_);
    if (!sticky_error_.ok()) TryRecoverLocked();
    if (!sticky_error_.ok()) return sticky_error_;
    return ack_error_;
  }

  // --- AuditStorage ---------------------------------------------------------------

  absl::Status Append(const std::vector<AuditRow>& rows, absl::string_view head_hash, bool sync) override {
    if (rows.empty()) return absl::OkStatus();
    if (options_.read_only) return ReadOnlyError();
    rocksdb::Status ws;
    {
      ReaderMutexLock live(&db_mu_);  // the database is not reopened meanwhile
      if (!db_) return Closed();
      rocksdb::WriteBatch batch;
      for (const AuditRow& r : rows) {
        batch.Put(handles_[kAudit], BigEndian64(r.seq), r.entry);
        batch.Put(handles_[kAuditIndex], AuditIndexKey(r.patient, r.at_us, r.seq), "");
      }
      batch.Put(handles_[kDefault], kAuditHeadKey, absl::StrCat(BigEndian64(rows.back().seq), head_hash));
      rocksdb::WriteOptions wo;
      wo.sync = sync;
      ws = db_->Write(wo, &batch);
    }
    if (!ws.ok()) {
      MutexLock lock(&mu_);
      if (sticky_error_.ok()) {
        sticky_error_ = FromRocks(ws, "writing the access log (the store refuses writes until the cause is gone)");
        last_recovery_attempt_ = absl::Now();
      }
      return FromRocks(ws, "writing the access log");
    }
    if (sync) {
      absl::Status acked = ack_->AdvanceAudit(rows.back().seq);
      MutexLock lock(&mu_);
      NoteAck(acked);
    }
    return absl::OkStatus();
  }

  absl::Status Recover() override {
    if (options_.read_only) return ReadOnlyError();
    MutexLock lock(&mu_);
    if (!sticky_error_.ok()) TryRecoverLocked();
    return sticky_error_;
  }

  absl::Status ReadHead(uint64_t* last_seq, std::string* head_hash) override {
    ReaderMutexLock live(&db_mu_);  // the database is not reopened meanwhile
    if (!db_) return Closed();
    std::string v;
    rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), handles_[kDefault], kAuditHeadKey, &v);
    if (s.IsNotFound()) {
      *last_seq = 0;
      head_hash->clear();
      return absl::OkStatus();
    }
    if (!s.ok()) return FromRocks(s, "reading the access log head");
    if (v.size() < 8) return absl::DataLossError("the access log head is corrupt");
    *last_seq = ReadBigEndian64(v);
    *head_hash = v.substr(8);
    return absl::OkStatus();
  }

  absl::Status ScanChain(const AuditVisitor& visit) override {
    ReaderMutexLock live(&db_mu_);  // the database is not reopened meanwhile
    if (!db_) return Closed();
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), handles_[kAudit]));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      if (it->key().size() != 8) return absl::DataLossError("an access log key is corrupt");
      absl::Status s = visit(ReadBigEndian64(absl::string_view(it->key().data(), 8)),
                             absl::string_view(it->value().data(), it->value().size()));
      if (!s.ok()) return s;
    }
    return FromRocks(it->status(), "reading the access log");
  }

  absl::Status ScanPatient(absl::string_view patient, int64_t from_us, int64_t until_us,
                           const AuditVisitor& visit) override {
    ReaderMutexLock live(&db_mu_);  // the database is not reopened meanwhile
    if (!db_) return Closed();
    const std::string prefix = absl::StrCat(patient, absl::string_view("\0", 1));
    const std::string lower = AuditIndexKey(patient, from_us, 0);
    const std::string upper = AuditIndexKey(patient, until_us, 0);  // first key at `until`
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), handles_[kAuditIndex]));
    for (it->SeekForPrev(upper); it->Valid(); it->Prev()) {
      absl::string_view key(it->key().data(), it->key().size());
      if (key == upper) continue;
      if (!absl::StartsWith(key, prefix) || key < lower) break;
      if (key.size() != prefix.size() + 16) {
        return absl::DataLossError(absl::StrCat("the access log index holds a malformed key under this patient"));
      }
      uint64_t seq = ReadBigEndian64(key.substr(prefix.size() + 8));
      std::string entry;
      rocksdb::Status g = db_->Get(rocksdb::ReadOptions(), handles_[kAudit], BigEndian64(seq), &entry);
      if (g.IsNotFound()) {
        return absl::DataLossError(absl::StrCat("access log record ", seq, " is indexed but missing"));
      }
      if (!g.ok()) return FromRocks(g, "reading the access log");
      absl::Status s = visit(seq, entry);
      if (!s.ok()) return s;
    }
    return FromRocks(it->status(), "reading the access log index");
  }

  absl::Status Purge(const std::vector<AuditRow>& rows, absl::string_view checkpoint) override {
    if (options_.read_only) return ReadOnlyError();
    ReaderMutexLock live(&db_mu_);  // the database is not reopened meanwhile
    if (!db_) return Closed();
    rocksdb::WriteBatch batch;
    for (const AuditRow& r : rows) {
      batch.Delete(handles_[kAudit], BigEndian64(r.seq));
      batch.Delete(handles_[kAuditIndex], AuditIndexKey(r.patient, r.at_us, r.seq));
    }
    batch.Put(handles_[kDefault], kAuditCheckpointKey, std::string(checkpoint));
    rocksdb::WriteOptions wo;
    wo.sync = true;
    return FromRocks(db_->Write(wo, &batch), "purging the access log");
  }

  absl::StatusOr<std::string> ReadCheckpoint() override {
    ReaderMutexLock live(&db_mu_);  // the database is not reopened meanwhile
    if (!db_) return Closed();
    std::string v;
    rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), handles_[kDefault], kAuditCheckpointKey, &v);
    if (s.IsNotFound()) return std::string();
    if (!s.ok()) return FromRocks(s, "reading the access log checkpoint");
    return v;
  }

  absl::StatusOr<std::string> ReadEntry(uint64_t seq) override {
    ReaderMutexLock live(&db_mu_);  // the database is not reopened meanwhile
    if (!db_) return Closed();
    std::string v;
    rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), handles_[kAudit], BigEndian64(seq), &v);
    if (s.IsNotFound()) return absl::NotFoundError(absl::StrCat("no access log record ", seq));
    if (!s.ok()) return FromRocks(s, "reading the access log");
    return v;
  }

  absl::Status ScanIndex(const AuditIndexVisitor& visit) override {
    ReaderMutexLock live(&db_mu_);  // the database is not reopened meanwhile
    if (!db_) return Closed();
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), handles_[kAuditIndex]));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      absl::string_view patient;
      int64_t at_us = 0;
      uint64_t seq = 0;
      if (!ParseAuditIndexKey(absl::string_view(it->key().data(), it->key().size()), &patient, &at_us, &seq)) {
        return absl::DataLossError("the access log index holds a malformed key");
      }
      absl::Status s = visit(patient, at_us, seq);
      if (!s.ok()) return s;
    }
    return FromRocks(it->status(), "reading the access log index");
  }

  absl::StatusOr<bool> HasIndexEntry(absl::string_view patient, int64_t at_us, uint64_t seq) override {
    ReaderMutexLock live(&db_mu_);  // the database is not reopened meanwhile
    if (!db_) return Closed();
    std::string v;
    rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), handles_[kAuditIndex], AuditIndexKey(patient, at_us, seq), &v);
    if (s.IsNotFound()) return false;
    if (!s.ok()) return FromRocks(s, "reading the access log index");
    return true;
  }

 private:
  struct Writer {
    explicit Writer(std::vector<Fact>* f) : facts(f) {}
    std::vector<Fact>* facts;
    absl::StatusOr<uint64_t> result = uint64_t{0};
    bool done = false;
  };

  // What the store held when opened, and what it had acknowledged.
  struct Inventory {
    int format = 0;       // 0: no format version recorded
    uint64_t facts = 0;   // last fact sequence
    uint64_t audit = 0;   // last access-log record
    bool empty = true;    // no key in any column family
  };

  RocksDbFactStore(std::string path, const DurableStoreOptions& o)
      : path_(std::move(path)),
        options_(o),
        clock_(o.clock),
        record_cache_(o.record_cache_entries),
        coverage_cache_(o.record_cache_entries / 4 + 16) {}

  static absl::Status ReadOnlyError() {
    return absl::FailedPreconditionError("the store is open read-only (beside a running server): nothing is written");
  }

  // REQUIRES: mu_ held and sticky_error_ set. At most once a second: RocksDB's Resume,
  // and when RocksDB holds the error unrecoverable (a failed write-ahead log write is,
  // in this version) a reopen, as a restart would: the write-ahead log is replayed up to
  // the failed write, which was never acknowledged, and checked against TOEGANG-ACK.
  void TryRecoverLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
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
                   std::string(sticky_error_.message()).c_str());
      sticky_error_ = absl::OkStatus();
    }
  }

  // REQUIRES: mu_ held. Closes the database and opens it again.
  absl::Status ReopenLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    db_mu_.Lock();
    if (db_) {
      for (rocksdb::ColumnFamilyHandle* h : handles_) db_->DestroyColumnFamilyHandle(h);
      handles_.clear();
      db_->Close().PermitUncheckedError();  // it is in error: that is why it is closed
      db_.reset();
    }
    ++db_instance_;
    absl::Status s;
    std::vector<std::string> names;
    rocksdb::Status ls = rocksdb::DB::ListColumnFamilies(db_options_, path_, &names);
    s = ls.ok() ? OpenReadWrite(names) : Explain(path_, ls);
    if (s.ok()) {
      absl::StatusOr<Inventory> inv = TakeInventory(db_.get(), handles_);
      if (!inv.ok()) {
        s = inv.status();
      } else if (inv->facts < last_seq_) {
        s = absl::DataLossError(absl::StrCat("the store came back after a write error holding facts up to ",
                                             inv->facts, " of ", last_seq_, ": restart and restore it"));
      }
    }
    if (!s.ok() && db_) {
      for (rocksdb::ColumnFamilyHandle* h : handles_) db_->DestroyColumnFamilyHandle(h);
      handles_.clear();
      db_->Close().PermitUncheckedError();
      db_.reset();
    }
    db_mu_.Unlock();
    return s;
  }

  static absl::Status Closed() {
    return absl::UnavailableError("the store is closed after a write error; it is reopened once the cause is gone");
  }

  // Keeps the outcome of an acknowledgement write for Health().
  void NoteAck(const absl::Status& acked) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    ack_error_ = acked.ok() ? absl::OkStatus()
                            : absl::UnavailableError(absl::StrCat(
                                  "written, but what was acknowledged could not be recorded: ", acked.message()));
  }

  // The database options every open shares.
  rocksdb::DBOptions DbOptions(const std::string& info_log_path) {
    rocksdb::DBOptions o;
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
    o.keep_log_file_num = 4;
    // The default column family holds two tiny keys and is almost never flushed; without
    // a cap it would keep every write-ahead log file alive.
    o.max_total_wal_size = uint64_t{256} << 20;
    // Required by the vector memtables below; writes are serialized by our own queues.
    o.allow_concurrent_memtable_write = false;
    o.info_log = std::make_shared<InfoLog>(info_log_path);
    std::shared_ptr<rocksdb::FileSystem> fs = std::make_shared<OwnerOnlyFileSystem>(rocksdb::FileSystem::Default());
    if (options_.disk_faults) fs = std::make_shared<FullDiskFileSystem>(fs, options_.disk_faults);
    env_ = rocksdb::NewCompositeEnv(fs);
    o.env = env_.get();
    return o;
  }

  // Our column families, then any a newer build added (kept as they are).
  std::vector<rocksdb::ColumnFamilyDescriptor> ColumnFamilies(const std::vector<std::string>& existing,
                                                              bool for_reading = false) {
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
    // The access log is append-mostly and rarely read: a vector memtable makes appends
    // cheap (it is sorted once, at flush or on a read), which keeps the log writer ahead
    // of the deciders. A reader (secondary or read-only) only reads, one point lookup per
    // index entry when verifying, and a vector memtable sorts itself anew for each:
    // readers keep RocksDB's skip list.
    for (size_t i = 3; i < cfs.size(); ++i) {
      rocksdb::BlockBasedTableOptions t;
      t.block_cache = block_cache_;
      cfs[i].options.table_factory.reset(rocksdb::NewBlockBasedTableFactory(t));
      if (!for_reading) cfs[i].options.memtable_factory = std::make_shared<rocksdb::VectorRepFactory>();
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
  absl::StatusOr<Inventory> TakeInventory(rocksdb::DB* db, const std::vector<rocksdb::ColumnFamilyHandle*>& handles) {
    Inventory inv;
    for (rocksdb::ColumnFamilyHandle* h : handles) {
      std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions(), h));
      it->SeekToFirst();
      if (!it->status().ok()) return Explain(path_, it->status());
      if (it->Valid()) inv.empty = false;
    }
    std::string v;
    rocksdb::Status s = db->Get(rocksdb::ReadOptions(), handles[kDefault], kFormatKey, &v);
    if (s.ok()) {
      if (!absl::SimpleAtoi(v, &inv.format) || inv.format < 1) {
        return absl::DataLossError(absl::StrCat("'", path_, "': unreadable format version '", v, "'"));
      }
    } else if (!s.IsNotFound()) {
      return Explain(path_, s);
    }
    s = db->Get(rocksdb::ReadOptions(), handles[kDefault], kLastSeqKey, &v);
    if (s.ok()) {
      inv.facts = ReadBigEndian64(v);
    } else if (!s.IsNotFound()) {
      return Explain(path_, s);
    }
    s = db->Get(rocksdb::ReadOptions(), handles[kDefault], kAuditHeadKey, &v);
    if (s.ok()) {
      inv.audit = ReadBigEndian64(v);
    } else if (!s.IsNotFound()) {
      return Explain(path_, s);
    }
    return inv;
  }

  // Refuses a store newer than this build, or one that is not toegang's.
  absl::Status CheckFormat(const Inventory& inv, bool had_facts_cf) {
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
  absl::Status CheckAcknowledged(const Inventory& inv, const std::optional<Acknowledged>& ack) {
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

  enum class DirState { kNone, kStore, kDamaged, kNotDirectory };

  // kNone: nothing of a store's (missing, empty, or a creation a crash interrupted
  // before any fact could be written); kDamaged: a store's data without its CURRENT.
  DirState Inspect(std::string* found) {
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

  absl::Status OpenPrimary() {
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

  absl::Status MakePrivateDir() {
    namespace fs = std::filesystem;
    std::error_code ec;
    fs::create_directories(path_, ec);
    if (ec) return absl::InternalError(absl::StrCat("cannot create '", path_, "': ", ec.message()));
    // Patient ids are readable in the store's files: owner only, whatever the umask.
    fs::permissions(path_, fs::perms::owner_all, ec);
    if (ec) return absl::InternalError(absl::StrCat("cannot make '", path_, "' private: ", ec.message()));
    return absl::OkStatus();
  }

  absl::Status Create() {
    TOEGANG_RETURN_IF_ERROR(MakePrivateDir());
    db_options_ = DbOptions(path_ + "/LOG");
    db_options_.create_if_missing = true;
    db_options_.create_missing_column_families = true;
    TOEGANG_RETURN_IF_ERROR(OpenReadWrite({}));
    rocksdb::WriteOptions wo;
    wo.sync = true;
    rocksdb::Status ps = db_->Put(wo, handles_[kDefault], kFormatKey, std::to_string(kStoreFormatVersion));
    if (!ps.ok()) return FromRocks(ps, "writing the format version");
    absl::StatusOr<std::unique_ptr<AckRecord>> ack = AckRecord::OpenForWriting(path_, Acknowledged{});
    if (!ack.ok()) return ack.status();
    ack_ = *std::move(ack);
    return absl::OkStatus();
  }

  absl::Status OpenExisting() {
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
    if (!ls.ok()) return Explain(path_, ls);
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
    last_seq_ = inv->facts;
    if (!ack_) {
      absl::StatusOr<std::unique_ptr<AckRecord>> created =
          AckRecord::OpenForWriting(path_, Acknowledged{inv->facts, inv->audit});
      if (!created.ok()) return created.status();
      ack_ = *std::move(created);
    } else if (options_.accept_loss) {
      TOEGANG_RETURN_IF_ERROR(ack_->Reset(Acknowledged{inv->facts, inv->audit}));
    }
    // Owner only, also for stores created before toegang set it.
    std::error_code ec;
    std::filesystem::permissions(path_, std::filesystem::perms::owner_all, ec);
    return absl::OkStatus();
  }

  absl::StatusOr<Inventory> ReadOnlyInventory(const std::vector<std::string>& names) {
    std::vector<rocksdb::ColumnFamilyDescriptor> cfs;
    for (const rocksdb::ColumnFamilyDescriptor& d : ColumnFamilies(names, /*for_reading=*/true)) {
      if (std::find(names.begin(), names.end(), d.name) != names.end()) cfs.push_back(d);
    }
    std::vector<rocksdb::ColumnFamilyHandle*> handles;
    rocksdb::DB* raw = nullptr;
    rocksdb::Status s = rocksdb::DB::OpenForReadOnly(db_options_, path_, cfs, &handles, &raw);
    if (!s.ok()) return Explain(path_, s);
    std::unique_ptr<rocksdb::DB> db(raw);
    // The default column family (first) holds every key read; any family may hold data.
    absl::StatusOr<Inventory> inv = TakeInventory(db.get(), handles);
    for (rocksdb::ColumnFamilyHandle* h : handles) db->DestroyColumnFamilyHandle(h);
    return inv;
  }

  absl::Status OpenReadWrite(const std::vector<std::string>& names) {
    rocksdb::DB* raw = nullptr;
    rocksdb::Status os = rocksdb::DB::Open(db_options_, path_, ColumnFamilies(names), &handles_, &raw);
    if (!os.ok()) return Explain(path_, os);
    db_.reset(raw);
    return absl::OkStatus();
  }

  // Format 1 → 2: persons' ids go into `ids`, so a second person fact with the same id
  // is refused like any other duplicate.
  absl::Status Upgrade(int from) {
    rocksdb::WriteBatch batch;
    if (from < 2) {
      std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), handles_[kFacts]));
      for (it->Seek("p"); it->Valid() && it->key().starts_with("p"); it->Next()) {
        absl::StatusOr<Fact> fact = DecodeFact(absl::string_view(it->value().data(), it->value().size()));
        if (!fact.ok()) return absl::DataLossError(absl::StrCat("upgrading the store: ", fact.status().message()));
        if (std::holds_alternative<Person>(fact->body)) batch.Put(handles_[kIds], UniqueIdKey(fact->body), "");
      }
      if (!it->status().ok()) return FromRocks(it->status(), "upgrading the store");
    }
    batch.Put(handles_[kDefault], kFormatKey, std::to_string(kStoreFormatVersion));
    rocksdb::WriteOptions wo;
    wo.sync = true;
    return FromRocks(db_->Write(wo, &batch), "upgrading the store");
  }

  // A RocksDB secondary instance: it reads the store's files without its lock, beside a
  // server that writes them, with its own scratch directory for its info log.
  absl::Status OpenSecondary() {
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
    if (!ls.ok()) return Explain(path_, ls);
    if (std::find(names.begin(), names.end(), kFactsCf) == names.end()) {
      return absl::FailedPreconditionError(absl::StrCat("'", path_, "' is not a toegang store"));
    }
    std::vector<rocksdb::ColumnFamilyDescriptor> cfs;
    for (const rocksdb::ColumnFamilyDescriptor& d : ColumnFamilies(names, /*for_reading=*/true)) {
      if (std::find(names.begin(), names.end(), d.name) != names.end()) cfs.push_back(d);
    }
    rocksdb::DB* raw = nullptr;
    rocksdb::Status os = rocksdb::DB::OpenAsSecondary(db_options_, path_, secondary_dir_, cfs, &handles_, &raw);
    if (!os.ok()) return Explain(path_, os);
    db_.reset(raw);
    rocksdb::Status cs = db_->TryCatchUpWithPrimary();
    if (!cs.ok()) return Explain(path_, cs);
    if (handles_.size() < 5) {
      return absl::FailedPreconditionError(
          absl::StrCat("the store at '", path_, "' was written by an older toegang: open it once for writing first"));
    }
    absl::StatusOr<Inventory> inv = TakeInventory(db_.get(), handles_);
    if (!inv.ok()) return inv.status();
    TOEGANG_RETURN_IF_ERROR(CheckFormat(*inv, true));
    TOEGANG_RETURN_IF_ERROR(CheckAcknowledged(*inv, *acked));
    last_seq_ = inv->facts;
    return absl::OkStatus();
  }

  static absl::Status Explain(const std::string& path, const rocksdb::Status& s) {
    std::string msg = s.ToString();
    if (s.IsIOError() && (msg.find("lock") != std::string::npos || msg.find("LOCK") != std::string::npos)) {
      return absl::UnavailableError(
          absl::StrCat("the store at '", path, "' is in use by another process (its LOCK is held): ", msg));
    }
    if (s.IsCorruption()) {
      return absl::DataLossError(absl::StrCat("the store at '", path, "' is corrupt: ", msg));
    }
    if (s.IsNoSpace()) {
      return absl::ResourceExhaustedError(absl::StrCat("cannot open the store at '", path, "': ", msg));
    }
    return absl::InternalError(absl::StrCat("cannot open the store at '", path, "': ", msg));
  }

  // The store's ids, as CheckBatch (model/fact_index.h) asks them.
  // REQUIRES: mu_ and db_mu_ (shared) held while it is used.
  class StoredIds final : public KnownIds {
   public:
    explicit StoredIds(RocksDbFactStore* store) : store_(store) {}
    absl::StatusOr<bool> Taken(const std::string& key) const override {
      std::string ignored;
      rocksdb::Status s = store_->db_->Get(rocksdb::ReadOptions(), store_->handles_[kIds], key, &ignored);
      if (s.IsNotFound()) return false;
      if (!s.ok()) return FromRocks(s, "checking its id");
      return true;
    }
    absl::StatusOr<std::optional<std::string>> PatientOfTarget(absl::string_view id) const override {
      std::string patient;
      rocksdb::Status s =
          store_->db_->Get(rocksdb::ReadOptions(), store_->handles_[kIds], absl::StrCat("w:", id), &patient);
      if (s.IsNotFound()) return std::optional<std::string>();
      if (!s.ok()) return FromRocks(s, "checking what it withdraws");
      return std::optional<std::string>(std::move(patient));
    }

   private:
    RocksDbFactStore* const store_;
  };

  // REQUIRES: `accepted` includes the batch of `f`, which CheckBatch accepted.
  void AddToBatch(const Fact& f, const BatchIds& accepted, rocksdb::WriteBatch* batch, std::vector<std::string>* touched)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    std::string withdrawal_patient;
    if (const auto* w = std::get_if<Withdrawal>(&f.body)) {
      if (const std::string* p = accepted.PatientOf(w->target)) {
        withdrawal_patient = *p;
      } else {
        db_->Get(rocksdb::ReadOptions(), handles_[kIds], absl::StrCat("w:", w->target), &withdrawal_patient)
            .PermitUncheckedError();  // checked just before, under the same lock
      }
    }
    const FactOwner owner_of = OwnerOf(f.body, withdrawal_patient);
    // The key prefix this fact is filed under.
    std::string owner =
        owner_of.kind == FactOwner::Kind::kClinician ? ClinicianPrefix(owner_of.id) : PatientPrefix(owner_of.id);
    batch->Put(handles_[kFacts], absl::StrCat(owner, BigEndian64(f.provenance.seq)), EncodeFact(f, withdrawal_patient));
    std::string key = UniqueIdKey(f.body);
    if (!key.empty()) {
      batch->Put(handles_[kIds], key, IsWithdrawable(f.body) ? *FactPatient(f.body) : std::string());
    }
    touched->push_back(std::move(owner));
  }

  // Calls `visit` for each fact under `prefix` with arrival <= as_of, in sequence order.
  template <typename Visit>
  absl::Status Scan(const std::string& prefix, absl::Time as_of, Visit visit) {
    ReaderMutexLock live(&db_mu_);  // the database is not reopened meanwhile
    if (!db_) return Closed();
    rocksdb::ReadOptions ro;
    ro.prefix_same_as_start = true;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, handles_[kFacts]));
    for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
      absl::StatusOr<Fact> fact = DecodeFact(absl::string_view(it->value().data(), it->value().size()));
      if (!fact.ok()) {
        return absl::DataLossError(absl::StrCat("stored fact under '", prefix.substr(1, prefix.size() - 2),
                                                "' is corrupt: ", fact.status().message()));
      }
      if (fact->provenance.arrival > as_of) continue;
      absl::Status s = visit(*std::move(fact));
      if (!s.ok()) return s;
    }
    return FromRocks(it->status(), "reading facts");
  }

  const std::string path_;
  const DurableStoreOptions options_;
  const ArrivalClock clock_;
  std::unique_ptr<rocksdb::Env> env_;  // owner-only files (and tests' faults); outlives db_
  rocksdb::DBOptions db_options_;
  std::shared_ptr<rocksdb::Cache> block_cache_;
  // The database, reopened (ReopenLocked) after a write error RocksDB cannot resume
  // from. Readers hold db_mu_ shared while they use it.
  mutable SharedMutex db_mu_;
  std::unique_ptr<rocksdb::DB> db_;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;  // default, facts, ids, ...
  uint64_t db_instance_ = 0;                           // bumped by every reopen
  std::unique_ptr<AckRecord> ack_;                     // null when read_only
  std::string secondary_dir_;                          // read_only: the scratch directory

  mutable Mutex mu_;
  CondVar writers_cv_;
  std::deque<Writer*> writers_ ABSL_GUARDED_BY(mu_);
  uint64_t last_seq_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Status sticky_error_ ABSL_GUARDED_BY(mu_);
  absl::Time last_recovery_attempt_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  absl::Status ack_error_ ABSL_GUARDED_BY(mu_);

  std::atomic<uint64_t> generation_{0};
  RecordCache<PatientRecord> record_cache_;
  RecordCache<std::vector<Stored<Relationship>>> coverage_cache_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<FactStore>> OpenDurableFactStore(const std::string& path,
                                                                const DurableStoreOptions& options) {
  return RocksDbFactStore::Open(path, options);
}

}  // namespace toegang

// --- For tests only (engine/testing/raw_store.h): raw edits a tamper or version test
// needs, kept in this file so that no other file includes RocksDB.
namespace toegang::testing {

namespace {

// Opens the closed store at `path` with all its column families; calls `use(db, handle
// of cf)` and closes it again.
template <typename Use>
absl::Status WithRawStore(const std::string& path, const std::string& cf, bool read_only, Use use) {
  rocksdb::DBOptions o;
  std::vector<std::string> names;
  rocksdb::Status s = rocksdb::DB::ListColumnFamilies(o, path, &names);
  if (!s.ok()) return absl::InternalError(s.ToString());
  std::vector<rocksdb::ColumnFamilyDescriptor> cfs;
  for (const std::string& n : names) {
    rocksdb::ColumnFamilyOptions cfo;
    if (n == "facts") cfo.prefix_extractor = std::make_shared<::toegang::OwnerPrefix>();
    cfs.push_back({n, cfo});
  }
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  s = read_only ? rocksdb::DB::OpenForReadOnly(o, path, cfs, &handles, &raw)
                : rocksdb::DB::Open(o, path, cfs, &handles, &raw);
  if (!s.ok()) return absl::InternalError(s.ToString());
  std::unique_ptr<rocksdb::DB> db(raw);
  s = rocksdb::Status::NotFound("no column family " + cf);
  for (size_t i = 0; i < names.size(); ++i) {
    if (names[i] == cf) s = use(db.get(), handles[i]);
  }
  for (auto* handle : handles) db->DestroyColumnFamilyHandle(handle);
  if (!read_only) db->Close().PermitUncheckedError();
  if (s.IsNotFound()) return absl::NotFoundError(s.ToString());
  return s.ok() ? absl::OkStatus() : absl::InternalError(s.ToString());
}

}  // namespace

absl::Status RawPutForTesting(const std::string& path, const std::string& cf, const std::string& key,
                              const std::string& value, bool erase) {
  return WithRawStore(path, cf, /*read_only=*/false, [&](rocksdb::DB* db, rocksdb::ColumnFamilyHandle* h) {
    rocksdb::WriteOptions wo;
    wo.sync = true;
    return erase ? db->Delete(wo, h, key) : db->Put(wo, h, key, value);
  });
}

absl::StatusOr<std::string> RawGetForTesting(const std::string& path, const std::string& cf, const std::string& key) {
  std::string value;
  absl::Status s = WithRawStore(path, cf, /*read_only=*/true, [&](rocksdb::DB* db, rocksdb::ColumnFamilyHandle* h) {
    return db->Get(rocksdb::ReadOptions(), h, key, &value);
  });
  if (!s.ok()) return s;
  return value;
}

}  // namespace toegang::testing
