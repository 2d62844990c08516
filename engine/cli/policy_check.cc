// Copyright toegang authors.
//
// toegang policy check FILE: errors (with line numbers), rules that can never match,
// rules shadowed by earlier ones, and overlaps. Exit 0 when the pack is usable, 2 when
// it has errors or warnings (a dead rule in a consent policy is a bug).
#include <fstream>
#include <iostream>

#include "engine/cli/cli.h"
#include "policy/internal/rules.h"

namespace toegang::cli {

int PolicyCheck(const std::vector<std::string>& args) {
  if (args.size() != 1) {
    Complain("usage: toegang policy check FILE");
    return kBadInput;
  }
  const std::string& path = args[0];
  std::string text;
  std::ifstream probe(path);
  if (!probe && BuiltinPolicyText(path) != nullptr) {
    text = BuiltinPolicyText(path);
  } else {
    absl::StatusOr<std::string> read = ReadFile(path);
    if (!read.ok()) {
      Complain(std::string(read.status().message()));
      return kBadInput;
    }
    text = *std::move(read);
  }
  std::vector<PolicyDiagnostic> diagnostics = CheckPolicy(text);
  int errors = 0, warnings = 0, notes = 0;
  for (const PolicyDiagnostic& d : diagnostics) {
    std::cout << FormatDiagnostic(path, d) << "\n";
    switch (d.severity) {
      case PolicyDiagnostic::Severity::kError: ++errors; break;
      case PolicyDiagnostic::Severity::kWarning: ++warnings; break;
      case PolicyDiagnostic::Severity::kNote: ++notes; break;
    }
  }
  if (errors + warnings > 0) {
    std::cout << path << ": " << errors << " error(s), " << warnings << " warning(s): the pack is refused\n";
    return kBadInput;
  }
  absl::StatusOr<std::shared_ptr<const Policy>> policy = CompilePolicy(text);
  if (!policy.ok()) {
    std::cout << path << ": " << policy.status().message() << "\n";
    return kBadInput;
  }
  std::cout << path << ": ok: " << (*policy)->id() << ", " << (*policy)->rules().size() << " rules, " << notes
            << " note(s)\n";
  return kOk;
}

}  // namespace toegang::cli
