// Copyright toegang authors.
//
// toegang history --db DIR --patient ID [--as-of INSTANT]: the patient's facts as JSON
// Lines, in arrival order, as the store knew them at --as-of (by arrival), each with
// its sequence number and arrival instant. With --organization ID instead: the
// organisation's facts (its care-provider categories), the same way.
#include <iostream>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "engine/cli/cli.h"
#include "engine/toegang.h"
#include "model/json.h"
#include "model/time.h"

namespace toegang::cli {

int History(const std::vector<std::string>& args) {
  const std::string patient = absl::GetFlag(FLAGS_patient);
  const std::string organization = absl::GetFlag(FLAGS_organization);
  if (!args.empty() || patient.empty() == organization.empty()) {
    Complain("usage: toegang history --db DIR (--patient ID | --organization ID) [--as-of INSTANT]");
    return kBadInput;
  }
  if (absl::Status s = CheckId(patient.empty() ? organization : patient, patient.empty() ? "--organization" : "--patient");
      !s.ok()) {
    Complain(std::string(s.message()));
    return kBadInput;
  }
  absl::StatusOr<absl::Time> as_of = AsOfFlag();
  if (!as_of.ok()) {
    Complain(std::string(as_of.status().message()));
    return kBadInput;
  }
  std::unique_ptr<Engine> engine;
  if (int status = OpenReadingEngine(&engine); status != kOk) return status;
  absl::StatusOr<std::vector<Fact>> facts =
      patient.empty() ? engine->OrganizationHistory(organization, *as_of) : engine->History(patient, *as_of);
  if (!facts.ok()) {
    Complain(std::string(facts.status().message()));
    return kFailure;
  }
  for (const Fact& f : *facts) std::cout << FactToJson(f, /*with_provenance=*/true) << "\n";
  return kOk;
}

}  // namespace toegang::cli
