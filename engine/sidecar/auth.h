// Copyright toegang authors.
//
// auth.h: who may talk to the sidecar. toegang decides on what its caller says about
// the actor, so the caller must be the backend: every HTTP endpoint but /healthz and
// every TCP frame connection needs a bearer token, and the Unix socket checks its
// peer's uid and gid (SO_PEERCRED).
//
// A token file holds one token per line, after the scopes it grants:
//
//   # SCOPES TOKEN
//   decide,facts:write 9f2c6a51d0b84e4f8a3b6c1e7d20f5a9
//   read:history,read:access-log 4be1...
//
// Scopes: decide (POST /v1/decisions, frames), facts:write (POST /v1/facts),
// facts:import (facts carrying recorded_at, for imports of older records),
// read:history, read:access-log, admin (POST /v1/policy/reload), metrics (GET /metrics).
// Tokens are at least 16 bytes; the file must be private to its owner (0600).
//
// Thread-safe once built (TokenSet is immutable; FailureLimiter locks).
#ifndef TOEGANG_ENGINE_SIDECAR_AUTH_H_
#define TOEGANG_ENGINE_SIDECAR_AUTH_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "base/sha256.h"
#include "base/sync.h"

namespace toegang::sidecar {

enum class Scope : uint8_t {
  kDecide,
  kFactsWrite,
  kFactsImport,
  kReadHistory,
  kReadAccessLog,
  kAdmin,
  kMetrics,
};
inline constexpr int kScopeCount = 7;

// A set of scopes.
class Scopes {
 public:
  static Scopes All() { return Scopes((1u << kScopeCount) - 1); }
  static Scopes None() { return Scopes(0); }
  static Scopes Of(Scope s) { return Scopes(1u << static_cast<int>(s)); }
  bool has(Scope s) const { return (bits_ & (1u << static_cast<int>(s))) != 0; }
  void add(Scope s) { bits_ |= 1u << static_cast<int>(s); }
  bool empty() const { return bits_ == 0; }

 private:
  explicit Scopes(uint32_t bits) : bits_(bits) {}
  uint32_t bits_;
};

// "facts:write" and so on; nullopt for anything else.
std::optional<Scope> ParseScope(absl::string_view name);
const char* ScopeName(Scope scope);

// Who is calling, as the transport established it.
struct Caller {
  bool authenticated = false;
  Scopes scopes = Scopes::None();
  // In-process callers (tests, the library): every scope.
  static Caller Trusted() { return Caller{true, Scopes::All()}; }
};

class TokenSet {
 public:
  // Reads a token file; refused when the group or others may read it, or when a line
  // does not parse (the error names the line, never the token).
  static absl::StatusOr<TokenSet> Load(const std::string& path);
  static absl::StatusOr<TokenSet> Parse(absl::string_view text);

  // The scopes `token` grants, or nullopt. Takes the same time whichever token (if any)
  // matches and wherever two tokens first differ: every stored token is compared, by
  // its SHA-256, with CRYPTO_memcmp.
  std::optional<Scopes> Find(absl::string_view token) const;

  size_t size() const { return entries_.size(); }

 private:
  struct Entry {
    Sha256Digest digest;  // SHA-256 of the token
    Scopes scopes;
  };
  std::vector<Entry> entries_;
};

// Counts failed authentications per client address in windows of `window`; past
// `max_failures` in one window the client is over the limit until the window ends.
// (The service answers such failures 429; tokens of 16 bytes or more cannot be guessed
// at any rate, so the limit is there to make a flood cheap to spot, not to lock out.)
class FailureLimiter {
 public:
  FailureLimiter(int max_failures = 10, absl::Duration window = absl::Seconds(1))
      : max_failures_(max_failures), window_(window) {}

  // Whether `client` may try now.
  bool Allowed(absl::string_view client, absl::Time now);
  // Records a failed try.
  void Failed(absl::string_view client, absl::Time now);

 private:
  struct Window {
    absl::Time start;
    int failures = 0;
  };
  const int max_failures_;
  const absl::Duration window_;
  Mutex mu_;
  absl::flat_hash_map<std::string, Window> clients_ ABSL_GUARDED_BY(mu_);
};

}  // namespace toegang::sidecar

#endif  // TOEGANG_ENGINE_SIDECAR_AUTH_H_
