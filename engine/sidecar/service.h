// Copyright toegang authors.
//
// service.h: what the sidecar does, independent of how bytes arrive. The HTTP front
// (http_server.cc) and the frame protocol (socket_server.cc) both call this, and so do
// the tests and fuzzers: one code path for every way a request gets in.
//
// Every method is safe to call from many threads at once. None throws; malformed
// input gives a 400-class answer naming the problem and changes nothing stored.
#ifndef TOEGANG_ENGINE_SIDECAR_SERVICE_H_
#define TOEGANG_ENGINE_SIDECAR_SERVICE_H_

#include <array>
#include <atomic>
#include <functional>
#include <memory>
#include <string>

#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "engine/sidecar/auth.h"
#include "engine/fhir/fhir_import.h"
#include "engine/toegang.h"

namespace toegang::sidecar {

struct Limits {
  size_t max_body_bytes = 1 << 20;   // an HTTP body. Default: 1 MiB.
  size_t max_batch = 1000;           // requests in one batch. Default: 1,000.
  size_t max_frame_bytes = 64 << 10; // a protocol frame. Default: 64 KiB.
  size_t max_facts = 10000;          // facts in one POST /v1/facts. Default: 10,000.
};

// An HTTP-style answer.
struct Reply {
  int status = 200;
  std::string body;
  std::string content_type = "application/json";
};

class Service {
 public:
  // `reload` produces the policy a reload installs (from the --policy file or the
  // built-in pack); it fails with the `policy check` findings.
  // REQUIRES: `engine` outlives the service; so does `tokens` (may be null: nobody
  // authenticates).
  // `fhir` says how POST /fhir reads FHIR Consents (engine/fhir/fhir_import.h).
  Service(Engine* engine, Limits limits, std::function<absl::StatusOr<std::shared_ptr<const Policy>>()> reload,
          const TokenSet* tokens = nullptr, FhirImportOptions fhir = {});

  // An HTTP request to the endpoint it names: `path` without its query, percent-decoded;
  // `arg(name)` a decoded query argument ("" when absent), from `caller`. Unknown paths
  // are 404, a known path with the wrong method 405; every endpoint but /healthz
  // answers 401 to a caller not authenticated and 403 to one without its scope
  // (auth.h), each with a JSON error.
  Reply Route(absl::string_view method, absl::string_view path, absl::string_view body,
              absl::FunctionRef<std::string(const char* name)> arg, const Caller& caller);

  // The caller presenting `authorization` (an HTTP Authorization header value,
  // "Bearer TOKEN", or a frame hello's token) from `client` (its address, for the
  // failure limiter). Unauthenticated for a missing or unknown token; ResourceExhausted
  // instead once `client` failed more than 20 times in a second. A valid token always
  // passes. Counted on /metrics. Without a token set nobody is authenticated.
  absl::StatusOr<Caller> Authenticate(absl::string_view authorization, absl::string_view client);

  // Counts a connection refused for its peer (a Unix-socket peer not allowed).
  void CountPeerRefused() { auth_failures_[kPeerRefused].fetch_add(1, std::memory_order_relaxed); }

  // POST /v1/decisions: one request object, or {"requests":[...]} for a batch.
  Reply Decisions(absl::string_view body);
  // POST /v1/facts: JSON Lines; atomic; durable when it answers 200. A fact carrying
  // recorded_at needs `may_import` (the facts:import scope): back-dating is an import.
  Reply Facts(absl::string_view body, bool may_import = true);
  // GET /v1/patients/{id}/history?as_of=
  Reply History(absl::string_view patient, absl::string_view as_of);
  // POST /access/v1/evaluation, /access/v1/evaluations, /access/v1/search/subject: the
  // OpenID AuthZEN Authorization API 1.0 over the same engine (authzen.h).
  Reply AuthzenEvaluation(absl::string_view body);
  Reply AuthzenEvaluations(absl::string_view body);
  Reply AuthzenSubjectSearch(absl::string_view body);
  Reply AuthzenResourceSearch(absl::string_view body);
  Reply ActorPatients(absl::string_view actor, absl::string_view body);
  Reply RetentionReply(absl::string_view patient, absl::string_view at);
  // A page of the listing, or the error as its status says (400 bad input, 409 a store
  // that cannot list yet, 500 otherwise).
  Reply PatientsPage(const PatientsQuery& query, bool authzen);
  // POST /v1/patients/{id}/grants {"at","action","category","purpose"?}: who may.
  Reply Grants(absl::string_view patient, absl::string_view body);
  // GET /v1/organizations/{id}/history?as_of=: its care-provider categories.
  Reply OrganizationHistory(absl::string_view organization, absl::string_view as_of);

  // POST /fhir (a Bundle of Consents, or one) and POST /fhir/Consent: the import's
  // transaction-response Bundle, or an OperationOutcome (400, 422, 503, 500).
  Reply FhirImport(absl::string_view body);
  // GET /fhir/Consent?patient=&status=&_count=&_offset=&_at= (fhir_read.h).
  Reply FhirSearch(absl::FunctionRef<std::string(const char* name)> arg);
  // GET /fhir/Consent/{id} and, with `history`, /fhir/Consent/{id}/_history.
  Reply FhirRead(absl::string_view id, bool history);
  // GET /v1/patients/{id}/access-log?from=&until=
  Reply AccessLog(absl::string_view patient, absl::string_view from, absl::string_view until);
  Reply Healthz();
  // GET /metrics, Prometheus text format.
  Reply Metrics();
  // POST /v1/policy/reload and SIGHUP: swaps the pack atomically, or keeps the old one.
  Reply ReloadPolicy();

  // One protocol frame (without its length prefix) -> the response frame's bytes.
  std::string DecideFrame(absl::string_view frame);

  // The hello frame that opens a TCP connection (schemas/wire.fbs Hello), from
  // `client`: the caller, which must hold the decide scope, or why not. `*answer` gets
  // the response frame either way (an error in it when refused).
  absl::StatusOr<Caller> HelloFrame(absl::string_view frame, absl::string_view client, std::string* answer);

  // Counts a request refused at the transport (too large, timed out, malformed).
  void CountTransportError(absl::string_view kind);

  const Limits& limits() const { return limits_; }

 private:
  EngineDecision DecideCounted(const AccessRequest& request);
  std::vector<EngineDecision> DecideBatchCounted(absl::Span<const AccessRequest> requests);
  void Count(const EngineDecision& d, int64_t ns);

  Engine* const engine_;
  const Limits limits_;
  std::function<absl::StatusOr<std::shared_ptr<const Policy>>()> reload_;
  const TokenSet* const tokens_;
  FhirImporter fhir_;
  FailureLimiter limiter_{20, absl::Seconds(1)};

  enum AuthFailure { kMissing, kUnknown, kRateLimited, kNoScope, kPeerRefused, kAuthFailures };
  std::array<std::atomic<uint64_t>, kAuthFailures> auth_failures_{};

  // Metrics.
  static constexpr int kReasons = EnumCount<Reason>();
  static constexpr int kBuckets = 12;
  std::array<std::array<std::atomic<uint64_t>, kReasons>, 2> decisions_{};  // [permitted][first reason]
  std::array<std::atomic<uint64_t>, kBuckets + 1> latency_buckets_{};
  std::atomic<uint64_t> latency_sum_ns_{0};
  std::atomic<uint64_t> latency_count_{0};
  std::atomic<uint64_t> facts_written_{0};
  std::atomic<uint64_t> invalid_requests_{0};
  std::atomic<uint64_t> transport_errors_{0};
  std::atomic<uint64_t> reloads_ok_{0};
  std::atomic<uint64_t> reloads_refused_{0};
};

// An error answer: `status` with {"error": message}.
Reply ErrorReply(int status, absl::string_view message);

}  // namespace toegang::sidecar

#endif  // TOEGANG_ENGINE_SIDECAR_SERVICE_H_
