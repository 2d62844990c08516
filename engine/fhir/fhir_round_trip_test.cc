// Copyright toegang authors.
//
// Export, then import: the same decisions. Generated stores of patients in every age
// band, parents with and without gezag, treating clinicians, and consents and
// objections of every shape toegang knows — recipients of each kind, any purposes,
// categories and actions, windows to the microsecond, recorded_at or none, some
// withdrawn — go out as FHIR (fhir_read.h) and come back in (fhir_import.h) beside the
// other facts; every request gets the same decision from both. The case corpus does the
// same through its fhir-round-trip door (tests/domain_cases_test).
#include <map>
#include <random>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "engine/fhir/consent_export.h"
#include "engine/fhir/fhir_import.h"
#include "engine/fhir/fhir_read.h"
#include "gtest/gtest.h"
#include "model/json.h"
#include "model/time.h"

namespace toegang {
namespace {

class Generator {
 public:
  explicit Generator(uint32_t seed) : rng_(seed) {}

  int Int(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng_); }
  bool Chance(double p) { return std::bernoulli_distribution(p)(rng_); }

  template <typename E>
  EnumSet<E> SomeOf(bool may_be_all) {
    if (may_be_all && Chance(0.3)) return EnumSet<E>::All();
    EnumSet<E> s;
    while (s.empty()) {
      for (int i = 0; i < EnumCount<E>(); ++i) {
        if (Chance(0.35)) s.Insert(static_cast<E>(i));
      }
    }
    return s;
  }

  // An instant in 2024..2028, to the microsecond.
  absl::Time Instant() {
    return absl::FromUnixMicros(int64_t{1704067200} * 1000000 +
                                std::uniform_int_distribution<int64_t>(0, int64_t{5} * 365 * 86400 * 1000000)(rng_));
  }

  Window SomeWindow() {
    Window w;
    if (Chance(0.6)) w.from = Instant();
    if (Chance(0.5)) {
      w.until = Instant();
      if (w.until <= w.from) w.until = w.from + absl::Hours(Int(1, 9000));
    }
    return w;
  }

  std::optional<absl::Time> Recorded() { return Chance(0.7) ? std::optional<absl::Time>(Instant()) : std::nullopt; }

 private:
  std::mt19937 rng_;
};

struct World {
  std::vector<Fact> facts;
  std::vector<AccessRequest> requests;
};

World Generate(uint32_t seed, int patients) {
  Generator g(seed);
  World w;
  auto add = [&](FactBody body, std::optional<absl::Time> recorded = std::nullopt) {
    Fact f(std::move(body));
    f.provenance.recorded_at = recorded;
    w.facts.push_back(std::move(f));
  };
  const Role recipient_roles[] = {Role::kResearcher, Role::kInsurer, Role::kParent, Role::kClinician, Role::kAssistant};
  // The care-provider categories of the organisations (Mitz): org-k is of category
  // RPZAC00k, some for a while only, and org-3 of RPZAC001 too.
  for (int k = 0; k < 4; ++k) {
    add(OrgCategory{"", absl::StrCat("org-", k), absl::StrCat("RPZAC00", k), k == 2 ? g.SomeWindow() : Window{}});
  }
  add(OrgCategory{"oc-3b", "org-3", "RPZAC001", Window{}});
  for (int p = 0; p < patients; ++p) {
    const std::string patient = absl::StrCat("pat-", p);
    const std::string parent = absl::StrCat("par-", p);
    const std::string clinician = absl::StrCat("clin-", p % 7);
    const bool adult = g.Chance(0.5);
    add(Person{patient, absl::CivilDay(adult ? g.Int(1950, 2000) : g.Int(2008, 2020), g.Int(1, 12), g.Int(1, 28)),
               std::nullopt});
    add(Relationship{absl::StrCat("rel-p-", p), parent,
                     g.Chance(0.8) ? Relation::kParentWithAuthority : Relation::kParentWithoutAuthority, patient, {}});
    add(Relationship{absl::StrCat("rel-t-", p), clinician, Relation::kTreating, patient, g.SomeWindow()});
    const int consents = g.Int(0, 4);
    for (int k = 0; k < consents; ++k) {
      Consent c;
      // Ids a FHIR id cannot hold travel as identifiers.
      c.id = g.Chance(0.3) ? absl::StrCat("con #", p, "/", k) : absl::StrCat("con-", p, "-", k);
      c.patient = patient;
      const int who = adult ? 0 : g.Int(0, 2);
      c.granted_by = who == 0 ? std::vector<std::string>{patient}
                     : who == 1 ? std::vector<std::string>{parent}
                                : std::vector<std::string>{patient, parent};
      const int to = g.Int(0, 4);
      if (to == 0) c.to = Party{Party::Kind::kOrganization, absl::StrCat("org-", g.Int(0, 3)), Role::kPatient};
      else if (to == 4) c.to = Party{Party::Kind::kOrganizationCategory, absl::StrCat("RPZAC00", g.Int(0, 3)), Role::kPatient};
      else if (to == 1) c.to = Party{Party::Kind::kRole, "", recipient_roles[g.Int(0, 4)]};
      else c.to = Party{Party::Kind::kActor, g.Chance(0.3) ? parent : absl::StrCat("clin-", g.Int(0, 9)), Role::kPatient};
      c.purposes = g.SomeOf<Purpose>(true);
      c.categories = g.SomeOf<Category>(true);
      c.actions = g.SomeOf<Action>(false);
      c.window = g.SomeWindow();
      c.evidence = g.Chance(0.5) ? "formulier" : "";
      const std::string id = c.id;
      const std::vector<std::string> by = c.granted_by;
      add(std::move(c), g.Recorded());
      if (g.Chance(0.3)) add(Withdrawal{id, by.front(), g.Instant()}, g.Recorded());
    }
    // A yes imported from Mitz: its source names the choice, which the export writes as
    // the data category and the import files it under again. One per choice: a later
    // answer for the same choice replaces the earlier.
    if (g.Chance(0.5)) {
      Consent c;
      c.id = absl::StrCat("mitz-", p);
      c.patient = patient;
      c.granted_by = adult ? std::vector<std::string>{patient} : std::vector<std::string>{patient, parent};
      const std::string provider = absl::StrCat("RPZAC00", g.Int(0, 3));
      c.to = Party{Party::Kind::kOrganizationCategory, provider, Role::kPatient};
      c.purposes = g.SomeOf<Purpose>(true);
      c.categories = g.SomeOf<Category>(true).Intersect(ClinicalCategories());  // GGC002's, in wgbo-default
      if (c.categories.empty()) c.categories = CategorySet{Category::kMedical};
      c.actions = g.SomeOf<Action>(false);
      c.window = g.SomeWindow();
      const absl::Time given = g.Instant();
      Fact f(std::move(c), Provenance{}, FactSource{"fhir", absl::StrCat("m-", p), "", absl::StrCat("GGC002/", provider)});
      f.provenance.recorded_at = given;
      w.facts.push_back(std::move(f));
      // A no comes after the yes it ends (an older one is not imported).
      if (g.Chance(0.3)) add(Withdrawal{absl::StrCat("mitz-", p), patient, given + absl::Hours(g.Int(1, 9000))}, g.Recorded());
    }
    const int objections = g.Int(0, 2);
    for (int k = 0; k < objections; ++k) {
      Objection o;
      o.id = absl::StrCat("obj-", p, "-", k);
      o.patient = patient;
      o.by = patient;
      if (g.Chance(0.7)) {
        o.to = g.Chance(0.5) ? Party{Party::Kind::kActor, clinician, Role::kPatient}
                             : Party{Party::Kind::kRole, "", recipient_roles[g.Int(0, 4)]};
      }
      o.purposes = g.SomeOf<Purpose>(true);
      o.categories = g.SomeOf<Category>(true);
      o.actions = g.SomeOf<Action>(true);
      o.window = g.SomeWindow();
      add(std::move(o), g.Recorded());
      if (g.Chance(0.3)) add(Withdrawal{absl::StrCat("obj-", p, "-", k), patient, g.Instant()}, g.Recorded());
    }
    // Half the requests are aimed at what one of the patient's consents names, so that
    // the consents decide; the rest at anything.
    std::vector<const Fact*> held;
    for (const Fact& f : w.facts) {
      if (const auto* c = std::get_if<Consent>(&f.body); c != nullptr && c->patient == patient) held.push_back(&f);
    }
    for (int r = 0; r < 12; ++r) {
      AccessRequest q;
      q.at = g.Instant();
      q.patient = patient;
      q.action = static_cast<Action>(g.Int(0, EnumCount<Action>() - 1));
      q.category = static_cast<Category>(g.Int(0, EnumCount<Category>() - 1));
      q.purpose = static_cast<Purpose>(g.Int(0, EnumCount<Purpose>() - 1));
      const int who = g.Int(0, 4);
      if (!held.empty() && g.Chance(0.5)) {
        const Fact& fact = *held[g.Int(0, static_cast<int>(held.size()) - 1)];
        const Consent& c = std::get<Consent>(fact.body);
        // From the consent's sets, preferring what a consent rule of the pack permits
        // (consent_to_recipient, research_with_consent).
        auto pick = [&](auto set, auto preferred, auto* out) {
          using E = std::remove_pointer_t<decltype(out)>;
          if (!set.Intersect(preferred).empty()) set = set.Intersect(preferred);
          std::vector<E> in;
          for (int i = 0; i < EnumCount<E>(); ++i) {
            if (set.Contains(static_cast<E>(i))) in.push_back(static_cast<E>(i));
          }
          *out = in[g.Int(0, static_cast<int>(in.size()) - 1)];
        };
        const bool research = c.to.kind == Party::Kind::kRole && c.to.role == Role::kResearcher;
        pick(c.actions, ActionSet{Action::kRead, Action::kDisclose, Action::kExport}, &q.action);
        pick(c.categories, CategorySet::All(), &q.category);
        pick(c.purposes,
             research ? PurposeSet{Purpose::kResearch}
                      : PurposeSet{Purpose::kReferral, Purpose::kTreatment, Purpose::kPatientRequest},
             &q.purpose);
        // Within the window, once recorded (D19).
        const absl::Time start = std::max(c.window.from, fact.provenance.recorded_at.value_or(absl::InfinitePast()));
        if (start != absl::InfinitePast() && c.window.until != absl::InfiniteFuture()) {
          q.at = start + (c.window.until - start) / 2;
        } else if (start != absl::InfinitePast()) {
          q.at = start + absl::Hours(g.Int(1, 2000));
        } else if (c.window.until != absl::InfiniteFuture()) {
          q.at = c.window.until - absl::Hours(g.Int(1, 2000));
        }
        switch (c.to.kind) {
          case Party::Kind::kActor:
            q.actor = {c.to.id, c.to.id == parent ? Role::kParent : Role::kClinician, ""};
            break;
          case Party::Kind::kOrganization:
            q.actor = {"someone-0", Role::kClinician, c.to.id};
            break;
          case Party::Kind::kRole:
            q.actor = {"someone-1", c.to.role, "org-0"};
            break;
          case Party::Kind::kOrganizationCategory:
            q.actor = {"someone-2", Role::kClinician, absl::StrCat("org-", c.to.id.back() - '0')};
            break;
        }
      } else if (who == 0) {
        q.actor = {absl::StrCat("clin-", g.Int(0, 9)), Role::kClinician, absl::StrCat("org-", g.Int(0, 3))};
      } else if (who == 1) {
        q.actor = {parent, Role::kParent, ""};
      } else if (who == 2) {
        q.actor = {patient, Role::kPatient, ""};
      } else {
        const Role role = recipient_roles[g.Int(0, 4)];
        q.actor = {absl::StrCat("someone-", g.Int(0, 3)), role, absl::StrCat("org-", g.Int(0, 3))};
      }
      w.requests.push_back(q);
    }
  }
  return w;
}

std::unique_ptr<Engine> NewEngine() {
  Options options;
  options.clock = NoArrivalClock;
  options.audit.reset();
  absl::StatusOr<std::unique_ptr<Engine>> engine = Engine::Open(std::move(options));
  EXPECT_TRUE(engine.ok()) << engine.status();
  return *std::move(engine);
}

std::string Shown(const Decision& d) {
  nlohmann::json j = DecisionToJsonValue(d, "");
  return j.dump();
}

TEST(FhirRoundTrip, GeneratedStoresDecideAlikeAfterExportAndImport) {
  int by_consent = 0;
  int by_mitz = 0;  // permits relying on a yes imported from Mitz
  int compared = 0;
  for (uint32_t seed : {1u, 2u, 3u}) {
    SCOPED_TRACE(absl::StrCat("seed ", seed));
    World world = Generate(seed, 60);
    std::unique_ptr<Engine> original = NewEngine();
    absl::StatusOr<uint64_t> recorded = original->Record(world.facts);
    ASSERT_TRUE(recorded.ok()) << recorded.status();
    // What FHIR does not carry goes over as it is: the persons and relationships, and
    // the organisations' categories.
    std::map<std::string, std::vector<Fact>> rest;
    std::vector<Fact> categories;
    for (const Fact& f : world.facts) {
      if (std::holds_alternative<Person>(f.body) || std::holds_alternative<Relationship>(f.body)) {
        rest[*FactPatient(f.body)].push_back(f);
      } else if (std::holds_alternative<OrgCategory>(f.body)) {
        categories.push_back(f);
      }
    }
    FhirConsentReader reader(*original);
    for (size_t i = 0; i < world.requests.size(); ++i) {
      const AccessRequest& q = world.requests[i];
      // A fresh copy per request: the second export is for the request's instant.
      std::unique_ptr<Engine> copy = NewEngine();
      ASSERT_TRUE(copy->Record(rest[q.patient]).ok());
      ASSERT_TRUE(copy->Record(categories).ok());
      FhirImporter importer(*copy, {});
      for (absl::Time at : {absl::InfinitePast(), q.at}) {
        absl::StatusOr<std::string> bundle = reader.Export(q.patient, at, absl::InfiniteFuture());
        ASSERT_TRUE(bundle.ok()) << bundle.status();
        absl::StatusOr<FhirImportReport> imported = importer.Import(*bundle);
        ASSERT_TRUE(imported.ok()) << imported.status() << "\n" << *bundle;
      }
      const Decision want = original->Decide(q).decision;
      const Decision got = copy->Decide(q).decision;
      EXPECT_EQ(Shown(got), Shown(want)) << "request " << JsonText(RequestToJsonValue(q));
      by_consent += want.permitted() && !want.consents.empty();
      for (absl::string_view id : want.consents) by_mitz += want.permitted() && absl::StartsWith(id, "mitz-");
      ++compared;
      if (HasFailure()) return;
    }
  }
  // The generator must reach consents, not only the rules without them.
  EXPECT_GT(by_consent, compared / 20) << by_consent << " permits by consent of " << compared;
  EXPECT_GT(by_mitz, 10) << by_mitz << " permits by a Mitz yes of " << compared;
}

TEST(FhirIds, EveryToegangIdHasAResourceIdThatLeadsBack) {
  struct Case {
    const char* id;
    const char* fhir;
  } cases[] = {
      {"con-1", "con-1"},
      {"con.1", "con.1"},
      {"con-1#a1", "x.con-1.23a1"},
      {"con-1@2", "x.con-1.402"},
      {"x.looks-escaped", "x.x.2Elooks-escaped"},
      {"met spatie", "x.met.20spatie"},
      {"dossier/7", "x.dossier.2F7"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.id);
    EXPECT_EQ(fhir::FhirIdOf(c.id), std::optional<std::string>(c.fhir));
    EXPECT_EQ(fhir::ToegangIdOf(c.fhir), std::optional<std::string>(c.id));
  }
  EXPECT_EQ(fhir::FhirIdOf(std::string(60, '#')), std::nullopt);  // searchable, not readable
  for (const char* bad : {"x.", "x.2", "x..2", "x.zz", "x.2e", "x.abc.4", "x.con-1", "x.41", "", "a b"}) {
    EXPECT_EQ(fhir::ToegangIdOf(bad), std::nullopt) << bad;
  }
}

}  // namespace
}  // namespace toegang
