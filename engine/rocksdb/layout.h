// Copyright toegang authors.
//
// layout.h (internal): how the store lays out its one RocksDB database.
//
// Column families:
//   default  "toegang/format_version" -> decimal; "toegang/last_seq" -> 8 bytes big-endian
//            "toegang/audit_head" -> seq(8) hash(32); "toegang/audit_checkpoint"
//            "toegang/replica_of" -> the replicated history's name (engine/replica)
//            "toegang/audit_chain" -> the access log chain's name (AuditStorage::ChainId)
//   facts    'p' patient '\0' seq(8, big-endian) -> StoredFact  (every fact about a patient)
//            'c' clinician '\0' seq                -> StoredFact  (substitute_for coverage)
//            'o' organisation '\0' seq             -> StoredFact  (org_category)
//            'i' key '\0' patient                  -> ""  (model/patient_index.h; format 3)
//   ids      kind ':' id -> patient     (duplicate ids; withdrawal targets)
//   audit    first(8) last(8), big-endian -> records first..last, each an entry after its
//            length(4): AuditRecord, prev hash(32), hash(32) (the chain; audit_parts.h).
//            Format 3 and before: seq(8) -> one entry.
//   audit_by_patient  patient '\0' at(8, big-endian, sign-flipped) seq(8) -> ""
//            (the patient's overview, newest first by scanning backwards)
// "Every fact about P" is one prefix scan; the prefix extractor cuts at '\0', so bloom
// filters on prefixes skip SST files without P. Ids never contain control bytes
// (model/json.cc), so '\0' cannot occur inside one.
#ifndef TOEGANG_ENGINE_ROCKSDB_LAYOUT_H_
#define TOEGANG_ENGINE_ROCKSDB_LAYOUT_H_

#include <cstdint>
#include <cstring>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "base/big_endian.h"
#include "rocksdb/slice_transform.h"
#include "rocksdb/status.h"

namespace toegang::rocksdb_layout {

inline constexpr char kFormatKey[] = "toegang/format_version";
inline constexpr char kLastSeqKey[] = "toegang/last_seq";
inline constexpr char kAuditHeadKey[] = "toegang/audit_head";
inline constexpr char kAuditCheckpointKey[] = "toegang/audit_checkpoint";
inline constexpr char kReplicaOfKey[] = "toegang/replica_of";
inline constexpr char kAuditChainKey[] = "toegang/audit_chain";

inline constexpr char kFactsCf[] = "facts";
inline constexpr char kIdsCf[] = "ids";
inline constexpr char kAuditCf[] = "audit";
inline constexpr char kAuditIndexCf[] = "audit_by_patient";
// Column family handles are kept in this order.
enum Cf : size_t { kDefault = 0, kFacts = 1, kIds = 2, kAudit = 3, kAuditIndex = 4 };
inline constexpr size_t kColumnFamilies = 5;

// A RocksDB status as an absl::Status saying what was being done.
inline absl::Status FromRocks(const rocksdb::Status& s, absl::string_view what) {
  if (s.ok()) return absl::OkStatus();
  std::string msg = absl::StrCat(what, ": ", s.ToString());
  if (s.IsCorruption()) return absl::DataLossError(msg);
  if (s.IsNotFound()) return absl::NotFoundError(msg);
  if (s.IsNoSpace()) return absl::ResourceExhaustedError(msg);
  return absl::InternalError(msg);
}

inline std::string PatientPrefix(absl::string_view patient) {
  return absl::StrCat("p", patient, absl::string_view("\0", 1));
}
inline std::string ClinicianPrefix(absl::string_view clinician) {
  return absl::StrCat("c", clinician, absl::string_view("\0", 1));
}
inline std::string OrganizationPrefix(absl::string_view organization) {
  return absl::StrCat("o", organization, absl::string_view("\0", 1));
}

// Where `patient` is filed under index key `key` (model/patient_index.h).
inline std::string PatientIndexPrefix(absl::string_view key) {
  return absl::StrCat("i", key, absl::string_view("\0", 1));
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

// The access log's patient index key: the patient, '\0', the instant (its sign bit
// flipped, so that keys sort by time) and the record, big-endian. Set into `*key`,
// reusing its storage (the writer's, record after record).
inline void SetAuditIndexKey(std::string* key, absl::string_view patient, int64_t at_us, uint64_t seq) {
  key->assign(patient.data(), patient.size());
  key->push_back('\0');
  key->append(BigEndian64(static_cast<uint64_t>(at_us) ^ (uint64_t{1} << 63)));
  key->append(BigEndian64(seq));
}

inline std::string AuditIndexKey(absl::string_view patient, int64_t at_us, uint64_t seq) {
  std::string key;
  SetAuditIndexKey(&key, patient, at_us, seq);
  return key;
}

// (patient, at_us, seq) of an index key; false when the key is malformed.
inline bool ParseAuditIndexKey(absl::string_view key, absl::string_view* patient, int64_t* at_us, uint64_t* seq) {
  size_t nul = key.find('\0');
  if (nul == absl::string_view::npos || key.size() != nul + 17) return false;
  *patient = key.substr(0, nul);
  *at_us = static_cast<int64_t>(ReadBigEndian64(key.substr(nul + 1, 8)) ^ (uint64_t{1} << 63));
  *seq = ReadBigEndian64(key.substr(nul + 9, 8));
  return true;
}

}  // namespace toegang::rocksdb_layout

#endif  // TOEGANG_ENGINE_ROCKSDB_LAYOUT_H_
