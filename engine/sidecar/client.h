// Copyright toegang authors.
//
// client.h: the C++ client of the sidecar's frame protocol (schemas/wire.fbs), for
// callers that need the lowest latency.
//
//   auto client = toegang::sidecar::Client::ConnectUnix("var/toegang.sock");
//   absl::StatusOr<toegang::sidecar::Answer> a = (*client)->Decide(request);
//   if (a.ok() && a->permitted) { ... }
//
// Pipelining: Send() several requests, then Receive() their answers (matched by id;
// they may arrive in any order). A Client is not thread-safe: one per thread.
#ifndef TOEGANG_ENGINE_SIDECAR_CLIENT_H_
#define TOEGANG_ENGINE_SIDECAR_CLIENT_H_

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/sidecar/wire_codec.h"
#include "model/request.h"

namespace toegang::sidecar {


class Client {
 public:
  // The Unix socket: the server checks who the peer is (its uid and gid).
  static absl::StatusOr<std::unique_ptr<Client>> ConnectUnix(const std::string& path);
  // TCP: `token` (a bearer token with the decide scope) opens the connection; a token
  // the server refuses is PermissionDenied.
  static absl::StatusOr<std::unique_ptr<Client>> ConnectTcp(const std::string& host, int port, const std::string& token);
  ~Client();

  // Sends one request and waits for its answer.
  absl::StatusOr<Answer> Decide(const AccessRequest& request);

  // Sends a request; returns its id.
  absl::StatusOr<uint64_t> Send(const AccessRequest& request);
  // Reads the next answer, whichever it is.
  absl::StatusOr<Answer> Receive();

  // Sends bytes as one length-prefixed frame (tests of malformed frames), or raw bytes
  // with no prefix at all.
  absl::Status SendFrameBytes(const std::string& bytes);
  absl::Status SendRaw(const std::string& bytes);

 private:
  explicit Client(int fd) : fd_(fd) {}
  int fd_;
  uint64_t next_id_ = 1;
};

}  // namespace toegang::sidecar

#endif  // TOEGANG_ENGINE_SIDECAR_CLIENT_H_
