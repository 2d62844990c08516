// Copyright toegang authors.
//
// The `toegang` binary: one subcommand per file in this folder.
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <fstream>
#include <iostream>
#include <iterator>
#include <string>
#include <vector>

#include "absl/flags/commandlineflag.h"
#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/reflection.h"
#include "absl/flags/usage.h"
#include "absl/strings/string_view.h"
#include "engine/cli/cli.h"

ABSL_FLAG(std::string, db, "./var/toegang", "the store directory");
ABSL_FLAG(std::string, policy, "", "a policy pack file or built-in pack name (default: wgbo-default)");
ABSL_FLAG(std::string, facts, "", "decide over the facts of this JSON Lines file, in memory, instead of --db");
ABSL_FLAG(std::string, as_of, "", "an RFC 3339 instant: use the facts as the store knew them then");
ABSL_FLAG(std::string, patient, "", "the patient id");
ABSL_FLAG(std::string, at, "", "an RFC 3339 instant: what fhir export shows the statuses for, what grants, patients and retention are listed for (default: now)");
ABSL_FLAG(std::string, organization, "", "the organisation id");
ABSL_FLAG(bool, explain, false, "answer each decision with how it was reached (docs/explain.md)");
ABSL_FLAG(std::string, action, "read", "grants, patients: the action (read, write, disclose, export, erase)");
ABSL_FLAG(std::string, category, "medical", "grants, patients: the data category");
ABSL_FLAG(std::string, purpose, "", "grants: the purpose (default: every purpose); patients: (default: treatment)");

namespace {

constexpr char kUsage[] = R"(usage: toegang COMMAND [flags] [args]

commands:
  decide [--db DIR | --facts FILE] [--policy FILE] [--as-of INSTANT] [--at-least TOKEN]
         [--explain]      read access requests (JSON Lines) on stdin, write one
                          decision per line on stdout (--explain: with how each
                          was reached)
  load [--db DIR] [--replicate CONNINFO] FILE.jsonl
                          append facts durably, all or nothing; prints the count
                          and the last sequence number (and, replicating, the
                          consistency token)
  history --db DIR --patient ID [--as-of INSTANT]
                          the patient's facts as the store knew them then
  history --db DIR --organization ID [--as-of INSTANT]
                          the organisation's care-provider categories (org_category)
  grants --db DIR --patient ID [--at INSTANT] [--action A] [--category C] [--purpose P]
                          who may do this to the dossier then, and who is denied
                          by an objection or restriction (JSON)
  patients --db DIR --actor ID --role ROLE [--organization ID] [--at INSTANT] [--action A]
           [--category C] [--purpose P] [--page-size N] [--cursor C | --all]
                          the patients this actor may open, a page at a time
                          (JSON; --all: every page, one per line)
  retention report --db DIR [--at INSTANT] [--patient ID]
                          what is held about the patient (each patient, one
                          line each) and when it is due, and why (JSON)
  retention apply --db DIR --audit-key-file FILE [--at INSTANT] [--patient ID]
                          remove what is due and not held, leaving tombstones
                          (JSON, a line per patient something was removed of)
  audit --db DIR --patient ID [--from INSTANT] [--until INSTANT]
                          who accessed the dossier, newest first (NEN 7513)
  audit verify --db DIR [--audit-key-file FILE]
                          check the access log's hash chain, its patient index and
                          its purge checkpoint (works while serve runs)
  audit purge --db DIR --before INSTANT --audit-key-file FILE
                          remove access log records older than 5 years (D51)
  store accept-loss --db DIR
                          open a store that comes back shorter than it
                          acknowledged, and go on with what it holds
  store scrub --db DIR    rewrite the store's files so that nothing removed
                          is left on the disk (retention apply and audit purge
                          do it themselves)
  serve [--db DIR | --facts FILE] --http HOST:PORT --socket PATH [--tcp HOST:PORT] [--policy FILE]
        [--audit-mode durable|buffered [--audit-sync-interval DURATION]]
        [--threads N] [--io-timeout SECONDS] [--cache-mb MIB] [--pin-threads=true|false]
        [--token-file FILE] [--allow-uid UID,...] [--allow-gid GID,...]
        [--tls-cert PEM --tls-key PEM [--tls-client-ca PEM]]
        [--max-connections N] [--max-connections-per-client N] [--request-deadline SECONDS]
        [--batch-workers N] [--replicate CONNINFO [--node NAME] [--max-wait DURATION]]
        [--identifier-system URI,...] [--widen-denies]
                          the sidecar: HTTP/JSON and the FlatBuffers frame protocol
  fhir import [--db DIR] [--identifier-system URI,...] [--widen-denies] [--replicate CONNINFO] FILE.json
                          record a FHIR R4 Consent or a Bundle of them, all or
                          nothing (docs/fhir.md); a version already imported
                          stores nothing new
  fhir export [--db DIR] --patient ID [--at INSTANT] [--as-of INSTANT]
                          the patient's consents and objections as FHIR R4
                          Consents (a Bundle), each with its status at --at
  replica status --replicate CONNINFO [--db DIR]
                          the shared history in PostgreSQL, and how far the
                          replica at DIR has applied it
  policy check FILE       validate a policy pack: errors, overlaps, unreachable rules

exit status: 0 success, 2 bad input, 1 otherwise
)";

const char* const kKnownFlags[] = {"db", "policy", "facts", "as_of", "patient", "from", "until", "before",
                                   "audit_mode", "audit_sync_interval", "audit_key_file", "http", "socket", "tcp", "threads", "io_timeout", "cache_mb",
                                   "pin_threads", "token_file", "allow_uid", "allow_gid", "tls_cert", "tls_key",
                                   "tls_client_ca", "max_connections", "max_connections_per_client", "request_deadline", "batch_workers",
                                   "replicate", "node", "max_wait", "at_least", "identifier_system", "widen_denies", "at",
                                   "organization", "explain", "action", "category", "purpose",
                                   "actor", "role", "page_size", "cursor", "all",
                                   "help"};

// absl exits with status 1 on an unknown flag, on a value it cannot parse
// (`--threads=abc`) and on a flag that needs a value and has none; API.md wants 2 for
// bad input. So each flag is checked here first, and its value tried with the flag's
// own parser. `arg` is as the user wrote it (dashes or underscores); `next` is the
// argument after it, or null. Returns the problem, or an empty string.
std::string FlagProblem(const char* arg, const char* next) {
  absl::string_view written(arg + 2);
  written = written.substr(0, written.find('='));
  if (written.empty()) return "";  // "--": end of flags
  std::string name(written);
  std::replace(name.begin(), name.end(), '-', '_');
  if (std::find(std::begin(kKnownFlags), std::end(kKnownFlags), name) == std::end(kKnownFlags)) {
    return std::string("unknown flag ") + arg + "\n" + kUsage;
  }
  absl::CommandLineFlag* flag = absl::FindCommandLineFlag(name);
  const std::string shown = "--" + std::string(written);
  absl::string_view value;
  if (const char* eq = std::strchr(arg, '=')) {
    value = eq + 1;
  } else if (flag == nullptr || flag->IsOfType<bool>()) {
    return "";
  } else if (next == nullptr) {
    return shown + " needs a value";
  } else {
    value = next;  // `--flag value`
  }
  std::string error;
  if (flag != nullptr && !flag->ParseFrom(value, &error)) return shown + ": " + error;
  return "";
}

// serve and decide read a record per decision from memory, at random: with the heap on
// 2 MiB pages a lookup misses the TLB far less (a decision 13-24% faster,
// bench/RESULTS.md). glibc reads its tunables once, as a process starts, so the process
// starts itself again, same pid and arguments, with glibc.malloc.hugetlb=1 added —
// unless TOEGANG_HUGE_PAGES=0, the tunable is set already (by whoever started it, or by
// the first start), or the kernel gives no huge pages. If it cannot, it goes on as is.
void StartAgainWithHugePages(char** argv) {
  const char* wanted = std::getenv("TOEGANG_HUGE_PAGES");
  if (wanted != nullptr && std::strcmp(wanted, "0") == 0) return;
  const char* set = std::getenv("GLIBC_TUNABLES");
  const bool was_set = set != nullptr;
  const std::string before = was_set ? set : "";
  std::string tunables = before;
  if (tunables.find("glibc.malloc.hugetlb") != std::string::npos) return;
  std::ifstream thp("/sys/kernel/mm/transparent_hugepage/enabled");
  std::string modes;
  if (!std::getline(thp, modes) || modes.find("[never]") != std::string::npos) return;
  tunables += tunables.empty() ? "glibc.malloc.hugetlb=1" : ":glibc.malloc.hugetlb=1";
  if (setenv("GLIBC_TUNABLES", tunables.c_str(), 1) != 0) return;
  execv("/proc/self/exe", argv);
  // Still here: not started again. Leave the environment as it was for what follows.
  if (was_set) {
    setenv("GLIBC_TUNABLES", before.c_str(), 1);
  } else {
    unsetenv("GLIBC_TUNABLES");
  }
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(kUsage);
  if (argc < 2 || std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "help") == 0) {
    std::cerr << kUsage;
    return argc < 2 ? toegang::cli::kBadInput : toegang::cli::kOk;
  }
  std::string command = argv[1];
  if (command == "serve" || command == "decide") StartAgainWithHugePages(argv);
  std::vector<char*> rest = {argv[0]};
  for (int i = 2; i < argc; ++i) {
    if (std::strncmp(argv[i], "--", 2) == 0) {
      if (std::string problem = FlagProblem(argv[i], i + 1 < argc ? argv[i + 1] : nullptr); !problem.empty()) {
        toegang::cli::Complain(problem);
        return toegang::cli::kBadInput;
      }
      // Flags are spelled with dashes (--as-of, as API.md does) or underscores.
      static std::deque<std::string> rewritten;  // keeps each string where it is
      std::string& arg = rewritten.emplace_back(argv[i]);
      std::replace(arg.begin() + 2, arg.begin() + std::min(arg.find('='), arg.size()), '-', '_');
      argv[i] = arg.data();
    }
    rest.push_back(argv[i]);
  }
  std::vector<char*> positional = absl::ParseCommandLine(static_cast<int>(rest.size()), rest.data());
  std::vector<std::string> args(positional.begin() + 1, positional.end());

  if (command == "decide") return toegang::cli::Decide(args);
  if (command == "load") return toegang::cli::Load(args);
  if (command == "history") return toegang::cli::History(args);
  if (command == "grants") return toegang::cli::Grants(args);
  if (command == "patients") return toegang::cli::Patients(args);
  if (command == "retention") return toegang::cli::Retention(args);
  if (command == "audit") return toegang::cli::Audit(args);
  if (command == "serve") return toegang::cli::Serve(args);
  if (command == "store") return toegang::cli::Store(args);
  if (command == "replica") return toegang::cli::Replica(args);
  if (command == "fhir") return toegang::cli::Fhir(args);
  if (command == "policy") {
    if (args.empty() || args[0] != "check") {
      toegang::cli::Complain("usage: toegang policy check FILE");
      return toegang::cli::kBadInput;
    }
    return toegang::cli::PolicyCheck({args.begin() + 1, args.end()});
  }
  toegang::cli::Complain("unknown command '" + command + "'\n" + kUsage);
  return toegang::cli::kBadInput;
}
