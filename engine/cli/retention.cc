// Copyright toegang authors.
//
// toegang retention report --db DIR [--at INSTANT] [--patient ID]: what the store holds
// about a patient (or, without --patient, about each, one JSON line per patient in id
// order) and when it is due, and why (policy/retention.h, docs/retention.md).
//
// toegang retention apply --db DIR --audit-key-file FILE [--at INSTANT] [--patient ID]:
// removes what is due and not held, patient by patient, each in one atomic write
// (Engine::ApplyRetention); a JSON line per patient something was removed of.
#include <iostream>

#include "absl/flags/flag.h"
#include "engine/cli/cli.h"
#include "engine/toegang.h"
#include "absl/strings/str_cat.h"
#include "model/json.h"
#include "model/time.h"
#include "nlohmann/json.hpp"

namespace toegang::cli {
namespace {

std::string RetentionRemovalJson(const Engine::RetentionRemoval& r, absl::Time at) {
  nlohmann::json j = {{"patient", r.patient},
                      {"removed_at", FormatInstant(at)},
                      {"facts", r.facts},
                      {"term", r.facts_term.empty() ? nlohmann::json(nullptr) : nlohmann::json(r.facts_term)},
                      {"kept", r.kept},
                      {"access_log", r.access_log}};
  return JsonText(j);
}

}  // namespace

int Retention(const std::vector<std::string>& args) {
  if (args.size() != 1 || (args[0] != "report" && args[0] != "apply")) {
    Complain("usage: toegang retention report --db DIR [--at INSTANT] [--patient ID], or toegang retention apply "
             "--db DIR --audit-key-file FILE [--at INSTANT] [--patient ID]");
    return kBadInput;
  }
  const bool apply = args[0] == "apply";
  const std::string patient = absl::GetFlag(FLAGS_patient);
  if (!patient.empty()) {
    if (absl::Status s = CheckId(patient, "--patient"); !s.ok()) {
      Complain(std::string(s.message()));
      return kBadInput;
    }
  }
  absl::StatusOr<absl::Time> at = AtFlag();
  if (!at.ok()) {
    Complain(std::string(at.status().message()));
    return kBadInput;
  }
  absl::StatusOr<std::string> key = AuditKeyFlag();
  if (!key.ok()) {
    Complain(std::string(key.status().message()));
    return kBadInput;
  }
  if (apply && *at > absl::Now()) {
    Complain(absl::StrCat("--at ", FormatInstant(*at), " is in the future: nothing is removed before it is due"));
    return kBadInput;
  }
  if (apply && key->empty()) {
    Complain("retention apply needs --audit-key-file: the tombstones it leaves in the access log are authenticated "
             "with that key");
    return kBadInput;
  }
  // A report reads, beside a running server; a removal writes, and needs the store to
  // itself.
  Options options;
  options.db_path = absl::GetFlag(FLAGS_db);
  options.durable.create_if_missing = false;
  options.durable.read_only = !apply;
  options.audit->checkpoint_key = *key;
  absl::StatusOr<std::unique_ptr<Engine>> engine = Engine::Open(std::move(options));
  if (!engine.ok()) {
    Complain(std::string(engine.status().message()));
    return OpenFailure(engine.status());
  }
  size_t patients = 0, facts = 0, records = 0;
  auto remove = [&](absl::string_view id) {
    absl::StatusOr<Engine::RetentionRemoval> r = (*engine)->ApplyRetention(id, *at);
    if (!r.ok()) {
      Complain(absl::StrCat("patient '", id, "': ", r.status().message()));
      return false;
    }
    if (r->facts == 0 && r->access_log == 0) return true;
    ++patients;
    facts += r->facts;
    records += r->access_log;
    std::cout << RetentionRemovalJson(*r, *at) << "\n";
    return true;
  };
  auto report = [&](absl::string_view id) {
    absl::StatusOr<RetentionReport> r = (*engine)->Retention(id, *at);
    if (!r.ok()) {
      Complain(std::string(r.status().message()));
      return false;
    }
    std::cout << RetentionJson(*r) << "\n";
    return true;
  };
  auto each = [&](absl::string_view id) { return apply ? remove(id) : report(id); };
  auto done = [&](bool ok) {
    if (apply) {
      std::cerr << "removed " << facts << " facts and " << records << " access log records of " << patients
                << " patients\n";
    }
    // What went is gone from every answer; until the files are rewritten, not from the
    // disk (even after a refusal part-way: what was removed so far).
    if (apply && facts + records > 0) {
      if (absl::Status s = (*engine)->ScrubRemoved(); !s.ok()) {
        Complain(absl::StrCat("removed, but not yet from the store's files: ", s.message(),
                              " (once the cause is gone, toegang store scrub rewrites them)"));
        ok = false;
      } else {
        std::cerr << "rewrote the store's files: what was removed is gone from the disk too\n";
      }
    }
    std::cout.flush();
    return ok && std::cout ? kOk : kFailure;
  };
  if (!patient.empty()) return done(each(patient));
  std::string after;
  for (;;) {
    absl::StatusOr<std::vector<std::string>> ids = (*engine)->PatientIds(after, 1000);
    if (!ids.ok()) {
      Complain(std::string(ids.status().message()));
      return done(false);
    }
    for (const std::string& id : *ids) {
      if (!each(id)) return done(false);
    }
    if (ids->size() < 1000) break;
    after = ids->back();
  }
  return done(true);
}

}  // namespace toegang::cli
