// Copyright toegang authors.
//
// retention.h: how long what toegang holds about a patient is kept, and when it is due
// (DOMAIN D41, D51, D60, D61) — what `toegang retention report` and
// `GET /v1/patients/{id}/retention` answer (docs/retention.md).
//
//   RetentionReport r = RetentionOf(policy->params(), record, logged, at);
//
// - The dossier's facts (every fact of the patient but erasure requests and retention
//   holds) are due `retention_dossier_years` (20) after the last change: the latest
//   instant one of them was recorded. With a child-protection hold (Jeugdwet), not
//   before 30 years after the 18th birthday.
// - An erasure request (D61) makes those recorded before it due from its `at`; it must
//   be carried out within 3 months (its deadline).
// - An access-log record is due `retention_access_log_years` (5) after it was written,
//   `retention_financial_years` (7) for financial or insurance data: the law's minimum
//   prevails over "not longer than the dossier" (D51).
// - A consent an access-log record relied on is kept as long as that record (D41), even
//   when the rest of the dossier is due.
// - While a retention hold is in force nothing of the patient is due.
// Years are civil years in Europe/Amsterdam: 29 February moves by `leap_day_rule`.
//
// Pure: no clock, no I/O. Thread-compatible.
#ifndef TOEGANG_POLICY_RETENTION_H_
#define TOEGANG_POLICY_RETENTION_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "absl/types/span.h"
#include "model/patient_record.h"
#include "model/vocabulary.h"
#include "policy/policy.h"

namespace toegang {

// What the report reads of an access-log record about the patient.
struct LoggedRecord {
  uint64_t seq = 0;
  absl::Time logged_at;
  Category category = Category::kMedical;
  std::vector<std::string> consents;  // the consents the decision relied on
};

struct RetentionReport {
  std::string patient;
  absl::Time at;

  // The dossier's facts: when they last changed (nullopt: no fact says when it was
  // recorded), when they are due (nullopt: it cannot be told, so they are kept) and by
  // which term: "dossier_N_years", "child_protection_30_years_after_18",
  // "erasure_request ID".
  size_t facts = 0;
  std::optional<absl::Time> last_change;
  std::optional<absl::Time> facts_due;
  std::string facts_term;
  bool facts_due_now = false;  // due at `at`, and no hold in force
  // What is due is the dossier's facts up to this sequence number: an erasure request
  // covers those recorded before it (UINT64_MAX: all of them).
  uint64_t facts_through_seq = UINT64_MAX;
  // What retention already removed (`toegang retention apply`): per removal, when, under
  // which term, how many facts.
  struct Removal {
    absl::Time at;
    std::string term;
    size_t facts = 0;
  };
  std::vector<Removal> removed;
  // D41: consents kept past facts_due because an access-log record relied on them.
  struct Kept {
    std::string fact;
    absl::Time until;
    uint64_t record = 0;
  };
  std::vector<Kept> kept;

  struct Hold {
    std::string id, by;
    HoldReason reason = HoldReason::kDispute;
    Window window;
    bool in_force = false;  // at `at`, and not withdrawn by then
  };
  std::vector<Hold> holds;

  struct Erasure {
    std::string id, by;
    absl::Time requested;
    absl::Time deadline;  // 3 months after
    // "requested" (due), "held", "withdrawn", "future" (requested after `at`),
    // "carried_out" (a removal under it left none of the facts recorded before it).
    std::string status;
  };
  std::vector<Erasure> erasures;

  struct Record {
    uint64_t seq = 0;
    absl::Time logged_at;
    absl::Time due;
    std::string term;  // "access_log_N_years", "financial_N_years"
    int years = 0;     // N
    bool due_now = false;
  };
  std::vector<Record> access_log;
  uint64_t access_log_removed = 0;  // the patient's records retention already removed

  bool held() const;
};

// The report for `record`'s patient at `at`: `logged` are the patient's access-log
// records (in any order).
RetentionReport RetentionOf(const PolicyParams& params, const PatientRecord& record,
                            absl::Span<const LoggedRecord> logged, absl::Time at);

// `t` moved by `years` civil years in Europe/Amsterdam, the same wall-clock time (a
// 29 February by `rule`; a time a DST change skips, as absl::FromCivil places it).
absl::Time AddCivilYears(absl::Time t, int years, LeapDayRule rule);

// `t` moved by `months` civil months in Europe/Amsterdam; a day the month lacks becomes
// its last (30 November + 3 months: 28 or 29 February).
absl::Time AddCivilMonths(absl::Time t, int months);

// The report as JSON (docs/retention.md).
std::string RetentionJson(const RetentionReport& report);

}  // namespace toegang

#endif  // TOEGANG_POLICY_RETENTION_H_
