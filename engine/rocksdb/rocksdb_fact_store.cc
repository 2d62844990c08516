// Copyright toegang authors.
//
// The facts of a durable store (layout.h: the `facts` and `ids` column families).
//
// Writes: a queue of writers as in LevelDB's DBImpl::Write. The writer at the head
// takes every queued batch as one group (BuildGroup validates each on its own and
// merges the valid ones into one WriteBatch with the new last_seq), writes it with
// sync=true so concurrent appends share one fsync (WriteGroup), and then tells the
// group (FinishGroup). A failed write stops appends until the database recovers
// (database.h).
//
// Reads: decoded, immutable PatientRecords in a bounded LRU, invalidated on write.
#include <algorithm>
#include <atomic>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/strip.h"
#include "absl/strings/str_cat.h"
#include "base/sync.h"
#include "engine/facts/fact_codec.h"
#include "engine/facts/prefetch.h"
#include "engine/facts/record_cache.h"
#include "engine/rocksdb/stores.h"
#include "model/fact_index.h"
#include "model/patient_index.h"
#include "model/status_macros.h"

namespace toegang {
namespace {

using namespace rocksdb_layout;  // NOLINT: the layout's names are this file's vocabulary

// What a decoded value costs in the record cache, roughly: the objects, the vectors'
// storage, and for each fact an allowance for ids and texts longer than a string holds
// inline; the key twice (the cache's ring and index) and the entry's bookkeeping.
template <typename T>
size_t VectorBytes(const std::vector<T>& v) {
  return v.capacity() * sizeof(T) + v.size() * 48;
}

size_t RecordBytes(absl::string_view key, const PatientRecord& r) {
  return 2 * key.size() + 96 + sizeof(PatientRecord) + r.patient.capacity() + VectorBytes(r.relationships) +
         VectorBytes(r.consents) + VectorBytes(r.withdrawals) + VectorBytes(r.objections) +
         VectorBytes(r.restrictions) + VectorBytes(r.capacities) + VectorBytes(r.erasure_requests) +
         VectorBytes(r.holds) + VectorBytes(r.removed);
}

template <typename T>
size_t ListBytes(absl::string_view key, const std::vector<Stored<T>>& v) {
  return 2 * key.size() + 96 + sizeof(v) + VectorBytes(v);
}

class RocksDbFactStore final : public FactStore {
 public:
  explicit RocksDbFactStore(std::shared_ptr<Database> db)
      : db_(std::move(db)),
        clock_(db_->options().clock),
        last_seq_(db_->facts_at_open()),
        record_cache_(db_->options().record_cache_bytes / 8 * 7, RecordBytes),
        coverage_cache_(db_->options().record_cache_bytes / 16, ListBytes<Relationship>),
        category_cache_(db_->options().record_cache_bytes / 16, ListBytes<OrgCategory>) {}

  absl::StatusOr<uint64_t> Append(std::vector<Fact> facts) override {
    if (db_->read_only()) return Database::ReadOnlyError();
    Writer w(&facts);
    MutexLock lock(&mu_);
    writers_.push_back(&w);
    while (!w.done && &w != writers_.front()) writers_cv_.Wait(&mu_);
    if (w.done) return w.result;

    // This writer leads: the whole queue is one group.
    Group group;
    group.writers.assign(writers_.begin(), writers_.end());
    absl::Status healthy = db_->Recover();
    if (!healthy.ok()) {
      for (Writer* g : group.writers) g->result = healthy;
    } else if (BuildGroup(&group)) {
      // Written with the lock released, so the next group can queue up meanwhile.
      BeginWrite();
      mu_.Unlock();
      absl::Status written = WriteGroup(&group);
      mu_.Lock();
      FinishGroup(group, written);
    }
    for (size_t i = 0; i < group.writers.size(); ++i) {
      writers_.front()->done = true;
      writers_.pop_front();
    }
    writers_cv_.SignalAll();
    return w.result;
  }

  absl::Status Check(const std::vector<Fact>& facts) override {
    MutexLock lock(&mu_);
    Database::Use use(*db_);
    if (!use.open()) return Database::Closed();
    BatchIds mine;
    return CheckBatch(facts, StoredIds(use), BatchIds{}, &mine);
  }

  // The replica's only writer is its applier (engine/replica), one batch at a time, so
  // this writes under the lock rather than through the queue of writers.
  absl::StatusOr<uint64_t> AppendReplicated(std::vector<Fact> facts) override {
    if (db_->read_only()) return Database::ReadOnlyError();
    MutexLock lock(&mu_);
    if (!writers_.empty()) return absl::FailedPreconditionError("a replica records facts only through its history");
    TOEGANG_RETURN_IF_ERROR(CheckContinues(facts, last_seq_));
    TOEGANG_RETURN_IF_ERROR(db_->Recover());
    Group group;
    {
      Database::Use use(*db_);
      if (!use.open()) return Database::Closed();
      group.instance = use.instance();
      BatchIds accepted;
      TOEGANG_RETURN_IF_ERROR(CheckBatch(facts, StoredIds(use), BatchIds{}, &accepted));
      for (const Fact& f : facts) AddToBatch(use, f, accepted, &group);
      PutIndexEntries(use, &group);
      group.last_seq = facts.empty() ? last_seq_ : facts.back().provenance.seq;
      group.batch.Put(use.cf(kDefault), kLastSeqKey, BigEndian64(group.last_seq));
    }
    BeginWrite();
    absl::Status written = db_->Write(&group.batch, /*sync=*/true, group.instance, "applying replicated facts");
    if (written.ok()) db_->Acknowledge(group.last_seq, 0);
    FinishGroup(group, written);
    if (!written.ok()) return written;
    return last_seq_;
  }

  absl::StatusOr<std::optional<std::string>> PatientOfFact(absl::string_view id) override {
    Database::Use use(*db_);
    if (!use.open()) return Database::Closed();
    std::string patient;
    rocksdb::Status s = use.db()->Get(rocksdb::ReadOptions(), use.cf(kIds), absl::StrCat("w:", id), &patient);
    if (s.IsNotFound()) return std::optional<std::string>();
    if (!s.ok()) return FromRocks(s, "looking up a fact's patient");
    return std::optional<std::string>(std::move(patient));
  }

  absl::StatusOr<std::string> ReplicaOf() override {
    Database::Use use(*db_);
    if (!use.open()) return Database::Closed();
    std::string bound;
    rocksdb::Status s = use.db()->Get(rocksdb::ReadOptions(), use.cf(kDefault), kReplicaOfKey, &bound);
    if (!s.ok() && !s.IsNotFound()) return FromRocks(s, "reading which history the store replicates");
    return bound;
  }

  absl::Status BindReplica(absl::string_view history) override {
    MutexLock lock(&mu_);
    std::string bound;
    rocksdb::WriteBatch batch;
    uint64_t instance = 0;
    {
      Database::Use use(*db_);
      if (!use.open()) return Database::Closed();
      rocksdb::Status s = use.db()->Get(rocksdb::ReadOptions(), use.cf(kDefault), kReplicaOfKey, &bound);
      if (!s.ok() && !s.IsNotFound()) return FromRocks(s, "reading which history the store replicates");
      if (bound == history) return absl::OkStatus();
      TOEGANG_RETURN_IF_ERROR(MayBind(bound, history, last_seq_));
      if (db_->read_only()) return Database::ReadOnlyError();
      batch.Put(use.cf(kDefault), kReplicaOfKey, rocksdb::Slice(history.data(), history.size()));
      instance = use.instance();
    }
    return db_->Write(&batch, /*sync=*/true, instance, "recording the replicated history");
  }

  // The record cache's records of `patients` (null where it holds none), and their keys.
  std::vector<std::shared_ptr<const PatientRecord>> Cached(absl::Span<const absl::string_view> patients,
                                                           std::vector<std::string>* keys) {
    keys->reserve(patients.size());
    for (absl::string_view p : patients) keys->push_back(PatientPrefix(p));
    std::vector<std::shared_ptr<const PatientRecord>> hits(patients.size());
    record_cache_.GetMany(*keys, absl::MakeSpan(hits));
    return hits;
  }

  std::vector<absl::StatusOr<std::shared_ptr<const PatientRecord>>> Patients(
      absl::Span<const absl::string_view> patients) override {
    std::vector<std::string> keys;
    std::vector<std::shared_ptr<const PatientRecord>> hits = Cached(patients, &keys);
    std::vector<absl::StatusOr<std::shared_ptr<const PatientRecord>>> out;
    out.reserve(patients.size());
    // The misses share one iterator, kept from an earlier read where it can be: making
    // one (a view of every level, each file's index) cost about as much as the seek
    // itself (bench/RESULTS.md). A record read while nothing was written is cached, as
    // Patient() does.
    const uint64_t view = View();
    std::optional<Database::Use> use;
    Database::FactsIterator it;
    for (size_t i = 0; i < patients.size(); ++i) {
      if (hits[i] != nullptr) {
        PrefetchRelationships(*hits[i]);
        out.push_back(std::move(hits[i]));
        continue;
      }
      if (!use) use.emplace(*db_);
      if (!use->open()) {
        out.push_back(Database::Closed());
        continue;
      }
      if (it.it == nullptr) it = use->Facts(view);
      const std::string& prefix = keys[i];
      it.it->Seek(prefix);
      absl::StatusOr<std::shared_ptr<const PatientRecord>> read = RecordFrom(*it.it, prefix, patients[i]);
      if (!read.ok()) {
        it.it.reset();  // made afresh for the next
      } else if (StillSettled(view)) {
        record_cache_.Put(prefix, *read);
      }
      out.push_back(std::move(read));
    }
    if (use && use->open()) use->Keep(std::move(it));
    return out;
  }

  std::vector<absl::StatusOr<std::shared_ptr<const PatientRecord>>> ScanPatients(
      absl::Span<const absl::string_view> patients) override {
    std::vector<std::string> keys;
    std::vector<std::shared_ptr<const PatientRecord>> hits = Cached(patients, &keys);
    std::vector<absl::StatusOr<std::shared_ptr<const PatientRecord>>> out;
    out.reserve(patients.size());
    Database::Use use(*db_);
    if (!use.open()) {
      for (size_t i = 0; i < patients.size(); ++i) out.push_back(Database::Closed());
      return out;
    }
    // One iterator for every miss. The patients come in key order, so where they follow
    // one another in the store (a pass over every patient) the iterator is already on
    // the next one's first fact and steps on, instead of seeking through every level
    // again; otherwise it seeks, near where it was.
    rocksdb::ReadOptions ro;
    ro.total_order_seek = true;
    ro.fill_cache = false;
    std::unique_ptr<rocksdb::Iterator> it;
    for (size_t i = 0; i < patients.size(); ++i) {
      if (hits[i] != nullptr) {
        out.push_back(std::move(hits[i]));
        continue;
      }
      if (it == nullptr) it.reset(use.db()->NewIterator(ro, use.cf(kFacts)));
      const std::string& prefix = keys[i];
      if (!it->Valid() || !it->key().starts_with(prefix)) it->Seek(prefix);
      out.push_back(RecordFrom(*it, prefix, patients[i]));
      if (!out.back().ok()) it.reset();  // sought afresh for the next
    }
    return out;
  }

  absl::StatusOr<std::shared_ptr<const PatientRecord>> Patient(absl::string_view patient, absl::Time as_of) override {
    const bool current = as_of == absl::InfiniteFuture();
    std::string prefix = PatientPrefix(patient);
    if (current) {
      if (auto hit = record_cache_.Get(prefix)) return hit;
    }
    const uint64_t view = View();
    auto rec = std::make_shared<PatientRecord>();
    rec->patient = std::string(patient);
    rec->as_of = as_of;
    absl::Status s = Scan(prefix, as_of, [&](Fact f) {
      rec->Add(f);
      return absl::OkStatus();
    });
    if (!s.ok()) return s;
    std::shared_ptr<const PatientRecord> out = std::move(rec);
    if (current && StillSettled(view)) record_cache_.Put(prefix, out);
    return out;
  }

  absl::StatusOr<std::shared_ptr<const std::vector<Stored<Relationship>>>> SubstitutionsOf(
      absl::string_view clinician, absl::Time as_of) override {
    return ListOf<Relationship>(ClinicianPrefix(clinician), as_of, coverage_cache_);
  }

  absl::StatusOr<std::shared_ptr<const std::vector<Stored<OrgCategory>>>> CategoriesOf(
      absl::string_view organization, absl::Time as_of) override {
    return ListOf<OrgCategory>(OrganizationPrefix(organization), as_of, category_cache_);
  }

  absl::StatusOr<std::vector<Fact>> History(absl::string_view patient, absl::Time as_of) override {
    std::vector<Fact> out;
    absl::Status s = Scan(PatientPrefix(patient), as_of, [&](Fact f) {
      out.push_back(std::move(f));
      return absl::OkStatus();
    });
    if (!s.ok()) return s;
    return out;
  }

  absl::StatusOr<std::vector<std::string>> IndexedPatients(absl::Span<const std::string> keys,
                                                           absl::string_view after, size_t limit) override {
    if (!db_->has_patient_index()) {
      return absl::FailedPreconditionError(
          "the store was written by an older toegang and has no index of patients yet: open it once for writing "
          "(toegang serve or load) to build it");
    }
    Database::Use use(*db_);
    if (!use.open()) return Database::Closed();
    // One iterator per key: an index entry's over its prefix; every patient's over the
    // patients' facts, from one patient to the next (past the last one's facts: '\1'
    // sorts after the '\0' ending a patient's prefix and before any byte of an id); a
    // patient's own over theirs.
    struct Source {
      enum class Kind { kEntries, kPatients, kSelf } kind;
      std::unique_ptr<rocksdb::Iterator> it;
      std::string prefix;  // kEntries: the entries'; kSelf: the patient's facts'
      bool done = false;   // kSelf: the one id given
      bool Valid() const {
        if (done || !it->Valid()) return false;
        if (kind == Kind::kEntries || kind == Kind::kSelf) return it->key().starts_with(prefix);
        return it->key().size() > 1 && it->key()[0] == 'p';
      }
      absl::string_view Id() const {
        const absl::string_view key(it->key().data(), it->key().size());
        if (kind == Kind::kEntries) return key.substr(prefix.size());
        return key.substr(1, key.find('\0') - 1);
      }
      void Next() {
        if (kind == Kind::kEntries) return it->Next();
        if (kind == Kind::kSelf) {
          done = true;
          return;
        }
        // Most patients have a few facts: stepping over them is cheaper than a seek,
        // which looks in every level of the tree again.
        const std::string current(Id());
        for (int step = 0; step < 8; ++step) {
          it->Next();
          if (!Valid() || Id() != current) return;
        }
        it->Seek(absl::StrCat("p", current, "\1"));
      }
    };
    rocksdb::ReadOptions within;
    within.prefix_same_as_start = true;
    rocksdb::ReadOptions across;
    across.total_order_seek = true;
    std::vector<Source> sources;
    sources.reserve(keys.size());
    for (const std::string& key : keys) {
      if (key == kEveryPatientKey) {
        Source s{Source::Kind::kPatients, std::unique_ptr<rocksdb::Iterator>(use.db()->NewIterator(across, use.cf(kFacts))), ""};
        s.it->Seek(after.empty() ? std::string("p") : absl::StrCat("p", after, "\1"));
        sources.push_back(std::move(s));
      } else if (absl::string_view self = key; absl::ConsumePrefix(&self, "=")) {
        if (self <= after) continue;
        Source s{Source::Kind::kSelf, std::unique_ptr<rocksdb::Iterator>(use.db()->NewIterator(within, use.cf(kFacts))),
                 PatientPrefix(self)};
        s.it->Seek(s.prefix);
        sources.push_back(std::move(s));
      } else {
        Source s{Source::Kind::kEntries, std::unique_ptr<rocksdb::Iterator>(use.db()->NewIterator(within, use.cf(kFacts))),
                 PatientIndexPrefix(key)};
        s.it->Seek(absl::StrCat(s.prefix, after));
        if (s.Valid() && s.Id() == after) s.Next();
        sources.push_back(std::move(s));
      }
    }
    std::vector<std::string> out = MergeIndexed(sources, limit);
    for (const Source& s : sources) {
      // An iterator that stopped on an error would make the list silently short.
      TOEGANG_RETURN_IF_ERROR(FromRocks(s.it->status(), "reading the index of patients"));
    }
    return out;
  }

  absl::Status Remove(const FactRemoval& removal, AuditStorage* log) override {
    if (db_->read_only()) return Database::ReadOnlyError();
    const bool with_log = !removal.access_log.empty() && log != nullptr && DatabaseOf(log) == db_.get();
    if (!removal.access_log.empty() && log == nullptr) {
      return absl::InvalidArgumentError("access-log entries to replace, but no access log");
    }
    MutexLock lock(&mu_);
    // Written under the lock, once no group is being written: the patient's facts read
    // here are the ones replaced.
    while (!writers_.empty()) writers_cv_.Wait(&mu_);
    TOEGANG_RETURN_IF_ERROR(db_->Recover());
    rocksdb::WriteBatch batch;
    uint64_t instance = 0;
    const std::string prefix = PatientPrefix(removal.patient);
    {
      Database::Use use(*db_);
      if (!use.open()) return Database::Closed();
      instance = use.instance();
      std::vector<Fact> history;
      TOEGANG_RETURN_IF_ERROR(ScanUnder(use, prefix, absl::InfiniteFuture(), [&](Fact f) {
        history.push_back(std::move(f));
        return absl::OkStatus();
      }));
      AppliedRemoval applied;
      TOEGANG_RETURN_IF_ERROR(ApplyRemoval(removal, &history, &applied));
      for (size_t i : applied.changed) {
        batch.Put(use.cf(kFacts), absl::StrCat(prefix, BigEndian64(history[i].provenance.seq)),
                  EncodeFact(history[i], ""));
      }
      for (const std::string& key : applied.dropped) {
        batch.Delete(use.cf(kFacts), absl::StrCat(PatientIndexPrefix(key), removal.patient));
      }
      for (const std::string& key : applied.freed) batch.Delete(use.cf(kIds), key);
      if (with_log) TOEGANG_RETURN_IF_ERROR(PutReplacements(use, removal.access_log, &batch));
    }
    if (batch.Count() > 0) {
      BeginWrite();
      absl::Status written = db_->Write(&batch, /*sync=*/true, instance, "removing facts under retention");
      if (written.ok()) record_cache_.Erase(prefix);
      EndWrite();
      TOEGANG_RETURN_IF_ERROR(written);
    }
    if (!with_log && !removal.access_log.empty()) return log->Replace(removal.access_log);
    return absl::OkStatus();
  }

  uint64_t LastSequence() const override {
    MutexLock lock(&mu_);
    return last_seq_;
  }

  absl::Status Health() override { return db_->Health(); }

  absl::Status Scrub() override { return db_->Scrub(); }

 private:
  struct Writer {
    explicit Writer(std::vector<Fact>* f) : facts(f) {}
    std::vector<Fact>* facts;
    absl::StatusOr<uint64_t> result = uint64_t{0};
    bool done = false;
  };

  // One leader's write: its writers, and what BuildGroup made of their batches.
  struct Group {
    std::vector<Writer*> writers;
    rocksdb::WriteBatch batch;
    uint64_t last_seq = 0;              // after the group
    uint64_t instance = 0;              // the database opening the batch was built for
    std::vector<std::string> touched;   // cache keys the group changes
    std::vector<std::string> indexed;   // patient index entries, put after the facts
  };

  // Puts the group's index entries, in key order: RocksDB's memtable inserts a run of
  // ascending keys from where the last one went, where keys interleaved with the facts'
  // would send every insert, fact or entry, down the skip list from the top (a load of
  // 420,000 facts took 30% longer so).
  static void PutIndexEntries(const Database::Use& use, Group* group) {
    std::sort(group->indexed.begin(), group->indexed.end());
    group->indexed.erase(std::unique(group->indexed.begin(), group->indexed.end()), group->indexed.end());
    for (const std::string& entry : group->indexed) group->batch.Put(use.cf(kFacts), entry, "");
  }

  // Validates each writer's batch on its own (a bad batch leaves no trace in the
  // group), numbers and stamps the valid ones, and puts them in group->batch. False
  // when nothing is left to write (every writer has its result).
  // REQUIRES: mu_ held.
  bool BuildGroup(Group* group) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    // The database is not reopened while the batch is built for it (its column family
    // handles); WriteGroup writes it only to the same opening.
    Database::Use use(*db_);
    if (!use.open()) {
      for (Writer* g : group->writers) g->result = Database::Closed();
      return false;
    }
    group->instance = use.instance();
    const StoredIds known(use);
    BatchIds accepted;  // what the group's batches accepted so far add
    uint64_t seq = last_seq_;
    const absl::Time arrival = clock_();
    bool any = false;
    for (Writer* g : group->writers) {
      BatchIds mine;
      absl::Status bad = CheckBatch(*g->facts, known, accepted, &mine);
      if (!bad.ok()) {
        g->result = bad;
        continue;
      }
      accepted.Merge(mine);
      for (Fact& f : *g->facts) {
        f.provenance.seq = ++seq;
        f.provenance.arrival = arrival;
        AddToBatch(use, f, accepted, group);
      }
      g->result = seq;
      any = true;
    }
    PutIndexEntries(use, group);
    if (any) group->batch.Put(use.cf(kDefault), kLastSeqKey, BigEndian64(seq));
    group->last_seq = seq;
    return any;
  }

  // Writes the group's batch, synced, and records it as acknowledged before anyone is
  // told. REQUIRES: mu_ not held (the next group queues meanwhile).
  absl::Status WriteGroup(Group* group) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::Status written = db_->Write(&group->batch, /*sync=*/true, group->instance, "writing facts");
    if (written.ok()) db_->Acknowledge(group->last_seq, 0);
    return written;
  }

  // Around every write of facts (BeginWrite before it, EndWrite after, whether it was
  // written or not). EndWrite moves the generation on before it counts the write done,
  // so a read that finds none in flight (View) also finds the generation it left.
  void BeginWrite() { writing_.fetch_add(1, std::memory_order_seq_cst); }
  void EndWrite() {
    generation_.fetch_add(1, std::memory_order_release);
    writing_.fetch_sub(1, std::memory_order_release);
    db_->DropKeptIterators();  // none of them would serve again
  }

  // What a read goes by, taken before it reads: the generation, or Database::kUnsettled
  // while a write is in flight (the read may see it or not: nothing it reads is cached,
  // and no kept iterator serves it).
  uint64_t View() const {
    if (writing_.load(std::memory_order_acquire) != 0) return Database::kUnsettled;
    return generation_.load(std::memory_order_acquire);
  }
  // Whether what was read under `view` may be cached: no write began or ended since.
  bool StillSettled(uint64_t view) const { return view != Database::kUnsettled && view == View(); }

  // Tells the group's writers, and makes the written facts visible to readers.
  // REQUIRES: mu_ held.
  void FinishGroup(const Group& group, const absl::Status& written) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (!written.ok()) {
      for (Writer* g : group.writers) {
        if (g->result.ok()) g->result = written;
      }
      EndWrite();
      return;
    }
    last_seq_ = group.last_seq;
    for (const std::string& key : group.touched) {
      if (key[0] == 'p') {
        record_cache_.Erase(key);
      } else if (key[0] == 'c') {
        coverage_cache_.Erase(key);
      } else {
        category_cache_.Erase(key);
      }
    }
    EndWrite();
  }

  // The store's ids, as CheckBatch (model/fact_index.h) asks them.
  class StoredIds final : public KnownIds {
   public:
    explicit StoredIds(const Database::Use& use) : use_(use) {}
    absl::StatusOr<bool> Taken(const std::string& key) const override {
      std::string ignored;
      rocksdb::Status s = use_.db()->Get(rocksdb::ReadOptions(), use_.cf(kIds), key, &ignored);
      if (s.IsNotFound()) return false;
      if (!s.ok()) return FromRocks(s, "checking its id");
      return true;
    }
    absl::StatusOr<std::optional<std::string>> PatientOfTarget(absl::string_view id) const override {
      std::string patient;
      rocksdb::Status s = use_.db()->Get(rocksdb::ReadOptions(), use_.cf(kIds), absl::StrCat("w:", id), &patient);
      if (s.IsNotFound()) return std::optional<std::string>();
      if (!s.ok()) return FromRocks(s, "checking what it withdraws");
      return std::optional<std::string>(std::move(patient));
    }

    absl::StatusOr<PatientRecord> RecordOf(absl::string_view patient) const override {
      PatientRecord rec;
      rec.patient = std::string(patient);
      absl::Status s = ScanUnder(use_, PatientPrefix(patient), absl::InfiniteFuture(), [&](Fact f) {
        rec.Add(f);
        return absl::OkStatus();
      });
      if (!s.ok()) return s;
      return rec;
    }

   private:
    const Database::Use& use_;
  };

  // REQUIRES: `accepted` includes the batch of `f`, which CheckBatch accepted.
  void AddToBatch(const Database::Use& use, const Fact& f, const BatchIds& accepted, Group* group)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    std::string withdrawal_patient;
    if (const auto* w = std::get_if<Withdrawal>(&f.body)) {
      if (const std::string* p = accepted.PatientOf(w->target)) {
        withdrawal_patient = *p;
      } else {
        use.db()->Get(rocksdb::ReadOptions(), use.cf(kIds), absl::StrCat("w:", w->target), &withdrawal_patient)
            .PermitUncheckedError();  // CheckBatch read it just before, under the same lock
      }
    }
    const FactOwner owner_of = OwnerOf(f.body, withdrawal_patient);
    // The key prefix this fact is filed under.
    std::string owner = owner_of.kind == FactOwner::Kind::kClinician      ? ClinicianPrefix(owner_of.id)
                        : owner_of.kind == FactOwner::Kind::kOrganization ? OrganizationPrefix(owner_of.id)
                                                                          : PatientPrefix(owner_of.id);
    group->batch.Put(use.cf(kFacts), absl::StrCat(owner, BigEndian64(f.provenance.seq)),
                     EncodeFact(f, withdrawal_patient));
    std::string key = UniqueIdKey(f.body);
    if (!key.empty()) {
      group->batch.Put(use.cf(kIds), key, IsWithdrawable(f.body) ? *FactPatient(f.body) : std::string());
    }
    if (std::optional<std::string> key = IndexKeyOf(f.body); key && owner_of.kind == FactOwner::Kind::kPatient) {
      group->indexed.push_back(absl::StrCat(PatientIndexPrefix(*key), owner_of.id));
    }
    group->touched.push_back(std::move(owner));
  }

  // The facts of type T filed under `prefix` (a clinician's coverages, an
  // organisation's categories), as of `as_of`; the current list through `cache`.
  template <typename T>
  absl::StatusOr<std::shared_ptr<const std::vector<Stored<T>>>> ListOf(const std::string& prefix, absl::Time as_of,
                                                                      RecordCache<std::vector<Stored<T>>>& cache) {
    const bool current = as_of == absl::InfiniteFuture();
    if (current) {
      if (auto hit = cache.Get(prefix)) return hit;
    }
    const uint64_t view = View();
    auto list = std::make_shared<std::vector<Stored<T>>>();
    absl::Status s = Scan(prefix, as_of, [&](Fact f) {
      const T* item = std::get_if<T>(&f.body);
      if (item == nullptr) return absl::DataLossError(absl::StrCat("a ", prefix[0] == 'c' ? "coverage" : "category",
                                                                   " key holds another kind of fact"));
      list->push_back({*item, f.provenance});
      return absl::OkStatus();
    });
    if (!s.ok()) return s;
    std::shared_ptr<const std::vector<Stored<T>>> out = std::move(list);
    if (current && StillSettled(view)) cache.Put(prefix, out);
    return out;
  }

  // Calls `visit` for each fact under `prefix` with arrival <= as_of, in sequence order.
  template <typename Visit>
  absl::Status Scan(const std::string& prefix, absl::Time as_of, Visit visit) {
    Database::Use use(*db_);
    if (!use.open()) return Database::Closed();
    Database::FactsIterator it = use.Facts(View());
    it.it->Seek(prefix);
    absl::Status read = ReadFrom(*it.it, prefix, as_of, visit);
    if (read.ok()) use.Keep(std::move(it));
    return read;
  }

  // Scan's part with the database held open, for a write about to be made: a new
  // iterator, never kept. REQUIRES: use.open().
  template <typename Visit>
  static absl::Status ScanUnder(const Database::Use& use, const std::string& prefix, absl::Time as_of, Visit visit) {
    Database::FactsIterator it = use.Facts(Database::kUnsettled);
    it.it->Seek(prefix);
    return ReadFrom(*it.it, prefix, as_of, visit);
  }

  // `patient`'s record as it is now, read from where `it` stands on (sought to `prefix`,
  // or stepped onto it).
  static absl::StatusOr<std::shared_ptr<const PatientRecord>> RecordFrom(rocksdb::Iterator& it,
                                                                         const std::string& prefix,
                                                                         absl::string_view patient) {
    auto rec = std::make_shared<PatientRecord>();
    rec->patient = std::string(patient);
    TOEGANG_RETURN_IF_ERROR(ReadFrom(it, prefix, absl::InfiniteFuture(), [&](Fact f) {
      rec->Add(f);
      return absl::OkStatus();
    }));
    return std::shared_ptr<const PatientRecord>(std::move(rec));
  }

  // Calls `visit` for each fact under `prefix` with arrival <= as_of, from where `it`
  // stands on (sought to the prefix, or stepped onto it) to the prefix's end.
  template <typename Visit>
  static absl::Status ReadFrom(rocksdb::Iterator& it, const std::string& prefix, absl::Time as_of, Visit visit) {
    for (; it.Valid() && it.key().starts_with(prefix); it.Next()) {
      absl::StatusOr<Fact> fact = DecodeFact(absl::string_view(it.value().data(), it.value().size()));
      if (!fact.ok()) {
        return absl::DataLossError(absl::StrCat("stored fact under '", prefix.substr(1, prefix.size() - 2),
                                                "' is corrupt: ", fact.status().message()));
      }
      if (fact->provenance.arrival > as_of) continue;
      absl::Status s = visit(*std::move(fact));
      if (!s.ok()) return s;
    }
    return FromRocks(it.status(), "reading facts");
  }

  const std::shared_ptr<Database> db_;
  const ArrivalClock clock_;

  mutable Mutex mu_;
  CondVar writers_cv_;
  std::deque<Writer*> writers_ ABSL_GUARDED_BY(mu_);
  uint64_t last_seq_ ABSL_GUARDED_BY(mu_) = 0;

  // What the caches and the kept iterators (Database::Use::Facts) go by. generation_
  // moves at the end of every write of facts, written or not; writing_ counts the
  // writes in flight, during which a read may see the write or not.
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> writing_{0};
  RecordCache<PatientRecord> record_cache_;
  RecordCache<std::vector<Stored<Relationship>>> coverage_cache_;
  RecordCache<std::vector<Stored<OrgCategory>>> category_cache_;
};

}  // namespace

std::unique_ptr<FactStore> NewRocksDbFactStore(std::shared_ptr<Database> db) {
  return std::make_unique<RocksDbFactStore>(std::move(db));
}

}  // namespace toegang
