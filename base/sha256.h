// Copyright toegang authors.
//
// sha256.h: SHA-256 with Nettle, its context a plain struct on the stack. Both Nettle
// and OpenSSL hash with the CPU's SHA instructions, but OpenSSL 3 looks its
// implementation up in the provider for every one-shot or EVP digest, which was most of
// a short digest's cost: an access-log record's link, a bearer token on every request
// (bench/RESULTS.md, "The chain hashed with Nettle", "Authenticating a request and
// reading its instant").
#ifndef TOEGANG_BASE_SHA256_H_
#define TOEGANG_BASE_SHA256_H_

#include <nettle/sha2.h>

#include <array>
#include <cstddef>
#include <cstdint>

#include "absl/strings/string_view.h"

namespace toegang {

inline constexpr size_t kSha256Bytes = SHA256_DIGEST_SIZE;
using Sha256Digest = std::array<unsigned char, kSha256Bytes>;

// SHA-256(a || b) into `out` (kSha256Bytes).
inline void Sha256Into(absl::string_view a, absl::string_view b, unsigned char* out) {
  sha256_ctx ctx;
  sha256_init(&ctx);
  sha256_update(&ctx, a.size(), reinterpret_cast<const uint8_t*>(a.data()));
  sha256_update(&ctx, b.size(), reinterpret_cast<const uint8_t*>(b.data()));
  sha256_digest(&ctx, kSha256Bytes, out);
}

// SHA-256(a || b).
inline Sha256Digest Sha256Of(absl::string_view a, absl::string_view b = absl::string_view()) {
  Sha256Digest d;
  Sha256Into(a, b, d.data());
  return d;
}

}  // namespace toegang

#endif  // TOEGANG_BASE_SHA256_H_
