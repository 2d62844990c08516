// Copyright toegang authors.
//
// toegang audit --db DIR --patient ID [--from INSTANT] [--until INSTANT]
//     who accessed the dossier (DOMAIN D50, Wabvpz), newest first, as JSON Lines
// toegang audit verify --db DIR [--audit-key-file FILE]
//     walks the hash chain and the patient index, authenticates the purge checkpoint;
//     names the first record changed, removed, reordered or mis-indexed
// toegang audit purge --db DIR --before INSTANT --audit-key-file FILE
//     removes records logged before INSTANT (at least 5 years old, D51)
// Listing and verifying open the store read-only, so they work while `serve` runs.
// With --replicate CONNINFO, both cover every node of the history: the list adds the
// other nodes' records as shipped to PostgreSQL (and says on stderr what is not there
// yet), verify also walks every node's shipped chain.
#include <iostream>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "engine/cli/cli.h"
#include "engine/replica/shipper.h"
#include "engine/toegang.h"
#include "model/json.h"
#include "model/time.h"

ABSL_FLAG(std::string, from, "", "audit: list accesses at or after this instant");
ABSL_FLAG(std::string, until, "", "audit: list accesses before this instant");
ABSL_FLAG(std::string, before, "", "audit purge: remove records logged before this instant");

namespace toegang::cli {
namespace {

absl::StatusOr<absl::Time> InstantFlag(const std::string& name, const std::string& value, absl::Time if_empty) {
  if (value.empty()) return if_empty;
  absl::StatusOr<absl::Time> t = ParseInstant(value);
  if (!t.ok()) return absl::InvalidArgumentError(absl::StrCat("--", name, ": ", t.status().message()));
  return *t;
}

nlohmann::json AccessJson(const AuditEvent& e) {
  nlohmann::json actor = {{"id", e.actor.id}, {"role", std::string(Name(e.actor.role))}};
  if (!e.actor.organization.empty()) actor["organization"] = e.actor.organization;
  nlohmann::json reasons = nlohmann::json::array();
  for (Reason r : e.reasons) reasons.push_back(std::string(Name(r)));
  nlohmann::json j = {{"at", FormatInstant(e.at)},
                      {"logged_at", FormatInstant(e.logged_at)},
                      {"event_id", e.event_id},
                      {"actor", actor},
                      {"action", std::string(Name(e.action))},
                      {"category", std::string(Name(e.category))},
                      {"purpose", std::string(Name(e.purpose))},
                      {"decision", e.permitted ? "permit" : "deny"},
                      {"reasons", reasons},
                      {"emergency", e.emergency}};
  if (e.emergency) j["justification"] = e.justification;
  return j;
}

// With --replicate: every node's chain as shipped to PostgreSQL, each verified.
int VerifyShipped() {
  const std::string conninfo = absl::GetFlag(FLAGS_replicate);
  if (conninfo.empty()) return kOk;
  absl::StatusOr<std::vector<ShippedChainReport>> chains = VerifyShippedChains(conninfo);
  if (!chains.ok()) {
    Complain(std::string(chains.status().message()));
    return kFailure;
  }
  int status = kOk;
  for (const ShippedChainReport& c : *chains) {
    const AuditVerifyReport& r = c.report;
    if (!r.ok) {
      std::cout << "FAILED: node " << c.node << " (chain " << c.chain << "): access log record " << r.bad_seq << " "
                << r.problem << "\n";
      status = kFailure;
      continue;
    }
    std::cout << "ok: node " << c.node << " (chain " << c.chain << "): " << r.records << " records shipped";
    if (r.records > 0) std::cout << " (" << r.first_seq << ".." << r.last_seq << "), head sha256 " << r.head_hash;
    std::cout << "\n";
  }
  return status;
}

}  // namespace

int Audit(const std::vector<std::string>& args) {
  const std::string sub = args.empty() ? "" : args[0];
  if (args.size() > 1 || (!sub.empty() && sub != "verify" && sub != "purge")) {
    Complain("usage: toegang audit [verify | purge --before INSTANT] --db DIR, or toegang audit --db DIR --patient ID [--from] [--until]");
    return kBadInput;
  }
  absl::StatusOr<std::string> key = AuditKeyFlag();
  if (!key.ok()) {
    Complain(std::string(key.status().message()));
    return kBadInput;
  }
  Options options;
  options.db_path = absl::GetFlag(FLAGS_db);
  options.durable.create_if_missing = false;
  // Reading (verify, the patient's list) works beside a running server; only purge
  // writes, and needs the store to itself.
  options.durable.read_only = sub != "purge";
  options.audit->checkpoint_key = *key;
  absl::StatusOr<std::unique_ptr<Engine>> engine = Engine::Open(std::move(options));
  if (!engine.ok()) {
    Complain(std::string(engine.status().message()));
    return OpenFailure(engine.status());
  }
  Engine& log = **engine;

  if (sub == "verify") {
    absl::StatusOr<AuditVerifyReport> r = log.VerifyAccessLog();
    if (!r.ok()) {
      Complain(std::string(r.status().message()));
      return kFailure;
    }
    if (!r->ok) {
      std::cout << "FAILED: access log record " << r->bad_seq << " " << r->problem << "\n";
      return kFailure;
    }
    std::cout << "ok: " << r->records << " records";
    if (r->records > 0) std::cout << " (" << r->first_seq << ".." << r->last_seq << "), head sha256 " << r->head_hash;
    if (r->removed > 0) std::cout << "; " << r->removed << " of them removed by retention, their tombstones authentic";
    std::cout << "; " << r->index_entries << " patient-index entries\n";
    return VerifyShipped();
  }
  if (sub == "purge") {
    absl::StatusOr<absl::Time> before = InstantFlag("before", absl::GetFlag(FLAGS_before), absl::InfinitePast());
    if (!before.ok() || absl::GetFlag(FLAGS_before).empty()) {
      Complain(before.ok() ? "audit purge needs --before INSTANT" : std::string(before.status().message()));
      return kBadInput;
    }
    absl::StatusOr<AuditPurgeReport> r = log.PurgeAccessLog(*before, absl::Now());
    if (!r.ok()) {
      Complain(std::string(r.status().message()));
      return r.status().code() == absl::StatusCode::kFailedPrecondition ? kBadInput : kFailure;
    }
    std::cout << "purged " << r->purged << " records; the chain now starts at record " << r->first_kept << "\n";
    if (r->purged > 0) {
      // Gone from every answer; rewritten, gone from the store's files too.
      if (absl::Status s = log.ScrubRemoved(); !s.ok()) {
        Complain(absl::StrCat("purged, but not yet from the store's files: ", s.message(),
                              " (once the cause is gone, toegang store scrub rewrites them)"));
        return kFailure;
      }
    }
    return kOk;
  }
  std::string patient = absl::GetFlag(FLAGS_patient);
  if (patient.empty()) {
    Complain("audit needs --patient ID (or: audit verify, audit purge)");
    return kBadInput;
  }
  absl::StatusOr<absl::Time> from = InstantFlag("from", absl::GetFlag(FLAGS_from), absl::InfinitePast());
  absl::StatusOr<absl::Time> until = InstantFlag("until", absl::GetFlag(FLAGS_until), absl::InfiniteFuture());
  if (!from.ok() || !until.ok()) {
    Complain(std::string((!from.ok() ? from : until).status().message()));
    return kBadInput;
  }
  absl::StatusOr<std::vector<AuditEvent>> accesses = log.PatientAccesses(patient, *from, *until);
  if (!accesses.ok()) {
    Complain(std::string(accesses.status().message()));
    return kFailure;
  }
  if (const std::string conninfo = absl::GetFlag(FLAGS_replicate); !conninfo.empty()) {
    // Every node's records as shipped; this node's own (shipped or not) from its store.
    absl::StatusOr<OtherNodesAccesses> shipped = ShippedAccesses(conninfo, "", patient, *from, *until, 10000);
    if (!shipped.ok()) {
      Complain(absl::StrCat("only this node's accesses are listed: ", shipped.status().message()));
      return kFailure;
    }
    MergeAccesses(&*accesses, std::move(shipped->accesses), 10000);
    for (const std::string& m : shipped->missing) Complain(absl::StrCat("not complete: ", m));
  }
  for (const AuditEvent& e : *accesses) std::cout << JsonText(AccessJson(e)) << "\n";
  return kOk;
}

}  // namespace toegang::cli
