// Copyright toegang authors.
#include "engine/fhir/consent_mapping.h"

#include <algorithm>
#include <optional>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "model/bsn.h"
#include "model/json.h"
#include "model/status_macros.h"

namespace toegang::fhir {
namespace {

// The code of the first coding in `system` (or `alias`), "" when there is none.
std::string CodeIn(const CodeableConcept& cc, absl::string_view system, absl::string_view alias = "") {
  for (const Coding& c : cc.coding) {
    if (c.system == system || (!alias.empty() && c.system == alias)) return c.code;
  }
  return "";
}

// The usable one of a Bundle entry's identifiers: in toegang's id system or one the
// import was told to read. A BSN is never one (no BSN is ever stored).
absl::StatusOr<Identifier> EntryIdentifier(const Reference& r, const MappingOptions& options) {
  bool bsn = false;
  for (const Identifier& ident : r.entry_identifiers) {
    if (ident.system == kToegangIdSystem || options.identifier_systems.count(ident.system)) return ident;
    bsn = bsn || IsBsnSystem(ident.system);
  }
  if (bsn) {
    return UnsupportedError(r.path + ".reference",
                            absl::StrCat("the ", r.type, " entry it names is identified by a BSN only; toegang never stores a "
                                         "BSN: give the entry an identifier of a system named with --identifier-system"));
  }
  return UnsupportedError(r.path + ".reference",
                          absl::StrCat("the ", r.type.empty() ? "entry" : r.type + " entry",
                                       " it names has no identifier of a system toegang was told to read (--identifier-system)"));
}

// A party a Reference names, as a toegang id. `what` says what the reference is for.
absl::StatusOr<std::string> ReferencedId(const Reference& r, const MappingOptions& options) {
  std::string id;
  if (!r.id.empty()) {
    id = r.id;
  } else if (!r.entry_url.empty()) {
    TOEGANG_ASSIGN_OR_RETURN(Identifier ident, EntryIdentifier(r, options));
    id = ident.value;
  } else {
    const Identifier& ident = *r.identifier;
    const bool toegang_own = ident.system == kToegangIdSystem;
    if (IsBsnSystem(ident.system)) {
      return UnsupportedError(r.path + ".identifier.system",
                              "is the BSN system; toegang never stores a BSN: refer to the resource by Type/id, or by an "
                              "identifier system given with --identifier-system");
    }
    if (!toegang_own && !options.identifier_systems.count(ident.system)) {
      return UnsupportedError(r.path + ".identifier.system",
                              "is not an identifier system toegang was told to read (--identifier-system)");
    }
    id = ident.value;
  }
  if (absl::Status s = CheckId(id, "id"); !s.ok()) {
    return FhirError(r.path, absl::StrCat("does not name a usable id: ", s.message()));
  }
  return id;
}

bool IsPersonType(absl::string_view type) {
  return type == "Patient" || type == "RelatedPerson" || type == "Practitioner" || type == "PractitionerRole";
}

// The grantors: each performer, a person (an organisation grants nothing for a patient).
absl::StatusOr<std::vector<std::string>> Grantors(const ConsentResource& c, const MappingOptions& options) {
  if (c.performers.empty()) {
    return UnsupportedError(c.path + ".performer", "is required: toegang records who gave the consent (DOMAIN D20)");
  }
  if (c.performers.size() > 2) {
    return UnsupportedError(c.path + ".performer[2]", "a consent has one grantor, or the child and a parent (D20)");
  }
  std::vector<std::string> out;
  for (const Reference& r : c.performers) {
    if (r.type == "Organization") {
      return UnsupportedError(r.path, "an organisation cannot consent for a patient: name the person who did");
    }
    if (!IsPersonType(r.type)) {
      return UnsupportedError(r.path, r.type.empty() ? "needs a type (Patient, RelatedPerson, Practitioner or PractitionerRole)"
                                                     : absl::StrCat("a ", r.type, " cannot give a consent"));
    }
    TOEGANG_ASSIGN_OR_RETURN(std::string id, ReferencedId(r, options));
    if (std::find(out.begin(), out.end(), id) != out.end()) {
      return FhirError(r.path, "names the same performer twice");
    }
    out.push_back(std::move(id));
  }
  return out;
}

// Who an objection or a withdrawal is by: the patient when among the performers (the
// patient's own word), else the first performer.
std::string ActingParty(const std::vector<std::string>& grantors, const std::string& patient) {
  for (const std::string& g : grantors) {
    if (g == patient) return g;
  }
  return grantors.front();
}

// What a provision actor is to the consent, by its role (v3 ParticipationType): a
// recipient (IRCP, PRCP), or in Mitz's shape the custodian that holds the data (CST).
enum class ActorRole { kRecipient, kCustodian };
absl::StatusOr<ActorRole> RoleOf(const ProvisionActor& a) {
  const std::string code = CodeIn(a.role, kParticipationTypeSystem);
  if (code == "IRCP" || code == "PRCP") return ActorRole::kRecipient;
  if (code == "CST") return ActorRole::kCustodian;
  if (code.empty()) {
    return UnsupportedError(a.path + ".role", absl::StrCat("needs a coding in ", kParticipationTypeSystem,
                                                           ": IRCP for the recipient (CST for the custodian of a Mitz consent)"));
  }
  return UnsupportedError(a.path + ".role", "is not an actor role toegang imports (IRCP or PRCP; CST in a Mitz consent)");
}

// One provision actor as a toegang party.
absl::StatusOr<Party> ActorParty(const ProvisionActor& a, const MappingOptions& options) {
  const Reference& r = a.reference;
  if (r.type == "CareTeam" || r.type == "Group" || r.type == "Device") {
    return UnsupportedError(r.path, absl::StrCat("a ", r.type, " is not a party toegang decides for: name each person or the organisation"));
  }
  Party p;
  if (r.type == "Organization") {
    p.kind = Party::Kind::kOrganization;
  } else if (IsPersonType(r.type)) {
    p.kind = Party::Kind::kActor;
  } else {
    return UnsupportedError(r.path, r.type.empty() ? "needs a type (Practitioner, PractitionerRole, RelatedPerson, Patient or Organization)"
                                                   : absl::StrCat("a ", r.type, " is not a party toegang decides for"));
  }
  TOEGANG_ASSIGN_OR_RETURN(p.id, ReferencedId(r, options));
  return p;
}

absl::StatusOr<ActionSet> Actions(const Provision& p, bool permit) {
  // FHIR: no action means every action. toegang's export and erase have no FHIR code, so a
  // permit reaches only what a code could name; a deny reaches everything.
  if (p.actions.empty()) {
    return permit ? ActionSet{Action::kRead, Action::kWrite, Action::kDisclose} : ActionSet::All();
  }
  ActionSet out;
  for (size_t i = 0; i < p.actions.size(); ++i) {
    const std::string code = CodeIn(p.actions[i], kConsentActionSystem);
    Action own;
    if (code.empty() && ParseName(CodeIn(p.actions[i], kToegangActionSystem), &own)) {
      out.Insert(own);  // what FHIR has no code for: export, erase
    } else if (code == "access" || code == "use") {
      out.Insert(Action::kRead);
    } else if (code == "disclose") {
      out.Insert(Action::kDisclose);
    } else if (code == "correct") {
      out.Insert(Action::kWrite);
    } else if (code == "collect") {
      return UnsupportedError(p.action_paths[i], "collect is not an access toegang decides (it decides reading, writing and disclosing)");
    } else if (code.empty()) {
      return UnsupportedError(p.action_paths[i], absl::StrCat("needs a coding in ", kConsentActionSystem));
    } else {
      return UnsupportedError(p.action_paths[i], "is not a consent action toegang knows (access, use, disclose, correct)");
    }
  }
  return out;
}

absl::StatusOr<PurposeSet> Purposes(const Provision& p) {
  if (p.purposes.empty()) return PurposeSet::All();
  PurposeSet out;
  for (size_t i = 0; i < p.purposes.size(); ++i) {
    const Coding& c = p.purposes[i];
    if (Purpose own; c.system == kToegangPurposeSystem) {
      // What v3 ActReason has no code for: referral, quality review, complaint.
      if (!ParseName(c.code, &own)) {
        return UnsupportedError(p.purpose_paths[i], "is not a purpose in toegang's vocabulary");
      }
      out.Insert(own);
      continue;
    }
    if (c.system != kActReasonSystem && c.system != kActReasonOid && c.system != kActReasonLegacy) {
      return UnsupportedError(p.purpose_paths[i], absl::StrCat("needs the system ", kActReasonSystem));
    }
    const auto known = std::find_if(std::begin(kPurposeCodes), std::end(kPurposeCodes),
                                    [&](const PurposeCode& k) { return c.code == k.v3; });
    if (known != std::end(kPurposeCodes)) {
      out.Insert(known->purpose);
    } else if (c.code == "HMARKT") {
      return UnsupportedError(p.purpose_paths[i], "marketing is never a purpose for health data (DOMAIN D32)");
    } else {
      return UnsupportedError(p.purpose_paths[i], "is not a purpose toegang knows (TREAT, ETREAT, HPAYMT, HRESCH, PATRQT, HLEGAL)");
    }
  }
  return out;
}

Window WindowOf(const std::optional<Period>& period) {
  Window w;
  if (period && period->start) w.from = period->start->start;
  // FHIR periods include their end; toegang's windows exclude it: the end of the unit
  // the end names ("2026-12-31" ends at 2027-01-01T00:00 Europe/Amsterdam).
  if (period && period->end) w.until = period->end->end;
  return w;
}

Window Intersect(const Window& a, const Window& b) {
  return Window{std::max(a.from, b.from), std::min(a.until, b.until)};
}

// What one provision reaches: whom, what, why, when.
struct Reach {
  std::vector<std::optional<Party>> parties;  // nullopt: everyone
  ActionSet actions;
  PurposeSet purposes;
  CategorySet categories = CategorySet::All();
  Window window;
};

// `custodians`: where a Mitz consent's custodians (CST) go; null when the Consent is not
// one, and a custodian is refused.
absl::StatusOr<Reach> ReachOf(const Provision& p, bool permit, const MappingOptions& options,
                              std::vector<const ProvisionActor*>* custodians = nullptr) {
  Reach r;
  for (const ProvisionActor& a : p.actors) {
    TOEGANG_ASSIGN_OR_RETURN(ActorRole role, RoleOf(a));
    if (role == ActorRole::kCustodian) {
      if (custodians == nullptr) {
        return UnsupportedError(a.path + ".role",
                                "CST names the custodian of the data, not a recipient: toegang imports it only in a Mitz "
                                "consent (with OTV-ProviderCategory)");
      }
      if (a.reference.type != "Organization") return UnsupportedError(a.reference.path, "a custodian is an Organization");
      custodians->push_back(&a);
      continue;
    }
    if (custodians != nullptr) {
      return UnsupportedError(a.path, "a Mitz consent names its recipients by provider category (OTV-ProviderCategory), not as actors");
    }
    TOEGANG_ASSIGN_OR_RETURN(Party party, ActorParty(a, options));
    r.parties.emplace_back(std::move(party));
  }
  if (p.recipient_role) {
    Role role;
    if (!ParseName(*p.recipient_role, &role)) {
      return UnsupportedError(p.recipient_role_path, "is not a role in toegang's vocabulary");
    }
    if (!p.actors.empty()) {
      return UnsupportedError(p.recipient_role_path, "a provision names its actors or a role, not both");
    }
    r.parties.emplace_back(Party{Party::Kind::kRole, "", role});
  }
  if (!p.categories.empty()) {
    r.categories = CategorySet();
    for (size_t i = 0; i < p.categories.size(); ++i) {
      Category c;
      if (!ParseName(p.categories[i], &c)) {
        return UnsupportedError(p.category_paths[i], "is not a category in toegang's vocabulary");
      }
      r.categories.Insert(c);
    }
  }
  TOEGANG_ASSIGN_OR_RETURN(r.actions, Actions(p, permit));
  TOEGANG_ASSIGN_OR_RETURN(r.purposes, Purposes(p));
  r.window = WindowOf(p.period);
  if (!p.narrowing.empty()) {
    if (permit) {
      return UnsupportedError(p.narrowing,
                              "covers less data than a toegang category: importing it would widen the permit to the whole category");
    }
    if (!options.widen_denies) {
      return UnsupportedError(p.narrowing,
                              "covers less data than a toegang category: import with --widen-denies to object to the whole category");
    }
  }
  return r;
}

// The id of the `n`th (1-based) of `count` facts under `base`.
std::string NumberedId(const std::string& base, size_t n, size_t count) {
  return count == 1 ? base : absl::StrCat(base, "a", n);
}

// The data categories a Consent names (Consent.category in kDataCategorySystem: Mitz's
// gegevenscategorie), each with the toegang categories the policy maps it to. A code
// the policy does not map is refused: filing it under a wider toegang category would
// widen what the patient allowed.
struct DataCategory {
  std::string code;
  CategorySet categories;
};
absl::StatusOr<std::vector<DataCategory>> DataCategoriesOf(const ConsentResource& c, const MappingOptions& options) {
  std::vector<DataCategory> out;
  for (size_t i = 0; i < c.category.size(); ++i) {
    for (size_t j = 0; j < c.category[i].coding.size(); ++j) {
      const Coding& coding = c.category[i].coding[j];
      if (coding.system != kDataCategorySystem) continue;
      const std::string path = absl::StrCat(c.path, ".category[", i, "].coding[", j, "].code");
      if (coding.code.empty()) return FhirError(path, "is required");
      auto known = std::find_if(options.data_categories.begin(), options.data_categories.end(),
                                [&](const auto& m) { return m.first == coding.code; });
      if (known == options.data_categories.end()) {
        const bool plain = IsFhirId(coding.code) && !ContainsBsn(coding.code);
        std::string shown = plain ? absl::StrCat("'", coding.code, "'") : "this code";
        return UnsupportedError(path, absl::StrCat("the policy maps no toegang category to data category ", shown,
                                                   " (data_category in the pack): importing it under a wider category "
                                                   "would widen what the patient allowed"));
      }
      if (std::none_of(out.begin(), out.end(), [&](const DataCategory& d) { return d.code == coding.code; })) {
        out.push_back({coding.code, known->second});
      }
    }
  }
  return out;
}

struct Prior {
  std::vector<std::string> versions;   // every version imported (may hold "")
  std::vector<std::string> live;       // ids of imported facts not withdrawn
};

Prior PriorOf(const std::string& id, absl::Span<const Fact> history) {
  Prior out;
  absl::flat_hash_set<std::string> withdrawn;
  for (const Fact& f : history) {
    if (const auto* w = std::get_if<Withdrawal>(&f.body)) withdrawn.insert(w->target);
  }
  for (const Fact& f : history) {
    if (!f.source || f.source->system != kFhirSourceSystem || f.source->id != id) continue;
    if (std::find(out.versions.begin(), out.versions.end(), f.source->version) == out.versions.end()) {
      out.versions.push_back(f.source->version);
    }
    if (IsWithdrawable(f.body) && !withdrawn.count(FactId(f.body))) out.live.push_back(FactId(f.body));
  }
  return out;
}

// When a consent was given: it never counts before (D19); a dateTime without a time of
// day says which day, not when on it, so it counts from the end of that day.
std::optional<absl::Time> GivenAt(const ConsentResource& c) {
  if (!c.date_time) return std::nullopt;
  return c.date_time->has_time ? c.date_time->start : c.date_time->end;
}

// The consent's evidence: the Consent it came from, what it was taken from, and `more`.
std::string EvidenceOf(const ConsentResource& c, absl::string_view more) {
  std::string evidence = absl::StrCat("FHIR Consent/", c.id, c.version.empty() ? "" : absl::StrCat(" version ", c.version));
  if (!more.empty()) absl::StrAppend(&evidence, "; ", more);
  if (!c.source_text.empty()) absl::StrAppend(&evidence, "; ", c.source_text);
  if (evidence.size() > kMaxTextBytes) {
    evidence.resize(kMaxTextBytes);
    while (!IsValidUtf8(evidence)) evidence.pop_back();  // not in the middle of a character
  }
  return RedactBsn(evidence);
}

// The facts an active Consent's provision stands for, under ids starting with `base`.
absl::StatusOr<std::vector<Fact>> MapActive(const ConsentResource& c, const MappingOptions& options,
                                            const std::vector<DataCategory>& data,
                                            const std::string& scope, const std::string& patient,
                                            const std::vector<std::string>& grantors, const std::string& acting,
                                            const std::string& base, const FactSource& source) {
  std::vector<Fact> out;
  if (!c.provision) return UnsupportedError(c.path + ".provision", "is required: an active Consent must say what it permits or denies");
  const Provision& root = *c.provision;
  if (root.type.empty()) return FhirError(root.path + ".type", "is required (permit or deny)");
  const bool permit = root.type == "permit";
  // Provider categories (OTV-ProviderCategory) are recipients; the custodian is not.
  std::vector<const ProvisionActor*> custodians;
  const bool by_category = !c.provider_categories.empty();
  TOEGANG_ASSIGN_OR_RETURN(Reach reach, ReachOf(root, permit, options, by_category ? &custodians : nullptr));
  if (by_category) {
    if (root.recipient_role) {
      return UnsupportedError(root.recipient_role_path, "a provision names provider categories or a role, not both");
    }
    for (const std::string& provider : c.provider_categories) {
      reach.parties.emplace_back(Party{Party::Kind::kOrganizationCategory, provider, Role::kPatient});
    }
  }
  // Data categories (Consent.category) narrow what the provision reaches.
  if (!data.empty()) {
    CategorySet named;
    for (const DataCategory& d : data) named = named.Union(d.categories);
    reach.categories = reach.categories.Intersect(named);
    if (reach.categories.empty()) {
      return UnsupportedError(root.category_paths.front(), "names no category its data categories (Consent.category) reach");
    }
  }
  if (scope == "research") {
    if (!root.purposes.empty() && reach.purposes.bits() != PurposeSet{Purpose::kResearch}.bits()) {
      return UnsupportedError(root.purpose_paths.front(), "a research consent covers research (HRESCH) only");
    }
    reach.purposes = PurposeSet{Purpose::kResearch};
  }
  if (permit && reach.parties.empty()) {
    return UnsupportedError(root.path + ".actor", "a permit must name whom it permits: toegang has no consent to everyone");
  }
  if (reach.parties.empty()) reach.parties.emplace_back(std::nullopt);

  const std::optional<absl::Time> recorded_at = GivenAt(c);
  const std::string evidence = EvidenceOf(c, "");

  auto add = [&](FactBody body) {
    Fact f{std::move(body), Provenance{}, source};
    f.provenance.recorded_at = recorded_at;
    out.push_back(std::move(f));
  };
  auto objection = [&](std::string id, const std::optional<Party>& to, const Reach& r) {
    Objection o;
    o.id = std::move(id);
    o.patient = patient;
    o.by = acting;
    o.to = to;
    o.purposes = r.purposes;
    o.actions = r.actions;
    o.categories = r.categories;
    o.window = r.window;
    add(std::move(o));
  };
  for (size_t i = 0; i < reach.parties.size(); ++i) {
    const std::string id = reach.parties.size() == 1 ? base : absl::StrCat(base, "#a", i + 1);
    if (permit) {
      Consent k;
      k.id = id;
      k.patient = patient;
      k.granted_by = grantors;
      k.to = *reach.parties[i];
      k.purposes = reach.purposes;
      k.categories = reach.categories;
      k.actions = reach.actions;
      k.window = reach.window;
      k.evidence = evidence;
      add(std::move(k));
    } else {
      objection(id, reach.parties[i], reach);
    }
  }
  for (size_t k = 0; k < root.nested.size(); ++k) {
    const Provision& n = root.nested[k];
    if (!permit) {
      return UnsupportedError(n.path, "a provision nested inside a deny is not supported (it would make an exception to an objection)");
    }
    if (n.type != "deny") {
      return UnsupportedError(n.path + ".type", "only a deny may be nested inside a permit (an exception to it)");
    }
    TOEGANG_ASSIGN_OR_RETURN(Reach inner, ReachOf(n, /*permit=*/false, options));
    // The exception reaches no further than the permit it is part of.
    if (n.actions.empty()) inner.actions = reach.actions;
    if (n.purposes.empty()) inner.purposes = reach.purposes;
    if (n.categories.empty()) inner.categories = reach.categories;
    inner.window = Intersect(inner.window, reach.window);
    if (inner.window.from >= inner.window.until) {
      return UnsupportedError(n.path + ".period", "lies outside the period of the permit it is an exception to");
    }
    if (inner.parties.empty()) inner.parties = reach.parties;
    const std::string nested_base = absl::StrCat(base, "#d", k + 1);
    for (size_t i = 0; i < inner.parties.size(); ++i) {
      objection(NumberedId(nested_base, i + 1, inner.parties.size()), inner.parties[i], inner);
    }
  }
  return out;
}


// --- Mitz ---------------------------------------------------------------------------

// What the history holds for a Mitz choice: the yes in force (the consent last imported
// for it and not withdrawn), and when its latest answer was given — a yes's recorded
// instant, a no's `at` (InfinitePast: none). An older answer arriving later changes
// nothing.
struct ChoiceState {
  const Fact* yes = nullptr;
  absl::Time latest = absl::InfinitePast();
};
ChoiceState StateOf(const std::string& choice, absl::Span<const Fact> history,
                    const absl::flat_hash_set<std::string>& withdrawn) {
  ChoiceState out;
  for (const Fact& f : history) {
    if (!f.source || f.source->choice != choice) continue;
    if (const auto* w = std::get_if<Withdrawal>(&f.body)) {
      out.latest = std::max(out.latest, w->at);
      continue;
    }
    out.latest = std::max(out.latest, f.provenance.RecordedInstant());
    if (std::holds_alternative<Consent>(f.body) && !withdrawn.count(FactId(f.body))) out.yes = &f;
  }
  return out;
}

bool SameConsent(const Consent& a, const Consent& b) {
  return a.to == b.to && a.granted_by == b.granted_by && a.purposes == b.purposes && a.categories == b.categories &&
         a.actions == b.actions && a.window.from == b.window.from && a.window.until == b.window.until;
}

// A custodian as evidence shows it: "custodian <system>|<value>" or "custodian Organization/<id>".
std::string CustodianText(const ProvisionActor& a) {
  const Reference& r = a.reference;
  if (!r.id.empty()) return absl::StrCat("custodian Organization/", r.id);
  if (r.identifier) return absl::StrCat("custodian ", r.identifier->system, "|", r.identifier->value);
  if (!r.entry_identifiers.empty()) {
    return absl::StrCat("custodian ", r.entry_identifiers.front().system, "|", r.entry_identifiers.front().value);
  }
  return "custodian not identified";
}

absl::StatusOr<ConsentPlan> PlanMitz(const ConsentResource& c, const MappingOptions& options,
                                     const std::vector<DataCategory>& data, ConsentPlan plan,
                                     const std::vector<std::string>& grantors, const std::string& acting,
                                     const std::string& base, absl::Span<const Fact> history) {
  const bool active = c.status == "active";
  if (!c.provision) return UnsupportedError(c.path + ".provision", "is required: a Mitz consent says what it is about");
  const Provision& root = *c.provision;
  if (active && root.type != "permit") {
    return UnsupportedError(root.path + ".type", "a Mitz choice is a yes (active, permit) or a no (inactive): "
                                                 "an active deny is neither");
  }
  if (!root.nested.empty()) return UnsupportedError(root.nested.front().path, "a Mitz consent has no nested provisions");
  if (root.recipient_role) {
    return UnsupportedError(root.recipient_role_path, "a Mitz consent names its recipients by provider category");
  }
  std::vector<const ProvisionActor*> custodians;
  TOEGANG_ASSIGN_OR_RETURN(Reach reach, ReachOf(root, /*permit=*/true, options, &custodians));
  // Mitz asks whether the data may be made available to the providers: they read it, the
  // custodian discloses it to them. Nobody else writes the custodian's record.
  if (root.actions.empty()) reach.actions = ActionSet{Action::kRead, Action::kDisclose};

  // When the patient made the choice: a yes counts from then (D19), a no ends the yes then.
  std::optional<absl::Time> made = GivenAt(c);
  if (!made) made = c.last_updated;
  if (!made) {
    return FhirError(c.path + ".dateTime", "is required: a Mitz choice counts from when the patient made it");
  }
  // A no ends the yes when the Consent became inactive (meta.lastUpdated, as toegang's
  // export writes it), else from the first instant its dateTime names.
  const absl::Time no_at = c.last_updated ? *c.last_updated : c.date_time ? c.date_time->start : *made;

  std::string more = absl::StrCat("Mitz ", active ? "yes" : "no");
  for (const ProvisionActor* a : custodians) absl::StrAppend(&more, "; ", CustodianText(*a));
  const std::string evidence = EvidenceOf(c, more);

  absl::flat_hash_set<std::string> withdrawn;
  for (const Fact& f : history) {
    if (const auto* w = std::get_if<Withdrawal>(&f.body)) withdrawn.insert(w->target);
  }
  const size_t count = data.size() * c.provider_categories.size();
  size_t n = 0;
  std::vector<std::string> notes;
  for (const DataCategory& d : data) {
    for (const std::string& provider : c.provider_categories) {
      ++n;
      const std::string choice = absl::StrCat(d.code, "/", provider);
      const FactSource source{kFhirSourceSystem, c.id, c.version, choice};
      const ChoiceState state = StateOf(choice, history, withdrawn);
      const Fact* yes = state.yes;
      if (state.latest > (active ? *made : no_at)) {
        notes.push_back(absl::StrCat(choice, ": older than the choice in force"));
        continue;
      }
      auto withdraw = [&](absl::Time at) {
        Fact f{Withdrawal{FactId(yes->body), acting, at}, Provenance{}, source};
        f.provenance.recorded_at = at;
        plan.facts.push_back(std::move(f));
      };
      if (!active) {
        if (yes == nullptr) {
          notes.push_back(absl::StrCat(choice, ": no yes in force (no answer is no already)"));
        } else {
          withdraw(no_at);
        }
        continue;
      }
      Consent k;
      k.id = count == 1 ? base : absl::StrCat(base, "#a", n);
      k.patient = plan.patient;
      k.granted_by = grantors;
      k.to = Party{Party::Kind::kOrganizationCategory, provider, Role::kPatient};
      k.purposes = reach.purposes;
      k.categories = root.categories.empty() ? d.categories : reach.categories.Intersect(d.categories);
      k.actions = reach.actions;
      k.window = reach.window;
      k.evidence = evidence;
      if (k.categories.empty()) {
        return UnsupportedError(root.category_paths.front(), "names no category its data category reaches");
      }
      if (yes != nullptr && SameConsent(std::get<Consent>(yes->body), k)) {
        notes.push_back(absl::StrCat(choice, ": the same yes is in force"));
        continue;
      }
      if (yes != nullptr) withdraw(*made);
      Fact f{std::move(k), Provenance{}, source};
      f.provenance.recorded_at = *made;
      plan.facts.push_back(std::move(f));
    }
  }
  plan.note = absl::StrJoin(notes, "; ");
  if (!plan.facts.empty()) {
    plan.outcome = ConsentOutcome::kStored;
  } else {
    plan.outcome = active ? ConsentOutcome::kUnchanged : ConsentOutcome::kSkipped;
  }
  return plan;
}

}  // namespace

bool IsBsnSystem(absl::string_view system) {
  return system == "http://fhir.nl/fhir/NamingSystem/bsn" || system == "urn:oid:2.16.840.1.113883.2.4.6.3";
}

absl::StatusOr<std::string> ConsentPatient(const ConsentResource& c, const MappingOptions& options) {
  if (!c.patient) return FhirError(c.path + ".patient", "is required: toegang keeps consents per patient");
  if (c.patient->type != "Patient" && !(c.patient->type.empty() && c.patient->identifier)) {
    return FhirError(c.patient->path, "must refer to a Patient");
  }
  return ReferencedId(*c.patient, options);
}

absl::StatusOr<ConsentPlan> PlanConsent(const ConsentResource& c, const MappingOptions& options,
                                        absl::Span<const Fact> history) {
  ConsentPlan plan;
  if (c.status == "draft" || c.status == "proposed" || c.status == "rejected") {
    plan.note = absl::StrCat("status ", c.status, ": not in force, nothing stored");
    return plan;
  }
  if (c.status == "entered-in-error") {
    return UnsupportedError(c.path + ".status",
                            "entered-in-error cannot be imported: toegang's history is append-only; send the Consent "
                            "as inactive to withdraw it from its lastUpdated on");
  }
  TOEGANG_ASSIGN_OR_RETURN(plan.patient, ConsentPatient(c, options));
  const std::string scope = CodeIn(c.scope, kConsentScopeSystem);
  if (scope == "adr" || scope == "treatment") {
    return UnsupportedError(c.path + ".scope", absl::StrCat(scope == "adr" ? "an advance directive" : "a treatment consent",
                                                            " is not a privacy consent: toegang does not import it"));
  }
  if (scope != "patient-privacy" && scope != "research") {
    return UnsupportedError(c.path + ".scope", absl::StrCat("needs a coding in ", kConsentScopeSystem, " (patient-privacy or research)"));
  }
  // A Mitz choice names the data category and the providers' categories: the pair is
  // what a later answer replaces. Without a data category, a Consent naming provider
  // categories (toegang's own export of such a consent) is versioned by id like any other.
  TOEGANG_ASSIGN_OR_RETURN(std::vector<DataCategory> data, DataCategoriesOf(c, options));
  const bool mitz = !c.provider_categories.empty() && !data.empty();
  std::vector<std::string> grantors;
  if (mitz && c.performers.empty()) {
    grantors = {plan.patient};  // Mitz records the patient's own choice; mitz_grantor says how it counts
  } else {
    TOEGANG_ASSIGN_OR_RETURN(grantors, Grantors(c, options));
  }
  const std::string acting = ActingParty(grantors, plan.patient);
  const FactSource source{kFhirSourceSystem, c.id, c.version, ""};
  const Prior prior = PriorOf(c.id, history);
  // A Consent toegang exported names the fact it came from (identifier urn:toegang:id);
  // a later version's facts go under `<id>@<versionId>`.
  const std::string& first = c.toegang_id.empty() ? c.id : c.toegang_id;
  const std::string base = prior.versions.empty() ? first : absl::StrCat(first, "@", c.version);
  if (mitz) {
    TOEGANG_ASSIGN_OR_RETURN(ConsentPlan mitz_plan, PlanMitz(c, options, data, plan, grantors, acting, base, history));
    if (std::find(prior.versions.begin(), prior.versions.end(), c.version) != prior.versions.end()) {
      plan.outcome = ConsentOutcome::kUnchanged;
      plan.note = c.version.empty() ? "already imported" : absl::StrCat("version ", c.version, " is already imported");
      return plan;
    }
    return mitz_plan;
  }
  // The whole Consent is checked before anything is decided about it: a version already
  // imported is still refused when toegang could not import it.
  std::vector<Fact> mapped;
  if (c.status == "active") {
    TOEGANG_ASSIGN_OR_RETURN(mapped, MapActive(c, options, data, scope, plan.patient, grantors, acting, base, source));
  }
  if (!prior.versions.empty()) {
    if (std::find(prior.versions.begin(), prior.versions.end(), c.version) != prior.versions.end()) {
      plan.outcome = ConsentOutcome::kUnchanged;
      plan.note = c.version.empty() ? "already imported (no meta.versionId: a Consent id without one is imported once)"
                                    : absl::StrCat("version ", c.version, " is already imported");
      return plan;
    }
    if (c.version.empty()) {
      return FhirError(c.path + ".meta.versionId", "is required: this Consent was imported before under another version");
    }
  }

  // What an earlier version still holds ends when this one was made.
  std::vector<Fact> withdrawals;
  if (!prior.live.empty()) {
    if (!c.last_updated) {
      return FhirError(c.path + ".meta.lastUpdated", "is required: it says when the earlier version stopped counting");
    }
    for (const std::string& target : prior.live) {
      Fact f{Withdrawal{target, acting, *c.last_updated}, Provenance{}, source};
      f.provenance.recorded_at = *c.last_updated;
      withdrawals.push_back(std::move(f));
    }
  }
  if (c.status == "inactive") {
    if (prior.versions.empty()) {
      plan.note = "status inactive and never imported: nothing to withdraw";
      return plan;
    }
    if (withdrawals.empty()) {
      plan.outcome = ConsentOutcome::kUnchanged;
      plan.note = "already withdrawn";
      return plan;
    }
    plan.outcome = ConsentOutcome::kStored;
    plan.facts = std::move(withdrawals);
    return plan;
  }
  plan.facts = std::move(mapped);
  for (Fact& w : withdrawals) plan.facts.push_back(std::move(w));
  plan.outcome = ConsentOutcome::kStored;
  return plan;
}

}  // namespace toegang::fhir
