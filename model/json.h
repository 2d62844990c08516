// Copyright toegang authors.
//
// json.h: the strict JSON form of facts, requests and decisions (API.md).
//
// Parsing is strict: unknown fields, unknown enum values, missing required fields,
// malformed instants or dates, ids outside 1..128 bytes and oversized input are errors
// (absl::InvalidArgumentError) whose message names the field, e.g.
//   "consent.purposes[1]: unknown purpose 'marketing'".
// Errors never quote an id that looks like a BSN (a Dutch citizen service number).
// Every function is thread-safe (no shared state).
//
// Example:
//
//   absl::StatusOr<Fact> fact = ParseFactJson(line);
//   if (!fact.ok()) { report(fact.status()); }
//   std::string out = DecisionToJson(decision, "dec-42");
#ifndef TOEGANG_MODEL_JSON_H_
#define TOEGANG_MODEL_JSON_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "model/facts.h"
#include "model/request.h"
#include "nlohmann/json.hpp"

namespace toegang {

// Inputs larger than this are refused before parsing.
inline constexpr size_t kMaxJsonLineBytes = 64 * 1024;
// Free text (evidence, reason, justification, legal order) is at most this long.
inline constexpr size_t kMaxTextBytes = 4096;
// A consistency token is far shorter ("tg1." + 32 hex digits + "." + a number).
inline constexpr size_t kMaxTokenBytes = 128;

// One fact (one JSON Lines line). `recorded_at`, when given, lands in provenance.
// The facts of JSON Lines `text`, one per line (blank lines skipped), each with the
// number of its line. A bad line is InvalidArgument "line N: ..." with N as data
// (model/facts.h LineOf); more than `max_facts` is ResourceExhausted. What the CLI's
// files and the sidecar's POST /v1/facts bodies are read with.
struct FactLines {
  std::vector<Fact> facts;
  std::vector<int> lines;
};
absl::StatusOr<FactLines> ParseFactLines(absl::string_view text, size_t max_facts = SIZE_MAX);

absl::StatusOr<Fact> ParseFactJson(absl::string_view text);
absl::StatusOr<Fact> ParseFact(const nlohmann::json& value);

// The fact as one JSON line, in API.md's shape. With `with_provenance`, adds the
// store's "seq" and "arrival" (and keeps "recorded_at" when it was given).
std::string FactToJson(const Fact& fact, bool with_provenance);

// One access request.
absl::StatusOr<AccessRequest> ParseRequestJson(absl::string_view text);

// The request in `text` if it has the usual shape (string members; at, actor {id,
// role, organization}, patient, action, category, purpose, each once; printable ASCII,
// no escapes) and is valid: read without building a tree, the same request
// ParseRequestJson gives. nullopt for anything else, which is then read the full way.
std::optional<AccessRequest> UsualRequestJson(absl::string_view text);
absl::StatusOr<AccessRequest> ParseRequest(const nlohmann::json& value);
nlohmann::json RequestToJsonValue(const AccessRequest& request);
// A request about no one patient, as `POST /v1/actors/{id}/patients` takes it (API.md):
// at, role, organization, action (default read), category (default medical), purpose
// (default treatment), emergency, legal_order, recipient, for `actor`. The fields in `passed_over` are the caller's to read (page_size, cursor);
// any other unknown field is refused by name.
absl::StatusOr<AccessRequest> ParseActorRequest(const nlohmann::json& value, absl::string_view actor,
                                                absl::Span<const absl::string_view> passed_over);

// The decision as API.md shows it. `decision_id` may be empty (then omitted).
nlohmann::json DecisionToJsonValue(const Decision& decision, absl::string_view decision_id);
std::string DecisionToJson(const Decision& decision, absl::string_view decision_id);
// What a listing says of each decision in it (grants, the patients an actor may open):
// {"rule","reasons","legal_basis","obligations","consents"}, as DecisionToJson says them.
nlohmann::json DecisionGroundsJson(const Decision& decision);

// The answer to a request that could not be parsed: deny, invalid_request, the error.
std::string InvalidRequestJson(absl::string_view error);

// Parses JSON strictly: at most `max_bytes`, no duplicate keys in any object.
absl::StatusOr<nlohmann::json> ParseJsonStrict(absl::string_view text, size_t max_bytes = kMaxJsonLineBytes);

// Checks an id as every parser does (1..128 bytes of UTF-8, no control characters, no BSN);
// the message names `field`.
absl::Status CheckId(absl::string_view id, absl::string_view field);

// Checks free text that did not come through the JSON parser (a frame's justification,
// say): valid UTF-8, at most `max_bytes`; the message names `field`.
absl::Status CheckText(absl::string_view text, absl::string_view field, size_t max_bytes = kMaxTextBytes);

// True if `s` is well-formed UTF-8 (no overlong forms, surrogates or code points past
// U+10FFFF). Every id and text toegang stores is; JSON input always is.
bool IsValidUtf8(absl::string_view s);

// `value` as compact JSON text. Never throws: a string that is not UTF-8 (which the
// parsers refuse, so this is a last defence) is written with U+FFFD in its place.
std::string JsonText(const nlohmann::json& value);

// Appends `s` as a JSON string (quoted, escaped; bytes that are not UTF-8 replaced), for
// writers that build their text by hand on a hot path.
void AppendJsonString(std::string* out, absl::string_view s);


}  // namespace toegang

#endif  // TOEGANG_MODEL_JSON_H_
