// Copyright toegang authors.
//
// toegang patients --db DIR --actor ID --role ROLE [--organization ID] [--at INSTANT]
// [--action A] [--category C] [--purpose P] [--page-size N] [--cursor C | --all]: the
// patients the actor may open at --at (default now), a page of JSON (docs/patients.md);
// --all writes every page, one per line, until the listing is complete.
#include <iostream>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "engine/cli/cli.h"
#include "engine/toegang.h"
#include "model/json.h"

ABSL_FLAG(std::string, actor, "", "patients: the actor's id");
ABSL_FLAG(std::string, role, "", "patients: the actor's role");
ABSL_FLAG(int, page_size, 100, "patients: patients per page (1 to 1000)");
ABSL_FLAG(std::string, cursor, "", "patients: go on from this page's cursor");
ABSL_FLAG(bool, all, false, "patients: write every page, one JSON line each");

namespace toegang::cli {
namespace {

constexpr char kPatientsUsage[] =
    "usage: toegang patients --db DIR --actor ID --role ROLE [--organization ID] [--at INSTANT] [--action A] "
    "[--category C] [--purpose P] [--page-size N] [--cursor C | --all]";

// The request the flags ask about, or an error naming the flag.
absl::StatusOr<PatientsQuery> QueryFromFlags() {
  PatientsQuery q;
  AccessRequest& r = q.request;
  r.actor.id = absl::GetFlag(FLAGS_actor);
  if (absl::Status s = CheckId(r.actor.id, "--actor"); !s.ok()) return s;
  absl::StatusOr<Role> role = NameFlag<Role>("role", absl::GetFlag(FLAGS_role));
  if (!role.ok()) return role.status();
  r.actor.role = *role;
  r.actor.organization = absl::GetFlag(FLAGS_organization);
  if (!r.actor.organization.empty()) {
    if (absl::Status s = CheckId(r.actor.organization, "--organization"); !s.ok()) return s;
  }
  absl::StatusOr<absl::Time> at = AtFlag();
  if (!at.ok()) return at.status();
  r.at = *at;
  absl::StatusOr<Action> action = NameFlag<Action>("action", absl::GetFlag(FLAGS_action));
  if (!action.ok()) return action.status();
  r.action = *action;
  absl::StatusOr<Category> category = NameFlag<Category>("category", absl::GetFlag(FLAGS_category));
  if (!category.ok()) return category.status();
  r.category = *category;
  const std::string purpose = absl::GetFlag(FLAGS_purpose);
  absl::StatusOr<Purpose> p = NameFlag<Purpose>("purpose", purpose.empty() ? "treatment" : purpose);
  if (!p.ok()) return p.status();
  r.purpose = *p;
  const int page_size = absl::GetFlag(FLAGS_page_size);
  if (page_size < 1 || page_size > 1000) {
    return absl::InvalidArgumentError(absl::StrCat("--page-size: must be from 1 to 1000, not ", page_size));
  }
  q.page_size = static_cast<size_t>(page_size);
  q.cursor = absl::GetFlag(FLAGS_cursor);
  if (!q.cursor.empty() && absl::GetFlag(FLAGS_all)) {
    return absl::InvalidArgumentError("--all lists from the first page: leave out --cursor");
  }
  return q;
}

}  // namespace

int Patients(const std::vector<std::string>& args) {
  if (!args.empty() || absl::GetFlag(FLAGS_actor).empty() || absl::GetFlag(FLAGS_role).empty()) {
    Complain(kPatientsUsage);
    return kBadInput;
  }
  absl::StatusOr<PatientsQuery> query = QueryFromFlags();
  if (!query.ok()) {
    Complain(std::string(query.status().message()));
    return kBadInput;
  }
  std::unique_ptr<Engine> engine;
  if (int status = OpenReadingEngine(&engine); status != kOk) return status;
  const bool all = absl::GetFlag(FLAGS_all);
  for (;;) {
    absl::StatusOr<PatientPage> page = engine->Patients(*query);
    if (!page.ok()) {
      Complain(std::string(page.status().message()));
      return absl::IsInvalidArgument(page.status()) ? kBadInput : kFailure;
    }
    std::cout << page->Json() << "\n";
    if (!all || page->complete) break;
    query->cursor = page->cursor;
  }
  std::cout.flush();
  return std::cout ? kOk : kFailure;
}

}  // namespace toegang::cli
