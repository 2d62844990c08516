// Copyright toegang authors.
//
// case_corpus.h: tests/cases/domain_cases.json, and the doors a case can be decided
// through. Each door is a Decider; the corpus test (tests/domain_cases_test.cc) runs
// every case through every door (doors.h) and checks the same expectations, and
// policy/evaluator_test runs them through the evaluator's:
//
//   evaluator       Evaluate() over a FactIndex of the case's facts (no store, no log)
//   engine-memory   Engine::Open in memory: Record, then Decide
//   engine-rocksdb  the same on a fresh durable store
//   cli             `toegang decide --facts FILE [--policy P]`
//   http            `toegang serve --facts FILE`: POST /v1/decisions
//   frames          the same sidecar: the frame protocol over its Unix socket
//   fhir-round-trip Engine in memory after the consents and objections went out as FHIR
//                   (engine/fhir/fhir_read.h) and came back in (fhir_import.h)
//
// A case's facts have no arrival in any door (a store stamps them with none, as
// `decide --facts` does), so only their recorded_at limits them (DOMAIN D19).
#ifndef TOEGANG_TESTS_TESTING_CASE_CORPUS_H_
#define TOEGANG_TESTS_TESTING_CASE_CORPUS_H_

#include <memory>
#include <string>
#include <vector>

#include "model/facts.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"
#include "policy/policy.h"

namespace toegang::corpus {

struct Case {
  std::string name;
  std::vector<nlohmann::json> facts;  // the fact sets named, in order, then its own
  nlohmann::json request;
  // The policy: a built-in pack's name ("" for wgbo-default), or, for a variant
  // ('@name' in the file), the pack text that makes it.
  std::string policy_name;
  std::string policy_text;
  nlohmann::json expect;  // only the keys it has are checked
  // A case whose facts are refused when loaded: what the refusal must say ("" when the
  // facts load). From `expect`'s "load_error".
  std::string load_error;
};

// The answer of a door that refused the case's facts: {"load_error": message}.
nlohmann::json LoadRefused(absl::string_view message);

// Every case of tests/cases/domain_cases.json (from the test's runfiles).
std::vector<Case> LoadDomainCases();

// Checks a decision (the API's JSON) against the case: the keys of `expect`
// ("reasons_first": the first reason), and DOMAIN D1 — a permit carries a legal basis,
// a deny none and always a reason. For a case whose facts must be refused, that the
// door refused them saying so.
void ExpectDecision(const Case& c, const nlohmann::json& got);

// One door into toegang.
class Decider {
 public:
  virtual ~Decider() = default;
  virtual std::string name() const = 0;
  // Whether facts reach toegang through this door (the frame protocol only decides):
  // a case about facts refused at load is skipped by a door that records none.
  virtual bool records_facts() const { return true; }
  // The decision for the case's request over its facts, by its policy, as the API's
  // JSON. A door that fails (cannot start, cannot parse) returns null, with the failure
  // reported as a test failure.
  virtual nlohmann::json Decide(const Case& c) = 0;
};

// The case's policy (null, with a test failure, when it does not compile) and facts.
std::shared_ptr<const Policy> PolicyOf(const Case& c);
std::vector<Fact> FactsOf(const Case& c);

// The evaluator alone: Evaluate() over a FactIndex of the case's facts.
std::unique_ptr<Decider> NewEvaluatorDoor();

// The doors, in the order above: doors.h.

}  // namespace toegang::corpus

#endif  // TOEGANG_TESTS_TESTING_CASE_CORPUS_H_
