// Copyright toegang authors.
//
// toegang serve --db DIR --http HOST:PORT --socket PATH [--tcp HOST:PORT] [--policy FILE]
//
// The sidecar: HTTP/JSON (GNU libmicrohttpd) and the FlatBuffers frame protocol on a Unix
// socket and, if asked, a TCP port. SIGHUP (or POST /v1/policy/reload) reloads the
// policy; SIGTERM or SIGINT stops accepting, finishes what is in flight, writes the
// access log and closes the store. Port 0 picks a free port; the first line on stdout
// says where it listens.
#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <fstream>
#include <iostream>
#include <optional>
#include <thread>

#include "absl/flags/flag.h"
#include "absl/flags/marshalling.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/files.h"
#include "base/threads.h"
#include "engine/sidecar/auth.h"
#include "engine/sidecar/net.h"
#include "engine/cli/cli.h"
#include "engine/sidecar/http_server.h"
#include "engine/sidecar/service.h"
#include "engine/sidecar/socket_server.h"
#include "engine/toegang.h"
#include "model/status_macros.h"

ABSL_FLAG(std::string, http, "127.0.0.1:8181", "serve: HTTP address HOST:PORT (empty: no HTTP)");
ABSL_FLAG(std::string, socket, "./var/toegang.sock", "serve: Unix socket path for the frame protocol (empty: none)");
ABSL_FLAG(std::string, tcp, "", "serve: TCP address HOST:PORT for the frame protocol (empty: none)");
ABSL_FLAG(int, threads, 8, "serve: HTTP event-loop threads, and frame-protocol workers");
ABSL_FLAG(int, io_timeout, 5, "serve: seconds a client may take to send a request or read an answer");
ABSL_FLAG(int, cache_mb, 256,
          "serve: memory for caches, MiB: a quarter for RocksDB's block cache, the rest for patient "
          "records and coverages kept decoded");
ABSL_FLAG(bool, pin_threads, true,
          "serve: with two CPUs or more, keep background work (the access log's writer, the "
          "store's flushes and compactions) on the last one and the threads that answer "
          "requests on the others (base/threads.h says why)");

ABSL_FLAG(std::string, token_file, "",
          "serve: bearer tokens for HTTP and TCP callers, one 'SCOPES TOKEN' per line (mode 0600); needed with "
          "--http or --tcp");
ABSL_FLAG(std::vector<std::string>, allow_uid, {},
          "serve: uids (numbers) whose processes may use the Unix socket (default: the server's own)");
ABSL_FLAG(std::vector<std::string>, allow_gid, {},
          "serve: gids (numbers) whose processes may use the Unix socket");
ABSL_FLAG(std::string, tls_cert, "", "serve: HTTPS certificate (PEM); needed to listen beyond loopback");
ABSL_FLAG(std::string, tls_key, "", "serve: the certificate's private key (PEM, mode 0600)");
ABSL_FLAG(std::string, tls_client_ca, "", "serve: require HTTPS client certificates signed by this CA (PEM)");
ABSL_FLAG(int, max_connections, 1024, "serve: HTTP connections at once");
ABSL_FLAG(int, batch_workers, 1,
          "serve: threads deciding HTTP batches ({\"requests\":[...]}) apart from single requests");
ABSL_FLAG(int, request_deadline, 10,
          "serve: seconds an HTTP client may take from a request line to the end of its body (and, beyond "
          "--io-timeout, between an answer and its next request line)");
ABSL_FLAG(int, max_connections_per_client, 64, "serve: HTTP connections at once from one address (0: no limit)");

namespace toegang::cli {
namespace {

// Who may reach the listeners asked for, and whether that is allowed: the PDP believes
// whatever its caller says about the actor, so only the backend may be its caller.
absl::Status CheckExposure(const std::string& http, const std::string& tcp, bool tokens, bool tls) {
  if ((!http.empty() || !tcp.empty()) && !tokens) {
    return absl::InvalidArgumentError(
        "--http and --tcp callers need bearer tokens: give --token-file FILE (one 'SCOPES TOKEN' per line, mode "
        "0600; README \"Who may call\")");
  }
  if (!http.empty() && !sidecar::IsLoopback(http) && !tls) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--http ", http, " is reachable from other hosts: tokens would cross the network in clear text; give "
        "--tls-cert and --tls-key (or listen on 127.0.0.1)"));
  }
  if (!tcp.empty() && !sidecar::IsLoopback(tcp)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--tcp ", tcp, " is reachable from other hosts, and the frame protocol has no TLS: use the Unix socket or "
        "127.0.0.1 on this host, and HTTPS (--http with --tls-cert) across hosts"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<unsigned>> Ids(const std::vector<std::string>& texts, const char* flag) {
  std::vector<unsigned> ids;
  for (const std::string& t : texts) {
    unsigned id = 0;
    if (!absl::SimpleAtoi(t, &id)) return absl::InvalidArgumentError(absl::StrCat("--", flag, ": not a number"));
    ids.push_back(id);
  }
  return ids;
}

absl::StatusOr<std::string> PemFlag(const std::string& path, const char* flag, bool secret) {
  if (path.empty()) return std::string();
  absl::StatusOr<std::string> text = secret ? ReadSecretFile(path) : ReadWholeFile(path);
  if (!text.ok()) return absl::InvalidArgumentError(absl::StrCat("--", flag, ": ", text.status().message()));
  return text;
}

// What the flags ask for, checked before anything is opened. Every error is bad input.
struct ServeConfig {
  Options options;  // the engine's
  std::string facts_path;
  std::optional<sidecar::TokenSet> tokens;
  std::string tls_cert, tls_key, tls_client_ca;
  std::vector<unsigned> allow_uids, allow_gids;
  bool pin_threads = true;
};

absl::StatusOr<ServeConfig> ReadServeFlags() {
  ServeConfig c;
  absl::StatusOr<std::shared_ptr<const Policy>> policy = LoadPolicyFlag();
  if (!policy.ok()) return policy.status();
  c.options.policy = *policy;
  // Who may call, checked before the store is opened.
  if (std::string path = absl::GetFlag(FLAGS_token_file); !path.empty()) {
    absl::StatusOr<sidecar::TokenSet> loaded = sidecar::TokenSet::Load(path);
    if (!loaded.ok()) return absl::InvalidArgumentError(loaded.status().message());
    c.tokens = *std::move(loaded);
  }
  absl::StatusOr<std::string> tls_cert = PemFlag(absl::GetFlag(FLAGS_tls_cert), "tls-cert", false);
  absl::StatusOr<std::string> tls_key = PemFlag(absl::GetFlag(FLAGS_tls_key), "tls-key", true);
  absl::StatusOr<std::string> tls_client_ca = PemFlag(absl::GetFlag(FLAGS_tls_client_ca), "tls-client-ca", false);
  absl::StatusOr<std::vector<unsigned>> allow_uids = Ids(absl::GetFlag(FLAGS_allow_uid), "allow-uid");
  absl::StatusOr<std::vector<unsigned>> allow_gids = Ids(absl::GetFlag(FLAGS_allow_gid), "allow-gid");
  for (const absl::Status& s : {tls_cert.status(), tls_key.status(), tls_client_ca.status(), allow_uids.status(),
                                allow_gids.status()}) {
    if (!s.ok()) return s;
  }
  c.tls_cert = *tls_cert;
  c.tls_key = *tls_key;
  c.tls_client_ca = *tls_client_ca;
  c.allow_uids = *allow_uids;
  c.allow_gids = *allow_gids;
  TOEGANG_RETURN_IF_ERROR(CheckExposure(absl::GetFlag(FLAGS_http), absl::GetFlag(FLAGS_tcp), c.tokens.has_value(),
                                        !c.tls_cert.empty() && !c.tls_key.empty()));
  if (absl::GetFlag(FLAGS_max_connections) < 1 || absl::GetFlag(FLAGS_max_connections_per_client) < 0 ||
      absl::GetFlag(FLAGS_request_deadline) < 1 || absl::GetFlag(FLAGS_batch_workers) < 1) {
    return absl::InvalidArgumentError(
        "--max-connections, --request-deadline and --batch-workers are at least 1, "
        "--max-connections-per-client at least 0");
  }
  c.facts_path = absl::GetFlag(FLAGS_facts);
  if (c.facts_path.empty()) {
    c.options.db_path = absl::GetFlag(FLAGS_db);
  } else {
    // A sidecar over a file's facts, in memory (what a client's integration tests
    // run against): like `decide --facts`, the facts have no arrival.
    c.options.clock = NoArrivalClock;
  }
  if (absl::GetFlag(FLAGS_cache_mb) < 4) return absl::InvalidArgumentError("--cache-mb is at least 4");
  // Decoded records are what a decision reads; RocksDB's blocks serve the misses (and
  // hold index and filter blocks, so a miss costs one data block read).
  const size_t cache_bytes = static_cast<size_t>(absl::GetFlag(FLAGS_cache_mb)) << 20;
  c.options.durable.block_cache_bytes = cache_bytes / 4;
  c.options.durable.record_cache_bytes = cache_bytes - cache_bytes / 4;
  TOEGANG_RETURN_IF_ERROR(AuditFlags(&*c.options.audit));
  c.pin_threads = absl::GetFlag(FLAGS_pin_threads);
  TOEGANG_RETURN_IF_ERROR(ReplicateFlags(&c.options));
  if (c.options.replicate && !c.facts_path.empty()) {
    return absl::InvalidArgumentError("--facts serves a file's facts; --replicate a shared history: give one");
  }
  return c;
}

// Opens the engine (and records --facts), with background work on its own CPUs when
// asked; leaves this thread on the CPUs that answer requests, for the servers' threads
// to inherit.
absl::StatusOr<std::unique_ptr<Engine>> OpenServeEngine(ServeConfig& c) {
  std::optional<Placement> placement;
  if (c.pin_threads) {
    absl::StatusOr<std::vector<int>> cpus = AllowedCpus();
    if (!cpus.ok()) return absl::InternalError(cpus.status().message());
    placement = SeparateBackground(*cpus);
    c.options.audit->writer_cpus = placement->background;
    // The store's flush and compaction threads, which Open starts, inherit this thread's
    // CPUs: all background work goes with the access log's writer.
    if (absl::Status pinned = PinCurrentThread(placement->background); !pinned.ok()) {
      return absl::InternalError(pinned.message());
    }
  }
  absl::StatusOr<std::unique_ptr<Engine>> engine = Engine::Open(std::move(c.options));
  if (!engine.ok()) return engine.status();
  if (!c.facts_path.empty()) TOEGANG_RETURN_IF_ERROR(RecordFactsFile(**engine, c.facts_path));
  if (placement) {
    if (absl::Status pinned = PinCurrentThread(placement->requests); !pinned.ok()) {
      return absl::InternalError(pinned.message());
    }
    std::cerr << "toegang: background work (access-log writer, store flushes and compactions) on CPU "
              << absl::StrJoin(placement->background, ",") << "; requests on CPU "
              << absl::StrJoin(placement->requests, ",") << std::endl;
  }
  return engine;
}

struct Listeners {
  std::unique_ptr<sidecar::SocketServer> frames;
  std::unique_ptr<sidecar::HttpServer> http;
};

absl::StatusOr<Listeners> StartListeners(sidecar::Service* service, const ServeConfig& c) {
  Listeners l;
  const int io_timeout = std::max(1, absl::GetFlag(FLAGS_io_timeout));
  sidecar::SocketServerOptions so;
  so.unix_path = absl::GetFlag(FLAGS_socket);
  so.tcp_address = absl::GetFlag(FLAGS_tcp);
  so.workers = absl::GetFlag(FLAGS_threads);
  so.inline_decisions = absl::GetFlag(FLAGS_audit_mode) == "buffered";
  so.allow_uids.assign(c.allow_uids.begin(), c.allow_uids.end());
  so.allow_gids.assign(c.allow_gids.begin(), c.allow_gids.end());
  so.frame_timeout = absl::Seconds(io_timeout);
  so.write_timeout = absl::Seconds(io_timeout);
  if (!so.unix_path.empty() || !so.tcp_address.empty()) {
    absl::StatusOr<std::unique_ptr<sidecar::SocketServer>> started = sidecar::SocketServer::Start(service, so);
    // A socket that cannot be made is the system's trouble, whatever it says.
    if (!started.ok()) return absl::InternalError(started.status().message());
    l.frames = *std::move(started);
  }
  if (std::string address = absl::GetFlag(FLAGS_http); !address.empty()) {
    sidecar::HttpServerOptions ho;
    ho.address = address;
    ho.threads = absl::GetFlag(FLAGS_threads);
    ho.io_timeout = absl::Seconds(io_timeout);
    ho.max_connections = static_cast<unsigned>(absl::GetFlag(FLAGS_max_connections));
    ho.request_deadline = absl::Seconds(absl::GetFlag(FLAGS_request_deadline));
    ho.batch_workers = absl::GetFlag(FLAGS_batch_workers);
    ho.max_connections_per_client = static_cast<unsigned>(absl::GetFlag(FLAGS_max_connections_per_client));
    ho.tls_cert_pem = c.tls_cert;
    ho.tls_key_pem = c.tls_key;
    ho.tls_client_ca_pem = c.tls_client_ca;
    absl::StatusOr<std::unique_ptr<sidecar::HttpServer>> started = sidecar::HttpServer::Start(service, ho);
    if (!started.ok()) return started.status();
    l.http = *std::move(started);
  }
  return l;
}

// The first line on stdout: where it listens (tests and scripts read it).
void Announce(const Engine& engine, const Listeners& l) {
  const std::string http = absl::GetFlag(FLAGS_http);
  std::cout << "toegang: serving policy " << engine.policy()->id();
  if (l.http) std::cout << " http=" << http.substr(0, http.rfind(':')) << ":" << l.http->port();
  if (l.frames && !absl::GetFlag(FLAGS_socket).empty()) std::cout << " socket=" << absl::GetFlag(FLAGS_socket);
  if (l.frames && l.frames->tcp_port() > 0) std::cout << " tcp=" << l.frames->tcp_port();
  std::cout << std::endl;
}

// Returns on SIGTERM or SIGINT; SIGHUP reloads the policy.
void AwaitStop(const sigset_t& signals, sidecar::Service& service) {
  while (true) {
    int sig = 0;
    if (sigwait(&signals, &sig) != 0) continue;
    if (sig != SIGHUP) return;
    sidecar::Reply r = service.ReloadPolicy();
    std::cerr << "toegang: SIGHUP: " << r.body << std::endl;
  }
}

int Refused(const absl::Status& why, int status) {
  Complain(std::string(why.message()));
  return status;
}

}  // namespace

int Serve(const std::vector<std::string>& args) {
  if (!args.empty()) {
    Complain("usage: toegang serve [--db DIR | --facts FILE] --http HOST:PORT --socket PATH [--tcp HOST:PORT] "
             "[--policy FILE]");
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

  absl::StatusOr<ServeConfig> config = ReadServeFlags();
  if (!config.ok()) return Refused(config.status(), kBadInput);
  absl::StatusOr<FhirImportOptions> fhir = FhirImportFlags();
  if (!fhir.ok()) return Refused(fhir.status(), kBadInput);
  absl::StatusOr<std::unique_ptr<Engine>> engine = OpenServeEngine(*config);
  if (!engine.ok()) return Refused(engine.status(), IsCallersFault(engine.status()) ? kBadInput : kFailure);
  sidecar::Service service(engine->get(), sidecar::Limits{}, LoadPolicyFlag,
                           config->tokens ? &*config->tokens : nullptr, *std::move(fhir));
  absl::StatusOr<Listeners> listeners = StartListeners(&service, *config);
  if (!listeners.ok()) return Refused(listeners.status(), IsCallersFault(listeners.status()) ? kBadInput : kFailure);
  Announce(**engine, *listeners);

  AwaitStop(signals, service);
  std::cerr << "toegang: stopping: no new connections; finishing what is in flight" << std::endl;
  if (listeners->http) listeners->http->Shutdown();
  if (listeners->frames) listeners->frames->Shutdown();
  absl::Status flushed = (*engine)->FlushAccessLog();
  if (!flushed.ok()) Complain(absl::StrCat("access log: ", flushed.message()));
  engine->reset();  // closes the store
  std::cerr << "toegang: stopped" << std::endl;
  return kOk;
}

}  // namespace toegang::cli
