// Copyright toegang authors.
//
// The packs compiled into the binary (policy/packs/*.policy, embedded by the
// `builtin_packs` genrule), compiled once on first use.
#include <map>
#include <string>

#include "absl/strings/str_cat.h"
#include "base/sync.h"
#include "policy/policy.h"

namespace toegang {
namespace {

struct BuiltinPack {
  const char* name;
  const char* text;
};

#include "policy/builtin_packs.inc"

}  // namespace

const char* BuiltinPolicyText(absl::string_view name) {
  for (const BuiltinPack& p : kBuiltinPacks) {
    if (name == p.name) return p.text;
  }
  return nullptr;
}

std::vector<std::string> BuiltinPolicyNames() {
  std::vector<std::string> names;
  for (const BuiltinPack& p : kBuiltinPacks) names.emplace_back(p.name);
  return names;
}

absl::StatusOr<std::shared_ptr<const Policy>> BuiltinPolicy(absl::string_view name) {
  static Mutex mu(absl::kConstInit);
  static auto* cache = new std::map<std::string, std::shared_ptr<const Policy>, std::less<>>;
  MutexLock lock(&mu);
  auto it = cache->find(name);
  if (it != cache->end()) return it->second;
  const char* text = BuiltinPolicyText(name);
  if (text == nullptr) {
    return absl::NotFoundError(absl::StrCat("no built-in policy pack '", name, "'"));
  }
  mu.Unlock();  // compiling `extends` re-enters BuiltinPolicyText, not this cache
  absl::StatusOr<std::shared_ptr<const Policy>> compiled = CompilePolicy(text);
  mu.Lock();
  if (!compiled.ok()) return compiled.status();
  (*cache)[std::string(name)] = *compiled;
  return *compiled;
}

}  // namespace toegang
