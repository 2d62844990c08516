// Copyright toegang authors.
//
// crash_writer DIR TAG: appends batches of facts to the store at DIR forever and prints
// "ack BATCH SEQ" after each acknowledged (durable) append. The crash test SIGKILLs it
// at random moments. Each batch is a person, a treating relationship and a consent for
// patient "TAG-BATCH", so a half-written batch is visible.
//
// crash_writer DIR TAG decide: decides requests forever (durable access log) and prints
// "ack EVENT_ID" after each decision returns.
//
// crash_writer DIR TAG decide-buffered: the same with the access log buffered and
// synced only when flushed: decides ten requests, flushes, then prints "ack EVENT_ID"
// for the ten.
//
// crash_writer DIR KEY retention: applies retention to every patient (the access log's
// key KEY) and prints "ack PATIENT" after each.
#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "engine/rocksdb/rocksdb_store.h"
#include "engine/toegang.h"

namespace {

int DecideForever(const char* dir, const char* tag, bool buffered) {
  toegang::Options options;
  options.db_path = dir;
  if (buffered) {
    options.audit->mode = toegang::AuditMode::kBuffered;
    options.audit->sync_interval = absl::Hours(1);
  }
  absl::StatusOr<std::unique_ptr<toegang::Engine>> engine = toegang::Engine::Open(std::move(options));
  if (!engine.ok()) {
    std::fprintf(stderr, "open: %s\n", std::string(engine.status().message()).c_str());
    return 1;
  }
  std::vector<std::string> unsynced;
  for (int i = 0;; ++i) {
    toegang::AccessRequest r;
    r.at = absl::FromUnixSeconds(1780000000 + i);
    r.actor = {absl::StrCat("clin-", i % 7), toegang::Role::kClinician, "praktijk"};
    r.patient = absl::StrCat(tag, "-pat");
    toegang::EngineDecision d = (*engine)->Decide(r);
    if (!d.decision.error.empty()) {
      std::fprintf(stderr, "decide: %s\n", d.decision.error.c_str());
      return 1;
    }
    unsynced.push_back(d.decision_id);
    if (buffered && unsynced.size() < 10) continue;
    if (buffered) {
      if (absl::Status s = (*engine)->FlushAccessLog(); !s.ok()) {
        std::fprintf(stderr, "flush: %s\n", std::string(s.message()).c_str());
        return 1;
      }
    }
    for (const std::string& id : unsynced) std::printf("ack %s\n", id.c_str());
    std::fflush(stdout);
    unsynced.clear();
  }
}

// Applies retention to every patient, in id order, now, with `key` for the access log's
// tombstones; prints "ack PATIENT" after each.
int ApplyRetention(const char* dir, const char* key) {
  toegang::Options options;
  options.db_path = dir;
  options.audit->checkpoint_key = key;
  absl::StatusOr<std::unique_ptr<toegang::Engine>> engine = toegang::Engine::Open(std::move(options));
  if (!engine.ok()) {
    std::fprintf(stderr, "open: %s\n", std::string(engine.status().message()).c_str());
    return 1;
  }
  absl::StatusOr<std::vector<std::string>> ids = (*engine)->PatientIds("", 100000);
  if (!ids.ok()) return 1;
  for (const std::string& id : *ids) {
    absl::StatusOr<toegang::Engine::RetentionRemoval> r = (*engine)->ApplyRetention(id, absl::Now());
    if (!r.ok()) {
      std::fprintf(stderr, "apply: %s\n", std::string(r.status().message()).c_str());
      return 1;
    }
    std::printf("ack %s\n", id.c_str());
    std::fflush(stdout);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 4 && std::string(argv[3]) == "decide") return DecideForever(argv[1], argv[2], false);
  if (argc == 4 && std::string(argv[3]) == "decide-buffered") return DecideForever(argv[1], argv[2], true);
  if (argc == 4 && std::string(argv[3]) == "retention") return ApplyRetention(argv[1], argv[2]);
  if (argc != 3) {
    std::fprintf(stderr, "usage: crash_writer DIR TAG [decide|decide-buffered]\n");
    return 2;
  }
  absl::StatusOr<std::unique_ptr<toegang::FactStore>> store = toegang::OpenDurableFactStore(argv[1], {});
  if (!store.ok()) {
    std::fprintf(stderr, "open: %s\n", std::string(store.status().message()).c_str());
    return 1;
  }
  for (int batch = 0;; ++batch) {
    std::string patient = absl::StrCat(argv[2], "-", batch);
    std::vector<toegang::Fact> facts;
    facts.push_back({toegang::Person{patient, absl::CivilDay(1980, 1, 1), std::nullopt}, {}});
    facts.push_back({toegang::Relationship{absl::StrCat("rel-", patient), "clin-1", toegang::Relation::kTreating,
                                           patient, {}},
                     {}});
    toegang::Consent c;
    c.id = absl::StrCat("con-", patient);
    c.patient = patient;
    c.granted_by = {patient};
    c.to = {toegang::Party::Kind::kActor, "clin-9", toegang::Role::kPatient};
    c.purposes = {toegang::Purpose::kReferral};
    c.categories = {toegang::Category::kMedical};
    c.actions = {toegang::Action::kRead};
    c.evidence = std::string(200 + batch % 300, 'e');  // vary record sizes
    facts.push_back({c, {}});
    absl::StatusOr<uint64_t> seq = (*store)->Append(std::move(facts));
    if (!seq.ok()) {
      std::fprintf(stderr, "append: %s\n", std::string(seq.status().message()).c_str());
      return 1;
    }
    std::printf("ack %d %llu\n", batch, static_cast<unsigned long long>(*seq));
    std::fflush(stdout);
  }
}
