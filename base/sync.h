// Copyright toegang authors.
//
// sync.h: the mutex, lock guard and condition variable toegang's own code uses, with
// Abseil's thread-safety annotations (ABSL_GUARDED_BY and friends) so the compiler
// checks what each lock guards.
//
// Why not absl::Mutex itself: Debian's Abseil is built without NDEBUG, so every
// absl::Mutex lock and unlock runs Abseil's deadlock detector (a global lock graph
// behind a spin lock, per-thread lock lists). Measured on the 2-core VM: 44.5 ns per
// uncontended lock/unlock against 18.9 ns with detection off, and far more when the
// graph is cold — it was most of the access log's cost per decision. Turning detection
// off is a process-wide setting that belongs to whoever embeds toegang, so toegang does
// not touch it; it uses the C++ library's mutex (pthreads) instead. That also makes
// its locks visible to ThreadSanitizer, which intercepts pthreads (Debian's Abseil is
// not instrumented, so absl::Mutex's own futex waits were invisible to it).
//
//   Mutex mu_;
//   int n_ ABSL_GUARDED_BY(mu_);
//   void Add() { MutexLock lock(&mu_); ++n_; }
#ifndef TOEGANG_BASE_SYNC_H_
#define TOEGANG_BASE_SYNC_H_

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <mutex>

#include "absl/base/const_init.h"
#include "absl/base/thread_annotations.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace toegang {

class CondVar;

// An exclusive lock.
class ABSL_LOCKABLE Mutex {
 public:
  constexpr Mutex() = default;
  // For a function-local static: constant-initialised, never destroyed out of order.
  explicit constexpr Mutex(absl::ConstInitType) {}
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  void Lock() ABSL_EXCLUSIVE_LOCK_FUNCTION() { mu_.lock(); }
  void Unlock() ABSL_UNLOCK_FUNCTION() { mu_.unlock(); }

 private:
  friend class CondVar;
  std::mutex mu_;
};

class ABSL_SCOPED_LOCKABLE MutexLock {
 public:
  explicit MutexLock(Mutex* mu) ABSL_EXCLUSIVE_LOCK_FUNCTION(mu) : mu_(mu) { mu_->Lock(); }
  ~MutexLock() ABSL_UNLOCK_FUNCTION() { mu_->Unlock(); }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

 private:
  Mutex* const mu_;
};

// Waits release `mu` (which the caller holds) and hold it again when they return.
// Wake-ups may be spurious: wait in a loop on the condition.
class CondVar {
 public:
  void Wait(Mutex* mu) {
    std::unique_lock<std::mutex> held(mu->mu_, std::adopt_lock);
    cv_.wait(held);
    held.release();
  }
  // True if the timeout passed first.
  bool WaitWithTimeout(Mutex* mu, absl::Duration timeout) {
    if (timeout == absl::InfiniteDuration()) {
      Wait(mu);
      return false;
    }
    // The steady clock: a wall-clock step must not stretch or cut a wait. Clamped so
    // the sum cannot overflow.
    timeout = std::clamp(timeout, absl::ZeroDuration(), absl::Hours(24 * 365 * 100));
    std::unique_lock<std::mutex> held(mu->mu_, std::adopt_lock);
    const auto until = std::chrono::steady_clock::now() + std::chrono::nanoseconds(absl::ToInt64Nanoseconds(timeout));
    const bool timed_out = cv_.wait_until(held, until) == std::cv_status::timeout;
    held.release();
    return timed_out;
  }
  // True if the deadline passed first.
  bool WaitWithDeadline(Mutex* mu, absl::Time deadline) {
    if (deadline == absl::InfiniteFuture()) {
      Wait(mu);
      return false;
    }
    return WaitWithTimeout(mu, deadline - absl::Now());
  }
  void Signal() { cv_.notify_one(); }
  void SignalAll() { cv_.notify_all(); }

 private:
  std::condition_variable cv_;
};

}  // namespace toegang

#endif  // TOEGANG_BASE_SYNC_H_
