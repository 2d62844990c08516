// Copyright toegang authors.
#include "engine/sidecar/http_server.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>

#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace toegang::sidecar {
namespace {

// What one request accumulates while its body arrives.
struct PendingRequest {
  std::string body;
  bool too_large = false;
};

MHD_Result Send(MHD_Connection* connection, const Reply& reply) {
  MHD_Response* response = MHD_create_response_from_buffer(reply.body.size(), const_cast<char*>(reply.body.data()),
                                                           MHD_RESPMEM_MUST_COPY);
  if (response == nullptr) return MHD_NO;
  MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, reply.content_type.c_str());
  MHD_Result r = MHD_queue_response(connection, static_cast<unsigned>(reply.status), response);
  MHD_destroy_response(response);
  return r;
}

std::string Arg(MHD_Connection* c, const char* name) {
  const char* v = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, name);
  return v ? v : "";
}

class HttpServerImpl final : public HttpServer {
 public:
  HttpServerImpl(Service* service, HttpServerOptions options) : service_(service), options_(std::move(options)) {}
  ~HttpServerImpl() override { Shutdown(); }

  absl::Status Bind() {
    size_t colon = options_.address.rfind(':');
    int port = -1;
    if (colon == std::string::npos || !absl::SimpleAtoi(options_.address.substr(colon + 1), &port) || port < 0 ||
        port > 65535) {
      return absl::InvalidArgumentError(absl::StrCat("--http is HOST:PORT, not '", options_.address, "'"));
    }
    std::string host = options_.address.substr(0, colon);
    if (host == "localhost") host = "127.0.0.1";
    std::memset(&addr_, 0, sizeof addr_);
    addr_.sin_family = AF_INET;
    addr_.sin_port = htons(static_cast<uint16_t>(port));
    if (inet_pton(AF_INET, host.c_str(), &addr_.sin_addr) != 1) {
      return absl::InvalidArgumentError(absl::StrCat("--http: not an IPv4 address: '", host, "'"));
    }
    unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_TURBO;
    daemon_ = MHD_start_daemon(
        flags, static_cast<uint16_t>(port), nullptr, nullptr, &HttpServerImpl::Handle, this,
        MHD_OPTION_SOCK_ADDR, reinterpret_cast<sockaddr*>(&addr_),
        MHD_OPTION_THREAD_POOL_SIZE, static_cast<unsigned>(std::max(1, options_.threads)),
        MHD_OPTION_CONNECTION_TIMEOUT, static_cast<unsigned>(std::max<int64_t>(1, absl::ToInt64Seconds(options_.io_timeout))),
        MHD_OPTION_CONNECTION_LIMIT, options_.max_connections,
        MHD_OPTION_NOTIFY_COMPLETED, &HttpServerImpl::Completed, this,
        MHD_OPTION_LISTENING_ADDRESS_REUSE, 1u,
        MHD_OPTION_END);
    if (daemon_ == nullptr) return absl::InternalError(absl::StrCat("cannot listen on ", options_.address));
    const MHD_DaemonInfo* info = MHD_get_daemon_info(daemon_, MHD_DAEMON_INFO_BIND_PORT);
    port_ = info ? info->port : port;
    return absl::OkStatus();
  }

  int port() const override { return port_; }

  void Shutdown() override {
    if (daemon_ == nullptr) return;
    MHD_socket listener = MHD_quiesce_daemon(daemon_);  // no new connections
    MHD_stop_daemon(daemon_);                           // joins the loops: in-flight requests finish
    if (listener != MHD_INVALID_SOCKET) close(listener);
    daemon_ = nullptr;
  }

 private:
  static MHD_Result Handle(void* cls, MHD_Connection* connection, const char* url, const char* method,
                           const char*, const char* upload_data, size_t* upload_data_size, void** state) {
    auto* self = static_cast<HttpServerImpl*>(cls);
    auto* pending = static_cast<PendingRequest*>(*state);
    if (pending == nullptr) {
      pending = new PendingRequest;
      *state = pending;
      // Refuse a declared oversize body before inviting it (no 100 Continue).
      const char* length = MHD_lookup_connection_value(connection, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
      uint64_t declared = 0;
      if (length != nullptr && absl::SimpleAtoi(length, &declared) &&
          declared > self->service_->limits().max_body_bytes) {
        pending->too_large = true;
        self->service_->CountTransportError("body_too_large");
        return Send(connection, ErrorReply(413, absl::StrCat("body of ", declared, " bytes exceeds the limit of ",
                                                            self->service_->limits().max_body_bytes, " bytes")));
      }
      return MHD_YES;
    }
    if (*upload_data_size > 0) {
      if (!pending->too_large) {  // a body without Content-Length (chunked) that grows too large
        if (pending->body.size() + *upload_data_size > self->service_->limits().max_body_bytes) {
          pending->too_large = true;
          pending->body.clear();
          self->service_->CountTransportError("body_too_large");
          *upload_data_size = 0;
          // Answer now; MHD closes the connection after an early answer.
          return Send(connection, ErrorReply(413, absl::StrCat("body exceeds the limit of ",
                                                              self->service_->limits().max_body_bytes, " bytes")));
        }
        pending->body.append(upload_data, *upload_data_size);
      }
      *upload_data_size = 0;
      return MHD_YES;
    }
    if (pending->too_large) return MHD_YES;  // already answered
    return Send(connection, self->Route(connection, url, method, pending->body));
  }

  static void Completed(void*, MHD_Connection*, void** state, MHD_RequestTerminationCode) {
    delete static_cast<PendingRequest*>(*state);
    *state = nullptr;
  }

  Reply Route(MHD_Connection* c, absl::string_view url, absl::string_view method, const std::string& body) {
    return service_->Route(method, url, body, [c](const char* name) { return Arg(c, name); });
  }

  Service* const service_;
  const HttpServerOptions options_;
  sockaddr_in addr_;
  MHD_Daemon* daemon_ = nullptr;
  int port_ = 0;
};

}  // namespace

absl::StatusOr<std::unique_ptr<HttpServer>> HttpServer::Start(Service* service, HttpServerOptions options) {
  auto server = std::make_unique<HttpServerImpl>(service, std::move(options));
  absl::Status s = server->Bind();
  if (!s.ok()) return s;
  return std::unique_ptr<HttpServer>(std::move(server));
}

}  // namespace toegang::sidecar
