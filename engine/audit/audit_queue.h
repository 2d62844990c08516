// Copyright toegang authors.
//
// audit_queue.h (internal): the access log's queue. A record waits in it in one of two
// forms, and the writer turns both into the same stored body (audit_record.h's
// AuditRecord FlatBuffer), stamps the time of writing, chains and stores it:
//
// - Its body, built by the thread that decided before it takes the log's lock, copied
//   into the queue under the lock with its number written into it. When the queue is
//   deep the writer is the bottleneck (the records are chained in order, on one
//   thread), and the encoding then runs on the deciding threads, side by side
//   (bench/RESULTS.md, "The access log's records encoded by the deciding threads").
// - Its fields, copied under the lock straight from the caller's data (fixed-width
//   integers in host order, length-prefixed strings): about half the caller's cost of
//   building the body, which matters while the writer has time to spare and a caller
//   waits for each answer (the paired p99 budget). The writer builds the body.
//
// An entry is a word (8 bytes, host order) holding its size, with the top bit set for
// the fields' form, then the payload, padded to a multiple of 8 so that every body
// stays aligned for the FlatBuffers accessors.
#ifndef TOEGANG_ENGINE_AUDIT_AUDIT_QUEUE_H_
#define TOEGANG_ENGINE_AUDIT_AUDIT_QUEUE_H_

#include <cstdint>
#include <cstring>
#include <optional>
#include <string>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "engine/audit/audit_log.h"
#include "engine/audit/audit_record.h"

namespace toegang::audit_internal {

inline constexpr size_t kQueueAlign = 8;

inline constexpr uint64_t kFieldsForm = uint64_t{1} << 63;  // in an entry's size word

inline size_t QueuedSize(size_t body) { return sizeof(uint64_t) + (body + kQueueAlign - 1) / kQueueAlign * kQueueAlign; }

// Appends `body` (PrepareBody's) to `out` as an entry, its number still open.
inline void StageBody(std::string* out, absl::string_view body) {
  const uint64_t size = body.size();
  out->append(reinterpret_cast<const char*>(&size), sizeof size);
  out->append(body.data(), body.size());
  out->append(QueuedSize(body.size()) - sizeof size - body.size(), '\0');
}

// The fields' form is sized first and then written with plain stores into room made
// once: one resize of a buffer that keeps its capacity, not a capacity check per field.
class SizeSink {
 public:
  void Raw(const void*, size_t n) { size_ += n; }
  size_t size() const { return size_; }

 private:
  size_t size_ = 0;
};

class RawSink {
 public:
  explicit RawSink(char* at) : at_(at) {}
  void Raw(const void* p, size_t n) {
    if (n == 0) return;  // an empty view's data() may be null, which memcpy must not get
    std::memcpy(at_, p, n);
    at_ += n;
  }

 private:
  char* at_;
};

enum FieldFlags : uint8_t {
  kPermitted = 1,
  kEmergency = 2,
  kHasLegalBasis = 4,
  kHasAgeBand = 8,
  kHasRecipient = 16,
  kHasReplay = 32,
};

template <typename Sink>
void PutU64(Sink& o, uint64_t v) { o.Raw(&v, sizeof v); }
template <typename Sink>
void PutU32(Sink& o, uint32_t v) { o.Raw(&v, sizeof v); }
template <typename Sink>
void PutU8(Sink& o, uint8_t v) { o.Raw(&v, 1); }
template <typename Sink>
void PutStr(Sink& o, absl::string_view v) {
  PutU32(o, static_cast<uint32_t>(v.size()));
  o.Raw(v.data(), v.size());
}

// Every field of `r` and `consents`, in the order ReadFields reads them. Times are
// kept to the microsecond, as the body keeps them.
template <typename Sink, typename Consents>
void PutFields(Sink& o, uint64_t seq, const RecordView& r, const Consents& consents) {
  PutU64(o, seq);
  const uint8_t flags = (r.permitted ? kPermitted : 0) | (r.emergency ? kEmergency : 0) |
                        (r.legal_basis ? kHasLegalBasis : 0) | (r.age_band ? kHasAgeBand : 0) |
                        (r.recipient->has_value() ? kHasRecipient : 0) | (r.replay_as_of ? kHasReplay : 0);
  PutU8(o, flags);
  PutU8(o, static_cast<uint8_t>(r.actor->role));
  PutU8(o, static_cast<uint8_t>(r.action));
  PutU8(o, static_cast<uint8_t>(r.category));
  PutU8(o, static_cast<uint8_t>(r.purpose));
  PutU8(o, r.legal_basis ? static_cast<uint8_t>(*r.legal_basis) : 0);
  PutU8(o, r.age_band ? static_cast<uint8_t>(*r.age_band) : 0);
  PutU64(o, static_cast<uint64_t>(absl::ToUnixMicros(r.at)));
  if (r.replay_as_of) PutU64(o, static_cast<uint64_t>(absl::ToUnixMicros(*r.replay_as_of)));
  PutU32(o, static_cast<uint32_t>(r.reasons.size()));
  for (Reason x : r.reasons) PutU8(o, static_cast<uint8_t>(x));
  PutU32(o, static_cast<uint32_t>(r.obligations.size()));
  for (Obligation x : r.obligations) PutU8(o, static_cast<uint8_t>(x));
  PutStr(o, r.event_id);
  PutStr(o, r.patient);
  PutStr(o, r.actor->id);
  PutStr(o, r.actor->organization);
  PutStr(o, r.justification);
  PutStr(o, r.policy);
  PutStr(o, r.rule);
  PutStr(o, r.error);
  PutU32(o, static_cast<uint32_t>(consents.size()));
  for (const auto& c : consents) PutStr(o, c);
  if (r.recipient->has_value()) {
    const Party& p = **r.recipient;
    PutU8(o, static_cast<uint8_t>(p.kind));
    PutU8(o, static_cast<uint8_t>(p.role));
    PutStr(o, p.id);
  }
}

// Appends record `seq` to the queue `out` in the fields' form.
template <typename Consents>
void QueueFields(std::string* out, uint64_t seq, const RecordView& r, const Consents& consents) {
  SizeSink size;
  PutFields(size, seq, r, consents);
  const size_t at = out->size();
  out->resize(at + QueuedSize(size.size()));
  const uint64_t word = size.size() | kFieldsForm;
  std::memcpy(&(*out)[at], &word, sizeof word);
  RawSink sink(&(*out)[at + sizeof word]);
  PutFields(sink, seq, r, consents);
  std::memset(&(*out)[at + sizeof word + size.size()], 0, QueuedSize(size.size()) - sizeof word - size.size());
}

// A bounds-checked reader of the fields' form: a read past the end is a bug, reported,
// never a read out of bounds.
class FieldReader {
 public:
  explicit FieldReader(absl::string_view bytes) : rest_(bytes) {}
  bool ok() const { return ok_; }
  bool done() const { return ok_ && rest_.empty(); }
  uint64_t U64() { return Fixed<uint64_t>(); }
  uint32_t U32() { return Fixed<uint32_t>(); }
  uint8_t U8() { return Fixed<uint8_t>(); }
  absl::Time Time() { return absl::FromUnixMicros(static_cast<int64_t>(U64())); }
  void Str(std::string* out) {
    const uint32_t n = U32();
    if (!ok_ || n > rest_.size()) {
      ok_ = false;
      out->clear();
      return;
    }
    out->assign(rest_.data(), n);
    rest_.remove_prefix(n);
  }

 private:
  template <typename T>
  T Fixed() {
    T v{};
    if (!ok_ || rest_.size() < sizeof v) {
      ok_ = false;
      return v;
    }
    std::memcpy(&v, rest_.data(), sizeof v);
    rest_.remove_prefix(sizeof v);
    return v;
  }
  absl::string_view rest_;
  bool ok_ = true;
};

// Reads what PutFields wrote into `e` (reusing its strings' capacity). False when the
// payload ends early or runs on (a bug, never a read out of bounds).
inline bool ReadFields(absl::string_view payload, AuditEvent* e) {
  FieldReader in(payload);
  e->seq = in.U64();
  const uint8_t flags = in.U8();
  e->actor.role = static_cast<Role>(in.U8());
  e->action = static_cast<Action>(in.U8());
  e->category = static_cast<Category>(in.U8());
  e->purpose = static_cast<Purpose>(in.U8());
  const uint8_t basis = in.U8();
  const uint8_t band = in.U8();
  e->permitted = flags & kPermitted;
  e->emergency = flags & kEmergency;
  e->legal_basis = flags & kHasLegalBasis ? std::optional<LegalBasis>(static_cast<LegalBasis>(basis)) : std::nullopt;
  e->age_band = flags & kHasAgeBand ? std::optional<AgeBand>(static_cast<AgeBand>(band)) : std::nullopt;
  e->at = in.Time();
  e->replay_as_of = flags & kHasReplay ? std::optional<absl::Time>(in.Time()) : std::nullopt;
  e->reasons.clear();
  for (uint32_t i = 0, n = in.U32(); in.ok() && i < n; ++i) e->reasons.push_back(static_cast<Reason>(in.U8()));
  e->obligations.clear();
  for (uint32_t i = 0, n = in.U32(); in.ok() && i < n; ++i) e->obligations.push_back(static_cast<Obligation>(in.U8()));
  in.Str(&e->event_id);
  in.Str(&e->patient);
  in.Str(&e->actor.id);
  in.Str(&e->actor.organization);
  in.Str(&e->justification);
  in.Str(&e->policy);
  in.Str(&e->rule);
  in.Str(&e->error);
  const uint32_t consents = in.U32();
  if (!in.ok() || consents > payload.size()) return false;  // each takes 4 bytes at least
  e->consents.resize(consents);
  for (std::string& c : e->consents) in.Str(&c);
  if (flags & kHasRecipient) {
    Party p;
    p.kind = static_cast<Party::Kind>(in.U8());
    p.role = static_cast<Role>(in.U8());
    in.Str(&p.id);
    e->recipient = std::move(p);
  } else {
    e->recipient.reset();
  }
  return in.done();
}

// Appends `body` to the queue `out` as record `seq`. False when it is no body
// PrepareBody made (a bug in toegang); `out` is then as it was.
inline bool QueueBody(std::string* out, absl::string_view body, uint64_t seq) {
  const size_t at = out->size();
  StageBody(out, body);
  if (SetBodySeq(&(*out)[at + sizeof(uint64_t)], seq)) return true;
  out->resize(at);
  return false;
}

// Reads the entries of a queue, or of staged entries, in order.
class QueueReader {
 public:
  // REQUIRES: `bytes` holds whole entries and outlives the reader.
  explicit QueueReader(std::string* bytes) : at_(bytes->data()), end_(bytes->data() + bytes->size()) {}
  // The next entry's payload, in place (a body is stamped there), and whether it is in
  // the fields' form. False at the end, or when what follows is no whole entry (a bug,
  // never a read out of bounds).
  bool Next(absl::Span<char>* payload, bool* fields) {
    uint64_t word = 0;
    const size_t left = static_cast<size_t>(end_ - at_);
    if (left < sizeof word) return false;
    std::memcpy(&word, at_, sizeof word);
    const uint64_t size = word & ~kFieldsForm;
    if (size > left || QueuedSize(size) > left) return false;
    *payload = absl::Span<char>(at_ + sizeof word, size);
    *fields = (word & kFieldsForm) != 0;
    at_ += QueuedSize(size);
    return true;
  }

 private:
  char* at_;
  char* const end_;
};

}  // namespace toegang::audit_internal

#endif  // TOEGANG_ENGINE_AUDIT_AUDIT_QUEUE_H_
