// Copyright toegang authors.
//
// toegang decide: access requests (JSON Lines) on stdin, one decision per line on
// stdout, in order. A malformed line gets a deny with reason invalid_request and the
// error on its own line; the rest go on; the exit status is then 2.
#include <iostream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "engine/cli/cli.h"
#include "engine/toegang.h"
#include "model/json.h"
#include "model/time.h"

ABSL_FLAG(std::string, at_least, "",
          "decide: a consistency token (from a write through any node of the history): every request without "
          "its own is decided on facts at least that new, or denied replica_behind");

namespace toegang::cli {
namespace {

// Lines that are already waiting are decided together (DecideBatch: with the durable
// log, one sync for many) and answered with one write; the answers are flushed whenever
// no more input is waiting, so a caller that sends one request and waits for its answer
// gets it at once.
struct Batch {
  std::vector<std::string> answers;  // one per line, in order
  std::vector<AccessRequest> requests;
  std::vector<size_t> answer_of;  // requests[i] is answered in answers[answer_of[i]]
};

// Reads up to 256 lines into `batch`: the first one waiting for it, the rest only while
// more input is already there. A line that is not a request is answered at once (and
// `*status` becomes kBadInput). False at the end of the input.
bool ReadWaitingLines(Batch* batch, int* status) {
  constexpr size_t kBatch = 256;
  batch->answers.clear();
  batch->requests.clear();
  batch->answer_of.clear();
  std::string line;
  while (batch->answers.size() < kBatch) {
    if (!batch->answers.empty() && std::cin.rdbuf()->in_avail() <= 0) return true;  // would wait
    if (!std::getline(std::cin, line)) return false;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    absl::StatusOr<AccessRequest> request = ParseRequestJson(line);
    if (!request.ok()) {
      batch->answers.push_back(InvalidRequestJson(request.status().message()));
      *status = kBadInput;
      continue;
    }
    batch->answer_of.push_back(batch->answers.size());
    batch->answers.emplace_back();
    batch->requests.push_back(*std::move(request));
  }
  return true;
}

}  // namespace

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
  if (absl::Status s = AuditFlags(&*options.audit); !s.ok()) {
    Complain(std::string(s.message()));
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
  if (absl::Status s = ReplicateFlags(&options); !s.ok()) {
    Complain(std::string(s.message()));
    return kBadInput;
  }
  const std::string at_least = absl::GetFlag(FLAGS_at_least);
  const bool explain = absl::GetFlag(FLAGS_explain);
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
  std::ios::sync_with_stdio(false);
  Batch batch;
  bool more = true;
  while (more) {
    more = ReadWaitingLines(&batch, &status);
    for (AccessRequest& r : batch.requests) {
      if (r.at_least.empty()) r.at_least = at_least;
      r.explain = r.explain || explain;
    }
    std::vector<EngineDecision> decided;
    if (*as_of == absl::InfiniteFuture()) {
      decided = (*engine)->DecideBatch(batch.requests);
    } else {
      for (const AccessRequest& r : batch.requests) decided.push_back((*engine)->DecideAsOf(r, *as_of));
    }
    for (size_t i = 0; i < decided.size(); ++i) {
      batch.answers[batch.answer_of[i]] = decided[i].Json();
    }
    std::string out;
    for (const std::string& a : batch.answers) absl::StrAppend(&out, a, "\n");
    std::cout << out;
    if (!more || std::cin.rdbuf()->in_avail() <= 0) std::cout << std::flush;
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
