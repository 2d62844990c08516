// OpenSSL's SHA-256 (the audit chain) and nlohmann/json (the JSON front) from Debian.
#include <openssl/sha.h>

#include <string>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace {

TEST(CryptoSmoke, Sha256KnownAnswer) {
  const std::string input = "abc";
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(input.data()), input.size(), digest);
  static const char kHex[] = "0123456789abcdef";
  std::string hex;
  for (unsigned char b : digest) {
    hex.push_back(kHex[b >> 4]);
    hex.push_back(kHex[b & 15]);
  }
  EXPECT_EQ(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(JsonSmoke, ParsesAndRejects) {
  auto j = nlohmann::json::parse(R"({"decision":"permit","reasons":["consent"]})");
  EXPECT_EQ(j["decision"], "permit");
  EXPECT_FALSE(nlohmann::json::accept(R"({"decision":)"));
}

}  // namespace
