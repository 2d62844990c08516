// Copyright toegang authors.
//
// The durable store (issue: durable consent history): 1,000,000 patients with about 5
// facts each, loaded durably; size on disk; decide latency with a warm cache and with
// a cold one (8 MiB block cache, no record cache).
//
//   bazel build -c opt //bench:store_bench && bazel-bin/bench/store_bench
//   TOEGANG_BENCH_PATIENTS=100000 bazel-bin/bench/store_bench    (smaller, faster)
//
// The store is built once under $TOEGANG_BENCH_DIR (default /tmp/toegang-store-bench)
// and reused by later runs with the same patient count.
#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "benchmark/benchmark.h"
#include "engine/rocksdb/raw_store.h"
#include "engine/rocksdb/rocksdb_store.h"
#include "engine/toegang.h"
#include "model/time.h"

namespace toegang {
namespace {

namespace fs = std::filesystem;

int Patients() {
  const char* n = std::getenv("TOEGANG_BENCH_PATIENTS");
  return n ? std::atoi(n) : 1000000;
}

std::string Dir() {
  const char* d = std::getenv("TOEGANG_BENCH_DIR");
  return absl::StrCat(d ? d : "/tmp/toegang-store-bench", "-", Patients());
}

Fact F(FactBody b) { return Fact{std::move(b), {}}; }

// About five facts per patient: person, treating relationship, parent (minors) or
// registration (adults), a referral consent, and for one in five an objection or a
// withdrawal.
void GeneratePatient(int i, std::vector<Fact>* out) {
  const absl::Time from = absl::FromCivil(absl::CivilSecond(2026, 1, 1, 0, 0, 0), Amsterdam());
  std::string p = absl::StrCat("pat-", i);
  int birth_year = 1940 + i % 86;
  out->push_back(F(Person{p, absl::CivilDay(birth_year, 1 + i % 12, 1 + i % 28), std::nullopt}));
  out->push_back(F(Relationship{absl::StrCat("rt-", i), absl::StrCat("clin-", i % 5000), Relation::kTreating, p, {from, absl::InfiniteFuture()}}));
  if (birth_year >= 2009) {
    out->push_back(F(Relationship{absl::StrCat("rp-", i), absl::StrCat("par-", i), Relation::kParentWithAuthority, p, {}}));
  } else {
    out->push_back(F(Relationship{absl::StrCat("rr-", i), absl::StrCat("praktijk-", i % 300), Relation::kRegisteredWith, p, {}}));
  }
  Consent c;
  c.id = absl::StrCat("con-", i);
  c.patient = p;
  c.granted_by = {p};
  c.to = {Party::Kind::kActor, "clin-ref", Role::kPatient};
  c.purposes = {Purpose::kReferral};
  c.categories = {Category::kMedical};
  c.actions = {Action::kRead, Action::kDisclose};
  c.window = {from, absl::InfiniteFuture()};
  c.evidence = "intake form";
  out->push_back(F(c));
  if (i % 5 == 0) {
    Objection o;
    o.id = absl::StrCat("obj-", i);
    o.patient = p;
    o.by = p;
    o.purposes = {Purpose::kResearch};
    o.window = {from, absl::InfiniteFuture()};
    out->push_back(F(o));
  }
}

struct LoadFigures {
  double seconds = 0;
  uint64_t facts = 0;
  uint64_t bytes = 0;
  bool reused = false;
};

uint64_t DirBytes(const std::string& dir) {
  uint64_t total = 0;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (e.is_regular_file()) total += e.file_size();
  }
  return total;
}

// Builds the store once; returns how the load went.
const LoadFigures& EnsureStore() {
  static LoadFigures* figures = [] {
    auto* f = new LoadFigures;
    std::string dir = Dir();
    if (fs::exists(fs::path(dir) / "CURRENT")) {
      f->reused = true;
      f->bytes = DirBytes(dir);
      return f;
    }
    absl::StatusOr<std::unique_ptr<FactStore>> store = OpenDurableFactStore(dir, {});
    if (!store.ok()) std::abort();
    const int n = Patients();
    constexpr int kBatchFacts = 10000;  // each Append is one synced, atomic write
    std::vector<Fact> batch;
    auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < n; ++i) {
      GeneratePatient(i, &batch);
      if (batch.size() >= kBatchFacts || i == n - 1) {
        f->facts += batch.size();
        if (!(*store)->Append(std::move(batch)).ok()) std::abort();
        batch.clear();
      }
    }
    f->seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    store->reset();
    f->bytes = DirBytes(dir);
    return f;
  }();
  return *figures;
}

void BM_LoadDurable(benchmark::State& state) {
  const LoadFigures& f = EnsureStore();
  for (auto _ : state) benchmark::DoNotOptimize(f.facts);
  state.counters["patients"] = Patients();
  state.counters["facts"] = static_cast<double>(f.facts);
  state.counters["facts_per_s"] = f.reused ? 0 : static_cast<double>(f.facts) / f.seconds;
  state.counters["disk_MiB"] = static_cast<double>(f.bytes) / (1 << 20);
  state.counters["reused_store"] = f.reused;
}
BENCHMARK(BM_LoadDurable)->Iterations(1);

// Small durable appends from 8 threads: group commit at work.
void BM_AppendConcurrent(benchmark::State& state) {
  static std::unique_ptr<FactStore>* store = nullptr;
  static std::atomic<int> next{0};
  if (state.thread_index() == 0) {
    std::string dir = Dir() + "-append";
    fs::remove_all(dir);
    store = new std::unique_ptr<FactStore>(*OpenDurableFactStore(dir, {}));
  }
  int facts = 0;
  for (auto _ : state) {
    std::vector<Fact> batch;
    GeneratePatient(next.fetch_add(1), &batch);
    facts += static_cast<int>(batch.size());
    if (!(*store)->Append(std::move(batch)).ok()) state.SkipWithError("append failed");
  }
  state.counters["facts_per_s"] = benchmark::Counter(facts, benchmark::Counter::kIsRate);
  if (state.thread_index() == 0) {
    delete store;
    store = nullptr;
  }
}
BENCHMARK(BM_AppendConcurrent)->Threads(8)->UseRealTime()->MinTime(2.0);

void DecideLatency(benchmark::State& state, bool warm) {
  EnsureStore();
  Options options;
  options.db_path = Dir();
  options.durable.create_if_missing = false;
  // The store's read path alone: with the durable log on, every decision would wait for
  // an fsync (audit_bench measures the log).
  options.audit = std::nullopt;
  if (!warm) {
    options.durable.block_cache_bytes = size_t{8} << 20;
    options.durable.record_cache_bytes = 0;
  }
  absl::StatusOr<std::unique_ptr<Engine>> engine = Engine::Open(std::move(options));
  if (!engine.ok()) {
    state.SkipWithError(std::string(engine.status().message()).c_str());
    return;
  }
  const int n = Patients();
  const int hot = warm ? std::min(n, 10000) : n;  // warm: a working set that fits the cache
  std::mt19937 rng(7);
  std::vector<AccessRequest> requests(4096);
  for (AccessRequest& r : requests) {
    int i = static_cast<int>(rng() % hot);
    r.at = absl::FromCivil(absl::CivilSecond(2026, 6, 15, 10, 0, 0), Amsterdam());
    r.actor = {absl::StrCat("clin-", i % 5000), Role::kClinician, ""};
    r.patient = absl::StrCat("pat-", i);
  }
  if (warm) {
    for (int i = 0; i < hot; ++i) {
      AccessRequest r = requests[0];
      r.patient = absl::StrCat("pat-", i);
      r.actor.id = absl::StrCat("clin-", i % 5000);
      (*engine)->Decide(r);
    }
  }
  std::vector<int64_t> ns;
  ns.reserve(1 << 20);
  size_t k = 0;
  uint64_t permits = 0;
  for (auto _ : state) {
    const AccessRequest& r = requests[k++ % requests.size()];
    auto a = std::chrono::steady_clock::now();
    EngineDecision d = (*engine)->Decide(r);
    auto b = std::chrono::steady_clock::now();
    permits += d.decision.permitted();
    if (ns.size() < ns.capacity()) ns.push_back(std::chrono::duration_cast<std::chrono::nanoseconds>(b - a).count());
  }
  std::sort(ns.begin(), ns.end());
  state.counters["p50_ns"] = static_cast<double>(ns[ns.size() / 2]);
  state.counters["p99_ns"] = static_cast<double>(ns[ns.size() * 99 / 100]);
  state.counters["permit_share"] = static_cast<double>(permits) / static_cast<double>(state.iterations());
}

void BM_DecideWarm(benchmark::State& state) { DecideLatency(state, true); }
void BM_DecideCold(benchmark::State& state) { DecideLatency(state, false); }
// Opening a store an older build wrote (format 2, no index of patients): the first open
// for writing builds the index from every patient's facts. The generated store, copied,
// its index entries erased and its format set back.
void BM_OpenBuildsPatientIndex(benchmark::State& state) {
  EnsureStore();
  const std::string old = Dir() + "-format2";
  for (auto _ : state) {
    state.PauseTiming();
    fs::remove_all(old);
    fs::copy(Dir(), old, fs::copy_options::recursive);
    absl::StatusOr<int> erased = testing::RawErasePrefixForTesting(old, "facts", "i");
    if (!erased.ok() || !testing::RawPutForTesting(old, "default", "toegang/format_version", "2").ok()) {
      state.SkipWithError("cannot make an older store");
      return;
    }
    state.counters["entries"] = *erased;
    state.ResumeTiming();
    absl::StatusOr<std::unique_ptr<FactStore>> store = OpenDurableFactStore(old, {});
    if (!store.ok()) {
      state.SkipWithError(std::string(store.status().message()).c_str());
      return;
    }
  }
  fs::remove_all(old);
  state.counters["patients"] = Patients();
}
BENCHMARK(BM_OpenBuildsPatientIndex)->Iterations(1)->Unit(benchmark::kSecond);

// The same open of the store as it is (format 3): what opening costs anyway.
void BM_OpenCurrent(benchmark::State& state) {
  EnsureStore();
  for (auto _ : state) {
    absl::StatusOr<std::unique_ptr<FactStore>> store = OpenDurableFactStore(Dir(), {});
    if (!store.ok()) state.SkipWithError(std::string(store.status().message()).c_str());
  }
}
BENCHMARK(BM_OpenCurrent)->Iterations(1)->Unit(benchmark::kSecond);

// `retention apply` over a copy of the generated store, with the clock in 2047: every
// dossier (last changed when loaded) is past its 20 years, so each patient's facts are
// replaced by tombstones in one synced write. The first 20,000 patients, in id order.
absl::Time Year2047() { return absl::FromCivil(absl::CivilSecond(2047, 1, 1, 0, 0, 0), Amsterdam()); }

void BM_RetentionApply(benchmark::State& state) {
  EnsureStore();
  const std::string copy = Dir() + "-retention";
  const int kApplied = std::min(20000, Patients());
  for (auto _ : state) {
    state.PauseTiming();
    fs::remove_all(copy);
    fs::copy(Dir(), copy, fs::copy_options::recursive);
    Options options;
    options.db_path = copy;
    options.clock = Year2047;
    options.audit->clock = Year2047;
    options.audit->checkpoint_key = "bench-key-of-at-least-16-bytes";
    absl::StatusOr<std::unique_ptr<Engine>> engine = Engine::Open(std::move(options));
    absl::StatusOr<std::vector<std::string>> ids =
        engine.ok() ? (*engine)->PatientIds("", kApplied) : absl::StatusOr<std::vector<std::string>>(engine.status());
    if (!ids.ok()) {
      state.SkipWithError(std::string(ids.status().message()).c_str());
      return;
    }
    size_t facts = 0;
    state.ResumeTiming();
    for (const std::string& id : *ids) {
      absl::StatusOr<Engine::RetentionRemoval> r = (*engine)->ApplyRetention(id, Year2047());
      if (!r.ok()) {
        state.SkipWithError(std::string(r.status().message()).c_str());
        return;
      }
      facts += r->facts;
    }
    state.PauseTiming();
    state.counters["patients"] = static_cast<double>(ids->size());
    state.counters["facts"] = static_cast<double>(facts);
    state.counters["patients_per_s"] = benchmark::Counter(static_cast<double>(ids->size()), benchmark::Counter::kIsRate);
    engine->reset();
    fs::remove_all(copy);
    state.ResumeTiming();
  }
}
BENCHMARK(BM_RetentionApply)->Iterations(1)->Unit(benchmark::kSecond)->UseRealTime();

BENCHMARK(BM_DecideWarm)->MinTime(2.0);
BENCHMARK(BM_DecideCold)->MinTime(2.0);

}  // namespace
}  // namespace toegang
