// Copyright toegang authors.
//
// fact_jsonl_fuzzer: one line of JSON Lines facts (API.md "Facts"), as `toegang load`
// and POST /v1/facts parse it, then the store's encoding of it, then recording it.
//
// Properties: a fact that parses re-serializes to a line that parses to the same fact;
// the store's FlatBuffer encoding decodes to the same fact; recording it is all or
// nothing (a refused fact leaves the store's sequence where it was, an accepted one
// moves it by one) and never changes a decision's invariants.
#include <cstdint>
#include <string>

#include "engine/facts/fact_codec.h"
#include "fuzz/fuzz_support.h"
#include "model/bsn.h"
#include "model/json.h"

using toegang::fuzz::AsText;

namespace {

constexpr int kRenewEvery = 5000;  // inputs per engine, so the store does not grow without bound

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static std::unique_ptr<toegang::Engine> engine;
  static int uses = 0;
  if (!engine || ++uses % kRenewEvery == 0) engine = toegang::fuzz::NewScenarioEngine(/*access_log=*/false);

  absl::StatusOr<toegang::Fact> fact = toegang::ParseFactJson(AsText(data, size));
  if (!fact.ok()) {
    FUZZ_CHECK(!fact.status().message().empty(), "a parse error without a message");
    FUZZ_CHECK(!toegang::ContainsBsn(fact.status().message()), "an error message repeats a BSN (API.md)");
    return 0;
  }

  // Text round trip.
  const std::string line = toegang::FactToJson(*fact, /*with_provenance=*/false);
  absl::StatusOr<toegang::Fact> again = toegang::ParseFactJson(line);
  FUZZ_CHECK(again.ok(), "a parsed fact, re-serialized, no longer parses");
  FUZZ_CHECK(toegang::FactToJson(*again, false) == line, "a fact changed on a serialize/parse round trip");

  // The store's encoding round trip (provenance included).
  const std::string full = toegang::FactToJson(*fact, /*with_provenance=*/true);
  absl::StatusOr<toegang::Fact> decoded = toegang::DecodeFact(toegang::EncodeFact(*fact, "pat-1"));
  FUZZ_CHECK(decoded.ok(), "the store cannot decode a fact it encoded");
  FUZZ_CHECK(toegang::FactToJson(*decoded, true) == full, "a fact changed on an encode/decode round trip");

  // Recording: all or nothing.
  const uint64_t before = engine->LastSequence();
  absl::StatusOr<uint64_t> last = engine->Record({*std::move(fact)});
  if (last.ok()) {
    FUZZ_CHECK(*last == before + 1 && engine->LastSequence() == before + 1,
               "recording one fact did not move the sequence by one");
  } else {
    FUZZ_CHECK(engine->LastSequence() == before, "a refused fact moved the store's sequence");
  }
  for (const toegang::AccessRequest& probe : toegang::fuzz::ProbeRequests()) {
    toegang::fuzz::CheckDecision(engine->Decide(probe).decision);
  }
  return 0;
}
