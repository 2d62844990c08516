// Copyright toegang authors.
//
// toegang load --db DIR FILE.jsonl: appends the file's facts atomically — every fact,
// or (on any bad line) none, with the line number — durably, and prints the count and
// the last sequence number. With --replicate CONNINFO the facts go into the history in
// PostgreSQL, and the last line is their consistency token ("token tg1....").
#include <iostream>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "engine/cli/cli.h"
#include "engine/toegang.h"

namespace toegang::cli {

int Load(const std::vector<std::string>& args) {
  if (args.size() != 1) {
    Complain("usage: toegang load [--db DIR] [--replicate CONNINFO] FILE.jsonl");
    return kBadInput;
  }
  const std::string& path = args[0];
  std::vector<int> lines;
  absl::StatusOr<std::vector<Fact>> facts = ReadFactsFile(path, &lines);
  if (!facts.ok()) {
    Complain(absl::StrCat(facts.status().message(), " (nothing was stored)"));
    // A bad line, a directory or a missing file is the caller's input; a failing disk
    // is not.
    return IsCallersFault(facts.status()) ? kBadInput : kFailure;
  }
  const size_t count = facts->size();
  std::unique_ptr<Engine> engine;
  if (int status = OpenRecordingEngine(&engine); status != kOk) return status;
  absl::StatusOr<uint64_t> last = engine->Record(*std::move(facts));
  if (!last.ok()) {
    Complain(absl::StrCat(AtLine(path, lines, last.status()), " (nothing was stored)"));
    return IsCallersFault(last.status()) ? kBadInput : kFailure;
  }
  std::cout << "loaded " << count << " facts; last sequence " << *last << "\n";
  if (std::string token = engine->ConsistencyToken(*last); !token.empty()) std::cout << "token " << token << "\n";
  return kOk;
}

}  // namespace toegang::cli
