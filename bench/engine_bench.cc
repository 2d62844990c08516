// Copyright toegang authors.
//
// The facade a backend calls, Engine::Decide, on a store shaped like a GP platform's
// (bench/RESULTS.md "The engine a user calls"): per patient a person and a treating
// relationship (four in ten a second one; 85% of them in force), parents for minors (90%
// with gezag), objections of some 12-15 year olds against their parents, consents of
// 16+ children to a parent. Requests, cycled: clinicians reading (45%), parents (45%),
// insurers (10%).
//
// Each benchmark runs one engine: the memory store or RocksDB, the access log off,
// buffered or durable. It reports each call timed alone (p50, p99, p99.9, steady
// clock), heap allocations per decision (global operator new counted), and the mean of
// a pass without timers.
//
//   TOEGANG_BENCH_PATIENTS=100000 bazel-bin/bench/engine_bench   (default 100,000)
//
// The RocksDB store is generated once under /tmp/toegang-engine-bench-<patients>; each
// run opens a fresh copy of it (…-run).
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <new>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/civil_time.h"
#include "base/testing/allocation_count.h"
#include "benchmark/benchmark.h"
#include "engine/toegang.h"
#include "model/json.h"
#include "model/time.h"

namespace toegang {
namespace {

namespace fs = std::filesystem;

int Patients() {
  const char* n = std::getenv("TOEGANG_BENCH_PATIENTS");
  return n ? std::atoi(n) : 100000;
}

std::string Dir() { return absl::StrCat("/tmp/toegang-engine-bench-", Patients()); }

absl::Time T(int y, int m, int d) { return absl::FromCivil(absl::CivilSecond(y, m, d, 0, 0, 0), Amsterdam()); }

Fact F(FactBody b) { return Fact{std::move(b), {}}; }

// The patient's band by i: 20% under 12, 20% 12-15, 10% 16-17, 50% adults.
int BirthYear(int i) {
  switch (i % 10) {
    case 0: case 1: return 2016;
    case 2: case 3: return 2012;
    case 4: return 2009;
    default: return 1950 + i % 55;
  }
}

void GeneratePatient(int i, std::vector<Fact>* out) {
  const std::string p = absl::StrCat("pat-", i);
  const int birth_year = BirthYear(i);
  out->push_back(F(Person{p, absl::CivilDay(birth_year, 1 + i % 12, 1 + i % 28), std::nullopt}));
  // 85% of treating relationships in force on the requests' day.
  const bool ended = i % 20 < 3;
  out->push_back(F(Relationship{"", absl::StrCat("clin-", i % 5000), Relation::kTreating, p,
                                {T(2025, 1, 1), ended ? T(2026, 1, 1) : absl::InfiniteFuture()}}));
  if (i % 10 < 4) {
    out->push_back(F(Relationship{"", absl::StrCat("clin-", (i + 7) % 5000), Relation::kTreating, p,
                                  {T(2025, 6, 1), absl::InfiniteFuture()}}));
  }
  if (birth_year >= 2009) {
    const Relation parent = i % 10 == 9 ? Relation::kParentWithoutAuthority : Relation::kParentWithAuthority;
    out->push_back(F(Relationship{"", absl::StrCat("par-", i), i % 50 == 7 ? Relation::kParentWithoutAuthority : parent,
                                  p, {}}));
  }
  if (birth_year == 2012 && i % 40 == 2) {  // a 12-15 year old objects to the parents
    Objection o;
    o.id = absl::StrCat("obj-", i);
    o.patient = p;
    o.by = p;
    o.to = Party{Party::Kind::kActor, absl::StrCat("par-", i), Role::kPatient};
    o.purposes = {Purpose::kPatientRequest};
    o.window = {T(2026, 1, 1), absl::InfiniteFuture()};
    out->push_back(F(o));
  }
  if (birth_year == 2009 && i % 20 == 4) {  // a 16-17 year old lets a parent read
    Consent c;
    c.id = absl::StrCat("con-", i);
    c.patient = p;
    c.granted_by = {p};
    c.to = Party{Party::Kind::kActor, absl::StrCat("par-", i), Role::kPatient};
    c.purposes = {Purpose::kPatientRequest};
    c.categories = {Category::kMedical};
    c.actions = {Action::kRead};
    c.window = {T(2026, 1, 15), absl::InfiniteFuture()};
    out->push_back(F(c));
  }
}

std::vector<Fact> AllFacts(int from, int to) {
  std::vector<Fact> facts;
  for (int i = from; i < to; ++i) GeneratePatient(i, &facts);
  return facts;
}

// Creates the RocksDB store once (a marker file says it is complete), its files then
// compacted to the last level: as written, its first levels were compacted under every
// run that opened a copy of it, for 21 s at 1,000,000 patients, beside the reads being
// timed (bench/RESULTS.md, "The million-patient store compacting under the benchmark").
// A store made before that is compacted once too.
void EnsureStore() {
  const std::string marker = Dir() + ".complete";
  std::string state;
  if (std::ifstream in(marker); in) std::getline(in, state);
  if (state == "compacted") return;
  Options options;
  options.db_path = Dir();
  options.audit.reset();
  if (state != "ok") fs::remove_all(Dir());
  auto engine = Engine::Open(std::move(options));
  if (!engine.ok()) std::abort();
  if (state != "ok") {
    for (int start = 0; start < Patients(); start += 10000) {
      if (!(*engine)->Record(AllFacts(start, std::min(Patients(), start + 10000))).ok()) std::abort();
    }
  }
  if (!(*engine)->ScrubRemoved().ok()) std::abort();
  std::ofstream(marker) << "compacted\n";
}

std::vector<AccessRequest> Requests();

// The same requests as JSON Lines, for timing `toegang decide` on a copy of the store
// (bench/RESULTS.md has the command).
void EnsureRequestLines() {
  const std::string path = Dir() + "-requests.jsonl";
  if (fs::exists(path)) return;
  std::ofstream out(path + ".tmp");
  for (const AccessRequest& r : Requests()) out << JsonText(RequestToJsonValue(r)) << "\n";
  out.close();
  fs::rename(path + ".tmp", path);
}

// 200,000 requests on 2026-06-15: clinicians reading (45%), parents (45%), insurers (10%).
std::vector<AccessRequest> Requests() {
  std::vector<AccessRequest> out;
  const int n = Patients();
  uint64_t s = 42;
  const absl::Time at = absl::FromCivil(absl::CivilSecond(2026, 6, 15, 10, 30, 0), Amsterdam());
  for (int k = 0; k < 200000; ++k) {
    s = s * 6364136223846793005ULL + 1442695040888963407ULL;
    const int i = static_cast<int>((s >> 33) % static_cast<uint64_t>(n));
    const int kind = k % 20;
    AccessRequest r;
    r.at = at;
    r.patient = absl::StrCat("pat-", i);
    r.action = Action::kRead;
    if (kind < 9) {
      r.actor = {absl::StrCat("clin-", i % 5000), Role::kClinician, ""};
      r.category = Category::kMedical;
      r.purpose = Purpose::kTreatment;
    } else if (kind < 18) {
      r.actor = {absl::StrCat("par-", i), Role::kParent, ""};
      r.category = Category::kMedical;
      r.purpose = Purpose::kPatientRequest;
    } else {
      r.actor = {"ins-1", Role::kInsurer, "zorgverzekeraar-a"};
      r.category = Category::kFinancial;
      r.purpose = Purpose::kBilling;
    }
    out.push_back(std::move(r));
  }
  return out;
}

// The engine a benchmark runs: over a fresh copy of the generated RocksDB store, or a
// memory store loaded with the same facts. Null (the benchmark skipped) if it cannot open.
std::unique_ptr<Engine> OpenBenchEngine(benchmark::State& state, bool durable_store, Options options) {
  if (durable_store) {
    EnsureStore();
    EnsureRequestLines();
    // Each run opens a copy of the generated store, so that the access-log records of
    // earlier runs do not grow it from run to run.
    const std::string run = Dir() + "-run";
    fs::remove_all(run);
    fs::copy(Dir(), run, fs::copy_options::recursive);
    options.db_path = run;
    options.durable.create_if_missing = false;
  }
  absl::StatusOr<std::unique_ptr<Engine>> engine = Engine::Open(std::move(options));
  if (!engine.ok()) {
    state.SkipWithError(std::string(engine.status().message()).c_str());
    return nullptr;
  }
  if (!durable_store) {
    for (int start = 0; start < Patients(); start += 10000) {
      if (!(*engine)->Record(AllFacts(start, std::min(Patients(), start + 10000))).ok()) std::abort();
    }
  }
  return *std::move(engine);
}

// The machine's floor for one call at a time: a load that must wait for the one before
// it, over `state.range(0)` MiB in 64-byte lines linked in one random cycle, each step a
// miss (and, past what the TLB covers, a page walk). A decision on a random patient of
// a store larger than the caches waits for at least three such loads one after another
// (the table's slot, the record, the facts its rules read), so its single-call figures
// are read against this one, measured in the same run: absolute figures move several-fold
// between VMs (bench/RESULTS.md).
void BM_DependentLoadFloor(benchmark::State& state) {
  struct alignas(64) Line {
    const Line* next;
  };
  const size_t lines = static_cast<size_t>(state.range(0)) * (size_t{1} << 20) / sizeof(Line);
  std::vector<Line> memory(lines);
  // Sattolo's shuffle: one cycle through every line.
  std::vector<size_t> order(lines);
  for (size_t i = 0; i < lines; ++i) order[i] = i;
  uint64_t s = 42;
  for (size_t i = lines - 1; i > 0; --i) {
    s = s * 6364136223846793005ULL + 1442695040888963407ULL;
    std::swap(order[i], order[(s >> 33) % i]);
  }
  for (size_t i = 0; i < lines; ++i) memory[order[i]].next = &memory[order[(i + 1) % lines]];
  const Line* p = &memory[order[0]];
  for (auto _ : state) {
    p = p->next;
    benchmark::DoNotOptimize(p);
  }
  state.SetLabel(absl::StrCat("one dependent load over ", state.range(0), " MiB"));
}
BENCHMARK(BM_DependentLoadFloor)->ArgName("mib")->Arg(256)->MinTime(1.0);

// state.range(0): 0 memory store, 1 RocksDB. state.range(1): 0 log off, 1 buffered, 2
// durable, 3 log off and no record cache (RocksDB: every decision a cold patient).
void BM_EngineDecide(benchmark::State& state) {
  const bool durable_store = state.range(0) == 1;
  const bool cold = state.range(1) == 3;
  const int log = cold ? 0 : static_cast<int>(state.range(1));
  Options options;
  if (cold) options.durable.record_cache_bytes = 0;
  if (log == 0) {
    options.audit.reset();
  } else {
    options.audit->mode = log == 1 ? AuditMode::kBuffered : AuditMode::kDurable;
  }
  std::unique_ptr<Engine> engine = OpenBenchEngine(state, durable_store, std::move(options));
  if (engine == nullptr) return;
  const std::vector<AccessRequest> requests = Requests();
  uint64_t permits = 0;
  // Warm, in reverse: a store that builds what it caches while deciding would otherwise
  // lay the records out in the very order the timed pass reads them, which no real
  // request stream repeats.
  for (auto r = requests.rbegin(); r != requests.rend(); ++r) permits += engine->Decide(*r).decision.permitted();

  // Each call timed alone.
  std::vector<int64_t> ns;
  ns.reserve(1 << 21);
  size_t k = 0;
  const uint64_t allocations_before = testing::AllocationsSoFar();
  uint64_t timed = 0;
  for (auto _ : state) {
    const AccessRequest& r = requests[k++ % requests.size()];
    const auto a = std::chrono::steady_clock::now();
    EngineDecision d = engine->Decide(r);
    const auto b = std::chrono::steady_clock::now();
    benchmark::DoNotOptimize(d);
    if (ns.size() < ns.capacity()) ns.push_back(std::chrono::duration_cast<std::chrono::nanoseconds>(b - a).count());
    ++timed;
  }
  const uint64_t allocations = testing::AllocationsSoFar() - allocations_before;
  // A pass without timers: the mean cost of a decision.
  const size_t pass = std::min<size_t>(requests.size(), std::max<uint64_t>(timed, 20000));
  const auto start = std::chrono::steady_clock::now();
  for (size_t i = 0; i < pass; ++i) benchmark::DoNotOptimize(engine->Decide(requests[i]));
  const double mean_ns =
      static_cast<double>(std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - start)
                              .count()) /
      static_cast<double>(pass);
  std::sort(ns.begin(), ns.end());
  auto q = [&](double f) { return ns.empty() ? 0.0 : static_cast<double>(ns[static_cast<size_t>(f * (ns.size() - 1))]); };
  state.counters["p50_ns"] = q(0.5);
  state.counters["p99_ns"] = q(0.99);
  state.counters["p999_ns"] = q(0.999);
  state.counters["mean_ns"] = mean_ns;
  state.counters["allocs"] = timed ? static_cast<double>(allocations) / static_cast<double>(timed) : 0;
  state.counters["permit_share"] = static_cast<double>(permits) / static_cast<double>(requests.size());
  if (std::optional<AuditStats> stats = engine->AccessLogStats()) {
    // Waits: a decision found the log's queue full (the writer behind) and waited.
    state.counters["log_waits"] = static_cast<double>(stats->waits);
    state.counters["log_refused"] = static_cast<double>(stats->refused);
    // The share of records the writer encoded (queued as their fields: the queue short).
    state.counters["log_by_writer"] =
        stats->appended ? static_cast<double>(stats->encoded_by_writer) / static_cast<double>(stats->appended) : 0;
  }
  state.SetLabel(absl::StrCat(durable_store ? "rocksdb" : "memory", ", log ",
                              log == 0 ? "off" : log == 1 ? "buffered" : "durable", cold ? ", no record cache" : "",
                              ", ", Patients(), " patients"));
}
// Engine::DecideBatch, 64 requests a call, log off: the mean per decision. The range is
// the store: 0 memory, 1 RocksDB.
void BM_EngineDecideBatch(benchmark::State& state) {
  Options options;
  options.audit.reset();
  std::unique_ptr<Engine> engine = OpenBenchEngine(state, state.range(0) == 1, std::move(options));
  if (engine == nullptr) return;
  const bool durable_store = state.range(0) == 1;
  const std::vector<AccessRequest> requests = Requests();
  constexpr size_t kBatch = 64;
  for (size_t i = requests.size(); i >= kBatch; i -= kBatch) {  // warm, in reverse
    benchmark::DoNotOptimize(engine->DecideBatch(absl::MakeConstSpan(&requests[i - kBatch], kBatch)));
  }
  size_t k = 0;
  uint64_t decided = 0;
  const auto start = std::chrono::steady_clock::now();
  for (auto _ : state) {
    if (k + kBatch > requests.size()) k = 0;
    benchmark::DoNotOptimize(engine->DecideBatch(absl::MakeConstSpan(&requests[k], kBatch)));
    k += kBatch;
    decided += kBatch;
  }
  const double ns = static_cast<double>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - start).count());
  state.counters["mean_ns"] = decided ? ns / static_cast<double>(decided) : 0;
  state.SetLabel(absl::StrCat(durable_store ? "rocksdb" : "memory", ", log off, batches of 64, ", Patients(), " patients"));
}
BENCHMARK(BM_EngineDecideBatch)->ArgName("rocksdb")->Arg(0)->Arg(1)->MinTime(2.0);

// What a caller of the embedded engine gets, as JSON: Engine::Decide on the memory
// store, access log buffered, then EngineDecision::Json(). state.range(0): 1 with
// "explain" (policy/explain.h), whose budget is at most twice the plain answer.
void BM_EngineDecideJson(benchmark::State& state) {
  Options options;
  options.audit->mode = AuditMode::kBuffered;
  std::unique_ptr<Engine> engine = OpenBenchEngine(state, /*durable_store=*/false, std::move(options));
  if (engine == nullptr) return;
  std::vector<AccessRequest> requests = Requests();
  for (AccessRequest& r : requests) r.explain = state.range(0) == 1;
  for (auto r = requests.rbegin(); r != requests.rend(); ++r) benchmark::DoNotOptimize(engine->Decide(*r).Json());
  size_t k = 0;
  size_t bytes = 0;
  for (auto _ : state) {
    std::string json = engine->Decide(requests[k++ % requests.size()]).Json();
    bytes += json.size();
    benchmark::DoNotOptimize(json);
  }
  state.counters["json_bytes"] = state.iterations() ? static_cast<double>(bytes) / state.iterations() : 0;
  state.SetLabel(absl::StrCat(state.range(0) == 1 ? "explained" : "plain", ", memory, log buffered, ", Patients(),
                              " patients"));
}
BENCHMARK(BM_EngineDecideJson)->ArgName("explain")->Arg(0)->Arg(1)->MinTime(2.0);

// Engine::Patients (docs/patients.md): one page of the patients an actor may open, each
// call timed alone. state.range(0): 0 memory store, 1 RocksDB. state.range(1): 0 a
// clinician's whole list (the index; cycled over the clinicians), 1 a researcher's pages
// of 1,000 (every patient a candidate; each page goes on from the last one's cursor).
void BM_PatientsPage(benchmark::State& state) {
  const bool durable_store = state.range(0) == 1;
  const bool research = state.range(1) == 1;
  Options options;
  options.audit.reset();
  std::unique_ptr<Engine> engine = OpenBenchEngine(state, durable_store, std::move(options));
  if (engine == nullptr) return;
  PatientsQuery q;
  q.request.at = absl::FromCivil(absl::CivilSecond(2026, 6, 15, 10, 30, 0), Amsterdam());
  q.request.action = Action::kRead;
  q.request.category = Category::kMedical;
  q.page_size = 1000;
  q.deadline = absl::Seconds(10);
  if (research) {
    q.request.actor = {"res-1", Role::kResearcher, ""};
    q.request.purpose = Purpose::kResearch;
  } else {
    q.request.purpose = Purpose::kTreatment;
  }
  std::vector<int64_t> ns;
  ns.reserve(1 << 16);
  size_t k = 0, listed = 0, examined = 0, pages = 0;
  for (auto _ : state) {
    if (!research) q.request.actor = {absl::StrCat("clin-", (k++ * 7919) % 5000), Role::kClinician, ""};
    const auto a = std::chrono::steady_clock::now();
    absl::StatusOr<PatientPage> page = engine->Patients(q);
    const auto b = std::chrono::steady_clock::now();
    if (!page.ok()) {
      state.SkipWithError(std::string(page.status().message()).c_str());
      return;
    }
    ns.push_back(std::chrono::duration_cast<std::chrono::nanoseconds>(b - a).count());
    listed += page->patients.size();
    examined += page->examined;
    ++pages;
    if (research) q.cursor = page->complete ? "" : page->cursor;
  }
  std::sort(ns.begin(), ns.end());
  auto quantile = [&](double f) {
    return ns.empty() ? 0.0 : static_cast<double>(ns[static_cast<size_t>(f * (ns.size() - 1))]);
  };
  state.counters["p50_ms"] = quantile(0.5) / 1e6;
  state.counters["p99_ms"] = quantile(0.99) / 1e6;
  state.counters["listed_per_page"] = pages ? static_cast<double>(listed) / static_cast<double>(pages) : 0;
  state.counters["examined_per_page"] = pages ? static_cast<double>(examined) / static_cast<double>(pages) : 0;
  state.SetLabel(absl::StrCat(durable_store ? "rocksdb" : "memory", research ? ", researcher, pages of 1,000"
                                                                             : ", a clinician's whole list",
                              ", ", Patients(), " patients"));
}
BENCHMARK(BM_PatientsPage)
    ->ArgNames({"rocksdb", "research"})
    ->Args({0, 0})
    ->Args({0, 1})
    ->Args({1, 0})
    ->Args({1, 1})
    ->MinTime(2.0);

BENCHMARK(BM_EngineDecide)
    ->ArgNames({"rocksdb", "log"})
    ->Args({0, 0})
    ->Args({1, 0})
    ->Args({0, 1})
    ->Args({1, 1})
    ->MinTime(2.0);
BENCHMARK(BM_EngineDecide)->ArgNames({"rocksdb", "log"})->Args({1, 3})->Args({1, 2})->MinTime(1.0);

}  // namespace
}  // namespace toegang
