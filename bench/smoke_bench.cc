// Baselines for the other benchmarks: the civil-day conversion every decision makes
// (DOMAIN D4: age on the civil date of `at` in Europe/Amsterdam); the JSON a request and
// its answer cost at the CLI and the HTTP front; a SHA-256 of an access-log record, by
// OpenSSL (the algorithm looked up by name, and fetched once) and by Nettle; and a
// hash-table lookup of a random patient among 100,000, the floor under a decision on a
// store of that size.
#include <openssl/evp.h>
#include <nettle/sha2.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
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

// SHA-256 over a 32-byte previous hash and a 300-byte record, as the access log chains
// them. Arg 0: EVP_sha256() at each init (OpenSSL 3 looks the algorithm up by name);
// arg 1: fetched once (OpenSSL 3 still makes and frees a provider context at each
// digest); arg 2: Nettle, as engine/audit/audit_record.cc does.
void BM_Sha256Record(benchmark::State& state) {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_MD* fetched = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  const EVP_MD* md = state.range(0) == 1 ? fetched : EVP_sha256();
  const std::string prev(32, 'p');
  std::string record(300, 'r');
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  for (auto _ : state) {
    if (state.range(0) == 2) {
      sha256_ctx nettle;
      sha256_init(&nettle);
      sha256_update(&nettle, prev.size(), reinterpret_cast<const uint8_t*>(prev.data()));
      sha256_update(&nettle, record.size(), reinterpret_cast<const uint8_t*>(record.data()));
      sha256_digest(&nettle, SHA256_DIGEST_SIZE, out);
    } else {
      EVP_DigestInit_ex(ctx, md, nullptr);
      EVP_DigestUpdate(ctx, prev.data(), prev.size());
      EVP_DigestUpdate(ctx, record.data(), record.size());
      EVP_DigestFinal_ex(ctx, out, &len);
    }
    record[0] = static_cast<char>(out[0]);
  }
  EVP_MD_free(fetched);
  EVP_MD_CTX_free(ctx);
}
BENCHMARK(BM_Sha256Record)->ArgName("how")->Arg(0)->Arg(1)->Arg(2);

// A random patient's record pointer among 100,000 (flat_hash_map<string, shared_ptr>,
// keys "pat-N"), copied and its record touched, lookups back to back: out-of-order
// execution overlaps the misses of successive lookups, which a decision cannot.
void BM_RandomPatientLookup(benchmark::State& state) {
  constexpr int kPatients = 100000;
  struct Record {
    std::string patient;
    char rest[300];
  };
  absl::flat_hash_map<std::string, std::shared_ptr<const Record>> records;
  for (int i = 0; i < kPatients; ++i) {
    auto r = std::make_shared<Record>();
    r->patient = absl::StrCat("pat-", i);
    records[r->patient] = std::move(r);
  }
  std::vector<std::string> keys;
  uint64_t s = 42;
  for (int k = 0; k < 200000; ++k) {
    s = s * 6364136223846793005ULL + 1442695040888963407ULL;
    keys.push_back(absl::StrCat("pat-", (s >> 33) % kPatients));
  }
  size_t k = 0;
  for (auto _ : state) {
    std::shared_ptr<const Record> r = records.find(keys[k++ % keys.size()])->second;
    benchmark::DoNotOptimize(r->patient.size());
  }
}
BENCHMARK(BM_RandomPatientLookup);

}  // namespace
