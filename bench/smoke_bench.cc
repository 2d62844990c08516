// Baselines for the other benchmarks: the civil-day conversion every decision makes
// (DOMAIN D4: age on the civil date of `at` in Europe/Amsterdam), and the JSON a request
// and its answer cost at the CLI and the HTTP front.
#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "benchmark/benchmark.h"
#include "model/json.h"

namespace {

void BM_ToCivilDayAmsterdam(benchmark::State& state) {
  absl::TimeZone ams;
  if (!absl::LoadTimeZone("Europe/Amsterdam", &ams)) {
    state.SkipWithError("no tzdata for Europe/Amsterdam");
    return;
  }
  absl::Time t = absl::FromUnixSeconds(1779400000);
  for (auto _ : state) {
    benchmark::DoNotOptimize(absl::ToCivilDay(t, ams));
    t += absl::Minutes(7);
  }
}
BENCHMARK(BM_ToCivilDayAmsterdam);

constexpr char kRequest[] =
    R"({"action":"read","actor":{"id":"clin-334","role":"clinician"},"at":"2026-06-15T08:30:00Z",)"
    R"("category":"medical","patient":"pat-65334","purpose":"treatment"})";

void BM_ParseRequestJson(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(toegang::ParseRequestJson(kRequest));
}
BENCHMARK(BM_ParseRequestJson);

void BM_DecisionToJson(benchmark::State& state) {
  toegang::Decision d;
  d.policy = "wgbo-default@1";
  d.rule = "treating_clinician";
  d.reasons = {toegang::Reason::kTreatingRelationship};
  d.obligations = {toegang::Obligation::kLogAccess};
  for (auto _ : state) benchmark::DoNotOptimize(toegang::DecisionToJson(d, "57b2cbd2-1"));
}
BENCHMARK(BM_DecisionToJson);

}  // namespace
