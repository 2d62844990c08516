// Copyright toegang authors.
#include "engine/sidecar/wire_codec.h"

#include <cstring>

#include "absl/container/inlined_vector.h"
#include "absl/strings/str_cat.h"
#include "absl/time/civil_time.h"
#include "model/json.h"
#include "model/status_macros.h"
#include "model/vocabulary.h"
#include "schemas/aligned.h"
#include "schemas/party_codec.h"
#include "schemas/wire_generated.h"

namespace toegang::sidecar {

namespace w = ::toegang::wire;

namespace {

std::string Bytes(const flatbuffers::FlatBufferBuilder& b) {
  return std::string(reinterpret_cast<const char*>(b.GetBufferPointer()), b.GetSize());
}

absl::Status Invalid(absl::string_view field, absl::string_view problem) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", problem));
}

// The instants a request may be for (model/time.h's range for RFC 3339 text).
bool PlausibleInstant(absl::Time t) {
  return t >= absl::FromCivil(absl::CivilSecond(1800, 1, 1, 0, 0, 0), absl::UTCTimeZone()) &&
         t <= absl::FromCivil(absl::CivilSecond(3000, 1, 1, 0, 0, 0), absl::UTCTimeZone());
}

absl::StatusOr<AccessRequest> DecodeDecide(const w::DecideRequest& d) {
  AccessRequest req;
  req.at = absl::FromUnixMicros(d.at_us());
  if (!PlausibleInstant(req.at)) return Invalid("at", "outside the years 1800..2999");
  req.actor.id = d.actor_id()->str();
  TOEGANG_RETURN_IF_ERROR(CheckId(req.actor.id, "actor.id"));
  if (!IsEnumValue<Role>(d.actor_role())) return Invalid("actor.role", "unknown role");
  req.actor.role = static_cast<Role>(d.actor_role());
  if (d.actor_organization()) {
    req.actor.organization = d.actor_organization()->str();
    TOEGANG_RETURN_IF_ERROR(CheckId(req.actor.organization, "actor.organization"));
  }
  req.patient = d.patient()->str();
  TOEGANG_RETURN_IF_ERROR(CheckId(req.patient, "patient"));
  if (!IsEnumValue<Action>(d.action())) return Invalid("action", "unknown action");
  if (!IsEnumValue<Category>(d.category())) return Invalid("category", "unknown category");
  if (!IsEnumValue<Purpose>(d.purpose())) return Invalid("purpose", "unknown purpose");
  req.action = static_cast<Action>(d.action());
  req.category = static_cast<Category>(d.category());
  req.purpose = static_cast<Purpose>(d.purpose());
  req.emergency = d.emergency();
  if (d.justification()) {
    req.emergency_justification = d.justification()->str();
    TOEGANG_RETURN_IF_ERROR(CheckText(req.emergency_justification, "justification"));
  }
  if (d.legal_order() && d.legal_order()->size() > 0) {
    req.legal_order = d.legal_order()->str();
    TOEGANG_RETURN_IF_ERROR(CheckText(*req.legal_order, "legal_order"));
  }
  if (const schema::Party* p = d.recipient()) {
    absl::StatusOr<Party> party = DecodeParty(*p);
    if (!party.ok()) return absl::InvalidArgumentError(absl::StrCat("recipient.", party.status().message()));
    if (party->kind != Party::Kind::kRole) TOEGANG_RETURN_IF_ERROR(CheckId(party->id, "recipient.id"));
    req.recipient = *std::move(party);
  }
  if (d.at_least() && d.at_least()->size() > 0) {
    if (d.at_least()->size() > kMaxTokenBytes) return Invalid("at_least", "is longer than any consistency token");
    req.at_least = d.at_least()->str();
  }
  return req;
}

}  // namespace

std::string WithLength(absl::string_view frame) {
  std::string out(kFrameHeaderBytes + frame.size(), '\0');
  const uint32_t n = static_cast<uint32_t>(frame.size());
  for (size_t i = 0; i < kFrameHeaderBytes; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  std::memcpy(out.data() + kFrameHeaderBytes, frame.data(), frame.size());
  return out;
}

uint32_t FrameLength(const char header[kFrameHeaderBytes]) {
  uint32_t n = 0;
  for (size_t i = 0; i < kFrameHeaderBytes; ++i) n |= static_cast<uint32_t>(static_cast<uint8_t>(header[i])) << (8 * i);
  return n;
}

std::string EncodeDecideRequest(uint64_t id, const AccessRequest& r) {
  flatbuffers::FlatBufferBuilder b(256);
  flatbuffers::Offset<schema::Party> recipient = r.recipient ? EncodeParty(b, *r.recipient) : 0;
  auto decide = w::CreateDecideRequestDirect(
      b, absl::ToUnixMicros(r.at), r.actor.id.c_str(), static_cast<uint8_t>(r.actor.role),
      r.actor.organization.empty() ? nullptr : r.actor.organization.c_str(), r.patient.c_str(),
      static_cast<uint8_t>(r.action), static_cast<uint8_t>(r.category), static_cast<uint8_t>(r.purpose), r.emergency,
      r.emergency_justification.empty() ? nullptr : r.emergency_justification.c_str(),
      r.legal_order ? r.legal_order->c_str() : nullptr, recipient, r.at_least.empty() ? nullptr : r.at_least.c_str());
  w::FinishRequestBuffer(b, w::CreateRequest(b, id, decide));
  return Bytes(b);
}

std::string EncodeHello(absl::string_view token) {
  flatbuffers::FlatBufferBuilder b(128);
  auto hello = w::CreateHello(b, b.CreateString(token.data(), token.size()));
  w::FinishRequestBuffer(b, w::CreateRequest(b, 0, 0, hello));
  return Bytes(b);
}

absl::StatusOr<RequestFrame> DecodeRequestFrame(absl::string_view frame, uint64_t* id_out) {
  *id_out = 0;
  const AlignedBytes in(frame);  // copied only when it lacks alignment
  const uint8_t* data = in.data();
  flatbuffers::Verifier verifier(data, in.size(), 64, 10000);
  if (!w::VerifyRequestBuffer(verifier)) {
    return absl::InvalidArgumentError("frame fails FlatBuffers verification (not a toegang Request)");
  }
  const w::Request* r = w::GetRequest(data);
  RequestFrame out;
  out.id = *id_out = r->id();
  if (const w::Hello* hello = r->hello()) {
    out.hello = hello->token() != nullptr ? hello->token()->str() : std::string();
    return out;
  }
  if (r->decide() == nullptr) return absl::InvalidArgumentError("decide: required field is missing");
  absl::StatusOr<AccessRequest> req = DecodeDecide(*r->decide());
  if (!req.ok()) return req.status();
  out.decide = *std::move(req);
  return out;
}

std::string EncodeDecisionResponse(uint64_t id, const Decision& dec, absl::string_view decision_id) {
  thread_local flatbuffers::FlatBufferBuilder b(512);
  b.Clear();
  // Straight from the decision's inline vectors, without a copy on the heap.
  auto reasons = b.CreateVectorScalarCast<uint8_t>(dec.reasons.data(), dec.reasons.size());
  auto obligations = b.CreateVectorScalarCast<uint8_t>(dec.obligations.data(), dec.obligations.size());
  absl::InlinedVector<flatbuffers::Offset<flatbuffers::String>, 2> consent_ids;
  for (absl::string_view c : dec.consents) consent_ids.push_back(b.CreateString(c.data(), c.size()));
  auto consents = b.CreateVector(consent_ids.data(), consent_ids.size());
  auto policy = b.CreateString(dec.policy.data(), dec.policy.size());
  auto rule = b.CreateString(dec.rule.data(), dec.rule.size());
  auto did = b.CreateString(decision_id.data(), decision_id.size());
  auto decision = w::CreateDecision(
      b, dec.permitted(), reasons, dec.legal_basis ? static_cast<int16_t>(*dec.legal_basis) : int16_t{-1},
      obligations, consents, dec.age_band ? static_cast<int16_t>(*dec.age_band) : int16_t{-1}, policy, did, rule);
  b.Finish(w::CreateResponse(b, id, decision, dec.error.empty() ? 0 : b.CreateString(dec.error)));
  return Bytes(b);
}

std::string EncodeErrorResponse(uint64_t id, absl::string_view message) {
  flatbuffers::FlatBufferBuilder b(256);
  auto text = message.empty() ? flatbuffers::Offset<flatbuffers::String>() : b.CreateString(message.data(), message.size());
  b.Finish(w::CreateResponse(b, id, 0, text));
  return Bytes(b);
}

absl::StatusOr<Answer> DecodeResponse(absl::string_view frame) {
  const AlignedBytes in(frame);
  flatbuffers::Verifier v(in.data(), in.size());
  if (!v.VerifyBuffer<w::Response>(nullptr)) return absl::DataLossError("answer frame fails verification");
  const w::Response* resp = flatbuffers::GetRoot<w::Response>(in.data());
  Answer a;
  a.id = resp->id();
  if (resp->error()) a.error = resp->error()->str();
  const w::Decision* d = resp->decision();
  if (d == nullptr) return a;
  a.permitted = d->permitted();
  if (d->reasons()) {
    for (uint8_t x : *d->reasons()) {
      if (IsEnumValue<Reason>(x)) a.reasons.push_back(static_cast<Reason>(x));
    }
  }
  if (IsEnumValue<LegalBasis>(d->legal_basis())) a.legal_basis = static_cast<LegalBasis>(d->legal_basis());
  if (d->obligations()) {
    for (uint8_t x : *d->obligations()) {
      if (IsEnumValue<Obligation>(x)) a.obligations.push_back(static_cast<Obligation>(x));
    }
  }
  if (d->consents()) {
    for (const flatbuffers::String* c : *d->consents()) a.consents.push_back(c->str());
  }
  if (IsEnumValue<AgeBand>(d->age_band())) a.age_band = static_cast<AgeBand>(d->age_band());
  if (d->policy()) a.policy = d->policy()->str();
  if (d->decision_id()) a.decision_id = d->decision_id()->str();
  if (d->rule()) a.rule = d->rule()->str();
  return a;
}

}  // namespace toegang::sidecar
