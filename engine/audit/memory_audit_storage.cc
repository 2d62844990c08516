// Copyright toegang authors.
#include <map>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "base/sync.h"
#include "engine/audit/audit_storage.h"

namespace toegang {
namespace {

class MemoryAuditStorage final : public AuditStorage {
 public:
  absl::Status Append(const std::vector<AuditRow>& rows, absl::string_view head_hash, bool) override {
    MutexLock lock(&mu_);
    for (const AuditRow& r : rows) {
      entries_[r.seq] = r.entry;
      index_[{r.patient, r.at_us, r.seq}] = r.seq;
    }
    if (!rows.empty()) {
      last_seq_ = rows.back().seq;
      head_hash_ = std::string(head_hash);
    }
    return absl::OkStatus();
  }

  absl::Status ReadHead(uint64_t* last_seq, std::string* head_hash) override {
    MutexLock lock(&mu_);
    *last_seq = last_seq_;
    *head_hash = head_hash_;
    return absl::OkStatus();
  }

  absl::Status ScanChain(const AuditVisitor& visit) override {
    std::map<uint64_t, std::string> copy;
    {
      MutexLock lock(&mu_);
      copy = entries_;
    }
    for (const auto& [seq, entry] : copy) {
      absl::Status s = visit(seq, entry);
      if (!s.ok()) return s;
    }
    return absl::OkStatus();
  }

  absl::Status ScanPatient(absl::string_view patient, int64_t from_us, int64_t until_us,
                           const AuditVisitor& visit) override {
    std::vector<std::pair<uint64_t, std::string>> found;
    {
      MutexLock lock(&mu_);
      for (auto it = index_.rbegin(); it != index_.rend(); ++it) {
        const auto& [p, at, seq] = it->first;
        if (p != patient || at < from_us || at >= until_us) continue;
        auto e = entries_.find(seq);
        if (e != entries_.end()) found.emplace_back(seq, e->second);
      }
    }
    for (const auto& [seq, entry] : found) {
      absl::Status s = visit(seq, entry);
      if (!s.ok()) return s;
    }
    return absl::OkStatus();
  }

  absl::Status Purge(const std::vector<AuditRow>& rows, absl::string_view checkpoint) override {
    MutexLock lock(&mu_);
    for (const AuditRow& r : rows) {
      entries_.erase(r.seq);
      index_.erase({r.patient, r.at_us, r.seq});
    }
    checkpoint_ = std::string(checkpoint);
    return absl::OkStatus();
  }

  absl::StatusOr<std::string> ReadCheckpoint() override {
    MutexLock lock(&mu_);
    return checkpoint_;
  }

  absl::StatusOr<std::string> ReadEntry(uint64_t seq) override {
    MutexLock lock(&mu_);
    auto it = entries_.find(seq);
    if (it == entries_.end()) return absl::NotFoundError(absl::StrCat("no access log record ", seq));
    return it->second;
  }

  absl::Status ScanIndex(const AuditIndexVisitor& visit) override {
    std::map<std::tuple<std::string, int64_t, uint64_t>, uint64_t> copy;
    {
      MutexLock lock(&mu_);
      copy = index_;
    }
    for (const auto& [key, seq] : copy) {
      absl::Status s = visit(std::get<0>(key), std::get<1>(key), seq);
      if (!s.ok()) return s;
    }
    return absl::OkStatus();
  }

  absl::StatusOr<bool> HasIndexEntry(absl::string_view patient, int64_t at_us, uint64_t seq) override {
    MutexLock lock(&mu_);
    return index_.count({std::string(patient), at_us, seq}) > 0;
  }

 private:
  Mutex mu_;
  std::map<uint64_t, std::string> entries_ ABSL_GUARDED_BY(mu_);
  std::map<std::tuple<std::string, int64_t, uint64_t>, uint64_t> index_ ABSL_GUARDED_BY(mu_);
  uint64_t last_seq_ ABSL_GUARDED_BY(mu_) = 0;
  std::string head_hash_ ABSL_GUARDED_BY(mu_);
  std::string checkpoint_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

std::unique_ptr<AuditStorage> NewMemoryAuditStorage() { return std::make_unique<MemoryAuditStorage>(); }

}  // namespace toegang
