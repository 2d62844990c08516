// Copyright toegang authors.
#include "base/testing/allocation_count.h"

#include <atomic>
#include <cstdlib>
#include <new>

namespace {
std::atomic<uint64_t> g_allocations{0};
}  // namespace

// Counting replacements of the global allocation functions. GCC cannot see that our
// operator delete frees what our operator new malloc'ed, hence the pragma.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

void* operator new(std::size_t n) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }

namespace toegang::testing {

uint64_t AllocationsSoFar() { return g_allocations.load(std::memory_order_relaxed); }

}  // namespace toegang::testing
