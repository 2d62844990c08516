// Copyright toegang authors.
//
// toegang serve --db DIR --http HOST:PORT --socket PATH [--tcp HOST:PORT] [--policy FILE]
//
// The sidecar: HTTP/JSON (cpp-httplib) and the FlatBuffers frame protocol on a Unix
// socket and, if asked, a TCP port. SIGHUP (or POST /v1/policy/reload) reloads the
// policy; SIGTERM or SIGINT stops accepting, finishes what is in flight, writes the
// access log and closes the store. Port 0 picks a free port; the first line on stdout
// says where it listens.
#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <fstream>
#include <iostream>
#include <thread>

#include "absl/flags/flag.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "engine/cli/cli.h"
#include "engine/sidecar/service.h"
#include "engine/sidecar/socket_server.h"
#include "engine/toegang.h"
#include "httplib.h"

ABSL_FLAG(std::string, http, "127.0.0.1:8181", "serve: HTTP address HOST:PORT (empty: no HTTP)");
ABSL_FLAG(std::string, socket, "./var/toegang.sock", "serve: Unix socket path for the frame protocol (empty: none)");
ABSL_FLAG(std::string, tcp, "", "serve: TCP address HOST:PORT for the frame protocol (empty: none)");
ABSL_FLAG(int, threads, 8, "serve: worker threads per front end");
ABSL_FLAG(int, io_timeout, 5, "serve: seconds a client may take to send a request or read an answer");

namespace toegang::cli {
namespace {

absl::StatusOr<std::shared_ptr<const Policy>> ReloadFromFlag() { return LoadPolicyFlag(); }

void Put(httplib::Response& res, const sidecar::Reply& reply) {
  res.status = reply.status;
  res.set_content(reply.body, reply.content_type.c_str());
}

}  // namespace

int Serve(const std::vector<std::string>& args) {
  if (!args.empty()) {
    Complain("usage: toegang serve --db DIR --http HOST:PORT --socket PATH [--tcp HOST:PORT] [--policy FILE]");
    return kBadInput;
  }
  // Signals are taken by one thread with sigwait; every other thread blocks them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  absl::StatusOr<std::shared_ptr<const Policy>> policy = LoadPolicyFlag();
  if (!policy.ok()) {
    Complain(std::string(policy.status().message()));
    return kBadInput;
  }
  Options options;
  options.policy = *policy;
  options.db_path = absl::GetFlag(FLAGS_db);
  if (absl::GetFlag(FLAGS_audit_mode) == "buffered") {
    options.audit->mode = AuditMode::kBuffered;
  } else if (absl::GetFlag(FLAGS_audit_mode) != "durable") {
    Complain("--audit-mode is durable or buffered");
    return kBadInput;
  }
  absl::StatusOr<std::unique_ptr<Engine>> engine = Engine::Open(std::move(options));
  if (!engine.ok()) {
    Complain(std::string(engine.status().message()));
    return kFailure;
  }
  sidecar::Service service(engine->get(), sidecar::Limits{}, ReloadFromFlag);

  std::unique_ptr<sidecar::SocketServer> frames;
  sidecar::SocketServerOptions so;
  so.unix_path = absl::GetFlag(FLAGS_socket);
  so.tcp_address = absl::GetFlag(FLAGS_tcp);
  so.workers = absl::GetFlag(FLAGS_threads);
  so.inline_decisions = absl::GetFlag(FLAGS_audit_mode) == "buffered";
  const int io_timeout = std::max(1, absl::GetFlag(FLAGS_io_timeout));
  so.frame_timeout = absl::Seconds(io_timeout);
  so.write_timeout = absl::Seconds(io_timeout);
  if (!so.unix_path.empty() || !so.tcp_address.empty()) {
    absl::StatusOr<std::unique_ptr<sidecar::SocketServer>> started = sidecar::SocketServer::Start(&service, so);
    if (!started.ok()) {
      Complain(std::string(started.status().message()));
      return kFailure;
    }
    frames = *std::move(started);
  }

  httplib::Server http;
  const int threads = absl::GetFlag(FLAGS_threads);
  http.new_task_queue = [threads] { return new httplib::ThreadPool(static_cast<size_t>(threads)); };
  http.set_payload_max_length(service.limits().max_body_bytes);
  http.set_read_timeout(io_timeout, 0);
  http.set_write_timeout(io_timeout, 0);
  http.set_keep_alive_timeout(30);
  http.set_keep_alive_max_count(100000);
  http.set_tcp_nodelay(true);
  http.Post("/v1/decisions", [&](const httplib::Request& req, httplib::Response& res) { Put(res, service.Decisions(req.body)); });
  http.Post("/v1/facts", [&](const httplib::Request& req, httplib::Response& res) { Put(res, service.Facts(req.body)); });
  http.Get(R"(/v1/patients/([^/]+)/history)", [&](const httplib::Request& req, httplib::Response& res) {
    Put(res, service.History(req.matches[1].str(), req.get_param_value("as_of")));
  });
  http.Get(R"(/v1/patients/([^/]+)/access-log)", [&](const httplib::Request& req, httplib::Response& res) {
    Put(res, service.AccessLog(req.matches[1].str(), req.get_param_value("from"), req.get_param_value("until")));
  });
  http.Get("/healthz", [&](const httplib::Request&, httplib::Response& res) { Put(res, service.Healthz()); });
  http.Get("/metrics", [&](const httplib::Request&, httplib::Response& res) { Put(res, service.Metrics()); });
  http.Post("/v1/policy/reload", [&](const httplib::Request&, httplib::Response& res) { Put(res, service.ReloadPolicy()); });
  http.set_error_handler([&](const httplib::Request&, httplib::Response& res) {
    if (res.body.empty()) {
      if (res.status == 413) service.CountTransportError("body_too_large");
      res.set_content(absl::StrCat("{\"error\":\"", res.status == 404 ? "no such endpoint" : res.status == 413 ? "body too large" : "bad request", "\"}"),
                      "application/json");
    }
  });

  std::thread http_thread;
  int http_port = 0;
  std::string http_address = absl::GetFlag(FLAGS_http);
  if (!http_address.empty()) {
    size_t colon = http_address.rfind(':');
    int port = -1;
    if (colon == std::string::npos || !absl::SimpleAtoi(http_address.substr(colon + 1), &port) || port < 0 || port > 65535) {
      Complain("--http is HOST:PORT, not '" + http_address + "'");
      return kBadInput;
    }
    std::string host = http_address.substr(0, colon);
    http_port = port == 0 ? http.bind_to_any_port(host.c_str()) : (http.bind_to_port(host.c_str(), port) ? port : -1);
    if (http_port < 0) {
      Complain("cannot listen on " + http_address);
      return kFailure;
    }
    http_thread = std::thread([&] { http.listen_after_bind(); });
  }
  std::cout << "toegang: serving policy " << (*engine)->policy()->id();
  if (http_port > 0) std::cout << " http=" << http_address.substr(0, http_address.rfind(':')) << ":" << http_port;
  if (!so.unix_path.empty()) std::cout << " socket=" << so.unix_path;
  if (frames && frames->tcp_port() > 0) std::cout << " tcp=" << frames->tcp_port();
  std::cout << std::endl;

  while (true) {
    int sig = 0;
    if (sigwait(&signals, &sig) != 0) continue;
    if (sig == SIGHUP) {
      sidecar::Reply r = service.ReloadPolicy();
      std::cerr << "toegang: SIGHUP: " << r.body << std::endl;
      continue;
    }
    break;  // SIGTERM, SIGINT
  }
  std::cerr << "toegang: stopping: no new connections; finishing what is in flight" << std::endl;
  if (http_thread.joinable()) {
    http.stop();
    http_thread.join();
  }
  if (frames) frames->Shutdown();
  if (AuditLog* log = (*engine)->audit_log()) {
    absl::Status flushed = log->Flush();
    if (!flushed.ok()) Complain(absl::StrCat("access log: ", flushed.message()));
  }
  engine->reset();  // closes the store
  std::cerr << "toegang: stopped" << std::endl;
  return kOk;
}

}  // namespace toegang::cli
