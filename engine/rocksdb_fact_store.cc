// Copyright toegang authors.
//
// The durable fact store on RocksDB. The only file of toegang that includes RocksDB
// headers (STYLE.md): everything else sees FactStore.
//
// Layout (column families):
//   default  "toegang/format_version" -> decimal; "toegang/last_seq" -> 8 bytes big-endian
//   facts    'p' patient '\0' seq(8, big-endian) -> StoredFact  (every fact about a patient)
//            'c' clinician '\0' seq                -> StoredFact  (substitute_for coverage)
//   ids      kind ':' id -> patient     (duplicate ids; withdrawal targets)
//   audit    seq(8, big-endian) -> AuditRecord, prev hash(32), hash(32) (the chain)
//   audit_by_patient  patient '\0' at(8, big-endian, sign-flipped) seq(8) -> ""
//            (the patient's overview, newest first by scanning backwards)
//   default also "toegang/audit_head" -> seq(8) hash(32), "toegang/audit_checkpoint"
// "Every fact about P" is one prefix scan; the prefix extractor cuts at '\0', so bloom
// filters on prefixes skip SST files without P. Ids never contain control bytes
// (model/json.cc), so '\0' cannot occur inside one.
//
// Writes: a queue of writers as in LevelDB's DBImpl::Write. The writer at the head
// validates every queued batch (each atomically, on its own), merges the valid ones into
// one WriteBatch with the new last_seq, and writes it with sync=true: concurrent
// appends share one fsync. An I/O error on write is sticky: later appends fail until the
// store is reopened, so memory and disk never disagree.
//
// Reads: decoded, immutable PatientRecords in a bounded LRU, invalidated on write.
#include <atomic>
#include <deque>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "base/sync.h"
#include "engine/fact_codec.h"
#include "engine/fact_store.h"
#include "engine/record_cache.h"
#include "rocksdb/cache.h"
#include "rocksdb/db.h"
#include "rocksdb/filter_policy.h"
#include "rocksdb/memtablerep.h"
#include "rocksdb/options.h"
#include "rocksdb/slice_transform.h"
#include "rocksdb/table.h"
#include "rocksdb/write_batch.h"

namespace toegang {
namespace {

constexpr char kFormatKey[] = "toegang/format_version";
constexpr char kLastSeqKey[] = "toegang/last_seq";
constexpr char kFactsCf[] = "facts";
constexpr char kIdsCf[] = "ids";
constexpr char kAuditCf[] = "audit";
constexpr char kAuditIndexCf[] = "audit_by_patient";
constexpr char kAuditHeadKey[] = "toegang/audit_head";
constexpr char kAuditCheckpointKey[] = "toegang/audit_checkpoint";
enum Cf { kDefault = 0, kFacts = 1, kIds = 2, kAudit = 3, kAuditIndex = 4 };

absl::Status FromRocks(const rocksdb::Status& s, absl::string_view what) {
  if (s.ok()) return absl::OkStatus();
  std::string msg = absl::StrCat(what, ": ", s.ToString());
  if (s.IsCorruption()) return absl::DataLossError(msg);
  if (s.IsNotFound()) return absl::NotFoundError(msg);
  return absl::InternalError(msg);
}

std::string BigEndian64(uint64_t v) {
  std::string out(8, '\0');
  for (int i = 7; i >= 0; --i) {
    out[i] = static_cast<char>(v & 0xff);
    v >>= 8;
  }
  return out;
}

uint64_t ReadBigEndian64(absl::string_view s) {
  uint64_t v = 0;
  for (size_t i = 0; i < 8 && i < s.size(); ++i) v = (v << 8) | static_cast<unsigned char>(s[i]);
  return v;
}

std::string PatientPrefix(absl::string_view patient) { return absl::StrCat("p", patient, absl::string_view("\0", 1)); }
std::string ClinicianPrefix(absl::string_view clinician) {
  return absl::StrCat("c", clinician, absl::string_view("\0", 1));
}

// The prefix of a facts key: everything up to and including the first '\0'.
class OwnerPrefix : public rocksdb::SliceTransform {
 public:
  const char* Name() const override { return "toegang.OwnerPrefix.v1"; }
  rocksdb::Slice Transform(const rocksdb::Slice& key) const override {
    const void* nul = memchr(key.data(), '\0', key.size());
    return rocksdb::Slice(key.data(), static_cast<const char*>(nul) - key.data() + 1);
  }
  bool InDomain(const rocksdb::Slice& key) const override { return memchr(key.data(), '\0', key.size()) != nullptr; }
};

std::string AuditIndexKey(absl::string_view patient, int64_t at_us, uint64_t seq) {
  return absl::StrCat(patient, absl::string_view("\0", 1),
                      BigEndian64(static_cast<uint64_t>(at_us) ^ (uint64_t{1} << 63)), BigEndian64(seq));
}

class RocksDbFactStore final : public FactStore, public AuditStorage {
 public:
  static absl::StatusOr<std::unique_ptr<FactStore>> Open(const std::string& path, const DurableStoreOptions& o) {
    std::unique_ptr<RocksDbFactStore> store(new RocksDbFactStore(o));
    absl::Status s = store->OpenDb(path);
    if (!s.ok()) return s;
    return std::unique_ptr<FactStore>(std::move(store));
  }

  ~RocksDbFactStore() override {
    for (rocksdb::ColumnFamilyHandle* h : handles_) db_->DestroyColumnFamilyHandle(h);
    if (db_) db_->Close().PermitUncheckedError();
  }

  absl::StatusOr<uint64_t> Append(std::vector<Fact> facts) override {
    Writer w(&facts);
    MutexLock lock(&mu_);
    writers_.push_back(&w);
    while (!w.done && &w != writers_.front()) writers_cv_.Wait(&mu_);
    if (w.done) return w.result;

    // This writer leads: take the whole queue as one group.
    std::vector<Writer*> group(writers_.begin(), writers_.end());
    uint64_t seq = last_seq_;
    rocksdb::WriteBatch batch;
    absl::flat_hash_set<std::string> group_ids;
    absl::flat_hash_map<std::string, std::string> group_targets;
    std::vector<std::string> touched;
    bool any = false;
    const absl::Time arrival = clock_();
    if (!sticky_error_.ok()) {
      for (Writer* g : group) g->result = sticky_error_;
    } else {
      for (Writer* g : group) {
        // Validate this batch on its own; a bad batch leaves no trace in the group.
        absl::flat_hash_set<std::string> my_ids;
        absl::flat_hash_map<std::string, std::string> my_targets;
        absl::Status bad = ValidateBatch(*g->facts, group_ids, group_targets, &my_ids, &my_targets);
        if (!bad.ok()) {
          g->result = bad;
          continue;
        }
        for (Fact& f : *g->facts) {
          f.provenance.seq = ++seq;
          f.provenance.arrival = arrival;
          AddToBatch(f, my_targets, group_targets, &batch, &touched);
        }
        group_ids.insert(my_ids.begin(), my_ids.end());
        group_targets.insert(my_targets.begin(), my_targets.end());
        g->result = seq;
        any = true;
      }
      if (any) {
        batch.Put(handles_[kDefault], kLastSeqKey, BigEndian64(seq));
        // Write with the lock released, so the next group can queue up meanwhile.
        mu_.Unlock();
        rocksdb::WriteOptions wo;
        wo.sync = true;
        rocksdb::Status ws = db_->Write(wo, &batch);
        mu_.Lock();
        if (!ws.ok()) {
          sticky_error_ = FromRocks(ws, "writing facts (the store refuses writes until reopened)");
          for (Writer* g : group) {
            if (g->result.ok()) g->result = sticky_error_;
          }
        } else {
          last_seq_ = seq;
          generation_.fetch_add(1, std::memory_order_release);
          for (const std::string& key : touched) {
            if (key[0] == 'p') {
              record_cache_.Erase(key);
            } else {
              coverage_cache_.Erase(key);
            }
          }
        }
      }
    }
    for (Writer* g : group) {
      writers_.pop_front();
      g->done = true;
    }
    writers_cv_.SignalAll();
    return w.result;
  }

  absl::StatusOr<std::shared_ptr<const PatientRecord>> Patient(absl::string_view patient, absl::Time as_of) override {
    const bool current = as_of == absl::InfiniteFuture();
    std::string prefix = PatientPrefix(patient);
    if (current) {
      if (auto hit = record_cache_.Get(prefix)) return hit;
    }
    uint64_t generation = generation_.load(std::memory_order_acquire);
    auto rec = std::make_shared<PatientRecord>();
    rec->patient = std::string(patient);
    absl::Status s = Scan(prefix, as_of, [&](Fact f) {
      rec->Add(f);
      return absl::OkStatus();
    });
    if (!s.ok()) return s;
    std::shared_ptr<const PatientRecord> out = std::move(rec);
    if (current && generation == generation_.load(std::memory_order_acquire)) record_cache_.Put(prefix, out);
    return out;
  }

  absl::StatusOr<std::shared_ptr<const std::vector<Stored<Relationship>>>> SubstitutionsOf(
      absl::string_view clinician, absl::Time as_of) override {
    const bool current = as_of == absl::InfiniteFuture();
    std::string prefix = ClinicianPrefix(clinician);
    if (current) {
      if (auto hit = coverage_cache_.Get(prefix)) return hit;
    }
    uint64_t generation = generation_.load(std::memory_order_acquire);
    auto subs = std::make_shared<std::vector<Stored<Relationship>>>();
    absl::Status s = Scan(prefix, as_of, [&](Fact f) {
      const Relationship* r = std::get_if<Relationship>(&f.body);
      if (r == nullptr) return absl::DataLossError("a coverage key holds no relationship");
      subs->push_back({*r, f.provenance});
      return absl::OkStatus();
    });
    if (!s.ok()) return s;
    std::shared_ptr<const std::vector<Stored<Relationship>>> out = std::move(subs);
    if (current && generation == generation_.load(std::memory_order_acquire)) coverage_cache_.Put(prefix, out);
    return out;
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

  uint64_t LastSequence() const override {
    MutexLock lock(&mu_);
    return last_seq_;
  }

  AuditStorage& audit_storage() override { return *this; }

  // --- AuditStorage ---------------------------------------------------------------

  absl::Status Append(const std::vector<AuditRow>& rows, absl::string_view head_hash, bool sync) override {
    if (rows.empty()) return absl::OkStatus();
    rocksdb::WriteBatch batch;
    for (const AuditRow& r : rows) {
      batch.Put(handles_[kAudit], BigEndian64(r.seq), r.entry);
      batch.Put(handles_[kAuditIndex], AuditIndexKey(r.patient, r.at_us, r.seq), "");
    }
    batch.Put(handles_[kDefault], kAuditHeadKey, absl::StrCat(BigEndian64(rows.back().seq), head_hash));
    rocksdb::WriteOptions wo;
    wo.sync = sync;
    return FromRocks(db_->Write(wo, &batch), "writing the access log");
  }

  absl::Status ReadHead(uint64_t* last_seq, std::string* head_hash) override {
    std::string v;
    rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), handles_[kDefault], kAuditHeadKey, &v);
    if (s.IsNotFound()) {
      *last_seq = 0;
      head_hash->clear();
      return absl::OkStatus();
    }
    if (!s.ok()) return FromRocks(s, "reading the access log head");
    if (v.size() < 8) return absl::DataLossError("the access log head is corrupt");
    *last_seq = ReadBigEndian64(v);
    *head_hash = v.substr(8);
    return absl::OkStatus();
  }

  absl::Status ScanChain(const AuditVisitor& visit) override {
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), handles_[kAudit]));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      if (it->key().size() != 8) return absl::DataLossError("an access log key is corrupt");
      absl::Status s = visit(ReadBigEndian64(absl::string_view(it->key().data(), 8)),
                             absl::string_view(it->value().data(), it->value().size()));
      if (!s.ok()) return s;
    }
    return FromRocks(it->status(), "reading the access log");
  }

  absl::Status ScanPatient(absl::string_view patient, int64_t from_us, int64_t until_us,
                           const AuditVisitor& visit) override {
    const std::string prefix = absl::StrCat(patient, absl::string_view("\0", 1));
    const std::string lower = AuditIndexKey(patient, from_us, 0);
    const std::string upper = AuditIndexKey(patient, until_us, 0);  // first key at `until`
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), handles_[kAuditIndex]));
    for (it->SeekForPrev(upper); it->Valid(); it->Prev()) {
      absl::string_view key(it->key().data(), it->key().size());
      if (key == upper) continue;
      if (!absl::StartsWith(key, prefix) || key < lower || key.size() != prefix.size() + 16) break;
      uint64_t seq = ReadBigEndian64(key.substr(prefix.size() + 8));
      std::string entry;
      rocksdb::Status g = db_->Get(rocksdb::ReadOptions(), handles_[kAudit], BigEndian64(seq), &entry);
      if (g.IsNotFound()) {
        return absl::DataLossError(absl::StrCat("access log record ", seq, " is indexed but missing"));
      }
      if (!g.ok()) return FromRocks(g, "reading the access log");
      absl::Status s = visit(seq, entry);
      if (!s.ok()) return s;
    }
    return FromRocks(it->status(), "reading the access log index");
  }

  absl::Status Purge(const std::vector<AuditRow>& rows, absl::string_view checkpoint) override {
    rocksdb::WriteBatch batch;
    for (const AuditRow& r : rows) {
      batch.Delete(handles_[kAudit], BigEndian64(r.seq));
      batch.Delete(handles_[kAuditIndex], AuditIndexKey(r.patient, r.at_us, r.seq));
    }
    batch.Put(handles_[kDefault], kAuditCheckpointKey, std::string(checkpoint));
    rocksdb::WriteOptions wo;
    wo.sync = true;
    return FromRocks(db_->Write(wo, &batch), "purging the access log");
  }

  absl::StatusOr<std::string> ReadCheckpoint() override {
    std::string v;
    rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), handles_[kDefault], kAuditCheckpointKey, &v);
    if (s.IsNotFound()) return std::string();
    if (!s.ok()) return FromRocks(s, "reading the access log checkpoint");
    return v;
  }

 private:
  struct Writer {
    explicit Writer(std::vector<Fact>* f) : facts(f) {}
    std::vector<Fact>* facts;
    absl::StatusOr<uint64_t> result = uint64_t{0};
    bool done = false;
  };

  explicit RocksDbFactStore(const DurableStoreOptions& o)
      : options_(o), clock_(o.clock), record_cache_(o.record_cache_entries), coverage_cache_(o.record_cache_entries / 4 + 16) {}

  absl::Status OpenDb(const std::string& path) {
    namespace fs = std::filesystem;
    std::error_code ec;
    const bool exists = fs::exists(fs::path(path) / "CURRENT", ec);
    if (!exists && !options_.create_if_missing) {
      return absl::NotFoundError(absl::StrCat("no toegang store at '", path, "' (load facts first)"));
    }
    if (!exists) {
      fs::create_directories(path, ec);
      if (ec) return absl::InternalError(absl::StrCat("cannot create '", path, "': ", ec.message()));
    }

    rocksdb::DBOptions db_options;
    db_options.create_if_missing = !exists;
    db_options.create_missing_column_families = true;  // stores from before the access log
    db_options.paranoid_checks = true;
    db_options.max_background_jobs = 2;
    db_options.keep_log_file_num = 4;
    // The default column family holds two tiny keys and is almost never flushed; without
    // a cap it would keep every write-ahead log file alive.
    db_options.max_total_wal_size = uint64_t{256} << 20;
    // Required by the vector memtables below; writes are serialized by our own queues.
    db_options.allow_concurrent_memtable_write = false;

    // Few shards: an LRU shard must hold the largest block it caches, or that block is
    // evicted as soon as it is released and read from disk again on the next lookup.
    const int shard_bits = options_.block_cache_bytes >= (size_t{64} << 20) ? 4 : 2;
    block_cache_ = rocksdb::NewLRUCache(options_.block_cache_bytes, shard_bits);
    // Index and filter blocks are partitioned (a few KiB each) and live in the block
    // cache, so the cache bounds memory and large files' filters still cache well.
    auto tune = [&](rocksdb::BlockBasedTableOptions& t) {
      t.block_cache = block_cache_;
      t.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
      t.index_type = rocksdb::BlockBasedTableOptions::kTwoLevelIndexSearch;
      t.partition_filters = true;
      t.metadata_block_size = 4096;
      t.cache_index_and_filter_blocks = true;
      t.cache_index_and_filter_blocks_with_high_priority = true;
      t.pin_top_level_index_and_filter = true;
      t.pin_l0_filter_and_index_blocks_in_cache = true;
    };
    rocksdb::BlockBasedTableOptions facts_table;
    tune(facts_table);
    facts_table.whole_key_filtering = false;  // lookups are by prefix
    rocksdb::ColumnFamilyOptions facts_cf;
    facts_cf.prefix_extractor = std::make_shared<OwnerPrefix>();
    facts_cf.memtable_prefix_bloom_size_ratio = 0.05;
    facts_cf.table_factory.reset(rocksdb::NewBlockBasedTableFactory(facts_table));
    facts_cf.compression = rocksdb::kNoCompression;

    rocksdb::BlockBasedTableOptions ids_table;
    tune(ids_table);
    rocksdb::ColumnFamilyOptions ids_cf;
    ids_cf.table_factory.reset(rocksdb::NewBlockBasedTableFactory(ids_table));
    ids_cf.compression = rocksdb::kNoCompression;

    std::vector<rocksdb::ColumnFamilyDescriptor> cfs = {
        {rocksdb::kDefaultColumnFamilyName, rocksdb::ColumnFamilyOptions()},
        {kFactsCf, facts_cf},
        {kIdsCf, ids_cf},
        {kAuditCf, rocksdb::ColumnFamilyOptions()},
        {kAuditIndexCf, rocksdb::ColumnFamilyOptions()},
    };
    // The access log is append-mostly and rarely read: a vector memtable makes appends
    // cheap (it is sorted once, at flush or on a read), which keeps the log writer ahead
    // of the deciders.
    for (size_t i = 3; i < cfs.size(); ++i) {
      rocksdb::BlockBasedTableOptions t;
      t.block_cache = block_cache_;
      cfs[i].options.table_factory.reset(rocksdb::NewBlockBasedTableFactory(t));
      cfs[i].options.memtable_factory = std::make_shared<rocksdb::VectorRepFactory>();
    }
    if (exists) {
      std::vector<std::string> names;
      rocksdb::Status ls = rocksdb::DB::ListColumnFamilies(db_options, path, &names);
      if (!ls.ok()) return Explain(path, ls);
      for (const std::string& n : names) {
        if (n != rocksdb::kDefaultColumnFamilyName && n != kFactsCf && n != kIdsCf && n != kAuditCf &&
            n != kAuditIndexCf) {
          cfs.push_back({n, rocksdb::ColumnFamilyOptions()});  // from a newer build: keep it
        }
      }
      if (std::find(names.begin(), names.end(), kFactsCf) == names.end() && !HoldsNoKeys(path, names)) {
        // A database with data but without our column families belongs to someone else:
        // refuse it, and leave it as it is. Without data it is a creation a crash
        // interrupted before the column families existed: finish it.
        return absl::FailedPreconditionError(absl::StrCat("'", path, "' is a RocksDB database but not a toegang store"));
      }
    }
    rocksdb::DB* raw = nullptr;
    rocksdb::Status os = rocksdb::DB::Open(db_options, path, cfs, &handles_, &raw);
    if (!os.ok()) return Explain(path, os);
    db_.reset(raw);

    std::string version;
    rocksdb::Status gs = db_->Get(rocksdb::ReadOptions(), handles_[kDefault], kFormatKey, &version);
    if (gs.IsNotFound()) {
      // No version and no data anywhere: a creation interrupted (by a crash) between
      // RocksDB creating the database and us recording the version. Finish it.
      if (exists && !Empty()) {
        return absl::FailedPreconditionError(absl::StrCat("'", path, "' has no toegang format version: not a toegang store"));
      }
      rocksdb::WriteOptions wo;
      wo.sync = true;
      rocksdb::Status ps = db_->Put(wo, handles_[kDefault], kFormatKey, std::to_string(kStoreFormatVersion));
      if (!ps.ok()) return FromRocks(ps, "writing the format version");
    } else if (!gs.ok()) {
      return Explain(path, gs);
    } else {
      int v = 0;
      if (!absl::SimpleAtoi(version, &v)) {
        return absl::DataLossError(absl::StrCat("'", path, "': unreadable format version '", version, "'"));
      }
      if (v > kStoreFormatVersion) {
        return absl::FailedPreconditionError(absl::StrCat("the store at '", path, "' has format version ", v,
                                                          ", newer than this build reads (", kStoreFormatVersion,
                                                          "): upgrade toegang"));
      }
    }
    std::string last;
    rocksdb::Status ls = db_->Get(rocksdb::ReadOptions(), handles_[kDefault], kLastSeqKey, &last);
    if (ls.ok()) {
      last_seq_ = ReadBigEndian64(last);
    } else if (!ls.IsNotFound()) {
      return Explain(path, ls);
    }
    return absl::OkStatus();
  }

  // Whether the closed database at `path` holds no key in any of `names` (read-only peek).
  static bool HoldsNoKeys(const std::string& path, const std::vector<std::string>& names) {
    std::vector<rocksdb::ColumnFamilyDescriptor> cfs;
    for (const std::string& n : names) cfs.push_back({n, rocksdb::ColumnFamilyOptions()});
    std::vector<rocksdb::ColumnFamilyHandle*> handles;
    rocksdb::DB* raw = nullptr;
    if (!rocksdb::DB::OpenForReadOnly(rocksdb::DBOptions(), path, cfs, &handles, &raw).ok()) return false;
    std::unique_ptr<rocksdb::DB> db(raw);
    bool empty = true;
    for (rocksdb::ColumnFamilyHandle* h : handles) {
      std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions(), h));
      it->SeekToFirst();
      if (it->Valid() || !it->status().ok()) empty = false;
    }
    for (rocksdb::ColumnFamilyHandle* h : handles) db->DestroyColumnFamilyHandle(h);
    return empty;
  }

  // Whether no column family holds a key.
  bool Empty() {
    for (rocksdb::ColumnFamilyHandle* h : handles_) {
      std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), h));
      it->SeekToFirst();
      if (it->Valid() || !it->status().ok()) return false;
    }
    return true;
  }

  static absl::Status Explain(const std::string& path, const rocksdb::Status& s) {
    std::string msg = s.ToString();
    if (s.IsIOError() && (msg.find("lock") != std::string::npos || msg.find("LOCK") != std::string::npos)) {
      return absl::UnavailableError(
          absl::StrCat("the store at '", path, "' is in use by another process (its LOCK is held): ", msg));
    }
    if (s.IsCorruption()) {
      return absl::DataLossError(absl::StrCat("the store at '", path, "' is corrupt: ", msg));
    }
    return absl::InternalError(absl::StrCat("cannot open the store at '", path, "': ", msg));
  }

  // Checks one batch against the store and the batches already accepted in this group.
  absl::Status ValidateBatch(const std::vector<Fact>& facts, const absl::flat_hash_set<std::string>& group_ids,
                             const absl::flat_hash_map<std::string, std::string>& group_targets,
                             absl::flat_hash_set<std::string>* my_ids,
                             absl::flat_hash_map<std::string, std::string>* my_targets)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    for (size_t i = 0; i < facts.size(); ++i) {
      const FactBody& body = facts[i].body;
      std::string key = UniqueIdKey(body);
      if (!key.empty()) {
        std::string ignored;
        bool taken = my_ids->contains(key) || group_ids.contains(key);
        if (!taken) {
          rocksdb::Status gs = db_->Get(rocksdb::ReadOptions(), handles_[kIds], key, &ignored);
          if (!gs.ok() && !gs.IsNotFound()) return FromRocks(gs, absl::StrCat("fact ", i + 1));
          taken = gs.ok();
        }
        if (taken) {
          return absl::AlreadyExistsError(absl::StrCat("fact ", i + 1, ": ", FactTypeName(body), " id '", FactId(body),
                                                       "' is already used; facts are never overwritten"));
        }
        my_ids->insert(key);
      }
      if (IsWithdrawable(body)) (*my_targets)[FactId(body)] = *FactPatient(body);
      if (const auto* w = std::get_if<Withdrawal>(&body)) {
        if (my_targets->contains(w->target) || group_targets.contains(w->target)) continue;
        std::string patient;
        rocksdb::Status gs = db_->Get(rocksdb::ReadOptions(), handles_[kIds], absl::StrCat("w:", w->target), &patient);
        if (gs.IsNotFound()) {
          return absl::NotFoundError(absl::StrCat("fact ", i + 1, ": withdrawal names no known consent, objection or restriction '",
                                                  w->target, "'"));
        }
        if (!gs.ok()) return FromRocks(gs, absl::StrCat("fact ", i + 1));
      }
    }
    return absl::OkStatus();
  }

  void AddToBatch(const Fact& f, const absl::flat_hash_map<std::string, std::string>& my_targets,
                  const absl::flat_hash_map<std::string, std::string>& group_targets, rocksdb::WriteBatch* batch,
                  std::vector<std::string>* touched) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    std::string owner;  // the key prefix this fact is filed under
    std::string withdrawal_patient;
    if (const auto* w = std::get_if<Withdrawal>(&f.body)) {
      auto it = my_targets.find(w->target);
      if (it != my_targets.end()) {
        withdrawal_patient = it->second;
      } else if (auto g = group_targets.find(w->target); g != group_targets.end()) {
        withdrawal_patient = g->second;
      } else {
        db_->Get(rocksdb::ReadOptions(), handles_[kIds], absl::StrCat("w:", w->target), &withdrawal_patient)
            .PermitUncheckedError();  // validated just before, under the same lock
      }
      owner = PatientPrefix(withdrawal_patient);
    } else if (const auto* r = std::get_if<Relationship>(&f.body); r && r->relation == Relation::kSubstituteFor) {
      owner = ClinicianPrefix(r->subject);
    } else {
      owner = PatientPrefix(*FactPatient(f.body));
    }
    batch->Put(handles_[kFacts], absl::StrCat(owner, BigEndian64(f.provenance.seq)), EncodeFact(f, withdrawal_patient));
    std::string key = UniqueIdKey(f.body);
    if (!key.empty()) {
      batch->Put(handles_[kIds], key, IsWithdrawable(f.body) ? *FactPatient(f.body) : std::string());
    }
    touched->push_back(std::move(owner));
  }

  // Calls `visit` for each fact under `prefix` with arrival <= as_of, in sequence order.
  template <typename Visit>
  absl::Status Scan(const std::string& prefix, absl::Time as_of, Visit visit) {
    rocksdb::ReadOptions ro;
    ro.prefix_same_as_start = true;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, handles_[kFacts]));
    for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
      absl::StatusOr<Fact> fact = DecodeFact(absl::string_view(it->value().data(), it->value().size()));
      if (!fact.ok()) {
        return absl::DataLossError(absl::StrCat("stored fact under '", prefix.substr(1, prefix.size() - 2),
                                                "' is corrupt: ", fact.status().message()));
      }
      if (fact->provenance.arrival > as_of) continue;
      absl::Status s = visit(*std::move(fact));
      if (!s.ok()) return s;
    }
    return FromRocks(it->status(), "reading facts");
  }

  const DurableStoreOptions options_;
  const ArrivalClock clock_;
  std::shared_ptr<rocksdb::Cache> block_cache_;
  std::unique_ptr<rocksdb::DB> db_;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;  // default, facts, ids, ...

  mutable Mutex mu_;
  CondVar writers_cv_;
  std::deque<Writer*> writers_ ABSL_GUARDED_BY(mu_);
  uint64_t last_seq_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Status sticky_error_ ABSL_GUARDED_BY(mu_);

  std::atomic<uint64_t> generation_{0};
  RecordCache<PatientRecord> record_cache_;
  RecordCache<std::vector<Stored<Relationship>>> coverage_cache_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<FactStore>> OpenDurableFactStore(const std::string& path,
                                                                const DurableStoreOptions& options) {
  return RocksDbFactStore::Open(path, options);
}

}  // namespace toegang

// --- For tests only (engine/testing/raw_store.h): raw edits a tamper or version test
// needs, kept in this file so that no other file includes RocksDB.
namespace toegang::testing {

namespace {

// Opens the closed store at `path` with all its column families; calls `use(db, handle
// of cf)` and closes it again.
template <typename Use>
absl::Status WithRawStore(const std::string& path, const std::string& cf, bool read_only, Use use) {
  rocksdb::DBOptions o;
  std::vector<std::string> names;
  rocksdb::Status s = rocksdb::DB::ListColumnFamilies(o, path, &names);
  if (!s.ok()) return absl::InternalError(s.ToString());
  std::vector<rocksdb::ColumnFamilyDescriptor> cfs;
  for (const std::string& n : names) {
    rocksdb::ColumnFamilyOptions cfo;
    if (n == "facts") cfo.prefix_extractor = std::make_shared<::toegang::OwnerPrefix>();
    cfs.push_back({n, cfo});
  }
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  s = read_only ? rocksdb::DB::OpenForReadOnly(o, path, cfs, &handles, &raw)
                : rocksdb::DB::Open(o, path, cfs, &handles, &raw);
  if (!s.ok()) return absl::InternalError(s.ToString());
  std::unique_ptr<rocksdb::DB> db(raw);
  s = rocksdb::Status::NotFound("no column family " + cf);
  for (size_t i = 0; i < names.size(); ++i) {
    if (names[i] == cf) s = use(db.get(), handles[i]);
  }
  for (auto* handle : handles) db->DestroyColumnFamilyHandle(handle);
  if (!read_only) db->Close().PermitUncheckedError();
  if (s.IsNotFound()) return absl::NotFoundError(s.ToString());
  return s.ok() ? absl::OkStatus() : absl::InternalError(s.ToString());
}

}  // namespace

absl::Status RawPutForTesting(const std::string& path, const std::string& cf, const std::string& key,
                              const std::string& value, bool erase) {
  return WithRawStore(path, cf, /*read_only=*/false, [&](rocksdb::DB* db, rocksdb::ColumnFamilyHandle* h) {
    rocksdb::WriteOptions wo;
    wo.sync = true;
    return erase ? db->Delete(wo, h, key) : db->Put(wo, h, key, value);
  });
}

absl::StatusOr<std::string> RawGetForTesting(const std::string& path, const std::string& cf, const std::string& key) {
  std::string value;
  absl::Status s = WithRawStore(path, cf, /*read_only=*/true, [&](rocksdb::DB* db, rocksdb::ColumnFamilyHandle* h) {
    return db->Get(rocksdb::ReadOptions(), h, key, &value);
  });
  if (!s.ok()) return s;
  return value;
}

}  // namespace toegang::testing
