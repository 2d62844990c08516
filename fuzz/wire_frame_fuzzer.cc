// Copyright toegang authors.
//
// wire_frame_fuzzer: one frame of the socket protocol (schemas/wire.fbs, without its
// length prefix), as the sidecar's frame handler receives it.
//
// Properties: the answer is always a Response frame that passes the Verifier; a frame
// the Verifier refuses gets an error and no decision; an answer carries an error or a
// decision, never both; an answer to a readable frame repeats its id; a decision keeps
// the invariants (a permit has a legal basis, its rule and one reason). Reads out of
// bounds of an accepted frame are caught by ASan.
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "engine/sidecar/service.h"
#include "fuzz/fuzz_support.h"
#include "model/bsn.h"
#include "schemas/wire_generated.h"

using toegang::fuzz::AsText;
namespace w = ::toegang::wire;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static toegang::Engine* const engine = toegang::fuzz::NewScenarioEngine(/*access_log=*/false).release();
  static toegang::sidecar::Service* const service = new toegang::sidecar::Service(
      engine, toegang::sidecar::Limits{}, [] { return toegang::BuiltinPolicy("wgbo-default"); });

  const std::string answer = service->DecideFrame(AsText(data, size));

  // An aligned copy of the answer, as a client reads it.
  std::vector<uint64_t> aligned(answer.size() / 8 + 1);
  std::memcpy(aligned.data(), answer.data(), answer.size());
  const uint8_t* bytes = reinterpret_cast<const uint8_t*>(aligned.data());
  flatbuffers::Verifier answer_verifier(bytes, answer.size());
  FUZZ_CHECK(answer_verifier.VerifyBuffer<w::Response>(nullptr), "the answer is not a valid Response frame");
  const w::Response* response = flatbuffers::GetRoot<w::Response>(bytes);
  const bool has_error = response->error() != nullptr && response->error()->size() > 0;
  FUZZ_CHECK(!has_error || !toegang::ContainsBsn(response->error()->str()), "an error frame repeats a BSN (API.md)");
  FUZZ_CHECK(has_error || response->decision() != nullptr, "an answer with neither an error nor a decision");
  FUZZ_CHECK(!has_error || response->decision() == nullptr || !response->decision()->permitted(),
             "an answer carrying an error permitted");

  // Was the frame readable?
  std::vector<uint64_t> in(size / 8 + 1);
  if (size > 0) std::memcpy(in.data(), data, size);
  const uint8_t* frame = reinterpret_cast<const uint8_t*>(in.data());
  flatbuffers::Verifier verifier(frame, size, 64, 10000);
  const bool readable = size <= service->limits().max_frame_bytes && w::VerifyRequestBuffer(verifier);
  if (!readable) {
    FUZZ_CHECK(has_error && response->decision() == nullptr, "a frame the Verifier refuses got a decision");
    FUZZ_CHECK(response->id() == 0, "an unreadable frame's answer claims an id");
    return 0;
  }
  FUZZ_CHECK(response->id() == w::GetRequest(frame)->id(), "the answer does not repeat the request's id");

  if (const w::Decision* d = response->decision()) {
    const size_t reasons = d->reasons() ? d->reasons()->size() : 0;
    if (d->permitted()) {
      FUZZ_CHECK(d->legal_basis() >= 0, "a permit without a legal basis");
      FUZZ_CHECK(d->rule() != nullptr && d->rule()->size() > 0, "a permit without its rule");
      FUZZ_CHECK(reasons == 1, "a permit gives exactly its rule's reason");
    } else {
      FUZZ_CHECK(reasons > 0, "a deny without a reason");
      FUZZ_CHECK(d->legal_basis() == -1, "a deny with a legal basis");
    }
  }
  return 0;
}
