// Copyright toegang authors.
//
// http_server.h: the sidecar's HTTP/JSON front (API.md "Sidecar") on GNU libmicrohttpd:
// a small pool of threads, each running an epoll loop over many keep-alive connections;
// a request is handled in the thread that read it (no handoff). Routes call Service.
//
// Who: every request but GET /healthz must carry `Authorization: Bearer TOKEN` with a
// token of the service's token set (auth.h): 401 without one, before the body is read;
// 429 while the client's address has failed too often. With TLS (certificate and key
// given) the server speaks HTTPS only, and with a client CA it also requires a client
// certificate that CA signed.
//
// Abuse: bodies over the limit get 413 as soon as they pass it; a connection that sends
// nothing for `io_timeout` is closed, and so is one that takes longer than
// `request_deadline` from a request line to the end of its body, or longer than both
// between answers and the next request line (a slowloris dribbling bytes forever); at
// most `max_connections` at once, `max_connections_per_client` from one address.
//
// Shutdown answers every request already begun, with `Connection: close`.
#ifndef TOEGANG_ENGINE_SIDECAR_HTTP_SERVER_H_
#define TOEGANG_ENGINE_SIDECAR_HTTP_SERVER_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "engine/sidecar/service.h"

namespace toegang::sidecar {

struct HttpServerOptions {
  std::string address = "127.0.0.1:8181";  // HOST:PORT (IPv4); port 0 picks a free one
  int threads = 4;                         // epoll loops; more for a durable log (fsync waits)
  // Threads that decide batches ({"requests":[...]}), off the event loops: a client
  // sending batch after batch then waits for these, and single requests do not wait
  // behind its batches.
  int batch_workers = 1;
  absl::Duration io_timeout = absl::Seconds(5);
  absl::Duration request_deadline = absl::Seconds(10);
  unsigned max_connections = 1024;
  unsigned max_connections_per_client = 64;  // 0: no limit per address
  // PEM contents (not paths). Certificate and key together turn TLS on; the client CA
  // (optional, with TLS only) requires client certificates it signed.
  std::string tls_cert_pem;
  std::string tls_key_pem;
  std::string tls_client_ca_pem;
};

// Thread-safe. The caller owns the server; destroying it shuts it down.
class HttpServer {
 public:
  // Listens on options.address and starts the threads. InvalidArgument for an address
  // or a certificate that does not parse; Internal when the port cannot be had.
  // REQUIRES: `service` outlives the server.
  static absl::StatusOr<std::unique_ptr<HttpServer>> Start(Service* service, HttpServerOptions options);
  virtual ~HttpServer() = default;
  // The port it listens on (the one picked, for port 0).
  virtual int port() const = 0;
  // Stops accepting, answers the requests already begun (closing their connections),
  // then closes every connection. Idempotent.
  virtual void Shutdown() = 0;
};

}  // namespace toegang::sidecar

#endif  // TOEGANG_ENGINE_SIDECAR_HTTP_SERVER_H_
