// Copyright toegang authors.
//
// The replicated store (replica.h). PostgreSQL's side:
//   toegang_meta   key -> value: "format" (1), "history" (32 hex digits, made once)
//   toegang_facts  seq, batch_end (the last seq of its batch), arrival_us, id_key
//                  (UniqueIdKey, unique), node, body (the fact as engine/facts/fact_codec
//                  encodes it, provenance included); append-only by trigger.
//   toegang_access_log, toegang_log_chains: each node's access log (shipper.cc).
// A batch is applied whole: the applier takes only rows whose batch ends within what it
// read, so a decision never sees half of one.
#include "engine/replica/replica.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "base/detached_status.h"
#include "base/sync.h"
#include "base/threads.h"
#include "engine/facts/fact_codec.h"
#include "engine/replica/pg.h"
#include "engine/replica/wakeup.h"
#include "model/facts.h"
#include "model/status_macros.h"

namespace toegang {
namespace {

constexpr int kFormat = 1;
// pg_advisory_xact_lock keys: "toegang" and "toegang" + 1 in ASCII.
constexpr char kWriteLock[] = "32760384070672231";
constexpr char kSetupLock[] = "32760384070672232";
// Rows applied per local write, at most (a batch larger than this is applied whole).
constexpr int64_t kApplyChunk = 10000;

constexpr char kSchema[] = R"sql(
CREATE TABLE IF NOT EXISTS toegang_meta (key text PRIMARY KEY, value text NOT NULL);
CREATE TABLE IF NOT EXISTS toegang_facts (
  seq bigint PRIMARY KEY,
  batch_end bigint NOT NULL,
  arrival_us bigint NOT NULL,
  id_key text UNIQUE,
  node text NOT NULL,
  body bytea NOT NULL
);
CREATE OR REPLACE FUNCTION toegang_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'toegang_facts is append-only: a fact is withdrawn by a new fact, never changed or removed (DOMAIN D40)';
END $$;
CREATE OR REPLACE TRIGGER toegang_facts_append_only BEFORE UPDATE OR DELETE ON toegang_facts
  FOR EACH ROW EXECUTE FUNCTION toegang_append_only();
CREATE OR REPLACE TRIGGER toegang_facts_no_truncate BEFORE TRUNCATE ON toegang_facts
  FOR EACH STATEMENT EXECUTE FUNCTION toegang_append_only();
CREATE TABLE IF NOT EXISTS toegang_access_log (
  chain text NOT NULL,
  seq bigint NOT NULL,
  node text NOT NULL,
  patient text NOT NULL,
  at_us bigint NOT NULL,
  entry bytea NOT NULL,
  PRIMARY KEY (chain, seq)
);
CREATE INDEX IF NOT EXISTS toegang_access_log_patient ON toegang_access_log (patient, at_us);
CREATE TABLE IF NOT EXISTS toegang_log_chains (
  chain text PRIMARY KEY,
  node text NOT NULL,
  head bigint NOT NULL,
  shipped bigint NOT NULL,
  reported_us bigint NOT NULL
);
INSERT INTO toegang_meta VALUES ('format', '1'), ('history', replace(gen_random_uuid()::text, '-', ''))
  ON CONFLICT (key) DO NOTHING;
)sql";

// Creates or checks the tables; returns the history's name.
absl::StatusOr<std::string> SetUp(pg::Conn& c) {
  TOEGANG_RETURN_IF_ERROR(c.Exec("BEGIN").status());
  auto fail = [&](absl::Status s) {
    c.Exec("ROLLBACK").IgnoreError();
    return s;
  };
  if (absl::Status s = c.Exec(absl::StrCat("SELECT pg_advisory_xact_lock(", kSetupLock, ")")).status(); !s.ok()) {
    return fail(s);
  }
  absl::StatusOr<pg::Result> exists = c.Exec("SELECT to_regclass('toegang_meta') IS NOT NULL");
  if (!exists.ok()) return fail(exists.status());
  if (exists->Get(0, 0) == "t") {
    absl::StatusOr<pg::Result> format = c.Exec("SELECT value FROM toegang_meta WHERE key = 'format'");
    if (!format.ok()) return fail(format.status());
    int version = 0;
    if (format->rows() != 1 || !absl::SimpleAtoi(format->Get(0, 0), &version)) {
      return fail(absl::FailedPreconditionError(absl::StrCat(
          "PostgreSQL at ", c.where(), " has a toegang_meta table without a format: not a toegang history")));
    }
    if (version != kFormat) {
      return fail(absl::FailedPreconditionError(absl::StrCat("PostgreSQL at ", c.where(), " holds a toegang history of format ",
                                                             version, "; this build reads format ", kFormat,
                                                             (version > kFormat ? ": upgrade toegang" : ""))));
    }
  }
  if (absl::Status s = c.Exec(kSchema).status(); !s.ok()) return fail(s);
  absl::StatusOr<pg::Result> history = c.Exec("SELECT value FROM toegang_meta WHERE key = 'history'");
  if (!history.ok()) return fail(history.status());
  TOEGANG_RETURN_IF_ERROR(c.Exec("COMMIT").status());
  if (history->rows() != 1) return absl::DataLossError("toegang_meta names no history");
  return std::string(history->Get(0, 0));
}

// A fact as its row stores it (seq, arrival_us, body), checked against the row's own
// columns.
absl::StatusOr<Fact> RowFact(const pg::Result& r, int row) {
  const uint64_t seq = static_cast<uint64_t>(pg::BinaryInt64(r.Get(row, 0)));
  absl::StatusOr<Fact> f = DecodeFact(r.Get(row, 2));
  if (!f.ok()) {
    return absl::DataLossError(absl::StrCat("fact ", seq, " of the replicated history is corrupt: ", f.status().message()));
  }
  if (f->provenance.seq != seq || f->provenance.arrival != absl::FromUnixMicros(pg::BinaryInt64(r.Get(row, 1)))) {
    return absl::DataLossError(absl::StrCat("fact ", seq,
                                            " of the replicated history disagrees with its own row "
                                            "(its number or arrival was changed in PostgreSQL)"));
  }
  return f;
}

class ReplicatedStoreImpl final : public ReplicatedStore {
 public:
  ReplicatedStoreImpl(const ReplicaOptions& options, std::unique_ptr<FactStore> local, std::string history)
      : options_(options), local_(std::move(local)), history_(std::move(history)) {
    if (options_.node.empty()) options_.node = DefaultNodeName();
    applied_.store(local_->LastSequence(), std::memory_order_release);
  }

  ~ReplicatedStoreImpl() override {
    stop_.store(true, std::memory_order_release);
    wakeup_.Wake();
    if (applier_.joinable()) applier_.join();
  }

  absl::Status Start(std::unique_ptr<pg::Conn> writer) {
    TOEGANG_RETURN_IF_ERROR(wakeup_.Open());
    {
      MutexLock lock(&write_mu_);
      writer_ = std::move(writer);
      if (writer_ != nullptr) {
        // Catches up before the node answers anything.
        absl::StatusOr<uint64_t> newest = Newest(*writer_);
        if (newest.ok()) newest = ApplyUpTo(*writer_, *newest);
        if (!newest.ok() && absl::IsDataLoss(newest.status())) return newest.status();
      }
    }
    applier_ = std::thread([this] {
      NameCurrentThread("toegang-replica");
      ApplierLoop();
    });
    return absl::OkStatus();
  }

  // --- Writes ---------------------------------------------------------------------

  absl::StatusOr<uint64_t> Append(std::vector<Fact> facts) override {
    MutexLock lock(&write_mu_);
    absl::Status begun = Begin();
    if (!begun.ok() && writer_ != nullptr && !writer_->healthy()) {
      // A connection from before PostgreSQL restarted breaks at its first statement;
      // nothing was sent yet, so a new one may try.
      writer_.reset();
      begun = Begin();
    }
    TOEGANG_RETURN_IF_ERROR(Unstored(begun));
    pg::Conn& c = *writer_;
    absl::StatusOr<uint64_t> stored = AppendInTransaction(c, facts);
    if (!stored.ok()) {
      c.Exec("ROLLBACK").IgnoreError();
      return stored.status();
    }
    if (absl::Status committed = c.Exec("COMMIT").status(); !committed.ok()) {
      if (c.healthy()) return Unstored(committed);
      return absl::UnavailableError(absl::StrCat(
          "the connection to PostgreSQL broke while committing: the batch may or may not be stored (look for its "
          "facts' ids with `toegang history` before recording them again): ",
          committed.message()));
    }
    // Committed: the history has it. Applied here at once, so that this node reads its
    // own writes; should that fail, the applier retries.
    {
      MutexLock apply(&apply_mu_);
      if (local_->LastSequence() + 1 == facts.front().provenance.seq) {
        absl::StatusOr<uint64_t> applied = local_->AppendReplicated(std::move(facts));
        if (applied.ok()) Applied(*applied);
      }
    }
    wakeup_.Wake();
    return *stored;
  }

  absl::Status Check(const std::vector<Fact>& facts) override { return local_->Check(facts); }

  absl::StatusOr<uint64_t> AppendReplicated(std::vector<Fact>) override {
    return absl::FailedPreconditionError("a replicated store is written through its history (Append)");
  }
  absl::Status BindReplica(absl::string_view history) override {
    if (history == history_) return absl::OkStatus();
    return absl::FailedPreconditionError(absl::StrCat("this store is a replica of history ", history_));
  }
  absl::StatusOr<std::string> ReplicaOf() override { return history_; }

  // --- Reads: the local replica ----------------------------------------------------

  absl::StatusOr<std::shared_ptr<const PatientRecord>> Patient(absl::string_view patient, absl::Time as_of) override {
    return local_->Patient(patient, as_of);
  }
  std::vector<absl::StatusOr<std::shared_ptr<const PatientRecord>>> Patients(
      absl::Span<const absl::string_view> patients) override {
    return local_->Patients(patients);
  }
  absl::StatusOr<std::shared_ptr<const std::vector<Stored<Relationship>>>> SubstitutionsOf(
      absl::string_view clinician, absl::Time as_of) override {
    return local_->SubstitutionsOf(clinician, as_of);
  }
  absl::StatusOr<std::shared_ptr<const std::vector<Stored<OrgCategory>>>> CategoriesOf(
      absl::string_view organization, absl::Time as_of) override {
    return local_->CategoriesOf(organization, as_of);
  }
  absl::StatusOr<std::vector<Fact>> History(absl::string_view patient, absl::Time as_of) override {
    return local_->History(patient, as_of);
  }
  std::vector<absl::StatusOr<std::shared_ptr<const PatientRecord>>> ScanPatients(
      absl::Span<const absl::string_view> patients) override {
    return local_->ScanPatients(patients);
  }
  absl::StatusOr<std::vector<std::string>> IndexedPatients(absl::Span<const std::string> keys,
                                                           absl::string_view after, size_t limit) override {
    return local_->IndexedPatients(keys, after, limit);
  }
  uint64_t LastSequence() const override { return local_->LastSequence(); }
  // The history in PostgreSQL, and every node's replica of it, would keep what this one
  // removed: a removal must be made in the history itself, which is not built.
  absl::Status Remove(const FactRemoval&, AuditStorage*) override {
    return absl::FailedPreconditionError(
        "this store is a replica of a history kept in PostgreSQL: removing facts from one node would leave them in "
        "the history and on every other node; retention apply works on a store of its own");
  }
  absl::StatusOr<std::optional<std::string>> PatientOfFact(absl::string_view id) override {
    return local_->PatientOfFact(id);
  }

  absl::Status Health() override {
    absl::Status local = local_->Health();
    if (!local.ok()) return local;
    MutexLock lock(&status_mu_);
    return Detached(applying_);  // read on another thread
  }

  // --- Tokens and status -----------------------------------------------------------

  std::string Token(uint64_t seq) const override { return ConsistencyToken(history_, seq); }

  absl::StatusOr<uint64_t> TokenSequence(absl::string_view token) const override {
    std::string history;
    uint64_t seq = 0;
    TOEGANG_RETURN_IF_ERROR(ParseConsistencyToken(token, &history, &seq));
    if (history != history_) {
      return absl::InvalidArgumentError(absl::StrCat("consistency token '", token, "' is of history ", history,
                                                     "; this node replicates history ", history_));
    }
    return seq;
  }

  bool WaitApplied(uint64_t seq, absl::Duration max_wait) override {
    if (applied_.load(std::memory_order_acquire) >= seq) return true;
    const absl::Time deadline = absl::Now() + max_wait;
    MutexLock lock(&applied_mu_);
    while (applied_.load(std::memory_order_acquire) < seq) {
      if (applied_cv_.WaitWithDeadline(&applied_mu_, deadline)) {
        return applied_.load(std::memory_order_acquire) >= seq;
      }
    }
    return true;
  }

  ReplicaStatus Status() const override {
    ReplicaStatus s;
    s.history = history_;
    s.node = options_.node;
    s.applied = applied_.load(std::memory_order_acquire);
    MutexLock lock(&status_mu_);
    s.newest = std::max(newest_, s.applied);
    s.contact = contact_;
    s.connection = Detached(connection_);  // read on another thread
    s.applying = Detached(applying_);
    return s;
  }

  const ReplicaOptions& options() const override { return options_; }

 private:
  // Opens a transaction on the writer's connection, connecting first if need be.
  absl::Status Begin() ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_) {
    if (writer_ == nullptr || !writer_->healthy()) {
      writer_.reset();
      absl::StatusOr<std::unique_ptr<pg::Conn>> c = pg::Conn::Open(options_.conninfo, "toegang-writer");
      if (!c.ok()) return c.status();
      writer_ = *std::move(c);
    }
    // A write is answered only once committed durably, whatever the server's default
    // (with a synchronous standby: once the standby has it too).
    return writer_->Exec("BEGIN; SET LOCAL synchronous_commit = on").status();
  }

  // An error before anything reached PostgreSQL, said so.
  static absl::Status Unstored(const absl::Status& s) {
    if (s.ok()) return s;
    return absl::Status(s.code(), absl::StrCat(s.message(), " (nothing was stored)"));
  }

  // Under the write lock of the history: catch up, check, number, store. REQUIRES: a
  // transaction is open on `c`.
  absl::StatusOr<uint64_t> AppendInTransaction(pg::Conn& c, std::vector<Fact>& facts)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_) {
    if (facts.empty()) return absl::InvalidArgumentError("no facts to record");
    TOEGANG_RETURN_IF_ERROR(Unstored(c.Exec(absl::StrCat("SELECT pg_advisory_xact_lock(", kWriteLock, ")")).status()));
    absl::StatusOr<uint64_t> newest = Newest(c);
    if (!newest.ok()) return Unstored(newest.status());
    absl::StatusOr<uint64_t> applied = ApplyUpTo(c, *newest);
    if (!applied.ok()) return Unstored(applied.status());
    TOEGANG_RETURN_IF_ERROR(local_->Check(facts));
    // The history's clock, never going back: arrivals order like sequence numbers.
    absl::StatusOr<pg::Result> clock = c.Exec(
        "SELECT (extract(epoch FROM clock_timestamp()) * 1000000)::bigint, "
        "(SELECT arrival_us FROM toegang_facts WHERE seq = $1)",
        {absl::StrCat(*newest)});
    if (!clock.ok()) return Unstored(clock.status());
    int64_t arrival_us = 0, last_us = 0;
    TOEGANG_ASSIGN_OR_RETURN(arrival_us, clock->Int(0, 0));
    TOEGANG_ASSIGN_OR_RETURN(last_us, clock->Int(0, 1));
    arrival_us = std::max(arrival_us, last_us);
    const uint64_t batch_end = *newest + facts.size();
    std::string rows;
    uint64_t seq = *newest;
    for (Fact& f : facts) {
      f.provenance.seq = ++seq;
      f.provenance.arrival = absl::FromUnixMicros(arrival_us);
      absl::StrAppend(&rows, seq, "\t", batch_end, "\t", arrival_us, "\t");
      const std::string key = UniqueIdKey(f.body);
      if (key.empty()) {
        rows.append("\\N");
      } else {
        pg::AppendCopyText(&rows, key);
      }
      rows.push_back('\t');
      pg::AppendCopyText(&rows, options_.node);
      rows.push_back('\t');
      pg::AppendCopyBytea(&rows, EncodeFact(f));
      rows.push_back('\n');
    }
    TOEGANG_RETURN_IF_ERROR(Unstored(
        c.CopyIn("COPY toegang_facts (seq, batch_end, arrival_us, id_key, node, body) FROM STDIN", rows)));
    TOEGANG_RETURN_IF_ERROR(
        Unstored(c.Exec("SELECT pg_notify('toegang_facts', $1)", {absl::StrCat(batch_end)}).status()));
    return batch_end;
  }

  // The newest sequence PostgreSQL holds (committed batches only: always whole).
  absl::StatusOr<uint64_t> Newest(pg::Conn& c) {
    absl::StatusOr<pg::Result> r = c.Exec("SELECT coalesce(max(seq), 0) FROM toegang_facts");
    if (!r.ok()) return r.status();
    int64_t newest = 0;
    TOEGANG_ASSIGN_OR_RETURN(newest, r->Int(0, 0));
    MutexLock lock(&status_mu_);
    newest_ = std::max(newest_, static_cast<uint64_t>(newest));
    contact_ = absl::Now();
    return static_cast<uint64_t>(newest);
  }

  // Applies the history's facts up to `upto` (whole batches); returns what is applied.
  // A fact that cannot be applied stops the applier with DataLoss: skipping it would
  // make this node decide on another history than the others.
  absl::StatusOr<uint64_t> ApplyUpTo(pg::Conn& c, uint64_t upto) {
    MutexLock apply(&apply_mu_);
    while (true) {
      const uint64_t have = local_->LastSequence();
      if (have >= upto) return have;
      absl::StatusOr<pg::Result> rows = c.ExecBinary(
          "SELECT seq, arrival_us, body FROM toegang_facts "
          "WHERE seq > $1::bigint AND batch_end <= $2::bigint ORDER BY seq",
          {absl::StrCat(have), absl::StrCat(std::min(upto, have + kApplyChunk))});
      if (rows.ok() && rows->rows() == 0) {
        // The next batch alone is larger than a chunk: it is taken whole.
        rows = c.ExecBinary(
            "SELECT seq, arrival_us, body FROM toegang_facts WHERE seq > $1::bigint AND batch_end = "
            "(SELECT batch_end FROM toegang_facts WHERE seq = $1::bigint + 1) ORDER BY seq",
            {absl::StrCat(have)});
      }
      if (!rows.ok()) return rows.status();
      if (rows->rows() == 0) {
        return Stuck(absl::DataLossError(absl::StrCat("the replicated history has no fact ", have + 1, " though it holds ",
                                                      upto, ": its table was changed by hand")));
      }
      std::vector<Fact> facts;
      facts.reserve(static_cast<size_t>(rows->rows()));
      for (int i = 0; i < rows->rows(); ++i) {
        absl::StatusOr<Fact> f = RowFact(*rows, i);
        if (!f.ok()) return Stuck(f.status());
        facts.push_back(*std::move(f));
      }
      absl::StatusOr<uint64_t> applied = local_->AppendReplicated(std::move(facts));
      if (!applied.ok()) {
        if (absl::IsDataLoss(applied.status()) || absl::IsInvalidArgument(applied.status()) ||
            absl::IsFailedPrecondition(applied.status())) {
          return Stuck(absl::DataLossError(
              absl::StrCat("the replicated history cannot be applied here: ", applied.status().message())));
        }
        return applied.status();  // the local store's own trouble (a full disk): retried
      }
      Applied(*applied);
    }
  }

  absl::Status Stuck(absl::Status why) {
    MutexLock lock(&status_mu_);
    applying_ = why;
    return why;
  }

  void Applied(uint64_t seq) {
    {
      MutexLock lock(&applied_mu_);
      applied_.store(seq, std::memory_order_release);
      applied_cv_.SignalAll();
    }
    MutexLock lock(&status_mu_);
    applying_ = absl::OkStatus();
  }

  void ApplierLoop() {
    std::unique_ptr<pg::Conn> c;
    while (!stop_.load(std::memory_order_acquire)) {
      if (c == nullptr || !c->healthy()) {
        c.reset();
        absl::StatusOr<std::unique_ptr<pg::Conn>> opened = pg::Conn::Open(options_.conninfo, "toegang-applier");
        absl::Status listening = opened.ok() ? (*opened)->Exec("LISTEN toegang_facts").status() : opened.status();
        SetConnection(listening);
        if (!listening.ok()) {
          wakeup_.Sleep(options_.poll_interval);
          continue;
        }
        c = *std::move(opened);
      }
      absl::StatusOr<std::vector<std::string>> notes = c->Notifications();
      absl::StatusOr<uint64_t> newest = notes.ok() ? Newest(*c) : notes.status();
      if (newest.ok()) newest = ApplyUpTo(*c, *newest);
      if (!newest.ok()) {
        if (!c->healthy() || absl::IsUnavailable(newest.status())) {
          SetConnection(newest.status());
          c.reset();
        }
        if (absl::IsDataLoss(newest.status())) {
          wakeup_.Sleep(options_.poll_interval);  // stuck: Health says so; tried again each interval
          continue;
        }
      }
      // Until a notification, a write of this node, or the poll interval.
      wakeup_.Sleep(options_.poll_interval, c != nullptr ? c->socket() : -1);
    }
  }

  void SetConnection(absl::Status s) {
    MutexLock lock(&status_mu_);
    connection_ = std::move(s);
  }

  ReplicaOptions options_;
  const std::unique_ptr<FactStore> local_;
  const std::string history_;

  Mutex write_mu_;  // one write of this node at a time; the advisory lock orders nodes
  std::unique_ptr<pg::Conn> writer_ ABSL_GUARDED_BY(write_mu_);
  Mutex apply_mu_;  // one applier of the local replica at a time

  std::atomic<uint64_t> applied_{0};
  Mutex applied_mu_;
  CondVar applied_cv_;

  mutable Mutex status_mu_;
  uint64_t newest_ ABSL_GUARDED_BY(status_mu_) = 0;
  absl::Time contact_ ABSL_GUARDED_BY(status_mu_) = absl::InfinitePast();
  absl::Status connection_ ABSL_GUARDED_BY(status_mu_);
  absl::Status applying_ ABSL_GUARDED_BY(status_mu_);

  std::atomic<bool> stop_{false};
  replica_internal::Wakeup wakeup_;
  std::thread applier_;
};

}  // namespace

std::string DefaultNodeName() {
  char buf[256] = {};
  if (gethostname(buf, sizeof buf - 1) != 0 || buf[0] == '\0') return "toegang";
  return buf;
}

std::string ConsistencyToken(absl::string_view history, uint64_t seq) {
  return absl::StrCat("tg1.", history, ".", seq);
}

absl::Status ParseConsistencyToken(absl::string_view token, std::string* history, uint64_t* seq) {
  std::vector<absl::string_view> parts = absl::StrSplit(token, '.');
  bool hex = parts.size() == 3 && parts[1].size() == 32;
  if (hex) {
    for (char ch : parts[1]) hex = hex && absl::ascii_isxdigit(static_cast<unsigned char>(ch));
  }
  if (!hex || parts[0] != "tg1" || !absl::SimpleAtoi(parts[2], seq) || parts[2].empty() || parts[2][0] == '+') {
    return absl::InvalidArgumentError(
        absl::StrCat("'", token.substr(0, 80), "' is not a consistency token (tg1.<history>.<sequence>)"));
  }
  *history = std::string(parts[1]);
  return absl::OkStatus();
}

absl::StatusOr<HistoryInfo> DescribeHistory(const std::string& conninfo) {
  absl::StatusOr<std::unique_ptr<pg::Conn>> c = pg::Conn::Open(conninfo, "toegang-status");
  if (!c.ok()) return c.status();
  HistoryInfo info;
  absl::StatusOr<pg::Result> exists = (*c)->Exec("SELECT to_regclass('toegang_meta') IS NOT NULL");
  if (!exists.ok()) return exists.status();
  if (exists->Get(0, 0) != "t") return info;
  absl::StatusOr<pg::Result> meta = (*c)->Exec(
      "SELECT (SELECT value FROM toegang_meta WHERE key = 'history'), "
      "(SELECT value FROM toegang_meta WHERE key = 'format'), "
      "(SELECT coalesce(max(seq), 0) FROM toegang_facts), "
      "(SELECT arrival_us FROM toegang_facts ORDER BY seq DESC LIMIT 1)");
  if (!meta.ok()) return meta.status();
  info.history = std::string(meta->Get(0, 0));
  int64_t v = 0;
  TOEGANG_ASSIGN_OR_RETURN(v, meta->Int(0, 1));
  info.format = static_cast<int>(v);
  TOEGANG_ASSIGN_OR_RETURN(v, meta->Int(0, 2));
  info.newest = static_cast<uint64_t>(v);
  if (!meta->IsNull(0, 3)) {
    TOEGANG_ASSIGN_OR_RETURN(v, meta->Int(0, 3));
    info.newest_arrival = absl::FromUnixMicros(v);
  }
  absl::StatusOr<pg::Result> nodes = (*c)->Exec("SELECT node, count(*) FROM toegang_facts GROUP BY node ORDER BY node");
  if (!nodes.ok()) return nodes.status();
  for (int i = 0; i < nodes->rows(); ++i) {
    TOEGANG_ASSIGN_OR_RETURN(v, nodes->Int(i, 1));
    info.facts_by_node.emplace_back(std::string(nodes->Get(i, 0)), static_cast<uint64_t>(v));
  }
  return info;
}

absl::StatusOr<std::unique_ptr<ReplicatedStore>> ReplicatedStore::Open(const ReplicaOptions& options,
                                                                       std::unique_ptr<FactStore> local) {
  if (options.conninfo.empty()) return absl::InvalidArgumentError("--replicate needs a PostgreSQL connection string");
  if (options.poll_interval <= absl::ZeroDuration()) return absl::InvalidArgumentError("the poll interval must be positive");
  absl::StatusOr<std::unique_ptr<pg::Conn>> conn = pg::Conn::Open(options.conninfo, "toegang-writer");
  std::string history;
  if (conn.ok()) {
    absl::StatusOr<std::string> h = SetUp(**conn);
    if (!h.ok()) return h.status();
    history = *h;
    TOEGANG_RETURN_IF_ERROR(local->BindReplica(history));
  } else if (absl::IsUnavailable(conn.status())) {
    // Decisions may go on from what this node has, if it has a history.
    absl::StatusOr<std::string> bound = local->ReplicaOf();
    if (!bound.ok()) return bound.status();
    if (bound->empty()) return conn.status();
    history = *bound;
  } else {
    return conn.status();
  }
  auto store = std::make_unique<ReplicatedStoreImpl>(options, std::move(local), history);
  TOEGANG_RETURN_IF_ERROR(store->Start(conn.ok() ? *std::move(conn) : nullptr));
  return std::unique_ptr<ReplicatedStore>(std::move(store));
}

}  // namespace toegang
