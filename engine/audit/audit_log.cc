// Copyright toegang authors.
//
// The access log's queue and writer (audit_log_impl.h).
#include <openssl/crypto.h>

#include <algorithm>
#include <future>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/types/span.h"
#include "base/detached_status.h"
#include "base/sync.h"
#include "base/threads.h"
#include "engine/audit/audit_log_impl.h"
#include "engine/audit/audit_queue.h"
#include "engine/audit/audit_record.h"
#include "model/status_macros.h"

namespace toegang {

using namespace audit_internal;  // NOLINT: the record and queue forms are this file's vocabulary

namespace {

// Buffered mode: the writer wakes every interval, or early once this many wait. It
// writes (and syncs) a batch as soon as it has records, so under steady traffic it
// syncs back to back: holding batches back leaves the CPUs idle between requests, and
// waking an idle virtual CPU costs a one-client round trip tens of microseconds
// (bench/RESULTS.md).
constexpr size_t kBufferedBatch = 256;
constexpr absl::Duration kBufferedInterval = absl::Milliseconds(2);

// Buffered mode: a batch is encoded and handed to the storage this many records at a
// time, synced once at its end. A batch can hold hundreds of thousands of records (the
// queue fills while the last one syncs); written whole, its encoded rows and the
// storage's copies of them streamed through memory three times over. A part this size
// stays in the CPU's caches from encoding to memtable (bench/RESULTS.md).
constexpr size_t kWriteChunk = 1024;

// Buffered mode: a batch is synced at its end, whatever sync_interval says, once this
// many records wait for a sync. It bounds what the writer keeps to write again after a
// failure; under a load that fills batches this large, the sync is cheap per record.
constexpr size_t kUnsyncedRecords = 16384;

// Buffered mode: cleared queue buffers the writer keeps to hand back to the producers,
// at most this many. With sync_interval, each batch written but not yet synced keeps its
// buffer until the sync; without buffers back, the producers would start every batch on
// an empty one and grow it under the lock. At a sync the unsynced batches' buffers come
// back: the largest are kept, so the next interval's batches start on grown buffers.
constexpr size_t kFreeBuffers = 64;

// A record is queued as its fields while fewer than this many wait, and as its body
// (encoded by the caller, before the lock) from then on (audit_queue.h). Callers waiting
// for each answer rarely queue this many during one of the writer's syncs, so they pay
// for the cheaper form; under a load the writer cannot keep up with, about one record
// in twenty is then left for it to encode, against one in nine with 256 (same paired
// p99 cost; bench/RESULTS.md).
constexpr size_t kBodiesFromDepth = 64;

// AppendDecisions encodes its batch into a buffer of the calling thread's, kept for the
// next batch unless it grew past this.
constexpr size_t kStagedBytesKept = size_t{1} << 20;

}  // namespace

absl::StatusOr<std::unique_ptr<AuditLog>> AuditLog::Open(AuditStorage* storage, AuditOptions options) {
  // libcrypto must outlive every log, including one a static object owns and destroys
  // at exit (its writer hashes what is still queued): keep OpenSSL's own at-exit
  // cleanup from running first. Found by the fuzzers, whose engines are static.
  static const bool crypto_ready = OPENSSL_init_crypto(OPENSSL_INIT_NO_ATEXIT, nullptr) == 1;
  if (!crypto_ready) return absl::InternalError("OpenSSL's libcrypto failed to initialise");
  auto log = std::make_unique<AuditLogImpl>(storage, std::move(options));
  TOEGANG_RETURN_IF_ERROR(log->Start());
  return std::unique_ptr<AuditLog>(std::move(log));
}

absl::Status AuditLogImpl::Start() {
  uint64_t last = 0;
  std::string head;
  TOEGANG_RETURN_IF_ERROR(storage_->ReadHead(&last, &head));
  if (head.empty()) head = std::string(kHashBytes, '\0');
  if (head.size() != kHashBytes) return absl::DataLossError("the audit head is corrupt");
  {
    MutexLock lock(&mu_);
    last_assigned_ = last;
    durable_.Advance(last);
    head_hash_ = head;
  }
  // The writer places itself and says whether it could before the log is handed out;
  // on failure it ends at once and the destructor joins it.
  std::promise<absl::Status> placed;
  std::future<absl::Status> placement = placed.get_future();
  writer_ = std::thread([this, placed = std::move(placed)]() mutable {
    NameCurrentThread("toegang-audit");
    absl::Status s = options_.writer_cpus.empty() ? absl::OkStatus() : PinCurrentThread(options_.writer_cpus);
    const bool ok = s.ok();
    placed.set_value(std::move(s));
    if (ok) WriterLoop();
  });
  if (absl::Status s = placement.get(); !s.ok()) {
    return absl::Status(s.code(), absl::StrCat("access log writer_cpus: ", s.message()));
  }
  return absl::OkStatus();
}

AuditLogImpl::~AuditLogImpl() {
  {
    MutexLock lock(&mu_);
    stop_ = true;
    work_cv_.Signal();
  }
  if (writer_.joinable()) writer_.join();  // not started when Start failed early
}

template <typename Consents>
absl::Status AuditLogImpl::Enqueue(const RecordView& r, const Consents& consents) {
  // Read without the lock: a hint, which at worst picks the form the depth a moment ago
  // called for.
  if (queued_hint_.load(std::memory_order_relaxed) >= kBodiesFromDepth) {
    return Enqueue(QueueEntry{PrepareBody(r, consents)});
  }
  auto put = [&](std::string* queue, uint64_t seq) { QueueFields(queue, seq, r, consents); };
  const PutFieldsFn fields(put);
  return Enqueue(QueueEntry{absl::string_view(), &fields});
}

absl::Status AuditLogImpl::Enqueue(const QueueEntry& entry) {
  uint64_t seq = 0;
  uint32_t generation = 0;
  {
    MutexLock lock(&mu_);
    absl::Status queued = EnqueueLocked(entry, &seq);
    if (!queued.ok() || options_.mode == AuditMode::kBuffered) return queued;
    generation = durable_.generation();
    work_cv_.Signal();
  }
  return WaitDurable(seq, generation);
}

absl::Status AuditLogImpl::WaitDurable(uint64_t seq, uint32_t generation) {
  if (durable_.WaitFor(seq, generation)) return absl::OkStatus();
  MutexLock lock(&mu_);
  // The log failed before the record was synced (and may already write again).
  if (!sticky_.ok()) return Detached(sticky_);
  return absl::UnavailableError("the access log could not write this record (a write failed; it writes again now)");
}

absl::Status AuditLogImpl::Health() const {
  MutexLock lock(&mu_);
  return Detached(sticky_);
}

absl::Status AuditLogImpl::EnqueueLocked(const QueueEntry& entry, uint64_t* seq) {
  if (!sticky_.ok()) {
    ++stats_.refused;
    return Detached(sticky_);
  }
  if (queued_ >= options_.queue_capacity) {
    ++stats_.waits;
    absl::Time deadline = absl::Now() + options_.max_wait;
    while (queued_ >= options_.queue_capacity && sticky_.ok()) {
      if (room_cv_.WaitWithDeadline(&mu_, deadline)) break;
    }
    if (queued_ >= options_.queue_capacity || !sticky_.ok()) {
      ++stats_.refused;
      if (!sticky_.ok()) return Detached(sticky_);
      return absl::ResourceExhaustedError(absl::StrCat(
          "the access log queue is full (", queued_, " records waiting for ",
          absl::FormatDuration(options_.max_wait), "): the decision is refused rather than left unlogged"));
    }
  }
  const size_t capacity = queue_.capacity();
  if (entry.fields != nullptr) {
    (*entry.fields)(&queue_, last_assigned_ + 1);
  } else if (!QueueBody(&queue_, entry.body, last_assigned_ + 1)) {
    return absl::InternalError("a record's encoding has no number to set (a bug in toegang)");
  }
  if (queue_.capacity() != capacity) ++stats_.queue_grown;
  *seq = ++last_assigned_;
  ++queued_;
  queued_hint_.store(queued_, std::memory_order_relaxed);
  ++stats_.appended;
  stats_.max_queue_depth = std::max(stats_.max_queue_depth, queued_);
  if (options_.mode == AuditMode::kBuffered) {
    // The writer wakes on its own every kBufferedInterval; wake it early only when a
    // batch has gathered, so a decision does not pay for a futex wake.
    if (queued_ == kBufferedBatch) work_cv_.Signal();
  }
  return absl::OkStatus();
}

absl::Status AuditLogImpl::Append(const AuditEvent& e) { return Enqueue(EventRecord(e), e.consents); }

absl::Status AuditLogImpl::AppendDecision(const AccessRequest& request, const Decision& d, absl::string_view decision_id,
                                      std::optional<absl::Time> replay_as_of) {
  return Enqueue(DecisionRecord(request, d, decision_id, replay_as_of), d.consents);
}

std::vector<absl::Status> AuditLogImpl::AppendDecisions(absl::Span<const LoggedDecision> decisions) {
  std::vector<absl::Status> out(decisions.size());
  std::vector<uint64_t> seqs(decisions.size(), 0);
  // The batch's bodies, encoded before the lock; kept from batch to batch unless large.
  thread_local std::string staged;
  staged.clear();
  for (const LoggedDecision& logged : decisions) {
    StageBody(&staged, PrepareBody(DecisionRecord(*logged.request, *logged.decision, logged.decision_id, std::nullopt),
                                   logged.decision->consents));
  }
  uint32_t generation = 0;
  {
    MutexLock lock(&mu_);
    QueueReader in(&staged);
    for (size_t i = 0; i < decisions.size(); ++i) {
      absl::Span<char> body;
      bool fields = false;
      out[i] = in.Next(&body, &fields) && !fields
                   ? EnqueueLocked(QueueEntry{absl::string_view(body.data(), body.size())}, &seqs[i])
                   : absl::InternalError("the access log's staged batch is unreadable (a bug in toegang)");
    }
    generation = durable_.generation();
    if (options_.mode == AuditMode::kDurable) work_cv_.Signal();
  }
  if (staged.capacity() > kStagedBytesKept) std::string().swap(staged);
  if (options_.mode == AuditMode::kBuffered) return out;
  // Records are written in order: once the last queued one is synced, so are the others.
  uint64_t last = 0;
  for (size_t i = 0; i < seqs.size(); ++i) {
    if (out[i].ok()) last = seqs[i];
  }
  if (last == 0) return out;
  absl::Status synced = WaitDurable(last, generation);
  for (size_t i = 0; i < out.size(); ++i) {
    if (out[i].ok()) out[i] = synced;
  }
  return out;
}

absl::Status AuditLogImpl::Flush() {
  uint64_t target = 0;
  uint32_t generation = 0;
  {
    MutexLock lock(&mu_);
    if (!sticky_.ok()) return Detached(sticky_);
    target = last_assigned_;
    generation = durable_.generation();
    if (target > durable_.value()) {
      flush_wanted_ = true;
      work_cv_.Signal();
    }
  }
  return WaitDurable(target, generation);
}

AuditStats AuditLogImpl::stats() const {
  MutexLock lock(&mu_);
  AuditStats s = stats_;
  s.queue_depth = queued_;  // records (queue_ holds their bytes)
  return s;
}

namespace {

// The writer's room for turning a record queued as its fields into its body.
struct FieldsScratch {
  AuditEvent event;
  std::string body;
};

// The body of a record queued as its fields, built in `scratch` with its number set.
// Null when the fields cannot be read (a bug).
char* BodyOfFields(absl::string_view payload, FieldsScratch* scratch) {
  if (!ReadFields(payload, &scratch->event)) return nullptr;
  const absl::string_view body = PrepareBody(EventRecord(scratch->event), scratch->event.consents);
  scratch->body.assign(body.data(), body.size());  // 8-byte aligned: from the heap
  if (!SetBodySeq(scratch->body.data(), scratch->event.seq)) return nullptr;
  return scratch->body.data();
}

// Reads up to `n` queued records into `rows`, each stamped with the time of writing and
// chained to the one before it; `prev` ends as the hash of the last. Returns how many it
// read: fewer than `n` only when the queue cannot be read (a bug). `*by_writer` counts
// the records it built the body of.
size_t EncodeRows(QueueReader& in, int64_t logged_at_us, size_t n, std::string* prev, AuditRow* rows,
                  uint64_t* last_seq, FieldsScratch* scratch, uint64_t* by_writer) {
  for (size_t i = 0; i < n; ++i) {
    absl::Span<char> payload;
    bool fields = false;
    if (!in.Next(&payload, &fields)) return i;
    absl::Span<char> body = payload;
    if (fields) {
      char* built = BodyOfFields(absl::string_view(payload.data(), payload.size()), scratch);
      if (built == nullptr) return i;
      body = absl::Span<char>(built, scratch->body.size());
      ++*by_writer;
    }
    BodyKeys keys;
    if (!StampBody(body.data(), logged_at_us, &keys)) return i;
    AuditRow& row = rows[i];
    ChainEntry(absl::string_view(body.data(), body.size()), *prev, &row.entry);
    row.seq = keys.seq;
    row.patient.assign(keys.patient.data(), keys.patient.size());
    row.at_us = keys.at_us;
    // The entry ends with its own hash: the next one links to it.
    prev->assign(row.entry, row.entry.size() - kHashBytes, kHashBytes);
    *last_seq = keys.seq;
  }
  return n;
}

// Whether `s` has no storage of its own yet (a short string's inline buffer only).
bool Unallocated(const std::string& s) { return s.capacity() <= std::string().capacity(); }

// Drops all but the `keep` largest of `buffers`.
void KeepLargest(std::vector<std::string>* buffers, size_t keep) {
  if (buffers->size() <= keep) return;
  std::nth_element(buffers->begin(), buffers->begin() + keep, buffers->end(),
                   [](const std::string& a, const std::string& b) { return a.capacity() > b.capacity(); });
  buffers->resize(keep);
}

}  // namespace

void AuditLogImpl::WriterLoop() {
  const bool buffered = options_.mode == AuditMode::kBuffered;
  std::string bytes;
  std::vector<AuditRow> rows;
  FieldsScratch scratch;
  // kBuffered: accepted records whose write failed, written first once the storage
  // writes again, in the calls they were first written in. Empty while the log is healthy.
  std::vector<AuditRow> unwritten;
  std::vector<size_t> unwritten_calls;
  std::string unwritten_head;
  bool failed = false;
  // kBuffered: the batches written since the last sync, each with its stamp. A write
  // that was never synced may not outlive the storage's recovery from a later failure,
  // so they are kept to be encoded and written again, from the last synced head.
  std::vector<WrittenBatch> unsynced;
  size_t unsynced_records = 0;
  // kBuffered: cleared buffers, capacity kept, for the producers' next batches.
  std::vector<std::string> free_buffers;
  std::string written_head;   // the hash of the last record written
  uint64_t written_seq = 0;   // its number
  absl::Time last_sync = absl::Now();
  while (true) {
    if (failed) {
      if (TryRecover(&unwritten, &unwritten_calls, unwritten_head)) {
        failed = false;
        last_sync = absl::Now();
        continue;
      }
      MutexLock lock(&mu_);
      if (stop_) return;  // what is still queued cannot be written; the callers were told
      continue;
    }
    size_t count = 0;
    bool sync = true;
    std::string prev;
    {
      MutexLock lock(&mu_);
      if (buffered) {
        // Whether what is written now is to be synced.
        auto due = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
          return stop_ || flush_wanted_ || absl::Now() - last_sync >= options_.sync_interval;
        };
        // Until records wait, or the records written are due their sync.
        while (queued_ == 0 && !stop_ && !(unsynced_records > 0 && due())) {
          absl::Duration wait = kBufferedInterval;
          if (unsynced_records > 0) wait = std::min(wait, last_sync + options_.sync_interval - absl::Now());
          work_cv_.WaitWithTimeout(&mu_, std::max(wait, absl::ZeroDuration()));
        }
        sync = due() || unsynced_records + queued_ >= kUnsyncedRecords;
        if (sync) flush_wanted_ = false;
      } else {
        while (queued_ == 0 && !stop_) work_cv_.Wait(&mu_);
      }
      if (queued_ == 0 && unsynced_records == 0 && stop_) return;
      // The producers get a cleared buffer: last round's, or one kept from a sync.
      if (Unallocated(bytes) && !free_buffers.empty()) {
        bytes.swap(free_buffers.back());
        free_buffers.pop_back();
      }
      bytes.swap(queue_);
      count = queued_;
      queued_ = 0;
      queued_hint_.store(0, std::memory_order_relaxed);
      prev = unsynced_records > 0 ? written_head : head_hash_;
      room_cv_.SignalAll();  // room in the queue again
    }
    // Stamp and chain outside the lock: SHA-256 is the expensive part. The rows
    // are reused from batch to batch, so their strings keep their storage: a record
    // costs the writer no allocation once they have grown.
    //
    // Buffered, the batch goes to the storage in parts, each written as soon as it is
    // encoded, and is synced at its end only when a sync is due (sync_interval): one
    // sync covers every write before it, and no record counts as synced before it. A
    // durable batch is one write, synced, so that records refused after a failure (their
    // numbers given out again) were never stored.
    const size_t part = buffered ? kWriteChunk : count;
    if (rows.size() < std::min(part, count)) rows.resize(std::min(part, count));
    QueueReader in(&bytes);
    // Stamped here, as the batch is written, rather than by each decision under the lock.
    const int64_t logged_at = absl::ToUnixMicros(options_.clock());
    uint64_t last_seq = written_seq;
    uint64_t by_writer = 0;  // of this batch, the records queued as their fields
    absl::Status s;
    if (count == 0) {
      s = storage_->Sync();  // a sync due, nothing new to write
    }
    for (size_t begin = 0; begin < count && s.ok(); begin += part) {
      const size_t n = std::min(part, count - begin);
      if (EncodeRows(in, logged_at, n, &prev, rows.data(), &last_seq, &scratch, &by_writer) < n) {
        s = absl::InternalError("the access log's queue is unreadable (a bug in toegang)");
        break;
      }
      s = storage_->Append(absl::MakeConstSpan(rows.data(), n), prev, /*sync=*/sync && begin + n == count);
    }
    if (!s.ok() && buffered) {
      // Every record written since the last sync is written again, from the head as it
      // was then (head_hash_ moves only at a sync), in the calls it was first written in:
      // a storage may key what a call hands it by the call's first record
      // (engine/rocksdb/audit_parts.h), so the same calls put the same keys over
      // whatever of them reached the disk.
      {
        MutexLock lock(&mu_);
        prev = head_hash_;
        if (count > 0) ++stats_.batches;
        stats_.written -= unsynced_records;  // counted again when written again
      }
      if (count > 0) unsynced.push_back({std::move(bytes), logged_at, count});
      rows.resize(unsynced_records + count);
      std::vector<size_t> calls;
      size_t at = 0;
      for (WrittenBatch& b : unsynced) {
        QueueReader again(&b.bytes);
        uint64_t again_by_writer = 0;  // counted when first written
        const size_t got =
            EncodeRows(again, b.logged_at, b.count, &prev, rows.data() + at, &last_seq, &scratch, &again_by_writer);
        for (size_t done = 0; done < got; done += kWriteChunk) calls.push_back(std::min(kWriteChunk, got - done));
        at += got;
      }
      rows.resize(at);
      unsynced.clear();
      unsynced_records = 0;
      bytes = std::string();
      EnterFailure(s, &rows, &prev, &unwritten, &unwritten_head);
      unwritten_calls.swap(calls);
      failed = true;
      continue;
    }
    if (!s.ok()) {
      rows.resize(count);
      bytes.clear();
      {
        MutexLock lock(&mu_);
        ++stats_.batches;
      }
      EnterFailure(s, &rows, &prev, &unwritten, &unwritten_head);
      failed = true;
      continue;
    }
    written_head = prev;
    written_seq = last_seq;
    if (!sync) {
      // Written, not yet synced: kept (the queue's bytes, not a copy) until a sync.
      unsynced.push_back({std::move(bytes), logged_at, count});
      bytes = std::string();
      unsynced_records += count;
      MutexLock lock(&mu_);
      ++stats_.batches;
      stats_.written += count;
      stats_.encoded_by_writer += by_writer;
      continue;
    }
    // Synced: every record up to last_seq. The buffers of the batches it covered are
    // the producers' again.
    bytes.clear();
    for (WrittenBatch& b : unsynced) {
      b.bytes.clear();
      free_buffers.push_back(std::move(b.bytes));
    }
    unsynced.clear();
    unsynced_records = 0;
    KeepLargest(&free_buffers, kFreeBuffers);
    last_sync = absl::Now();
    MutexLock lock(&mu_);
    // This round's producers got an empty buffer if every kept one was still unsynced.
    if (queued_ == 0 && Unallocated(queue_) && !free_buffers.empty()) {
      queue_.swap(free_buffers.back());
      free_buffers.pop_back();
    }
    if (count > 0) ++stats_.batches;
    ++stats_.syncs;
    stats_.written += count;
    stats_.encoded_by_writer += by_writer;
    head_hash_ = prev;
    durable_.Advance(last_seq);  // wakes the batch's durable callers and flushers
  }
}

void AuditLogImpl::EnterFailure(const absl::Status& cause, std::vector<AuditRow>* rows, std::string* head,
                            std::vector<AuditRow>* unwritten, std::string* unwritten_head) {
  MutexLock lock(&mu_);
  sticky_ = absl::UnavailableError(absl::StrCat("the access log cannot be written: ", cause.message()));
  ++stats_.write_failures;
  if (options_.mode == AuditMode::kDurable) {
    // Every caller of this batch, and every caller queued behind it, is told its record
    // was not logged (the engine denies those decisions): none of them is written, and
    // their numbers are given out again once the log writes.
    stats_.refused += rows->size() + queued_;
    queue_.clear();
    queued_ = 0;
    last_assigned_ = durable_.value();
  } else {
    // Accepted records are kept, numbered and chained as they are, and written first.
    unwritten->swap(*rows);
    unwritten_head->swap(*head);
  }
  durable_.Close();
  room_cv_.SignalAll();
}

bool AuditLogImpl::TryRecover(std::vector<AuditRow>* unwritten, std::vector<size_t>* calls,
                              const std::string& unwritten_head) {
  {
    MutexLock lock(&mu_);
    if (!stop_) work_cv_.WaitWithTimeout(&mu_, options_.retry_interval);
  }
  absl::Status s = storage_->Recover();
  // In the calls the records were first written in (see WriterLoop), only the last synced.
  size_t begin = 0;
  for (size_t i = 0; s.ok() && i < calls->size(); ++i) {
    const size_t n = (*calls)[i];
    const bool last = i + 1 == calls->size();
    const AuditRow& end = (*unwritten)[begin + n - 1];
    s = storage_->Append(absl::MakeConstSpan(unwritten->data() + begin, n),
                         last ? absl::string_view(unwritten_head)
                              : absl::string_view(end.entry).substr(end.entry.size() - kHashBytes),
                         /*sync=*/last);
    begin += n;
  }
  if (!s.ok()) {
    MutexLock lock(&mu_);
    sticky_ = absl::UnavailableError(absl::StrCat("the access log cannot be written: ", s.message()));
    return false;
  }
  MutexLock lock(&mu_);
  uint64_t durable = durable_.value();
  if (!unwritten->empty()) {
    head_hash_ = unwritten_head;
    stats_.written += unwritten->size();
    ++stats_.syncs;
    durable = unwritten->back().seq;
    unwritten->clear();
    calls->clear();
  }
  durable_.Reopen(durable);  // a new generation: waits from before the failure stay failed
  sticky_ = absl::OkStatus();
  ++stats_.recoveries;
  return true;
}

}  // namespace toegang
