// Copyright toegang authors.
#include "schemas/party_codec.h"

#include "model/vocabulary.h"

namespace toegang {

flatbuffers::Offset<schema::Party> EncodeParty(flatbuffers::FlatBufferBuilder& b, const Party& party) {
  flatbuffers::Offset<flatbuffers::String> id = party.kind == Party::Kind::kRole ? 0 : b.CreateString(party.id);
  return schema::CreateParty(b, static_cast<schema::PartyKind>(party.kind), id, static_cast<schema::Role>(party.role));
}

absl::StatusOr<Party> DecodeParty(const schema::Party& p) {
  Party out;
  switch (p.kind()) {
    case schema::PartyKind::actor:
      out.kind = Party::Kind::kActor;
      break;
    case schema::PartyKind::role:
      out.kind = Party::Kind::kRole;
      break;
    case schema::PartyKind::organization:
      out.kind = Party::Kind::kOrganization;
      break;
    case schema::PartyKind::organization_category:
      out.kind = Party::Kind::kOrganizationCategory;
      break;
    default:
      return absl::InvalidArgumentError("kind: unknown");
  }
  if (out.kind == Party::Kind::kRole) {
    if (!IsEnumValue<Role>(static_cast<int>(p.role()))) return absl::InvalidArgumentError("role: unknown role");
    out.role = static_cast<Role>(p.role());
    return out;
  }
  if (p.id() == nullptr) return absl::InvalidArgumentError("id: required");
  out.id = p.id()->str();
  return out;
}

}  // namespace toegang
