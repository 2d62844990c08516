// Copyright toegang authors.
#include "engine/rocksdb/fault_injection.h"

#include "absl/strings/match.h"
#include "engine/rocksdb/database.h"
#include "engine/rocksdb/stores.h"
#include "rocksdb/file_system.h"

namespace toegang {
namespace {

// Every file write fails as on a full disk while the switch is on, through RocksDB's
// real error handling.
class FullDiskFile final : public rocksdb::FSWritableFileOwnerWrapper {
 public:
  FullDiskFile(std::unique_ptr<rocksdb::FSWritableFile> f, std::shared_ptr<DiskFaults> faults, bool wal)
      : rocksdb::FSWritableFileOwnerWrapper(std::move(f)), faults_(std::move(faults)), wal_(wal) {}

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
    return Counted(target()->Sync(o, dbg));
  }
  rocksdb::IOStatus Fsync(const rocksdb::IOOptions& o, rocksdb::IODebugContext* dbg) override {
    if (faults_->full) return rocksdb::IOStatus::NoSpace("injected: no space left on device");
    return Counted(target()->Fsync(o, dbg));
  }

 private:
  rocksdb::IOStatus Counted(rocksdb::IOStatus s) {
    if (s.ok() && wal_) ++faults_->wal_syncs;
    return s;
  }

  std::shared_ptr<DiskFaults> faults_;
  const bool wal_;
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
    if (s.ok()) r->reset(new FullDiskFile(std::move(file), faults_, absl::EndsWith(f, ".log")));
    return s;
  }

 private:
  std::shared_ptr<DiskFaults> faults_;
};

}  // namespace

absl::StatusOr<DurableStore> OpenDurableStoreWithFaults(const std::string& path, const DurableStoreOptions& options,
                                                        std::shared_ptr<DiskFaults> faults) {
  absl::StatusOr<std::shared_ptr<Database>> db =
      Database::Open(path, options, [faults](std::shared_ptr<rocksdb::FileSystem> fs) {
        return std::make_shared<FullDiskFileSystem>(std::move(fs), faults);
      });
  if (!db.ok()) return db.status();
  return DurableStore{NewRocksDbFactStore(*db), NewRocksDbAuditStorage(*db)};
}

}  // namespace toegang
