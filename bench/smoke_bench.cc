// A baseline for the other benchmarks: the cost of the civil-day conversion every
// decision makes (DOMAIN D4: age on the civil date of `at` in Europe/Amsterdam).
#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "benchmark/benchmark.h"

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

}  // namespace
