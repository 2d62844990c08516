// Copyright toegang authors.
//
// fuzz_support.h: what every fuzz target shares — the check that turns a broken
// property into a finding, the scenario engine decisions are made against, and the
// invariants every decision must keep.
//
//   extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
//     absl::string_view input = toegang::fuzz::AsText(data, size);
//     ...
//     FUZZ_CHECK(!d.permitted(), "a request that failed to parse was permitted");
//   }
#ifndef TOEGANG_FUZZ_FUZZ_SUPPORT_H_
#define TOEGANG_FUZZ_FUZZ_SUPPORT_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "absl/strings/string_view.h"
#include "engine/toegang.h"
#include "model/facts.h"
#include "model/request.h"

// A broken property: prints where and what, then aborts (libFuzzer records the input).
#define FUZZ_CHECK(cond, what)                                        \
  do {                                                                \
    if (!(cond)) ::toegang::fuzz::Fail(__FILE__, __LINE__, #cond, what); \
  } while (0)

namespace toegang::fuzz {

[[noreturn]] void Fail(const char* file, int line, const char* condition, absl::string_view what);

inline absl::string_view AsText(const uint8_t* data, size_t size) {
  return absl::string_view(reinterpret_cast<const char*>(data), size);
}

// The facts of fuzz/scenario.jsonl (every DOMAIN case's facts), parsed once.
const std::vector<Fact>& ScenarioFacts();

// A new in-memory engine holding the scenario, deciding by wgbo-default. Facts count
// from their `from` (no arrival clock), so the consent rules are reachable. With
// `access_log`, decisions are logged (buffered, in memory: the log grows, so a target
// that keeps one engine for many inputs should replace it now and then).
std::unique_ptr<Engine> NewScenarioEngine(bool access_log);

// Requests that reach permits and denies through the main rules (from the DOMAIN
// cases), for targets that decide after changing the policy or the store.
const std::vector<AccessRequest>& ProbeRequests();

// What every decision must satisfy: an error is never a permit; a permit names its
// rule, its one reason and its legal basis; a deny has a reason and no legal basis.
void CheckDecision(const Decision& d);

}  // namespace toegang::fuzz

#endif  // TOEGANG_FUZZ_FUZZ_SUPPORT_H_
