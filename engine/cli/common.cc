// Copyright toegang authors.
#include <fstream>
#include <iostream>
#include <sstream>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "engine/cli/cli.h"
#include "engine/fact_store.h"
#include "model/json.h"
#include "model/time.h"

ABSL_FLAG(std::string, audit_mode, "durable",
          "decide: durable (each decision returns once its access-log record is synced) or "
          "buffered (records are synced in batches in the background)");

namespace toegang::cli {

void Complain(const std::string& message) { std::cerr << "toegang: " << message << "\n"; }

absl::StatusOr<absl::Time> AsOfFlag() {
  std::string s = absl::GetFlag(FLAGS_as_of);
  if (s.empty()) return absl::InfiniteFuture();
  absl::StatusOr<absl::Time> t = ParseInstant(s);
  if (!t.ok()) return absl::InvalidArgumentError(absl::StrCat("--as-of: ", t.status().message()));
  return *t;
}

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read '", path, "'"));
  std::stringstream buf;
  buf << in.rdbuf();
  return buf.str();
}

absl::StatusOr<std::shared_ptr<const Policy>> LoadPolicyFlag() {
  std::string name = absl::GetFlag(FLAGS_policy);
  if (name.empty()) return BuiltinPolicy("wgbo-default");
  std::ifstream probe(name);
  if (!probe && BuiltinPolicyText(name) != nullptr) return BuiltinPolicy(name);
  absl::StatusOr<std::string> text = ReadFile(name);
  if (!text.ok()) return absl::InvalidArgumentError(absl::StrCat("--policy: ", text.status().message()));
  absl::StatusOr<std::shared_ptr<const Policy>> policy = CompilePolicy(*text);
  if (!policy.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("--policy ", name, " does not pass the check:\n",
                                                   policy.status().message()));
  }
  return policy;
}

std::string AtLine(const std::string& path, const std::vector<int>& lines, absl::string_view message) {
  absl::string_view rest;
  int n = BadFactPosition(message, &rest);
  if (n >= 1 && n <= static_cast<int>(lines.size())) return absl::StrCat(path, ":", lines[n - 1], ": ", rest);
  return absl::StrCat(path, ": ", message);
}

absl::StatusOr<std::vector<Fact>> ReadFactsFile(const std::string& path, std::vector<int>* lines) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read '", path, "'"));
  std::vector<Fact> facts;
  std::string line;
  int line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    absl::StatusOr<Fact> fact = ParseFactJson(line);
    if (!fact.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(path, ":", line_no, ": ", fact.status().message()));
    }
    facts.push_back(*std::move(fact));
    if (lines) lines->push_back(line_no);
  }
  return facts;
}

}  // namespace toegang::cli
