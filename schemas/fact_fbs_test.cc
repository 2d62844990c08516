// The stored fact schema round-trips, and the Verifier rejects corrupt bytes.
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "schemas/fact_generated.h"

namespace toegang::schema {
namespace {

std::vector<uint8_t> BuildConsent() {
  flatbuffers::FlatBufferBuilder fbb;
  auto to = CreatePartyDirect(fbb, PartyKind::actor, "clin-9");
  std::vector<flatbuffers::Offset<flatbuffers::String>> grantors = {fbb.CreateString("pat-1")};
  auto consent = CreateConsentDirect(fbb, "con-1", "pat-1", &grantors, to,
                                     /*purposes=*/0b100, /*categories=*/0b1,
                                     /*actions=*/0b101, int64_t{1772319600000000},
                                     flatbuffers::nullopt, "intake form 2026-03-01");
  auto fact = CreateStoredFact(fbb, 42, 1772323200000000, flatbuffers::nullopt,
                               FactBody::Consent, consent.Union());
  FinishStoredFactBuffer(fbb, fact);
  return {fbb.GetBufferPointer(), fbb.GetBufferPointer() + fbb.GetSize()};
}

bool Verifies(const std::vector<uint8_t>& bytes) {
  flatbuffers::Verifier verifier(bytes.data(), bytes.size());
  return VerifyStoredFactBuffer(verifier);
}

TEST(FactSchema, RoundTrip) {
  std::vector<uint8_t> bytes = BuildConsent();
  ASSERT_TRUE(Verifies(bytes));
  const StoredFact* fact = GetStoredFact(bytes.data());
  EXPECT_EQ(fact->seq(), 42u);
  EXPECT_FALSE(fact->recorded_at_us().has_value());
  ASSERT_EQ(fact->body_type(), FactBody::Consent);
  const Consent* consent = fact->body_as_Consent();
  EXPECT_EQ(consent->id()->str(), "con-1");
  EXPECT_EQ(consent->granted_by()->Get(0)->str(), "pat-1");
  EXPECT_EQ(consent->to()->kind(), PartyKind::actor);
  EXPECT_EQ(consent->to()->id()->str(), "clin-9");
  EXPECT_EQ(consent->actions(), 0b101u);
  EXPECT_EQ(consent->from_us().value(), 1772319600000000);
  EXPECT_FALSE(consent->until_us().has_value());
}

TEST(FactSchema, VerifierRejectsGarbageAndTruncation) {
  std::vector<uint8_t> bytes = BuildConsent();
  // Truncated at every length: accepted only when the cut removed nothing but trailing
  // alignment padding, and then it decodes to the very same fact.
  int rejected = 0;
  for (size_t n = 0; n < bytes.size(); ++n) {
    std::vector<uint8_t> cut(bytes.begin(), bytes.begin() + n);
    if (!Verifies(cut)) {
      ++rejected;
      continue;
    }
    const Consent* c = GetStoredFact(cut.data())->body_as_Consent();
    ASSERT_NE(c, nullptr) << "truncated to " << n;
    EXPECT_EQ(c->evidence()->str(), "intake form 2026-03-01") << "truncated to " << n;
  }
  EXPECT_GT(rejected, static_cast<int>(bytes.size()) - 8);
  // Random garbage of the same size: rejected.
  std::mt19937 rng(7);
  std::vector<uint8_t> garbage(bytes.size());
  for (auto& b : garbage) b = static_cast<uint8_t>(rng());
  EXPECT_FALSE(Verifies(garbage));
  // An offset pointing outside the buffer: rejected.
  std::vector<uint8_t> bad = bytes;
  bad[0] = 0xff;
  bad[1] = 0xff;
  EXPECT_FALSE(Verifies(bad));
}

TEST(FactSchema, WrongFileIdentifierIsNotAFact) {
  std::vector<uint8_t> bytes = BuildConsent();
  ASSERT_TRUE(StoredFactBufferHasIdentifier(bytes.data()));
  bytes[4] = 'X';
  EXPECT_FALSE(StoredFactBufferHasIdentifier(bytes.data()));
  EXPECT_FALSE(Verifies(bytes));
}

}  // namespace
}  // namespace toegang::schema
