// Copyright toegang authors.
//
// request_json_fuzzer: a JSON access request (API.md "Decisions"), as the CLI and the
// sidecar parse it.
//
// Properties: the usual shape read straight from the text gives what the full reading
// (a tree) gives; a request that parses re-serializes to JSON that parses to the same
// request (and so to the same decision); a request that does not parse is answered with
// a deny `invalid_request` naming the problem, and no error message holds a BSN; free
// text that parses holds none either; every decision keeps the invariants of
// fuzz_support.h.
#include <cstdint>
#include <string>

#include "fuzz/fuzz_support.h"
#include "model/bsn.h"
#include "model/json.h"

using toegang::fuzz::AsText;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static toegang::Engine* const engine = toegang::fuzz::NewScenarioEngine(/*access_log=*/false).release();
  absl::string_view text = AsText(data, size);

  absl::StatusOr<toegang::AccessRequest> request = toegang::ParseRequestJson(text);
  // The usual shape is read straight from the text; it must agree with the full reading.
  absl::StatusOr<nlohmann::json> tree = toegang::ParseJsonStrict(text);
  absl::StatusOr<toegang::AccessRequest> full =
      tree.ok() ? toegang::ParseRequest(*tree) : absl::StatusOr<toegang::AccessRequest>(tree.status());
  FUZZ_CHECK(request.ok() == full.ok(), "the straight reading and the tree disagree on whether a request parses");
  FUZZ_CHECK(request.ok() ? toegang::RequestToJsonValue(*request) == toegang::RequestToJsonValue(*full)
                          : request.status() == full.status(),
             "the straight reading and the tree read a request differently");
  if (!request.ok()) {
    FUZZ_CHECK(!request.status().message().empty(), "a parse error without a message");
    FUZZ_CHECK(!toegang::ContainsBsn(request.status().message()), "an error message repeats a BSN (API.md)");
    nlohmann::json answer = nlohmann::json::parse(toegang::InvalidRequestJson(request.status().message()));
    FUZZ_CHECK(answer.at("decision") == "deny", "the answer to an unparsable request is not a deny");
    FUZZ_CHECK(answer.at("reasons") == nlohmann::json::array({"invalid_request"}),
               "the answer to an unparsable request does not say invalid_request");
    return 0;
  }

  FUZZ_CHECK(!toegang::ContainsBsn(request->emergency_justification) &&
                 !toegang::ContainsBsn(request->legal_order.value_or("")),
             "free text kept a BSN");
  // Re-serialize, re-parse: the same request.
  const nlohmann::json once = toegang::RequestToJsonValue(*request);
  absl::StatusOr<toegang::AccessRequest> again = toegang::ParseRequest(once);
  FUZZ_CHECK(again.ok(), "a parsed request, re-serialized, no longer parses");
  FUZZ_CHECK(toegang::RequestToJsonValue(*again) == once, "a request changed on a serialize/parse round trip");
  // ... and as text, the way a client would send it.
  absl::StatusOr<toegang::AccessRequest> from_text = toegang::ParseRequestJson(once.dump());
  FUZZ_CHECK(from_text.ok() && toegang::RequestToJsonValue(*from_text) == once,
             "a re-serialized request does not parse back from its text");

  // Both decide alike, and keep the decision invariants.
  toegang::EngineDecision first = engine->Decide(*request);
  toegang::EngineDecision second = engine->Decide(*again);
  toegang::fuzz::CheckDecision(first.decision);
  FUZZ_CHECK(toegang::DecisionToJson(first.decision, "") == toegang::DecisionToJson(second.decision, ""),
             "a request and its round-tripped copy were decided differently");
  return 0;
}
