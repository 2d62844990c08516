// Copyright toegang authors.
#include "engine/patient_search.h"

#include <algorithm>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "base/big_endian.h"
#include "base/sha256.h"
#include "model/json.h"
#include "model/patient_index.h"
#include "model/status_macros.h"
#include "model/time.h"
#include "policy/evaluator.h"
#include "policy/patients.h"

namespace toegang {
namespace engine_internal {
namespace {

constexpr size_t kMaxPageSize = 1000;
constexpr char kCursorVersion = 1;
constexpr size_t kTagBytes = 8;  // of a SHA-256, for the fingerprint and the checksum

std::string Sha256Prefix(absl::string_view bytes) {
  const Sha256Digest md = Sha256Of(bytes);
  return std::string(reinterpret_cast<const char*>(md.data()), kTagBytes);
}

uint64_t LastSeqOf(const PatientRecord& r) {
  uint64_t last = 0;
  r.ForEachStored([&](const auto& f) { last = std::max(last, f.provenance.seq); });
  return last;
}

bool Empty(const PatientRecord& r) {
  bool empty = true;
  r.ForEachStored([&](const auto&) { empty = false; });
  return empty;
}

// `record` as it stood at sequence `seq`: itself when nothing later has been filed in
// it, else rebuilt from the history (a later person fact replaces the earlier one in a
// record, so filtering the record would lose it).
absl::StatusOr<std::shared_ptr<const PatientRecord>> Pinned(FactStore& store,
                                                           std::shared_ptr<const PatientRecord> record,
                                                           uint64_t seq) {
  if (LastSeqOf(*record) <= seq) return record;
  TOEGANG_ASSIGN_OR_RETURN(std::vector<Fact> history, store.History(record->patient));
  auto pinned = std::make_shared<PatientRecord>();
  pinned->patient = record->patient;
  for (const Fact& f : history) {
    if (f.provenance.seq <= seq) pinned->Add(f);
  }
  return std::shared_ptr<const PatientRecord>(std::move(pinned));
}

template <typename T>
std::vector<Stored<T>> UpTo(const std::vector<Stored<T>>& all, uint64_t seq) {
  std::vector<Stored<T>> out;
  for (const Stored<T>& s : all) {
    if (s.provenance.seq <= seq) out.push_back(s);
  }
  return out;
}

}  // namespace

std::string QueryFingerprint(const AccessRequest& request, absl::string_view policy_id) {
  AccessRequest asked = request;
  asked.patient.clear();
  asked.explain = false;
  asked.at_least.clear();
  return Sha256Prefix(absl::StrCat(JsonText(RequestToJsonValue(asked)), absl::string_view("\0", 1), policy_id));
}

std::string EncodeCursor(const CursorState& state, absl::string_view fingerprint) {
  std::string bytes = absl::StrCat(std::string(1, kCursorVersion), BigEndian64(state.sequence), fingerprint, state.after);
  bytes += Sha256Prefix(bytes);
  return absl::WebSafeBase64Escape(bytes);
}

absl::StatusOr<CursorState> DecodeCursor(absl::string_view cursor, absl::string_view fingerprint) {
  std::string bytes;
  constexpr size_t kFixed = 1 + 8 + kTagBytes + kTagBytes;
  if (!absl::WebSafeBase64Unescape(cursor, &bytes) || bytes.size() < kFixed || bytes[0] != kCursorVersion ||
      Sha256Prefix(absl::string_view(bytes).substr(0, bytes.size() - kTagBytes)) !=
          absl::string_view(bytes).substr(bytes.size() - kTagBytes)) {
    return absl::InvalidArgumentError(
        "cursor: not a cursor of this listing (damaged or cut short): pass the `cursor` of the page before as it "
        "was, or none for the first page");
  }
  if (absl::string_view(bytes).substr(9, kTagBytes) != fingerprint) {
    return absl::InvalidArgumentError(
        "cursor: made for another request (actor, role, organization, at, action, category, purpose, recipient, "
        "emergency or legal order) or another policy: a listing goes on with the request it started with; start "
        "again without a cursor");
  }
  CursorState state;
  state.sequence = ReadBigEndian64(absl::string_view(bytes).substr(1, 8));
  state.after = bytes.substr(1 + 8 + kTagBytes, bytes.size() - kFixed);
  return state;
}

absl::StatusOr<PatientPage> SearchPatients(FactStore& store, std::shared_ptr<const Policy> policy,
                                           const PatientsQuery& query, absl::Time (*clock)()) {
  if (query.page_size < 1 || query.page_size > kMaxPageSize) {
    return absl::InvalidArgumentError(
        absl::StrCat("page_size: must be from 1 to ", kMaxPageSize, ", not ", query.page_size));
  }
  if (query.deadline <= absl::ZeroDuration()) return absl::InvalidArgumentError("deadline: must be positive");
  TOEGANG_RETURN_IF_ERROR(CheckId(query.request.actor.id, "actor"));
  const absl::Time stop = clock() + query.deadline;

  PatientPage page;
  page.request = query.request;
  page.request.patient.clear();
  page.request.explain = false;
  page.request.at_least.clear();
  page.policy = std::move(policy);
  const Policy& rules = *page.policy;
  const std::string fingerprint = QueryFingerprint(page.request, rules.id());
  CursorState at;
  const uint64_t last = store.LastSequence();
  if (query.cursor.empty()) {
    at.sequence = last;
  } else {
    TOEGANG_ASSIGN_OR_RETURN(at, DecodeCursor(query.cursor, fingerprint));
    if (at.sequence > last) {
      return absl::InvalidArgumentError(absl::StrCat("cursor: pinned to fact ", at.sequence,
                                                     " of the history, but this store holds ", last,
                                                     ": it was made on another store; start again without a cursor"));
    }
  }
  page.sequence = at.sequence;

  // The actor's side, as it stood at the pinned sequence.
  const Actor& actor = page.request.actor;
  TOEGANG_ASSIGN_OR_RETURN(std::shared_ptr<const std::vector<Stored<Relationship>>> all_subs,
                           store.SubstitutionsOf(actor.id));
  const std::vector<Stored<Relationship>> subs = UpTo(*all_subs, at.sequence);
  std::vector<Stored<OrgCategory>> categories;
  const std::optional<Party>& recipient = page.request.recipient;
  const std::string no_organization;
  const std::string& recipient_org =
      recipient && recipient->kind == Party::Kind::kOrganization ? recipient->id : no_organization;
  for (const std::string* org : {&actor.organization, &recipient_org}) {
    if (org->empty() || (org == &recipient_org && recipient_org == actor.organization)) continue;
    TOEGANG_ASSIGN_OR_RETURN(std::shared_ptr<const std::vector<Stored<OrgCategory>>> all, store.CategoriesOf(*org));
    for (Stored<OrgCategory>& c : UpTo(*all, at.sequence)) categories.push_back(std::move(c));
  }
  const PatientSearch plan = PlanPatientSearch(rules, page.request, subs, categories);
  page.every_patient = plan.every_patient;
  const std::vector<std::string> keys =
      plan.every_patient ? std::vector<std::string>{std::string(kEveryPatientKey)} : plan.keys;

  // Candidates a fetch at a time, in id order; their records a window at a time, read as
  // a pass over many (FactStore::ScanPatients).
  constexpr size_t kFetch = 256;
  constexpr size_t kWindow = 64;
  AccessRequest asked = page.request;
  std::string after = at.after;
  bool out_of_candidates = false;
  bool stopped = false;  // page full, or the deadline
  std::vector<absl::string_view> window;
  while (!stopped) {
    TOEGANG_ASSIGN_OR_RETURN(std::vector<std::string> ids, store.IndexedPatients(keys, after, kFetch));
    for (size_t start = 0; start < ids.size() && !stopped; start += kWindow) {
      const size_t end = std::min(ids.size(), start + kWindow);
      window.assign(ids.begin() + start, ids.begin() + end);
      std::vector<absl::StatusOr<std::shared_ptr<const PatientRecord>>> records = store.ScanPatients(window);
      for (size_t i = start; i < end; ++i) {
        if (!records[i - start].ok()) return records[i - start].status();
        TOEGANG_ASSIGN_OR_RETURN(std::shared_ptr<const PatientRecord> record,
                                 Pinned(store, *std::move(records[i - start]), at.sequence));
        after = ids[i];
        ++page.examined;
        if (Empty(*record)) continue;  // not yet known at the pinned sequence
        asked.patient = ids[i];
        Decision d = Evaluate(rules, asked, *record, subs, categories);
        if (d.permitted()) page.patients.push_back({ids[i], std::move(d), std::move(record)});
        if (page.patients.size() == query.page_size) {
          stopped = true;
          break;
        }
      }
      if (clock() >= stop) stopped = true;
    }
    if (!stopped && ids.size() < kFetch) {
      out_of_candidates = true;
      break;
    }
  }
  if (!out_of_candidates) {
    TOEGANG_ASSIGN_OR_RETURN(std::vector<std::string> more, store.IndexedPatients(keys, after, 1));
    out_of_candidates = more.empty();
  }
  page.complete = out_of_candidates;
  if (!page.complete) page.cursor = EncodeCursor(CursorState{at.sequence, after}, fingerprint);
  return page;
}

}  // namespace engine_internal

std::string PatientPage::Json() const {
  using json = nlohmann::json;
  json patients_json = json::array();
  for (const ListedPatient& p : patients) {
    json entry = DecisionGroundsJson(p.decision);
    entry["patient"] = p.patient;
    patients_json.push_back(std::move(entry));
  }
  json actor = {{"id", request.actor.id}, {"role", std::string(Name(request.actor.role))}};
  actor["organization"] = request.actor.organization.empty() ? json(nullptr) : json(request.actor.organization);
  return JsonText(json{{"actor", std::move(actor)},
                       {"at", FormatInstant(request.at)},
                       {"action", std::string(Name(request.action))},
                       {"category", std::string(Name(request.category))},
                       {"purpose", std::string(Name(request.purpose))},
                       {"policy", policy ? std::string(policy->id()) : std::string()},
                       {"sequence", sequence},
                       {"search", every_patient ? "every_patient" : "indexed"},
                       {"examined", examined},
                       {"patients", std::move(patients_json)},
                       {"complete", complete},
                       {"cursor", complete ? json(nullptr) : json(cursor)}});
}

}  // namespace toegang
