// Copyright toegang authors.
#include "fuzz/fuzz_support.h"

#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/strings/str_split.h"
#include "model/json.h"

namespace toegang::fuzz {
namespace {

constexpr const char kScenario[] =
#include "fuzz/scenario.inc"
    ;

// Built once: a fuzzer whose setup is broken must say so, not fuzz nothing.
template <typename T>
T OrDie(absl::StatusOr<T> v, absl::string_view what) {
  if (!v.ok()) {
    std::fprintf(stderr, "fuzz setup: %.*s: %s\n", static_cast<int>(what.size()), what.data(),
                 std::string(v.status().message()).c_str());
    std::abort();
  }
  return *std::move(v);
}

}  // namespace

void Fail(const char* file, int line, const char* condition, absl::string_view what) {
  std::fprintf(stderr, "\n%s:%d: property broken: %.*s\n  (%s)\n", file, line, static_cast<int>(what.size()),
               what.data(), condition);
  std::abort();
}

const std::vector<Fact>& ScenarioFacts() {
  static const std::vector<Fact>* facts = [] {
    auto* out = new std::vector<Fact>;
    for (absl::string_view line : absl::StrSplit(kScenario, '\n', absl::SkipWhitespace())) {
      out->push_back(OrDie(ParseFactJson(line), line));
    }
    return out;
  }();
  return *facts;
}

std::unique_ptr<Engine> NewScenarioEngine(bool access_log) {
  Options options;
  options.clock = NoArrivalClock;
  if (access_log) {
    AuditOptions audit;
    audit.mode = AuditMode::kBuffered;
    options.audit = audit;
  } else {
    options.audit = std::nullopt;
  }
  std::unique_ptr<Engine> engine = OrDie(Engine::Open(std::move(options)), "opening the scenario engine");
  OrDie(engine->Record(ScenarioFacts()), "recording the scenario");
  return engine;
}

const std::vector<AccessRequest>& ProbeRequests() {
  static const std::vector<AccessRequest>* requests = [] {
    // One permit and one deny per main rule family (DOMAIN E1-E14 and D-cases).
    const char* const kProbes[] = {
        R"({"at":"2026-03-10T10:00:00+01:00","actor":{"id":"clin-1","role":"clinician","organization":"praktijk-a"},"patient":"pat-1","action":"read","category":"medical","purpose":"treatment"})",
        R"({"at":"2026-03-10T10:00:00+01:00","actor":{"id":"clin-2","role":"clinician","organization":"praktijk-b"},"patient":"pat-1","action":"read","category":"medical","purpose":"treatment"})",
        R"({"at":"2026-03-10T10:00:00+01:00","actor":{"id":"pat-1","role":"patient"},"patient":"pat-1","action":"read","category":"medical","purpose":"treatment"})",
        R"({"at":"2026-03-10T10:00:00+01:00","actor":{"id":"ins-1","role":"insurer","organization":"zorgverzekeraar"},"patient":"pat-1","action":"read","category":"medical","purpose":"billing"})",
        R"({"at":"2026-03-10T10:00:00+01:00","actor":{"id":"clin-9","role":"clinician","organization":"seh"},"patient":"pat-1","action":"read","category":"medical","purpose":"emergency","emergency":{"justification":"bewusteloos binnengebracht"}})",
        R"({"at":"2026-03-10T10:00:00+01:00","actor":{"id":"res-1","role":"researcher","organization":"umc"},"patient":"pat-1","action":"export","category":"medical","purpose":"research"})",
    };
    auto* out = new std::vector<AccessRequest>;
    for (const char* probe : kProbes) out->push_back(OrDie(ParseRequestJson(probe), probe));
    return out;
  }();
  return *requests;
}

void CheckDecision(const Decision& d) {
  if (d.permitted()) {
    FUZZ_CHECK(d.error.empty(), "a decision with an error was a permit");
    FUZZ_CHECK(d.legal_basis.has_value(), "a permit without a legal basis");
    FUZZ_CHECK(!d.rule.empty(), "a permit without the rule that gave it");
    FUZZ_CHECK(d.reasons.size() == 1, "a permit gives exactly its rule's reason");
  } else {
    FUZZ_CHECK(!d.reasons.empty(), "a deny without a reason");
    FUZZ_CHECK(!d.legal_basis.has_value(), "a deny with a legal basis");
    FUZZ_CHECK(d.consents.empty(), "a deny relying on consents");
  }
}

}  // namespace toegang::fuzz
