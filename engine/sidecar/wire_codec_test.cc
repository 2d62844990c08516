// Copyright toegang authors.
//
// The frame protocol's codec: what the client encodes the server decodes unchanged,
// and the other way; what a frame cannot carry is refused, naming the field.
#include "engine/sidecar/wire_codec.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "model/json.h"

namespace toegang::sidecar {
namespace {

using ::testing::HasSubstr;

AccessRequest Disclose() {
  absl::StatusOr<AccessRequest> r = ParseRequestJson(
      R"({"at":"2026-03-10T10:00:00+01:00","actor":{"id":"clin-1","role":"clinician","organization":"praktijk-a"},)"
      R"("patient":"pat-1","action":"disclose","category":"medical","purpose":"legal_obligation",)"
      R"("emergency":{"justification":"unconscious"},"legal_order":"vordering 12",)"
      R"("recipient":{"role":"insurer"}})");
  EXPECT_TRUE(r.ok()) << r.status();
  return *r;
}

TEST(WireCodec, FramingRoundTrips) {
  const std::string framed = WithLength("abc");
  ASSERT_EQ(framed.size(), kFrameHeaderBytes + 3);
  EXPECT_EQ(FrameLength(framed.data()), 3u);
  EXPECT_EQ(framed.substr(kFrameHeaderBytes), "abc");
  EXPECT_EQ(FrameLength(WithLength(std::string(70000, 'x')).data()), 70000u);
}

TEST(WireCodec, ARequestReadsAsItWasWritten) {
  const AccessRequest sent = Disclose();
  uint64_t id = 0;
  absl::StatusOr<RequestFrame> got = DecodeRequestFrame(EncodeDecideRequest(42, sent), &id);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(id, 42u);
  EXPECT_EQ(got->id, 42u);
  EXPECT_FALSE(got->hello.has_value());
  ASSERT_TRUE(got->decide.has_value());
  const AccessRequest& r = *got->decide;
  EXPECT_EQ(r.at, sent.at);
  EXPECT_EQ(r.actor.id, "clin-1");
  EXPECT_EQ(r.actor.role, Role::kClinician);
  EXPECT_EQ(r.actor.organization, "praktijk-a");
  EXPECT_EQ(r.patient, "pat-1");
  EXPECT_EQ(r.action, sent.action);
  EXPECT_EQ(r.category, sent.category);
  EXPECT_EQ(r.purpose, sent.purpose);
  EXPECT_TRUE(r.emergency);
  EXPECT_EQ(r.emergency_justification, "unconscious");
  EXPECT_EQ(r.legal_order, sent.legal_order);
  ASSERT_TRUE(r.recipient.has_value());
  EXPECT_EQ(*r.recipient, *sent.recipient);
  EXPECT_EQ(r.at_least, "");
}

TEST(WireCodec, AConsistencyTokenTravelsWithTheRequest) {
  AccessRequest sent = Disclose();
  sent.at_least = "tg1.0123456789abcdef0123456789abcdef.7";
  uint64_t id = 0;
  absl::StatusOr<RequestFrame> got = DecodeRequestFrame(EncodeDecideRequest(1, sent), &id);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->decide->at_least, sent.at_least);
  sent.at_least = std::string(200, 'x');
  absl::StatusOr<RequestFrame> long_token = DecodeRequestFrame(EncodeDecideRequest(2, sent), &id);
  EXPECT_FALSE(long_token.ok());
  EXPECT_THAT(std::string(long_token.status().message()), ::testing::HasSubstr("at_least"));
}

TEST(WireCodec, AHelloReadsAsItsToken) {
  uint64_t id = 0;
  absl::StatusOr<RequestFrame> got = DecodeRequestFrame(EncodeHello("token-123"), &id);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->hello, "token-123");
  EXPECT_FALSE(got->decide.has_value());
}

TEST(WireCodec, WhatAFrameCannotCarryIsRefusedByName) {
  uint64_t id = 0;
  EXPECT_THAT(std::string(DecodeRequestFrame("not a flatbuffer", &id).status().message()),
              HasSubstr("fails FlatBuffers verification"));
  EXPECT_EQ(id, 0u);
  AccessRequest bad = Disclose();
  bad.actor.id = "clin\x01";
  absl::StatusOr<RequestFrame> got = DecodeRequestFrame(EncodeDecideRequest(7, bad), &id);
  EXPECT_EQ(got.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(got.status().message()), HasSubstr("actor.id"));
  EXPECT_EQ(id, 7u);  // answered under its id
  bad = Disclose();
  bad.at = absl::FromUnixSeconds(-7000000000);  // 1748
  EXPECT_THAT(std::string(DecodeRequestFrame(EncodeDecideRequest(8, bad), &id).status().message()),
              HasSubstr("at: outside"));
  bad = Disclose();
  bad.recipient = Party{Party::Kind::kActor, "", Role::kPatient};
  EXPECT_THAT(std::string(DecodeRequestFrame(EncodeDecideRequest(9, bad), &id).status().message()),
              HasSubstr("recipient.id"));
}

TEST(WireCodec, AnAnswerReadsAsTheDecisionWasWritten) {
  Decision d;
  d.effect = Effect::kPermit;
  d.reasons = {Reason::kTreatingRelationship};
  d.legal_basis = LegalBasis::kHealthCare;
  d.obligations = {Obligation::kLogAccess};
  d.consents = {"con-1", "con-2"};
  d.age_band = AgeBand::kAdult;
  d.policy = "wgbo-default@1";
  d.rule = "treating_clinician";
  absl::StatusOr<Answer> a = DecodeResponse(EncodeDecisionResponse(5, d, "dec-5"));
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->id, 5u);
  EXPECT_EQ(a->permitted, d.permitted());
  EXPECT_THAT(a->reasons, ::testing::ElementsAre(Reason::kTreatingRelationship));
  EXPECT_EQ(a->legal_basis, d.legal_basis);
  EXPECT_THAT(a->obligations, ::testing::ElementsAre(Obligation::kLogAccess));
  EXPECT_THAT(a->consents, ::testing::ElementsAre("con-1", "con-2"));
  EXPECT_EQ(a->age_band, AgeBand::kAdult);
  EXPECT_EQ(a->policy, "wgbo-default@1");
  EXPECT_EQ(a->decision_id, "dec-5");
  EXPECT_EQ(a->rule, "treating_clinician");
  absl::StatusOr<Answer> refused = DecodeResponse(EncodeErrorResponse(6, "patient: empty"));
  ASSERT_TRUE(refused.ok());
  EXPECT_EQ(refused->id, 6u);
  EXPECT_FALSE(refused->permitted);
  EXPECT_EQ(refused->error, "patient: empty");
  EXPECT_EQ(DecodeResponse("garbage").status().code(), absl::StatusCode::kDataLoss);
}

}  // namespace
}  // namespace toegang::sidecar
