// Copyright toegang authors.
//
// file_systems.h (internal): how the store's files are written. RocksDB's info log is
// replaced by one that cannot abort the process, and every file is its owner's only.
#ifndef TOEGANG_ENGINE_ROCKSDB_FILE_SYSTEMS_H_
#define TOEGANG_ENGINE_ROCKSDB_FILE_SYSTEMS_H_

#include <memory>
#include <string>

#include "rocksdb/env.h"
#include "rocksdb/file_system.h"

namespace toegang {

// RocksDB's info log at `path` (diagnostics only; see file_systems.cc).
std::shared_ptr<rocksdb::Logger> NewInfoLog(const std::string& path);

// `target`, creating every file 0600 (patient ids are readable in the store's files).
std::shared_ptr<rocksdb::FileSystem> NewOwnerOnlyFileSystem(std::shared_ptr<rocksdb::FileSystem> target);

}  // namespace toegang

#endif  // TOEGANG_ENGINE_ROCKSDB_FILE_SYSTEMS_H_
