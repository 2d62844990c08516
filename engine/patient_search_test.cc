// Copyright toegang authors.
//
// The patients an actor may open (Engine::Patients) agree with Decide by construction;
// these tests hold them to it: over every case of the corpus and a generated store,
// listed ⇔ permitted, at several instants; pages that stay on their pinned sequence
// while facts are recorded in between; a deadline that cuts pages short but never the
// list; and bad pages, sizes and cursors refused by name.
#include "engine/patient_search.h"

#include <filesystem>
#include <map>
#include <random>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "engine/toegang.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "model/json.h"
#include "model/time.h"
#include "tests/testing/case_corpus.h"

namespace toegang {
namespace {

using ::testing::HasSubstr;

std::unique_ptr<Engine> OpenEngine(std::shared_ptr<const Policy> policy, const std::string& db = "") {
  Options options;
  options.policy = std::move(policy);
  options.clock = NoArrivalClock;
  options.audit.reset();
  if (!db.empty()) {
    const char* tmp = std::getenv("TEST_TMPDIR");
    options.db_path = absl::StrCat(tmp != nullptr ? tmp : "/tmp", "/", db);
    std::filesystem::remove_all(options.db_path);
  }
  absl::StatusOr<std::unique_ptr<Engine>> engine = Engine::Open(std::move(options));
  EXPECT_TRUE(engine.ok()) << engine.status();
  return engine.ok() ? *std::move(engine) : nullptr;
}

// Every page of the listing, from the first; fails the test on an error.
struct Listing {
  std::vector<std::string> patients;
  std::map<std::string, std::string> rules;
  int pages = 0;
};
Listing ListAll(Engine& engine, const AccessRequest& request, size_t page_size,
                const std::function<void()>& between_pages = nullptr) {
  Listing out;
  PatientsQuery q{request, page_size, "", absl::Seconds(60)};
  uint64_t sequence = 0;
  for (;;) {
    absl::StatusOr<PatientPage> page = engine.Patients(q);
    EXPECT_TRUE(page.ok()) << page.status();
    if (!page.ok()) return out;
    if (out.pages == 0) sequence = page->sequence;
    EXPECT_EQ(page->sequence, sequence) << "a page left the listing's pinned sequence";
    EXPECT_LE(page->patients.size(), page_size);
    ++out.pages;
    for (const ListedPatient& p : page->patients) {
      EXPECT_TRUE(p.decision.permitted());
      out.patients.push_back(p.patient);
      out.rules[p.patient] = std::string(p.decision.rule);
    }
    if (page->complete) {
      EXPECT_TRUE(page->cursor.empty());
      return out;
    }
    EXPECT_FALSE(page->cursor.empty());
    q.cursor = page->cursor;
    if (between_pages) between_pages();
    if (out.pages > 100000) {
      ADD_FAILURE() << "the listing does not end";
      return out;
    }
  }
}

// The patients Decide permits `request` for, among `patients`, with their rules.
std::map<std::string, std::string> Permitted(Engine& engine, AccessRequest request,
                                             const std::set<std::string>& patients) {
  std::map<std::string, std::string> out;
  for (const std::string& p : patients) {
    request.patient = p;
    EngineDecision d = engine.Decide(request);
    if (d.decision.permitted()) out[p] = std::string(d.decision.rule);
  }
  return out;
}

std::map<std::string, std::string> AsMap(const Listing& l) {
  EXPECT_TRUE(std::is_sorted(l.patients.begin(), l.patients.end()));
  EXPECT_EQ(std::set<std::string>(l.patients.begin(), l.patients.end()).size(), l.patients.size()) << "listed twice";
  return l.rules;
}

// Every case, its actor and every actor its facts name in the same role, at the case's
// instant and later: listed exactly when Decide permits, by the same rule.
TEST(Patients, AgreeWithDecideOnEveryCase) {
  int cases = 0, listed = 0;
  for (const corpus::Case& c : corpus::LoadDomainCases()) {
    SCOPED_TRACE(c.name);
    std::shared_ptr<const Policy> policy = corpus::PolicyOf(c);
    absl::StatusOr<AccessRequest> req = ParseRequest(c.request);
    if (!policy || !req.ok() || !req->at_least.empty()) continue;
    std::unique_ptr<Engine> engine = OpenEngine(policy);
    ASSERT_NE(engine, nullptr);
    const std::vector<Fact> facts = corpus::FactsOf(c);
    if (!engine->Record(facts).ok()) continue;
    ++cases;
    std::set<std::string> patients, actors = {req->actor.id};
    for (const Fact& f : facts) {
      if (const std::string* p = FactPatient(f.body)) patients.insert(*p);
      if (const auto* r = std::get_if<Relationship>(&f.body)) actors.insert(r->subject);
      if (const auto* k = std::get_if<Consent>(&f.body); k != nullptr && k->to.kind == Party::Kind::kActor) {
        actors.insert(k->to.id);
      }
    }
    // Patients the store knows nothing of cannot be listed (there is no one to list).
    for (auto it = patients.begin(); it != patients.end();) {
      it = engine->History(*it)->empty() ? patients.erase(it) : std::next(it);
    }
    for (const std::string& actor : actors) {
      for (absl::Duration later : {absl::ZeroDuration(), absl::Hours(24 * 30), absl::Hours(24 * 400)}) {
        AccessRequest asked = *req;
        asked.actor.id = actor;
        asked.at = req->at + later;
        SCOPED_TRACE(absl::StrCat(actor, " at ", FormatInstant(asked.at)));
        const std::map<std::string, std::string> want = Permitted(*engine, asked, patients);
        const std::map<std::string, std::string> got = AsMap(ListAll(*engine, asked, 2));
        EXPECT_EQ(got, want);
        listed += static_cast<int>(got.size());
      }
    }
  }
  EXPECT_GT(cases, 150);
  EXPECT_GT(listed, 300);  // the property was tested on permits, not only on empty lists
}

// A store shaped like a GP platform's: patients registered with practices, treated by
// clinicians, children with parents, consents to practices, some objections.
struct Generated {
  std::vector<Fact> facts;
  std::set<std::string> patients;
};
Generated Generate(int patients, uint32_t seed) {
  std::mt19937 rng(seed);
  auto pick = [&](int n) { return static_cast<int>(rng() % static_cast<uint32_t>(n)); };
  const absl::Time recorded = absl::FromUnixSeconds(1748736000);  // 2025-06-01
  Generated g;
  auto add = [&](FactBody body) { g.facts.push_back(Fact{std::move(body), {}}); };
  for (int i = 0; i < patients; ++i) {
    const std::string p = absl::StrFormat("pat-%06d", i);
    g.patients.insert(p);
    const int year = 1940 + pick(85);
    add(Person{p, absl::CivilDay(year, 1 + pick(12), 1 + pick(28)), std::nullopt});
    add(Relationship{"", absl::StrCat("gp-", pick(3)), Relation::kRegisteredWith, p, {}});
    if (pick(10) < 7) {
      add(Relationship{"", absl::StrCat("clin-", pick(40)), Relation::kTreating, p,
                       {absl::FromUnixSeconds(1735689600),  // 2025-01-01
                        pick(5) == 0 ? absl::FromUnixSeconds(1772323200) : absl::InfiniteFuture()}});
    }
    if (year > 2008) {
      add(Relationship{"", absl::StrCat("par-", i), Relation::kParentWithAuthority, p, {}});
    }
    if (pick(20) == 0) {
      Objection o;
      o.id = absl::StrCat("obj-", i);
      o.patient = p;
      o.by = p;
      o.to = Party{Party::Kind::kActor, absl::StrCat("clin-", pick(40)), Role::kPatient};
      o.purposes = {Purpose::kTreatment};
      add(o);
      g.facts.back().provenance.recorded_at = recorded;
    }
    if (pick(25) == 0) {
      Consent c;
      c.id = absl::StrCat("con-", i);
      c.patient = p;
      c.granted_by = {p};
      c.to = Party{Party::Kind::kOrganization, absl::StrCat("zh-", pick(2)), Role::kPatient};
      c.purposes = {Purpose::kTreatment};
      c.categories = {Category::kMedical};
      c.actions = {Action::kRead};
      add(c);
      g.facts.back().provenance.recorded_at = recorded;
    }
  }
  return g;
}

struct StoreKind {
  const char* name;
  bool durable;
};

class PatientsOnStores : public ::testing::TestWithParam<StoreKind> {};

INSTANTIATE_TEST_SUITE_P(Stores, PatientsOnStores, ::testing::Values(StoreKind{"memory", false}, StoreKind{"rocksdb", true}),
                         [](const ::testing::TestParamInfo<StoreKind>& i) { return std::string(i.param.name); });

AccessRequest Asking(const std::string& actor, Role role, const std::string& org, Purpose purpose) {
  AccessRequest r;
  r.at = absl::FromUnixSeconds(1772355600);  // 2026-03-01T09:00:00Z
  r.actor = {actor, role, org};
  r.purpose = purpose;
  return r;
}

// 100,000 patients; pages of 1,000 (and of 37) with facts recorded between the pages,
// some of them about patients not yet reached: each listing is exactly what Decide
// permitted at its start — no patient twice, none left out, none from a later state.
TEST_P(PatientsOnStores, PagesStayOnTheirSequenceWhileFactsArrive) {
  const int n = GetParam().durable ? 30000 : 100000;
  Generated g = Generate(n, 7);
  std::unique_ptr<Engine> engine =
      OpenEngine(nullptr, GetParam().durable ? "pagination-store" : "");
  ASSERT_NE(engine, nullptr);
  for (size_t start = 0; start < g.facts.size(); start += 20000) {
    std::vector<Fact> batch(g.facts.begin() + start, g.facts.begin() + std::min(g.facts.size(), start + 20000));
    ASSERT_TRUE(engine->Record(std::move(batch)).ok());
  }
  int written = 0;
  auto write_between = [&] {
    // A new patient the clinician treats, sorting among those still to come; an
    // objection against the clinician by a patient still to come; a consent to zh-1.
    ++written;
    const std::string fresh = absl::StrFormat("pat-%06d-new", 500 * written % n);
    std::vector<Fact> facts;
    for (const std::string& json :
         {absl::StrFormat(R"({"type":"person","id":"%s","birth_date":"1970-01-01"})", fresh),
          absl::StrFormat(R"({"type":"relationship","subject":"clin-3","relation":"treating","object":"%s"})", fresh),
          absl::StrFormat(R"({"type":"relationship","subject":"clin-3","relation":"treating","object":"pat-%06d"})",
                          (997 * written) % n),
          absl::StrFormat(R"({"type":"objection","id":"obj-new-%d","patient":"pat-%06d","by":"pat-%06d","to":{"actor":"clin-3"},"purposes":["treatment"],"categories":["medical"],"actions":["read"]})",
                          written, (1009 * written + 7) % n, (1009 * written + 7) % n),
          absl::StrFormat(R"({"type":"consent","id":"con-new-%d","patient":"pat-%06d","granted_by":"pat-%06d","to":{"organization":"zh-1"},"purposes":["treatment"],"categories":["medical"],"actions":["read"]})",
                          written, (1013 * written) % n, (1013 * written) % n)}) {
      absl::StatusOr<Fact> f = ParseFactJson(json);
      ASSERT_TRUE(f.ok()) << f.status();
      facts.push_back(*std::move(f));
    }
    ASSERT_TRUE(engine->Record(std::move(facts)).ok());
  };
  struct Asked {
    AccessRequest request;
    size_t page_size;
  };
  const Asked asked[] = {
      {Asking("clin-3", Role::kClinician, "", Purpose::kTreatment), 37},          // indexed: a few thousand
      {Asking("clin-3", Role::kClinician, "gp-1", Purpose::kTreatment), 300},     // acting for a practice
      {Asking("doc-zh", Role::kClinician, "zh-1", Purpose::kTreatment), 50},      // consents to a hospital
      {Asking("res-1", Role::kResearcher, "", Purpose::kResearch), 1000},         // every patient
  };
  for (const Asked& a : asked) {
    SCOPED_TRACE(absl::StrCat(a.request.actor.id, " ", a.request.actor.organization, " ", Name(a.request.purpose)));
    std::set<std::string> known = g.patients;
    for (int i = 1; i <= written; ++i) known.insert(absl::StrFormat("pat-%06d-new", 500 * i % n));
    const std::map<std::string, std::string> want = Permitted(*engine, a.request, known);
    const Listing got = ListAll(*engine, a.request, a.page_size, write_between);
    EXPECT_EQ(AsMap(got), want);
    EXPECT_GT(want.size(), 100u);
    EXPECT_GE(got.pages, 2);
  }
  // A listing started now sees what was recorded meanwhile.
  const AccessRequest clin3 = Asking("clin-3", Role::kClinician, "", Purpose::kTreatment);
  std::set<std::string> known = g.patients;
  for (int i = 1; i <= written; ++i) known.insert(absl::StrFormat("pat-%06d-new", 500 * i % n));
  EXPECT_EQ(AsMap(ListAll(*engine, clin3, 1000)), Permitted(*engine, clin3, known));
}

// The generated store with what moves decisions at an instant: consents withdrawn on
// 2026-02-01, treating relationships ending 2026-03-01, children turning 12, 16 and 18.
// For actors of every kind the pack knows, at those edges and a microsecond before:
// listed exactly when Decide permits, by the same rule.
TEST(Patients, AgreeWithDecideOnAGeneratedStoreAtItsEdges) {
  Generated g = Generate(1500, 5);
  const absl::Time withdrawn = absl::FromUnixSeconds(1769904000);  // 2026-02-01T00:00:00Z
  std::vector<absl::Time> edges = {withdrawn, absl::FromUnixSeconds(1772323200)};  // 2026-03-01: treating ends
  std::vector<std::string> parents;
  for (size_t i = 0, n = g.facts.size(); i < n; ++i) {
    if (const auto* c = std::get_if<Consent>(&g.facts[i].body); c != nullptr && i % 3 == 0) {
      g.facts.push_back(Fact{Withdrawal{c->id, c->patient, withdrawn}, {}});
    }
    const auto* person = std::get_if<Person>(&g.facts[i].body);
    if (person == nullptr || !person->birth_date || person->birth_date->year() < 2008) continue;
    if (parents.size() < 8) parents.push_back("par-" + std::to_string(std::stoi(person->id.substr(4))));
    for (int age : {12, 16, 18}) {
      const absl::CivilDay birthday(person->birth_date->year() + age, person->birth_date->month(),
                                    person->birth_date->day());
      if (edges.size() < 10 && birthday.year() >= 2026 && birthday.year() <= 2027) {
        edges.push_back(absl::FromCivil(absl::CivilSecond(birthday), Amsterdam()));
      }
    }
  }
  std::unique_ptr<Engine> engine = OpenEngine(nullptr);
  ASSERT_TRUE(engine->Record(g.facts).ok());
  std::vector<AccessRequest> actors = {
      Asking("clin-1", Role::kClinician, "", Purpose::kTreatment),
      Asking("clin-2", Role::kClinician, "gp-0", Purpose::kTreatment),
      Asking("doc-zh", Role::kClinician, "zh-0", Purpose::kTreatment),
      Asking("ass-1", Role::kAssistant, "gp-2", Purpose::kTreatment),
      Asking("adm-1", Role::kAdministrator, "gp-1", Purpose::kBilling),
      Asking("res-1", Role::kResearcher, "", Purpose::kResearch),
      Asking("ins-1", Role::kInsurer, "zv-1", Purpose::kBilling),
      Asking("pat-000042", Role::kPatient, "", Purpose::kPatientRequest),
  };
  for (const std::string& parent : parents) actors.push_back(Asking(parent, Role::kParent, "", Purpose::kPatientRequest));
  AccessRequest emergency = Asking("clin-9", Role::kClinician, "", Purpose::kEmergency);
  emergency.emergency = true;
  emergency.emergency_justification = "unconscious at the front desk";
  actors.push_back(emergency);
  size_t listed = 0;
  for (const absl::Time edge : edges) {
    for (const absl::Time at : {edge - absl::Microseconds(1), edge}) {
      for (AccessRequest asked : actors) {
        asked.at = at;
        SCOPED_TRACE(absl::StrCat(asked.actor.id, " at ", FormatInstant(at)));
        const std::map<std::string, std::string> want = Permitted(*engine, asked, g.patients);
        EXPECT_EQ(AsMap(ListAll(*engine, asked, 500)), want);
        listed += want.size();
      }
    }
  }
  EXPECT_GT(edges.size(), 8u);
  EXPECT_GE(parents.size(), 5u);
  EXPECT_GT(listed, 20000u);
}

// A clock that moves a second each time it is read: every page meets its deadline.
absl::Time g_clock = absl::UnixEpoch();
absl::Time Jumping() { return g_clock += absl::Seconds(1); }

TEST(Patients, ADeadlineCutsAPageShortNeverTheList) {
  Generated g = Generate(2000, 11);
  std::unique_ptr<FactStore> store = NewMemoryFactStore(NoArrivalClock);
  ASSERT_TRUE(store->Append(g.facts).ok());
  std::shared_ptr<const Policy> policy = *BuiltinPolicy("wgbo-default");
  PatientsQuery q{Asking("res-1", Role::kResearcher, "", Purpose::kResearch), 1000, "", absl::Milliseconds(500)};
  std::set<std::string> listed;
  int pages = 0;
  for (;;) {
    absl::StatusOr<PatientPage> page = engine_internal::SearchPatients(*store, policy, q, Jumping);
    ASSERT_TRUE(page.ok()) << page.status();
    ++pages;
    EXPECT_GT(page->examined, 0u) << "a page must make progress";
    EXPECT_LT(page->examined, 100u) << "the deadline did not stop the page";
    for (const ListedPatient& p : page->patients) EXPECT_TRUE(listed.insert(p.patient).second);
    if (page->complete) break;
    q.cursor = page->cursor;
  }
  EXPECT_GT(pages, 20);
  std::set<std::string> want;
  for (PatientsQuery whole{q.request, 1000, "", absl::Hours(1)};;) {
    absl::StatusOr<PatientPage> page = engine_internal::SearchPatients(*store, policy, whole);
    ASSERT_TRUE(page.ok());
    for (const ListedPatient& p : page->patients) want.insert(p.patient);
    if (page->complete) break;
    whole.cursor = page->cursor;
  }
  EXPECT_EQ(listed, want);
  EXPECT_GT(listed.size(), 1000u);
}

TEST(Patients, BadPageSizesAndCursorsAreRefusedByName) {
  Generated g = Generate(300, 3);
  std::unique_ptr<Engine> engine = OpenEngine(nullptr);
  ASSERT_TRUE(engine->Record(g.facts).ok());
  const AccessRequest clin = Asking("clin-3", Role::kClinician, "gp-1", Purpose::kTreatment);
  auto refusal = [&](PatientsQuery q) {
    absl::StatusOr<PatientPage> page = engine->Patients(q);
    EXPECT_EQ(page.status().code(), absl::StatusCode::kInvalidArgument) << page.status();
    return std::string(page.status().message());
  };
  EXPECT_THAT(refusal({clin, 0, "", absl::Seconds(1)}), HasSubstr("page_size: must be from 1 to 1000, not 0"));
  EXPECT_THAT(refusal({clin, 1001, "", absl::Seconds(1)}), HasSubstr("page_size"));
  AccessRequest nobody = clin;
  nobody.actor.id = "";
  EXPECT_THAT(refusal({nobody, 10, "", absl::Seconds(1)}), HasSubstr("actor"));

  absl::StatusOr<PatientPage> first = engine->Patients({clin, 2, "", absl::Seconds(1)});
  ASSERT_TRUE(first.ok());
  ASSERT_FALSE(first->complete);
  const std::string cursor = first->cursor;
  EXPECT_TRUE(engine->Patients({clin, 2, cursor, absl::Seconds(1)}).ok());
  for (const std::string& bad : {std::string("not a cursor!"), std::string("AAAA"), cursor.substr(0, cursor.size() / 2),
                                 std::string(1, cursor[0] == 'A' ? 'B' : 'A') + cursor.substr(1),
                                 cursor.substr(0, 20) + (cursor[20] == 'A' ? "B" : "A") + cursor.substr(21)}) {
    EXPECT_THAT(refusal({clin, 2, bad, absl::Seconds(1)}), HasSubstr("cursor: not a cursor of this listing")) << bad;
  }
  // Another actor, instant, purpose or page's request: the listing would mix two.
  AccessRequest other = clin;
  other.actor.id = "clin-4";
  EXPECT_THAT(refusal({other, 2, cursor, absl::Seconds(1)}), HasSubstr("cursor: made for another request"));
  other = clin;
  other.at += absl::Seconds(1);
  EXPECT_THAT(refusal({other, 2, cursor, absl::Seconds(1)}), HasSubstr("cursor: made for another request"));
  // The page size may change from page to page.
  EXPECT_TRUE(engine->Patients({clin, 7, cursor, absl::Seconds(1)}).ok());
  // Another policy.
  engine->SetPolicy(*BuiltinPolicy("youth-care-opvoedrijk"));
  EXPECT_THAT(refusal({clin, 2, cursor, absl::Seconds(1)}), HasSubstr("another policy"));
  engine->SetPolicy(*BuiltinPolicy("wgbo-default"));
  // A cursor pinned past what this store holds was made on another one.
  std::unique_ptr<Engine> smaller = OpenEngine(nullptr);
  ASSERT_TRUE(smaller->Record({g.facts[0]}).ok());
  absl::StatusOr<PatientPage> foreign = smaller->Patients({clin, 2, cursor, absl::Seconds(1)});
  EXPECT_THAT(std::string(foreign.status().message()), HasSubstr("made on another store"));
  // Nothing the refusals touched changed the listing.
  absl::StatusOr<PatientPage> again = engine->Patients({clin, 2, cursor, absl::Seconds(1)});
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->sequence, first->sequence);
}

TEST(Patients, TheAnswerAsJson) {
  std::unique_ptr<Engine> engine = OpenEngine(nullptr);
  std::vector<Fact> facts;
  for (const char* json : {R"({"type":"person","id":"pat-1","birth_date":"1980-01-01"})",
                           R"({"type":"person","id":"pat-2","birth_date":"1980-01-01"})",
                           R"({"type":"relationship","subject":"clin-1","relation":"treating","object":"pat-1"})",
                           R"({"type":"relationship","subject":"clin-1","relation":"treating","object":"pat-2"})"}) {
    facts.push_back(*ParseFactJson(json));
  }
  ASSERT_TRUE(engine->Record(facts).ok());
  absl::StatusOr<PatientPage> page =
      engine->Patients({Asking("clin-1", Role::kClinician, "", Purpose::kTreatment), 1, "", absl::Seconds(1)});
  ASSERT_TRUE(page.ok());
  nlohmann::json j = nlohmann::json::parse(page->Json());
  EXPECT_EQ(j["actor"], nlohmann::json::parse(R"({"id":"clin-1","role":"clinician","organization":null})"));
  EXPECT_EQ(j["sequence"], 4);
  EXPECT_EQ(j["search"], "indexed");
  EXPECT_EQ(j["complete"], false);
  EXPECT_TRUE(j["cursor"].is_string());
  ASSERT_EQ(j["patients"].size(), 1u);
  EXPECT_EQ(j["patients"][0]["patient"], "pat-1");
  EXPECT_EQ(j["patients"][0]["rule"], "treating_clinician");
  EXPECT_EQ(j["patients"][0]["legal_basis"], "gdpr_9_2_h_health_care");
  page = engine->Patients({page->request, 1, j["cursor"].get<std::string>(), absl::Seconds(1)});
  ASSERT_TRUE(page.ok());
  j = nlohmann::json::parse(page->Json());
  EXPECT_EQ(j["patients"][0]["patient"], "pat-2");
  EXPECT_EQ(j["complete"], true);
  EXPECT_TRUE(j["cursor"].is_null());
}

}  // namespace
}  // namespace toegang
