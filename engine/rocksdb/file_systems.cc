// Copyright toegang authors.
#include "engine/rocksdb/file_systems.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdarg>
#include <cstdio>

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace toegang {
namespace {

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

}  // namespace

std::shared_ptr<rocksdb::Logger> NewInfoLog(const std::string& path) { return std::make_shared<InfoLog>(path); }

std::shared_ptr<rocksdb::FileSystem> NewOwnerOnlyFileSystem(std::shared_ptr<rocksdb::FileSystem> target) {
  return std::make_shared<OwnerOnlyFileSystem>(std::move(target));
}

}  // namespace toegang
