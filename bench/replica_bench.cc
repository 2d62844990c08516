// Copyright toegang authors.
//
// Several nodes, one history (engine/replica): on a PostgreSQL this benchmark starts
// itself (engine/testing/postgres.h, loopback Unix socket, fsync on):
//   BM_ReplicationLag      one fact written through node A until node B has applied it:
//                          p50/p99 of commit -> visible, and of the write itself
//   BM_WriteThroughput     facts/s through one node in batches of 1,000
//   BM_DecideOnReplica     Engine::Decide over a replica against a single node, same
//                          facts and requests, in one run (nothing on the path changed)
#include <algorithm>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "benchmark/benchmark.h"
#include "engine/replica/replica.h"
#include "engine/testing/postgres.h"
#include "engine/toegang.h"
#include "model/json.h"

namespace toegang {
namespace {

// One server for the run, stopped and removed at exit with the static's destructor.
testing::TestPostgres& Postgres() {
  static const std::unique_ptr<testing::TestPostgres> pg = [] {
    absl::StatusOr<std::unique_ptr<testing::TestPostgres>> started = testing::TestPostgres::Start();
    if (!started.ok()) {
      fprintf(stderr, "replica_bench: %s\n", std::string(started.status().message()).c_str());
      std::abort();
    }
    return *std::move(started);
  }();
  return *pg;
}

std::string NewDatabase() {
  static int n = 0;
  absl::StatusOr<std::string> db = Postgres().NewDatabase(absl::StrCat("bench", ++n));
  if (!db.ok()) std::abort();
  return *db;
}

std::unique_ptr<ReplicatedStore> Node(const std::string& conninfo, const std::string& name) {
  ReplicaOptions o;
  o.conninfo = conninfo;
  o.node = name;
  absl::StatusOr<std::unique_ptr<ReplicatedStore>> s = ReplicatedStore::Open(o, NewMemoryFactStore());
  if (!s.ok()) std::abort();
  return *std::move(s);
}

Fact Person(const std::string& id) {
  return *ParseFactJson(absl::StrCat(R"({"type":"person","id":")", id, R"(","birth_date":"1990-01-01"})"));
}

double Quantile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(q * static_cast<double>(v.size())))];
}

void BM_ReplicationLag(benchmark::State& state) {
  const std::string db = NewDatabase();
  std::unique_ptr<ReplicatedStore> a = Node(db, "a"), b = Node(db, "b");
  std::vector<double> lag_us, write_us;
  int i = 0;
  for (auto _ : state) {
    const absl::Time start = absl::Now();
    absl::StatusOr<uint64_t> seq = a->Append({Person(absl::StrCat("pat-", i++))});
    const absl::Time committed = absl::Now();
    if (!seq.ok() || !b->WaitApplied(*seq, absl::Seconds(10))) {
      state.SkipWithError("a write was not applied on the other node");
      break;
    }
    const absl::Time visible = absl::Now();
    write_us.push_back(absl::ToDoubleMicroseconds(committed - start));
    lag_us.push_back(absl::ToDoubleMicroseconds(std::max(visible - committed, absl::ZeroDuration())));
  }
  state.counters["lag_p50_us"] = Quantile(lag_us, 0.5);
  state.counters["lag_p99_us"] = Quantile(lag_us, 0.99);
  state.counters["write_p50_us"] = Quantile(write_us, 0.5);
  state.counters["write_p99_us"] = Quantile(write_us, 0.99);
}
BENCHMARK(BM_ReplicationLag)->Iterations(2000)->UseRealTime()->Unit(benchmark::kMicrosecond);

void BM_WriteThroughput(benchmark::State& state) {
  const std::string db = NewDatabase();
  std::unique_ptr<ReplicatedStore> a = Node(db, "a");
  const int batch = static_cast<int>(state.range(0));
  int next = 0;
  int64_t facts = 0;
  for (auto _ : state) {
    state.PauseTiming();
    std::vector<Fact> f;
    for (int i = 0; i < batch; ++i) f.push_back(Person(absl::StrCat("pat-", next++)));
    state.ResumeTiming();
    if (!a->Append(std::move(f)).ok()) {
      state.SkipWithError("a write failed");
      break;
    }
    facts += batch;
  }
  state.counters["facts_per_s"] = benchmark::Counter(static_cast<double>(facts), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_WriteThroughput)->Arg(1000)->Iterations(100)->UseRealTime()->Unit(benchmark::kMillisecond);

// 10,000 patients each with a treating clinician; 100,000 requests of those clinicians.
void BM_DecideOnReplica(benchmark::State& state) {
  const bool replicated = state.range(0) == 1;
  Options o;
  o.audit.reset();
  if (replicated) {
    ReplicaOptions r;
    r.conninfo = NewDatabase();
    o.replicate = r;
  }
  std::unique_ptr<Engine> engine = *Engine::Open(std::move(o));
  constexpr int kPatients = 10000;
  std::vector<Fact> facts;
  for (int i = 0; i < kPatients; ++i) {
    facts.push_back(Person(absl::StrCat("pat-", i)));
    facts.push_back(*ParseFactJson(absl::StrCat(R"({"type":"relationship","subject":"clin-)", i % 500,
                                                R"(","relation":"treating","object":"pat-)", i, R"("})")));
  }
  if (!engine->Record(std::move(facts)).ok()) std::abort();
  std::vector<AccessRequest> requests;
  std::mt19937 rng(7);
  for (int i = 0; i < 100000; ++i) {
    const int p = static_cast<int>(rng() % kPatients);
    AccessRequest r;
    r.at = absl::Now() + absl::Hours(1);
    r.actor = {absl::StrCat("clin-", p % 500), Role::kClinician, ""};
    r.patient = absl::StrCat("pat-", p);
    requests.push_back(std::move(r));
  }
  size_t i = 0, permits = 0;
  for (auto _ : state) {
    permits += engine->Decide(requests[i++ % requests.size()]).decision.permitted();
  }
  state.counters["permit_share"] = static_cast<double>(permits) / static_cast<double>(state.iterations());
  state.SetLabel(replicated ? "replica" : "single node");
}
BENCHMARK(BM_DecideOnReplica)->Arg(0)->Arg(1)->Arg(0)->Arg(1)->Unit(benchmark::kNanosecond);

}  // namespace
}  // namespace toegang
