// Copyright toegang authors.
#include "engine/rocksdb/ack_record.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "base/files.h"

namespace toegang {
namespace {

// A slot: magic(8) generation(8) facts(8) audit(8) checksum(8), little-endian. Slots at
// offsets 0 and 512 (separate sectors).
constexpr char kMagic[8] = {'T', 'G', 'A', 'C', 'K', '1', '\n', '\0'};
constexpr size_t kSlotBytes = 40;
constexpr off_t kSlotOffset[2] = {0, 512};

void Put64(char* p, uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<char>((v >> (8 * i)) & 0xff);
}

uint64_t Get64(const char* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

// FNV-1a: finds a torn or damaged slot; the slot is not a secret and needs no MAC.
uint64_t Checksum(const char* p, size_t n) {
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < n; ++i) {
    h ^= static_cast<unsigned char>(p[i]);
    h *= 1099511628211ull;
  }
  return h;
}

struct Slot {
  uint64_t generation;
  Acknowledged values;
};

std::optional<Slot> DecodeSlot(const char* p) {
  if (std::memcmp(p, kMagic, sizeof kMagic) != 0) return std::nullopt;
  if (Checksum(p, kSlotBytes - 8) != Get64(p + kSlotBytes - 8)) return std::nullopt;
  return Slot{Get64(p + 8), Acknowledged{Get64(p + 16), Get64(p + 24)}};
}

std::string FilePath(const std::string& dir) { return absl::StrCat(dir, "/", AckRecord::kFileName); }

absl::Status SyncDir(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus(absl::StrCat("cannot open '", dir, "'"), errno);
  int rc = ::fsync(fd);
  int err = errno;
  ::close(fd);
  return rc == 0 ? absl::OkStatus() : ErrnoStatus(absl::StrCat("cannot sync '", dir, "'"), err);
}

absl::StatusOr<std::optional<Slot>> ReadNewest(int fd, const std::string& path) {
  std::optional<Slot> best;
  bool any_bytes = false;
  for (off_t offset : kSlotOffset) {
    char buf[kSlotBytes];
    ssize_t n = ::pread(fd, buf, sizeof buf, offset);
    if (n < 0) return ErrnoStatus(absl::StrCat("cannot read '", path, "'"), errno);
    if (n == 0) continue;
    any_bytes = true;
    if (n != static_cast<ssize_t>(sizeof buf)) continue;
    std::optional<Slot> slot = DecodeSlot(buf);
    if (slot && (!best || slot->generation > best->generation)) best = slot;
  }
  if (!best && any_bytes) {
    return absl::DataLossError(absl::StrCat("'", path, "' is damaged: neither of its records is readable"));
  }
  return best;
}

}  // namespace

absl::StatusOr<std::optional<Acknowledged>> AckRecord::Read(const std::string& dir) {
  const std::string path = FilePath(dir);
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return std::optional<Acknowledged>();
    return ErrnoStatus(absl::StrCat("cannot open '", path, "'"), errno);
  }
  absl::StatusOr<std::optional<Slot>> slot = ReadNewest(fd, path);
  ::close(fd);
  if (!slot.ok()) return slot.status();
  if (!slot->has_value()) {
    return absl::DataLossError(absl::StrCat("'", path, "' is empty: what the store acknowledged is unknown"));
  }
  return std::optional<Acknowledged>((*slot)->values);
}

absl::StatusOr<std::unique_ptr<AckRecord>> AckRecord::OpenForWriting(const std::string& dir,
                                                                    std::optional<Acknowledged> create_with) {
  const std::string path = FilePath(dir);
  bool created = false;
  int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0 && errno == ENOENT) {
    if (!create_with) return absl::NotFoundError(absl::StrCat("'", path, "' does not exist"));
    fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    created = fd >= 0;
  }
  if (fd < 0) return ErrnoStatus(absl::StrCat("cannot open '", path, "'"), errno);
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    ::close(fd);
    if (err == EWOULDBLOCK) {
      return absl::UnavailableError(
          absl::StrCat("the store at '", dir, "' is in use by another process (", kFileName, " is locked)"));
    }
    return ErrnoStatus(absl::StrCat("cannot lock '", path, "'"), err);
  }
  std::unique_ptr<AckRecord> record(new AckRecord(fd, path));
  MutexLock lock(&record->mu_);
  if (created) {
    absl::Status s = record->WriteLocked(*create_with);
    if (s.ok()) s = SyncDir(dir);
    if (!s.ok()) {
      ::unlink(path.c_str());
      return s;
    }
  } else {
    absl::StatusOr<std::optional<Slot>> slot = ReadNewest(fd, path);
    if (!slot.ok()) return slot.status();
    if (!slot->has_value()) {
      return absl::DataLossError(absl::StrCat("'", path, "' is empty: what the store acknowledged is unknown"));
    }
    record->generation_ = (*slot)->generation;
    record->values_ = (*slot)->values;
  }
  return record;
}

AckRecord::~AckRecord() { ::close(fd_); }

absl::Status AckRecord::WriteLocked(const Acknowledged& next) {
  char buf[kSlotBytes];
  const uint64_t generation = generation_ + 1;
  std::memcpy(buf, kMagic, sizeof kMagic);
  Put64(buf + 8, generation);
  Put64(buf + 16, next.facts);
  Put64(buf + 24, next.audit);
  Put64(buf + 32, Checksum(buf, kSlotBytes - 8));
  const off_t offset = kSlotOffset[generation % 2];
  if (::pwrite(fd_, buf, sizeof buf, offset) != static_cast<ssize_t>(sizeof buf)) {
    return ErrnoStatus(absl::StrCat("cannot write '", path_, "'"), errno == 0 ? EIO : errno);
  }
  if (::fdatasync(fd_) != 0) return ErrnoStatus(absl::StrCat("cannot sync '", path_, "'"), errno);
  generation_ = generation;
  values_ = next;
  return absl::OkStatus();
}

absl::Status AckRecord::AdvanceFacts(uint64_t seq) {
  MutexLock lock(&mu_);
  if (seq <= values_.facts) return absl::OkStatus();
  return WriteLocked(Acknowledged{seq, values_.audit});
}

absl::Status AckRecord::AdvanceAudit(uint64_t seq) {
  MutexLock lock(&mu_);
  if (seq <= values_.audit) return absl::OkStatus();
  return WriteLocked(Acknowledged{values_.facts, seq});
}

absl::Status AckRecord::Reset(const Acknowledged& values) {
  MutexLock lock(&mu_);
  return WriteLocked(values);
}

Acknowledged AckRecord::values() const {
  MutexLock lock(&mu_);
  return values_;
}

}  // namespace toegang
