// Copyright toegang authors.
//
// index_memtable.h (internal): the memtable of the access log's patient index
// (`audit_by_patient`). Its keys arrive in random order, one per logged record. A
// skip list sorts them as they come, at half the writer's pace or worse; RocksDB's
// vector memtable appends them but sorts through RocksDB's general comparator, which
// for this column family was the largest single cost of a flush, and it sorts a copy
// of itself for every read of the active memtable (a patient's listing on a busy
// server waited tens of milliseconds). This one appends too, and sorts by the user
// key's first eight bytes as a number, then the bytes, then the sequence: the same
// order as RocksDB's internal keys under the bytewise comparator. A read of the active
// memtable sorts only what was added since the last read and merges it in.
//
// Only for a column family with the bytewise comparator. Writes must be serialized
// (allow_concurrent_memtable_write = false); reads may come from any thread.
#ifndef TOEGANG_ENGINE_ROCKSDB_INDEX_MEMTABLE_H_
#define TOEGANG_ENGINE_ROCKSDB_INDEX_MEMTABLE_H_

#include <memory>

#include "rocksdb/memtablerep.h"

namespace toegang::rocksdb_layout {

// The factory for the patient index's memtables. Null when this build of RocksDB does
// not answer a point lookup through it correctly (checked once, on an in-memory
// database): the caller then keeps RocksDB's own vector memtable.
std::shared_ptr<rocksdb::MemTableRepFactory> PatientIndexMemTables();

}  // namespace toegang::rocksdb_layout

#endif  // TOEGANG_ENGINE_ROCKSDB_INDEX_MEMTABLE_H_
