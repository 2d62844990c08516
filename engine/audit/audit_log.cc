// Copyright toegang authors.
#include "engine/audit/audit_log.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <cstring>
#include <future>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/types/span.h"
#include "model/time.h"
#include "schemas/aligned.h"
#include "schemas/audit_generated.h"
#include "schemas/party_codec.h"
#include "base/sync.h"
#include "base/threads.h"

namespace toegang {
namespace {

namespace fb = ::toegang::schema;
constexpr size_t kHashBytes = 32;
// Buffered mode: the writer wakes every interval, or early once this many wait. It
// writes (and syncs) a batch as soon as it has records, so under steady traffic it
// syncs back to back. Pacing it to one batch per 5 ms was tried and undone: on the
// 2-core VM the in-process cost did not change, but with both virtual CPUs idling
// between requests the sidecar's one-client round trip went from 7 to 50 µs at the
// median (waking an idle virtual CPU costs tens of microseconds; see bench/RESULTS.md).
constexpr size_t kBufferedBatch = 256;
constexpr absl::Duration kBufferedInterval = absl::Milliseconds(2);

// SHA-256(a || b), with one OpenSSL context per thread.
std::string Sha256(absl::string_view a, absl::string_view b) {
  struct Ctx {
    Ctx() : ctx(EVP_MD_CTX_new()) {}
    ~Ctx() { EVP_MD_CTX_free(ctx); }
    EVP_MD_CTX* ctx;
  };
  thread_local Ctx c;
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestInit_ex(c.ctx, EVP_sha256(), nullptr);
  EVP_DigestUpdate(c.ctx, a.data(), a.size());
  EVP_DigestUpdate(c.ctx, b.data(), b.size());
  EVP_DigestFinal_ex(c.ctx, md, &len);
  return std::string(reinterpret_cast<const char*>(md), len);
}

std::string Hex(absl::string_view bytes) { return absl::BytesToHexString(bytes); }

// A recipient as records written before recipient_party kept it ("actor:ID",
// "role:NAME", "organization:ID"). Read only: records are written with the Party.
std::optional<Party> ParsePartyString(absl::string_view s) {
  if (s.empty()) return std::nullopt;
  Party p;
  if (absl::ConsumePrefix(&s, "actor:")) {
    p.kind = Party::Kind::kActor;
    p.id = std::string(s);
  } else if (absl::ConsumePrefix(&s, "organization:")) {
    p.kind = Party::Kind::kOrganization;
    p.id = std::string(s);
  } else if (absl::ConsumePrefix(&s, "role:") && ParseName(s, &p.role)) {
    p.kind = Party::Kind::kRole;
  } else {
    return std::nullopt;
  }
  return p;
}

std::string EncodeBody(const AuditEvent& e) {
  thread_local flatbuffers::FlatBufferBuilder b(1024);
  b.Clear();
  std::vector<uint8_t> reasons, obligations;
  for (Reason r : e.reasons) reasons.push_back(static_cast<uint8_t>(r));
  for (Obligation o : e.obligations) obligations.push_back(static_cast<uint8_t>(o));
  std::vector<flatbuffers::Offset<flatbuffers::String>> consents;
  for (const std::string& c : e.consents) consents.push_back(b.CreateString(c));
  flatbuffers::Offset<fb::Party> recipient = e.recipient ? EncodeParty(b, *e.recipient) : 0;
  flatbuffers::Optional<int64_t> replay = flatbuffers::nullopt;
  if (e.replay_as_of) replay = absl::ToUnixMicros(*e.replay_as_of);
  auto rec = fb::CreateAuditRecordDirect(
      b, e.seq, e.event_id.c_str(), absl::ToUnixMicros(e.at), absl::ToUnixMicros(e.logged_at), e.patient.c_str(),
      e.actor.id.c_str(), static_cast<uint8_t>(e.actor.role),
      e.actor.organization.empty() ? nullptr : e.actor.organization.c_str(), static_cast<uint8_t>(e.action),
      static_cast<uint8_t>(e.category), static_cast<uint8_t>(e.purpose), e.permitted, &reasons,
      e.legal_basis ? static_cast<int16_t>(*e.legal_basis) : int16_t{-1}, &obligations, &consents, e.emergency,
      e.justification.empty() ? nullptr : e.justification.c_str(), e.policy.c_str(),
      e.rule.empty() ? nullptr : e.rule.c_str(), e.error.empty() ? nullptr : e.error.c_str(),
      /*recipient=*/nullptr, e.age_band ? static_cast<int16_t>(*e.age_band) : int16_t{-1}, replay, recipient);
  fb::FinishAuditRecordBuffer(b, rec);
  return std::string(reinterpret_cast<const char*>(b.GetBufferPointer()), b.GetSize());
}

// An entry as stored: the record, then the previous entry's hash, then its own.
std::string EncodeEntry(absl::string_view body, absl::string_view prev, absl::string_view hash) {
  std::string out;
  out.reserve(body.size() + prev.size() + hash.size());
  out.append(body.data(), body.size());
  out.append(prev.data(), prev.size());
  out.append(hash.data(), hash.size());
  return out;
}

struct DecodedEntry {
  std::string body, prev, hash;
};

absl::StatusOr<DecodedEntry> DecodeEntry(absl::string_view bytes) {
  if (bytes.size() < 2 * kHashBytes + 8) return absl::DataLossError("entry is too short");
  const size_t body = bytes.size() - 2 * kHashBytes;
  return DecodedEntry{std::string(bytes.substr(0, body)), std::string(bytes.substr(body, kHashBytes)),
                      std::string(bytes.substr(body + kHashBytes))};
}

struct Checkpoint {
  uint64_t first_seq = 1;
  std::string prev_hash = std::string(kHashBytes, '\0');
  uint64_t purged = 0;
  int64_t before_us = 0;
  int64_t purged_at_us = 0;
  std::string mac;  // empty: none stored
  bool stored = false;  // false: nothing was ever purged
};

// HMAC-SHA-256 over every field of the checkpoint but the MAC, in a fixed layout.
std::string CheckpointMac(absl::string_view key, const Checkpoint& cp) {
  std::string msg = "toegang-audit-checkpoint-v1";
  auto put64 = [&](uint64_t v) {
    for (int i = 7; i >= 0; --i) msg.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  };
  put64(cp.first_seq);
  put64(cp.purged);
  put64(static_cast<uint64_t>(cp.before_us));
  put64(static_cast<uint64_t>(cp.purged_at_us));
  msg.append(cp.prev_hash);
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(msg.data()),
       msg.size(), md, &len);
  return std::string(reinterpret_cast<const char*>(md), len);
}

std::string EncodeCheckpoint(const Checkpoint& cp) {
  flatbuffers::FlatBufferBuilder b(160);
  auto prev_v = b.CreateVector(reinterpret_cast<const uint8_t*>(cp.prev_hash.data()), cp.prev_hash.size());
  auto mac_v = b.CreateVector(reinterpret_cast<const uint8_t*>(cp.mac.data()), cp.mac.size());
  b.Finish(fb::CreateAuditCheckpoint(b, cp.first_seq, prev_v, cp.purged, cp.before_us, cp.purged_at_us, mac_v));
  return std::string(reinterpret_cast<const char*>(b.GetBufferPointer()), b.GetSize());
}

// The latest cut-off a purge at `now` may use: records are kept at least 5 years from
// when they were written (DOMAIN D51), counted in Amsterdam's calendar.
absl::Time RetentionLimit(absl::Time now) {
  absl::CivilDay today = AmsterdamDay(now);
  return absl::FromCivil(absl::CivilDay(today.year() - 5, today.month(), today.day()), Amsterdam());
}

absl::StatusOr<Checkpoint> ReadCheckpoint(AuditStorage* storage) {
  absl::StatusOr<std::string> bytes = storage->ReadCheckpoint();
  if (!bytes.ok()) return bytes.status();
  Checkpoint cp;
  if (bytes->empty()) return cp;
  AlignedBytes a(*bytes);
  flatbuffers::Verifier v(a.data(), a.size());
  if (!v.VerifyBuffer<fb::AuditCheckpoint>(nullptr)) return absl::DataLossError("the audit checkpoint is corrupt");
  const fb::AuditCheckpoint* c = flatbuffers::GetRoot<fb::AuditCheckpoint>(a.data());
  cp.first_seq = c->first_seq();
  cp.prev_hash = std::string(reinterpret_cast<const char*>(c->prev_hash()->data()), c->prev_hash()->size());
  cp.purged = c->purged();
  cp.before_us = c->purged_before_us();
  cp.purged_at_us = c->purged_at_us();
  if (c->mac()) cp.mac = std::string(reinterpret_cast<const char*>(c->mac()->data()), c->mac()->size());
  cp.stored = true;
  return cp;
}

// Verify's verdict on the first problem found: fills `report`, sets `*found`, and
// returns the status that stops the scan it was found in.
absl::Status Found(AuditVerifyReport* report, bool* found, uint64_t seq, std::string problem) {
  report->ok = false;
  report->bad_seq = seq;
  report->problem = std::move(problem);
  *found = true;
  return absl::CancelledError("stop");
}

// OK for no checkpoint or an authentic one within the retention term; otherwise what is
// wrong, phrased to follow "access log record N".
absl::Status CheckCheckpoint(const Checkpoint& cp, absl::string_view key, absl::Time now) {
  if (!cp.stored) return absl::OkStatus();
  if (key.empty()) {
    return absl::FailedPreconditionError(
        "follows a purge checkpoint that cannot be authenticated without the key it was made with "
        "(--audit-key-file)");
  }
  const std::string mac = CheckpointMac(key, cp);
  if (cp.mac.size() != mac.size() || CRYPTO_memcmp(cp.mac.data(), mac.data(), mac.size()) != 0) {
    return absl::DataLossError(
        "follows a purge checkpoint that toegang did not write with this key: the records before it may have been "
        "removed by hand");
  }
  // Against the earlier of the purge's clock and this one: a purge run under a clock set
  // years ahead removed records that are young today.
  const absl::Time before = absl::FromUnixMicros(cp.before_us);
  const absl::Time purged_at = absl::FromUnixMicros(cp.purged_at_us);
  if (before > RetentionLimit(std::min(purged_at, now))) {
    return absl::DataLossError(absl::StrCat(
        "follows a purge checkpoint that removed records younger than 5 years (cut-off ", FormatInstant(before),
        ", purged at ", FormatInstant(purged_at), "; DOMAIN D51)"));
  }
  return absl::OkStatus();
}


}  // namespace

namespace {

// --- The queue's record form -------------------------------------------------------
// Fixed-width integers in host order and length-prefixed strings, written by PutRecord
// (under the log's lock, straight from the caller's data) and read back by ReadQueued
// in the writer. Never stored: the stored form is EncodeBody's FlatBuffer.

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

enum : uint8_t {
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
RecordView DecisionRecord(const AccessRequest& request, const Decision& d, absl::string_view decision_id,
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
bool ReadQueued(QueueReader& in, AuditEvent* e) {
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

}  // namespace

namespace {

// The record of a stored entry (its body, without the two hashes).
absl::StatusOr<AuditEvent> DecodeStoredEntry(absl::string_view bytes) {
  absl::StatusOr<DecodedEntry> entry = DecodeEntry(bytes);
  if (!entry.ok()) return entry.status();
  return DecodeAuditBody(entry->body);
}

}  // namespace

absl::StatusOr<AuditEvent> DecodeAuditBody(absl::string_view body) {
  AlignedBytes a(body);
  flatbuffers::Verifier v(a.data(), a.size());
  if (!fb::VerifyAuditRecordBuffer(v)) return absl::DataLossError("record fails FlatBuffers verification");
  const fb::AuditRecord* r = flatbuffers::GetRoot<fb::AuditRecord>(a.data());
  if (!IsEnumValue<Role>(r->actor_role()) || !IsEnumValue<Action>(r->action()) || !IsEnumValue<Category>(r->category()) ||
      !IsEnumValue<Purpose>(r->purpose())) {
    return absl::DataLossError("record holds an unknown enum value");
  }
  AuditEvent e;
  e.seq = r->seq();
  e.event_id = r->event_id()->str();
  e.at = absl::FromUnixMicros(r->at_us());
  e.logged_at = absl::FromUnixMicros(r->logged_at_us());
  e.patient = r->patient()->str();
  e.actor.id = r->actor_id()->str();
  e.actor.role = static_cast<Role>(r->actor_role());
  if (r->actor_organization()) e.actor.organization = r->actor_organization()->str();
  e.action = static_cast<Action>(r->action());
  e.category = static_cast<Category>(r->category());
  e.purpose = static_cast<Purpose>(r->purpose());
  e.permitted = r->permitted();
  if (r->reasons()) {
    for (uint8_t x : *r->reasons()) {
      if (IsEnumValue<Reason>(x)) e.reasons.push_back(static_cast<Reason>(x));
    }
  }
  if (IsEnumValue<LegalBasis>(r->legal_basis())) e.legal_basis = static_cast<LegalBasis>(r->legal_basis());
  if (r->obligations()) {
    for (uint8_t x : *r->obligations()) {
      if (IsEnumValue<Obligation>(x)) e.obligations.push_back(static_cast<Obligation>(x));
    }
  }
  if (r->consents()) {
    for (const flatbuffers::String* c : *r->consents()) e.consents.push_back(c->str());
  }
  e.emergency = r->emergency();
  if (r->justification()) e.justification = r->justification()->str();
  if (r->policy()) e.policy = r->policy()->str();
  if (r->rule()) e.rule = r->rule()->str();
  if (r->error()) e.error = r->error()->str();
  if (const fb::Party* p = r->recipient_party()) {
    absl::StatusOr<Party> party = DecodeParty(*p);
    if (!party.ok()) return absl::DataLossError(absl::StrCat("record's recipient: ", party.status().message()));
    e.recipient = *std::move(party);
  } else if (r->recipient()) {
    e.recipient = ParsePartyString(r->recipient()->str());
  }
  if (IsEnumValue<AgeBand>(r->age_band())) e.age_band = static_cast<AgeBand>(r->age_band());
  if (r->replay_as_of_us()) e.replay_as_of = absl::FromUnixMicros(*r->replay_as_of_us());
  return e;
}

absl::StatusOr<std::unique_ptr<AuditLog>> AuditLog::Open(AuditStorage* storage, AuditOptions options) {
  // libcrypto must outlive every log, including one a static object owns and destroys
  // at exit (its writer hashes what is still queued): keep OpenSSL's own at-exit
  // cleanup from running first. Found by the fuzzers, whose engines are static.
  static const bool crypto_ready = OPENSSL_init_crypto(OPENSSL_INIT_NO_ATEXIT, nullptr) == 1;
  if (!crypto_ready) return absl::InternalError("OpenSSL's libcrypto failed to initialise");
  std::unique_ptr<AuditLog> log(new AuditLog(storage, options));
  uint64_t last = 0;
  std::string head;
  absl::Status s = storage->ReadHead(&last, &head);
  if (!s.ok()) return s;
  if (head.empty()) head = std::string(kHashBytes, '\0');
  if (head.size() != kHashBytes) return absl::DataLossError("the audit head is corrupt");
  {
    MutexLock lock(&log->mu_);
    log->last_assigned_ = last;
    log->durable_.Advance(last);
    log->head_hash_ = head;
  }
  // The writer places itself and says whether it could before the log is handed out;
  // on failure it ends at once and ~AuditLog joins it.
  std::promise<absl::Status> placed;
  std::future<absl::Status> placement = placed.get_future();
  log->writer_ = std::thread([l = log.get(), placed = std::move(placed)]() mutable {
    NameCurrentThread("toegang-audit");
    absl::Status s = l->options_.writer_cpus.empty() ? absl::OkStatus() : PinCurrentThread(l->options_.writer_cpus);
    const bool ok = s.ok();
    placed.set_value(std::move(s));
    if (ok) l->WriterLoop();
  });
  if (absl::Status s = placement.get(); !s.ok()) {
    return absl::Status(s.code(), absl::StrCat("access log writer_cpus: ", s.message()));
  }
  return log;
}

AuditLog::~AuditLog() {
  {
    MutexLock lock(&mu_);
    stop_ = true;
    work_cv_.Signal();
  }
  writer_.join();
}

template <typename Encode>
absl::Status AuditLog::Enqueue(const Encode& encode) {
  uint64_t seq = 0;
  uint32_t generation = 0;
  {
    MutexLock lock(&mu_);
    absl::Status queued = EnqueueLocked(encode, &seq);
    if (!queued.ok() || options_.mode == AuditMode::kBuffered) return queued;
    generation = durable_.generation();
    work_cv_.Signal();
  }
  return WaitDurable(seq, generation);
}

absl::Status AuditLog::WaitDurable(uint64_t seq, uint32_t generation) {
  if (durable_.WaitFor(seq, generation)) return absl::OkStatus();
  MutexLock lock(&mu_);
  // The log failed before the record was synced (and may already write again).
  if (!sticky_.ok()) return sticky_;
  return absl::UnavailableError("the access log could not write this record (a write failed; it writes again now)");
}

absl::Status AuditLog::Health() const {
  MutexLock lock(&mu_);
  return sticky_;
}

template <typename Encode>
absl::Status AuditLog::EnqueueLocked(const Encode& encode, uint64_t* seq) {
  if (!sticky_.ok()) {
    ++stats_.refused;
    return sticky_;
  }
  if (queued_ >= options_.queue_capacity) {
    ++stats_.waits;
    absl::Time deadline = absl::Now() + options_.max_wait;
    while (queued_ >= options_.queue_capacity && sticky_.ok()) {
      if (room_cv_.WaitWithDeadline(&mu_, deadline)) break;
    }
    if (queued_ >= options_.queue_capacity || !sticky_.ok()) {
      ++stats_.refused;
      if (!sticky_.ok()) return sticky_;
      return absl::ResourceExhaustedError(absl::StrCat(
          "the access log queue is full (", queued_, " records waiting for ",
          absl::FormatDuration(options_.max_wait), "): the decision is refused rather than left unlogged"));
    }
  }
  *seq = ++last_assigned_;
  encode(&queue_, *seq);
  ++queued_;
  ++stats_.appended;
  stats_.max_queue_depth = std::max(stats_.max_queue_depth, queued_);
  if (options_.mode == AuditMode::kBuffered) {
    // The writer wakes on its own every kBufferedInterval; wake it early only when a
    // batch has gathered, so a decision does not pay for a futex wake.
    if (queued_ == kBufferedBatch) work_cv_.Signal();
  }
  return absl::OkStatus();
}

absl::Status AuditLog::Append(const AuditEvent& e) {
  RecordView r{e.event_id,  e.at,        e.patient,     &e.actor,      e.action,  e.category, e.purpose,
               e.permitted, e.reasons,   e.legal_basis, e.obligations, e.emergency, e.justification,
               e.policy,    e.rule,      e.error,       &e.recipient,  e.age_band, e.replay_as_of};
  return Enqueue([&](std::string* out, uint64_t seq) { PutRecord(out, seq, r, e.consents); });
}

absl::Status AuditLog::AppendDecision(const AccessRequest& request, const Decision& d, absl::string_view decision_id,
                                      std::optional<absl::Time> replay_as_of) {
  const RecordView r = DecisionRecord(request, d, decision_id, replay_as_of);
  return Enqueue([&](std::string* out, uint64_t seq) { PutRecord(out, seq, r, d.consents); });
}

std::vector<absl::Status> AuditLog::AppendDecisions(absl::Span<const LoggedDecision> decisions) {
  std::vector<absl::Status> out(decisions.size());
  std::vector<uint64_t> seqs(decisions.size(), 0);
  uint32_t generation = 0;
  {
    MutexLock lock(&mu_);
    for (size_t i = 0; i < decisions.size(); ++i) {
      const AccessRequest& request = *decisions[i].request;
      const Decision& d = *decisions[i].decision;
      const RecordView r = DecisionRecord(request, d, decisions[i].decision_id, std::nullopt);
      out[i] = EnqueueLocked([&](std::string* q, uint64_t seq) { PutRecord(q, seq, r, d.consents); }, &seqs[i]);
    }
    generation = durable_.generation();
    if (options_.mode == AuditMode::kBuffered) return out;
    work_cv_.Signal();
  }
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

absl::Status AuditLog::Flush() {
  uint64_t target = 0;
  uint32_t generation = 0;
  {
    MutexLock lock(&mu_);
    if (!sticky_.ok()) return sticky_;
    target = last_assigned_;
    generation = durable_.generation();
    work_cv_.Signal();
  }
  return WaitDurable(target, generation);
}

AuditStats AuditLog::stats() const {
  MutexLock lock(&mu_);
  AuditStats s = stats_;
  s.queue_depth = queued_;  // records (queue_ holds their bytes)
  return s;
}

void AuditLog::WriterLoop() {
  std::string bytes;
  AuditEvent e;  // reused: its strings keep their capacity from record to record
  std::vector<AuditRow> rows;
  // kBuffered: accepted records whose write failed, written first once the storage
  // writes again. Empty while the log is healthy.
  std::vector<AuditRow> unwritten;
  std::string unwritten_head;
  bool failed = false;
  while (true) {
    if (failed) {
      if (TryRecover(&unwritten, unwritten_head)) {
        failed = false;
        continue;
      }
      MutexLock lock(&mu_);
      if (stop_) return;  // what is still queued cannot be written; the callers were told
      continue;
    }
    size_t count = 0;
    std::string prev;
    {
      MutexLock lock(&mu_);
      if (options_.mode == AuditMode::kBuffered) {
        while (queued_ == 0 && !stop_) work_cv_.WaitWithTimeout(&mu_, kBufferedInterval);
      } else {
        while (queued_ == 0 && !stop_) work_cv_.Wait(&mu_);
      }
      if (queued_ == 0 && stop_) return;
      bytes.swap(spare_);
      bytes.swap(queue_);  // the producers get last round's (cleared) buffer back
      count = queued_;
      queued_ = 0;
      prev = head_hash_;
      room_cv_.SignalAll();  // room in the queue again
    }
    // Decode, chain and encode outside the lock: SHA-256 is the expensive part.
    rows.clear();
    rows.reserve(count);
    QueueReader in(bytes);
    // Stamped here, as the batch is written, rather than by each decision under the lock.
    const absl::Time logged_at = options_.clock();
    uint64_t last_seq = 0;
    bool readable = true;
    for (size_t i = 0; i < count; ++i) {
      readable = ReadQueued(in, &e);
      if (!readable) break;
      e.logged_at = logged_at;
      std::string body = EncodeBody(e);
      std::string hash = Sha256(prev, body);
      rows.push_back({e.seq, EncodeEntry(body, prev, hash), e.patient, absl::ToUnixMicros(e.at)});
      prev = std::move(hash);
      last_seq = e.seq;
    }
    absl::Status s = readable ? storage_->Append(rows, prev, /*sync=*/true)
                              : absl::InternalError("the access log's queue is unreadable (a bug in toegang)");
    bytes.clear();
    {
      MutexLock lock(&mu_);
      if (spare_.capacity() < bytes.capacity()) spare_.swap(bytes);
      ++stats_.batches;
      if (s.ok()) {
        head_hash_ = prev;
        stats_.written += count;
        durable_.Advance(last_seq);  // wakes the batch's durable callers and flushers
        continue;
      }
    }
    EnterFailure(s, &rows, &prev, &unwritten, &unwritten_head);
    failed = true;
  }
}

void AuditLog::EnterFailure(const absl::Status& cause, std::vector<AuditRow>* rows, std::string* head,
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

bool AuditLog::TryRecover(std::vector<AuditRow>* unwritten, const std::string& unwritten_head) {
  {
    MutexLock lock(&mu_);
    if (!stop_) work_cv_.WaitWithTimeout(&mu_, options_.retry_interval);
  }
  absl::Status s = storage_->Recover();
  if (s.ok() && !unwritten->empty()) s = storage_->Append(*unwritten, unwritten_head, /*sync=*/true);
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
    durable = unwritten->back().seq;
    unwritten->clear();
  }
  durable_.Reopen(durable);  // a new generation: waits from before the failure stay failed
  sticky_ = absl::OkStatus();
  ++stats_.recoveries;
  return true;
}

absl::StatusOr<std::vector<AuditEvent>> AuditLog::PatientAccesses(absl::string_view patient, absl::Time from,
                                                                  absl::Time until, size_t limit) {
  std::vector<AuditEvent> out;
  int64_t from_us = from == absl::InfinitePast() ? INT64_MIN : absl::ToUnixMicros(from);
  int64_t until_us = until == absl::InfiniteFuture() ? INT64_MAX : absl::ToUnixMicros(until);
  absl::Status s = storage_->ScanPatient(patient, from_us, until_us, [&](uint64_t seq, absl::string_view bytes) {
    absl::StatusOr<DecodedEntry> entry = DecodeEntry(bytes);
    if (!entry.ok()) return absl::DataLossError(absl::StrCat("access log record ", seq, ": ", entry.status().message()));
    absl::StatusOr<AuditEvent> e = DecodeAuditBody(entry->body);
    if (!e.ok()) return absl::DataLossError(absl::StrCat("access log record ", seq, ": ", e.status().message()));
    // The index is not hashed into the chain: an entry filed under this patient (or at
    // this time) must point at a record that says so, or the list would show another
    // patient's access as this one's.
    const int64_t at_us = absl::ToUnixMicros(e->at);
    if (e->patient != patient || at_us < from_us || at_us >= until_us || e->seq != seq) {
      return absl::DataLossError(absl::StrCat("the access log's patient index is damaged: its entry for record ", seq,
                                              " does not match the record (run `toegang audit verify`)"));
    }
    if (!e->replay_as_of) out.push_back(*std::move(e));
    if (out.size() >= limit) return absl::CancelledError("limit");
    return absl::OkStatus();
  });
  if (!s.ok() && !absl::IsCancelled(s)) return s;
  return out;
}

absl::StatusOr<AuditVerifyReport> AuditLog::Verify() {
  absl::Status flushed = Flush();
  if (!flushed.ok()) return flushed;
  AuditVerifyReport report;
  uint64_t head_seq = 0;
  std::string head_hash;
  absl::Status s = storage_->ReadHead(&head_seq, &head_hash);
  if (!s.ok()) return s;
  absl::StatusOr<Checkpoint> cp = ReadCheckpoint(storage_);
  if (!cp.ok()) return cp.status();
  uint64_t expected = cp->first_seq;
  std::string prev = cp->prev_hash;
  report.first_seq = expected;
  bool failed = false;
  auto fail = [&](uint64_t seq, std::string problem) { return Found(&report, &failed, seq, std::move(problem)); };
  auto failed_at = [&](uint64_t seq, std::string problem) {
    fail(seq, std::move(problem)).IgnoreError();  // not in a scan: the report is the answer
    return report;
  };
  if (absl::Status c = CheckCheckpoint(*cp, options_.checkpoint_key, options_.clock()); !c.ok()) {
    return failed_at(cp->first_seq, std::string(c.message()));
  }

  s = storage_->ScanChain([&](uint64_t seq, absl::string_view bytes) -> absl::Status {
    if (seq > head_seq) return absl::OkStatus();  // written after we read the head
    if (seq < expected) {
      return fail(seq, "is before the purge checkpoint: it was put back or reordered");
    }
    if (seq > expected) {
      return fail(expected, absl::StrCat("was removed (the chain jumps from ", expected - 1, " to ", seq, ")"));
    }
    absl::StatusOr<DecodedEntry> entry = DecodeEntry(bytes);
    if (!entry.ok()) {
      return fail(seq, absl::StrCat("was changed: ", entry.status().message()));
    }
    absl::StatusOr<AuditEvent> body = DecodeAuditBody(entry->body);
    if (body.ok() && body->seq != seq) {
      return fail(seq, absl::StrCat("was reordered: its place holds record ", body->seq));
    }
    if (Sha256(entry->prev, entry->body) != entry->hash || !body.ok()) {
      return fail(seq, "was changed: its contents no longer match its hash");
    }
    if (entry->prev != prev) {
      if (seq == cp->first_seq) return fail(seq, "does not continue the purge checkpoint: changed or reordered");
      return fail(seq - 1, absl::StrCat("was changed: record ", seq, " no longer links to it"));
    }
    prev = entry->hash;
    ++report.records;
    report.last_seq = seq;
    ++expected;
    return absl::OkStatus();
  });
  if (failed) return report;
  if (!s.ok()) return s;
  if (expected <= head_seq) {
    return failed_at(expected,
                     absl::StrCat("was removed (the chain ends at ", expected - 1, " but the log holds ", head_seq, ")"));
  }
  if (head_seq >= cp->first_seq && prev != head_hash) {
    return failed_at(head_seq, "was changed: it no longer matches the recorded head of the chain");
  }
  absl::StatusOr<AuditVerifyReport> indexed = VerifyIndex(report, cp->first_seq, head_seq);
  if (indexed.ok() && indexed->ok) indexed->head_hash = Hex(prev);
  return indexed;
}

absl::StatusOr<AuditVerifyReport> AuditLog::VerifyIndex(AuditVerifyReport report, uint64_t first_seq,
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
    absl::StatusOr<AuditEvent> e = DecodeStoredEntry(*bytes);
    if (!e.ok()) return e.status();
    if (e->patient != patient || absl::ToUnixMicros(e->at) != at_us) {
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
    absl::StatusOr<AuditEvent> e = DecodeStoredEntry(bytes);
    if (!e.ok()) return e.status();
    absl::StatusOr<bool> has = storage_->HasIndexEntry(e->patient, absl::ToUnixMicros(e->at), seq);
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

absl::StatusOr<AuditPurgeReport> AuditLog::Purge(absl::Time before, absl::Time now) {
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
    absl::StatusOr<DecodedEntry> entry = DecodeEntry(bytes);
    if (!entry.ok()) return absl::DataLossError(absl::StrCat("record ", seq, ": ", entry.status().message()));
    absl::StatusOr<AuditEvent> e = DecodeAuditBody(entry->body);
    if (!e.ok()) return absl::DataLossError(absl::StrCat("record ", seq, ": ", e.status().message()));
    if (e->logged_at >= before) return absl::CancelledError("done");  // the prefix ends here
    rows.push_back({seq, "", e->patient, absl::ToUnixMicros(e->at)});
    last_hash = entry->hash;
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
