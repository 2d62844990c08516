// Copyright toegang authors.
//
// policy_pack_fuzzer: a policy pack's text (docs/policy-format.md), as `toegang policy
// check`, --policy and a reload compile it.
//
// Properties: compiling agrees with checking (a pack compiles iff `policy check`
// reports no error and no warning), every finding has a message and a line inside the
// pack, and a compiled pack decides the probe requests citing itself and keeping the
// decision invariants.
#include <algorithm>
#include <cstdint>
#include <string>

#include "fuzz/fuzz_support.h"
#include "policy/policy.h"

using toegang::fuzz::AsText;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static toegang::Engine* const engine = toegang::fuzz::NewScenarioEngine(/*access_log=*/false).release();
  absl::string_view text = AsText(data, size);

  std::vector<toegang::PolicyDiagnostic> findings = toegang::CheckPolicy(text);
  const int lines = static_cast<int>(std::count(text.begin(), text.end(), '\n')) + 1;
  bool usable = true;
  for (const toegang::PolicyDiagnostic& d : findings) {
    FUZZ_CHECK(!d.message.empty(), "a policy finding without a message");
    FUZZ_CHECK(d.line >= 0 && d.line <= lines, "a policy finding points outside the pack");
    if (d.severity != toegang::PolicyDiagnostic::Severity::kNote) usable = false;
  }

  absl::StatusOr<std::shared_ptr<const toegang::Policy>> policy = toegang::CompilePolicy(text);
  FUZZ_CHECK(policy.ok() == usable, "CompilePolicy and CheckPolicy disagree on whether the pack is usable");
  if (!policy.ok()) {
    FUZZ_CHECK(!policy.status().message().empty(), "a refused pack without a message");
    return 0;
  }
  FUZZ_CHECK((*policy)->source() == text, "a compiled pack does not keep its text");
  FUZZ_CHECK(!(*policy)->name().empty() && (*policy)->id().find('@') != absl::string_view::npos,
             "a compiled pack without a name@version id");

  // Decide with it, as the engine does after a reload: the decision cites this pack.
  engine->SetPolicy(*policy);
  for (const toegang::AccessRequest& probe : toegang::fuzz::ProbeRequests()) {
    toegang::EngineDecision d = engine->Decide(probe);
    toegang::fuzz::CheckDecision(d.decision);
    FUZZ_CHECK(d.decision.policy == (*policy)->id(), "a decision does not cite the pack it was made by");
  }
  return 0;
}
