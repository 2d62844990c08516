// Copyright toegang authors.
//
// fact_codec.h (internal): a Fact as the FlatBuffer the store keeps (schemas/fact.fbs),
// and back. Decoding runs the FlatBuffers Verifier first: bytes from disk are never
// trusted.
#ifndef TOEGANG_ENGINE_FACTS_FACT_CODEC_H_
#define TOEGANG_ENGINE_FACTS_FACT_CODEC_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "model/facts.h"

namespace toegang {

// Encodes `fact` with its provenance. `withdrawal_patient` is stored on a withdrawal
// (the patient of the fact it withdraws).
std::string EncodeFact(const Fact& fact, absl::string_view withdrawal_patient = "");

// Decodes and verifies. Corrupt bytes are a DataLossError naming what failed.
absl::StatusOr<Fact> DecodeFact(absl::string_view bytes);

}  // namespace toegang

#endif  // TOEGANG_ENGINE_FACTS_FACT_CODEC_H_
