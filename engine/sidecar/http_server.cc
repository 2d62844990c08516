// Copyright toegang authors.
#include "engine/sidecar/http_server.h"

#include <arpa/inet.h>
#include <gnutls/gnutls.h>
#include <microhttpd.h>
#include <netinet/in.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <optional>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "base/sync.h"
#include "base/threads.h"
#include "base/worker_pool.h"
#include "engine/sidecar/net.h"
#include "absl/container/flat_hash_set.h"

namespace toegang::sidecar {
namespace {

// What one request accumulates while its body arrives. Made when its request line is
// in (UriLogged), before the headers.
struct PendingRequest {
  std::string body;
  bool headers_seen = false;  // the handler's first call is done
  bool answered = false;      // refused early (too large, not authenticated): the rest is ignored
  bool deferred = false;      // handed to the batch workers; the connection is suspended
  std::optional<Reply> reply;  // a batch worker's answer, sent when the connection resumes
  Caller caller;
};

// Whether a decisions body is (probably) a batch. A single request taken for one only
// takes the longer way.
bool LooksLikeBatch(absl::string_view body) {
  return body.size() > 4096 || body.find("\"requests\"") != absl::string_view::npos;
}

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// One TCP connection, for the request deadline (its "socket context" in MHD).
struct ConnectionClock {
  enum Phase : int { kWaiting, kReceiving, kAnswering };
  int fd = -1;
  std::atomic<int> phase{kWaiting};
  std::atomic<int64_t> since_ns{0};  // when the phase began
  bool cut = false;                  // guarded by the server's registry lock
};

// Queues `reply`; with `close`, the connection closes after it (while shutting down).
MHD_Result Send(MHD_Connection* connection, const Reply& reply, bool close = false) {
  MHD_Response* response = MHD_create_response_from_buffer(reply.body.size(), const_cast<char*>(reply.body.data()),
                                                           MHD_RESPMEM_MUST_COPY);
  if (response == nullptr) return MHD_NO;
  MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, reply.content_type.c_str());
  if (close) MHD_add_response_header(response, MHD_HTTP_HEADER_CONNECTION, "close");
  if (reply.status == 401) MHD_add_response_header(response, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
  MHD_Result r = MHD_queue_response(connection, static_cast<unsigned>(reply.status), response);
  MHD_destroy_response(response);
  return r;
}

std::string Arg(MHD_Connection* c, const char* name) {
  const char* v = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, name);
  return v ? v : "";
}

// The client's address, for the failure limiter ("" when unknown).
std::string ClientAddress(MHD_Connection* c) {
  const MHD_ConnectionInfo* info = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
  if (info == nullptr || info->client_addr == nullptr) return "";
  char text[INET6_ADDRSTRLEN] = {0};
  if (info->client_addr->sa_family == AF_INET) {
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(info->client_addr)->sin_addr, text, sizeof text);
  } else if (info->client_addr->sa_family == AF_INET6) {
    inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(info->client_addr)->sin6_addr, text, sizeof text);
  }
  return text;
}

// With a client CA: whether the TLS peer presented a certificate that CA signed.
bool ClientCertificateVerified(MHD_Connection* c) {
  const MHD_ConnectionInfo* info = MHD_get_connection_info(c, MHD_CONNECTION_INFO_GNUTLS_SESSION);
  if (info == nullptr || info->tls_session == nullptr) return false;
  auto session = static_cast<gnutls_session_t>(info->tls_session);
  unsigned int status = 0;
  if (gnutls_certificate_verify_peers2(session, &status) != GNUTLS_E_SUCCESS) return false;
  unsigned int count = 0;
  return status == 0 && gnutls_certificate_get_peers(session, &count) != nullptr && count > 0;
}

class HttpServerImpl final : public HttpServer {
 public:
  HttpServerImpl(Service* service, HttpServerOptions options) : service_(service), options_(std::move(options)) {}
  ~HttpServerImpl() override { Shutdown(); }

  absl::Status Bind() {
    absl::StatusOr<sockaddr_in> parsed = ParseHostPort(options_.address, "--http");
    if (!parsed.ok()) return parsed.status();
    addr_ = *parsed;
    const int port = ntohs(addr_.sin_port);
    unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_TURBO | MHD_ALLOW_SUSPEND_RESUME;
    batches_ = std::make_unique<WorkerPool>(std::max(1, options_.batch_workers), "toegang-batch");
    const bool tls = !options_.tls_cert_pem.empty() || !options_.tls_key_pem.empty();
    if (tls && (options_.tls_cert_pem.empty() || options_.tls_key_pem.empty())) {
      return absl::InvalidArgumentError("TLS needs both a certificate and its key (--tls-cert and --tls-key)");
    }
    if (!tls && !options_.tls_client_ca_pem.empty()) {
      return absl::InvalidArgumentError("client certificates (--tls-client-ca) need TLS (--tls-cert and --tls-key)");
    }
    if (tls && MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
      return absl::FailedPreconditionError("this libmicrohttpd was built without TLS");
    }
    std::vector<MHD_OptionItem> items = {
        {MHD_OPTION_SOCK_ADDR, 0, reinterpret_cast<sockaddr*>(&addr_)},
        {MHD_OPTION_THREAD_POOL_SIZE, static_cast<intptr_t>(std::max(1, options_.threads)), nullptr},
        {MHD_OPTION_CONNECTION_TIMEOUT, static_cast<intptr_t>(std::max<int64_t>(1, absl::ToInt64Seconds(options_.io_timeout))),
         nullptr},
        {MHD_OPTION_CONNECTION_LIMIT, static_cast<intptr_t>(options_.max_connections), nullptr},
        {MHD_OPTION_NOTIFY_COMPLETED, reinterpret_cast<intptr_t>(&HttpServerImpl::Completed), this},
        {MHD_OPTION_NOTIFY_CONNECTION, reinterpret_cast<intptr_t>(&HttpServerImpl::ConnectionChanged), this},
        {MHD_OPTION_URI_LOG_CALLBACK, reinterpret_cast<intptr_t>(&HttpServerImpl::RequestLine), this},
        {MHD_OPTION_LISTENING_ADDRESS_REUSE, 1, nullptr},
    };
    if (options_.max_connections_per_client > 0) {
      items.push_back({MHD_OPTION_PER_IP_CONNECTION_LIMIT, static_cast<intptr_t>(options_.max_connections_per_client),
                       nullptr});
    }
    if (tls) {
      flags |= MHD_USE_TLS;
      items.push_back({MHD_OPTION_HTTPS_MEM_CERT, 0, const_cast<char*>(options_.tls_cert_pem.c_str())});
      items.push_back({MHD_OPTION_HTTPS_MEM_KEY, 0, const_cast<char*>(options_.tls_key_pem.c_str())});
      if (!options_.tls_client_ca_pem.empty()) {
        items.push_back({MHD_OPTION_HTTPS_MEM_TRUST, 0, const_cast<char*>(options_.tls_client_ca_pem.c_str())});
      }
    }
    items.push_back({MHD_OPTION_END, 0, nullptr});
    daemon_ = MHD_start_daemon(flags, static_cast<uint16_t>(port), nullptr, nullptr, &HttpServerImpl::Handle, this,
                               MHD_OPTION_ARRAY, items.data(), MHD_OPTION_END);
    if (daemon_ == nullptr) return absl::InternalError(absl::StrCat("cannot listen on ", options_.address));
    const MHD_DaemonInfo* info = MHD_get_daemon_info(daemon_, MHD_DAEMON_INFO_BIND_PORT);
    port_ = info ? info->port : port;
    sweeper_ = std::thread([this] {
      NameCurrentThread("toegang-deadline");
      Sweep();
    });
    return absl::OkStatus();
  }

  int port() const override { return port_; }

  void Shutdown() override {
    if (daemon_ == nullptr) return;
    MHD_socket listener = MHD_quiesce_daemon(daemon_);  // no new connections
    // Every request already begun is answered, with Connection: close, so a keep-alive
    // client gets its last answer rather than a closed connection; wait until none is
    // under way (twice, 50 ms apart, for one just arriving), at most the request deadline.
    draining_.store(true);
    const absl::Time give_up = absl::Now() + options_.request_deadline;
    int quiet = 0;
    while (quiet < 2 && absl::Now() < give_up) {
      absl::SleepFor(absl::Milliseconds(50));
      quiet = in_progress_.load() == 0 ? quiet + 1 : 0;
    }
    batches_.reset();  // every batch begun is decided and its connection resumed
    MHD_stop_daemon(daemon_);  // joins the loops
    if (listener != MHD_INVALID_SOCKET) close(listener);
    daemon_ = nullptr;
    {
      MutexLock lock(&clocks_mu_);
      sweeping_ = false;
      sweep_cv_.Signal();
    }
    if (sweeper_.joinable()) sweeper_.join();
  }

 private:
  // MHD_OPTION_NOTIFY_CONNECTION: a connection opened or closed.
  static void ConnectionChanged(void* cls, MHD_Connection* connection, void** socket_context,
                                MHD_ConnectionNotificationCode code) {
    auto* self = static_cast<HttpServerImpl*>(cls);
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
      auto* clock = new ConnectionClock;
      const MHD_ConnectionInfo* info = MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CONNECTION_FD);
      clock->fd = info != nullptr ? info->connect_fd : -1;
      clock->since_ns.store(NowNs());
      MutexLock lock(&self->clocks_mu_);
      self->clocks_.insert(clock);
      *socket_context = clock;
    } else if (*socket_context != nullptr) {
      auto* clock = static_cast<ConnectionClock*>(*socket_context);
      {
        MutexLock lock(&self->clocks_mu_);
        self->clocks_.erase(clock);
      }
      delete clock;
      *socket_context = nullptr;
    }
  }

  static ConnectionClock* ClockOf(MHD_Connection* connection) {
    const MHD_ConnectionInfo* info = MHD_get_connection_info(connection, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return info != nullptr ? static_cast<ConnectionClock*>(info->socket_context) : nullptr;
  }

  static void Enter(MHD_Connection* connection, ConnectionClock::Phase phase) {
    if (ConnectionClock* clock = ClockOf(connection)) {
      clock->since_ns.store(NowNs(), std::memory_order_relaxed);
      clock->phase.store(phase, std::memory_order_release);
    }
  }

  // MHD_OPTION_URI_LOG_CALLBACK: a request line is in; headers and body must follow
  // within the request deadline.
  static void* RequestLine(void* cls, const char*, MHD_Connection* connection) {
    auto* self = static_cast<HttpServerImpl*>(cls);
    self->in_progress_.fetch_add(1);
    Enter(connection, ConnectionClock::kReceiving);
    return new PendingRequest;
  }

  // Closes connections that take too long to send a request (slowloris): the deadline
  // runs from a request line to the end of its body, and, between requests, from the
  // last answer (a connection that sends nothing is closed by MHD after io_timeout; one
  // that dribbles a request line never completes one).
  void Sweep() {
    const int64_t receiving = absl::ToInt64Nanoseconds(options_.request_deadline);
    const int64_t waiting = receiving + absl::ToInt64Nanoseconds(options_.io_timeout);
    MutexLock lock(&clocks_mu_);
    while (sweeping_) {
      sweep_cv_.WaitWithTimeout(&clocks_mu_, absl::Milliseconds(200));
      const int64_t now = NowNs();
      for (ConnectionClock* c : clocks_) {
        const int phase = c->phase.load(std::memory_order_acquire);
        const int64_t age = now - c->since_ns.load(std::memory_order_relaxed);
        const bool late = (phase == ConnectionClock::kReceiving && age > receiving) ||
                          (phase == ConnectionClock::kWaiting && age > waiting);
        if (late && !c->cut && c->fd >= 0) {
          // shutdown, not close: the descriptor stays MHD's, which sees the end of the
          // stream and closes it (and tells ConnectionChanged) in its own time.
          ::shutdown(c->fd, SHUT_RDWR);
          c->cut = true;
          service_->CountTransportError("request_deadline");
        }
      }
    }
  }

  static MHD_Result Handle(void* cls, MHD_Connection* connection, const char* url, const char* method,
                           const char*, const char* upload_data, size_t* upload_data_size, void** state) {
    auto* self = static_cast<HttpServerImpl*>(cls);
    auto* pending = static_cast<PendingRequest*>(*state);
    if (pending == nullptr) {  // (RequestLine makes one for every request)
      pending = new PendingRequest;
      *state = pending;
    }
    if (!pending->headers_seen) {
      pending->headers_seen = true;
      if (absl::string_view(url) != "/healthz") {
        // Who, before the body is read: a caller without a valid token is refused at once.
        if (!self->options_.tls_client_ca_pem.empty() && !ClientCertificateVerified(connection)) {
          pending->answered = true;
          self->service_->CountPeerRefused();
          return Send(connection, ErrorReply(403, "a client certificate signed by the configured CA is needed"));
        }
        const char* authorization =
            MHD_lookup_connection_value(connection, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
        absl::StatusOr<Caller> caller =
            self->service_->Authenticate(authorization ? authorization : "", ClientAddress(connection));
        if (!caller.ok()) {
          pending->answered = true;
          return Send(connection, ErrorReply(absl::IsResourceExhausted(caller.status()) ? 429 : 401,
                                             caller.status().message()));
        }
        pending->caller = *caller;
      }
      // Refuse a declared oversize body before inviting it (no 100 Continue).
      const char* length = MHD_lookup_connection_value(connection, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
      uint64_t declared = 0;
      if (length != nullptr && absl::SimpleAtoi(length, &declared) &&
          declared > self->service_->limits().max_body_bytes) {
        pending->answered = true;
        self->service_->CountTransportError("body_too_large");
        return Send(connection, ErrorReply(413, absl::StrCat("body of ", declared, " bytes exceeds the limit of ",
                                                            self->service_->limits().max_body_bytes, " bytes")));
      }
      return MHD_YES;
    }
    if (*upload_data_size > 0) {
      if (!pending->answered) {  // a body without Content-Length (chunked) that grows too large
        if (pending->body.size() + *upload_data_size > self->service_->limits().max_body_bytes) {
          pending->answered = true;
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
    if (pending->answered) return MHD_YES;
    if (pending->reply) {  // a batch worker's answer; the connection was resumed for it
      const Reply reply = *std::move(pending->reply);
      pending->reply.reset();
      return Send(connection, reply, self->draining_.load());
    }
    if (pending->deferred) return MHD_YES;  // (not called while suspended)
    Enter(connection, ConnectionClock::kAnswering);  // received: deciding takes what it takes
    if (absl::string_view(method) == "POST" && absl::string_view(url) == "/v1/decisions" &&
        LooksLikeBatch(pending->body)) {
      // A batch holds a thread for as long as its thousand decisions take: decided on the
      // batch workers, so that this loop's other connections (single requests, each
      // waiting on it) are not held behind it, and batches queue behind each other.
      pending->deferred = true;
      MHD_suspend_connection(connection);
      std::string path(url);
      self->batches_->Submit([self, connection, pending, path] {
        pending->reply = self->service_->Route("POST", path, pending->body, [](const char*) { return std::string(); },
                                               pending->caller);
        MHD_resume_connection(connection);
      });
      return MHD_YES;
    }
    Reply reply = self->Route(connection, url, method, *pending);
    return Send(connection, reply, self->draining_.load());
  }

  static void Completed(void* cls, MHD_Connection* connection, void** state, MHD_RequestTerminationCode) {
    auto* self = static_cast<HttpServerImpl*>(cls);
    if (*state != nullptr) {
      delete static_cast<PendingRequest*>(*state);
      *state = nullptr;
      self->in_progress_.fetch_sub(1);
    }
    Enter(connection, ConnectionClock::kWaiting);
  }

  Reply Route(MHD_Connection* c, absl::string_view url, absl::string_view method, const PendingRequest& request) {
    return service_->Route(method, url, request.body, [c](const char* name) { return Arg(c, name); }, request.caller);
  }

  Service* const service_;
  const HttpServerOptions options_;
  sockaddr_in addr_;
  MHD_Daemon* daemon_ = nullptr;
  int port_ = 0;
  std::unique_ptr<WorkerPool> batches_;  // decides batches off the event loops
  std::atomic<int> in_progress_{0};    // requests whose line is in and that are not done
  std::atomic<bool> draining_{false};  // shutting down: answers close their connection
  Mutex clocks_mu_;
  CondVar sweep_cv_;
  absl::flat_hash_set<ConnectionClock*> clocks_ ABSL_GUARDED_BY(clocks_mu_);
  bool sweeping_ ABSL_GUARDED_BY(clocks_mu_) = true;
  std::thread sweeper_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<HttpServer>> HttpServer::Start(Service* service, HttpServerOptions options) {
  auto server = std::make_unique<HttpServerImpl>(service, std::move(options));
  absl::Status s = server->Bind();
  if (!s.ok()) return s;
  return std::unique_ptr<HttpServer>(std::move(server));
}

}  // namespace toegang::sidecar
