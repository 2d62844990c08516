// Copyright toegang authors.
#include <fstream>
#include <iostream>

#include "absl/flags/commandlineflag.h"
#include "absl/flags/flag.h"
#include "absl/flags/reflection.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/ascii.h"
#include "absl/time/time.h"
#include "base/files.h"
#include "engine/cli/cli.h"
#include "model/json.h"
#include "model/time.h"

ABSL_FLAG(std::string, audit_mode, "durable",
          "decide: durable (each decision returns once its access-log record is synced) or "
          "buffered (records are synced in batches in the background)");

ABSL_FLAG(std::string, audit_key_file, "",
          "audit verify, audit purge: the file (mode 0600) holding the key that authenticates the access "
          "log's purge checkpoints");

ABSL_FLAG(std::string, replicate, "",
          "serve, load, decide, replica status: a PostgreSQL connection string (libpq: 'host=... dbname=... "
          "user=...' or postgresql://...): the store becomes a replica of the history kept there (README "
          "\"Running several nodes\")");
ABSL_FLAG(std::string, node, "", "with --replicate: this node's name in the history (default: the host's name)");
// Durations are strings, parsed below: an absl::Duration flag pulls in code GCC's
// ThreadSanitizer refuses to build (atomic_thread_fence).
ABSL_FLAG(std::string, audit_sync_interval, "0s",
          "serve, decide with --audit-mode buffered: sync the access log at most this often (e.g. 10ms, at "
          "most 1s; 0s: every batch). Fewer syncs cost a machine crash the records of the last interval");
ABSL_FLAG(std::string, max_wait, "1s",
          "with --replicate: how long a request carrying a consistency token waits for this node to apply it "
          "(e.g. 250ms, 1s; at most 1m)");

namespace toegang::cli {

bool DbFlagGiven() {
  const absl::CommandLineFlag* db = absl::FindCommandLineFlag("db");
  return db != nullptr && db->CurrentValue() != db->DefaultValue();
}

absl::Status ReplicateFlags(Options* options) {
  absl::Duration wait;
  if (!absl::ParseDuration(absl::GetFlag(FLAGS_max_wait), &wait) || wait < absl::ZeroDuration() ||
      wait > absl::Minutes(1)) {
    return absl::InvalidArgumentError(absl::StrCat("--max-wait: '", absl::GetFlag(FLAGS_max_wait),
                                                   "' is not a duration between 0s and 1m (e.g. 250ms, 1s)"));
  }
  const std::string conninfo = absl::GetFlag(FLAGS_replicate);
  if (conninfo.empty()) return absl::OkStatus();
  ReplicaOptions r;
  r.conninfo = conninfo;
  r.node = absl::GetFlag(FLAGS_node);
  r.max_wait = wait;
  options->replicate = std::move(r);
  return absl::OkStatus();
}

absl::Status AuditFlags(AuditOptions* audit) {
  const std::string mode = absl::GetFlag(FLAGS_audit_mode);
  if (mode == "buffered") {
    audit->mode = AuditMode::kBuffered;
  } else if (mode == "durable") {
    audit->mode = AuditMode::kDurable;
  } else {
    return absl::InvalidArgumentError(absl::StrCat("--audit-mode is durable or buffered, not '", mode, "'"));
  }
  const std::string interval = absl::GetFlag(FLAGS_audit_sync_interval);
  absl::Duration d;
  if (!absl::ParseDuration(interval, &d) || d < absl::ZeroDuration() || d > absl::Seconds(1)) {
    return absl::InvalidArgumentError(absl::StrCat("--audit-sync-interval: '", interval,
                                                   "' is not a duration between 0s and 1s (e.g. 10ms)"));
  }
  if (d > absl::ZeroDuration() && audit->mode != AuditMode::kBuffered) {
    return absl::InvalidArgumentError(
        "--audit-sync-interval is for --audit-mode buffered: a durable decision returns once its record is synced");
  }
  audit->sync_interval = d;
  return absl::OkStatus();
}

absl::StatusOr<std::string> AuditKeyFlag() {
  const std::string path = absl::GetFlag(FLAGS_audit_key_file);
  if (path.empty()) return std::string();
  absl::StatusOr<std::string> key = ReadSecretFile(path);
  if (!key.ok()) return absl::InvalidArgumentError(absl::StrCat("--audit-key-file: ", key.status().message()));
  std::string k(absl::StripTrailingAsciiWhitespace(*key));
  if (k.size() < 16) {
    return absl::InvalidArgumentError("--audit-key-file: the key is shorter than 16 bytes; use e.g. 32 random bytes "
                                      "(head -c 32 /dev/urandom | base64)");
  }
  return k;
}

int OpenFailure(const absl::Status& status) {
  return IsCallersFault(status) ? kBadInput : kFailure;
}

void Complain(const std::string& message) { std::cerr << "toegang: " << message << "\n"; }

namespace {

// An instant flag's value: `absent` when not given; the error names the flag.
absl::StatusOr<absl::Time> InstantFlag(const std::string& value, absl::string_view flag, absl::Time absent) {
  if (value.empty()) return absent;
  absl::StatusOr<absl::Time> t = ParseInstant(value);
  if (!t.ok()) return absl::InvalidArgumentError(absl::StrCat(flag, ": ", t.status().message()));
  return *t;
}

}  // namespace

absl::StatusOr<absl::Time> AsOfFlag() {
  return InstantFlag(absl::GetFlag(FLAGS_as_of), "--as-of", absl::InfiniteFuture());
}

absl::StatusOr<absl::Time> AtFlag() { return InstantFlag(absl::GetFlag(FLAGS_at), "--at", absl::Now()); }


absl::StatusOr<std::string> ReadFile(const std::string& path) { return ReadWholeFile(path); }

absl::StatusOr<std::shared_ptr<const Policy>> LoadPolicyFlag() {
  std::string name = absl::GetFlag(FLAGS_policy);
  if (name.empty()) return BuiltinPolicy("wgbo-default");
  std::ifstream probe(name);
  if (!probe && BuiltinPolicyText(name) != nullptr) return BuiltinPolicy(name);
  absl::StatusOr<std::string> text = ReadFile(name);
  if (!text.ok()) return absl::InvalidArgumentError(absl::StrCat("--policy: ", text.status().message()));
  absl::StatusOr<std::shared_ptr<const Policy>> policy = CompilePolicy(*text);
  if (!policy.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("--policy ", name, " does not pass the check:\n",
                                                   policy.status().message()));
  }
  return policy;
}

std::string AtLine(const std::string& path, const std::vector<int>& lines, const absl::Status& status) {
  const size_t n = FactPositionOf(status);
  if (n >= 1 && n <= lines.size()) return absl::StrCat(path, ":", lines[n - 1], ": ", WhatAtFact(status));
  return absl::StrCat(path, ": ", status.message());
}

absl::Status RecordFactsFile(Engine& engine, const std::string& path) {
  std::vector<int> lines;
  absl::StatusOr<std::vector<Fact>> facts = ReadFactsFile(path, &lines);
  if (!facts.ok()) return absl::InvalidArgumentError(facts.status().message());
  absl::StatusOr<uint64_t> recorded = engine.Record(*std::move(facts));
  if (!recorded.ok()) return absl::InvalidArgumentError(AtLine(path, lines, recorded.status()));
  return absl::OkStatus();
}

absl::StatusOr<std::vector<Fact>> ReadFactsFile(const std::string& path, std::vector<int>* lines) {
  // The whole file first: a read that fails part-way fails the file, rather than
  // loading the lines read before it.
  absl::StatusOr<std::string> text = ReadWholeFile(path);
  if (!text.ok()) return text.status();
  return ParseFactLines(path, *text, lines);
}

absl::StatusOr<std::vector<Fact>> ParseFactLines(const std::string& path, absl::string_view text,
                                                 std::vector<int>* lines) {
  absl::StatusOr<FactLines> parsed = ::toegang::ParseFactLines(text);
  if (!parsed.ok()) {
    return absl::Status(parsed.status().code(),
                        absl::StrCat(path, ":", LineOf(parsed.status()), ": ", WhatAtLine(parsed.status())));
  }
  if (lines) *lines = std::move(parsed->lines);
  return std::move(parsed->facts);
}

int OpenRecordingEngine(std::unique_ptr<Engine>* engine) {
  Options options;
  options.db_path = absl::GetFlag(FLAGS_db);
  if (absl::Status s = ReplicateFlags(&options); !s.ok()) {
    Complain(std::string(s.message()));
    return kBadInput;
  }
  // Recording into a replicated history checks the facts against the whole history: on
  // a replica in memory, unless --db names one.
  if (options.replicate && !DbFlagGiven()) options.db_path.clear();
  options.audit.reset();
  absl::StatusOr<std::unique_ptr<Engine>> opened = Engine::Open(std::move(options));
  if (!opened.ok()) {
    Complain(std::string(opened.status().message()));
    return OpenFailure(opened.status());
  }
  *engine = *std::move(opened);
  return kOk;
}

int OpenReadingEngine(std::unique_ptr<Engine>* engine) {
  Options options;
  options.db_path = absl::GetFlag(FLAGS_db);
  options.durable.create_if_missing = false;
  options.durable.read_only = true;  // works beside a running server
  options.audit.reset();             // reading decides nothing
  absl::StatusOr<std::unique_ptr<Engine>> opened = Engine::Open(std::move(options));
  if (!opened.ok()) {
    Complain(std::string(opened.status().message()));
    return OpenFailure(opened.status());
  }
  *engine = *std::move(opened);
  return kOk;
}

}  // namespace toegang::cli
