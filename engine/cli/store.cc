// Copyright toegang authors.
//
// toegang store accept-loss --db DIR
//     A store whose write-ahead log was damaged, truncated or removed comes back holding
//     less than it acknowledged, and every command refuses it (engine/rocksdb/ack_record.h).
//     When no backup holds the rest, this opens it as it is and records its present
//     state as acknowledged. It says what was lost: those facts must be recorded again.
//
// toegang store scrub --db DIR
//     Rewrites the store's files so that nothing removed (retention apply, audit purge)
//     is left on the disk (Engine::ScrubRemoved). Those two do it themselves; this is for
//     when theirs failed part-way, or for a store that removed facts before they did.
#include <iostream>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "engine/cli/cli.h"
#include "engine/toegang.h"

namespace toegang::cli {

namespace {

int Scrub(const std::string& path) {
  Options options;
  options.db_path = path;
  options.durable.create_if_missing = false;
  absl::StatusOr<std::unique_ptr<Engine>> engine = Engine::Open(std::move(options));
  if (!engine.ok()) {
    Complain(std::string(engine.status().message()));
    return OpenFailure(engine.status());
  }
  if (absl::Status s = (*engine)->ScrubRemoved(); !s.ok()) {
    Complain(absl::StrCat("the store's files were not rewritten: ", s.message()));
    return kFailure;
  }
  std::cout << "rewrote the store's files: nothing removed is left on the disk\n";
  return kOk;
}

}  // namespace

int Store(const std::vector<std::string>& args) {
  if (args.size() != 1 || (args[0] != "accept-loss" && args[0] != "scrub")) {
    Complain("usage: toegang store accept-loss --db DIR, or toegang store scrub --db DIR");
    return kBadInput;
  }
  const std::string path = absl::GetFlag(FLAGS_db);
  if (args[0] == "scrub") return Scrub(path);
  Options options;
  options.db_path = path;
  options.durable.create_if_missing = false;
  absl::StatusOr<std::unique_ptr<Engine>> whole = Engine::Open(options);
  if (whole.ok()) {
    std::cout << "nothing to accept: the store holds everything it acknowledged (last sequence "
              << (*whole)->LastSequence() << ")\n";
    return kOk;
  }
  if (!absl::IsDataLoss(whole.status())) {
    Complain(std::string(whole.status().message()));
    return OpenFailure(whole.status());
  }
  std::cerr << "toegang: " << whole.status().message() << "\n";
  options.durable.accept_loss = true;
  absl::StatusOr<std::unique_ptr<Engine>> accepted = Engine::Open(std::move(options));
  if (!accepted.ok()) {
    Complain(absl::StrCat("cannot accept the loss: ", accepted.status().message()));
    return kFailure;
  }
  std::cout << "accepted: the store now holds facts up to sequence " << (*accepted)->LastSequence()
            << "; facts acknowledged after it are lost and must be recorded again\n";
  return kOk;
}

}  // namespace toegang::cli
