// Copyright toegang authors.
//
// The CLI as a user drives it: the line-by-line error contract and exit statuses.
// (Every case of tests/cases/domain_cases.json goes through `toegang decide` in
// tests/domain_cases_test.cc.)
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/testing/e2e.h"

namespace toegang {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;

using e2e::Runfile;
using e2e::Shell;

std::string TmpFile(const std::string& name, const std::string& content) { return e2e::Write(name, content); }

// Runs the binary with `args` (shell words), `input` on stdin; returns exit status and
// stdout (stderr goes to the test log).
Shell Toegang(const std::string& args, const std::string& input) {
  std::string in = TmpFile("stdin.jsonl", input);
  return e2e::Sh(Runfile("toegang") + " " + args + " < " + in);
}


TEST(CliDecide, MalformedLineGetsDenyOnItsLineAndTheRestGoOn) {
  std::string facts = TmpFile("f.jsonl",
      R"({"type":"relationship","subject":"clin-1","relation":"treating","object":"pat-1"})" "\n");
  std::string good = R"({"at":"2026-03-10T10:00:00+01:00","actor":{"id":"clin-1","role":"clinician"},"patient":"pat-1","action":"read","category":"medical","purpose":"treatment"})";
  std::string marketing = R"({"at":"2026-03-10T10:00:00+01:00","actor":{"id":"clin-1","role":"clinician"},"patient":"pat-1","action":"read","category":"medical","purpose":"marketing"})";
  Shell r = Toegang("decide --facts " + facts, good + "\n{not json\n" + marketing + "\n" + good + "\n");
  EXPECT_EQ(r.status, 2);
  std::istringstream lines(r.out);
  std::string line;
  std::vector<json> out;
  while (std::getline(lines, line)) out.push_back(json::parse(line));
  ASSERT_EQ(out.size(), 4u) << r.out;
  EXPECT_EQ(out[0]["decision"], "permit");
  EXPECT_EQ(out[1]["decision"], "deny");
  EXPECT_EQ(out[1]["reasons"], json::array({"invalid_request"}));
  EXPECT_EQ(out[2]["decision"], "deny");
  EXPECT_THAT(out[2]["error"].get<std::string>(), HasSubstr("purpose: unknown purpose (expected "));
  EXPECT_EQ(out[3]["decision"], "permit");
  EXPECT_NE(out[0]["decision_id"], out[3]["decision_id"]);
}

// A node that replicates no history has no token of its own: a request carrying one is
// denied as invalid, saying why, never decided on facts the caller did not ask for.
TEST(CliDecide, AConsistencyTokenOnANodeThatDoesNotReplicateIsAnInvalidRequest) {
  std::string facts = TmpFile("f-token.jsonl",
      R"({"type":"relationship","subject":"clin-1","relation":"treating","object":"pat-1"})" "\n");
  std::string req = R"({"at":"2026-03-10T10:00:00+01:00","actor":{"id":"clin-1","role":"clinician"},"patient":"pat-1","action":"read","category":"medical","purpose":"treatment"})";
  Shell r = Toegang("decide --facts " + facts + " --at-least tg1.0123456789abcdef0123456789abcdef.3", req + "\n");
  ASSERT_EQ(r.status, 0) << r.out;
  json out = json::parse(r.out);
  EXPECT_EQ(out["decision"], "deny");
  EXPECT_EQ(out["reasons"], json::array({"invalid_request"}));
  EXPECT_THAT(out["error"].get<std::string>(), HasSubstr("consistency.at_least: this node does not replicate"));
  Shell bad = Toegang("decide --facts " + facts + " --max-wait=forever", req + "\n");
  EXPECT_EQ(bad.status, 2);
}

// Lines are decided in batches of what is waiting: order and the one-answer-per-line
// contract hold across batch boundaries, bad lines included.
// --explain (or "explain":true on a line): the same decision, with how it was reached.
TEST(CliDecide, ExplainAddsHowTheDecisionWasReached) {
  std::string facts = TmpFile("f-explain.jsonl",
      R"({"type":"person","id":"pat-1","birth_date":"1980-01-01"})" "\n"
      R"({"type":"relationship","id":"rel-1","subject":"clin-1","relation":"treating","object":"pat-1"})" "\n");
  const std::string req = R"({"at":"2026-03-10T10:00:00+01:00","actor":{"id":"clin-1","role":"clinician"},"patient":"pat-1","action":"read","category":"medical","purpose":"treatment")";
  Shell plain = Toegang("decide --facts " + facts, req + "}\n");
  Shell explained = Toegang("decide --facts " + facts + " --explain", req + "}\n");
  ASSERT_EQ(explained.status, 0) << explained.out;
  json p = json::parse(plain.out);
  json e = json::parse(explained.out);
  EXPECT_FALSE(p.contains("explanation"));
  ASSERT_TRUE(e.contains("explanation")) << explained.out;
  EXPECT_EQ(e["decision"], p["decision"]);
  EXPECT_EQ(e["rule"], "treating_clinician");
  EXPECT_EQ(e["explanation"]["policy"], "wgbo-default@1");
  bool permitted = false;
  for (const json& r : e["explanation"]["rules"]) permitted = permitted || (r["rule"] == "treating_clinician" && r["outcome"] == "permitted");
  EXPECT_TRUE(permitted) << explained.out;
  // Per line, and a value that is not a boolean is an invalid request naming the field.
  Shell lines = Toegang("decide --facts " + facts, req + R"(,"explain":true})" "\n" + req + R"(,"explain":"yes"})" "\n");
  std::vector<std::string> out = absl::StrSplit(lines.out, '\n', absl::SkipEmpty());
  ASSERT_EQ(out.size(), 2u) << lines.out;
  EXPECT_TRUE(json::parse(out[0]).contains("explanation"));
  EXPECT_THAT(json::parse(out[1])["error"].get<std::string>(), HasSubstr("explain: must be true or false"));
}

TEST(CliDecide, ManyLinesAnswerInOrderAcrossBatches) {
  std::string facts = TmpFile("f.jsonl",
      R"({"type":"relationship","subject":"clin-1","relation":"treating","object":"pat-1"})" "\n");
  std::string input;
  for (int i = 0; i < 1000; ++i) {
    if (i % 97 == 5) {
      input += "{not json\n";
    } else {
      const std::string patient = i % 2 == 0 ? "pat-1" : "pat-2";  // permit, deny
      input += R"({"at":"2026-03-10T10:00:00+01:00","actor":{"id":"clin-1","role":"clinician"},"patient":")" +
               patient + R"(","action":"read","category":"medical","purpose":"treatment"})" "\n";
    }
  }
  Shell r = Toegang("decide --facts " + facts, input);
  EXPECT_EQ(r.status, 2);
  std::istringstream lines(r.out);
  std::string line;
  int i = 0;
  while (std::getline(lines, line)) {
    json d = json::parse(line);
    if (i % 97 == 5) {
      EXPECT_EQ(d["reasons"], json::array({"invalid_request"})) << "line " << i + 1;
    } else {
      EXPECT_EQ(d["decision"], i % 2 == 0 ? "permit" : "deny") << "line " << i + 1;
    }
    ++i;
  }
  EXPECT_EQ(i, 1000);
}

// A caller that writes one request and waits for its answer gets it without closing its
// end: answers are flushed whenever no more input is waiting.
TEST(CliDecide, AnswersEachRequestWhileTheInputStaysOpen) {
  std::string facts = TmpFile("f.jsonl",
      R"({"type":"relationship","subject":"clin-1","relation":"treating","object":"pat-1"})" "\n");
  int to_child[2];
  int from_child[2];
  ASSERT_EQ(pipe(to_child), 0);
  ASSERT_EQ(pipe(from_child), 0);
  const std::string bin = Runfile("toegang");
  const std::string facts_flag = "--facts=" + facts;
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    dup2(to_child[0], 0);
    dup2(from_child[1], 1);
    close(to_child[1]);
    close(from_child[0]);
    execl(bin.c_str(), bin.c_str(), "decide", facts_flag.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  close(to_child[0]);
  close(from_child[1]);
  const std::string request =
      R"({"at":"2026-03-10T10:00:00+01:00","actor":{"id":"clin-1","role":"clinician"},"patient":"pat-1","action":"read","category":"medical","purpose":"treatment"})" "\n";
  std::string got;
  for (int round = 1; round <= 3; ++round) {
    ASSERT_EQ(write(to_child[1], request.data(), request.size()), static_cast<ssize_t>(request.size()));
    // Wait (at most 20 s) for the answer's newline.
    while (std::count(got.begin(), got.end(), '\n') < round) {
      pollfd p{from_child[0], POLLIN, 0};
      ASSERT_EQ(poll(&p, 1, 20000), 1) << "no answer to request " << round << " while the input is open";
      char buf[4096];
      ssize_t n = read(from_child[0], buf, sizeof buf);
      ASSERT_GT(n, 0);
      got.append(buf, static_cast<size_t>(n));
    }
  }
  close(to_child[1]);
  int status = 0;
  waitpid(pid, &status, 0);
  close(from_child[0]);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  EXPECT_EQ(std::count(got.begin(), got.end(), '\n'), 3);
  EXPECT_THAT(got, HasSubstr(R"("decision":"permit")"));
}

TEST(CliDecide, BadFactsFileNamesTheLine) {
  std::string facts = TmpFile("bad.jsonl",
      R"({"type":"person","id":"pat-1","birth_date":"2010-01-01"})" "\n"
      R"({"type":"person","id":"pat-2","birth_date":"2010-02-29"})" "\n");
  Shell r = Toegang("decide --facts " + facts + " 2>&1", "");
  EXPECT_EQ(r.status, 2);
  EXPECT_THAT(r.out, HasSubstr("bad.jsonl:2: person.birth_date: date '2010-02-29' does not exist"));
}

TEST(CliPolicyCheck, BuiltinPacksPass) {
  for (const char* pack : {"policy/packs/wgbo-default.policy", "policy/packs/youth-care-opvoedrijk.policy"}) {
    Shell r = Toegang(std::string("policy check ") + Runfile(pack), "");
    EXPECT_EQ(r.status, 0) << r.out;
    EXPECT_THAT(r.out, HasSubstr(": ok: "));
  }
}

TEST(CliPolicyCheck, ShadowedRuleIsReportedAndRefused) {
  std::string pack = TmpFile("shadow.policy",
      "policy shadow\nversion 1\n"
      "rule any_clinician\n  effect permit\n  role clinician\n  reason quality_review\n  basis gdpr_9_2_h_health_care\n"
      "rule treating_only\n  effect permit\n  role clinician\n  purpose treatment\n  require treating_relationship\n"
      "  reason treating_relationship\n  basis gdpr_9_2_h_health_care\n");
  Shell r = Toegang("policy check " + pack, "");
  EXPECT_EQ(r.status, 2);
  EXPECT_THAT(r.out, HasSubstr("shadow.policy:8: warning: rule treating_only is shadowed by rule any_clinician"));
  // decide refuses it too: a pack that fails the check never decides.
  Shell d = Toegang("decide --facts " + TmpFile("empty.jsonl", "") + " --policy " + pack, "");
  EXPECT_EQ(d.status, 2);
}

TEST(CliPolicyCheck, SyntaxErrorHasLineNumber) {
  std::string pack = TmpFile("typo.policy", "policy typo\nversion 1\nrule a\n  effect permit\n  role nurse\n");
  Shell r = Toegang("policy check " + pack, "");
  EXPECT_EQ(r.status, 2);
  EXPECT_THAT(r.out, HasSubstr("typo.policy:5: error: unknown role 'nurse'"));
}

TEST(Cli, UnknownCommandAndFlagAreBadInput) {
  EXPECT_EQ(Toegang("frobnicate 2>/dev/null", "").status, 2);
  EXPECT_EQ(Toegang("decide --colour=red 2>/dev/null", "").status, 2);
}

// API.md: bad input exits 2 (Abseil's own flag parser would exit 1), naming the flag.
TEST(Cli, AFlagValueThatDoesNotParseIsBadInput) {
  struct Case {
    const char* command;
    const char* flags;
    const char* named;
  } const cases[] = {
      {"serve", "--threads=abc", "--threads"},
      {"serve", "--pin-threads=maybe", "--pin-threads"},
      {"serve", "--io-timeout x", "--io-timeout"},
      {"serve", "--cache-mb=", "--cache-mb"},
      {"decide", "--as-of", "--as-of needs a value"},
      {"decide", "--audit-mode buffered --audit-sync-interval soon", "--audit-sync-interval: 'soon'"},
      {"decide", "--audit-mode buffered --audit-sync-interval 5s", "between 0s and 1s"},
      {"decide", "--audit-sync-interval 10ms", "--audit-sync-interval is for --audit-mode buffered"},
      {"decide", "--audit-mode sometimes", "--audit-mode is durable or buffered"},
  };
  const std::string db = e2e::Tmp("never_opened");
  for (const Case& c : cases) {
    SCOPED_TRACE(c.flags);
    Shell r = Toegang(absl::StrCat(c.command, " --db ", db, " ", c.flags, " 2>&1"), "");
    EXPECT_EQ(r.status, 2) << r.out;
    EXPECT_THAT(r.out, HasSubstr(c.named));
    EXPECT_FALSE(std::filesystem::exists(db)) << "a store was opened";
  }
  // The forms that are fine stay fine.
  EXPECT_EQ(Toegang("decide --facts /dev/null --policy wgbo-default --as-of=2026-01-01T00:00:00Z", "").status, 0);
  EXPECT_EQ(Toegang("decide --facts /dev/null --audit-mode buffered --audit-sync-interval 10ms", "").status, 0);
}

}  // namespace
}  // namespace toegang
