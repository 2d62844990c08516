// Copyright toegang authors.
//
// allocation_count.h: heap allocations counted, for benchmarks that report allocations
// per decision. Linking this library replaces the global operator new with one that
// counts (the count is process-wide: every thread's allocations).
#ifndef TOEGANG_BENCH_ALLOCATION_COUNT_H_
#define TOEGANG_BENCH_ALLOCATION_COUNT_H_

#include <cstdint>

namespace toegang::bench {

// Calls of the global operator new so far.
uint64_t AllocationsSoFar();

}  // namespace toegang::bench

#endif  // TOEGANG_BENCH_ALLOCATION_COUNT_H_
