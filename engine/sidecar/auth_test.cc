// Copyright toegang authors.
#include "engine/sidecar/auth.h"

#include "gtest/gtest.h"

namespace toegang::sidecar {
namespace {

TEST(TokenSet, ParsesScopesAndFindsTokens) {
  absl::StatusOr<TokenSet> set = TokenSet::Parse(
      "# backend\n"
      "decide,facts:write 9f2c6a51d0b84e4f8a3b6c1e7d20f5a9\n"
      "\n"
      "  read:history,read:access-log\t4be1a2c3d4e5f60718293a4b5c6d7e8f  \n"
      "admin,metrics 00112233445566778899aabbccddeeff\n");
  ASSERT_TRUE(set.ok()) << set.status();
  EXPECT_EQ(set->size(), 3u);
  std::optional<Scopes> backend = set->Find("9f2c6a51d0b84e4f8a3b6c1e7d20f5a9");
  ASSERT_TRUE(backend.has_value());
  EXPECT_TRUE(backend->has(Scope::kDecide));
  EXPECT_TRUE(backend->has(Scope::kFactsWrite));
  EXPECT_FALSE(backend->has(Scope::kFactsImport));
  EXPECT_FALSE(backend->has(Scope::kAdmin));
  std::optional<Scopes> reader = set->Find("4be1a2c3d4e5f60718293a4b5c6d7e8f");
  ASSERT_TRUE(reader.has_value());
  EXPECT_TRUE(reader->has(Scope::kReadAccessLog));
  EXPECT_FALSE(reader->has(Scope::kDecide));
  EXPECT_FALSE(set->Find("9f2c6a51d0b84e4f8a3b6c1e7d20f5a").has_value()) << "a prefix is not the token";
  EXPECT_FALSE(set->Find("").has_value());
  EXPECT_FALSE(set->Find("9F2C6A51D0B84E4F8A3B6C1E7D20F5A9").has_value());
}

TEST(TokenSet, BadFilesNameTheLineNeverTheToken) {
  struct Case {
    const char* name;
    const char* text;
    const char* message;
  };
  const Case cases[] = {
      {"unknown scope", "decide,root 9f2c6a51d0b84e4f8a3b6c1e7d20f5a9\n", ":1: unknown scope"},
      {"short token", "\ndecide shorttoken\n", ":2: the token is shorter than 16 bytes"},
      {"three fields", "decide 9f2c6a51d0b84e4f8a3b6c1e7d20f5a9 extra\n", ":1: a line is SCOPES TOKEN"},
      {"no token at all", "# nothing\n", "holds no token"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    absl::StatusOr<TokenSet> set = TokenSet::Parse(c.text);
    ASSERT_FALSE(set.ok());
    EXPECT_NE(set.status().message().find(c.message), std::string::npos) << set.status();
    EXPECT_EQ(set.status().message().find("9f2c6a51"), std::string::npos) << "a token is never part of an error";
  }
}

TEST(FailureLimiter, RefusesAClientThatFailsTooOftenForTheRestOfTheWindow) {
  FailureLimiter limiter(3, absl::Seconds(1));
  const absl::Time t0 = absl::FromUnixSeconds(1000);
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(limiter.Allowed("10.0.0.1", t0));
    limiter.Failed("10.0.0.1", t0);
  }
  EXPECT_FALSE(limiter.Allowed("10.0.0.1", t0 + absl::Milliseconds(500)));
  EXPECT_TRUE(limiter.Allowed("10.0.0.2", t0 + absl::Milliseconds(500))) << "other clients go on";
  EXPECT_TRUE(limiter.Allowed("10.0.0.1", t0 + absl::Seconds(1)));
}

TEST(Scopes, NamesRoundTrip) {
  for (int i = 0; i < kScopeCount; ++i) {
    Scope s = static_cast<Scope>(i);
    EXPECT_EQ(ParseScope(ScopeName(s)), s);
  }
  EXPECT_FALSE(ParseScope("Decide").has_value());
}

}  // namespace
}  // namespace toegang::sidecar
