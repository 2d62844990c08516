// Copyright toegang authors.
//
// The `toegang` binary: one subcommand per file in this folder.
#include <cstring>
#include <iostream>
#include <string>
#include <vector>

#include "absl/flags/commandlineflag.h"
#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/reflection.h"
#include "absl/strings/string_view.h"
#include "absl/flags/usage.h"
#include "engine/cli/cli.h"

ABSL_FLAG(std::string, db, "./var/toegang", "the store directory");
ABSL_FLAG(std::string, policy, "", "a policy pack file or built-in pack name (default: wgbo-default)");
ABSL_FLAG(std::string, facts, "", "decide over the facts of this JSON Lines file, in memory, instead of --db");
ABSL_FLAG(std::string, as_of, "", "an RFC 3339 instant: use the facts as the store knew them then");
ABSL_FLAG(std::string, patient, "", "the patient id");

namespace {

constexpr char kUsage[] = R"(usage: toegang COMMAND [flags] [args]

commands:
  decide [--db DIR | --facts FILE] [--policy FILE] [--as-of INSTANT]
                          read access requests (JSON Lines) on stdin, write one
                          decision per line on stdout
  load --db DIR FILE.jsonl
                          append facts durably, all or nothing; prints the count
                          and the last sequence number
  history --db DIR --patient ID [--as-of INSTANT]
                          the patient's facts as the store knew them then
  audit --db DIR --patient ID [--from INSTANT] [--until INSTANT]
                          who accessed the dossier, newest first (NEN 7513)
  audit verify --db DIR   check the access log's hash chain
  audit purge --db DIR --before INSTANT
                          remove access log records older than 5 years (D51)
  serve --db DIR --http HOST:PORT --socket PATH [--tcp HOST:PORT] [--policy FILE]
        [--audit-mode durable|buffered] [--threads N] [--io-timeout SECONDS]
        [--cache-mb MIB] [--record-cache ENTRIES] [--pin-threads=true|false]
                          the sidecar: HTTP/JSON and the FlatBuffers frame protocol
  policy check FILE       validate a policy pack: errors, overlaps, unreachable rules

exit status: 0 success, 2 bad input, 1 otherwise
)";

const char* const kKnownFlags[] = {"db", "policy", "facts", "as_of", "patient", "from", "until", "before",
                                   "audit_mode", "http", "socket", "tcp", "threads", "io_timeout", "cache_mb",
                                   "record_cache", "pin_threads", "help"};

// absl exits with status 1 on an unknown flag; API.md wants 2 for bad input.
bool KnownFlag(const char* arg) {
  if (std::strncmp(arg, "--", 2) != 0) return true;
  std::string name(arg + 2);
  if (name.empty()) return true;  // "--": end of flags
  name = name.substr(0, name.find('='));
  for (char& c : name) {
    if (c == '-') c = '_';
  }
  for (const char* known : kKnownFlags) {
    if (name == known) return true;
  }
  return false;
}

// absl also exits with status 1 on a value it cannot parse (`--threads=abc`), and on a
// flag that needs a value and has none; API.md wants 2 for bad input, so each value is
// tried here first. `arg` is a known flag, rewritten to underscores; `next` is the
// argument after it, or null. Returns the problem, or an empty string.
std::string ValueProblem(const char* arg, const char* next) {
  absl::string_view a(arg + 2);
  const size_t eq = a.find('=');
  absl::CommandLineFlag* flag = absl::FindCommandLineFlag(a.substr(0, eq));
  if (flag == nullptr) return "";  // "--" or --help
  std::string shown = "--" + std::string(a.substr(0, eq));
  for (char& c : shown) {
    if (c == '_') c = '-';
  }
  absl::string_view value;
  if (eq != absl::string_view::npos) {
    value = a.substr(eq + 1);
  } else if (flag->IsOfType<bool>()) {
    return "";
  } else if (next == nullptr) {
    return shown + " needs a value";
  } else {
    value = next;  // `--flag value`
  }
  std::string error;
  if (!flag->ParseFrom(value, &error)) return shown + ": " + error;
  return "";
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(kUsage);
  if (argc < 2 || std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "help") == 0) {
    std::cerr << kUsage;
    return argc < 2 ? toegang::cli::kBadInput : toegang::cli::kOk;
  }
  std::string command = argv[1];
  std::vector<char*> rest = {argv[0]};
  for (int i = 2; i < argc; ++i) {
    // Flags are spelled with dashes (--as-of, as API.md does) or underscores.
    if (std::strncmp(argv[i], "--", 2) == 0) {
      static std::vector<std::string> rewritten;
      std::string arg = argv[i];
      for (size_t k = 2; k < arg.size() && arg[k] != '='; ++k) {
        if (arg[k] == '-') arg[k] = '_';
      }
      rewritten.reserve(64);
      rewritten.push_back(arg);
      argv[i] = rewritten.back().data();
    }
    if (!KnownFlag(argv[i])) {
      toegang::cli::Complain(std::string("unknown flag ") + argv[i] + "\n" + kUsage);
      return toegang::cli::kBadInput;
    }
    if (std::strncmp(argv[i], "--", 2) == 0) {
      if (std::string problem = ValueProblem(argv[i], i + 1 < argc ? argv[i + 1] : nullptr); !problem.empty()) {
        toegang::cli::Complain(problem);
        return toegang::cli::kBadInput;
      }
    }
    rest.push_back(argv[i]);
  }
  std::vector<char*> positional = absl::ParseCommandLine(static_cast<int>(rest.size()), rest.data());
  std::vector<std::string> args(positional.begin() + 1, positional.end());

  if (command == "decide") return toegang::cli::Decide(args);
  if (command == "load") return toegang::cli::Load(args);
  if (command == "history") return toegang::cli::History(args);
  if (command == "audit") return toegang::cli::Audit(args);
  if (command == "serve") return toegang::cli::Serve(args);
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
