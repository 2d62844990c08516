// Copyright toegang authors.
//
// allocation_count.h: heap allocations counted, for benchmarks that report allocations
// per decision. Linking this library replaces the global operator new with one that
// counts.
#ifndef TOEGANG_BASE_TESTING_ALLOCATION_COUNT_H_
#define TOEGANG_BASE_TESTING_ALLOCATION_COUNT_H_

#include <cstdint>

namespace toegang::testing {

// Calls of the global operator new so far, on every thread.
uint64_t AllocationsSoFar();

}  // namespace toegang::testing

#endif  // TOEGANG_BASE_TESTING_ALLOCATION_COUNT_H_
