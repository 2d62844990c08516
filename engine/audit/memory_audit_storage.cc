// Copyright toegang authors.
#include <algorithm>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/container/btree_map.h"
#include "absl/container/btree_set.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "base/sync.h"
#include "engine/audit/audit_storage.h"

#include <random>

namespace toegang {
namespace {

// Records are appended in ascending sequence, and a patient's mostly in ascending time:
// B-trees take both at their end cheaply and keep a scan in order, where ordered maps of
// nodes (a heap allocation and a cache miss per record) made the writer fall behind.
class MemoryAuditStorage final : public AuditStorage {
 public:
  absl::Status Sync() override { return absl::OkStatus(); }
  absl::Status Append(absl::Span<const AuditRow> rows, absl::string_view head_hash, bool) override {
    MutexLock lock(&mu_);
    for (const AuditRow& r : rows) {
      entries_.insert_or_assign(entries_.end(), r.seq, r.entry);
      index_[r.patient].insert({r.at_us, r.seq});
    }
    if (!rows.empty()) {
      last_seq_ = rows.back().seq;
      head_hash_ = std::string(head_hash);
    }
    return absl::OkStatus();
  }

  absl::StatusOr<std::string> ChainId() override { return chain_id_; }

  absl::Status ReadHead(uint64_t* last_seq, std::string* head_hash) override {
    MutexLock lock(&mu_);
    *last_seq = last_seq_;
    *head_hash = head_hash_;
    return absl::OkStatus();
  }

  absl::Status ScanChain(const AuditVisitor& visit) override {
    // Visited outside the lock, a chunk at a time, so the writer goes on meanwhile.
    constexpr size_t kChunk = 4096;
    std::vector<std::pair<uint64_t, std::string>> chunk;
    uint64_t next = 0;
    while (true) {
      chunk.clear();
      {
        MutexLock lock(&mu_);
        for (auto it = entries_.lower_bound(next); it != entries_.end() && chunk.size() < kChunk; ++it) {
          chunk.emplace_back(it->first, it->second);
        }
      }
      if (chunk.empty()) return absl::OkStatus();
      for (const auto& [seq, entry] : chunk) {
        absl::Status s = visit(seq, entry);
        if (!s.ok()) return s;
      }
      next = chunk.back().first + 1;
    }
  }

  absl::Status ScanPatient(absl::string_view patient, int64_t from_us, int64_t until_us,
                           const AuditVisitor& visit) override {
    std::vector<std::pair<uint64_t, std::string>> found;
    {
      MutexLock lock(&mu_);
      auto p = index_.find(patient);
      if (p != index_.end()) {
        const Times& times = p->second;
        auto it = times.lower_bound({until_us, 0});
        while (it != times.begin()) {
          --it;
          if (it->first < from_us) break;
          auto e = entries_.find(it->second);
          if (e != entries_.end()) found.emplace_back(it->second, e->second);
        }
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
      auto p = index_.find(r.patient);
      if (p == index_.end()) continue;
      p->second.erase({r.at_us, r.seq});
      if (p->second.empty()) index_.erase(p);
    }
    checkpoint_ = std::string(checkpoint);
    return absl::OkStatus();
  }

  absl::Status Replace(const std::vector<AuditRow>& rows) override {
    MutexLock lock(&mu_);
    for (const AuditRow& r : rows) {
      if (!entries_.contains(r.seq)) return absl::NotFoundError(absl::StrCat("no access log record ", r.seq));
    }
    for (const AuditRow& r : rows) entries_[r.seq] = r.entry;
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
    std::vector<std::tuple<std::string, int64_t, uint64_t>> copy;
    {
      MutexLock lock(&mu_);
      for (const auto& [patient, times] : index_) {
        for (const auto& [at, seq] : times) copy.emplace_back(patient, at, seq);
      }
    }
    std::sort(copy.begin(), copy.end());  // key order: patient, then time and sequence
    for (const auto& [patient, at, seq] : copy) {
      absl::Status s = visit(patient, at, seq);
      if (!s.ok()) return s;
    }
    return absl::OkStatus();
  }

  absl::StatusOr<bool> HasIndexEntry(absl::string_view patient, int64_t at_us, uint64_t seq) override {
    MutexLock lock(&mu_);
    auto p = index_.find(patient);
    return p != index_.end() && p->second.contains({at_us, seq});
  }

 private:
  const std::string chain_id_ = NewChainId();  // a log in memory is a new chain each time
  using Times = absl::btree_set<std::pair<int64_t, uint64_t>>;  // (at_us, seq)
  Mutex mu_;
  absl::btree_map<uint64_t, std::string> entries_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, Times> index_ ABSL_GUARDED_BY(mu_);
  uint64_t last_seq_ ABSL_GUARDED_BY(mu_) = 0;
  std::string head_hash_ ABSL_GUARDED_BY(mu_);
  std::string checkpoint_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

std::unique_ptr<AuditStorage> NewMemoryAuditStorage() { return std::make_unique<MemoryAuditStorage>(); }

std::string NewChainId() {
  std::random_device rd;
  std::string out;
  for (int i = 0; i < 4; ++i) absl::StrAppend(&out, absl::Hex(rd(), absl::kZeroPad8));
  return out;
}

}  // namespace toegang
