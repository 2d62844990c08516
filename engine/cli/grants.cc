// Copyright toegang authors.
//
// toegang grants --db DIR --patient ID [--at INSTANT] [--action A] [--category C]
// [--purpose P]: who may do this to the patient's dossier at --at (default now), as
// JSON (docs/grants.md): each grant the decision `decide` gives that party.
#include <iostream>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "engine/cli/cli.h"
#include "engine/toegang.h"
#include "model/json.h"
#include "model/time.h"

namespace toegang::cli {

int Grants(const std::vector<std::string>& args) {
  const std::string patient = absl::GetFlag(FLAGS_patient);
  if (!args.empty() || patient.empty()) {
    Complain("usage: toegang grants --db DIR --patient ID [--at INSTANT] [--action A] [--category C] [--purpose P]");
    return kBadInput;
  }
  if (absl::Status s = CheckId(patient, "--patient"); !s.ok()) {
    Complain(std::string(s.message()));
    return kBadInput;
  }
  GrantsQuery query;
  absl::StatusOr<absl::Time> at = AtFlag();
  if (!at.ok()) {
    Complain(std::string(at.status().message()));
    return kBadInput;
  }
  query.at = *at;
  absl::StatusOr<Action> action = NameFlag<Action>("action", absl::GetFlag(FLAGS_action));
  absl::StatusOr<Category> category = NameFlag<Category>("category", absl::GetFlag(FLAGS_category));
  absl::Status bad = !action.ok() ? action.status() : category.status();
  if (bad.ok() && !absl::GetFlag(FLAGS_purpose).empty()) {
    absl::StatusOr<Purpose> purpose = NameFlag<Purpose>("purpose", absl::GetFlag(FLAGS_purpose));
    if (purpose.ok()) {
      query.purpose = *purpose;
    } else {
      bad = purpose.status();
    }
  }
  if (!bad.ok()) {
    Complain(std::string(bad.message()));
    return kBadInput;
  }
  query.action = *action;
  query.category = *category;
  std::unique_ptr<Engine> engine;
  if (int status = OpenReadingEngine(&engine); status != kOk) return status;
  absl::StatusOr<GrantsAnswer> answer = engine->Grants(patient, query);
  if (!answer.ok()) {
    Complain(std::string(answer.status().message()));
    return kFailure;
  }
  std::cout << answer->Json() << "\n";
  return kOk;
}

}  // namespace toegang::cli
