// Copyright toegang authors.
#include "engine/facts/fact_codec.h"

#include <cstring>
#include <vector>

#include "absl/strings/str_cat.h"
#include "model/status_macros.h"
#include "schemas/aligned.h"
#include "schemas/fact_generated.h"
#include "schemas/party_codec.h"

namespace toegang {
namespace {

namespace fb = ::toegang::schema;
using flatbuffers::FlatBufferBuilder;
using flatbuffers::Offset;

constexpr int64_t kNoInstant = INT64_MIN;

int64_t ToMicros(absl::Time t) { return absl::ToUnixMicros(t); }
absl::Time FromMicros(int64_t us) { return absl::FromUnixMicros(us); }

flatbuffers::Optional<int64_t> FromBound(absl::Time t) {
  if (t == absl::InfinitePast() || t == absl::InfiniteFuture()) return flatbuffers::nullopt;
  return ToMicros(t);
}

int32_t DayNumber(absl::CivilDay d) { return static_cast<int32_t>(d - absl::CivilDay(1970, 1, 1)); }
absl::CivilDay FromDayNumber(int32_t n) { return absl::CivilDay(1970, 1, 1) + n; }

Offset<fb::Party> EncodeOptionalParty(FlatBufferBuilder& b, const std::optional<Party>& p) {
  return p ? EncodeParty(b, *p) : 0;
}

// A stored party, checked (absent: none). DataLoss: the store holds a party this build
// cannot read.
absl::StatusOr<std::optional<Party>> DecodeStoredParty(const fb::Party* p, absl::string_view where) {
  if (p == nullptr) return std::optional<Party>();
  absl::StatusOr<Party> party = DecodeParty(*p);
  if (!party.ok()) return absl::DataLossError(absl::StrCat("bad party in a stored ", where, ": ", party.status().message()));
  return std::optional<Party>(*std::move(party));
}

std::string Str(const flatbuffers::String* s) { return s ? s->str() : std::string(); }

Window DecodeWindow(flatbuffers::Optional<int64_t> from, flatbuffers::Optional<int64_t> until) {
  Window w;
  if (from) w.from = FromMicros(*from);
  if (until) w.until = FromMicros(*until);
  return w;
}

template <typename T>
flatbuffers::Optional<uint32_t> MaskOrAll(EnumSet<T> set) {
  if (set == EnumSet<T>::All()) return flatbuffers::nullopt;
  return set.bits();
}

template <typename T>
EnumSet<T> SetOrAll(flatbuffers::Optional<uint32_t> mask) {
  return mask ? EnumSet<T>::FromBits(*mask) : EnumSet<T>::All();
}

// The fields an objection and a restriction share (fb::Objection, fb::Restriction).
template <typename FbLimitation>
absl::Status DecodeLimitation(const FbLimitation* x, Limitation* out) {
  absl::StatusOr<std::optional<Party>> to = DecodeStoredParty(x->to(), "objection or restriction");
  if (!to.ok()) return to.status();
  out->id = x->id()->str();
  out->patient = x->patient()->str();
  out->by = x->by()->str();
  out->to = *std::move(to);
  out->purposes = SetOrAll<Purpose>(x->purposes());
  out->categories = SetOrAll<Category>(x->categories());
  out->actions = SetOrAll<Action>(x->actions());
  out->window = DecodeWindow(x->from_us(), x->until_us());
  return absl::OkStatus();
}

}  // namespace

std::string EncodeFact(const Fact& fact, absl::string_view withdrawal_patient) {
  FlatBufferBuilder b(256);
  fb::FactBody type = fb::FactBody::NONE;
  Offset<void> body;
  std::visit(
      [&](const auto& f) {
        using T = std::decay_t<decltype(f)>;
        if constexpr (std::is_same_v<T, Person>) {
          auto id = b.CreateString(f.id);
          fb::PersonBuilder pb(b);
          pb.add_id(id);
          if (f.birth_date) pb.add_birth_day(DayNumber(*f.birth_date));
          if (f.death_date) pb.add_death_day(DayNumber(*f.death_date));
          body = pb.Finish().Union();
          type = fb::FactBody::Person;
        } else if constexpr (std::is_same_v<T, Relationship>) {
          body = fb::CreateRelationshipDirect(b, f.id.empty() ? nullptr : f.id.c_str(), f.subject.c_str(),
                                              static_cast<fb::Relation>(f.relation), f.object.c_str(),
                                              FromBound(f.window.from), FromBound(f.window.until))
                     .Union();
          type = fb::FactBody::Relationship;
        } else if constexpr (std::is_same_v<T, Consent>) {
          std::vector<Offset<flatbuffers::String>> grantors;
          for (const std::string& g : f.granted_by) grantors.push_back(b.CreateString(g));
          auto to = EncodeParty(b, f.to);
          body = fb::CreateConsentDirect(b, f.id.c_str(), f.patient.c_str(), &grantors, to, f.purposes.bits(),
                                         f.categories.bits(), f.actions.bits(), FromBound(f.window.from),
                                         FromBound(f.window.until), f.evidence.empty() ? nullptr : f.evidence.c_str())
                     .Union();
          type = fb::FactBody::Consent;
        } else if constexpr (std::is_same_v<T, Withdrawal>) {
          std::string patient(withdrawal_patient);
          body = fb::CreateWithdrawalDirect(b, f.target.c_str(), f.by.c_str(), ToMicros(f.at), patient.c_str()).Union();
          type = fb::FactBody::Withdrawal;
        } else if constexpr (std::is_same_v<T, Objection>) {
          auto to = EncodeOptionalParty(b, f.to);
          body = fb::CreateObjectionDirect(b, f.id.c_str(), f.patient.c_str(), f.by.c_str(), to, MaskOrAll(f.purposes),
                                           MaskOrAll(f.categories), MaskOrAll(f.actions), FromBound(f.window.from),
                                           FromBound(f.window.until))
                     .Union();
          type = fb::FactBody::Objection;
        } else if constexpr (std::is_same_v<T, Restriction>) {
          auto to = EncodeOptionalParty(b, f.to);
          body = fb::CreateRestrictionDirect(b, f.id.c_str(), f.patient.c_str(), f.by.c_str(), to,
                                             MaskOrAll(f.purposes), MaskOrAll(f.categories), MaskOrAll(f.actions),
                                             FromBound(f.window.from), FromBound(f.window.until),
                                             f.reason.empty() ? nullptr : f.reason.c_str())
                     .Union();
          type = fb::FactBody::Restriction;
        } else if constexpr (std::is_same_v<T, Capacity>) {
          body = fb::CreateCapacityDirect(b, f.id.c_str(), f.patient.c_str(), f.by.c_str(), f.capable,
                                          FromBound(f.window.from), FromBound(f.window.until))
                     .Union();
          type = fb::FactBody::Capacity;
        } else if constexpr (std::is_same_v<T, OrgCategory>) {
          body = fb::CreateOrgCategoryDirect(b, f.id.empty() ? nullptr : f.id.c_str(), f.organization.c_str(),
                                             f.category.c_str(), FromBound(f.window.from), FromBound(f.window.until))
                     .Union();
          type = fb::FactBody::OrgCategory;
        } else if constexpr (std::is_same_v<T, ErasureRequest>) {
          body = fb::CreateErasureRequestDirect(b, f.id.c_str(), f.patient.c_str(), f.by.c_str(), ToMicros(f.at))
                     .Union();
          type = fb::FactBody::ErasureRequest;
        } else if constexpr (std::is_same_v<T, RetentionHold>) {
          body = fb::CreateRetentionHoldDirect(b, f.id.c_str(), f.patient.c_str(), f.by.c_str(),
                                               static_cast<uint8_t>(f.reason), FromBound(f.window.from),
                                               FromBound(f.window.until))
                     .Union();
          type = fb::FactBody::RetentionHold;
        } else if constexpr (std::is_same_v<T, Removed>) {
          body = fb::CreateRemovedDirect(b, f.id.empty() ? nullptr : f.id.c_str(), f.patient.c_str(), f.type.c_str(),
                                         ToMicros(f.removed_at), f.term.c_str(), f.covered_seq)
                     .Union();
          type = fb::FactBody::Removed;
        }
      },
      fact.body);
  flatbuffers::Optional<int64_t> recorded = flatbuffers::nullopt;
  if (fact.provenance.recorded_at) recorded = ToMicros(*fact.provenance.recorded_at);
  int64_t arrival = fact.provenance.arrival == absl::InfinitePast() ? kNoInstant : ToMicros(fact.provenance.arrival);
  Offset<fb::Source> source = 0;
  if (fact.source) {
    source = fb::CreateSourceDirect(b, fact.source->system.c_str(), fact.source->id.c_str(),
                                    fact.source->version.empty() ? nullptr : fact.source->version.c_str(),
                                    fact.source->choice.empty() ? nullptr : fact.source->choice.c_str());
  }
  auto root = fb::CreateStoredFact(b, fact.provenance.seq, arrival, recorded, type, body, source);
  fb::FinishStoredFactBuffer(b, root);
  return std::string(reinterpret_cast<const char*>(b.GetBufferPointer()), b.GetSize());
}

absl::StatusOr<Fact> DecodeFact(absl::string_view bytes) {
  // One buffer per thread for the (rare) misaligned value: decoding is on the read path.
  thread_local std::vector<uint64_t> scratch;
  const AlignedBytes in(bytes, &scratch);
  bytes = absl::string_view(reinterpret_cast<const char*>(in.data()), in.size());
  flatbuffers::Verifier verifier(in.data(), in.size());
  if (!fb::VerifyStoredFactBuffer(verifier)) {
    return absl::DataLossError("stored fact fails FlatBuffers verification");
  }
  const fb::StoredFact* sf = fb::GetStoredFact(bytes.data());
  Fact fact;
  fact.provenance.seq = sf->seq();
  fact.provenance.arrival = sf->arrival_us() == kNoInstant ? absl::InfinitePast() : FromMicros(sf->arrival_us());
  if (sf->recorded_at_us()) fact.provenance.recorded_at = FromMicros(*sf->recorded_at_us());
  if (const fb::Source* src = sf->source(); src != nullptr) {
    fact.source = FactSource{src->system()->str(), src->id()->str(), Str(src->version()), Str(src->choice())};
  }
  switch (sf->body_type()) {
    case fb::FactBody::Person: {
      const fb::Person* p = sf->body_as_Person();
      Person out;
      out.id = p->id()->str();
      if (p->birth_day()) out.birth_date = FromDayNumber(*p->birth_day());
      if (p->death_day()) out.death_date = FromDayNumber(*p->death_day());
      fact.body = std::move(out);
      break;
    }
    case fb::FactBody::Relationship: {
      const fb::Relationship* r = sf->body_as_Relationship();
      if (static_cast<int>(r->relation()) >= EnumCount<Relation>()) return absl::DataLossError("unknown relation");
      fact.body = Relationship{Str(r->id()), r->subject()->str(), static_cast<Relation>(r->relation()),
                               r->object()->str(), DecodeWindow(r->from_us(), r->until_us())};
      break;
    }
    case fb::FactBody::Consent: {
      const fb::Consent* c = sf->body_as_Consent();
      absl::StatusOr<std::optional<Party>> to = DecodeStoredParty(c->to(), "consent");
      if (!to.ok()) return to.status();
      if (!to->has_value() || c->granted_by()->size() == 0) return absl::DataLossError("bad consent party");
      Consent out;
      out.id = c->id()->str();
      out.patient = c->patient()->str();
      for (const flatbuffers::String* g : *c->granted_by()) out.granted_by.push_back(g->str());
      out.to = **std::move(to);
      out.purposes = PurposeSet::FromBits(c->purposes());
      out.categories = CategorySet::FromBits(c->categories());
      out.actions = ActionSet::FromBits(c->actions());
      out.window = DecodeWindow(c->from_us(), c->until_us());
      out.evidence = Str(c->evidence());
      fact.body = std::move(out);
      break;
    }
    case fb::FactBody::Withdrawal: {
      const fb::Withdrawal* w = sf->body_as_Withdrawal();
      fact.body = Withdrawal{w->target()->str(), w->by()->str(), FromMicros(w->at_us())};
      break;
    }
    case fb::FactBody::Objection: {
      Objection out;
      TOEGANG_RETURN_IF_ERROR(DecodeLimitation(sf->body_as_Objection(), &out));
      fact.body = std::move(out);
      break;
    }
    case fb::FactBody::Restriction: {
      const fb::Restriction* r = sf->body_as_Restriction();
      Restriction out;
      TOEGANG_RETURN_IF_ERROR(DecodeLimitation(r, &out));
      out.reason = Str(r->reason());
      fact.body = std::move(out);
      break;
    }
    case fb::FactBody::Capacity: {
      const fb::Capacity* c = sf->body_as_Capacity();
      fact.body = Capacity{c->id()->str(), c->patient()->str(), c->by()->str(), c->capable(),
                           DecodeWindow(c->from_us(), c->until_us())};
      break;
    }
    case fb::FactBody::OrgCategory: {
      const fb::OrgCategory* o = sf->body_as_OrgCategory();
      fact.body = OrgCategory{Str(o->id()), o->organization()->str(), o->category()->str(),
                              DecodeWindow(o->from_us(), o->until_us())};
      break;
    }
    case fb::FactBody::ErasureRequest: {
      const fb::ErasureRequest* e = sf->body_as_ErasureRequest();
      fact.body = ErasureRequest{e->id()->str(), e->patient()->str(), e->by()->str(), FromMicros(e->at_us())};
      break;
    }
    case fb::FactBody::RetentionHold: {
      const fb::RetentionHold* h = sf->body_as_RetentionHold();
      if (!IsEnumValue<HoldReason>(h->reason())) {
        return absl::DataLossError(absl::StrCat("stored retention hold has unknown reason ", h->reason()));
      }
      fact.body = RetentionHold{h->id()->str(), h->patient()->str(), h->by()->str(),
                                static_cast<HoldReason>(h->reason()), DecodeWindow(h->from_us(), h->until_us())};
      break;
    }
    case fb::FactBody::Removed: {
      const fb::Removed* r = sf->body_as_Removed();
      fact.body = Removed{Str(r->id()), r->patient()->str(), r->type()->str(), FromMicros(r->removed_at_us()),
                          r->term()->str(), r->covered_seq()};
      break;
    }
    default:
      return absl::DataLossError(absl::StrCat("stored fact has unknown body type ", static_cast<int>(sf->body_type())));
  }
  return fact;
}

}  // namespace toegang
