// Copyright toegang authors.
//
// socket_server.h: the frame protocol (schemas/wire.fbs) on a Unix socket and/or a TCP
// port. One I/O thread multiplexes every connection (epoll); a small pool of workers
// decides and answers. Frames on one connection may be pipelined; answers carry the
// request's id and may come back in any order.
//
// Who: a Unix-socket peer must run as one of `allow_uids` or in one of `allow_gids`
// (SO_PEERCRED; both empty: the server's own uid only), or it is closed at once; the
// socket is created 0660 (in a directory created 0750 when missing). A TCP connection's
// first frame must be a Hello with a token holding the decide scope (auth.h). The
// socket path is never taken from a live server, and only a stale socket is replaced:
// anything else at the path is refused.
//
// Abuse: a frame longer than the limit, or one that fails verification, is answered
// with an error frame (the connection is closed when the length itself is too large,
// since the stream can no longer be trusted); a connection idle for `idle_timeout`, or
// one that dribbles a frame slower than `frame_timeout`, is closed; a client that does
// not read its answers within `write_timeout` is closed. None of this affects the other
// connections.
#ifndef TOEGANG_ENGINE_SIDECAR_SOCKET_SERVER_H_
#define TOEGANG_ENGINE_SIDECAR_SOCKET_SERVER_H_

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "engine/sidecar/service.h"

namespace toegang::sidecar {

struct SocketServerOptions {
  std::string unix_path;      // empty: no Unix socket
  std::string tcp_address;    // "HOST:PORT"; empty: no TCP; port 0 picks a free one
  int workers = 8;
  // Answer on the I/O thread instead of a worker: for a buffered access log, whose
  // decisions never wait for a disk sync. A client that stops reading then stalls the
  // I/O thread for up to `write_timeout`, so it is only for trusted local callers.
  bool inline_decisions = false;
  size_t max_connections = 1024;
  std::vector<uid_t> allow_uids;  // Unix-socket peers allowed by uid
  std::vector<gid_t> allow_gids;  // ... or by (primary) gid
  absl::Duration idle_timeout = absl::Seconds(60);
  absl::Duration frame_timeout = absl::Seconds(5);
  absl::Duration write_timeout = absl::Seconds(5);
};

// Thread-safe. The caller owns the server; destroying it shuts it down.
class SocketServer {
 public:
  // Binds and starts serving on its own threads.
  // REQUIRES: `service` outlives the server.
  static absl::StatusOr<std::unique_ptr<SocketServer>> Start(Service* service, SocketServerOptions options);
  virtual ~SocketServer() = default;

  // The TCP port bound (after "HOST:0"), or 0.
  virtual int tcp_port() const = 0;

  // Stops accepting, answers every frame already read, closes every connection.
  // Idempotent.
  virtual void Shutdown() = 0;
};

}  // namespace toegang::sidecar

#endif  // TOEGANG_ENGINE_SIDECAR_SOCKET_SERVER_H_
