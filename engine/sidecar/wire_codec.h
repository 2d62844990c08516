// Copyright toegang authors.
//
// wire_codec.h: the frame protocol (schemas/wire.fbs) in one place, for the server
// (socket_server, service) and the client alike: framing, requests, hellos, answers.
//
//   client                                  server
//   EncodeDecideRequest(id, request)  --->  DecodeRequestFrame(frame)
//   DecodeResponse(frame)             <---  EncodeDecisionResponse(id, decision, decision_id)
//                                           EncodeErrorResponse(id, message)
//
// Every decode verifies the FlatBuffer first and checks what the verifier cannot
// (enum values, ids, text): bytes from a socket are never trusted. Thread-compatible.
#ifndef TOEGANG_ENGINE_SIDECAR_WIRE_CODEC_H_
#define TOEGANG_ENGINE_SIDECAR_WIRE_CODEC_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "model/request.h"

namespace toegang::sidecar {

// --- Framing: a 4-byte little-endian length, then the FlatBuffer ----------------------

inline constexpr size_t kFrameHeaderBytes = 4;
std::string WithLength(absl::string_view frame);
uint32_t FrameLength(const char header[kFrameHeaderBytes]);

// --- Client to server -------------------------------------------------------------------

// A Request frame deciding `request`, answered under `id`.
std::string EncodeDecideRequest(uint64_t id, const AccessRequest& request);

// A Request frame carrying the hello (the bearer token a TCP connection opens with).
std::string EncodeHello(absl::string_view token);

// A Request frame as the server reads it.
struct RequestFrame {
  uint64_t id = 0;                   // 0 when the frame is unreadable
  std::optional<std::string> hello;  // the token, when the frame is a hello
  std::optional<AccessRequest> decide;
};

// Decodes a Request frame. InvalidArgument naming the field when a decide request is
// malformed (the frame's id, if readable, in `*id_out`): the server answers it with an
// error Response under that id. The request's free text is returned as sent (the
// caller redacts it).
absl::StatusOr<RequestFrame> DecodeRequestFrame(absl::string_view frame, uint64_t* id_out);

// --- Server to client -------------------------------------------------------------------

// A Response frame for `decision` (its reasons, basis, obligations, consents, band).
std::string EncodeDecisionResponse(uint64_t id, const Decision& decision, absl::string_view decision_id);

// A Response frame with no decision: `message` says what was wrong ("" for a hello
// accepted).
std::string EncodeErrorResponse(uint64_t id, absl::string_view message);

// A Response as the client reads it.
struct Answer {
  uint64_t id = 0;
  bool permitted = false;
  std::vector<Reason> reasons;
  std::optional<LegalBasis> legal_basis;
  std::vector<Obligation> obligations;
  std::vector<std::string> consents;
  std::optional<AgeBand> age_band;
  std::string policy;
  std::string decision_id;
  std::string rule;
  std::string error;  // the server's complaint about the request frame, or the decision's error
};

// Decodes a Response frame. DataLoss when it fails verification.
absl::StatusOr<Answer> DecodeResponse(absl::string_view frame);

}  // namespace toegang::sidecar

#endif  // TOEGANG_ENGINE_SIDECAR_WIRE_CODEC_H_
