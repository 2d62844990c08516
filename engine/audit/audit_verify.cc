// Copyright toegang authors.
//
// Reading the access log back: a patient's accesses, verifying the chain and its
// patient index, and purging the start of the chain (audit_log.h).
#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "engine/audit/audit_log_impl.h"
#include "engine/audit/audit_record.h"
#include "model/status_macros.h"
#include "model/time.h"

namespace toegang {

using namespace audit_internal;  // NOLINT: the record form is this file's vocabulary

namespace {

// Verify's verdict on the first problem found: fills `report`, sets `*found`, and
// returns the status that stops the scan it was found in.
absl::Status Found(AuditVerifyReport* report, bool* found, uint64_t seq, std::string problem) {
  report->ok = false;
  report->bad_seq = seq;
  report->problem = std::move(problem);
  *found = true;
  return absl::CancelledError("stop");
}

}  // namespace

namespace {

// The patient's records with `at` in [from_us, until_us), newest first, at most `limit`;
// replays only when `replays`. Records retention removed are left out; `*removed` (when
// given) counts them.
absl::StatusOr<std::vector<AuditEvent>> ScanPatientRecords(AuditStorage* storage, absl::string_view patient,
                                                           int64_t from_us, int64_t until_us, size_t limit,
                                                           bool replays, uint64_t* removed = nullptr) {
  std::vector<AuditEvent> out;
  absl::Status s = storage->ScanPatient(patient, from_us, until_us, [&](uint64_t seq, absl::string_view bytes) {
    absl::StatusOr<DecodedEntry> entry = DecodeEntry(bytes);
    if (!entry.ok()) return absl::DataLossError(absl::StrCat("access log record ", seq, ": ", entry.status().message()));
    auto damaged = [&] {
      return absl::DataLossError(absl::StrCat("the access log's patient index is damaged: its entry for record ", seq,
                                              " does not match the record (run `toegang audit verify`)"));
    };
    if (IsTombstone(entry->body)) {
      // Removed by retention: no access left to show, only that one was removed.
      absl::StatusOr<Tombstone> t = DecodeTombstone(entry->body);
      if (!t.ok()) return absl::DataLossError(absl::StrCat("access log record ", seq, ": ", t.status().message()));
      if (t->patient != patient || t->seq != seq) return damaged();
      if (removed != nullptr) ++*removed;
      return absl::OkStatus();
    }
    absl::StatusOr<AuditEvent> e = DecodeAuditBody(entry->body);
    if (!e.ok()) return absl::DataLossError(absl::StrCat("access log record ", seq, ": ", e.status().message()));
    // The index is not hashed into the chain: an entry filed under this patient (or at
    // this time) must point at a record that says so, or the list would show another
    // patient's access as this one's.
    const int64_t at_us = absl::ToUnixMicros(e->at);
    if (e->patient != patient || at_us < from_us || at_us >= until_us || e->seq != seq) return damaged();
    if (replays || !e->replay_as_of) out.push_back(*std::move(e));
    if (out.size() >= limit) return absl::CancelledError("limit");
    return absl::OkStatus();
  });
  if (!s.ok() && !absl::IsCancelled(s)) return s;
  return out;
}

}  // namespace

absl::StatusOr<std::vector<AuditEvent>> AuditLogImpl::PatientAccesses(absl::string_view patient, absl::Time from,
                                                                  absl::Time until, size_t limit) {
  int64_t from_us = from == absl::InfinitePast() ? INT64_MIN : absl::ToUnixMicros(from);
  int64_t until_us = until == absl::InfiniteFuture() ? INT64_MAX : absl::ToUnixMicros(until);
  return ScanPatientRecords(storage_, patient, from_us, until_us, limit, /*replays=*/false);
}

absl::StatusOr<std::vector<AuditEvent>> AuditLogImpl::PatientRecords(absl::string_view patient,
                                                                      uint64_t* removed) {
  if (removed != nullptr) *removed = 0;
  return ScanPatientRecords(storage_, patient, INT64_MIN, INT64_MAX, SIZE_MAX, /*replays=*/true, removed);
}

namespace audit_internal {

// A walk along the chain from the purge checkpoint (or its start): what comes next,
// and the first record that breaks it.
struct ChainWalk {
  uint64_t first_seq;  // the first record kept
  uint64_t expected;   // the record that must come next
  std::string prev;    // the hash it must link to
  uint64_t records = 0;
  uint64_t removed = 0;  // of them, tombstones retention left
  uint64_t last_seq = 0;
  uint64_t bad_seq = 0;
  std::string problem;  // empty while the chain holds
  std::string key;      // authenticates tombstones ("" : none can be)
  absl::Time now = absl::InfiniteFuture();

  explicit ChainWalk(const Checkpoint& cp) : first_seq(cp.first_seq), expected(cp.first_seq), prev(cp.prev_hash) {}

  bool Broken(uint64_t seq, std::string why) {
    bad_seq = seq;
    problem = std::move(why);
    return false;
  }

  // Takes the entry stored under `seq`; false once the chain is broken.
  bool Next(uint64_t seq, absl::string_view bytes) {
    if (seq < expected) return Broken(seq, "is before the purge checkpoint: it was put back or reordered");
    if (seq > expected) {
      return Broken(expected, absl::StrCat("was removed (the chain jumps from ", expected - 1, " to ", seq, ")"));
    }
    absl::StatusOr<DecodedEntry> entry = DecodeEntry(bytes);
    if (!entry.ok()) return Broken(seq, absl::StrCat("was changed: ", entry.status().message()));
    if (IsTombstone(entry->body)) {
      // Removed by retention: the tombstone keeps the record's hashes, and its MAC says
      // toegang removed it, when due.
      absl::StatusOr<Tombstone> t = DecodeTombstone(entry->body);
      if (!t.ok()) return Broken(seq, absl::StrCat("was changed: ", t.status().message()));
      if (t->seq != seq) return Broken(seq, absl::StrCat("was reordered: its place holds record ", t->seq));
      if (absl::Status c = CheckTombstone(*t, key, entry->prev, entry->hash, now); !c.ok()) {
        return Broken(seq, std::string(c.message()));
      }
      ++removed;
    } else {
      absl::StatusOr<AuditEvent> body = DecodeAuditBody(entry->body);
      if (body.ok() && body->seq != seq) {
        return Broken(seq, absl::StrCat("was reordered: its place holds record ", body->seq));
      }
      if (Sha256(entry->prev, entry->body) != entry->hash || !body.ok()) {
        return Broken(seq, "was changed: its contents no longer match its hash");
      }
    }
    if (entry->prev != prev) {
      if (seq == first_seq) return Broken(seq, "does not continue the purge checkpoint: changed or reordered");
      return Broken(seq - 1, absl::StrCat("was changed: record ", seq, " no longer links to it"));
    }
    prev = entry->hash;
    ++records;
    last_seq = seq;
    ++expected;
    return true;
  }

  // After the last entry up to `head_seq`: whether the chain reached the recorded head.
  bool Ends(uint64_t head_seq, absl::string_view head_hash) {
    if (expected <= head_seq) {
      return Broken(expected,
                    absl::StrCat("was removed (the chain ends at ", expected - 1, " but the log holds ", head_seq, ")"));
    }
    if (head_seq >= first_seq && prev != head_hash) {
      return Broken(head_seq, "was changed: it no longer matches the recorded head of the chain");
    }
    return true;
  }

  AuditVerifyReport Report() const {
    AuditVerifyReport r;
    r.ok = problem.empty();
    r.records = records;
    r.removed = removed;
    r.first_seq = first_seq;
    r.last_seq = last_seq;
    r.bad_seq = bad_seq;
    r.problem = problem;
    return r;
  }
};

}  // namespace audit_internal

ChainCheck::ChainCheck() = default;
ChainCheck::~ChainCheck() = default;

bool ChainCheck::Next(uint64_t seq, absl::string_view entry) {
  if (walk_ == nullptr) {
    Checkpoint start;
    start.first_seq = seq;
    absl::StatusOr<DecodedEntry> first = DecodeEntry(entry);
    if (first.ok()) start.prev_hash = first->prev;
    walk_ = std::make_unique<ChainWalk>(start);
  }
  return walk_->problem.empty() && walk_->Next(seq, entry);
}

const std::string& ChainCheck::head() const {
  static const std::string kNone;
  return walk_ == nullptr ? kNone : walk_->prev;
}

AuditVerifyReport ChainCheck::Report() const {
  if (walk_ == nullptr) {
    AuditVerifyReport empty;
    empty.ok = true;
    return empty;
  }
  AuditVerifyReport r = walk_->Report();
  r.head_hash = Hex(walk_->prev);
  return r;
}

absl::StatusOr<AuditVerifyReport> AuditLogImpl::Verify() {
  TOEGANG_RETURN_IF_ERROR(Flush());
  uint64_t head_seq = 0;
  std::string head_hash;
  TOEGANG_RETURN_IF_ERROR(storage_->ReadHead(&head_seq, &head_hash));
  absl::StatusOr<Checkpoint> cp = ReadCheckpoint(storage_);
  if (!cp.ok()) return cp.status();
  ChainWalk walk(*cp);
  walk.key = options_.checkpoint_key;
  walk.now = options_.clock();
  if (absl::Status c = CheckCheckpoint(*cp, options_.checkpoint_key, options_.clock()); !c.ok()) {
    walk.Broken(cp->first_seq, std::string(c.message()));
    return walk.Report();
  }
  absl::Status scanned = storage_->ScanChain([&](uint64_t seq, absl::string_view bytes) -> absl::Status {
    if (seq > head_seq) return absl::OkStatus();  // written after we read the head
    return walk.Next(seq, bytes) ? absl::OkStatus() : absl::CancelledError("the chain is broken");
  });
  if (!walk.problem.empty()) return walk.Report();
  if (!scanned.ok()) return scanned;
  if (!walk.Ends(head_seq, head_hash)) return walk.Report();
  absl::StatusOr<AuditVerifyReport> indexed = VerifyIndex(walk.Report(), cp->first_seq, head_seq);
  if (indexed.ok() && indexed->ok) indexed->head_hash = Hex(walk.prev);
  return indexed;
}

absl::StatusOr<AuditVerifyReport> AuditLogImpl::VerifyIndex(AuditVerifyReport report, uint64_t first_seq,
                                                        uint64_t head_seq) {
  // Every index entry must point at a record of its patient and instant. Entries are
  // keyed by (patient, instant, record), so a record has exactly one entry that can
  // pass; if as many pass as there are records, each record has its own.
  bool failed = false;
  auto fail = [&](uint64_t seq, std::string problem) { return Found(&report, &failed, seq, std::move(problem)); };
  uint64_t entries = 0;
  absl::Status s = storage_->ScanIndex([&](absl::string_view patient, int64_t at_us, uint64_t seq) -> absl::Status {
    if (seq > head_seq) return absl::OkStatus();  // written after we read the head
    ++entries;
    absl::StatusOr<std::string> bytes = seq >= first_seq ? storage_->ReadEntry(seq)
                                                          : absl::NotFoundError("purged");
    if (absl::IsNotFound(bytes.status())) {
      return fail(seq, "is listed in the patient index but not in the chain: the index was changed");
    }
    if (!bytes.ok()) return bytes.status();
    absl::StatusOr<IndexedAs> e = IndexedAsOf(*bytes);
    if (!e.ok()) return e.status();
    if (e->patient != patient || e->at_us != at_us) {
      return fail(seq, "is listed in the patient index under another patient or instant: the index was changed");
    }
    return absl::OkStatus();
  });
  if (failed) return report;
  if (!s.ok()) return s;
  report.index_entries = entries;
  if (entries >= report.records) {
    report.ok = true;
    return report;
  }
  // Fewer entries than records: find the first record without its entry.
  s = storage_->ScanChain([&](uint64_t seq, absl::string_view bytes) -> absl::Status {
    if (seq > head_seq) return absl::OkStatus();
    absl::StatusOr<IndexedAs> e = IndexedAsOf(bytes);
    if (!e.ok()) return e.status();
    absl::StatusOr<bool> has = storage_->HasIndexEntry(e->patient, e->at_us, seq);
    if (!has.ok()) return has.status();
    if (!*has) {
      return fail(seq, "is missing from the patient index: the patient's list of accesses would not show it");
    }
    return absl::OkStatus();
  });
  if (failed) return report;
  if (!s.ok()) return s;
  report.ok = false;
  report.problem = "is not what the patient index says: it holds fewer entries than the chain has records";
  return report;
}

absl::StatusOr<std::vector<AuditRow>> AuditLogImpl::Tombstones(absl::string_view patient,
                                                               absl::Span<const RecordRemoval> records,
                                                               absl::Time removed_at) {
  if (options_.checkpoint_key.empty()) {
    return absl::FailedPreconditionError(
        "removing access log records needs the key that authenticates their tombstones (--audit-key-file)");
  }
  std::vector<AuditRow> out;
  for (const RecordRemoval& r : records) {
    absl::StatusOr<std::string> bytes = storage_->ReadEntry(r.seq);
    if (!bytes.ok()) return bytes.status();
    absl::StatusOr<DecodedEntry> entry = DecodeEntry(*bytes);
    if (!entry.ok()) return absl::DataLossError(absl::StrCat("access log record ", r.seq, ": ", entry.status().message()));
    if (IsTombstone(entry->body)) continue;  // removed before
    absl::StatusOr<AuditEvent> e = DecodeAuditBody(entry->body);
    if (!e.ok()) return absl::DataLossError(absl::StrCat("access log record ", r.seq, ": ", e.status().message()));
    if (e->patient != patient) {
      return absl::InvalidArgumentError(absl::StrCat("access log record ", r.seq, " is not about '", patient, "'"));
    }
    Tombstone t;
    t.seq = r.seq;
    t.patient = e->patient;
    t.at_us = absl::ToUnixMicros(e->at);
    t.logged_at_us = absl::ToUnixMicros(e->logged_at);
    t.removed_at_us = absl::ToUnixMicros(removed_at);
    t.term = r.term;
    t.years = r.years;
    t.mac = TombstoneMac(options_.checkpoint_key, t, entry->prev, entry->hash);
    // What Verify will check, checked before anything is written.
    if (absl::Status c = CheckTombstone(t, options_.checkpoint_key, entry->prev, entry->hash, removed_at); !c.ok()) {
      return absl::FailedPreconditionError(absl::StrCat("access log record ", r.seq, " ", c.message()));
    }
    out.push_back({r.seq, EncodeTombstoneEntry(t, entry->prev, entry->hash), t.patient, t.at_us});
  }
  return out;
}

absl::StatusOr<AuditPurgeReport> AuditLogImpl::Purge(absl::Time before, absl::Time now) {
  absl::Time limit = RetentionLimit(now);
  if (before > limit) {
    return absl::FailedPreconditionError(absl::StrCat(
        "access log records are kept at least 5 years (DOMAIN D51): the cut-off must be on or before ",
        FormatInstant(limit)));
  }
  if (options_.checkpoint_key.empty()) {
    return absl::FailedPreconditionError(
        "purging needs the key that authenticates the purge checkpoint (--audit-key-file)");
  }
  absl::Status flushed = Flush();
  if (!flushed.ok()) return flushed;
  absl::StatusOr<Checkpoint> cp = ReadCheckpoint(storage_);
  if (!cp.ok()) return cp.status();
  if (absl::Status c = CheckCheckpoint(*cp, options_.checkpoint_key, now); !c.ok()) {
    return absl::FailedPreconditionError(absl::StrCat("the access log's first record ", c.message()));
  }
  std::vector<AuditRow> rows;
  std::string last_hash;
  absl::Status s = storage_->ScanChain([&](uint64_t seq, absl::string_view bytes) -> absl::Status {
    absl::StatusOr<IndexedAs> e = IndexedAsOf(bytes);
    if (!e.ok()) return absl::DataLossError(absl::StrCat("record ", seq, ": ", e.status().message()));
    if (absl::FromUnixMicros(e->logged_at_us) >= before) return absl::CancelledError("done");  // the prefix ends here
    rows.push_back({seq, "", e->patient, e->at_us});
    last_hash = std::move(e->hash);
    return absl::OkStatus();
  });
  if (!s.ok() && !absl::IsCancelled(s)) return s;
  AuditPurgeReport report;
  report.first_kept = rows.empty() ? cp->first_seq : rows.back().seq + 1;
  if (rows.empty()) return report;
  Checkpoint next;
  next.first_seq = report.first_kept;
  next.prev_hash = last_hash;
  next.purged = cp->purged + rows.size();
  next.before_us = absl::ToUnixMicros(before);
  next.purged_at_us = absl::ToUnixMicros(now);
  next.mac = CheckpointMac(options_.checkpoint_key, next);
  s = storage_->Purge(rows, EncodeCheckpoint(next));
  if (!s.ok()) return s;
  report.purged = rows.size();
  return report;
}

}  // namespace toegang
