// Copyright toegang authors.
//
// The evaluator on a realistic mix (issue: the decision engine), facts in memory:
// clinicians treating and substituting, parents of every age band, consents for
// referral, insurers, emergencies, researchers, employers. Reports per-decision p50 and
// p99 latency (each decision timed alone, timer overhead subtracted) and heap
// allocations per decision (global operator new counted).
//
//   ./run bench BM_Decide        (or bazel run -c opt //bench:decide_bench)
#include <algorithm>
#include <atomic>
#include <chrono>
#include <map>
#include <cstdlib>
#include <new>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/civil_time.h"
#include "base/testing/allocation_count.h"
#include "benchmark/benchmark.h"
#include "model/fact_index.h"
#include "model/time.h"
#include "model/json.h"
#include "policy/evaluator.h"
#include "policy/explain.h"
#include "policy/grants.h"

namespace toegang {
namespace {

absl::Time T(absl::CivilSecond cs) { return absl::FromCivil(cs, Amsterdam()); }

struct Scenario {
  AccessRequest request;
  const PatientRecord* record;
  const std::vector<Stored<Relationship>>* subs;
};

struct World {
  FactIndex index;
  std::vector<PatientRecord> records;
  std::vector<std::vector<Stored<Relationship>>> subs;
  std::vector<Scenario> scenarios;
};

Fact F(FactBody body) { return Fact{std::move(body), {}}; }

// kPatients patients in four bands, each with a treating clinician, a parent with
// gezag for minors, a referral consent, and for some an objection or a restriction.
World* BuildWorld() {
  constexpr int kPatients = 2000;
  auto* w = new World;
  std::vector<Fact> facts;
  const absl::Time year_start = T(absl::CivilSecond(2026, 1, 1, 0, 0, 0));
  for (int i = 0; i < kPatients; ++i) {
    std::string p = absl::StrCat("pat-", i);
    int birth_year = (i % 4 == 0) ? 2018 : (i % 4 == 1) ? 2012 : (i % 4 == 2) ? 2009 : 1975;
    facts.push_back(F(Person{p, absl::CivilDay(birth_year, 1 + i % 12, 1 + i % 28), std::nullopt}));
    facts.push_back(F(Relationship{absl::StrCat("rel-t-", i), absl::StrCat("clin-", i % 50), Relation::kTreating, p, {year_start, absl::InfiniteFuture()}}));
    facts.push_back(F(Relationship{absl::StrCat("rel-p-", i), absl::StrCat("par-", i), Relation::kParentWithAuthority, p, {}}));
    facts.push_back(F(Relationship{absl::StrCat("rel-r-", i), "praktijk-a", Relation::kRegisteredWith, p, {}}));
    Consent c;
    c.id = absl::StrCat("con-", i);
    c.patient = p;
    c.granted_by = {p};
    c.to = Party{Party::Kind::kActor, "clin-ref", Role::kPatient};
    c.purposes = {Purpose::kReferral};
    c.categories = {Category::kMedical, Category::kIntake};
    c.actions = {Action::kRead, Action::kDisclose};
    c.window = {year_start, absl::InfiniteFuture()};
    facts.push_back(F(c));
    if (i % 10 == 0) {
      Objection o;
      o.id = absl::StrCat("obj-", i);
      o.patient = p;
      o.by = p;
      o.purposes = {Purpose::kResearch};
      o.window = {year_start, absl::InfiniteFuture()};
      facts.push_back(F(o));
    }
  }
  for (int c = 0; c < 50; ++c) {
    facts.push_back(F(Relationship{absl::StrCat("sub-", c), absl::StrCat("clin-sub-", c), Relation::kSubstituteFor,
                                   absl::StrCat("clin-", c), {year_start, absl::InfiniteFuture()}}));
  }
  if (!w->index.Append(facts).ok()) std::abort();
  w->records.reserve(kPatients);
  for (int i = 0; i < kPatients; ++i) w->records.push_back(w->index.RecordFor(absl::StrCat("pat-", i)));
  w->subs.resize(52);
  for (int c = 0; c < 50; ++c) w->subs[c] = w->index.SubstitutionsOf(absl::StrCat("clin-sub-", c));

  const absl::Time at = T(absl::CivilSecond(2026, 6, 15, 10, 30, 0));
  auto req = [&](std::string actor, Role role, int patient, Action a, Category cat, Purpose pur) {
    AccessRequest r;
    r.at = at;
    r.actor = {std::move(actor), role, role == Role::kAssistant || role == Role::kAdministrator ? "praktijk-a" : ""};
    r.patient = absl::StrCat("pat-", patient);
    r.action = a;
    r.category = cat;
    r.purpose = pur;
    return r;
  };
  static const std::vector<Stored<Relationship>> kNone;
  for (int i = 0; i < kPatients; ++i) {
    const PatientRecord* rec = &w->records[i];
    // The common paths, weighted like a GP platform's traffic.
    for (int k = 0; k < 4; ++k) {
      w->scenarios.push_back({req(absl::StrCat("clin-", i % 50), Role::kClinician, i, Action::kRead, Category::kMedical, Purpose::kTreatment), rec, &kNone});
    }
    w->scenarios.push_back({req(absl::StrCat("clin-sub-", i % 50), Role::kClinician, i, Action::kRead, Category::kMedical, Purpose::kTreatment), rec, &w->subs[i % 50]});
    w->scenarios.push_back({req(absl::StrCat("par-", i), Role::kParent, i, Action::kRead, Category::kMedical, Purpose::kPatientRequest), rec, &kNone});
    w->scenarios.push_back({req("clin-ref", Role::kClinician, i, Action::kRead, Category::kMedical, Purpose::kReferral), rec, &kNone});
    w->scenarios.push_back({req("ass-1", Role::kAssistant, i, Action::kRead, Category::kContact, Purpose::kTreatment), rec, &kNone});
    w->scenarios.push_back({req("ins-1", Role::kInsurer, i, Action::kRead, i % 2 ? Category::kFinancial : Category::kMedical, Purpose::kBilling), rec, &kNone});
    AccessRequest e = req("clin-er", Role::kClinician, i, Action::kRead, Category::kMedical, Purpose::kEmergency);
    e.emergency = true;
    e.emergency_justification = "unconscious at the emergency department";
    w->scenarios.push_back({e, rec, &kNone});
    w->scenarios.push_back({req("res-1", Role::kResearcher, i, Action::kRead, Category::kMedical, Purpose::kResearch), rec, &kNone});
    w->scenarios.push_back({req("emp-1", Role::kEmployer, i, Action::kRead, Category::kContact, Purpose::kTreatment), rec, &kNone});
    w->scenarios.push_back({req(absl::StrCat("clin-", (i + 1) % 50), Role::kClinician, i, Action::kRead, Category::kMedical, Purpose::kTreatment), rec, &kNone});
  }
  // Shuffle deterministically so branch predictors see a mix.
  uint64_t s = 42;
  for (size_t k = w->scenarios.size() - 1; k > 0; --k) {
    s = s * 6364136223846793005ULL + 1442695040888963407ULL;
    std::swap(w->scenarios[k], w->scenarios[(s >> 33) % (k + 1)]);
  }
  return w;
}

World& TheWorld() {
  static World* w = BuildWorld();
  return *w;
}

void Report(benchmark::State& state, std::vector<int64_t>& ns, uint64_t allocations, uint64_t decisions,
            uint64_t permits) {
  std::sort(ns.begin(), ns.end());
  state.counters["p50_ns"] = static_cast<double>(ns[ns.size() / 2]);
  state.counters["p99_ns"] = static_cast<double>(ns[ns.size() * 99 / 100]);
  state.counters["allocs_per_decision"] = static_cast<double>(allocations) / static_cast<double>(decisions);
  state.counters["permit_share"] = static_cast<double>(permits) / static_cast<double>(decisions);
}

int64_t TimerOverheadNs() {
  std::vector<int64_t> v(10000);
  for (auto& x : v) {
    auto a = std::chrono::steady_clock::now();
    auto b = std::chrono::steady_clock::now();
    x = std::chrono::duration_cast<std::chrono::nanoseconds>(b - a).count();
  }
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Each decision timed alone: p50/p99 of the mix.
void BM_DecideMixLatency(benchmark::State& state) {
  World& w = TheWorld();
  std::shared_ptr<const Policy> policy = *BuiltinPolicy("wgbo-default");
  const int64_t overhead = TimerOverheadNs();
  std::vector<int64_t> ns;
  ns.reserve(1 << 20);
  size_t i = 0;
  uint64_t permits = 0, decisions = 0;
  uint64_t allocs_before = testing::AllocationsSoFar();
  for (auto _ : state) {
    const Scenario& s = w.scenarios[i];
    if (++i == w.scenarios.size()) i = 0;
    auto a = std::chrono::steady_clock::now();
    Decision d = Evaluate(*policy, s.request, *s.record, *s.subs);
    auto b = std::chrono::steady_clock::now();
    benchmark::DoNotOptimize(d);
    permits += d.permitted();
    ++decisions;
    if (ns.size() < ns.capacity()) {
      ns.push_back(std::max<int64_t>(0, std::chrono::duration_cast<std::chrono::nanoseconds>(b - a).count() - overhead));
    }
  }
  uint64_t allocs = testing::AllocationsSoFar() - allocs_before;
  Report(state, ns, allocs, decisions, permits);
  state.counters["timer_overhead_ns"] = static_cast<double>(overhead);
}
BENCHMARK(BM_DecideMixLatency);

// Throughput of the same mix, untimed per call (mean ns per decision).
void BM_DecideMixThroughput(benchmark::State& state) {
  World& w = TheWorld();
  std::shared_ptr<const Policy> policy = *BuiltinPolicy("wgbo-default");
  size_t i = 0;
  for (auto _ : state) {
    const Scenario& s = w.scenarios[i];
    if (++i == w.scenarios.size()) i = 0;
    benchmark::DoNotOptimize(Evaluate(*policy, s.request, *s.record, *s.subs));
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_DecideMixThroughput);

// What a caller of the mix gets: the decision and its JSON.
void BM_DecideMixJson(benchmark::State& state) {
  World& w = TheWorld();
  std::shared_ptr<const Policy> policy = *BuiltinPolicy("wgbo-default");
  size_t i = 0;
  for (auto _ : state) {
    const Scenario& s = w.scenarios[i];
    if (++i == w.scenarios.size()) i = 0;
    benchmark::DoNotOptimize(DecisionToJson(Evaluate(*policy, s.request, *s.record, *s.subs), "d-1"));
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_DecideMixJson);

// The mix's substitutions as the facts on the actor's side (no organisation categories).
struct SubstitutionsAtHand final : ActorFactSource {
  explicit SubstitutionsAtHand(absl::Span<const Stored<Relationship>> s) : subs(s) {}
  absl::Span<const Stored<Relationship>> Substitutions() override { return subs; }
  absl::Span<const Stored<OrgCategory>> CategoriesOf(absl::string_view) override { return {}; }
  absl::Span<const Stored<Relationship>> subs;
};

// The same, explained (policy/explain.h): the trace alone, then with its JSON. The
// budget: explaining at most doubles what a caller waits for (BM_DecideMixJson).
void DecideMixExplained(benchmark::State& state, bool with_json) {
  World& w = TheWorld();
  std::shared_ptr<const Policy> policy = *BuiltinPolicy("wgbo-default");
  size_t i = 0;
  Explanation why;
  for (auto _ : state) {
    const Scenario& s = w.scenarios[i];
    if (++i == w.scenarios.size()) i = 0;
    SubstitutionsAtHand at_hand(*s.subs);
    Decision d = EvaluateExplained(*policy, s.request, *s.record, at_hand, &why);
    if (with_json) {
      benchmark::DoNotOptimize(WithExplanation(DecisionToJson(d, "d-1"), ExplanationJson(*policy, d, why)));
    } else {
      benchmark::DoNotOptimize(d);
    }
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_DecideMixExplained(benchmark::State& state) { DecideMixExplained(state, /*with_json=*/false); }
BENCHMARK(BM_DecideMixExplained);

void BM_DecideMixExplainedJson(benchmark::State& state) { DecideMixExplained(state, /*with_json=*/true); }
BENCHMARK(BM_DecideMixExplainedJson);

// Who may read one patient's medical record (policy/grants.h), the GP-shaped patients
// of the mix: every candidate decided, and each grant's valid_until found by deciding
// at the instants the facts change. state.range(0): 1 for one purpose (treatment), 0
// for every purpose. Budget: p99 <= 50 us for one patient.
void BM_Grants(benchmark::State& state) {
  World& w = TheWorld();
  std::shared_ptr<const Policy> policy = *BuiltinPolicy("wgbo-default");
  struct Sources final : GrantSources {
    explicit Sources(const FactIndex& i) : index(i) {}
    absl::Span<const Stored<Relationship>> SubstitutionsOf(absl::string_view actor) override {
      auto [it, fresh] = subs.try_emplace(std::string(actor));
      if (fresh) it->second = index.SubstitutionsOf(actor);
      return it->second;
    }
    absl::Span<const Stored<OrgCategory>> CategoriesOf(absl::string_view) override { return {}; }
    const FactIndex& index;
    std::map<std::string, std::vector<Stored<Relationship>>> subs;
  } sources(w.index);
  GrantsQuery q{T(absl::CivilSecond(2026, 6, 15, 10, 30, 0)), Action::kRead, Category::kMedical, std::nullopt};
  if (state.range(0) == 1) q.purpose = Purpose::kTreatment;
  std::vector<int64_t> ns;
  ns.reserve(1 << 20);
  size_t i = 0, listed = 0;
  for (auto _ : state) {
    const PatientRecord& rec = w.records[i++ % w.records.size()];
    const auto a = std::chrono::steady_clock::now();
    GrantList list = ListGrants(*policy, rec, q, sources);
    const auto b = std::chrono::steady_clock::now();
    listed += list.grants.size();
    benchmark::DoNotOptimize(list);
    if (ns.size() < ns.capacity()) ns.push_back(std::chrono::duration_cast<std::chrono::nanoseconds>(b - a).count());
  }
  std::sort(ns.begin(), ns.end());
  if (!ns.empty()) {
    state.counters["p50_us"] = static_cast<double>(ns[ns.size() / 2]) / 1000;
    state.counters["p99_us"] = static_cast<double>(ns[ns.size() * 99 / 100]) / 1000;
  }
  state.counters["grants"] = state.iterations() ? static_cast<double>(listed) / state.iterations() : 0;
}
BENCHMARK(BM_Grants)->ArgName("one_purpose")->Arg(1)->Arg(0);

// The most common path alone: a treating clinician reads medical data.
void BM_DecideTreatingClinician(benchmark::State& state) {
  World& w = TheWorld();
  std::shared_ptr<const Policy> policy = *BuiltinPolicy("wgbo-default");
  AccessRequest r;
  r.at = T(absl::CivilSecond(2026, 6, 15, 10, 30, 0));
  r.actor = {"clin-7", Role::kClinician, ""};
  r.patient = "pat-7";
  const std::vector<Stored<Relationship>> none;
  uint64_t allocs_before = testing::AllocationsSoFar();
  for (auto _ : state) benchmark::DoNotOptimize(Evaluate(*policy, r, w.records[7], none));
  state.counters["allocs_per_decision"] =
      static_cast<double>(testing::AllocationsSoFar() - allocs_before) / static_cast<double>(state.iterations());
}
BENCHMARK(BM_DecideTreatingClinician);

}  // namespace
}  // namespace toegang
