// Copyright toegang authors.
//
// toegang retention report --db DIR [--at INSTANT] [--patient ID]: what the store holds
// about a patient (or, without --patient, about each, one JSON line per patient in id
// order) and when it is due, and why (policy/retention.h, docs/retention.md).
#include <iostream>

#include "absl/flags/flag.h"
#include "engine/cli/cli.h"
#include "engine/toegang.h"
#include "model/json.h"

namespace toegang::cli {

int Retention(const std::vector<std::string>& args) {
  if (args.size() != 1 || args[0] != "report") {
    Complain("usage: toegang retention report --db DIR [--at INSTANT] [--patient ID]");
    return kBadInput;
  }
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
  // The access log is read, not written: the store opened beside a running server.
  Options options;
  options.db_path = absl::GetFlag(FLAGS_db);
  options.durable.create_if_missing = false;
  options.durable.read_only = true;
  absl::StatusOr<std::unique_ptr<Engine>> engine = Engine::Open(std::move(options));
  if (!engine.ok()) {
    Complain(std::string(engine.status().message()));
    return OpenFailure(engine.status());
  }
  auto report = [&](absl::string_view id) {
    absl::StatusOr<RetentionReport> r = (*engine)->Retention(id, *at);
    if (!r.ok()) {
      Complain(std::string(r.status().message()));
      return false;
    }
    std::cout << RetentionJson(*r) << "\n";
    return true;
  };
  if (!patient.empty()) return report(patient) ? kOk : kFailure;
  std::string after;
  for (;;) {
    absl::StatusOr<std::vector<std::string>> ids = (*engine)->PatientIds(after, 1000);
    if (!ids.ok()) {
      Complain(std::string(ids.status().message()));
      return kFailure;
    }
    for (const std::string& id : *ids) {
      if (!report(id)) return kFailure;
    }
    if (ids->size() < 1000) break;
    after = ids->back();
  }
  std::cout.flush();
  return std::cout ? kOk : kFailure;
}

}  // namespace toegang::cli
