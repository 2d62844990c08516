// Copyright toegang authors.
//
// audit_log_impl.h (internal): the AuditLog behind AuditLog::Open — a bounded queue of
// records, encoded by the threads that decide when it is deep (audit_queue.h), one
// writer thread that stamps, chains, batches and syncs them, and the failure and
// recovery of audit_log.h.
#ifndef TOEGANG_ENGINE_AUDIT_AUDIT_LOG_IMPL_H_
#define TOEGANG_ENGINE_AUDIT_AUDIT_LOG_IMPL_H_

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "absl/functional/function_ref.h"
#include "base/sync.h"
#include "engine/audit/audit_log.h"
#include "engine/audit/audit_queue.h"

namespace toegang {

class AuditLogImpl final : public AuditLog {
 public:
  AuditLogImpl(AuditStorage* storage, AuditOptions options) : storage_(storage), options_(options) {}
  ~AuditLogImpl() override;  // writes what is queued, then stops

  // Reads the head, starts the writer (audit_log.cc).
  absl::Status Start();

  absl::Status Append(const AuditEvent& event) override;
  absl::Status AppendDecision(const AccessRequest& request, const Decision& decision, absl::string_view decision_id,
                              std::optional<absl::Time> replay_as_of) override;
  std::vector<absl::Status> AppendDecisions(absl::Span<const LoggedDecision> decisions) override;
  absl::Status Flush() override;
  AuditStats stats() const override;
  AuditMode mode() const override { return options_.mode; }
  absl::Status Health() const override;

  // audit_verify.cc.
  absl::StatusOr<std::vector<AuditEvent>> PatientRecords(absl::string_view patient, uint64_t* removed) override;
  absl::StatusOr<std::vector<AuditRow>> Tombstones(absl::string_view patient, absl::Span<const RecordRemoval> records,
                                                   absl::Time removed_at) override;
  absl::StatusOr<std::vector<AuditEvent>> PatientAccesses(absl::string_view patient, absl::Time from,
                                                          absl::Time until, size_t limit) override;
  absl::StatusOr<AuditVerifyReport> Verify() override;
  absl::StatusOr<AuditPurgeReport> Purge(absl::Time before, absl::Time now) override;

 private:
  void WriterLoop();
  // How a record goes into the queue (audit_queue.h): its body as PrepareBody made it,
  // or, when `fields` is set, its fields, which `*fields` appends to the queue numbered
  // as it is told.
  using PutFieldsFn = absl::FunctionRef<void(std::string* queue, uint64_t seq)>;
  struct QueueEntry {
    absl::string_view body;
    const PutFieldsFn* fields = nullptr;
  };
  // Queues one record, numbered with the sequence number the log assigns: as its fields
  // while the queue is short, as its body, encoded here, once it is deep.
  template <typename Consents>
  absl::Status Enqueue(const audit_internal::RecordView& r, const Consents& consents) ABSL_LOCKS_EXCLUDED(mu_);
  absl::Status Enqueue(const QueueEntry& entry) ABSL_LOCKS_EXCLUDED(mu_);
  // Enqueue's part under the lock: room, numbering, the record into the queue.
  absl::Status EnqueueLocked(const QueueEntry& entry, uint64_t* seq) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Returns once record `seq`, numbered in `generation` of durable_, is synced, or the
  // log's error if it never will be.
  absl::Status WaitDurable(uint64_t seq, uint32_t generation) ABSL_LOCKS_EXCLUDED(mu_);
  // After a failed write: drops or keeps what it held (see the file comment) and closes
  // durable_. Returns the rows to write first once the storage recovers.
  void EnterFailure(const absl::Status& cause, std::vector<AuditRow>* rows, std::string* head,
                    std::vector<AuditRow>* unwritten, std::string* unwritten_head) ABSL_LOCKS_EXCLUDED(mu_);
  // Waits retry_interval, then tries the storage; true once the log writes again.
  // `calls`: how many of `unwritten` each storage call first took, in order.
  bool TryRecover(std::vector<AuditRow>* unwritten, std::vector<size_t>* calls, const std::string& unwritten_head)
      ABSL_LOCKS_EXCLUDED(mu_);

  // kBuffered: a batch written but not yet synced, as the queue held it.
  struct WrittenBatch {
    std::string bytes;
    int64_t logged_at = 0;
    size_t count = 0;
  };

  // Verify's second part: the patient index against the chain of `report`.
  absl::StatusOr<AuditVerifyReport> VerifyIndex(AuditVerifyReport report, uint64_t first_seq, uint64_t head_seq);

  AuditStorage* const storage_;
  const AuditOptions options_;
  std::thread writer_;

  mutable Mutex mu_;
  CondVar work_cv_;   // the writer waits for records
  CondVar room_cv_;   // appenders wait for room in a full queue
  // Highest seq synced; durable appenders and Flush wait on it without the lock (a
  // batch's dozens of callers wake at once). Closed when the log fails.
  Watermark durable_;
  // Queued records, back to back, each numbered: its stored body, or its fields for the
  // writer to encode (audit_queue.h). A decision pays for one copy under the lock, and
  // no allocation once the buffer has grown.
  std::string queue_ ABSL_GUARDED_BY(mu_);
  size_t queued_ ABSL_GUARDED_BY(mu_) = 0;            // records in queue_
  std::atomic<size_t> queued_hint_{0};  // queued_, for choosing a record's form unlocked
  uint64_t last_assigned_ ABSL_GUARDED_BY(mu_) = 0;  // highest seq handed out
  std::string head_hash_ ABSL_GUARDED_BY(mu_);       // hash of record `durable_`
  absl::Status sticky_ ABSL_GUARDED_BY(mu_);
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  bool flush_wanted_ ABSL_GUARDED_BY(mu_) = false;  // kBuffered: Flush waits for a sync
  AuditStats stats_ ABSL_GUARDED_BY(mu_);
};

}  // namespace toegang

#endif  // TOEGANG_ENGINE_AUDIT_AUDIT_LOG_IMPL_H_
