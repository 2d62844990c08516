// Copyright toegang authors.
//
// The durable store through the CLI, as an operator uses it: load (atomic per file,
// errors name the line), history --as-of, decide --db and --as-of (replay), and a store
// held by another process.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "engine/testing/crash_harness.h"
#include "tests/testing/e2e.h"

namespace toegang {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;

using e2e::Runfile;
using e2e::Shell;
using e2e::Tmp;
using e2e::Write;

// Runs the binary with `args`, `input` on stdin; stdout and stderr together.
Shell Toegang(const std::string& args, const std::string& input = "") {
  return e2e::Sh(Runfile("toegang") + " " + args + " < " + Write("stdin", input) + " 2>&1");
}

const char kFacts[] =
    R"({"type":"person","id":"pat-7","birth_date":"2009-01-10"})" "\n"
    R"({"type":"relationship","id":"rel-7","subject":"par-7","relation":"parent_with_authority","object":"pat-7"})" "\n"
    "\n"
    R"({"type":"consent","id":"con-7","patient":"pat-7","granted_by":"pat-7","to":{"actor":"par-7"},"purposes":["patient_request"],"categories":["medical"],"actions":["read"],"from":"2026-01-01T00:00:00+01:00","recorded_at":"2026-01-01T00:00:00+01:00"})" "\n";

std::string Request(const std::string& at) {
  return R"({"at":")" + at + R"(","actor":{"id":"par-7","role":"parent"},"patient":"pat-7","action":"read","category":"medical","purpose":"patient_request"})" "\n";
}

TEST(CliStore, LoadHistoryDecideAndReplay) {
  std::string db = Tmp("db_replay");
  std::filesystem::remove_all(db);
  Shell load = Toegang("load --db " + db + " " + Write("facts.jsonl", kFacts));
  ASSERT_EQ(load.status, 0) << load.out;
  EXPECT_THAT(load.out, HasSubstr("loaded 3 facts; last sequence 3"));

  Shell before = Toegang("history --db " + db + " --patient pat-7");
  ASSERT_EQ(before.status, 0) << before.out;
  std::istringstream lines(before.out);
  std::string line, last_arrival;
  int n = 0;
  while (std::getline(lines, line)) {
    json f = json::parse(line);
    EXPECT_EQ(f["seq"], n + 1);
    last_arrival = f["arrival"];
    ++n;
  }
  EXPECT_EQ(n, 3);
  usleep(20000);  // the withdrawal arrives strictly later

  Shell w = Toegang("load --db " + db + " " + Write("w.jsonl", R"({"type":"withdrawal","consent":"con-7","by":"pat-7","at":"2026-06-01T00:00:00+02:00"})" "\n"));
  ASSERT_EQ(w.status, 0) << w.out;
  EXPECT_THAT(w.out, HasSubstr("last sequence 4"));

  // As of the first load's arrival: three facts, and the old decision replays.
  Shell asof = Toegang("history --db " + db + " --patient pat-7 --as-of " + last_arrival);
  EXPECT_EQ(std::count(asof.out.begin(), asof.out.end(), '\n'), 3) << asof.out;
  Shell now = Toegang("history --db " + db + " --patient pat-7");
  EXPECT_EQ(std::count(now.out.begin(), now.out.end(), '\n'), 4) << now.out;

  Shell replay = Toegang("decide --db " + db + " --as-of " + last_arrival, Request("2026-06-02T10:00:00+02:00"));
  ASSERT_EQ(replay.status, 0) << replay.out;
  EXPECT_EQ(json::parse(replay.out)["decision"], "permit");
  Shell current = Toegang("decide --db " + db, Request("2026-06-02T10:00:00+02:00"));
  EXPECT_EQ(json::parse(current.out)["decision"], "deny");
}

TEST(CliStore, BadFileStoresNothingAndNamesTheLine) {
  std::string db = Tmp("db_atomic");
  std::filesystem::remove_all(db);
  ASSERT_EQ(Toegang("load --db " + db + " " + Write("ok.jsonl", kFacts)).status, 0);
  struct Case {
    const char* name;
    std::string file;
    const char* message;
  };
  const Case kCases[] = {
      {"impossible_date", std::string(R"({"type":"person","id":"pat-8","birth_date":"2010-01-01"})") + "\n" +
                              R"({"type":"person","id":"pat-9","birth_date":"2010-02-29"})" + "\n",
       ":2: person.birth_date: date '2010-02-29' does not exist"},
      {"until_before_from", std::string(R"({"type":"person","id":"pat-8"})") + "\n" +
                                R"({"type":"relationship","subject":"c","relation":"treating","object":"pat-8","from":"2026-02-01T00:00:00Z","until":"2026-01-01T00:00:00Z"})" + "\n",
       ":2: relationship.until: must be after from"},
      {"unknown_enum", std::string(R"({"type":"person","id":"pat-8"})") + "\n\n" +
                           R"({"type":"relationship","subject":"c","relation":"friend","object":"pat-8"})" + "\n",
       ":3: relationship.relation: unknown relation (expected "},
      {"unknown_withdrawal", std::string(R"({"type":"person","id":"pat-8"})") + "\n" +
                                 R"({"type":"withdrawal","consent":"con-404","by":"pat-8","at":"2026-01-01T00:00:00Z"})" + "\n",
       ":2: withdrawal names no known consent"},
      {"nul_byte_hides_a_fact",
       std::string(R"({"type":"person","id":"pat-8"})") + std::string(1, '\0') +
           R"({"type":"objection","id":"obj-8","patient":"pat-8","by":"pat-8","purposes":["research"]})" + "\n",
       ":1: a NUL byte at byte 31"},
      {"person_restated", std::string(R"({"type":"person","id":"pat-8"})") + "\n" +
                              R"({"type":"person","id":"pat-7","birth_date":"2020-01-10"})" + "\n",
       ":2: person id 'pat-7' is already used"},
      {"duplicate_id", std::string(R"({"type":"person","id":"pat-8"})") + "\n\n\n" +
                           R"({"type":"relationship","id":"rel-7","subject":"x","relation":"treating","object":"pat-8"})" + "\n",
       ":4: relationship id 'rel-7' is already used"},
  };
  for (const Case& c : kCases) {
    SCOPED_TRACE(c.name);
    Shell r = Toegang("load --db " + db + " " + Write("bad.jsonl", c.file));
    EXPECT_EQ(r.status, 2) << r.out;
    EXPECT_THAT(r.out, HasSubstr(c.message));
    EXPECT_THAT(r.out, HasSubstr("nothing was stored"));
    Shell h = Toegang("history --db " + db + " --patient pat-8");
    EXPECT_EQ(h.out, "") << "a rejected file left facts behind";
  }
  Shell ok = Toegang("load --db " + db + " " + Write("more.jsonl", R"({"type":"person","id":"pat-8"})" "\n"));
  EXPECT_THAT(ok.out, HasSubstr("last sequence 4")) << "rejected files consumed sequence numbers";
}

TEST(CliStore, ADirectoryOrMissingFileIsNotAnEmptyFile) {
  std::string db = Tmp("db_notafile");
  std::filesystem::remove_all(db);
  std::string dir = Tmp("facts_dir");
  std::filesystem::create_directories(dir);
  Shell r = Toegang("load --db " + db + " " + dir);
  EXPECT_EQ(r.status, 2) << r.out;
  EXPECT_THAT(r.out, HasSubstr("is a directory"));
  EXPECT_THAT(r.out, ::testing::Not(HasSubstr("loaded 0 facts")));
  Shell missing = Toegang("load --db " + db + " " + dir + "/none.jsonl");
  EXPECT_EQ(missing.status, 2) << missing.out;
  EXPECT_THAT(missing.out, HasSubstr("does not exist"));
  Shell decide = Toegang("decide --facts " + dir, Request("2026-03-01T00:00:00+01:00"));
  EXPECT_EQ(decide.status, 2) << decide.out;
}

void RemoveWriteAheadLogs(const std::string& db) {
  for (const auto& e : std::filesystem::directory_iterator(db)) {
    if (e.path().extension() == ".log") std::filesystem::remove(e.path());  // "cleaning up the logs"
  }
}

// A store closed as usual has written its write-ahead log into tables: losing the logs
// then loses nothing.
TEST(CliStore, LogsOfAStoreClosedAsUsualHoldNothingLeft) {
  std::string db = Tmp("db_closed");
  std::filesystem::remove_all(db);
  ASSERT_EQ(Toegang("load --db " + db + " " + Write("f.jsonl", kFacts)).status, 0);
  Shell w = Toegang("load --db " + db + " " +
                    Write("w.jsonl", R"({"type":"withdrawal","consent":"con-7","by":"pat-7","at":"2026-06-01T00:00:00+02:00"})" "\n"));
  ASSERT_THAT(w.out, HasSubstr("last sequence 4"));
  RemoveWriteAheadLogs(db);
  Shell h = Toegang("history --db " + db + " --patient pat-7");
  ASSERT_EQ(h.status, 0) << h.out;
  EXPECT_EQ(std::count(h.out.begin(), h.out.end(), '\n'), 4) << h.out;
  Shell d = Toegang("decide --db " + db, Request("2026-07-01T00:00:00+02:00"));
  ASSERT_EQ(d.status, 0) << d.out;
  EXPECT_EQ(json::parse(d.out)["decision"], "deny") << "the withdrawal was lost";
}

// A writer killed after acknowledging facts leaves them in the write-ahead log alone:
// without the log the store would come back short, and is refused until an operator
// accepts the loss.
TEST(CliStore, DamagedWriteAheadLogIsRefusedAndAcceptLossGoesOn) {
  std::string db = Tmp("db_wal");
  std::filesystem::remove_all(db);
  ASSERT_EQ(Toegang("load --db " + db + " " + Write("f.jsonl", kFacts)).status, 0);  // facts 1-3, in tables
  bool ran = false;
  const std::string acks = testing::RunThenKill({db, "wal"}, 200000, /*after_first_ack=*/true, &ran);
  ASSERT_TRUE(ran);
  ASSERT_THAT(acks, HasSubstr("ack ")) << "the writer acknowledged nothing before it was killed";
  RemoveWriteAheadLogs(db);
  Shell d = Toegang("decide --db " + db, Request("2026-07-01T00:00:00+02:00"));
  EXPECT_EQ(d.status, 1) << d.out;
  EXPECT_THAT(d.out, HasSubstr("shorter than it acknowledged"));
  EXPECT_THAT(d.out, ::testing::Not(HasSubstr("permit")));
  Shell h = Toegang("history --db " + db + " --patient wal-1");
  EXPECT_EQ(h.status, 1) << h.out;
  Shell accept = Toegang("store accept-loss --db " + db);
  EXPECT_EQ(accept.status, 0) << accept.out;
  EXPECT_THAT(accept.out, HasSubstr("accepted: the store now holds facts up to sequence 3"));
  Shell again = Toegang("store accept-loss --db " + db);
  EXPECT_THAT(again.out, HasSubstr("nothing to accept"));
  Shell after = Toegang("decide --db " + db, Request("2026-07-01T00:00:00+02:00"));
  ASSERT_EQ(after.status, 0) << after.out;
  EXPECT_EQ(json::parse(after.out)["decision"], "permit");  // the consent, never withdrawn
}

TEST(CliStore, StoreHeldByAnotherProcess) {
  std::string db = Tmp("db_locked");
  std::filesystem::remove_all(db);
  ASSERT_EQ(Toegang("load --db " + db + " " + Write("f.jsonl", kFacts)).status, 0);
  // A decide process holds the store while it waits for requests on its stdin.
  int in[2];
  ASSERT_EQ(pipe(in), 0);
  pid_t pid = fork();
  if (pid == 0) {
    dup2(in[0], 0);
    close(in[1]);
    std::string bin = Runfile("toegang");
    execl(bin.c_str(), bin.c_str(), "decide", "--db", db.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  close(in[0]);
  usleep(300000);
  Shell second = Toegang("load --db " + db + " " + Write("g.jsonl", R"({"type":"person","id":"pat-10"})" "\n"));
  EXPECT_EQ(second.status, 1) << second.out;
  EXPECT_THAT(second.out, HasSubstr("in use by another process"));
  close(in[1]);  // EOF: the holder exits and releases the lock
  int status;
  waitpid(pid, &status, 0);
  EXPECT_EQ(Toegang("load --db " + db + " " + Write("g.jsonl", R"({"type":"person","id":"pat-10"})" "\n")).status, 0);
}

TEST(CliAudit, EveryDecisionIsLoggedAndThePatientSeesWho) {
  std::string db = Tmp("db_audit");
  std::filesystem::remove_all(db);
  ASSERT_EQ(Toegang("load --db " + db + " " + Write("f.jsonl", kFacts)).status, 0);
  std::string requests = Request("2026-04-01T10:00:00+02:00") + "{broken\n" +
                         R"({"at":"2026-04-02T10:00:00+02:00","actor":{"id":"emp-1","role":"employer","organization":"acme"},"patient":"pat-7","action":"read","category":"contact","purpose":"treatment"})" "\n";
  Shell d = Toegang("decide --db " + db, requests);
  EXPECT_EQ(d.status, 2);  // the broken line
  Shell overview = Toegang("audit --db " + db + " --patient pat-7");
  ASSERT_EQ(overview.status, 0) << overview.out;
  std::istringstream lines(overview.out);
  std::string line;
  std::vector<json> rows;
  while (std::getline(lines, line)) rows.push_back(json::parse(line));
  ASSERT_EQ(rows.size(), 2u) << overview.out;  // an unparseable line names no patient
  EXPECT_EQ(rows[0]["actor"]["id"], "emp-1");  // newest first
  EXPECT_EQ(rows[0]["actor"]["organization"], "acme");
  EXPECT_EQ(rows[0]["decision"], "deny");
  EXPECT_EQ(rows[0]["reasons"], json::array({"employer_never"}));
  EXPECT_EQ(rows[1]["actor"]["id"], "par-7");
  EXPECT_EQ(rows[1]["decision"], "permit");
  EXPECT_EQ(rows[1]["emergency"], false);
  Shell period = Toegang("audit --db " + db + " --patient pat-7 --from 2026-04-02T00:00:00+02:00");
  EXPECT_EQ(std::count(period.out.begin(), period.out.end(), '\n'), 1) << period.out;

  Shell ok = Toegang("audit verify --db " + db);
  EXPECT_EQ(ok.status, 0) << ok.out;
  EXPECT_THAT(ok.out, HasSubstr("ok: 2 records"));
  Shell young = Toegang("audit purge --db " + db + " --before 2026-01-01T00:00:00Z");
  EXPECT_EQ(young.status, 2);
  EXPECT_THAT(young.out, HasSubstr("at least 5 years"));
  Shell keyless = Toegang("audit purge --db " + db + " --before 2015-01-01T00:00:00Z");
  EXPECT_EQ(keyless.status, 2) << keyless.out;
  EXPECT_THAT(keyless.out, HasSubstr("--audit-key-file"));
  const std::string key = Write("audit.key", "k3y-material-of-32-bytes-length!\n");
  std::filesystem::permissions(key, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  Shell old = Toegang("audit purge --db " + db + " --audit-key-file " + key + " --before 2015-01-01T00:00:00Z");
  EXPECT_EQ(old.status, 0) << old.out;
  EXPECT_THAT(old.out, HasSubstr("purged 0 records"));
  std::filesystem::permissions(key, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write | std::filesystem::perms::group_read);
  Shell readable = Toegang("audit verify --db " + db + " --audit-key-file " + key);
  EXPECT_EQ(readable.status, 2) << readable.out;
  EXPECT_THAT(readable.out, HasSubstr("make it 0600"));
  EXPECT_THAT(readable.out, ::testing::Not(HasSubstr("k3y")));
}

// A FHIR Consent from an EHR: imported once, retried harmlessly, decided on, shown with
// its source; bad input named by FHIRPath and nothing stored.
TEST(CliFhir, ImportRetryDecideAndRefuse) {
  std::string db = Tmp("db_fhir");
  std::filesystem::remove_all(db);
  ASSERT_EQ(Toegang("load --db " + db + " " + Write("f.jsonl", kFacts)).status, 0);
  const std::string consent = R"({"resourceType":"Bundle","type":"transaction","entry":[{"resource":
    {"resourceType":"Consent","id":"con-fhir-1","meta":{"versionId":"1","lastUpdated":"2026-02-01T10:00:00+01:00"},
     "status":"active","scope":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/consentscope","code":"patient-privacy"}]},
     "patient":{"identifier":{"system":"https://praktijk.example/patient-id","value":"pat-7"}},
     "performer":[{"reference":"Patient/pat-7"}],"dateTime":"2026-02-01T10:00:00+01:00",
     "provision":{"type":"permit","actor":[{"role":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v3-ParticipationType","code":"IRCP"}]},"reference":{"reference":"Practitioner/clin-40"}}],
       "action":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/consentaction","code":"access"}]}],
       "purpose":[{"system":"http://terminology.hl7.org/CodeSystem/v3-ActReason","code":"TREAT"}]}},
    "request":{"method":"PUT","url":"Consent/con-fhir-1"}}]})";
  const std::string file = Write("consent.json", consent);
  const std::string systems = " --identifier-system https://praktijk.example/patient-id ";
  Shell imported = Toegang("fhir import --db " + db + systems + file);
  ASSERT_EQ(imported.status, 0) << imported.out;
  EXPECT_THAT(imported.out, HasSubstr("Consent/con-fhir-1 version 1: stored: consent con-fhir-1"));
  EXPECT_THAT(imported.out, HasSubstr("stored 1 facts; last sequence 4"));
  Shell again = Toegang("fhir import --db " + db + systems + file);
  ASSERT_EQ(again.status, 0) << again.out;
  EXPECT_THAT(again.out, HasSubstr("unchanged: version 1 is already imported"));
  EXPECT_THAT(again.out, HasSubstr("stored 0 facts; last sequence 4"));

  Shell history = Toegang("history --db " + db + " --patient pat-7");
  EXPECT_THAT(history.out, HasSubstr(R"("source":{"id":"con-fhir-1","system":"fhir","version":"1"})"));
  Shell decided = Toegang("decide --db " + db,
                          R"({"at":"2026-03-01T10:00:00+01:00","actor":{"id":"clin-40","role":"clinician"},"patient":"pat-7","action":"read","category":"medical","purpose":"treatment"})" "\n");
  EXPECT_THAT(decided.out, HasSubstr(R"("consents":["con-fhir-1"])"));
  EXPECT_THAT(decided.out, HasSubstr(R"("decision":"permit")"));

  // Without the identifier system the patient cannot be named: refused, named, nothing stored.
  Shell unmapped = Toegang("fhir import --db " + db + " " + file);
  EXPECT_EQ(unmapped.status, 2) << unmapped.out;
  EXPECT_THAT(unmapped.out, HasSubstr("Bundle.entry[0].resource.patient.identifier.system"));
  EXPECT_THAT(unmapped.out, HasSubstr("nothing was stored"));
  Shell bsn = Toegang("fhir import --db " + db + " --identifier-system http://fhir.nl/fhir/NamingSystem/bsn " + file);
  EXPECT_EQ(bsn.status, 2) << bsn.out;
  EXPECT_THAT(bsn.out, HasSubstr("--identifier-system"));
  Shell missing = Toegang("fhir import --db " + db + " " + Tmp("no-such.json"));
  EXPECT_EQ(missing.status, 2) << missing.out;
  Shell usage = Toegang("fhir export --db " + db);  // no --patient
  EXPECT_EQ(usage.status, 2) << usage.out;

  // Out again as FHIR: the JSON consent and the imported one, each with its status then.
  Shell exported = Toegang("fhir export --db " + db + " --patient pat-7 --at 2026-03-01T10:00:00+01:00");
  ASSERT_EQ(exported.status, 0) << exported.out;
  json bundle = json::parse(exported.out);
  EXPECT_EQ(bundle["type"], "collection");
  ASSERT_EQ(bundle["entry"].size(), 2u) << exported.out;
  EXPECT_EQ(bundle["entry"][0]["resource"]["id"], "con-7");
  EXPECT_EQ(bundle["entry"][1]["resource"]["id"], "con-fhir-1");
  EXPECT_EQ(bundle["entry"][1]["resource"]["status"], "active");
  Shell later = Toegang("fhir export --db " + db + " --patient pat-7 --at 2027-01-01T00:00:00+01:00");
  EXPECT_THAT(later.out, HasSubstr(R"("status":"active")"));
  EXPECT_EQ(Toegang("fhir export --db " + db + " --patient pat-7 --at yesterday").status, 2);
  EXPECT_THAT(Toegang("history --db " + db + " --patient pat-7").out, HasSubstr("con-fhir-1"));
  EXPECT_EQ(std::count(history.out.begin(), history.out.end(), '\n'), 4) << history.out;
}

// An organisation's categories are its own history: loaded like any fact, listed with
// --organization, as of an instant; a consent to the category (Mitz) reaches its people.
TEST(CliStore, OrganisationCategoriesAreListedAndDecide) {
  std::string db = Tmp("db_org");
  std::filesystem::remove_all(db);
  ASSERT_EQ(Toegang("load --db " + db + " " + Write("f.jsonl", kFacts)).status, 0);
  const std::string facts =
      R"({"type":"org_category","organization":"apotheek-1","category":"RPZAC005","from":"2026-01-01T00:00:00+01:00"})" "\n"
      R"({"type":"consent","id":"mitz-7","patient":"pat-7","granted_by":"pat-7","to":{"organization_category":"RPZAC005"},"purposes":["treatment"],"categories":["medical"],"actions":["read"],"recorded_at":"2026-02-01T10:00:00+01:00"})" "\n";
  Shell loaded = Toegang("load --db " + db + " " + Write("org.jsonl", facts));
  ASSERT_EQ(loaded.status, 0) << loaded.out;
  Shell listed = Toegang("history --db " + db + " --organization apotheek-1");
  ASSERT_EQ(listed.status, 0) << listed.out;
  EXPECT_THAT(listed.out, HasSubstr(R"("category":"RPZAC005")"));
  EXPECT_EQ(std::count(listed.out.begin(), listed.out.end(), '\n'), 1) << listed.out;
  EXPECT_EQ(Toegang("history --db " + db + " --organization apotheek-1 --as-of 2000-01-01T00:00:00Z").out, "");
  EXPECT_EQ(Toegang("history --db " + db + " --organization nobody").out, "");
  EXPECT_EQ(Toegang("history --db " + db + " --organization apotheek-1 --patient pat-7").status, 2);
  EXPECT_EQ(Toegang("history --db " + db).status, 2);
  // The category is not part of any patient's history.
  EXPECT_THAT(Toegang("history --db " + db + " --patient pat-7").out, ::testing::Not(HasSubstr("org_category")));
  Shell decided = Toegang("decide --db " + db,
                          R"({"at":"2026-03-01T10:00:00+01:00","actor":{"id":"apo-1","role":"clinician","organization":"apotheek-1"},"patient":"pat-7","action":"read","category":"medical","purpose":"treatment"})" "\n");
  EXPECT_THAT(decided.out, HasSubstr(R"("consents":["mitz-7"])")) << decided.out;

  // Who may read pat-7's medical record then: anyone acting for a pharmacy (by the
  // consent to the category), as decide said.
  Shell grants = Toegang("grants --db " + db + " --patient pat-7 --at 2026-03-01T10:00:00+01:00 --purpose treatment");
  ASSERT_EQ(grants.status, 0) << grants.out;
  json answer = json::parse(grants.out);
  bool pharmacies = false;
  for (const json& g : answer["grants"]) {
    pharmacies = pharmacies || (g.value("organization_category", "") == "RPZAC005" && g["consents"] == json::array({"mitz-7"}));
  }
  EXPECT_TRUE(pharmacies) << grants.out;
  EXPECT_EQ(Toegang("grants --db " + db + " --patient pat-7 --purpose marketing").status, 2);
  EXPECT_EQ(Toegang("grants --db " + db + " --patient pat-7 --at yesterday").status, 2);
  EXPECT_EQ(Toegang("grants --db " + db).status, 2);

  // And the other way round: the patients anyone acting for the pharmacy may open.
  Shell mine = Toegang("patients --db " + db +
                       " --actor apo-1 --role clinician --organization apotheek-1 --at 2026-03-01T10:00:00+01:00");
  ASSERT_EQ(mine.status, 0) << mine.out;
  json page = json::parse(mine.out);
  ASSERT_EQ(page["patients"].size(), 1u) << mine.out;
  EXPECT_EQ(page["patients"][0]["patient"], "pat-7");
  EXPECT_EQ(page["patients"][0]["consents"], json::array({"mitz-7"}));
  EXPECT_EQ(page["complete"], true);
  // Without the organisation, nothing names apo-1.
  Shell alone = Toegang("patients --db " + db + " --actor apo-1 --role clinician --at 2026-03-01T10:00:00+01:00");
  EXPECT_EQ(json::parse(alone.out)["patients"].size(), 0u) << alone.out;
  EXPECT_EQ(Toegang("patients --db " + db + " --actor apo-1 --role nurse").status, 2);
  EXPECT_EQ(Toegang("patients --db " + db + " --actor apo-1 --role clinician --page-size 0").status, 2);
  Shell bad_cursor = Toegang("patients --db " + db + " --actor apo-1 --role clinician --cursor abc");
  EXPECT_EQ(bad_cursor.status, 2);
  EXPECT_THAT(bad_cursor.out, HasSubstr("cursor: not a cursor of this listing"));
  EXPECT_EQ(Toegang("patients --db " + db + " --role clinician").status, 2);
}

// `retention report`: per patient what is held and when it is due, the access log
// counted; without --patient, one line per patient.
TEST(CliStore, RetentionReportPerPatient) {
  std::string db = Tmp("db_retention");
  std::filesystem::remove_all(db);
  ASSERT_EQ(Toegang("load --db " + db + " " + Write("f.jsonl", kFacts)).status, 0);
  const std::string more =
      R"({"type":"person","id":"pat-8","birth_date":"1970-01-01","recorded_at":"2026-01-01T00:00:00+01:00"})" "\n"
      R"({"type":"erasure_request","id":"era-8","patient":"pat-8","by":"pat-8","at":"2026-03-01T09:00:00+01:00"})" "\n";
  ASSERT_EQ(Toegang("load --db " + db + " " + Write("more.jsonl", more)).status, 0);
  ASSERT_EQ(Toegang("decide --db " + db, Request("2026-04-01T10:00:00+02:00")).status, 0);
  Shell one = Toegang("retention report --db " + db + " --patient pat-7 --at 2026-05-01T00:00:00+02:00");
  ASSERT_EQ(one.status, 0) << one.out;
  json j = json::parse(one.out);
  EXPECT_EQ(j["patient"], "pat-7");
  EXPECT_EQ(j["facts"]["count"], 3);
  EXPECT_TRUE(j["facts"]["last_change"].is_string());  // when they were loaded: no recorded_at says otherwise
  EXPECT_EQ(j["facts"]["term"], "dossier_20_years");
  EXPECT_EQ(j["facts"]["due_now"], false);
  EXPECT_EQ(j["access_log"].size(), 1u) << one.out;
  Shell all = Toegang("retention report --db " + db + " --at 2026-05-01T00:00:00+02:00");
  ASSERT_EQ(all.status, 0) << all.out;
  std::istringstream lines(all.out);
  std::vector<json> reports;
  for (std::string line; std::getline(lines, line);) reports.push_back(json::parse(line));
  ASSERT_EQ(reports.size(), 2u) << all.out;
  EXPECT_EQ(reports[1]["patient"], "pat-8");
  EXPECT_EQ(reports[1]["facts"]["term"], "erasure_request era-8");
  EXPECT_EQ(reports[1]["facts"]["due_now"], true);
  EXPECT_EQ(reports[1]["erasure_requests"][0]["deadline"], "2026-06-01T07:00:00Z");
  EXPECT_EQ(Toegang("retention report --db " + db + " --at yesterday").status, 2);
  EXPECT_EQ(Toegang("retention apply --db " + db).status, 2);
  EXPECT_EQ(Toegang("retention --db " + db).status, 2);

  // `retention apply`: pat-8 asked for erasure; what was recorded before goes, leaving
  // tombstones; pat-7's young dossier stays.
  const std::string key = Write("retention.key", "k3y-material-of-32-bytes-length!\n");
  std::filesystem::permissions(key, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  EXPECT_EQ(Toegang("retention apply --db " + db + " --audit-key-file " + key + " --at 2099-01-01T00:00:00Z").status, 2);
  Shell applied = Toegang("retention apply --db " + db + " --audit-key-file " + key);
  ASSERT_EQ(applied.status, 0) << applied.out;
  json removed = json::parse(applied.out.substr(0, applied.out.find('\n')));
  EXPECT_EQ(removed["patient"], "pat-8");
  EXPECT_EQ(removed["facts"], 1);
  EXPECT_EQ(removed["term"], "erasure_request era-8");
  EXPECT_THAT(applied.out, HasSubstr("removed 1 facts and 0 access log records of 1 patients"));
  Shell history = Toegang("history --db " + db + " --patient pat-8");
  ASSERT_EQ(history.status, 0) << history.out;
  EXPECT_THAT(history.out, HasSubstr(R"("type":"removed")"));
  EXPECT_THAT(history.out, HasSubstr(R"("removed_type":"person")"));
  EXPECT_THAT(history.out, ::testing::Not(HasSubstr("1970-01-01")));
  Shell again = Toegang("retention apply --db " + db + " --audit-key-file " + key);
  ASSERT_EQ(again.status, 0) << again.out;
  EXPECT_THAT(again.out, HasSubstr("removed 0 facts and 0 access log records of 0 patients"));
  Shell carried = Toegang("retention report --db " + db + " --patient pat-8");
  ASSERT_EQ(carried.status, 0) << carried.out;
  EXPECT_EQ(json::parse(carried.out)["erasure_requests"][0]["status"], "carried_out");
  EXPECT_EQ(Toegang("audit verify --db " + db + " --audit-key-file " + key).status, 0);
}

// Whether any file under `dir` holds `needle`, and which.
std::vector<std::string> FilesHolding(const std::string& dir, const std::string& needle) {
  std::vector<std::string> found;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(dir)) {
    if (!entry.is_regular_file()) continue;
    std::ifstream in(entry.path(), std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (bytes.find(needle) != std::string::npos) found.push_back(entry.path().filename().string());
  }
  return found;
}

// What retention apply removes is gone from the store's files, not only from every
// answer: RocksDB kept the old facts and the index keys naming who treated whom in the
// files written before the removal (and listed those keys in its MANIFEST).
TEST(CliStore, RetentionApplyLeavesNothingRemovedOnTheDisk) {
  std::string db = Tmp("db_scrub");
  std::filesystem::remove_all(db);
  const std::string facts =
      R"({"type":"person","id":"pat-8","birth_date":"1970-01-01","recorded_at":"2026-01-01T00:00:00+01:00"})" "\n"
      R"({"type":"relationship","id":"rel-8","subject":"clin-zqxw","relation":"treating","object":"pat-8","recorded_at":"2026-01-02T00:00:00+01:00"})" "\n"
      R"({"type":"person","id":"pat-9","birth_date":"1980-01-01","recorded_at":"2026-01-01T00:00:00+01:00"})" "\n"
      R"({"type":"relationship","id":"rel-9","subject":"clin-stays","relation":"treating","object":"pat-9","recorded_at":"2026-01-02T00:00:00+01:00"})" "\n";
  ASSERT_EQ(Toegang("load --db " + db + " " + Write("scrub.jsonl", facts)).status, 0);
  const std::string erasure =
      R"({"type":"erasure_request","id":"era-8","patient":"pat-8","by":"pat-8","at":"2026-03-01T09:00:00+01:00"})" "\n";
  ASSERT_EQ(Toegang("load --db " + db + " " + Write("erasure.jsonl", erasure)).status, 0);
  ASSERT_FALSE(FilesHolding(db, "clin-zqxw").empty()) << "the test's facts never reached the store's files";

  const std::string key = Write("scrub.key", "k3y-material-of-32-bytes-length!\n");
  std::filesystem::permissions(key, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  Shell applied = Toegang("retention apply --db " + db + " --audit-key-file " + key);
  ASSERT_EQ(applied.status, 0) << applied.out;
  EXPECT_THAT(applied.out, HasSubstr("removed 2 facts and 0 access log records of 1 patients"));
  EXPECT_THAT(applied.out, HasSubstr("rewrote the store's files"));
  const std::vector<std::string> left = FilesHolding(db, "clin-zqxw");
  EXPECT_TRUE(left.empty()) << "still on the disk in " << left.front();
  // What was not due stays, readable.
  EXPECT_FALSE(FilesHolding(db, "clin-stays").empty());
  Shell kept = Toegang("history --db " + db + " --patient pat-9");
  ASSERT_EQ(kept.status, 0) << kept.out;
  EXPECT_THAT(kept.out, HasSubstr("clin-stays"));
  EXPECT_EQ(Toegang("audit verify --db " + db + " --audit-key-file " + key).status, 0);

  // The same rewrite on its own, and its usage.
  Shell scrub = Toegang("store scrub --db " + db);
  ASSERT_EQ(scrub.status, 0) << scrub.out;
  EXPECT_THAT(scrub.out, HasSubstr("nothing removed is left on the disk"));
  EXPECT_EQ(Toegang("store scrub --db " + Tmp("db_scrub_none")).status, 2);
  EXPECT_EQ(Toegang("store scrub-it --db " + db).status, 2);
}

// `patients --all` follows the cursors: every page, one JSON line each, until complete.
TEST(CliStore, PatientsAllWritesEveryPage) {
  std::string db = Tmp("db_patients");
  std::filesystem::remove_all(db);
  std::string facts;
  for (int i = 0; i < 25; ++i) {
    const std::string p = "p-" + std::to_string(100 + i);
    facts += R"({"type":"person","id":")" + p + R"(","birth_date":"1970-05-05"})" "\n" +
             R"({"type":"relationship","subject":"clin-9","relation":"treating","object":")" + p + R"("})" "\n";
  }
  ASSERT_EQ(Toegang("load --db " + db + " " + Write("many.jsonl", facts)).status, 0);
  Shell all = Toegang("patients --db " + db +
                      " --actor clin-9 --role clinician --page-size 10 --all --at 2026-03-01T10:00:00+01:00");
  ASSERT_EQ(all.status, 0) << all.out;
  std::vector<std::string> lines;
  std::istringstream text(all.out);
  for (std::string line; std::getline(text, line);) lines.push_back(line);
  ASSERT_EQ(lines.size(), 3u) << all.out;
  size_t listed = 0;
  for (const std::string& line : lines) listed += json::parse(line)["patients"].size();
  EXPECT_EQ(listed, 25u);
  EXPECT_EQ(json::parse(lines.back())["complete"], true);
  const std::string cursor = json::parse(lines[0])["cursor"];
  Shell second = Toegang("patients --db " + db + " --actor clin-9 --role clinician --page-size 10 --cursor " + cursor +
                         " --at 2026-03-01T10:00:00+01:00");
  ASSERT_EQ(second.status, 0) << second.out;
  EXPECT_EQ(json::parse(second.out)["patients"][0]["patient"], "p-110");
  EXPECT_EQ(Toegang("patients --db " + db + " --actor clin-9 --role clinician --all --cursor " + cursor).status, 2);
}

TEST(CliStore, DecideOnMissingStoreIsAnError) {
  Shell r = Toegang("decide --db " + Tmp("does_not_exist"), Request("2026-06-02T10:00:00+02:00"));
  EXPECT_EQ(r.status, 2);
  EXPECT_THAT(r.out, HasSubstr("no toegang store"));
  EXPECT_FALSE(std::filesystem::exists(Tmp("does_not_exist"))) << "decide created a store";
}

}  // namespace
}  // namespace toegang
