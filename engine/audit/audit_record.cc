// Copyright toegang authors.
#include "engine/audit/audit_record.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <limits>
#include <optional>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/civil_time.h"
#include "model/time.h"
#include "schemas/aligned.h"
#include "schemas/audit_generated.h"
#include "schemas/party_codec.h"

namespace toegang {
namespace audit_internal {

namespace fb = ::toegang::schema;

namespace {

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

}  // namespace

std::string Sha256(absl::string_view a, absl::string_view b) {
  unsigned char md[kHashBytes];
  Sha256Into(a, b, md);
  return std::string(reinterpret_cast<const char*>(md), kHashBytes);
}

std::string Hex(absl::string_view bytes) { return absl::BytesToHexString(bytes); }

namespace {

// What PrepareBody leaves open. Neither is a field's default, so FlatBuffers stores
// both and SetBodySeq and StampBody find them to overwrite.
constexpr uint64_t kSeqToSet = ~uint64_t{0};
constexpr int64_t kLoggedAtToSet = std::numeric_limits<int64_t>::min();

// A thread's builder, shared by both PrepareBody overloads and kept from record to
// record: its storage grows once.
struct BodyBuilder {
  flatbuffers::FlatBufferBuilder b{1024};
  std::vector<flatbuffers::Offset<flatbuffers::String>> consents;
};

BodyBuilder& ThisThreadsBuilder() {
  thread_local BodyBuilder builder;
  return builder;
}

template <typename Consents>
absl::string_view BuildBody(const RecordView& r, const Consents& consents) {
  BodyBuilder& builder = ThisThreadsBuilder();
  flatbuffers::FlatBufferBuilder& b = builder.b;
  std::vector<flatbuffers::Offset<flatbuffers::String>>& consent_offsets = builder.consents;
  b.Clear();
  const auto text = [&](absl::string_view s) { return b.CreateString(s.data(), s.size()); };
  const auto optional_text = [&](absl::string_view s) {
    return s.empty() ? flatbuffers::Offset<flatbuffers::String>() : text(s);
  };
  const auto bytes = [&](auto span) {
    uint8_t* out = nullptr;
    const auto v = b.CreateUninitializedVector<uint8_t>(span.size(), &out);
    for (size_t i = 0; i < span.size(); ++i) out[i] = static_cast<uint8_t>(span[i]);
    return v;
  };
  const auto event_id = text(r.event_id);
  const auto patient = text(r.patient);
  const auto actor_id = text(r.actor->id);
  const auto organization = optional_text(r.actor->organization);
  const auto reasons = bytes(r.reasons);
  const auto obligations = bytes(r.obligations);
  consent_offsets.clear();
  for (const auto& c : consents) consent_offsets.push_back(text(c));
  const auto consents_v = b.CreateVector(consent_offsets);
  const auto justification = optional_text(r.justification);
  const auto policy = text(r.policy);
  const auto rule = optional_text(r.rule);
  const auto error = optional_text(r.error);
  const flatbuffers::Offset<fb::Party> recipient = r.recipient->has_value() ? EncodeParty(b, **r.recipient) : 0;
  flatbuffers::Optional<int64_t> replay = flatbuffers::nullopt;
  if (r.replay_as_of) replay = absl::ToUnixMicros(*r.replay_as_of);
  const auto rec = fb::CreateAuditRecord(
      b, kSeqToSet, event_id, absl::ToUnixMicros(r.at), kLoggedAtToSet, patient, actor_id,
      static_cast<uint8_t>(r.actor->role), organization, static_cast<uint8_t>(r.action),
      static_cast<uint8_t>(r.category), static_cast<uint8_t>(r.purpose), r.permitted, reasons,
      r.legal_basis ? static_cast<int16_t>(*r.legal_basis) : int16_t{-1}, obligations, consents_v, r.emergency,
      justification, policy, rule, error, /*recipient=*/0, r.age_band ? static_cast<int16_t>(*r.age_band) : int16_t{-1},
      replay, recipient);
  fb::FinishAuditRecordBuffer(b, rec);
  return absl::string_view(reinterpret_cast<const char*>(b.GetBufferPointer()), b.GetSize());
}

}  // namespace

absl::string_view PrepareBody(const RecordView& r, absl::Span<const absl::string_view> consents) {
  return BuildBody(r, consents);
}

absl::string_view PrepareBody(const RecordView& r, absl::Span<const std::string> consents) {
  return BuildBody(r, consents);
}

bool SetBodySeq(char* body, uint64_t seq) {
  return fb::GetMutableAuditRecord(body)->mutate_seq(seq);
}

bool StampBody(char* body, int64_t logged_at_us, BodyKeys* keys) {
  fb::AuditRecord* r = fb::GetMutableAuditRecord(body);
  if (!r->mutate_logged_at_us(logged_at_us) || r->patient() == nullptr) return false;
  keys->seq = r->seq();
  keys->at_us = r->at_us();
  keys->patient = absl::string_view(r->patient()->c_str(), r->patient()->size());
  return true;
}

void ChainEntry(absl::string_view body, absl::string_view prev, std::string* entry) {
  unsigned char hash[kHashBytes];
  Sha256Into(prev, body, hash);
  entry->clear();
  entry->reserve(body.size() + prev.size() + kHashBytes);
  entry->append(body.data(), body.size());
  entry->append(prev.data(), prev.size());
  entry->append(reinterpret_cast<const char*>(hash), kHashBytes);
}

absl::StatusOr<DecodedEntry> DecodeEntry(absl::string_view bytes) {
  if (bytes.size() < 2 * kHashBytes + 8) return absl::DataLossError("entry is too short");
  const size_t body = bytes.size() - 2 * kHashBytes;
  return DecodedEntry{std::string(bytes.substr(0, body)), std::string(bytes.substr(body, kHashBytes)),
                      std::string(bytes.substr(body + kHashBytes))};
}


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

namespace {
constexpr char kTombstoneId[] = "TGAT";
}  // namespace

std::string TombstoneMac(absl::string_view key, const Tombstone& t, absl::string_view prev, absl::string_view hash) {
  std::string msg = "toegang-audit-tombstone-v1";
  auto put64 = [&](uint64_t v) {
    for (int i = 7; i >= 0; --i) msg.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  };
  auto put = [&](absl::string_view bytes) {
    put64(bytes.size());
    msg.append(bytes.data(), bytes.size());
  };
  put64(t.seq);
  put64(static_cast<uint64_t>(t.at_us));
  put64(static_cast<uint64_t>(t.logged_at_us));
  put64(static_cast<uint64_t>(t.removed_at_us));
  put64(static_cast<uint64_t>(t.years));
  put(t.patient);
  put(t.term);
  put(prev);
  put(hash);
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(msg.data()),
       msg.size(), md, &len);
  return std::string(reinterpret_cast<const char*>(md), len);
}

std::string EncodeTombstoneEntry(const Tombstone& t, absl::string_view prev, absl::string_view hash) {
  flatbuffers::FlatBufferBuilder b(256);
  auto patient = b.CreateString(t.patient);
  auto term = b.CreateString(t.term);
  auto mac = b.CreateVector(reinterpret_cast<const uint8_t*>(t.mac.data()), t.mac.size());
  b.Finish(fb::CreateAuditTombstone(b, t.seq, patient, t.at_us, t.logged_at_us, t.removed_at_us, term,
                                    static_cast<uint16_t>(t.years), mac),
           kTombstoneId);
  std::string entry(reinterpret_cast<const char*>(b.GetBufferPointer()), b.GetSize());
  entry.append(prev.data(), prev.size());
  entry.append(hash.data(), hash.size());
  return entry;
}

bool IsTombstone(absl::string_view body) {
  return body.size() >= 8 && flatbuffers::BufferHasIdentifier(body.data(), kTombstoneId);
}

absl::StatusOr<Tombstone> DecodeTombstone(absl::string_view body) {
  AlignedBytes a(body);
  flatbuffers::Verifier v(a.data(), a.size());
  if (!IsTombstone(body) || !v.VerifyBuffer<fb::AuditTombstone>(kTombstoneId)) {
    return absl::DataLossError("tombstone fails FlatBuffers verification");
  }
  const fb::AuditTombstone* t = flatbuffers::GetRoot<fb::AuditTombstone>(a.data());
  Tombstone out;
  out.seq = t->seq();
  out.patient = t->patient()->str();
  out.at_us = t->at_us();
  out.logged_at_us = t->logged_at_us();
  out.removed_at_us = t->removed_at_us();
  out.term = t->term()->str();
  out.years = t->years();
  out.mac = std::string(reinterpret_cast<const char*>(t->mac()->data()), t->mac()->size());
  return out;
}

absl::Status CheckTombstone(const Tombstone& t, absl::string_view key, absl::string_view prev,
                            absl::string_view hash, absl::Time now) {
  if (key.empty()) {
    return absl::FailedPreconditionError(
        "was removed by retention; its tombstone cannot be authenticated without the key it was made with "
        "(--audit-key-file)");
  }
  const std::string mac = TombstoneMac(key, t, prev, hash);
  if (t.mac.size() != mac.size() || CRYPTO_memcmp(t.mac.data(), mac.data(), mac.size()) != 0) {
    return absl::DataLossError(
        "was replaced by a tombstone toegang did not write with this key: the record may have been removed by hand");
  }
  // Due: at least 5 years (D51) after it was written, by the Amsterdam calendar (a 29
  // February counted to 28 February, the earliest any leap-day rule makes it), and
  // removed no later than now (a clock set years ahead removes records young today).
  const absl::Time removed_at = absl::FromUnixMicros(t.removed_at_us);
  const absl::CivilDay logged = AmsterdamDay(absl::FromUnixMicros(t.logged_at_us));
  const absl::CivilDay due = BirthdayIn(logged, logged.year() + std::max(t.years, 5), LeapDayRule::kFeb28);
  if (t.years < 5 || AmsterdamDay(std::min(removed_at, now)) < due) {
    return absl::DataLossError(absl::StrCat("was removed before its term ended (written ",
                                            FormatInstant(absl::FromUnixMicros(t.logged_at_us)), ", removed ",
                                            FormatInstant(removed_at), ", term ", t.term, "; DOMAIN D51)"));
  }
  return absl::OkStatus();
}

absl::StatusOr<IndexedAs> IndexedAsOf(absl::string_view bytes) {
  absl::StatusOr<DecodedEntry> entry = DecodeEntry(bytes);
  if (!entry.ok()) return entry.status();
  if (IsTombstone(entry->body)) {
    absl::StatusOr<Tombstone> t = DecodeTombstone(entry->body);
    if (!t.ok()) return t.status();
    return IndexedAs{t->patient, t->at_us, t->logged_at_us, std::move(entry->hash)};
  }
  absl::StatusOr<AuditEvent> e = DecodeAuditBody(entry->body);
  if (!e.ok()) return e.status();
  return IndexedAs{e->patient, absl::ToUnixMicros(e->at), absl::ToUnixMicros(e->logged_at), std::move(entry->hash)};
}

absl::StatusOr<AuditEvent> DecodeStoredEntry(absl::string_view bytes) {
  absl::StatusOr<DecodedEntry> entry = DecodeEntry(bytes);
  if (!entry.ok()) return entry.status();
  return DecodeAuditBody(entry->body);
}

}  // namespace audit_internal

absl::StatusOr<AuditEvent> DecodeAuditEntry(absl::string_view entry) {
  return audit_internal::DecodeStoredEntry(entry);
}

absl::StatusOr<AuditEvent> DecodeAuditBody(absl::string_view body) {
  using audit_internal::ParsePartyString;
  namespace fb = ::toegang::schema;
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

}  // namespace toegang
