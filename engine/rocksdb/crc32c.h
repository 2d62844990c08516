// Copyright toegang authors.
//
// crc32c.h (internal): RocksDB's checksums computed with the CPU's crc32 instruction.
//
// RocksDB puts a CRC32C on every write-ahead-log record and every table block it writes,
// and checks it on every read. Debian builds the library portable, without SSE4.2, so
// its CRC32C is a table-driven loop of about a byte a cycle: on RocksDB's part of the
// access log's writer, about a sixth of the writer's time (bench/RESULTS.md, "RocksDB's
// checksums on the CPU's instruction").
//
// crc32c.cc defines the library's own exported `rocksdb::crc32c::Extend`. The library
// calls it through its procedure linkage table, so the dynamic linker binds those calls
// to the definition linked into the program, which this one is (alwayslink). It returns
// the same values (crc32c_test holds it to the library's own on every length and
// alignment); on a CPU without SSE4.2 it calls the library's own. Should a build of
// RocksDB stop taking the program's definition, checksums stay the library's, only
// slower, and `LibraryUsesCrc32cExtend()` says so (the test fails on it).
#ifndef TOEGANG_ENGINE_ROCKSDB_CRC32C_H_
#define TOEGANG_ENGINE_ROCKSDB_CRC32C_H_

#include <cstddef>
#include <cstdint>

namespace toegang::rocksdb_checksum {

// The CRC32C (Castagnoli) of the bytes that gave `crc` followed by data[0, n), as
// RocksDB's `crc32c::Extend` defines it: Crc32cExtend(0, "123456789", 9) == 0xe3069283.
// Thread-safe.
uint32_t Crc32cExtend(uint32_t crc, const char* data, size_t n);

// Whether Crc32cExtend uses the CPU's crc32 instruction (false: RocksDB's own loop).
bool Crc32cUsesCpuInstruction();

// RocksDB's own `crc32c::Extend`, as the library defines it; nullptr when the library
// is not loaded or does not export it.
using Crc32cFunction = uint32_t (*)(uint32_t, const char*, size_t);
Crc32cFunction LibraryCrc32c();

// Whether the program's calls of `rocksdb::crc32c::Extend`, the library's included,
// reach Crc32cExtend.
bool LibraryUsesCrc32cExtend();

}  // namespace toegang::rocksdb_checksum

#endif  // TOEGANG_ENGINE_ROCKSDB_CRC32C_H_
