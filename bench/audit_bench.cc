// Copyright toegang authors.
//
// The access log's cost (issue: access log): decide latency on the durable store with
// logging off, buffered and durable, in one run; and how many durable decisions per
// second many concurrent callers get (group commit).
//
//   bazel build -c opt //bench:audit_bench && bazel-bin/bench/audit_bench
#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "benchmark/benchmark.h"
#include "engine/audit/audit_log.h"
#include "engine/rocksdb/crc32c.h"
#include "engine/rocksdb/rocksdb_store.h"
#include "engine/toegang.h"

namespace toegang {
namespace {

constexpr int kPatients = 10000;

// The benchmark stores: the same facts in each; a second one for the paired benchmark,
// whose two engines cannot share a RocksDB directory.
std::string Dir(int copy = 0) { return copy == 0 ? "/tmp/toegang-audit-bench" : "/tmp/toegang-audit-bench-b"; }

void FillStore(int copy) {
  std::filesystem::remove_all(Dir(copy));
  {
    auto store = OpenDurableFactStore(Dir(copy), {});
    if (!store.ok()) std::abort();
    std::vector<Fact> facts;
    for (int i = 0; i < kPatients; ++i) {
      std::string p = absl::StrCat("pat-", i);
      facts.push_back({Person{p, absl::CivilDay(1970 + i % 50, 1, 1), std::nullopt}, {}});
      facts.push_back({Relationship{absl::StrCat("rel-", i), absl::StrCat("clin-", i % 100), Relation::kTreating, p, {}}, {}});
    }
    if (!(*store)->Append(std::move(facts)).ok()) std::abort();
  }
}

bool g_filled[2] = {false, false};

void EnsureStore(int copy = 0) {
  if (!g_filled[copy]) FillStore(copy);
  g_filled[copy] = true;
}

AccessRequest Request(int i) {
  AccessRequest r;
  r.at = absl::FromUnixSeconds(1780000000 + i);
  r.actor = {absl::StrCat("clin-", i % 100), Role::kClinician, "praktijk-a"};
  r.patient = absl::StrCat("pat-", i % kPatients);
  return r;
}

std::unique_ptr<Engine> OpenEngine(int mode, int copy = 0) {  // 0 off, 1 buffered, 2 durable
  Options options;
  options.db_path = Dir(copy);
  if (mode == 0) {
    options.audit.reset();
  } else {
    options.audit->mode = mode == 1 ? AuditMode::kBuffered : AuditMode::kDurable;
  }
  auto engine = Engine::Open(std::move(options));
  if (!engine.ok()) std::abort();
  return *std::move(engine);
}

// One timed caller: the engine in `mode` over benchmark store `copy`, 4,096 requests
// decided once (the record cache is warm), and room for a million latencies.
struct Caller {
  explicit Caller(int mode, int copy = 0) {
    EnsureStore(copy);
    engine = OpenEngine(mode, copy);
    for (int i = 0; i < 4096; ++i) requests.push_back(Request(i));
    for (const AccessRequest& r : requests) engine->Decide(r);
    ns.reserve(1 << 20);
  }
  // Decides the next request; keeps the latency from `since` to its end.
  void DecideFrom(std::chrono::steady_clock::time_point since) {
    EngineDecision d = engine->Decide(requests[k++ & 4095]);
    Keep(since, std::chrono::steady_clock::now());
    benchmark::DoNotOptimize(d);
  }
  // Keeps one latency (while there is room).
  void Keep(std::chrono::steady_clock::time_point since, std::chrono::steady_clock::time_point done) {
    if (ns.size() < ns.capacity()) ns.push_back(std::chrono::duration_cast<std::chrono::nanoseconds>(done - since).count());
  }
  // The latency below which `fraction` of the decisions finished (sorts `ns`).
  double Quantile(double fraction) {
    if (ns.empty()) return 0;  // google benchmark's first, one-iteration pass
    std::sort(ns.begin(), ns.end());
    return static_cast<double>(ns[static_cast<size_t>(static_cast<double>(ns.size() - 1) * fraction)]);
  }
  // p50/p99 and the access log's queue figures as counters; labels the run.
  void Report(benchmark::State& state, const std::string& label) {
    state.counters["p50_ns"] = Quantile(0.5);
    state.counters["p99_ns"] = Quantile(0.99);
    state.counters["p999_ns"] = Quantile(0.999);
    if (std::optional<AuditStats> stats = engine->AccessLogStats()) {
      const AuditStats& s = *stats;
      state.counters["max_queue"] = static_cast<double>(s.max_queue_depth);
      state.counters["waits"] = static_cast<double>(s.waits);
      state.counters["refused"] = static_cast<double>(s.refused);
    }
    state.SetLabel(label);
  }

  std::unique_ptr<Engine> engine;
  std::vector<AccessRequest> requests;
  std::vector<int64_t> ns;
  size_t k = 0;
};

// The slots of a fixed rate; the caller sleeps until each, as a sidecar thread waits
// for its next request.
class Slots {
 public:
  explicit Slots(int64_t per_second) : period_(absl::Nanoseconds(1000000000LL / per_second)) {}
  void SleepUntilNext() {
    next_ += period_;
    const absl::Duration wait = next_ - absl::Now();
    if (wait > absl::ZeroDuration()) absl::SleepFor(wait);
  }

 private:
  const absl::Duration period_;
  absl::Time next_ = absl::Now();
};

const char* ModeName(int64_t mode) { return mode == 0 ? "logging off" : mode == 1 ? "buffered" : "durable"; }

// One caller; each decision timed alone. The range is the mode: 0 off, 1 buffered,
// 2 durable.
void BM_DecideWithLogging(benchmark::State& state) {
  Caller caller(static_cast<int>(state.range(0)));
  for (auto _ : state) caller.DecideFrom(std::chrono::steady_clock::now());
  caller.Report(state, ModeName(state.range(0)));
}
BENCHMARK(BM_DecideWithLogging)->Arg(0)->Arg(1)->Arg(2)->MinTime(2.0);

// Open loop at a fixed offered load (the range's second value, decisions/s): each
// decision is scheduled, and its latency is measured from the scheduled start (so a
// queue that cannot keep up shows, rather than hiding behind a slower loop).
void BM_DecideWithLoggingPaced(benchmark::State& state) {
  Caller caller(static_cast<int>(state.range(0)));
  const auto period = std::chrono::nanoseconds(1000000000LL / state.range(1));
  auto next = std::chrono::steady_clock::now();
  for (auto _ : state) {
    while (std::chrono::steady_clock::now() < next) {
    }
    caller.DecideFrom(next);
    next += period;
  }
  caller.Report(state, absl::StrCat(ModeName(state.range(0)), " at ", state.range(1), "/s"));
}
BENCHMARK(BM_DecideWithLoggingPaced)->Args({0, 50000})->Args({1, 50000})->Args({0, 200000})->Args({1, 200000})->MinTime(3.0);

// Open loop again, but the caller sleeps until each slot, like a sidecar thread waiting
// for its next request, and only the Decide call is timed: what logging costs a
// decision when the machine is not kept busy by the benchmark itself.
void BM_DecideWithLoggingIdleBetween(benchmark::State& state) {
  Caller caller(static_cast<int>(state.range(0)));
  Slots slots(state.range(1));
  for (auto _ : state) {
    slots.SleepUntilNext();
    caller.DecideFrom(std::chrono::steady_clock::now());
  }
  caller.Report(state, absl::StrCat(ModeName(state.range(0)), " at ", state.range(1), "/s"));
}
BENCHMARK(BM_DecideWithLoggingIdleBetween)->Args({0, 20000})->Args({1, 20000})->Args({0, 20000})->Args({1, 20000})->MinTime(3.0);

// The same pacing with both modes in one loop: two engines over identical stores, one
// with logging off and one buffered, take turns slot by slot, so both see the same
// moments of a noisy machine and their ratio is a paired comparison. Reported: each
// one's p50/p99 and buffered's cost at each, in percent.
void BM_BufferedCostPaired(benchmark::State& state) {
  // Both stores fresh: earlier benchmarks left access-log records in the first.
  for (int copy : {0, 1}) {
    FillStore(copy);
    g_filled[copy] = true;
  }
  Caller off(0, 0);
  Caller buffered(1, 1);
  Slots slots(state.range(0));
  bool turn = false;
  for (auto _ : state) {
    slots.SleepUntilNext();
    (turn ? buffered : off).DecideFrom(std::chrono::steady_clock::now());
    turn = !turn;
  }
  for (double q : {0.5, 0.99}) {
    const double a = off.Quantile(q), b = buffered.Quantile(q);
    const std::string name = q == 0.5 ? "p50" : "p99";
    state.counters["off_" + name + "_ns"] = a;
    state.counters["buffered_" + name + "_ns"] = b;
    state.counters["cost_" + name + "_pct"] = a > 0 ? 100.0 * (b - a) / a : 0;
  }
  state.SetLabel(absl::StrCat("off and buffered taking turns, ", state.range(0), " decisions/s"));
}
BENCHMARK(BM_BufferedCostPaired)->Arg(20000)->MinTime(10.0);

// The log's own share of the idle-between figure: the same pacing, but only
// AuditLog::AppendDecision is timed (buffered), for decisions made beforehand. The
// second value is the log's sync interval in milliseconds (0: every batch synced).
void BM_AppendIdleBetween(benchmark::State& state) {
  // Decisions from an engine without a log; the log alone, buffered, on the second
  // benchmark store.
  Caller caller(0);
  std::vector<EngineDecision> decided;
  for (int i = 0; i < 4096; ++i) decided.push_back(caller.engine->Decide(caller.requests[i]));
  EnsureStore(1);
  absl::StatusOr<DurableStore> store = OpenDurableStore(Dir(1), {});
  if (!store.ok()) std::abort();
  AuditOptions buffered;
  buffered.mode = AuditMode::kBuffered;
  buffered.sync_interval = absl::Milliseconds(state.range(1));
  absl::StatusOr<std::unique_ptr<AuditLog>> opened = AuditLog::Open(store->access_log.get(), buffered);
  if (!opened.ok()) std::abort();
  AuditLog* log = opened->get();
  Slots slots(state.range(0));
  size_t k = 0;
  for (auto _ : state) {
    slots.SleepUntilNext();
    const size_t i = k++ & 4095;
    auto start = std::chrono::steady_clock::now();
    absl::Status s = log->AppendDecision(caller.requests[i], decided[i].decision, decided[i].decision_id, std::nullopt);
    caller.Keep(start, std::chrono::steady_clock::now());
    if (!s.ok()) state.SkipWithError("append failed");
  }
  const AuditStats s = log->stats();
  state.counters["max_queue"] = static_cast<double>(s.max_queue_depth);
  state.counters["waits"] = static_cast<double>(s.waits);
  state.counters["refused"] = static_cast<double>(s.refused);
  caller.Report(state, absl::StrCat("append alone, buffered, at ", state.range(0), "/s, synced ",
                                    state.range(1) == 0 ? "every batch" : absl::StrCat("every ", state.range(1), " ms")));
}
BENCHMARK(BM_AppendIdleBetween)->Args({20000, 0})->Args({20000, 10})->MinTime(3.0);

// Many callers, durable: every decision returns only after its record is synced.
std::unique_ptr<Engine>* g_engine = nullptr;
void BM_DurableThroughput(benchmark::State& state) {
  if (state.thread_index() == 0) {
    EnsureStore();
    g_engine = new std::unique_ptr<Engine>(OpenEngine(2));
  }
  int i = state.thread_index() * 100000;
  for (auto _ : state) {
    EngineDecision d = (*g_engine)->Decide(Request(i++));
    if (!d.decision.permitted()) state.SkipWithError("a decision was denied");
  }
  state.SetItemsProcessed(state.iterations());
  if (state.thread_index() == 0) {
    AuditStats s = *(*g_engine)->AccessLogStats();
    state.counters["records_per_batch"] = static_cast<double>(s.written) / static_cast<double>(std::max<uint64_t>(1, s.batches));
    delete g_engine;
    g_engine = nullptr;
  }
}
BENCHMARK(BM_DurableThroughput)->Threads(1)->Threads(16)->Threads(64)->UseRealTime()->MinTime(2.0);

// How many records a second the buffered log's writer stores: one thread queues 500,000
// decisions (the queue holds them all, so it never waits) and the clock stops when Flush
// returns, with every record encoded, chained and stored. The range is the storage: 0
// memory, 1 RocksDB (a fresh directory each run).
void BM_WriterThroughput(benchmark::State& state) {
  constexpr int kRecords = 500000;
  const bool rocksdb = state.range(0) == 1;
  const std::string dir = "/tmp/toegang-audit-bench-writer";
  AccessRequest request = Request(7);
  Decision decision;
  decision.policy = "wgbo-default@1";
  decision.rule = "treating_clinician";
  decision.reasons = {Reason::kTreatingRelationship};
  decision.obligations = {Obligation::kLogAccess};
  double seconds = 0;
  int64_t runs = 0;
  uint64_t by_writer = 0;
  for (auto _ : state) {
    state.PauseTiming();
    std::unique_ptr<AuditStorage> memory;
    std::optional<DurableStore> durable;
    AuditStorage* storage = nullptr;
    if (rocksdb) {
      std::filesystem::remove_all(dir);
      absl::StatusOr<DurableStore> opened = OpenDurableStore(dir, {});
      if (!opened.ok()) std::abort();
      durable = *std::move(opened);
      storage = durable->access_log.get();
    } else {
      memory = NewMemoryAuditStorage();
      storage = memory.get();
    }
    AuditOptions options;
    options.mode = AuditMode::kBuffered;
    options.queue_capacity = kRecords;
    absl::StatusOr<std::unique_ptr<AuditLog>> log = AuditLog::Open(storage, options);
    if (!log.ok()) std::abort();
    state.ResumeTiming();
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < kRecords; ++i) {
      request.patient = absl::StrCat("pat-", i % kPatients);
      if (!(*log)->AppendDecision(request, decision, absl::StrCat("bench-", i), std::nullopt).ok()) std::abort();
    }
    if (!(*log)->Flush().ok()) std::abort();
    seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    ++runs;
    by_writer += (*log)->stats().encoded_by_writer;
    state.PauseTiming();
    log->reset();
    durable.reset();
    state.ResumeTiming();
  }
  state.counters["records_per_s"] = runs ? kRecords * static_cast<double>(runs) / seconds : 0;
  // The share the writer encoded: queued as their fields while the queue was short.
  state.counters["by_writer"] = runs ? static_cast<double>(by_writer) / (kRecords * static_cast<double>(runs)) : 0;
  state.SetLabel(rocksdb ? "RocksDB" : "memory");
}
BENCHMARK(BM_WriterThroughput)->Arg(0)->Arg(1)->Iterations(3)->Unit(benchmark::kMillisecond);

// What the listing benchmarks log: decisions [first, last) of Request(i), 15 for each
// patient per 150,000.
void LogDecisions(AuditLog& log, int first, int last) {
  Decision decision;
  decision.policy = "wgbo-default@1";
  decision.rule = "treating_clinician";
  for (int i = first; i < last; ++i) {
    if (!log.AppendDecision(Request(i), decision, absl::StrCat("bench-", i), std::nullopt).ok()) std::abort();
  }
}

// The timed part of the listing benchmarks: each iteration lists one patient's accesses
// to the first `records` decisions.
void ListPatients(benchmark::State& state, AuditLog& log, int records) {
  const absl::Time from = absl::FromUnixSeconds(1780000000);
  const absl::Time until = from + absl::Seconds(records);
  size_t found = 0;
  int i = 0;
  for (auto _ : state) {
    absl::StatusOr<std::vector<AuditEvent>> got =
        log.PatientAccesses(absl::StrCat("pat-", (i++ * 7919) % kPatients), from, until);
    if (!got.ok()) std::abort();
    found += got->size();
  }
  state.counters["records_per_query"] = static_cast<double>(found) / static_cast<double>(state.iterations());
}

// The listing benchmarks' store at `dir` (kept if `fresh` is false).
DurableStore OpenStore(const std::string& dir, bool fresh) {
  if (fresh) std::filesystem::remove_all(dir);
  absl::StatusOr<DurableStore> durable = OpenDurableStore(dir, {});
  if (!durable.ok()) std::abort();
  return *std::move(durable);
}

// The buffered log of the listing benchmarks, its queue holding `capacity` records.
std::unique_ptr<AuditLog> BufferedLog(DurableStore& durable, size_t capacity) {
  AuditOptions options;
  options.mode = AuditMode::kBuffered;
  options.queue_capacity = capacity;
  absl::StatusOr<std::unique_ptr<AuditLog>> log = AuditLog::Open(durable.access_log.get(), options);
  if (!log.ok()) std::abort();
  return *std::move(log);
}

// A patient asks who read the dossier, on a server that is logging: the RocksDB log holds
// 150,000 records (15 for each of 10,000 patients), all still in its memtables as on a
// primary between flushes. Each iteration lists one patient's accesses.
void BM_PatientAccessesWhileLogging(benchmark::State& state) {
  constexpr int kRecords = 150000;
  DurableStore durable = OpenStore("/tmp/toegang-audit-bench-reader", /*fresh=*/true);
  std::unique_ptr<AuditLog> log = BufferedLog(durable, kRecords);
  LogDecisions(*log, 0, kRecords);
  if (!log->Flush().ok()) std::abort();
  ListPatients(state, *log, kRecords);
  log.reset();
}
BENCHMARK(BM_PatientAccessesWhileLogging)->Unit(benchmark::kMicrosecond);

// The same while the log goes on being written: a thread appends decisions as fast as
// the log takes them (the queue holding them back), so each listing finds new index
// entries in the active memtable.
void BM_PatientAccessesUnderWrites(benchmark::State& state) {
  constexpr int kRecords = 150000;
  DurableStore durable = OpenStore("/tmp/toegang-audit-bench-reader-busy", /*fresh=*/true);
  std::unique_ptr<AuditLog> log = BufferedLog(durable, 4096);
  LogDecisions(*log, 0, kRecords);
  std::atomic<bool> done{false};
  std::atomic<int64_t> written{0};
  std::thread writer([&] {
    for (int i = kRecords; !done; i += 64) {
      LogDecisions(*log, i, i + 64);
      written += 64;
    }
  });
  ListPatients(state, *log, kRecords);
  done = true;
  writer.join();
  state.counters["written_per_s"] = benchmark::Counter(static_cast<double>(written), benchmark::Counter::kIsRate);
  log.reset();
}
BENCHMARK(BM_PatientAccessesUnderWrites)->Unit(benchmark::kMicrosecond)->UseRealTime()->MinTime(3);

// A patient asks who read the dossier, the log on disk: 150,000 records (15 for each of
// 10,000 patients, each patient's spread over the whole log) written, the store closed
// (which flushes) and opened again. Each iteration lists one patient's accesses; every
// record is read from the store's files or its block cache.
void BM_PatientAccessesFromFiles(benchmark::State& state) {
  constexpr int kRecords = 150000;
  const std::string dir = "/tmp/toegang-audit-bench-files";
  {
    DurableStore written = OpenStore(dir, /*fresh=*/true);
    std::unique_ptr<AuditLog> log = BufferedLog(written, kRecords);
    LogDecisions(*log, 0, kRecords);
    if (!log->Flush().ok()) std::abort();
  }
  DurableStore durable = OpenStore(dir, /*fresh=*/false);
  std::unique_ptr<AuditLog> log = BufferedLog(durable, kRecords);
  ListPatients(state, *log, kRecords);
  log.reset();
}
BENCHMARK(BM_PatientAccessesFromFiles)->Unit(benchmark::kMicrosecond);

// RocksDB's checksum over a logged record (311 bytes), an access-log part (8 KiB) and a
// table block (4 KiB): the library's own table-driven CRC32C (0) against the CPU's
// instruction that the library's calls now reach (1).
void BM_Crc32c(benchmark::State& state) {
  const rocksdb_checksum::Crc32cFunction extend =
      state.range(0) == 0 ? rocksdb_checksum::LibraryCrc32c() : rocksdb_checksum::Crc32cExtend;
  if (extend == nullptr) {
    state.SkipWithError("librocksdb's crc32c::Extend was not found");
    return;
  }
  const std::string bytes(static_cast<size_t>(state.range(1)), 'x');
  uint32_t crc = 0;
  for (auto _ : state) {
    crc = extend(crc, bytes.data(), bytes.size());
    benchmark::DoNotOptimize(crc);
  }
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(bytes.size()));
  state.SetLabel(state.range(0) == 0 ? "library" : "instruction");
}
BENCHMARK(BM_Crc32c)->ArgNames({"cpu", "bytes"})->ArgsProduct({{0, 1}, {311, 4096, 8192}});

}  // namespace
}  // namespace toegang
