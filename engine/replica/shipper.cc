// Copyright toegang authors.
//
// The access-log shipper (shipper.h). PostgreSQL's side:
//   toegang_access_log  chain, seq (the key), node, patient, at_us, entry (as the node
//                       stores it: record, previous hash, hash)
//   toegang_log_chains  chain -> node, head (last logged there), shipped, reported_us
#include "engine/replica/shipper.h"

#include <algorithm>
#include <atomic>
#include <thread>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "base/detached_status.h"
#include "base/sync.h"
#include "base/threads.h"
#include "engine/replica/pg.h"
#include "engine/replica/wakeup.h"
#include "model/status_macros.h"
#include "model/time.h"

namespace toegang {
namespace {

// Records per transaction, at most.
constexpr uint64_t kShipChunk = 2000;
// How often a node reports its head even when it has nothing to ship.
constexpr absl::Duration kReportEvery = absl::Seconds(5);

int64_t Micros(absl::Time t, int64_t infinite) {
  if (t == absl::InfinitePast()) return INT64_MIN;
  if (t == absl::InfiniteFuture()) return infinite;
  return absl::ToUnixMicros(t);
}

// The accesses of `patient` in PostgreSQL logged by chains other than `exclude`.
absl::StatusOr<OtherNodesAccesses> ReadAccesses(pg::Conn& c, absl::string_view exclude, absl::string_view patient,
                                               absl::Time from, absl::Time until, size_t limit) {
  OtherNodesAccesses out;
  // Replays are logged but no access: fetched with the rest and left out here, so a
  // page of `limit` may need more rows than `limit`.
  absl::StatusOr<pg::Result> rows = c.ExecBinary(
      "SELECT seq, node, entry FROM toegang_access_log WHERE patient = $1 AND chain <> $2 "
      "AND at_us >= $3::bigint AND at_us < $4::bigint ORDER BY at_us DESC, seq DESC",
      {std::string(patient), std::string(exclude), absl::StrCat(Micros(from, INT64_MIN)),
       absl::StrCat(Micros(until, INT64_MAX))});
  if (!rows.ok()) return rows.status();
  for (int i = 0; i < rows->rows() && out.accesses.size() < limit; ++i) {
    // Each record checked against its own hash: a record changed in PostgreSQL is not
    // shown as an access (verify then finds where the chain breaks).
    ChainCheck alone;
    const bool intact = alone.Next(static_cast<uint64_t>(pg::BinaryInt64(rows->Get(i, 0))), rows->Get(i, 2));
    absl::StatusOr<AuditEvent> e = DecodeAuditEntry(rows->Get(i, 2));
    if (!intact || !e.ok() || e->patient != patient) {
      return absl::DataLossError(absl::StrCat("access log record ", pg::BinaryInt64(rows->Get(i, 0)), " of node ",
                                              rows->Get(i, 1),
                                              " in PostgreSQL is damaged (run `toegang audit verify --replicate`)"));
    }
    if (!e->replay_as_of) out.accesses.push_back(*std::move(e));
  }
  absl::StatusOr<pg::Result> behind = c.Exec(
      "SELECT node, head - shipped, reported_us FROM toegang_log_chains WHERE chain <> $1 AND head > shipped "
      "ORDER BY node",
      {std::string(exclude)});
  if (!behind.ok()) return behind.status();
  for (int i = 0; i < behind->rows(); ++i) {
    absl::StatusOr<int64_t> reported = behind->Int(i, 2);
    out.missing.push_back(absl::StrCat("node ", behind->Get(i, 0), " had ", behind->Get(i, 1),
                                       " access-log records not yet shipped when it last reported (",
                                       FormatInstant(absl::FromUnixMicros(reported.ok() ? *reported : 0)), ")"));
  }
  return out;
}

// Every chain in PostgreSQL, verified; `own` (if any) also against `local`.
absl::StatusOr<std::vector<ShippedChainReport>> VerifyChains(pg::Conn& c, absl::string_view own, AuditStorage* local) {
  absl::StatusOr<pg::Result> chains = c.Exec("SELECT DISTINCT chain, node FROM toegang_access_log ORDER BY node, chain");
  if (!chains.ok()) return chains.status();
  std::vector<ShippedChainReport> out;
  for (int k = 0; k < chains->rows(); ++k) {
    ShippedChainReport r;
    r.chain = std::string(chains->Get(k, 0));
    r.node = std::string(chains->Get(k, 1));
    ChainCheck check;
    uint64_t after = 0;
    bool going = true;
    while (going) {
      absl::StatusOr<pg::Result> rows = c.ExecBinary(
          "SELECT seq, entry FROM toegang_access_log WHERE chain = $1 AND seq > $2::bigint ORDER BY seq LIMIT 5000",
          {r.chain, absl::StrCat(after)});
      if (!rows.ok()) return rows.status();
      if (rows->rows() == 0) break;
      for (int i = 0; i < rows->rows() && going; ++i) {
        after = static_cast<uint64_t>(pg::BinaryInt64(rows->Get(i, 0)));
        going = check.Next(after, rows->Get(i, 1));
      }
    }
    r.report = check.Report();
    if (r.report.ok && local != nullptr && r.chain == own && r.report.last_seq > 0) {
      // This node's own records: what PostgreSQL holds must be what was logged here.
      absl::StatusOr<std::string> mine = local->ReadEntry(r.report.last_seq);
      const size_t n = check.head().size();
      if (mine.ok() && mine->size() >= n && mine->substr(mine->size() - n) != check.head()) {
        r.report.ok = false;
        r.report.bad_seq = r.report.last_seq;
        r.report.problem = "differs from the record this node logged: changed in PostgreSQL";
      }
    }
    out.push_back(std::move(r));
  }
  return out;
}

class ShipperImpl final : public AccessLogShipper {
 public:
  ShipperImpl(const ReplicaOptions& options, AuditStorage* local, std::string chain)
      : options_(options), local_(local), chain_(std::move(chain)) {}

  ~ShipperImpl() override {
    stop_.store(true, std::memory_order_release);
    wakeup_.Wake();
    if (thread_.joinable()) thread_.join();
  }

  absl::Status Start() {
    TOEGANG_RETURN_IF_ERROR(wakeup_.Open());
    thread_ = std::thread([this] {
      NameCurrentThread("toegang-ship");
      while (!stop_.load(std::memory_order_acquire)) {
        absl::Status s = ShipNow();
        {
          MutexLock lock(&mu_);
          connection_ = s;
        }
        wakeup_.Sleep(options_.poll_interval);
      }
    });
    return absl::OkStatus();
  }

  ShippingStatus Status() const override {
    ShippingStatus s;
    s.chain = chain_;
    uint64_t head = 0;
    std::string hash;
    if (local_->ReadHead(&head, &hash).ok()) s.head = head;
    MutexLock lock(&mu_);
    s.shipped = shipped_;
    s.connection = Detached(connection_);  // read on another thread
    return s;
  }

  absl::Status ShipNow() override {
    MutexLock ship(&ship_mu_);
    TOEGANG_RETURN_IF_ERROR(Connect());
    uint64_t head = 0;
    std::string hash;
    TOEGANG_RETURN_IF_ERROR(local_->ReadHead(&head, &hash));
    uint64_t shipped = Shipped();
    bool any = false;
    while (shipped < head) {
      const uint64_t upto = std::min(head, shipped + kShipChunk);
      absl::Status s = ShipRange(shipped + 1, upto, head);
      if (!s.ok()) return Dropped(s);
      shipped = upto;
      any = true;
    }
    if (!any && absl::Now() - reported_ >= kReportEvery) {
      absl::Status s = Report(head, shipped);
      if (!s.ok()) return Dropped(s);
    }
    return absl::OkStatus();
  }

  absl::StatusOr<OtherNodesAccesses> OthersAccesses(absl::string_view patient, absl::Time from, absl::Time until,
                                                    size_t limit) override {
    MutexLock ship(&ship_mu_);
    TOEGANG_RETURN_IF_ERROR(Connect());
    absl::StatusOr<OtherNodesAccesses> out = ReadAccesses(*conn_, chain_, patient, from, until, limit);
    if (!out.ok()) return Dropped(out.status());
    return out;
  }

  absl::StatusOr<std::vector<ShippedChainReport>> VerifyShipped() override {
    MutexLock ship(&ship_mu_);
    TOEGANG_RETURN_IF_ERROR(Connect());
    absl::StatusOr<std::vector<ShippedChainReport>> out = VerifyChains(*conn_, chain_, local_);
    if (!out.ok()) return Dropped(out.status());
    return out;
  }

 private:
  absl::Status Connect() ABSL_EXCLUSIVE_LOCKS_REQUIRED(ship_mu_) {
    if (conn_ != nullptr && conn_->healthy()) return absl::OkStatus();
    conn_.reset();
    absl::StatusOr<std::unique_ptr<pg::Conn>> c = pg::Conn::Open(options_.conninfo, "toegang-shipper");
    if (!c.ok()) return c.status();
    absl::StatusOr<pg::Result> shipped = (*c)->Exec(
        "SELECT coalesce(max(seq), 0) FROM toegang_access_log WHERE chain = $1", {chain_});
    if (!shipped.ok()) return shipped.status();
    int64_t n = 0;
    TOEGANG_ASSIGN_OR_RETURN(n, shipped->Int(0, 0));
    TOEGANG_RETURN_IF_ERROR(
        (*c)->Exec("CREATE TEMP TABLE IF NOT EXISTS toegang_log_in (LIKE toegang_access_log) ON COMMIT DELETE ROWS")
            .status());
    conn_ = *std::move(c);
    MutexLock lock(&mu_);
    shipped_ = static_cast<uint64_t>(n);
    return absl::OkStatus();
  }

  uint64_t Shipped() const {
    MutexLock lock(&mu_);
    return shipped_;
  }

  // A failure that broke the connection drops it; the next call connects again.
  absl::Status Dropped(absl::Status s) ABSL_EXCLUSIVE_LOCKS_REQUIRED(ship_mu_) {
    if (conn_ != nullptr && !conn_->healthy()) conn_.reset();
    return s;
  }

  // Ships records [first, last]: in one transaction, stored once however often sent.
  absl::Status ShipRange(uint64_t first, uint64_t last, uint64_t head) ABSL_EXCLUSIVE_LOCKS_REQUIRED(ship_mu_) {
    std::string rows;
    for (uint64_t seq = first; seq <= last; ++seq) {
      absl::StatusOr<std::string> entry = local_->ReadEntry(seq);
      if (absl::IsNotFound(entry.status())) continue;  // purged here before it was shipped
      if (!entry.ok()) return entry.status();
      absl::StatusOr<AuditEvent> e = DecodeAuditEntry(*entry);
      if (!e.ok()) {
        return absl::DataLossError(absl::StrCat("access log record ", seq, " cannot be shipped: ", e.status().message()));
      }
      absl::StrAppend(&rows, chain_, "\t", seq, "\t");
      pg::AppendCopyText(&rows, options_.node);
      rows.push_back('\t');
      pg::AppendCopyText(&rows, e->patient);
      absl::StrAppend(&rows, "\t", absl::ToUnixMicros(e->at), "\t");
      pg::AppendCopyBytea(&rows, *entry);
      rows.push_back('\n');
    }
    TOEGANG_RETURN_IF_ERROR(conn_->Exec("BEGIN").status());
    absl::Status s = conn_->CopyIn("COPY toegang_log_in (chain, seq, node, patient, at_us, entry) FROM STDIN", rows);
    if (s.ok()) {
      s = conn_->Exec("INSERT INTO toegang_access_log SELECT * FROM toegang_log_in ON CONFLICT DO NOTHING").status();
    }
    if (s.ok()) s = Upsert(head, last);
    if (s.ok()) s = conn_->Exec("COMMIT").status();
    if (!s.ok()) {
      conn_->Exec("ROLLBACK").IgnoreError();
      return s;
    }
    reported_ = absl::Now();
    MutexLock lock(&mu_);
    shipped_ = last;
    return absl::OkStatus();
  }

  absl::Status Upsert(uint64_t head, uint64_t shipped) ABSL_EXCLUSIVE_LOCKS_REQUIRED(ship_mu_) {
    return conn_
        ->Exec("INSERT INTO toegang_log_chains VALUES ($1, $2, $3::bigint, $4::bigint, $5::bigint) "
               "ON CONFLICT (chain) DO UPDATE SET node = EXCLUDED.node, head = EXCLUDED.head, "
               "shipped = EXCLUDED.shipped, reported_us = EXCLUDED.reported_us",
               {chain_, options_.node, absl::StrCat(head), absl::StrCat(shipped),
                absl::StrCat(absl::ToUnixMicros(absl::Now()))})
        .status();
  }

  absl::Status Report(uint64_t head, uint64_t shipped) ABSL_EXCLUSIVE_LOCKS_REQUIRED(ship_mu_) {
    TOEGANG_RETURN_IF_ERROR(Upsert(head, shipped));
    reported_ = absl::Now();
    return absl::OkStatus();
  }

  const ReplicaOptions options_;
  AuditStorage* const local_;
  const std::string chain_;

  Mutex ship_mu_;  // one user of the connection at a time
  std::unique_ptr<pg::Conn> conn_ ABSL_GUARDED_BY(ship_mu_);
  absl::Time reported_ ABSL_GUARDED_BY(ship_mu_) = absl::InfinitePast();

  mutable Mutex mu_;
  uint64_t shipped_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Status connection_ ABSL_GUARDED_BY(mu_);

  std::atomic<bool> stop_{false};
  replica_internal::Wakeup wakeup_;
  std::thread thread_;
};

}  // namespace

void MergeAccesses(std::vector<AuditEvent>* mine, std::vector<AuditEvent> others, size_t limit) {
  absl::flat_hash_set<std::string> seen;
  for (const AuditEvent& e : *mine) seen.insert(e.event_id);
  for (AuditEvent& e : others) {
    if (!seen.contains(e.event_id)) mine->push_back(std::move(e));
  }
  std::stable_sort(mine->begin(), mine->end(), [](const AuditEvent& a, const AuditEvent& b) { return a.at > b.at; });
  if (mine->size() > limit) mine->resize(limit);
}

absl::StatusOr<OtherNodesAccesses> ShippedAccesses(const std::string& conninfo, absl::string_view exclude_chain,
                                                   absl::string_view patient, absl::Time from, absl::Time until,
                                                   size_t limit) {
  absl::StatusOr<std::unique_ptr<pg::Conn>> c = pg::Conn::Open(conninfo, "toegang-audit");
  if (!c.ok()) return c.status();
  return ReadAccesses(**c, exclude_chain, patient, from, until, limit);
}

absl::StatusOr<std::vector<ShippedChainReport>> VerifyShippedChains(const std::string& conninfo) {
  absl::StatusOr<std::unique_ptr<pg::Conn>> c = pg::Conn::Open(conninfo, "toegang-audit");
  if (!c.ok()) return c.status();
  return VerifyChains(**c, "", nullptr);
}

absl::StatusOr<std::unique_ptr<AccessLogShipper>> AccessLogShipper::Start(const ReplicaOptions& options,
                                                                         AuditStorage* local) {
  absl::StatusOr<std::string> chain = local->ChainId();
  if (!chain.ok()) return chain.status();
  ReplicaOptions o = options;
  if (o.node.empty()) o.node = DefaultNodeName();
  auto shipper = std::make_unique<ShipperImpl>(o, local, *chain);
  TOEGANG_RETURN_IF_ERROR(shipper->Start());
  return std::unique_ptr<AccessLogShipper>(std::move(shipper));
}

}  // namespace toegang
