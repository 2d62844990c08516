// Copyright toegang authors.
//
// cli.h (internal): what the subcommands of the `toegang` binary share.
#ifndef TOEGANG_ENGINE_CLI_CLI_H_
#define TOEGANG_ENGINE_CLI_CLI_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/flags/declare.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "engine/fhir/fhir_import.h"
#include "engine/toegang.h"
#include "model/facts.h"
#include "policy/policy.h"

ABSL_DECLARE_FLAG(std::string, db);
ABSL_DECLARE_FLAG(std::string, policy);
ABSL_DECLARE_FLAG(std::string, facts);
ABSL_DECLARE_FLAG(std::string, as_of);
ABSL_DECLARE_FLAG(std::string, at);
ABSL_DECLARE_FLAG(std::string, patient);
ABSL_DECLARE_FLAG(std::string, organization);
ABSL_DECLARE_FLAG(bool, explain);
ABSL_DECLARE_FLAG(std::string, action);
ABSL_DECLARE_FLAG(std::string, category);
ABSL_DECLARE_FLAG(std::string, purpose);
ABSL_DECLARE_FLAG(std::string, audit_mode);
ABSL_DECLARE_FLAG(std::string, audit_key_file);
ABSL_DECLARE_FLAG(std::string, replicate);

namespace toegang::cli {

// Exit statuses (API.md).
inline constexpr int kOk = 0;
inline constexpr int kFailure = 1;
inline constexpr int kBadInput = 2;

// Subcommands: `args` are the positional arguments after the subcommand's name.
int Decide(const std::vector<std::string>& args);
int Load(const std::vector<std::string>& args);
int History(const std::vector<std::string>& args);
int Grants(const std::vector<std::string>& args);
int Patients(const std::vector<std::string>& args);
int Retention(const std::vector<std::string>& args);
int Audit(const std::vector<std::string>& args);
int Serve(const std::vector<std::string>& args);
int Store(const std::vector<std::string>& args);
int PolicyCheck(const std::vector<std::string>& args);
int Replica(const std::vector<std::string>& args);
int Fhir(const std::vector<std::string>& args);

// The FHIR import's options from --identifier-system and --widen-denies.
absl::StatusOr<FhirImportOptions> FhirImportFlags();

// Sets options->replicate from --replicate, --node and --max-wait (nothing without
// --replicate). The error names the flag.
absl::Status ReplicateFlags(Options* options);

// Sets the access log's mode and sync interval from --audit-mode and
// --audit-sync-interval. The error names the flag.
absl::Status AuditFlags(AuditOptions* audit);

// Opens the engine that `load` and `fhir import` record through: the store of --db, or
// with --replicate CONNINFO the history in PostgreSQL (checked against on a replica in
// memory, unless --db names one); no access log, as recording decides nothing. kOk, or
// (having said why) the exit status.
int OpenRecordingEngine(std::unique_ptr<Engine>* engine);

// Opens the store of --db to read it, beside a running server if there is one (read
// only; never created). kOk, or (having said why) the exit status.
int OpenReadingEngine(std::unique_ptr<Engine>* engine);

// Whether --db names another directory than its default.
bool DbFlagGiven();

// The policy named by --policy: a file, a built-in pack name, or (empty) wgbo-default.
absl::StatusOr<std::shared_ptr<const Policy>> LoadPolicyFlag();

// Reads a JSON Lines file of facts. Errors name "FILE:LINE"; a read error anywhere, a
// directory or an unreadable path is an error too (nothing is returned). `lines`, if
// given, gets each fact's line number.
absl::StatusOr<std::vector<Fact>> ReadFactsFile(const std::string& path, std::vector<int>* lines = nullptr);

// The facts of JSON Lines `text` read from `path` (which names errors).
absl::StatusOr<std::vector<Fact>> ParseFactLines(const std::string& path, absl::string_view text,
                                                 std::vector<int>* lines = nullptr);

// A store's refusal of fact N (model/facts.h AtFact) as "FILE:LINE: ..." using `lines`.
std::string AtLine(const std::string& path, const std::vector<int>& lines, const absl::Status& status);

// Records the facts of the JSON Lines file at `path` in `engine`, all or none. The
// error names "FILE:LINE" of the first bad fact; every error is the caller's input.
absl::Status RecordFactsFile(Engine& engine, const std::string& path);

// The instant of --as-of, or InfiniteFuture() when it is not given. The error names
// the flag.
absl::StatusOr<absl::Time> AsOfFlag();
// --at (an RFC 3339 instant), or now when it is not given. The error names the flag.
absl::StatusOr<absl::Time> AtFlag();

// The value of --FLAG as a name of vocabulary E (an action, a role, ...), or an error
// naming the flag.
template <typename E>
absl::StatusOr<E> NameFlag(absl::string_view flag, const std::string& value) {
  E e;
  if (!ParseName(value, &e)) {
    return absl::InvalidArgumentError(absl::StrCat("--", flag, ": unknown ", flag, " '", value, "'"));
  }
  return e;
}

// Reads a whole file.
absl::StatusOr<std::string> ReadFile(const std::string& path);

// The key of --audit-key-file ("" when the flag is not given). The file must be
// private to its owner (0600) and hold at least 16 bytes.
absl::StatusOr<std::string> AuditKeyFlag();

// The exit status for a failure to open the store: 2 when the caller named no store or
// something that is not one (IsCallersFault, model/facts.h), else 1.
int OpenFailure(const absl::Status& status);

// Prints "toegang: message" to stderr.
void Complain(const std::string& message);

}  // namespace toegang::cli

#endif  // TOEGANG_ENGINE_CLI_CLI_H_
