// Copyright toegang authors.
//
// net.h (internal to the sidecar): what the HTTP front, the frame server and the frame
// client share about sockets (the frames themselves: wire_codec.h).
//
// Thread-compatible (no shared state).
#ifndef TOEGANG_ENGINE_SIDECAR_NET_H_
#define TOEGANG_ENGINE_SIDECAR_NET_H_

#include <netinet/in.h>

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace toegang::sidecar {

// "HOST:PORT" with an IPv4 HOST (or localhost) and a PORT of 0..65535 (0: any free
// one). Errors name `flag` (e.g. "--http").
absl::StatusOr<sockaddr_in> ParseHostPort(absl::string_view address, absl::string_view flag);

// Whether the host of "HOST:PORT" is this machine only (127.0.0.0/8, localhost).
bool IsLoopback(absl::string_view address);

// Sends all of `data` (MSG_NOSIGNAL; a socket's send timeout bounds each call). False
// when the peer is gone or too slow.
bool SendAll(int fd, const char* data, size_t n);
// Receives exactly `n` bytes; false on end of stream or an error.
bool ReceiveAll(int fd, char* data, size_t n);

}  // namespace toegang::sidecar

#endif  // TOEGANG_ENGINE_SIDECAR_NET_H_
