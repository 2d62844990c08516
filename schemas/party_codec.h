// Copyright toegang authors.
//
// party_codec.h: a Party (model/facts.h) to and from the FlatBuffer every schema names
// one with (schemas/party.fbs): stored facts, access-log records, request frames.
// Thread-safe (no shared state).
#ifndef TOEGANG_SCHEMAS_PARTY_CODEC_H_
#define TOEGANG_SCHEMAS_PARTY_CODEC_H_

#include "absl/status/statusor.h"
#include "flatbuffers/flatbuffers.h"
#include "model/facts.h"
#include "schemas/party_generated.h"

namespace toegang {

// Writes `party` into `b`.
flatbuffers::Offset<schema::Party> EncodeParty(flatbuffers::FlatBufferBuilder& b, const Party& party);

// Reads a verified Party. InvalidArgument naming the field ("kind", "role", "id") when
// its kind or role is not one this build knows, or an actor or organisation has no id.
// The id's text is the caller's to check (it may come from a socket).
absl::StatusOr<Party> DecodeParty(const schema::Party& p);

}  // namespace toegang

#endif  // TOEGANG_SCHEMAS_PARTY_CODEC_H_
