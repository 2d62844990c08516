// Copyright toegang authors.
//
// facts.h: the facts toegang decides by (API.md "Facts"), as plain values.
//
// Facts are history (DOMAIN D40): a later fact never changes an earlier one. A
// withdrawal ends a consent (or an objection or restriction) from its `at` on. Every
// fact carries its provenance: the store's sequence number and arrival instant, and
// `recorded_at` when the source system gave one.
//
// Validity windows are half-open: `from` inclusive, `until` exclusive; a missing
// `from` is absl::InfinitePast(), a missing `until` absl::InfiniteFuture().
//
// Values: thread-compatible (share them read-only); the functions are thread-safe.
#ifndef TOEGANG_MODEL_FACTS_H_
#define TOEGANG_MODEL_FACTS_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include <variant>
#include <vector>

#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "model/vocabulary.h"

namespace toegang {

// Where a fact came from. Filled by the store; `recorded_at` is as given, if given.
struct Provenance {
  uint64_t seq = 0;                        // 0: not stored (yet)
  absl::Time arrival = absl::InfinitePast();
  std::optional<absl::Time> recorded_at;   // as given by the source system

  // When the fact was recorded (DOMAIN D19, D40): as given, else its arrival in the
  // store. Facts read from a file rather than a store have no arrival
  // (InfinitePast), so only their `from` limits them.
  absl::Time RecordedInstant() const { return recorded_at ? *recorded_at : arrival; }
};

// One party: an actor, everyone acting in a role, an organisation, or every
// organisation of a care-provider category (Mitz's "zorgaanbiedercategorie": an
// opaque code such as "RPZAC005", matched through org_category facts).
struct Party {
  enum class Kind : uint8_t { kActor, kRole, kOrganization, kOrganizationCategory };
  Kind kind = Kind::kActor;
  std::string id;          // kActor, kOrganization, kOrganizationCategory (the code)
  Role role = Role::kPatient;  // kRole

  friend bool operator==(const Party& a, const Party& b) {
    return a.kind == b.kind && (a.kind == Kind::kRole ? a.role == b.role : a.id == b.id);
  }
};

struct Window {
  absl::Time from = absl::InfinitePast();
  absl::Time until = absl::InfiniteFuture();
  bool Contains(absl::Time t) const { return from <= t && t < until; }
};

struct Person {
  std::string id;
  std::optional<absl::CivilDay> birth_date;
  std::optional<absl::CivilDay> death_date;
};

struct Relationship {
  std::string id;       // may be empty: relationships without an id cannot be withdrawn
  std::string subject;
  Relation relation = Relation::kTreating;
  std::string object;
  Window window;
};

struct Consent {
  std::string id;
  std::string patient;
  std::vector<std::string> granted_by;  // one grantor, or the child and a parent (D20)
  Party to;
  PurposeSet purposes;
  CategorySet categories;
  ActionSet actions;
  Window window;
  std::string evidence;
};

struct Withdrawal {
  std::string target;  // the consent (or objection or restriction) id: API field `consent`
  std::string by;
  absl::Time at;
};

// What an objection and a restriction share: whom and what they limit, and when.
// `to` absent: everyone the filters reach. Absent filters: all.
struct Limitation {
  std::string id;
  std::string patient;
  std::string by;
  std::optional<Party> to;
  PurposeSet purposes = PurposeSet::All();
  CategorySet categories = CategorySet::All();
  ActionSet actions = ActionSet::All();
  Window window;
};

// An objection by (or for) the patient (DOMAIN D9, D15, D21-D23).
struct Objection : Limitation {};

// A restriction recorded by a treating clinician (DOMAIN D33).
struct Restriction : Limitation {
  std::string reason;
};

// A clinician's capacity assessment (DOMAIN D7).
struct Capacity {
  std::string id;
  std::string patient;
  std::string by;
  bool capable = true;
  Window window;
};

// An organisation's care-provider category while `window` holds. A party naming the
// category reaches everyone acting for the organisation then (policy/evaluator.h). Not
// about a patient: filed under the organisation, as a substitution is under its clinician.
struct OrgCategory {
  std::string id;  // may be empty
  std::string organization;
  std::string category;
  Window window;
};

// A request to erase the patient's dossier (WGBO 7:455; Jeugdwet from 12; DOMAIN D61),
// made at `at` by whoever may act for the patient then (model/who_may_act.h
// `request_erasure`). Carried out within 3 months unless a retention hold keeps it.
struct ErasureRequest {
  std::string id;
  std::string patient;
  std::string by;
  absl::Time at;
};

// What keeps the patient's records past their term, or from an erasure, while `window`
// holds (DOMAIN D60, D61): a dispute, a legal order, a child-protection measure, someone
// else's substantial interest, good care. Recorded by `by`; ended by `until` or a
// withdrawal by its author.
struct RetentionHold {
  std::string id;
  std::string patient;
  std::string by;
  HoldReason reason = HoldReason::kDispute;
  Window window;
};

// What is left of a fact removed when its retention term ended or on an erasure request
// (DOMAIN D60, D61; `toegang retention apply`): which fact it was, when it went and under
// which term. It keeps the removed fact's place (sequence number, arrival) and leaves its
// id taken; nothing else of the fact is kept. Only a store makes one: a batch holding
// one is refused.
struct Removed {
  std::string id;        // the removed fact's id ("" for a relationship given without one)
  std::string patient;
  std::string type;      // the removed fact's type ("consent")
  absl::Time removed_at;
  std::string term;      // policy/retention.h: "dossier_20_years", "erasure_request era-1", ...
  // The removal covered the patient's facts up to this sequence number: all of them but
  // those it left (consents an access-log record still relies on, D41). An erasure
  // request covers what was recorded before it; a term ending, everything known then.
  uint64_t covered_seq = 0;
};

using FactBody = std::variant<Person, Relationship, Consent, Withdrawal, Objection, Restriction, Capacity, OrgCategory,
                              ErasureRequest, RetentionHold, Removed>;

// The record an imported fact was made from (engine/fhir: system "fhir", the Consent's
// id and meta.versionId). Kept with the fact and shown by `history`; not part of
// Provenance, so the records decisions read stay small.
struct FactSource {
  std::string system;
  std::string id;
  std::string version;  // may be empty
  // The choice the record states, when a later record about the same choice replaces
  // it whatever its id: a Mitz consent choice, "GGC002/RPZAC005" (data category and
  // provider category). Empty for records replaced by id and version.
  std::string choice;

  friend bool operator==(const FactSource& a, const FactSource& b) {
    return a.system == b.system && a.id == b.id && a.version == b.version && a.choice == b.choice;
  }
};

struct Fact {
  Fact() = default;
  // `Fact{body, {}}` keeps working for the many places that make a fact from its body.
  Fact(FactBody b, Provenance p = {}, std::optional<FactSource> s = std::nullopt)
      : body(std::move(b)), provenance(std::move(p)), source(std::move(s)) {}

  FactBody body;
  Provenance provenance;
  std::optional<FactSource> source;  // nullopt: recorded directly, not imported
};

// The fact's type name as in API.md ("consent").
const char* FactTypeName(const FactBody& body);

// The id of the fact (person id, consent id, ...); empty when the type has none
// (a withdrawal, a relationship given without an id).
const std::string& FactId(const FactBody& body);

// The patients this fact is about: a person is about itself; a relationship about its
// object (and, for substitute_for, nobody: it is about two clinicians); an org_category
// about nobody (it is about an organisation); consents,
// objections, restrictions and capacity assessments about their `patient`. Withdrawals
// are about the patient of what they withdraw, which only the store knows.
const std::string* FactPatient(const FactBody& body);

// Whether a withdrawal may name this fact: a consent, objection, restriction, capacity
// assessment, erasure request or retention hold. Their ids share one space, so a
// withdrawal's target is never ambiguous.
bool IsWithdrawable(const FactBody& body);

// The key under which a fact's id must be unique in a store ("" when it has none to
// keep unique: withdrawals, and relationships without an id). A person is stored once:
// a second person fact with the same id would silently change a birth date, and with
// it every age band (DOMAIN D40: facts are never overwritten).
std::string UniqueIdKey(const FactBody& body);

// --- Errors about one fact of a batch --------------------------------------------------
// A store refuses a batch naming the fact at fault: "fact N: <what>", with N (1-based)
// also attached as data (an absl::Status payload), so that a caller showing a file's
// line or a body's line takes the position from there, never from the text.

// `what`, said of the fact at `position` (1-based).
absl::Status AtFact(size_t position, const absl::Status& what);
// The position AtFact attached, or 0 when the error is not about one fact.
size_t FactPositionOf(const absl::Status& status);
// The message without its "fact N: " (the whole message when there is none).
std::string WhatAtFact(const absl::Status& status);

// The same for input read as JSON Lines: "line N: <what>", with N as data.
absl::Status AtLine(size_t line, const absl::Status& what);
size_t LineOf(const absl::Status& status);
std::string WhatAtLine(const absl::Status& status);

// Whether a refusal of input is the caller's to fix — bad input: exit 2 on the command
// line, 400 from the sidecar — rather than the system's (exit 1, 500): a malformed or
// impossible fact, a duplicate id, a withdrawal of nothing known.
bool IsCallersFault(const absl::Status& status);

// The two refusals every store makes of a batch (DOMAIN D40), worded once.
absl::Status DuplicateIdError(const FactBody& body);
absl::Status UnknownWithdrawalTargetError(absl::string_view target);

}  // namespace toegang

#endif  // TOEGANG_MODEL_FACTS_H_
