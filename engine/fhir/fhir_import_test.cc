// Copyright toegang authors.
//
// FHIR Consent import: one golden file per row of docs/fhir.md's mapping table and per
// refusal (testdata/cases/NAME.json in, NAME.golden the facts stored or the error),
// then what only a sequence of imports shows: versions, idempotence, withdrawal, all
// or nothing, and the decisions the imported facts lead to.
//
// To rewrite the golden files after a deliberate change (then read the diff):
//   TOEGANG_UPDATE_GOLDEN=1 bazel run //engine/fhir:fhir_import_test
#include "engine/fhir/fhir_import.h"

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "engine/fhir/consent_resource.h"
#include "engine/toegang.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "model/json.h"
#include "model/time.h"

namespace toegang {
namespace {

using ::testing::HasSubstr;

const char kTestdata[] = "engine/fhir/testdata";
const char kPatientIdSystem[] = "https://praktijk.example/patient-id";

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::unique_ptr<Engine> NewEngine() {
  Options options;
  options.audit.reset();
  absl::StatusOr<std::unique_ptr<Engine>> engine = Engine::Open(std::move(options));
  EXPECT_TRUE(engine.ok()) << engine.status();
  absl::StatusOr<FactLines> base = ParseFactLines(Slurp(absl::StrCat(kTestdata, "/base.jsonl")));
  EXPECT_TRUE(base.ok()) << base.status();
  EXPECT_TRUE((*engine)->Record(base->facts).ok());
  return *std::move(engine);
}

FhirImportOptions OptionsFor(absl::string_view name) {
  FhirImportOptions o;
  o.identifier_systems = {kPatientIdSystem};
  o.widen_denies = absl::StartsWith(name, "widen_");
  return o;
}

// The facts stored after sequence `after`, a JSON line each with their source.
std::string StoredSince(Engine& engine, uint64_t after) {
  std::vector<Fact> all;
  for (const char* patient : {"pat-1", "kid-1"}) {
    absl::StatusOr<std::vector<Fact>> h = engine.History(patient);
    EXPECT_TRUE(h.ok()) << h.status();
    for (Fact& f : *h) {
      if (f.provenance.seq > after) all.push_back(std::move(f));
    }
  }
  std::sort(all.begin(), all.end(), [](const Fact& a, const Fact& b) { return a.provenance.seq < b.provenance.seq; });
  std::string out;
  for (const Fact& f : all) {
    nlohmann::json j = nlohmann::json::parse(FactToJson(f, /*with_provenance=*/false));
    if (f.source) {
      j["source"] = {{"system", f.source->system}, {"id", f.source->id}, {"version", f.source->version}};
      if (!f.source->choice.empty()) j["source"]["choice"] = f.source->choice;
    }
    absl::StrAppend(&out, j.dump(), "\n");
  }
  return out;
}

// What importing the case does: the report and the facts, or the error.
std::string Outcome(const std::string& name, const std::string& input) {
  std::unique_ptr<Engine> engine = NewEngine();
  const uint64_t before = engine->LastSequence();
  FhirImporter importer(*engine, OptionsFor(name));
  absl::StatusOr<FhirImportReport> report = importer.Import(input);
  if (!report.ok()) {
    EXPECT_EQ(engine->LastSequence(), before) << "a refused import stored something";
    return absl::StrCat("error ", FhirHttpStatus(report.status()), "\n", report.status().message(), "\n",
                        OperationOutcomeJson(report.status()), "\n");
  }
  std::string text = ImportReportText(*report);
  // The sequence numbers depend on base.jsonl only; keep them, they are stable.
  return absl::StrCat(text, StoredSince(*engine, before));
}

TEST(FhirImportGolden, EveryCase) {
  const std::string dir = absl::StrCat(kTestdata, "/cases");
  const char* workspace = std::getenv("BUILD_WORKSPACE_DIRECTORY");
  const bool update = std::getenv("TOEGANG_UPDATE_GOLDEN") != nullptr && workspace != nullptr;
  int cases = 0;
  std::vector<std::filesystem::path> inputs;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().extension() == ".json") inputs.push_back(entry.path());
  }
  std::sort(inputs.begin(), inputs.end());
  for (const std::filesystem::path& input : inputs) {
    const std::string name = input.stem().string();
    SCOPED_TRACE(name);
    const std::string got = Outcome(name, Slurp(input.string()));
    std::filesystem::path golden = input;
    golden.replace_extension(".golden");
    if (update) {
      std::ofstream(std::filesystem::path(workspace) / golden) << got;
    } else {
      ASSERT_TRUE(std::filesystem::exists(golden)) << golden << " is missing";
      EXPECT_EQ(got, Slurp(golden.string()));
    }
    // What the name promises, whatever the golden file says.
    if (absl::StartsWith(name, "refused_")) {
      EXPECT_TRUE(absl::StartsWith(got, "error 4")) << got;
    }
    if (absl::StartsWith(name, "skipped_")) {
      EXPECT_THAT(got, HasSubstr(": skipped: "));
    }
    ++cases;
  }
  EXPECT_GE(cases, 60);
}

// --- Sequences -----------------------------------------------------------------------

std::string Consent(absl::string_view status, absl::string_view version, absl::string_view last_updated,
                    absl::string_view performer = "Patient/pat-1") {
  return absl::StrCat(R"({"resourceType":"Consent","id":"con-7","meta":{"versionId":")", version,
                      R"(","lastUpdated":")", last_updated, R"("},"status":")", status,
                      R"(","scope":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/consentscope","code":"patient-privacy"}]},
      "patient":{"reference":"Patient/pat-1"},"performer":[{"reference":")",
                      performer, R"("}],"dateTime":"2026-03-01T09:30:00+01:00",
      "provision":{"type":"permit","actor":[{"role":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v3-ParticipationType","code":"IRCP"}]},"reference":{"reference":"Practitioner/clin-9"}}],
        "action":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/consentaction","code":"access"}]}],
        "purpose":[{"system":"http://terminology.hl7.org/CodeSystem/v3-ActReason","code":"TREAT"}]}})");
}

AccessRequest ReferralRead(absl::string_view at) {
  AccessRequest r;
  r.at = *ParseInstant(at);
  r.actor.id = "clin-9";
  r.actor.role = Role::kClinician;
  r.patient = "pat-1";
  r.action = Action::kRead;
  r.category = Category::kMedical;
  r.purpose = Purpose::kTreatment;
  return r;
}

TEST(FhirImport, TheSameVersionTwiceStoresNothingNew) {
  std::unique_ptr<Engine> engine = NewEngine();
  FhirImporter importer(*engine, {});
  const std::string c = Consent("active", "1", "2026-03-01T09:30:00+01:00");
  absl::StatusOr<FhirImportReport> first = importer.Import(c);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->stored, 1u);
  const uint64_t last = engine->LastSequence();
  absl::StatusOr<FhirImportReport> again = importer.Import(c);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->stored, 0u);
  EXPECT_EQ(again->entries[0].outcome, FhirImportEntry::Outcome::kUnchanged);
  EXPECT_EQ(engine->LastSequence(), last);
}

// A sender retrying while its first attempt is still in flight, from several threads:
// one import stores the Consent, every other finds it imported.
TEST(FhirImport, ConcurrentImportsOfOneVersionStoreItOnce) {
  std::unique_ptr<Engine> engine = NewEngine();
  FhirImporter importer(*engine, {});
  const uint64_t before = engine->LastSequence();
  const std::string c = Consent("active", "1", "2026-03-01T09:30:00+01:00");
  std::atomic<int> stored{0};
  std::atomic<int> unchanged{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&] {
      absl::StatusOr<FhirImportReport> r = importer.Import(c);
      ASSERT_TRUE(r.ok()) << r.status();
      (r->stored == 1 ? stored : unchanged).fetch_add(1);
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(stored.load(), 1);
  EXPECT_EQ(unchanged.load(), 7);
  EXPECT_EQ(engine->LastSequence(), before + 1);
}

TEST(FhirImport, AnImportedConsentPermitsAndItsInactiveVersionWithdrawsIt) {
  std::unique_ptr<Engine> engine = NewEngine();
  FhirImporter importer(*engine, {});
  ASSERT_TRUE(importer.Import(Consent("active", "1", "2026-03-01T09:30:00+01:00")).ok());
  // D19: not before the consent was given; D18: a clinician without a relationship reads
  // by consent.
  EXPECT_FALSE(engine->Decide(ReferralRead("2026-03-01T09:00:00+01:00")).decision.permitted());
  EngineDecision d = engine->Decide(ReferralRead("2026-04-01T10:00:00+02:00"));
  EXPECT_TRUE(d.decision.permitted());
  EXPECT_THAT(std::vector<std::string>(d.decision.consents.begin(), d.decision.consents.end()),
              ::testing::ElementsAre("con-7"));

  absl::StatusOr<FhirImportReport> withdrawn = importer.Import(Consent("inactive", "2", "2026-05-01T12:00:00+02:00"));
  ASSERT_TRUE(withdrawn.ok()) << withdrawn.status();
  ASSERT_EQ(withdrawn->entries[0].facts, std::vector<std::string>{"withdrawal of con-7"});
  EXPECT_TRUE(engine->Decide(ReferralRead("2026-04-30T10:00:00+02:00")).decision.permitted());  // D21: never back
  EXPECT_FALSE(engine->Decide(ReferralRead("2026-05-01T12:00:00+02:00")).decision.permitted());
  // The inactive version again: nothing more to withdraw.
  absl::StatusOr<FhirImportReport> again = importer.Import(Consent("inactive", "2", "2026-05-01T12:00:00+02:00"));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->stored, 0u);
  // history shows where each fact came from.
  absl::StatusOr<std::vector<Fact>> history = engine->History("pat-1");
  ASSERT_TRUE(history.ok());
  EXPECT_THAT(FactToJson(history->back(), /*with_provenance=*/true),
              HasSubstr(R"("source":{"id":"con-7","system":"fhir","version":"2"})"));
}

TEST(FhirImport, ANewActiveVersionReplacesTheEarlierOne) {
  std::unique_ptr<Engine> engine = NewEngine();
  FhirImporter importer(*engine, {});
  ASSERT_TRUE(importer.Import(Consent("active", "1", "2026-03-01T09:30:00+01:00")).ok());
  std::string v2 = Consent("active", "2", "2026-06-01T08:00:00+02:00");
  absl::StrReplaceAll({{R"("code":"access")", R"("code":"disclose")"}}, &v2);
  absl::StatusOr<FhirImportReport> r = importer.Import(v2);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->entries[0].facts, (std::vector<std::string>{"consent con-7@2", "withdrawal of con-7"}));
  EXPECT_TRUE(engine->Decide(ReferralRead("2026-05-31T10:00:00+02:00")).decision.permitted());
  // Version 2 permits disclosing only: reading by consent ended with version 1.
  EXPECT_FALSE(engine->Decide(ReferralRead("2026-06-02T10:00:00+02:00")).decision.permitted());
  // A version without versionId after a versioned one cannot be told apart: refused.
  std::string unversioned = Consent("active", "3", "2026-07-01T08:00:00+02:00");
  absl::StrReplaceAll({{R"("versionId":"3",)", ""}}, &unversioned);
  absl::StatusOr<FhirImportReport> refused = importer.Import(unversioned);
  EXPECT_EQ(FhirHttpStatus(refused.status()), 400);
  EXPECT_THAT(refused.status().message(), HasSubstr("Consent.meta.versionId"));
}

TEST(FhirImport, AWithdrawalTheRulesDoNotAllowNamesTheConsentAndStoresNothing) {
  std::unique_ptr<Engine> engine = NewEngine();
  FhirImporter importer(*engine, {});
  // A deny: the patient's objection.
  std::string deny = Consent("active", "1", "2026-03-01T09:30:00+01:00");
  absl::StrReplaceAll({{R"("type":"permit")", R"("type":"deny")"}}, &deny);
  absl::StatusOr<FhirImportReport> objected = importer.Import(deny);
  ASSERT_TRUE(objected.ok()) << objected.status();
  ASSERT_EQ(objected->entries[0].facts, std::vector<std::string>{"objection con-7"});
  const uint64_t last = engine->LastSequence();
  // A stranger's performer on the inactive version: D36 says who may withdraw an
  // objection (the patient, here).
  absl::StatusOr<FhirImportReport> r =
      importer.Import(Consent("inactive", "2", "2026-05-01T12:00:00+02:00", "RelatedPerson/someone-else"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(FhirHttpStatus(r.status()), 422) << r.status();
  EXPECT_THAT(r.status().message(), HasSubstr("Consent: "));
  EXPECT_EQ(engine->LastSequence(), last);
}

// --- Mitz -----------------------------------------------------------------------------

// A Mitz notification (Consent-Mitz-Notify) answering one choice: data category GGC002
// for providers of `provider`, a yes or a no, made at `made`, about `patient` (given by
// the practice's own number beside a BSN, as a transaction's Patient entry).
std::string MitzAnswer(absl::string_view id, bool yes, absl::string_view provider, absl::string_view made,
                       absl::string_view patient = "pat-1") {
  return absl::StrCat(R"({"resourceType":"Bundle","type":"transaction","entry":[
    {"fullUrl":"urn:uuid:)", id, R"(","resource":{"resourceType":"Consent","id":")", id, R"(",
      "meta":{"profile":["http://vzvz.nl/fhir/StructureDefinition/Consent-Mitz-Notify|3.8.0"]},
      "extension":[{"url":"http://fhir.nl/StructureDefinition/OTV-ProviderCategory","valueCodeableConcept":{"coding":[
        {"system":"http://fhir.nl/otv/CodeSystem/raadplegende-zorgaanbiedercategorie","code":")", provider, R"("}]}}],
      "status":")", yes ? "active" : "inactive", R"(",
      "scope":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/consentscope","code":"patient-privacy"}]},
      "category":[{"coding":[{"system":"http://fhir.nl/otv/CodeSystem/gegevenscategorie","code":"GGC002"}]}],
      "patient":{"reference":"urn:uuid:p"},"dateTime":")", made, R"(",
      "provision":{)", yes ? R"("type":"permit",)" : "", R"(
        "actor":[{"role":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v3-ParticipationType","code":"CST"}]},
                  "reference":{"reference":"urn:uuid:o"}}],
        "purpose":[{"system":"http://hl7.org/fhir/v3/ActReason","code":"TREAT"}]}}},
    {"fullUrl":"urn:uuid:p","resource":{"resourceType":"Patient","identifier":[
      {"system":"http://fhir.nl/fhir/NamingSystem/bsn","value":"900186021"},
      {"system":"https://praktijk.example/patient-id","value":")", patient, R"("}]}},
    {"fullUrl":"urn:uuid:o","resource":{"resourceType":"Organization","identifier":[
      {"system":"http://fhir.nl/fhir/NamingSystem/ura","value":"00000659"}]}}]})");
}

// A pharmacist of `organization` reads the patient's medical record for treatment.
AccessRequest PharmacistRead(absl::string_view at, absl::string_view organization = "apotheek-1",
                             absl::string_view patient = "pat-1") {
  AccessRequest r;
  r.at = *ParseInstant(at);
  r.actor = {"apotheker-1", Role::kClinician, std::string(organization)};
  r.patient = std::string(patient);
  r.action = Action::kRead;
  r.category = Category::kMedical;
  r.purpose = Purpose::kTreatment;
  return r;
}

std::unique_ptr<Engine> EngineWithPharmacies() {
  std::unique_ptr<Engine> engine = NewEngine();
  // apotheek-1 is a pharmacy (RPZAC005) from 2026 on; apotheek-2 was one until July.
  absl::StatusOr<FactLines> categories = ParseFactLines(
      R"({"type":"org_category","organization":"apotheek-1","category":"RPZAC005","from":"2026-01-01T00:00:00+01:00"}
{"type":"org_category","organization":"apotheek-2","category":"RPZAC005","until":"2026-07-01T00:00:00+02:00"}
{"type":"org_category","organization":"huisarts-1","category":"RPZAC001"})");
  EXPECT_TRUE(categories.ok()) << categories.status();
  EXPECT_TRUE(engine->Record(categories->facts).ok());
  return engine;
}

FhirImportOptions PracticeNumbers() {
  FhirImportOptions o;
  o.identifier_systems = {kPatientIdSystem};
  return o;
}

TEST(FhirImportMitz, AYesReachesTheProvidersOfTheCategoryWhileTheirCategoryHolds) {
  std::unique_ptr<Engine> engine = EngineWithPharmacies();
  FhirImporter importer(*engine, PracticeNumbers());
  absl::StatusOr<FhirImportReport> yes = importer.Import(MitzAnswer("m-1", true, "RPZAC005", "2026-03-01T10:00:00Z"));
  ASSERT_TRUE(yes.ok()) << yes.status();
  ASSERT_EQ(yes->entries[0].facts, std::vector<std::string>{"consent m-1"});

  EngineDecision d = engine->Decide(PharmacistRead("2026-04-01T10:00:00Z"));
  EXPECT_TRUE(d.decision.permitted()) << DecisionToJson(d.decision, "");
  EXPECT_THAT(std::vector<std::string>(d.decision.consents.begin(), d.decision.consents.end()),
              ::testing::ElementsAre("m-1"));
  // D19: not before the patient said yes.
  EXPECT_FALSE(engine->Decide(PharmacistRead("2026-03-01T09:59:59Z")).decision.permitted());
  // Another category, or a pharmacy no longer one, or no organisation: no.
  EXPECT_FALSE(engine->Decide(PharmacistRead("2026-04-01T10:00:00Z", "huisarts-1")).decision.permitted());
  EXPECT_TRUE(engine->Decide(PharmacistRead("2026-04-01T10:00:00Z", "apotheek-2")).decision.permitted());
  EXPECT_FALSE(engine->Decide(PharmacistRead("2026-08-01T10:00:00Z", "apotheek-2")).decision.permitted());
  EXPECT_FALSE(engine->Decide(PharmacistRead("2026-04-01T10:00:00Z", "")).decision.permitted());
  // Behandelgegevens maps to the clinical categories only (the pack's data_category).
  AccessRequest billing = PharmacistRead("2026-04-01T10:00:00Z");
  billing.category = Category::kFinancial;
  EXPECT_FALSE(engine->Decide(billing).decision.permitted());
  // The custodian discloses to a pharmacy: the recipient's category counts too.
  AccessRequest disclose = ReferralRead("2026-04-01T10:00:00Z");
  disclose.actor = {"clin-1", Role::kClinician, "praktijk-a"};
  disclose.action = Action::kDisclose;
  disclose.recipient = Party{Party::Kind::kOrganization, "apotheek-1", Role::kPatient};
  EXPECT_TRUE(engine->Decide(disclose).decision.permitted());
  disclose.recipient = Party{Party::Kind::kOrganization, "huisarts-1", Role::kPatient};
  EXPECT_FALSE(engine->Decide(disclose).decision.permitted());
}

TEST(FhirImportMitz, ANoEndsTheYesAndAnOlderAnswerChangesNothing) {
  std::unique_ptr<Engine> engine = EngineWithPharmacies();
  FhirImporter importer(*engine, PracticeNumbers());
  ASSERT_TRUE(importer.Import(MitzAnswer("m-1", true, "RPZAC005", "2026-03-01T10:00:00Z")).ok());
  // The same yes again, under another notification's id: nothing new.
  absl::StatusOr<FhirImportReport> same = importer.Import(MitzAnswer("m-2", true, "RPZAC005", "2026-03-05T10:00:00Z"));
  ASSERT_TRUE(same.ok()) << same.status();
  EXPECT_EQ(same->stored, 0u);
  EXPECT_EQ(same->entries[0].outcome, FhirImportEntry::Outcome::kUnchanged);

  absl::StatusOr<FhirImportReport> no = importer.Import(MitzAnswer("m-3", false, "RPZAC005", "2026-05-01T10:00:00Z"));
  ASSERT_TRUE(no.ok()) << no.status();
  ASSERT_EQ(no->entries[0].facts, std::vector<std::string>{"withdrawal of m-1"});
  EXPECT_TRUE(engine->Decide(PharmacistRead("2026-04-30T10:00:00Z")).decision.permitted());  // D21: never back
  EXPECT_FALSE(engine->Decide(PharmacistRead("2026-05-01T10:00:00Z")).decision.permitted());

  // A yes made before the no, arriving after it (a late notification): changes nothing.
  absl::StatusOr<FhirImportReport> late = importer.Import(MitzAnswer("m-4", true, "RPZAC005", "2026-04-15T10:00:00Z"));
  ASSERT_TRUE(late.ok()) << late.status();
  EXPECT_EQ(late->stored, 0u);
  EXPECT_THAT(late->entries[0].note, HasSubstr("older than the choice in force"));
  EXPECT_FALSE(engine->Decide(PharmacistRead("2026-06-01T10:00:00Z")).decision.permitted());
  // A no for a choice with no yes: nothing to store (no answer is no already).
  absl::StatusOr<FhirImportReport> other = importer.Import(MitzAnswer("m-5", false, "RPZAC001", "2026-05-02T10:00:00Z"));
  ASSERT_TRUE(other.ok());
  EXPECT_EQ(other->entries[0].outcome, FhirImportEntry::Outcome::kSkipped);

  // A newer yes counts again, from when it was made.
  ASSERT_TRUE(importer.Import(MitzAnswer("m-6", true, "RPZAC005", "2026-07-01T10:00:00Z")).ok());
  EXPECT_FALSE(engine->Decide(PharmacistRead("2026-06-30T10:00:00Z")).decision.permitted());
  EXPECT_TRUE(engine->Decide(PharmacistRead("2026-07-02T10:00:00Z")).decision.permitted());
  // Every fact names its choice in history.
  absl::StatusOr<std::vector<Fact>> history = engine->History("pat-1");
  ASSERT_TRUE(history.ok());
  EXPECT_THAT(FactToJson(history->back(), /*with_provenance=*/true), HasSubstr(R"("choice":"GGC002/RPZAC005")"));
}

TEST(FhirImportMitz, MitzGrantorSaysWhetherAChildsYesNeedsAParent) {
  std::unique_ptr<Engine> engine = EngineWithPharmacies();
  FhirImporter importer(*engine, PracticeNumbers());
  // kid-1 is 13: D20 wants the child and a parent with gezag.
  ASSERT_TRUE(importer.Import(MitzAnswer("m-k", true, "RPZAC005", "2026-03-01T10:00:00Z", "kid-1")).ok());
  const AccessRequest read = PharmacistRead("2026-04-01T10:00:00Z", "apotheek-1", "kid-1");
  EXPECT_FALSE(engine->Decide(read).decision.permitted()) << "satisfies_d20 is the default: fail closed";

  absl::StatusOr<std::shared_ptr<const Policy>> as_patient =
      CompilePolicy("policy mitz-as-patient\nversion 1\nextends wgbo-default\nparam mitz_grantor as_patient\n");
  ASSERT_TRUE(as_patient.ok()) << as_patient.status();
  engine->SetPolicy(*as_patient);
  EXPECT_TRUE(engine->Decide(read).decision.permitted());

  // Under satisfies_d20 a parent's consent to the pharmacy completes the child's yes (D38).
  engine->SetPolicy(*BuiltinPolicy("wgbo-default"));
  absl::StatusOr<FactLines> parent = ParseFactLines(
      R"({"type":"consent","id":"c-par","patient":"kid-1","granted_by":"par-1","to":{"organization":"apotheek-1"},"purposes":["treatment"],"categories":["medical"],"actions":["read"],"recorded_at":"2026-03-02T10:00:00Z"})");
  ASSERT_TRUE(parent.ok()) << parent.status();
  ASSERT_TRUE(engine->Record(parent->facts).ok());
  EngineDecision both = engine->Decide(read);
  EXPECT_TRUE(both.decision.permitted()) << DecisionToJson(both.decision, "");
  EXPECT_THAT(std::vector<std::string>(both.decision.consents.begin(), both.decision.consents.end()),
              ::testing::UnorderedElementsAre("m-k", "c-par"));
}

TEST(FhirImportMitz, AnUnmappedDataCategoryIsRefusedWhateverThePack) {
  std::unique_ptr<Engine> engine = EngineWithPharmacies();
  // A pack that maps medication data maps it as it says; the default pack refuses it.
  std::string medication = MitzAnswer("m-1", true, "RPZAC005", "2026-03-01T10:00:00Z");
  medication = absl::StrReplaceAll(medication, {{"GGC002", "GGC013"}});
  FhirImporter importer(*engine, PracticeNumbers());
  absl::StatusOr<FhirImportReport> refused = importer.Import(medication);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(FhirHttpStatus(refused.status()), 422);
  absl::StatusOr<std::shared_ptr<const Policy>> mapped =
      CompilePolicy("policy med\nversion 1\nextends wgbo-default\ndata_category GGC013 medical\n");
  ASSERT_TRUE(mapped.ok()) << mapped.status();
  engine->SetPolicy(*mapped);
  absl::StatusOr<FhirImportReport> stored = importer.Import(medication);
  ASSERT_TRUE(stored.ok()) << stored.status();
  absl::StatusOr<std::vector<Fact>> history = engine->History("pat-1");
  ASSERT_TRUE(history.ok());
  EXPECT_EQ(std::get<toegang::Consent>(history->back().body).categories, CategorySet{Category::kMedical});
}

TEST(FhirImport, MalformedInputIsA400NamingTheElement) {
  std::unique_ptr<Engine> engine = NewEngine();
  FhirImporter importer(*engine, {});
  for (const char* text : {"", "[]", "{", R"({"resourceType":"Consent"})", R"({"resourceType":7})",
                           R"({"resourceType":"Bundle","type":"transaction","entry":{}})"}) {
    SCOPED_TRACE(text);
    absl::StatusOr<FhirImportReport> r = importer.Import(text);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(FhirHttpStatus(r.status()), 400) << r.status();
    EXPECT_THAT(OperationOutcomeJson(r.status()), HasSubstr(R"("resourceType":"OperationOutcome")"));
  }
  EXPECT_EQ(engine->LastSequence(), 4u);
}

TEST(FhirImport, ABsnIdentifierSystemIsNeverAnIdSource) {
  std::unique_ptr<Engine> engine = NewEngine();
  FhirImportOptions o;
  o.identifier_systems = {"http://fhir.nl/fhir/NamingSystem/bsn"};
  FhirImporter importer(*engine, o);
  absl::StatusOr<FhirImportReport> r = importer.Import(Consent("active", "1", "2026-03-01T09:30:00+01:00"));
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("BSN"));
}

TEST(FhirDateTime, APeriodEndsAfterTheUnitItNames) {
  struct Case {
    const char* text;
    const char* start;
    const char* end;
  } cases[] = {
      {"2026", "2025-12-31T23:00:00Z", "2026-12-31T23:00:00Z"},
      {"2026-03", "2026-02-28T23:00:00Z", "2026-03-31T22:00:00Z"},  // into summer time
      {"2026-10-25", "2026-10-24T22:00:00Z", "2026-10-25T23:00:00Z"},  // a 25-hour day
      {"2026-03-01T10:00:00+01:00", "2026-03-01T09:00:00Z", "2026-03-01T09:00:01Z"},
      {"2026-03-01T10:00:00.25Z", "2026-03-01T10:00:00.25Z", "2026-03-01T10:00:00.26Z"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.text);
    absl::StatusOr<fhir::DateTime> t = fhir::ParseDateTime(c.text);
    ASSERT_TRUE(t.ok()) << t.status();
    EXPECT_EQ(FormatInstant(t->start), c.start);
    EXPECT_EQ(FormatInstant(t->end), c.end);
  }
  for (const char* bad : {"26", "2026-13", "2026-02-30", "2026-03-01T10:00", "2026-03-01T10:00:00", "1700", "2026-3-1"}) {
    EXPECT_FALSE(fhir::ParseDateTime(bad).ok()) << bad;
  }
}

}  // namespace
}  // namespace toegang
