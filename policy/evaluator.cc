// Copyright toegang authors.
#include "policy/evaluator.h"

#include <algorithm>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "policy/explain.h"
#include "model/time.h"
#include "policy/internal/rules.h"
#include "model/patient_state.h"
#include "model/who_may_act.h"

namespace toegang {
namespace {

using policy_internal::CompiledRule;
using policy_internal::Predicate;

// Everything one decision computes about the facts, each at most once.
class DecisionContext {
 public:
  DecisionContext(const Policy& policy, const AccessRequest& req, const PatientRecord& record,
                  ActorFactSource& actor_facts)
      : params_(policy.params()), req_(req), rec_(record), actor_facts_(actor_facts) {
    if (rec_.person && rec_.person->value.birth_date) {
      int age = AgeInYears(*rec_.person->value.birth_date, AmsterdamDay(req.at), params_.leap_day_rule);
      if (age < 0) {
        band_error_ = Reason::kBirthDateAfterRequest;  // D5
      } else {
        band_ = BandForAge(age);
      }
    }
  }

  const std::optional<AgeBand>& band() const { return band_; }
  Reason band_error() const { return band_error_; }
  // The consents a permit relied on (D41): those behind `consent` if the rule required
  // it, and those behind `parental_consent` if it was found to hold.
  void AppendReliedOn(bool rule_requires_consent, absl::InlinedVector<absl::string_view, 2>* out) const {
    uint32_t parental = uint32_t{1} << static_cast<int>(Predicate::kParentalConsent);
    if ((known_ & parental) && (value_ & parental)) out->insert(out->end(), parental_ids_.begin(), parental_ids_.end());
    if (rule_requires_consent) {
      for (absl::string_view id : consent_ids_) {
        if (std::find(out->begin(), out->end(), id) == out->end()) out->push_back(id);
      }
    }
  }

  bool Holds(Predicate p) {
    uint32_t bit = uint32_t{1} << static_cast<int>(p);
    if (known_ & bit) return (value_ & bit) != 0;
    if (trace_ != nullptr) {
      trace_->predicates.emplace_back();
      trace_->predicates.back().predicate = policy_internal::PredicateName(p);
      current_ = trace_->predicates.size() - 1;
    }
    bool v = Compute(p);
    if (trace_ != nullptr) {
      PredicateTrace& done = trace_->predicates[current_];
      done.holds = v;
      if (!v) done.facts.clear();  // cited on the way to a result that did not come
    }
    known_ |= bit;
    if (v) value_ |= bit;
    return v;
  }

  // Explaining (explain.h): the predicates computed, with the facts that made them hold.
  void TraceInto(Explanation* trace) { trace_ = trace; }
  bool tracing() const { return trace_ != nullptr; }

  // The reason a failed requirement gives: age errors name the age problem.
  Reason FailureReason(Predicate p) const {
    if ((p == Predicate::kConsent || p == Predicate::kParentalConsent) && !band_) return band_error_;
    return policy_internal::PredicateFailureReason(p);
  }

 private:
  bool Compute(Predicate p) {
    switch (p) {
      case Predicate::kTreatingRelationship:
        return Treats(req_.actor.id, req_.at);
      case Predicate::kSubstituteCoverage:
        return SubstituteCoverage();
      case Predicate::kRegisteredWith:
        return !req_.actor.organization.empty() &&
               Cited(RelationAt(rec_, req_.actor.organization, Relation::kRegisteredWith, req_.at));
      case Predicate::kSelf:
        return req_.actor.id == req_.patient;
      case Predicate::kParentWithAuthority:
        return Cited(ParentAuthorityAt(rec_, req_.actor.id, req_.at));
      case Predicate::kRepresentativeOfIncapable: {
        const Stored<Capacity>* capacity = CapacityAt(rec_, req_.at);
        if (!Cited(RelationAt(rec_, req_.actor.id, Relation::kRepresentative, req_.at)) || capacity == nullptr ||
            capacity->value.capable) {
          return false;
        }
        CiteFact(*capacity, "capacity");
        return true;
      }
      case Predicate::kConsent:
        return EffectiveConsent();
      case Predicate::kParentalConsent:
        return ParentalConsent();
      case Predicate::kObjection:
        return AnyObjection(/*child_only=*/false);
      case Predicate::kChildObjection:
        return AnyObjection(/*child_only=*/true);
      case Predicate::kRestriction:
        return AnyRestriction();
      case Predicate::kEmergencyJustification:
        return req_.emergency && !absl::StripAsciiWhitespace(req_.emergency_justification).empty();
      case Predicate::kLegalOrder:
        return req_.actor.role == Role::kLawEnforcement && req_.legal_order.has_value();
      case Predicate::kDeceased:
        // D29: from the civil day of death on (read in Europe/Amsterdam).
        if (rec_.person && rec_.person->value.death_date && AmsterdamDay(req_.at) >= *rec_.person->value.death_date) {
          Cite(CitedFact{"person", rec_.person->value.id, "", std::nullopt, "", Window{}, rec_.person->value.death_date});
          return true;
        }
        return false;
    }
    return false;
  }

  // --- citing facts, when explaining ----------------------------------------------

  void Cite(CitedFact f) const {
    if (trace_ != nullptr) trace_->predicates[current_].facts.push_back(std::move(f));
  }
  void Cite(const Stored<Relationship>* r) const {
    if (trace_ == nullptr || r == nullptr) return;
    const Relationship& v = r->value;
    Cite(CitedFact{"relationship", v.id, v.subject, v.relation, v.object, v.window, std::nullopt});  // copies
  }
  template <typename T>
  void CiteFact(const Stored<T>& f, absl::string_view type) const {
    if (trace_ != nullptr) Cite(CitedFact{type, f.value.id, "", std::nullopt, "", f.value.window, std::nullopt});
  }

  // --- relationships (D6, D7, D12-D16) -------------------------------------------

  bool HasRelation(absl::string_view subject, Relation relation, absl::Time t) const {
    return HasRelationAt(rec_, subject, relation, t);
  }

  // Whether `r` is a relationship, citing it when explaining.
  bool Cited(const Stored<Relationship>* r) const {
    Cite(r);
    return r != nullptr;
  }

  bool HasParentAuthority(absl::string_view who, absl::Time t) const { return HasParentAuthorityAt(rec_, who, t); }

  // D12: a treating relationship in force at t; `until` is extended by the grace days.
  bool Treats(absl::string_view clinician, absl::Time t) const {
    absl::Duration grace = absl::Hours(24) * params_.treatment_grace_days;
    for (const Stored<Relationship>& r : rec_.relationships) {
      const Relationship& rel = r.value;
      if (rel.relation != Relation::kTreating || rel.subject != clinician) continue;
      if (rel.window.from <= t && t < rel.window.until + grace) {
        Cite(&r);
        return true;
      }
    }
    return false;
  }

  // D13: the actor covers (substitute_for, in force now) a clinician who treats the
  // patient now. A coverage that has not started grants nothing.
  bool SubstituteCoverage() const {
    for (const Stored<Relationship>& s : actor_facts_.Substitutions()) {
      const Relationship& rel = s.value;
      if (rel.relation != Relation::kSubstituteFor || rel.subject != req_.actor.id) continue;
      if (!rel.window.Contains(req_.at)) continue;
      if (Treats(rel.object, req_.at)) {
        Cite(&s);
        return true;
      }
    }
    return false;
  }

  // D7, D35 (model/patient_state.h).
  bool Incapable(absl::Time t) const { return IncapableAt(rec_, t); }

  // --- consents (D18-D20) ---------------------------------------------------------

  bool Withdrawn(absl::string_view id, absl::Time t, Ending ending) const { return WithdrawnAt(rec_, id, t, ending); }

  // D19: T >= max(from, recorded_at), T < until, not withdrawn at or before T.
  bool ConsentInForce(const Stored<Consent>& c, absl::Time t) const {
    absl::Time start = std::max(c.value.window.from, c.provenance.RecordedInstant());
    return start <= t && t < c.value.window.until && !Withdrawn(c.value.id, t, Ending::kTakesAccess);
  }

  bool Covers(const Consent& c) const {
    return c.purposes.Contains(req_.purpose) && c.categories.Contains(req_.category) &&
           c.actions.Contains(req_.action);
  }

  // --- parties (D15, D18, D33, D39) ------------------------------------------------

  // Whether `organization` is of care-provider `category` at the request's instant. Read
  // only here, so a record that names no category costs nothing more.
  bool InCategory(absl::string_view organization, absl::string_view category) const {
    if (organization.empty()) return false;
    for (const Stored<OrgCategory>& c : actor_facts_.CategoriesOf(organization)) {
      if (c.value.category == category && c.value.window.Contains(req_.at)) return true;
    }
    return false;
  }

  // Whether `party` names the actor: by id, role, organisation (D39: acting for it), or
  // the care-provider category of the actor's organisation.
  bool NamesActor(const Party& party) const {
    const Actor& actor = req_.actor;
    switch (party.kind) {
      case Party::Kind::kActor:
        return party.id == actor.id;
      case Party::Kind::kRole:
        return party.role == actor.role;
      case Party::Kind::kOrganization:
        return !actor.organization.empty() && party.id == actor.organization;
      case Party::Kind::kOrganizationCategory:
        return InCategory(actor.organization, party.id);
    }
    return false;
  }

  // Whether `party` names a disclosure's recipient: the same party, or the category of
  // the recipient organisation.
  bool NamesDisclosureRecipient(const Party& party) const {
    const Party& to = *req_.recipient;
    if (party == to) return true;
    return party.kind == Party::Kind::kOrganizationCategory && to.kind == Party::Kind::kOrganization &&
           InCategory(to.id, party.id);
  }

  // D18: the recipient is the actor, or on a disclose the named recipient.
  bool NamesRecipient(const Party& to) const {
    if (req_.action == Action::kDisclose && req_.recipient) return NamesDisclosureRecipient(to);
    return NamesActor(to);
  }

  // The patient's age band at the consent's start (for parent_consent_at_16 continue).
  std::optional<AgeBand> BandAt(absl::Time t) const {
    if (!rec_.person || !rec_.person->value.birth_date || t == absl::InfinitePast()) return std::nullopt;
    int age = AgeInYears(*rec_.person->value.birth_date, AmsterdamDay(t), params_.leap_day_rule);
    if (age < 0) return std::nullopt;
    return BandForAge(age);
  }

  // D20: a consent covering the request counts when it was granted by whom the
  // patient's band lets grant (kWhoMayAct): alone, or together with
  // the other grantors the band needs, in one consent or several (D38).
  bool EffectiveConsent() {
    if (!band_) return false;  // D5: the grantor rules need the age
    const absl::Time t = req_.at;
    WhoMayAct who = WhoMayActFor(*band_);
    if (*band_ == AgeBand::k12To15 && params_.consent_12_to_15 == PolicyParams::Consent12To15::kChildOnly) {
      who.grant_alone |= kThePatient;
      who.grant_together = 0;
    }
    const bool sixteen_or_over = *band_ == AgeBand::k16To17 || *band_ == AgeBand::kAdult;
    const bool parent_continues = *band_ == AgeBand::k16To17 &&
                                  params_.parent_consent_at_16 == PolicyParams::ParentConsentAt16::kContinue;
    // The first consent granted by each kind the band needs together.
    const Stored<Consent>* first_by[3] = {nullptr, nullptr, nullptr};
    uint8_t together = 0;
    for (const Stored<Consent>& c : rec_.consents) {
      if (c.value.patient != req_.patient || !Covers(c.value) || !NamesRecipient(c.value.to) ||
          !ConsentInForce(c, t)) {
        continue;
      }
      // A yes recorded in Mitz names an organisation category; mitz_grantor as_patient
      // takes Mitz's own check of who gave it for D20's.
      if (c.value.to.kind == Party::Kind::kOrganizationCategory &&
          params_.mitz_grantor == PolicyParams::MitzGrantor::kAsPatient) {
        return Rely(&c, nullptr);
      }
      uint8_t kinds = 0;
      for (const std::string& g : c.value.granted_by) kinds |= ActorKindsAt(rec_, g, t);
      uint8_t alone = kinds & who.grant_alone;
      if (alone == kThePatient && sixteen_or_over && !CountsFrom16(c)) alone = 0;  // D34
      if (alone != 0) return Rely(&c, nullptr);
      if (parent_continues && ParentGrantedBefore16(c)) return Rely(&c, nullptr);
      if (who.grant_together == 0) continue;
      if ((kinds & who.grant_together) == who.grant_together) return Rely(&c, nullptr);
      for (int k = 0; k < 3; ++k) {
        const uint8_t kind = uint8_t{1} << k;
        if ((kinds & who.grant_together & kind) != 0 && first_by[k] == nullptr) first_by[k] = &c;
      }
      together |= kinds & who.grant_together;
      if (together == who.grant_together) {
        const Stored<Consent>* a = nullptr;
        const Stored<Consent>* b = nullptr;
        for (const Stored<Consent>* f : first_by) {
          if (f == nullptr) continue;
          (a == nullptr ? a : b) = f;
        }
        return Rely(a, b);
      }
    }
    return false;
  }

  // When a consent starts and stops counting (D19): from max(from, recorded_at) until
  // its `until` or its first withdrawal.
  static absl::Time ConsentStart(const Stored<Consent>& c) {
    return std::max(c.value.window.from, c.provenance.RecordedInstant());
  }
  absl::Time ConsentEnd(const Stored<Consent>& c) const {
    absl::Time end = c.value.window.until;
    for (const Stored<Withdrawal>& w : rec_.withdrawals) {
      if (w.value.target == c.value.id) end = std::min(end, w.value.at);
    }
    return end;
  }

  // The instant the patient turns `years`, in Europe/Amsterdam (D4: a 29 February
  // birthday by leap_day_rule). REQUIRES: the birth date is known.
  absl::Time Birthday(int years) const {
    const absl::CivilDay birth = *rec_.person->value.birth_date;
    return absl::FromCivil(BirthdayIn(birth, birth.year() + years, params_.leap_day_rule), Amsterdam());
  }

  bool GrantedByParentDuring(const Stored<Consent>& c, absl::Time lo, absl::Time hi) const {
    for (const std::string& g : c.value.granted_by) {
      if (HasParentAuthorityDuring(rec_, g, lo, hi)) return true;
    }
    return false;
  }

  // D34: a consent the patient granted before turning 16 counts from 16 on only if it
  // counted at some instant before the birthday — while the patient was 12-15, with a
  // parent's consent covering the request in force at the same instant (or granted by
  // a parent too, or consent_12_to_15 child_only). A lone consent of a 15-year-old
  // never counts: turning 16 does not make it start to.
  bool CountsFrom16(const Stored<Consent>& c) const {
    const absl::Time sixteen = Birthday(16);
    if (ConsentStart(c) >= sixteen) return true;  // granted at 16 or later
    const absl::Time lo = std::max(ConsentStart(c), Birthday(12));
    const absl::Time hi = std::min(ConsentEnd(c), sixteen);
    if (lo >= hi) return false;  // never in force while the patient was 12-15
    if (params_.consent_12_to_15 == PolicyParams::Consent12To15::kChildOnly) return true;
    if (GrantedByParentDuring(c, lo, hi)) return true;
    for (const Stored<Consent>& p : rec_.consents) {
      if (&p == &c || p.value.patient != req_.patient || !Covers(p.value) || !NamesRecipient(p.value.to)) continue;
      const absl::Time both_from = std::max(lo, ConsentStart(p));
      const absl::Time both_until = std::min(hi, ConsentEnd(p));
      if (both_from < both_until && GrantedByParentDuring(p, both_from, both_until)) return true;
    }
    return false;
  }

  // parent_consent_at_16 continue: a parent with gezag granted it while the child was
  // under 16.
  bool ParentGrantedBefore16(const Stored<Consent>& c) const {
    absl::Time start = std::max(c.value.window.from, c.provenance.RecordedInstant());
    std::optional<AgeBand> then = BandAt(start);
    if (!then || (*then != AgeBand::kUnder12 && *then != AgeBand::k12To15)) return false;
    for (const std::string& g : c.value.granted_by) {
      if (HasParentAuthority(g, start)) return true;
    }
    return false;
  }

  bool Rely(const Stored<Consent>* a, const Stored<Consent>* b) {
    consent_ids_.clear();
    consent_ids_.push_back(a->value.id);
    CiteFact(*a, "consent");
    if (b != nullptr && b != a) {
      consent_ids_.push_back(b->value.id);
      CiteFact(*b, "consent");
    }
    return true;
  }

  // S2 (youth care): an effective consent to the actor granted by a parent with gezag
  // or a guardian, whatever the child's band.
  bool ParentalConsent() {
    parental_ids_.clear();
    for (const Stored<Consent>& c : rec_.consents) {
      if (c.value.patient != req_.patient || !Covers(c.value) || !NamesRecipient(c.value.to) ||
          !ConsentInForce(c, req_.at)) {
        continue;
      }
      for (const std::string& g : c.value.granted_by) {
        if (HasParentAuthority(g, req_.at)) {
          parental_ids_.assign({absl::string_view(c.value.id)});
          CiteFact(c, "consent");
          return true;
        }
      }
    }
    return false;
  }

  // --- objections and restrictions (D9, D15, D21-D23, D33) ---------------------------

  // D15: an objection for treatment also reaches emergency access to the same party.
  bool PurposeReached(PurposeSet purposes) const {
    if (purposes.Contains(req_.purpose)) return true;
    return req_.purpose == Purpose::kEmergency && purposes.Contains(Purpose::kTreatment);
  }

  bool ReachesParty(const std::optional<Party>& to) const {
    if (!to) return true;
    if (NamesActor(*to)) return true;
    return req_.action == Action::kDisclose && req_.recipient && NamesDisclosureRecipient(*to);
  }

  // D9: whether `by` may object for the patient at T (kWhoMayAct; when
  // the age is not known, whoever some band allows: an objection only protects).
  bool MayObject(absl::string_view by, absl::Time t) const {
    const uint8_t may = band_ ? WhoMayActFor(*band_).object : ObjectorsOfAnyBand();
    return (ActorKindsAt(rec_, by, t) & may) != 0;
  }

  bool AnyObjection(bool child_only) const {
    const absl::Time t = req_.at;
    for (const Stored<Objection>& o : rec_.objections) {
      const Objection& obj = o.value;
      if (obj.patient != req_.patient) continue;
      absl::Time start = ProtectiveStart(obj.window, o.provenance);
      if (!(start <= t && t < obj.window.until) || Withdrawn(obj.id, t, Ending::kGivesAccess)) continue;
      if (!PurposeReached(obj.purposes) || !obj.categories.Contains(req_.category) ||
          !obj.actions.Contains(req_.action) || !ReachesParty(obj.to)) {
        continue;
      }
      if (child_only ? obj.by == req_.patient : MayObject(obj.by, t)) {
        CiteFact(o, "objection");
        return true;
      }
    }
    return false;
  }

  // D33: a restriction recorded by a clinician treating the patient when it starts
  // applies to the parties it names (absent: everyone but its author).
  bool AnyRestriction() const {
    const absl::Time t = req_.at;
    for (const Stored<Restriction>& r : rec_.restrictions) {
      const Restriction& res = r.value;
      if (res.patient != req_.patient) continue;
      absl::Time start = ProtectiveStart(res.window, r.provenance);
      if (!(start <= t && t < res.window.until) || Withdrawn(res.id, t, Ending::kGivesAccess)) continue;
      if (!res.purposes.Contains(req_.purpose) || !res.categories.Contains(req_.category) ||
          !res.actions.Contains(req_.action)) {
        continue;
      }
      if (res.to ? !ReachesParty(res.to) : req_.actor.id == res.by) continue;
      if (!Treats(res.by, start == absl::InfinitePast() ? t : start)) continue;
      CiteFact(r, "restriction");
      return true;
    }
    return false;
  }

  const PolicyParams& params_;
  const AccessRequest& req_;
  const PatientRecord& rec_;
  ActorFactSource& actor_facts_;
  std::optional<AgeBand> band_;
  Reason band_error_ = Reason::kAgeUnknown;
  uint32_t known_ = 0;
  uint32_t value_ = 0;
  absl::InlinedVector<absl::string_view, 2> consent_ids_;
  absl::InlinedVector<absl::string_view, 1> parental_ids_;
  Explanation* trace_ = nullptr;  // explaining: where the predicates go
  size_t current_ = 0;            // the predicate being computed, in trace_
};

static_assert(policy_internal::kPredicateCount <= 32, "predicate memo is a 32-bit mask");

// Whether the request falls in the rule's target; explaining, the first dimension that
// does not.
bool TargetHolds(const CompiledRule& r, const AccessRequest& req, RuleTrace* rt = nullptr) {
  if (r.roles.Contains(req.actor.role) && r.purposes.Contains(req.purpose) && r.actions.Contains(req.action) &&
      r.categories.Contains(req.category)) {
    return true;
  }
  if (rt != nullptr) {
    rt->outcome = RuleTrace::Outcome::kNoMatch;
    rt->because = !r.roles.Contains(req.actor.role)     ? "role"
                  : !r.purposes.Contains(req.purpose)   ? "purpose"
                  : !r.actions.Contains(req.action)     ? "action"
                                                        : "category";
  }
  return false;
}

void Trace(RuleTrace* rt, RuleTrace::Outcome outcome, absl::string_view because) {
  if (rt == nullptr) return;
  rt->outcome = outcome;
  rt->because = because;
}

enum class PermitOutcome { kNotApplicable, kFailed, kPermits };

// A permit rule against the request: not applicable (target), failed (with the
// reason), or permits. Explaining, `rt` says which and why.
PermitOutcome TryPermit(const CompiledRule& r, const AccessRequest& req, DecisionContext& ctx, Reason* failure,
                        RuleTrace* rt = nullptr) {
  using O = RuleTrace::Outcome;
  if (!TargetHolds(r, req, rt)) return PermitOutcome::kNotApplicable;
  if (r.needs_band) {
    if (!ctx.band()) {
      *failure = ctx.band_error();
      Trace(rt, O::kFailed, Name(ctx.band_error()));
      return PermitOutcome::kFailed;
    }
    if (!r.bands.Contains(*ctx.band())) {
      Trace(rt, O::kNoMatch, "band");
      return PermitOutcome::kNotApplicable;
    }
  }
  for (Predicate p : r.unless) {
    if (ctx.Holds(p)) {
      Trace(rt, O::kNotApplicable, policy_internal::PredicateName(p));
      return PermitOutcome::kNotApplicable;
    }
  }
  for (Predicate p : r.require) {
    if (!ctx.Holds(p)) {
      *failure = ctx.FailureReason(p);
      Trace(rt, O::kFailed, policy_internal::PredicateName(p));
      return PermitOutcome::kFailed;
    }
  }
  Trace(rt, O::kPermitted, "");
  return PermitOutcome::kPermits;
}

// Whether a forbid rule fires; *reason is its reason (or the age error when the rule
// needs a band nobody can tell: on doubt, deny). Explaining, `rt` says why (not).
bool Fires(const Policy& policy, const CompiledRule& r, const AccessRequest& req, DecisionContext& ctx,
           Reason* reason, RuleTrace* rt = nullptr) {
  using O = RuleTrace::Outcome;
  if (!TargetHolds(r, req, rt)) return false;
  bool band_unknown = false;
  if (r.needs_band) {
    if (!ctx.band()) {
      band_unknown = true;
    } else if (!r.bands.Contains(*ctx.band())) {
      Trace(rt, O::kNoMatch, "band");
      return false;
    }
  }
  for (Predicate p : r.when) {
    if (!ctx.Holds(p)) {
      Trace(rt, O::kNotFired, policy_internal::PredicateName(p));
      return false;
    }
  }
  for (Predicate p : r.unless) {
    if (ctx.Holds(p)) {
      Trace(rt, O::kNotApplicable, policy_internal::PredicateName(p));
      return false;
    }
  }
  for (uint16_t i : r.unless_permitted_by) {
    Reason ignored;
    if (TryPermit(policy.rules()[i], req, ctx, &ignored) == PermitOutcome::kPermits) {
      if (rt != nullptr) {
        Trace(rt, O::kNotApplicable, "");
        rt->permitted_by = policy.rules()[i].id;
      }
      return false;
    }
  }
  *reason = band_unknown ? ctx.band_error() : r.reason;
  Trace(rt, O::kFired, band_unknown ? Name(ctx.band_error()) : "");
  return true;
}

void AddReason(Decision& d, Reason r) {
  if (std::find(d.reasons.begin(), d.reasons.end(), r) == d.reasons.end()) d.reasons.push_back(r);
}

// The decision (evaluator.h), and explaining (`trace` not null), how it was reached.
// Both meet the rules the (role, purpose) index gives, in the same order; explaining
// also lists those a parameter switched off. The decision is the same.
Decision Decide(const Policy& policy, const AccessRequest& request, const PatientRecord& record,
                ActorFactSource& actor_facts, Explanation* trace) {
  Decision d;
  d.policy = policy.id();
  d.effect = Effect::kDeny;
  if (record.patient != request.patient) {
    // The caller handed over another patient's facts: never decide on them.
    d.reasons.push_back(Reason::kPolicyError);
    d.error = "facts of another patient were supplied";
    return d;
  }
  if (record.MissesRemovedFacts()) {
    // Decided without facts retention removed, a permit could rest on a consent whose
    // withdrawal, or a relationship whose objection, is gone (DOMAIN D60, D61).
    d.reasons.push_back(Reason::kFactsRemovedByRetention);
    return d;
  }
  DecisionContext ctx(policy, request, record, actor_facts);
  d.age_band = ctx.band();
  const std::vector<CompiledRule>& rules = policy.rules();

  absl::Span<const uint16_t> candidates;
  std::vector<uint16_t> every;  // explaining: the candidates and the rules switched off
  if (trace == nullptr) {
    candidates = policy.Candidates(request.actor.role, request.purpose);
  } else {
    ctx.TraceInto(trace);
    for (int pass = 0; pass < 2; ++pass) {
      for (size_t k = 0; k < rules.size(); ++k) {
        const CompiledRule& r = rules[k];
        if (r.is_forbid() == (pass == 0) && r.roles.Contains(request.actor.role) &&
            r.purposes.Contains(request.purpose)) {
          every.push_back(static_cast<uint16_t>(k));
        }
      }
    }
    candidates = every;
    trace->rules.reserve(every.size());
  }
  bool decided = false;
  // The rule's trace, explaining: a new entry (null when not explaining, or when the rule
  // is off or the decision already made, which the entry then says).
  auto traced = [&](const CompiledRule& r) -> RuleTrace* {
    if (trace == nullptr) return nullptr;
    trace->rules.push_back(RuleTrace{r.id, r.effect, RuleTrace::Outcome::kNotReached, {}, {}});
    RuleTrace* rt = &trace->rules.back();
    if (!r.enabled) {
      rt->outcome = RuleTrace::Outcome::kOff;
      rt->because = r.disabled_because;
      return nullptr;
    }
    return decided ? nullptr : rt;
  };

  // 1. Prohibitions: any that fires denies (D1, D30-D33).
  size_t i = 0;
  for (; i < candidates.size() && rules[candidates[i]].is_forbid(); ++i) {
    const CompiledRule& r = rules[candidates[i]];
    RuleTrace* rt = traced(r);
    if (trace != nullptr && rt == nullptr) continue;
    Reason reason;
    if (Fires(policy, r, request, ctx, &reason, rt)) {
      d.reasons.push_back(reason);
      d.rule = r.id;
      if (trace == nullptr) return d;
      decided = true;
    }
  }

  // 2. The first permit rule that holds.
  for (; i < candidates.size(); ++i) {
    const CompiledRule& r = rules[candidates[i]];
    RuleTrace* rt = traced(r);
    if (trace != nullptr && rt == nullptr) continue;
    Reason failure = Reason::kNoApplicableRule;
    switch (TryPermit(r, request, ctx, &failure, rt)) {
      case PermitOutcome::kNotApplicable:
        break;
      case PermitOutcome::kFailed:
        AddReason(d, failure);
        break;
      case PermitOutcome::kPermits: {
        d.effect = Effect::kPermit;
        d.reasons.clear();
        d.reasons.push_back(r.reason);
        d.legal_basis = r.basis;
        d.obligations = r.obligations;
        bool uses_consent = std::find(r.require.begin(), r.require.end(), Predicate::kConsent) != r.require.end();
        ctx.AppendReliedOn(uses_consent, &d.consents);
        d.rule = r.id;
        if (trace == nullptr) return d;
        decided = true;
      }
    }
  }
  if (decided) return d;

  // 3. Nothing permits: deny (D1).
  if (d.reasons.empty()) d.reasons.push_back(Reason::kNoApplicableRule);
  return d;
}

}  // namespace

Decision Evaluate(const Policy& policy, const AccessRequest& request, const PatientRecord& record,
                  absl::Span<const Stored<Relationship>> substitutions,
                  absl::Span<const Stored<OrgCategory>> categories) {
  struct AtHand final : ActorFactSource {
    AtHand(absl::Span<const Stored<Relationship>> s, absl::Span<const Stored<OrgCategory>> c) : subs(s), all(c) {}
    absl::Span<const Stored<Relationship>> Substitutions() override { return subs; }
    absl::Span<const Stored<OrgCategory>> CategoriesOf(absl::string_view organization) override {
      // The categories of one organisation (in order); those of others are passed over.
      // Made only when asked: most decisions never ask, and pay nothing for it.
      if (by_org == nullptr) by_org = std::make_unique<std::map<std::string, std::vector<Stored<OrgCategory>>>>();
      auto [it, fresh] = by_org->try_emplace(std::string(organization));
      if (fresh) {
        for (const Stored<OrgCategory>& c : all) {
          if (c.value.organization == organization) it->second.push_back(c);
        }
      }
      return it->second;
    }
    absl::Span<const Stored<Relationship>> subs;
    absl::Span<const Stored<OrgCategory>> all;
    std::unique_ptr<std::map<std::string, std::vector<Stored<OrgCategory>>>> by_org;
  } at_hand(substitutions, categories);
  return Evaluate(policy, request, record, at_hand);
}

Decision Evaluate(const Policy& policy, const AccessRequest& request, const PatientRecord& record,
                  ActorFactSource& actor_facts) {
  return Decide(policy, request, record, actor_facts, nullptr);
}

Decision EvaluateExplained(const Policy& policy, const AccessRequest& request, const PatientRecord& record,
                           ActorFactSource& actor_facts, Explanation* out) {
  out->rules.clear();
  out->predicates.clear();
  return Decide(policy, request, record, actor_facts, out);
}

}  // namespace toegang
