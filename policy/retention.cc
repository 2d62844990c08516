// Copyright toegang authors.
#include "policy/retention.h"

#include <algorithm>
#include <map>
#include <type_traits>

#include "absl/strings/str_cat.h"
#include "model/json.h"
#include "model/time.h"
#include "nlohmann/json.hpp"

namespace toegang {
namespace {

// Whether a withdrawal of `id` counts at `at`.
bool WithdrawnBy(const PatientRecord& r, absl::string_view id, absl::Time at) {
  for (const Stored<Withdrawal>& w : r.withdrawals) {
    if (w.value.target == id && w.value.at <= at) return true;
  }
  return false;
}

// The latest known instant the dossier's facts were recorded, and how many there are:
// every fact of the dossier (PatientRecord::ForEachDossierFact).
std::optional<absl::Time> LastChange(const PatientRecord& r, size_t* count) {
  std::optional<absl::Time> last;
  r.ForEachDossierFact([&](const auto& f) {
    ++*count;
    const absl::Time t = f.provenance.RecordedInstant();
    if (t == absl::InfinitePast()) return;  // read from a file: when is not known
    if (!last || t > *last) last = t;
  });
  return last;
}

// Whether a removal under `term` left none of the dossier's facts up to `through_seq`.
bool CarriedOut(const PatientRecord& r, absl::string_view term, uint64_t through_seq) {
  const bool removed = std::any_of(r.removed.begin(), r.removed.end(),
                                   [&](const Stored<Removed>& f) { return f.value.term == term; });
  if (!removed) return false;
  bool left = false;
  r.ForEachDossierFact([&](const auto& f) { left = left || f.provenance.seq <= through_seq; });
  return !left;
}

bool Financial(Category c) { return c == Category::kFinancial || c == Category::kInsurance; }

}  // namespace

absl::Time AddCivilYears(absl::Time t, int years, LeapDayRule rule) {
  if (t == absl::InfinitePast() || t == absl::InfiniteFuture()) return t;
  const absl::TimeZone::CivilInfo ci = Amsterdam().At(t);
  const absl::CivilSecond cs = ci.cs;
  const absl::CivilDay day = BirthdayIn(absl::CivilDay(cs), cs.year() + years, rule);
  return absl::FromCivil(absl::CivilSecond(day.year(), day.month(), day.day(), cs.hour(), cs.minute(), cs.second()),
                         Amsterdam()) +
         ci.subsecond;
}

absl::Time AddCivilMonths(absl::Time t, int months) {
  if (t == absl::InfinitePast() || t == absl::InfiniteFuture()) return t;
  const absl::TimeZone::CivilInfo ci = Amsterdam().At(t);
  const absl::CivilSecond cs = ci.cs;
  const absl::CivilMonth month = absl::CivilMonth(cs) + months;
  const absl::CivilDay last = absl::CivilDay(month + 1) - 1;  // the month's last day
  const int day = std::min<int>(cs.day(), last.day());
  return absl::FromCivil(absl::CivilSecond(month.year(), month.month(), day, cs.hour(), cs.minute(), cs.second()),
                         Amsterdam()) +
         ci.subsecond;
}

bool RetentionReport::held() const {
  return std::any_of(holds.begin(), holds.end(), [](const Hold& h) { return h.in_force; });
}

RetentionReport RetentionOf(const PolicyParams& params, const PatientRecord& record,
                            absl::Span<const LoggedRecord> logged, absl::Time at) {
  RetentionReport out;
  out.patient = record.patient;
  out.at = at;
  const LeapDayRule rule = params.leap_day_rule;

  bool child_protection = false;
  for (const Stored<RetentionHold>& h : record.holds) {
    RetentionReport::Hold hold{h.value.id, h.value.by, h.value.reason, h.value.window, false};
    const bool withdrawn = WithdrawnBy(record, h.value.id, at);
    hold.in_force = h.value.window.Contains(at) && !withdrawn;
    if (h.value.reason == HoldReason::kChildProtection && !withdrawn) child_protection = true;
    out.holds.push_back(std::move(hold));
  }
  const bool held = out.held();

  // The dossier's term from its last change; a child-protection measure keeps it until
  // 30 years after the 18th birthday.
  out.last_change = LastChange(record, &out.facts);
  if (out.last_change) {
    out.facts_due = AddCivilYears(*out.last_change, params.retention_dossier_years, rule);
    out.facts_term = absl::StrCat("dossier_", params.retention_dossier_years, "_years");
  }
  if (child_protection) {
    if (record.person && record.person->value.birth_date) {
      const absl::CivilDay eighteen = BirthdayIn(*record.person->value.birth_date,
                                                 record.person->value.birth_date->year() + 18, rule);
      const absl::Time until = AddCivilYears(absl::FromCivil(eighteen, Amsterdam()), 30, rule);
      if (!out.facts_due || until > *out.facts_due) {
        out.facts_due = until;
        out.facts_term = "child_protection_30_years_after_18";
      }
    } else {
      out.facts_due.reset();  // 30 years after an unknown birthday: kept
      out.facts_term = "child_protection_30_years_after_18";
    }
  }

  // An erasure request makes the dossier's facts recorded before it due when it is made
  // (D61); what is recorded after it is a new dossier, with its own term.
  for (const Stored<ErasureRequest>& e : record.erasure_requests) {
    RetentionReport::Erasure erasure{e.value.id, e.value.by, e.value.at, AddCivilMonths(e.value.at, 3), ""};
    const std::string term = absl::StrCat("erasure_request ", e.value.id);
    const uint64_t before = e.provenance.seq == 0 ? UINT64_MAX : e.provenance.seq - 1;
    if (WithdrawnBy(record, e.value.id, at)) {
      erasure.status = "withdrawn";
    } else if (e.value.at > at) {
      erasure.status = "future";
    } else if (CarriedOut(record, term, before)) {
      erasure.status = "carried_out";
    } else if (held || child_protection) {
      // Kept for someone else's interest or by law (Jeugdwet: a child-protection measure).
      erasure.status = "held";
    } else {
      erasure.status = "requested";
      if (!out.facts_due || e.value.at < *out.facts_due) {
        out.facts_due = e.value.at;
        out.facts_term = term;
        out.facts_through_seq = before;
      }
    }
    out.erasures.push_back(std::move(erasure));
  }
  size_t covered = 0;
  record.ForEachDossierFact([&](const auto& f) { covered += f.provenance.seq <= out.facts_through_seq; });
  out.facts_due_now = covered > 0 && out.facts_due && *out.facts_due <= at && !held;
  for (const Stored<Removed>& r : record.removed) {
    if (out.removed.empty() || out.removed.back().at != r.value.removed_at || out.removed.back().term != r.value.term) {
      out.removed.push_back({r.value.removed_at, r.value.term, 0});
    }
    ++out.removed.back().facts;
  }

  // The access log: the law's minimum from when each record was written.
  std::map<std::string, RetentionReport::Kept> kept;
  for (const LoggedRecord& l : logged) {
    const int years = Financial(l.category) ? params.retention_financial_years : params.retention_access_log_years;
    RetentionReport::Record r{l.seq, l.logged_at, AddCivilYears(l.logged_at, years, rule),
                              absl::StrCat(Financial(l.category) ? "financial_" : "access_log_", years, "_years"),
                              years, false};
    r.due_now = r.due <= at && !held;
    if (!r.due_now) {
      for (const std::string& c : l.consents) {
        auto [it, fresh] = kept.try_emplace(c, RetentionReport::Kept{c, r.due, l.seq});
        if (!fresh && r.due > it->second.until) it->second = {c, r.due, l.seq};
      }
    }
    out.access_log.push_back(std::move(r));
  }
  std::sort(out.access_log.begin(), out.access_log.end(),
            [](const RetentionReport::Record& a, const RetentionReport::Record& b) { return a.seq < b.seq; });
  // Only what would otherwise go is worth saying it is kept.
  for (auto& [id, k] : kept) {
    if (out.facts_due && k.until > *out.facts_due) out.kept.push_back(std::move(k));
  }
  return out;
}

std::string RetentionJson(const RetentionReport& r) {
  using json = nlohmann::json;
  auto instant = [](const std::optional<absl::Time>& t) {
    return t && *t != absl::InfiniteFuture() && *t != absl::InfinitePast() ? json(FormatInstant(*t)) : json(nullptr);
  };
  json kept = json::array();
  for (const auto& k : r.kept) kept.push_back({{"fact", k.fact}, {"until", FormatInstant(k.until)}, {"access_log_record", k.record}});
  json facts = {{"count", r.facts},
                {"last_change", instant(r.last_change)},
                {"due", instant(r.facts_due)},
                {"term", r.facts_term.empty() ? json(nullptr) : json(r.facts_term)},
                {"due_now", r.facts_due_now},
                {"kept", std::move(kept)}};
  json holds = json::array();
  for (const auto& h : r.holds) {
    holds.push_back({{"id", h.id},
                     {"by", h.by},
                     {"reason", std::string(Name(h.reason))},
                     {"from", instant(h.window.from)},
                     {"until", instant(h.window.until)},
                     {"in_force", h.in_force}});
  }
  json erasures = json::array();
  for (const auto& e : r.erasures) {
    erasures.push_back({{"id", e.id},
                        {"by", e.by},
                        {"at", FormatInstant(e.requested)},
                        {"deadline", FormatInstant(e.deadline)},
                        {"status", e.status}});
  }
  json removed = json::array();
  for (const auto& m : r.removed) {
    removed.push_back({{"at", FormatInstant(m.at)}, {"term", m.term}, {"facts", m.facts}});
  }
  facts["removed"] = std::move(removed);
  json log = json::array();
  for (const auto& l : r.access_log) {
    log.push_back({{"seq", l.seq},
                   {"logged_at", FormatInstant(l.logged_at)},
                   {"due", FormatInstant(l.due)},
                   {"term", l.term},
                   {"due_now", l.due_now}});
  }
  return JsonText(json{{"patient", r.patient},
                       {"access_log_removed", r.access_log_removed},
                       {"at", FormatInstant(r.at)},
                       {"held", r.held()},
                       {"facts", std::move(facts)},
                       {"holds", std::move(holds)},
                       {"erasure_requests", std::move(erasures)},
                       {"access_log", std::move(log)}});
}

}  // namespace toegang
