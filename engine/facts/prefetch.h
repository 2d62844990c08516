// Copyright toegang authors.
//
// prefetch.h (internal): asking for a decoded record's memory before a decision reads
// it. A random patient among 100,000 is a miss to memory at every step; asked for
// together, the misses overlap instead of following each other (bench/RESULTS.md).
// Only hints: they never fault and change no result.
#ifndef TOEGANG_ENGINE_FACTS_PREFETCH_H_
#define TOEGANG_ENGINE_FACTS_PREFETCH_H_

#include <algorithm>
#include <cstddef>

#include "model/patient_record.h"

namespace toegang {

// The cache lines of `*v`, made by make_shared, with its reference count just before it
// (one allocation). Asked for before the count is taken: that increment is a locked
// instruction, which waits for its own line and lets no later load start.
template <typename T>
inline void PrefetchShared(const T* v) {
  const char* p = reinterpret_cast<const char*>(v);
  for (const char* line = p - 16; line < p + sizeof(T); line += 64) __builtin_prefetch(line);
}

// What every decision reads beyond the record itself: its relationships (up to eight
// cache lines of them).
inline void PrefetchRelationships(const PatientRecord& r) {
  const char* p = reinterpret_cast<const char*>(r.relationships.data());
  const char* end = p + std::min<size_t>(r.relationships.size() * sizeof(r.relationships[0]), 8 * 64);
  for (; p < end; p += 64) __builtin_prefetch(p);
}

}  // namespace toegang

#endif  // TOEGANG_ENGINE_FACTS_PREFETCH_H_
