// Copyright toegang authors.
//
// audit_queue.h (internal): the access log's queue form of a record. Fixed-width
// integers in host order and length-prefixed strings, written by PutRecord (under the
// log's lock, straight from the caller's data) and read back by ReadQueued in the
// writer. Never stored: the stored form is audit_record.h's FlatBuffer.
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
#include "model/request.h"

namespace toegang::audit_internal {

// The record is sized first and then written with plain stores into room made once:
// a decision pays for one resize of a buffer that keeps its capacity, not for a
// capacity check per field.
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

template <typename Sink>
void PutU64(Sink& o, uint64_t v) { o.Raw(&v, sizeof v); }
template <typename Sink>
void PutU32(Sink& o, uint32_t v) { o.Raw(&v, sizeof v); }
template <typename Sink>
void PutU8(Sink& o, uint8_t v) { o.Raw(&v, 1); }
template <typename Sink>
void PutTime(Sink& o, absl::Time t) { PutU64(o, static_cast<uint64_t>(absl::ToUnixMicros(t))); }
template <typename Sink>
void PutStr(Sink& o, absl::string_view v) {
  PutU32(o, static_cast<uint32_t>(v.size()));
  o.Raw(v.data(), v.size());
}

enum QueueFlags : uint8_t {
  kPermitted = 1,
  kEmergency = 2,
  kHasLegalBasis = 4,
  kHasAgeBand = 8,
  kHasRecipient = 16,
  kHasReplay = 32,
};

// What one record holds, as views of the caller's data.
struct RecordView {
  absl::string_view event_id;
  absl::Time at;
  absl::string_view patient;
  const Actor* actor;
  Action action;
  Category category;
  Purpose purpose;
  bool permitted;
  absl::Span<const Reason> reasons;
  std::optional<LegalBasis> legal_basis;
  absl::Span<const Obligation> obligations;
  bool emergency;
  absl::string_view justification;
  absl::string_view policy;
  absl::string_view rule;
  absl::string_view error;
  const std::optional<Party>* recipient;
  std::optional<AgeBand> age_band;
  std::optional<absl::Time> replay_as_of;
};

// The record of `d` on `request` (what AppendDecision and AppendDecisions queue).
inline RecordView DecisionRecord(const AccessRequest& request, const Decision& d, absl::string_view decision_id,
                          std::optional<absl::Time> replay_as_of) {
  return RecordView{decision_id,       request.at,        request.patient,
                    &request.actor,    request.action,    request.category,
                    request.purpose,   d.permitted(),     d.reasons,
                    d.legal_basis,     d.obligations,     request.emergency,
                    request.emergency_justification,      d.policy,
                    d.rule,            d.error,           &request.recipient,
                    d.age_band,        replay_as_of};
}

template <typename Sink, typename Consents>
void PutFields(Sink& o, uint64_t seq, const RecordView& r, const Consents& consents) {
  PutU64(o, seq);
  uint8_t flags = (r.permitted ? kPermitted : 0) | (r.emergency ? kEmergency : 0) |
                  (r.legal_basis ? kHasLegalBasis : 0) | (r.age_band ? kHasAgeBand : 0) |
                  (r.recipient->has_value() ? kHasRecipient : 0) | (r.replay_as_of ? kHasReplay : 0);
  PutU8(o, flags);
  PutU8(o, static_cast<uint8_t>(r.actor->role));
  PutU8(o, static_cast<uint8_t>(r.action));
  PutU8(o, static_cast<uint8_t>(r.category));
  PutU8(o, static_cast<uint8_t>(r.purpose));
  PutU8(o, r.legal_basis ? static_cast<uint8_t>(*r.legal_basis) : 0);
  PutU8(o, r.age_band ? static_cast<uint8_t>(*r.age_band) : 0);
  PutTime(o, r.at);
  if (r.replay_as_of) PutTime(o, *r.replay_as_of);
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

// Appends record `seq` to `out` in the queue's form.
template <typename Consents>
void PutRecord(std::string* out, uint64_t seq, const RecordView& r, const Consents& consents) {
  SizeSink size;
  PutFields(size, seq, r, consents);
  const size_t at = out->size();
  out->resize(at + size.size());
  RawSink sink(&(*out)[at]);
  PutFields(sink, seq, r, consents);
}

// Reads what PutRecord wrote. Bounds-checked all the same: a reader past the end is
// a bug, reported as an error, never a read out of bounds.
class QueueReader {
 public:
  explicit QueueReader(absl::string_view bytes) : rest_(bytes) {}
  bool ok() const { return ok_; }
  uint64_t U64() { return Fixed<uint64_t>(); }
  uint32_t U32() { return Fixed<uint32_t>(); }
  uint8_t U8() { return Fixed<uint8_t>(); }
  absl::Time Time() { return absl::FromUnixMicros(static_cast<int64_t>(U64())); }
  void Str(std::string* out) {
    uint32_t n = U32();
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

// Fills `e` (reusing its strings' capacity) from the next record: the seq the log put
// in front, then PutRecord's fields.
inline bool ReadQueued(QueueReader& in, AuditEvent* e) {
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
  e->consents.resize(in.ok() ? consents : 0);
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
  return in.ok();
}

}  // namespace toegang::audit_internal

#endif  // TOEGANG_ENGINE_AUDIT_AUDIT_QUEUE_H_
