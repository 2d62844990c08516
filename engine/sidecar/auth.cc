// Copyright toegang authors.
#include "engine/sidecar/auth.h"

#include <openssl/crypto.h>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "base/files.h"

namespace toegang::sidecar {
namespace {

constexpr const char* kScopeNames[kScopeCount] = {"decide",       "facts:write", "facts:import", "read:history",
                                                  "read:access-log", "admin",    "metrics"};
constexpr size_t kMinTokenBytes = 16;
// Bounds the limiter's memory under a flood of addresses: past it, the map starts over.
constexpr size_t kMaxTrackedClients = 4096;


}  // namespace

std::optional<Scope> ParseScope(absl::string_view name) {
  for (int i = 0; i < kScopeCount; ++i) {
    if (name == kScopeNames[i]) return static_cast<Scope>(i);
  }
  return std::nullopt;
}

const char* ScopeName(Scope scope) { return kScopeNames[static_cast<int>(scope)]; }

absl::StatusOr<TokenSet> TokenSet::Load(const std::string& path) {
  absl::StatusOr<std::string> text = ReadSecretFile(path);
  if (!text.ok()) return absl::Status(text.status().code(), absl::StrCat("--token-file: ", text.status().message()));
  absl::StatusOr<TokenSet> set = Parse(*text);
  if (!set.ok()) return absl::InvalidArgumentError(absl::StrCat("--token-file ", path, set.status().message()));
  return set;
}

absl::StatusOr<TokenSet> TokenSet::Parse(absl::string_view text) {
  TokenSet set;
  int line_no = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_no;
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || line[0] == '#') continue;
    std::vector<absl::string_view> parts = absl::StrSplit(line, absl::ByAnyChar(" \t"), absl::SkipEmpty());
    if (parts.size() != 2) {
      return absl::InvalidArgumentError(absl::StrCat(":", line_no, ": a line is SCOPES TOKEN (scopes separated by commas)"));
    }
    Scopes scopes = Scopes::None();
    for (absl::string_view name : absl::StrSplit(parts[0], ',')) {
      std::optional<Scope> scope = ParseScope(name);
      if (!scope) {
        return absl::InvalidArgumentError(absl::StrCat(
            ":", line_no, ": unknown scope (scopes: decide, facts:write, facts:import, read:history, read:access-log, "
            "admin, metrics)"));
      }
      scopes.add(*scope);
    }
    if (parts[1].size() < kMinTokenBytes) {
      return absl::InvalidArgumentError(absl::StrCat(":", line_no, ": the token is shorter than ", kMinTokenBytes,
                                                     " bytes (use e.g. 32 random hex digits)"));
    }
    set.entries_.push_back({Sha256Of(parts[1]), scopes});
  }
  if (set.entries_.empty()) return absl::InvalidArgumentError(": holds no token");
  return set;
}

std::optional<Scopes> TokenSet::Find(absl::string_view token) const {
  const Sha256Digest digest = Sha256Of(token);  // every request's: base/sha256.h
  std::optional<Scopes> found;
  for (const Entry& e : entries_) {
    // No early exit: the time does not say which entry matched, or whether one did.
    const bool match = CRYPTO_memcmp(e.digest.data(), digest.data(), digest.size()) == 0;
    if (match && !found) found = e.scopes;
  }
  return found;
}

bool FailureLimiter::Allowed(absl::string_view client, absl::Time now) {
  MutexLock lock(&mu_);
  auto it = clients_.find(client);
  if (it == clients_.end()) return true;
  if (now - it->second.start >= window_) {
    clients_.erase(it);
    return true;
  }
  return it->second.failures < max_failures_;
}

void FailureLimiter::Failed(absl::string_view client, absl::Time now) {
  MutexLock lock(&mu_);
  if (clients_.size() >= kMaxTrackedClients && !clients_.contains(client)) clients_.clear();
  Window& w = clients_[client];
  if (w.failures == 0 || now - w.start >= window_) w = Window{now, 0};
  ++w.failures;
}

}  // namespace toegang::sidecar
