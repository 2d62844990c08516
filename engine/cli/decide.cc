// Copyright toegang authors.
//
// toegang decide: access requests (JSON Lines) on stdin, one decision per line on
// stdout, in order. A malformed line gets a deny with reason invalid_request and the
// error on its own line; the rest go on; the exit status is then 2.
#include <iostream>
#include <string>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "engine/cli/cli.h"
#include "engine/toegang.h"
#include "model/json.h"
#include "model/time.h"

namespace toegang::cli {

int Decide(const std::vector<std::string>& args) {
  if (!args.empty()) {
    Complain("decide takes no arguments; requests come on stdin");
    return kBadInput;
  }
  absl::StatusOr<std::shared_ptr<const Policy>> policy = LoadPolicyFlag();
  if (!policy.ok()) {
    Complain(std::string(policy.status().message()));
    return kBadInput;
  }
  absl::StatusOr<absl::Time> as_of = AsOfFlag();
  if (!as_of.ok()) {
    Complain(std::string(as_of.status().message()));
    return kBadInput;
  }

  Options options;
  options.policy = *policy;
  const std::string mode = absl::GetFlag(FLAGS_audit_mode);
  if (mode == "buffered") {
    options.audit->mode = AuditMode::kBuffered;
  } else if (mode != "durable") {
    Complain("--audit-mode is durable or buffered, not '" + mode + "'");
    return kBadInput;
  }
  const std::string facts_path = absl::GetFlag(FLAGS_facts);
  if (!facts_path.empty()) {
    // Facts from a file have no arrival in a store: only their recorded_at limits them.
    options.clock = NoArrivalClock;
  } else {
    options.db_path = absl::GetFlag(FLAGS_db);
    options.durable.create_if_missing = false;  // deciding over no store is an error
  }
  absl::StatusOr<std::unique_ptr<Engine>> engine = Engine::Open(std::move(options));
  if (!engine.ok()) {
    Complain(std::string(engine.status().message()));
    return OpenFailure(engine.status());
  }
  if (!facts_path.empty()) {
    if (absl::Status recorded = RecordFactsFile(**engine, facts_path); !recorded.ok()) {
      Complain(std::string(recorded.message()));
      return kBadInput;
    }
  }

  int status = kOk;
  std::string line;
  std::ios::sync_with_stdio(false);
  while (std::getline(std::cin, line)) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    absl::StatusOr<AccessRequest> request = ParseRequestJson(line);
    if (!request.ok()) {
      std::cout << InvalidRequestJson(request.status().message()) << "\n" << std::flush;
      status = kBadInput;
      continue;
    }
    EngineDecision d = (*engine)->DecideAsOf(*request, *as_of);
    std::cout << DecisionToJson(d.decision, d.decision_id) << "\n" << std::flush;
  }
  if (std::cin.bad()) {
    // getline stops at a read error as at the end of the input: say so, or the caller
    // takes the decisions so far for all of them.
    Complain("reading requests from standard input failed; the requests after the last answer were not decided");
    return kFailure;
  }
  return status;
}

}  // namespace toegang::cli
