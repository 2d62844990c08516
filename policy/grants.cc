// Copyright toegang authors.
#include "policy/grants.h"

#include <algorithm>
#include <array>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "model/json.h"
#include "model/patient_state.h"
#include "model/time.h"
#include "policy/internal/rules.h"

namespace toegang {
namespace {

// The actor id of "anyone of a role": no fact names it (ids are never empty).
constexpr char kAnyone[] = "";
// The organisation standing for "an organisation of category C": no fact names it
// (ids have no control characters).
std::string CategoryOrganization(absl::string_view category) { return absl::StrCat("\x01", category); }

// The facts on the actor's side, for one candidate: what the store has for a named
// actor or organisation, a coverage of `covers` for a substitute, the category itself
// for an organisation standing for its category.
class CandidateFacts final : public ActorFactSource {
 public:
  CandidateFacts(GrantSources& sources, const Grantee& who, std::optional<Stored<Relationship>> coverage)
      : sources_(sources), who_(who), coverage_(std::move(coverage)) {
    if (who.organization_category) {
      category_.push_back({OrgCategory{"", CategoryOrganization(*who.organization_category), *who.organization_category, {}}, {}});
    }
  }
  absl::Span<const Stored<Relationship>> Substitutions() override {
    if (coverage_) return absl::MakeConstSpan(&*coverage_, 1);
    if (!who_.actor) return {};
    return sources_.SubstitutionsOf(*who_.actor);
  }
  absl::Span<const Stored<OrgCategory>> CategoriesOf(absl::string_view organization) override {
    if (!category_.empty() && organization == category_.front().value.organization) return category_;
    return sources_.CategoriesOf(organization);
  }

 private:
  GrantSources& sources_;
  const Grantee& who_;
  std::optional<Stored<Relationship>> coverage_;
  std::vector<Stored<OrgCategory>> category_;
};

struct Asked {
  std::optional<Stored<Relationship>> coverage;  // a substitute's coverage
  bool emergency = false;                        // with a justification
  bool legal_order = false;
};

// Nothing asked beyond the request itself. One, rather than a temporary per candidate:
// each was a few hundred bytes zeroed (bench/RESULTS.md).
const Asked kPlain;

AccessRequest RequestFor(const PatientRecord& record, const GrantsQuery& q, const Grantee& who, Purpose purpose,
                         absl::Time t, const Asked& asked) {
  AccessRequest r;
  r.at = t;
  r.patient = record.patient;
  r.action = q.action;
  r.category = q.category;
  r.purpose = purpose;
  r.actor.id = who.actor.value_or(kAnyone);
  r.actor.role = who.role;
  if (who.organization) r.actor.organization = *who.organization;
  if (who.organization_category) r.actor.organization = CategoryOrganization(*who.organization_category);
  if (asked.emergency) {
    r.emergency = true;
    r.emergency_justification = "(given)";
  }
  if (asked.legal_order) r.legal_order = "(given)";
  return r;
}

bool SamePermit(const Decision& a, const Decision& b) {
  return a.permitted() && b.permitted() && a.rule == b.rule && a.consents == b.consents &&
         a.obligations == b.obligations;
}

// Every instant after `at` at which a decision about this patient may change, as far as
// the patient's facts tell: the ends of every window, when facts were recorded or
// withdrawn, the birthdays that change the age band, the day of death. Sorted, once.
std::vector<absl::Time> Boundaries(const Policy& policy, const PatientRecord& rec, absl::Time at) {
  std::vector<absl::Time> out;
  auto add = [&](absl::Time t) {
    if (t > at && t != absl::InfiniteFuture()) out.push_back(t);
  };
  auto window = [&](const Window& w) {
    add(w.from);
    add(w.until);
  };
  const absl::Duration grace = absl::Hours(24) * policy.params().treatment_grace_days;
  for (const Stored<Relationship>& r : rec.relationships) {
    window(r.value.window);
    if (r.value.window.until != absl::InfiniteFuture()) add(r.value.window.until + grace);
  }
  for (const Stored<Consent>& c : rec.consents) {
    window(c.value.window);
    add(c.provenance.RecordedInstant());
  }
  for (const Stored<Withdrawal>& w : rec.withdrawals) {
    add(w.value.at);
    add(std::max(w.value.at, w.provenance.RecordedInstant()));
  }
  for (const Stored<Objection>& o : rec.objections) {
    window(o.value.window);
    add(o.provenance.RecordedInstant());
  }
  for (const Stored<Restriction>& r : rec.restrictions) {
    window(r.value.window);
    add(r.provenance.RecordedInstant());
  }
  for (const Stored<Capacity>& c : rec.capacities) {
    window(c.value.window);
    add(c.provenance.RecordedInstant());
  }
  if (rec.person && rec.person->value.birth_date) {
    const absl::CivilDay birth = *rec.person->value.birth_date;
    for (int years : {12, 16, 18}) {
      add(absl::FromCivil(BirthdayIn(birth, birth.year() + years, policy.params().leap_day_rule), Amsterdam()));
    }
  }
  if (rec.person && rec.person->value.death_date) add(absl::FromCivil(*rec.person->value.death_date, Amsterdam()));
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}


bool SameGrantee(const Grantee& a, const Grantee& b) {
  return a.actor == b.actor && a.role == b.role && a.organization == b.organization &&
         a.organization_category == b.organization_category && a.everyone == b.everyone;
}

void AddOnce(std::vector<Grantee>* list, Grantee g) {
  for (const Grantee& h : *list) {
    if (SameGrantee(g, h)) return;
  }
  list->push_back(std::move(g));
}

// The party a consent, objection or restriction names, as a grantee: a named actor in
// each role the facts give them (a clinician when none), anyone of a role, anyone
// acting for an organisation or one of its category (as a clinician).
void GranteesOf(const Party& party, const std::vector<Grantee>& known, std::vector<Grantee>* out) {
  switch (party.kind) {
    case Party::Kind::kActor: {
      bool any = false;
      for (const Grantee& g : known) {
        if (g.actor == party.id) {
          AddOnce(out, g);
          any = true;
        }
      }
      if (!any) AddOnce(out, Grantee{party.id, Role::kClinician, std::nullopt, std::nullopt, false});
      break;
    }
    case Party::Kind::kRole:
      AddOnce(out, Grantee{std::nullopt, party.role, std::nullopt, std::nullopt, false});
      break;
    case Party::Kind::kOrganization:
      AddOnce(out, Grantee{std::nullopt, Role::kClinician, party.id, std::nullopt, false});
      break;
    case Party::Kind::kOrganizationCategory:
      AddOnce(out, Grantee{std::nullopt, Role::kClinician, std::nullopt, party.id, false});
      break;
  }
}

bool DeniedByFacts(const Decision& d) {
  for (Reason r : d.reasons) {
    if (r == Reason::kPatientObjection || r == Reason::kWithheldByClinician) return true;
  }
  return false;
}

class Lister {
 public:
  Lister(const Policy& policy, const PatientRecord& record, const GrantsQuery& query, GrantSources& sources)
      : policy_(policy), record_(record), query_(query), sources_(sources) {}

  Decision DecideAt(const Grantee& who, Purpose purpose, const Asked& asked, absl::Time t) {
    CandidateFacts facts(sources_, who, asked.coverage);
    return Evaluate(policy_, RequestFor(record_, query_, who, purpose, t, asked), record_, facts);
  }

  // The first instant after `at` at which the facts known now stop giving `who` this
  // permit (nullopt: none they know of).
  std::optional<absl::Time> ValidUntil(const Grantee& who, Purpose purpose, const Asked& asked, const Decision& now) {
    if (!boundaries_) boundaries_ = Boundaries(policy_, record_, query_.at);
    // The candidate's side changes too: its coverages and its organisation's categories.
    std::vector<absl::Time> own;
    auto window = [&](const Window& w) {
      for (absl::Time t : {w.from, w.until}) {
        if (t > query_.at && t != absl::InfiniteFuture()) own.push_back(t);
      }
    };
    if (asked.coverage) {
      window(asked.coverage->value.window);
    } else if (who.actor) {
      for (const Stored<Relationship>& r : sources_.SubstitutionsOf(*who.actor)) window(r.value.window);
    }
    if (who.organization) {
      for (const Stored<OrgCategory>& c : sources_.CategoriesOf(*who.organization)) window(c.value.window);
    }
    const std::vector<absl::Time>* instants = &*boundaries_;
    if (!own.empty()) {
      own.insert(own.end(), boundaries_->begin(), boundaries_->end());
      std::sort(own.begin(), own.end());
      own.erase(std::unique(own.begin(), own.end()), own.end());
      instants = &own;
    }
    for (absl::Time t : *instants) {
      if (!SamePermit(DecideAt(who, purpose, asked, t), now)) return t;
    }
    return std::nullopt;
  }

  // Whether a rule for (role, purpose) requires `p`: a condition worth trying.
  bool SomeRuleRequires(Role role, Purpose purpose, policy_internal::Predicate p) const {
    for (uint16_t i : policy_.Candidates(role, purpose)) {
      const policy_internal::CompiledRule& r = policy_.rules()[i];
      if (std::find(r.require.begin(), r.require.end(), p) != r.require.end()) return true;
    }
    return false;
  }

  // Whether the request for `who` could be permitted at all: some permit rule for the
  // role and purpose has the query's action and category, and none of its requirements
  // is one that cannot hold for this request, whenever it is made. When none could, the
  // decision would be a deny: it is not made. Most candidates of a list are such (about
  // three in four, bench/RESULTS.md): anyone of a role, a registration's roles.
  bool MayPermit(const Grantee& who, Purpose purpose, const Asked& asked) const {
    for (uint16_t i : policy_.Candidates(who.role, purpose)) {
      const policy_internal::CompiledRule& r = policy_.rules()[i];
      if (r.effect != Effect::kPermit) continue;
      if (!r.actions.Contains(query_.action) || !r.categories.Contains(query_.category)) continue;
      if (std::none_of(r.require.begin(), r.require.end(),
                       [&](policy_internal::Predicate p) { return RuledOut(p, who, purpose, asked); })) {
        return true;
      }
    }
    return false;
  }

  // Whether requirement `p` cannot hold for `who` asking (RequestFor), at any instant:
  // what the request carries, or no fact of the record names the actor so.
  bool RuledOut(policy_internal::Predicate p, const Grantee& who, Purpose purpose, const Asked& asked) const {
    using policy_internal::Predicate;
    switch (p) {
      case Predicate::kEmergencyJustification:
        return !asked.emergency;
      case Predicate::kLegalOrder:
        return !asked.legal_order || who.role != Role::kLawEnforcement;
      case Predicate::kSelf:
        return who.actor != record_.patient;
      case Predicate::kRegisteredWith:
        return !who.organization && !who.organization_category;
      case Predicate::kConsent:
        return !SomeConsentCovers(purpose);
      case Predicate::kTreatingRelationship: {
        const std::string id = who.actor.value_or(kAnyone);
        return std::none_of(record_.relationships.begin(), record_.relationships.end(),
                            [&](const Stored<Relationship>& r) {
                              return r.value.relation == Relation::kTreating && r.value.subject == id;
                            });
      }
      default:
        return false;
    }
  }

  // Whether one of the record's consents covers `purpose` and the query's category and
  // action (whoever it names, whenever it holds): an effective consent must. Worked out
  // once per purpose.
  bool SomeConsentCovers(Purpose purpose) const {
    std::optional<bool>& known = consent_covers_[static_cast<size_t>(purpose)];
    if (!known) {
      known = std::any_of(record_.consents.begin(), record_.consents.end(), [&](const Stored<Consent>& c) {
        return c.value.patient == record_.patient && c.value.purposes.Contains(purpose) &&
               c.value.categories.Contains(query_.category) && c.value.actions.Contains(query_.action);
      });
    }
    return *known;
  }

  // A permit for `who`, listed in `*into` with its conditions; false when denied.
  bool TryGrant(const Grantee& who, Purpose purpose, const Asked& asked, std::vector<std::string> conditions,
                std::vector<Grant>* into) {
    if (!MayPermit(who, purpose, asked)) return false;
    Decision d = DecideAt(who, purpose, asked, query_.at);
    if (!d.permitted()) return false;
    Grant g;
    g.who = who;
    g.purpose = purpose;
    g.valid_until = ValidUntil(who, purpose, asked, d);
    g.decision = std::move(d);
    g.conditions = std::move(conditions);
    into->push_back(std::move(g));
    return true;
  }

  GrantList List() {
    std::vector<Purpose> purposes;
    if (query_.purpose) {
      purposes.push_back(*query_.purpose);
    } else {
      for (int i = 0; i < EnumCount<Purpose>(); ++i) purposes.push_back(static_cast<Purpose>(i));
    }
    // Who the facts name, in the roles they give them.
    std::vector<Grantee> named;
    AddOnce(&named, Grantee{record_.patient, Role::kPatient, std::nullopt, std::nullopt, false});
    std::vector<std::string> treating;
    for (const Stored<Relationship>& r : record_.relationships) {
      const Relationship& rel = r.value;
      switch (rel.relation) {
        case Relation::kTreating:
          AddOnce(&named, Grantee{rel.subject, Role::kClinician, std::nullopt, std::nullopt, false});
          if (std::find(treating.begin(), treating.end(), rel.subject) == treating.end()) treating.push_back(rel.subject);
          break;
        case Relation::kParentWithAuthority:
        case Relation::kParentWithoutAuthority:
        case Relation::kGuardian:
          AddOnce(&named, Grantee{rel.subject, Role::kParent, std::nullopt, std::nullopt, false});
          break;
        case Relation::kRepresentative:
          AddOnce(&named, Grantee{rel.subject, Role::kRepresentative, std::nullopt, std::nullopt, false});
          break;
        case Relation::kRegisteredWith:
          // Anyone at the practice the patient is registered with, in its roles (D16, D17).
          for (Role role : {Role::kAssistant, Role::kAdministrator, Role::kClinician}) {
            AddOnce(&named, Grantee{std::nullopt, role, rel.subject, std::nullopt, false});
          }
          break;
        case Relation::kSubstituteFor:
          break;
      }
    }
    std::vector<Grantee> known = named;
    for (const Stored<Consent>& c : record_.consents) {
      GranteesOf(c.value.to, known, &named);
      if (c.value.to.kind == Party::Kind::kActor && c.value.purposes.Contains(Purpose::kResearch)) {
        AddOnce(&named, Grantee{c.value.to.id, Role::kResearcher, std::nullopt, std::nullopt, false});
      }
    }

    // The organisations the facts name: a named actor may act for one (D39), which a
    // consent to it or a registration there can make the difference for.
    std::vector<std::string> organizations;
    auto add_org = [&](const std::string& o) {
      if (std::find(organizations.begin(), organizations.end(), o) == organizations.end()) organizations.push_back(o);
    };
    for (const Grantee& g : named) {
      if (g.organization) add_org(*g.organization);
    }
    for (const Stored<Consent>& c : record_.consents) {
      if (c.value.to.kind == Party::Kind::kOrganization) add_org(c.value.to.id);
    }

    GrantList out;
    for (const Grantee& who : named) {
      for (Purpose p : purposes) {
        const bool plain = TryGrant(who, p, kPlain, {}, &out.grants);
        if (!who.actor || who.organization) continue;
        const size_t plain_at = out.grants.size() - 1;  // when `plain`
        for (const std::string& o : organizations) {
          Grantee at_org = who;
          at_org.organization = o;
          if (!MayPermit(at_org, p, kPlain)) continue;
          // Listed only when acting for the organisation changes the answer.
          const Decision d = DecideAt(at_org, p, kPlain, query_.at);
          if (!d.permitted() || (plain && SamePermit(d, out.grants[plain_at].decision))) continue;
          TryGrant(at_org, p, kPlain, {}, &out.grants);
        }
      }
    }
    // What holds for anyone of a role, given what the request carries.
    for (int i = 0; i < EnumCount<Role>(); ++i) {
      const Role role = static_cast<Role>(i);
      const Grantee anyone{std::nullopt, role, std::nullopt, std::nullopt, false};
      for (Purpose p : purposes) {
        if (TryGrant(anyone, p, kPlain, {}, &out.conditional)) continue;
        using policy_internal::Predicate;
        if (SomeRuleRequires(role, p, Predicate::kEmergencyJustification)) {
          Asked emergency;
          emergency.emergency = true;
          if (TryGrant(anyone, p, emergency, {"emergency.justification"}, &out.conditional)) continue;
        }
        if (SomeRuleRequires(role, p, Predicate::kLegalOrder)) {
          Asked order;
          order.legal_order = true;
          TryGrant(anyone, p, order, {"legal_order"}, &out.conditional);
        }
      }
    }
    // Substitutes (D13): whoever covers a treating clinician, while the coverage holds.
    for (const std::string& clinician : treating) {
      Asked covering;
      covering.coverage = Stored<Relationship>{Relationship{"", kAnyone, Relation::kSubstituteFor, clinician, {}}, {}};
      const Grantee substitute{std::nullopt, Role::kClinician, std::nullopt, std::nullopt, false};
      for (Purpose p : purposes) {
        TryGrant(substitute, p, covering, {absl::StrCat("substitute_for ", clinician)}, &out.conditional);
      }
    }
    // Whom an objection or a restriction names, and whether it denies them.
    for (const Stored<Objection>& o : record_.objections) Deny(o.value, "objection", known, purposes, &out.denied);
    for (const Stored<Restriction>& r : record_.restrictions) Deny(r.value, "restriction", known, purposes, &out.denied);
    return out;
  }

 private:
  void Deny(const Limitation& l, absl::string_view type, const std::vector<Grantee>& known,
            const std::vector<Purpose>& purposes, std::vector<Denial>* out) {
    std::vector<Grantee> who;
    if (l.to) {
      GranteesOf(*l.to, known, &who);
    } else {
      who.push_back(Grantee{std::nullopt, Role::kClinician, std::nullopt, std::nullopt, true});
    }
    for (const Grantee& g : who) {
      for (Purpose p : purposes) {
        if (!l.purposes.Contains(p) && !(p == Purpose::kEmergency && l.purposes.Contains(Purpose::kTreatment))) continue;
        Decision d = DecideAt(g, p, kPlain, query_.at);
        if (d.permitted() || !DeniedByFacts(d)) continue;
        auto same = std::find_if(out->begin(), out->end(),
                                 [&](const Denial& x) { return SameGrantee(x.who, g) && x.purpose == p; });
        if (same == out->end()) {
          out->push_back(Denial{g, p, std::move(d), {}});
          same = out->end() - 1;
        }
        std::string fact = absl::StrCat(type, " ", l.id);
        if (std::find(same->facts.begin(), same->facts.end(), fact) == same->facts.end()) same->facts.push_back(fact);
      }
    }
  }

  const Policy& policy_;
  const PatientRecord& record_;
  const GrantsQuery& query_;
  GrantSources& sources_;
  std::optional<std::vector<absl::Time>> boundaries_;  // the patient's, made when first needed
  mutable std::array<std::optional<bool>, EnumCount<Purpose>()> consent_covers_;  // SomeConsentCovers
};

}  // namespace

GrantList ListGrants(const Policy& policy, const PatientRecord& record, const GrantsQuery& query,
                     GrantSources& sources) {
  return Lister(policy, record, query, sources).List();
}

namespace {

using json = nlohmann::json;

json WhoJson(const Grantee& who) {
  json j = json::object();
  if (who.everyone) {
    j["everyone"] = true;
  } else {
    j["actor"] = who.actor ? json(*who.actor) : json(nullptr);
    j["role"] = std::string(Name(who.role));
    j["organization"] = who.organization ? json(*who.organization) : json(nullptr);
    if (who.organization_category) j["organization_category"] = *who.organization_category;
  }
  return j;
}

json GrantJson(const Grant& g, bool conditional) {
  json j = WhoJson(g.who);
  j["purpose"] = std::string(Name(g.purpose));
  j.update(DecisionGroundsJson(g.decision));
  j["valid_until"] = g.valid_until ? json(FormatInstant(*g.valid_until)) : json(nullptr);
  if (conditional) j["conditions"] = g.conditions;
  return j;
}

}  // namespace

std::string GrantsJson(const GrantList& list, absl::string_view patient, absl::Time at, uint64_t sequence) {
  json grants = json::array();
  for (const Grant& g : list.grants) grants.push_back(GrantJson(g, false));
  json conditional = json::array();
  for (const Grant& g : list.conditional) conditional.push_back(GrantJson(g, true));
  json denied = json::array();
  for (const Denial& d : list.denied) {
    json j = WhoJson(d.who);
    j["purpose"] = std::string(Name(d.purpose));
    json grounds = DecisionGroundsJson(d.decision);
    j["rule"] = std::move(grounds["rule"]);
    j["reasons"] = std::move(grounds["reasons"]);
    j["facts"] = d.facts;
    denied.push_back(std::move(j));
  }
  return JsonText(json{{"patient", std::string(patient)},
                       {"at", FormatInstant(at)},
                       {"sequence", sequence},
                       {"grants", std::move(grants)},
                       {"conditional", std::move(conditional)},
                       {"denied", std::move(denied)}});
}

}  // namespace toegang
