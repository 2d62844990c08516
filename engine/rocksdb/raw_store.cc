// Copyright toegang authors.
#include "engine/rocksdb/raw_store.h"

#include <memory>
#include <vector>

#include "engine/rocksdb/audit_parts.h"
#include "engine/rocksdb/layout.h"
#include "rocksdb/db.h"

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
    if (n == "facts") cfo.prefix_extractor = std::make_shared<::toegang::rocksdb_layout::OwnerPrefix>();
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

absl::StatusOr<int> RawErasePrefixForTesting(const std::string& path, const std::string& cf,
                                             const std::string& prefix) {
  int erased = 0;
  absl::Status s = WithRawStore(path, cf, /*read_only=*/false, [&](rocksdb::DB* db, rocksdb::ColumnFamilyHandle* h) {
    rocksdb::ReadOptions ro;
    ro.total_order_seek = true;
    std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(ro, h));
    rocksdb::WriteBatch batch;
    for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
      batch.Delete(h, it->key());
      ++erased;
    }
    if (!it->status().ok()) return it->status();
    rocksdb::WriteOptions wo;
    wo.sync = true;
    return db->Write(wo, &batch);
  });
  if (!s.ok()) return s;
  return erased;
}

absl::StatusOr<std::string> RawGetForTesting(const std::string& path, const std::string& cf, const std::string& key) {
  std::string value;
  absl::Status s = WithRawStore(path, cf, /*read_only=*/true, [&](rocksdb::DB* db, rocksdb::ColumnFamilyHandle* h) {
    return db->Get(rocksdb::ReadOptions(), h, key, &value);
  });
  if (!s.ok()) return s;
  return value;
}

absl::StatusOr<std::string> RawAuditEntryForTesting(const std::string& path, uint64_t seq) {
  std::string entry;
  absl::Status s = WithRawStore(path, rocksdb_layout::kAuditCf, /*read_only=*/true,
                                [&](rocksdb::DB* db, rocksdb::ColumnFamilyHandle* h) {
                                  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions(), h));
                                  absl::StatusOr<rocksdb_layout::AuditSlot> slot = rocksdb_layout::SeekAuditEntry(it.get(), seq);
                                  if (!slot.ok()) return rocksdb::Status::NotFound(std::string(slot.status().message()));
                                  absl::StatusOr<absl::string_view> e = rocksdb_layout::AuditEntryIn(
                                      *slot, absl::string_view(it->value().data(), it->value().size()), seq);
                                  if (!e.ok()) return rocksdb::Status::Corruption(std::string(e.status().message()));
                                  entry = std::string(*e);
                                  return rocksdb::Status::OK();
                                });
  if (!s.ok()) return s;
  return entry;
}

absl::Status RawPutAuditEntryForTesting(const std::string& path, uint64_t seq, const std::string& entry, bool erase) {
  return WithRawStore(path, rocksdb_layout::kAuditCf, /*read_only=*/false,
                      [&](rocksdb::DB* db, rocksdb::ColumnFamilyHandle* h) {
                        rocksdb::WriteBatch batch;
                        absl::Status s = rocksdb_layout::RewriteAuditEntries(db, h, {{seq, entry}}, erase, &batch);
                        if (absl::IsNotFound(s)) return rocksdb::Status::NotFound(std::string(s.message()));
                        if (!s.ok()) return rocksdb::Status::Corruption(std::string(s.message()));
                        rocksdb::WriteOptions wo;
                        wo.sync = true;
                        return db->Write(wo, &batch);
                      });
}

}  // namespace toegang::testing
