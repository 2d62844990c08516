// Copyright toegang authors.
//
// sync.h: the locks, lock guards and condition variable toegang's own code uses, with
// Abseil's thread-safety annotations (ABSL_GUARDED_BY and friends) so the compiler
// checks what each lock guards; and Watermark, for waiting on a counter without a lock.
//
// Why not absl::Mutex itself: Debian's Abseil is built without NDEBUG, so every
// absl::Mutex lock and unlock runs Abseil's deadlock detector (a global lock graph
// behind a spin lock, per-thread lock lists). Measured on the 2-core VM: 44.5 ns per
// uncontended lock/unlock against 18.9 ns with detection off, and far more when the
// graph is cold — a fifth of the access log's cost per decision. Turning detection
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

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <climits>
#include <cstdint>
#include <condition_variable>
#include <mutex>
#include <shared_mutex>

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

// A lock that many readers may hold at once (for state read on every decision and
// seldom written, so that readers never queue behind one another).
class ABSL_LOCKABLE SharedMutex {
 public:
  SharedMutex() = default;
  SharedMutex(const SharedMutex&) = delete;
  SharedMutex& operator=(const SharedMutex&) = delete;

  void Lock() ABSL_EXCLUSIVE_LOCK_FUNCTION() { mu_.lock(); }
  void Unlock() ABSL_UNLOCK_FUNCTION() { mu_.unlock(); }
  void ReaderLock() ABSL_SHARED_LOCK_FUNCTION() { mu_.lock_shared(); }
  // Takes the lock shared only if that needs no wait: for a thread that must not wait
  // on whoever holds it exclusively.
  bool TryReaderLock() ABSL_SHARED_TRYLOCK_FUNCTION(true) { return mu_.try_lock_shared(); }
  void ReaderUnlock() ABSL_UNLOCK_FUNCTION() { mu_.unlock_shared(); }

 private:
  std::shared_mutex mu_;
};

// Holds `mu` exclusively for its scope: a Mutex, or a SharedMutex as its writer.
template <typename M>
class ABSL_SCOPED_LOCKABLE ExclusiveLock {
 public:
  explicit ExclusiveLock(M* mu) ABSL_EXCLUSIVE_LOCK_FUNCTION(mu) : mu_(mu) { mu_->Lock(); }
  ~ExclusiveLock() ABSL_UNLOCK_FUNCTION() { mu_->Unlock(); }
  ExclusiveLock(const ExclusiveLock&) = delete;
  ExclusiveLock& operator=(const ExclusiveLock&) = delete;

 private:
  M* const mu_;
};
using MutexLock = ExclusiveLock<Mutex>;
using WriterMutexLock = ExclusiveLock<SharedMutex>;

// Holds `mu` shared for its scope.
class ABSL_SCOPED_LOCKABLE ReaderMutexLock {
 public:
  explicit ReaderMutexLock(SharedMutex* mu) ABSL_SHARED_LOCK_FUNCTION(mu) : mu_(mu) { mu_->ReaderLock(); }
  ~ReaderMutexLock() ABSL_UNLOCK_FUNCTION() { mu_->ReaderUnlock(); }
  ReaderMutexLock(const ReaderMutexLock&) = delete;
  ReaderMutexLock& operator=(const ReaderMutexLock&) = delete;

 private:
  SharedMutex* const mu_;
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
    // The steady clock: a wall-clock step must not stretch or cut a wait. Clamped (an
    // infinite timeout becomes a century) so the sum cannot overflow.
    timeout = std::clamp(timeout, absl::ZeroDuration(), absl::Hours(24 * 365 * 100));
    std::unique_lock<std::mutex> held(mu->mu_, std::adopt_lock);
    const auto until = std::chrono::steady_clock::now() + std::chrono::nanoseconds(absl::ToInt64Nanoseconds(timeout));
    const bool timed_out = cv_.wait_until(held, until) == std::cv_status::timeout;
    held.release();
    return timed_out;
  }
  // True if the deadline passed first.
  bool WaitWithDeadline(Mutex* mu, absl::Time deadline) { return WaitWithTimeout(mu, deadline - absl::Now()); }
  void Signal() { cv_.notify_one(); }
  void SignalAll() { cv_.notify_all(); }

 private:
  std::condition_variable cv_;
};

// A counter that only grows, and threads waiting, without a lock, for it to reach a
// value: what a durable access-log caller does until its record's batch is synced.
// Advance() wakes every waiter and each checks the counter itself, so a group of dozens
// wakes without queueing on a mutex to find out (with a condition variable each would
// take the mutex in turn: measured, 64 durable callers lost a third of their rate).
// Close() ends every wait, now and later, without the value being reached. Reopen()
// starts a new generation after a Close (the access log renumbering after a failed
// write): a waiter that took its generation before still returns false, even once the
// value passes its target again, since that target now numbers another record.
class Watermark {
 public:
  explicit Watermark(uint64_t value = 0) : value_(value) {}
  uint64_t value() const { return value_.load(std::memory_order_acquire); }
  uint32_t generation() const { return generation_.load(std::memory_order_acquire); }
  void Advance(uint64_t value) {
    value_.store(value, std::memory_order_release);
    Wake();
  }
  void Close() {
    closed_.store(true, std::memory_order_release);
    Wake();
  }
  // REQUIRES: Close() was called. The value may be lowered: it numbers anew.
  void Reopen(uint64_t value) {
    generation_.fetch_add(1, std::memory_order_seq_cst);
    value_.store(value, std::memory_order_release);
    closed_.store(false, std::memory_order_release);
    Wake();
  }
  // True once value() >= target; false if closed first.
  bool WaitFor(uint64_t target) { return WaitFor(target, generation()); }
  // The same for a target numbered in `generation`: false once that generation ended.
  bool WaitFor(uint64_t target, uint32_t generation) {
    while (true) {
      const uint32_t epoch = epoch_.load(std::memory_order_acquire);
      if (generation_.load(std::memory_order_acquire) != generation) return false;
      if (value() >= target) return true;
      if (closed_.load(std::memory_order_acquire)) return false;
      waiters_.fetch_add(1, std::memory_order_seq_cst);
      // Sleeps only while the epoch is unchanged: an Advance after the checks above
      // bumped it first, so the wake-up cannot be missed.
      syscall(SYS_futex, reinterpret_cast<uint32_t*>(&epoch_), FUTEX_WAIT_PRIVATE, epoch, nullptr, nullptr, 0);
      waiters_.fetch_sub(1, std::memory_order_relaxed);
    }
  }

 private:
  void Wake() {
    epoch_.fetch_add(1, std::memory_order_seq_cst);
    if (waiters_.load(std::memory_order_seq_cst) > 0) {
      syscall(SYS_futex, reinterpret_cast<uint32_t*>(&epoch_), FUTEX_WAKE_PRIVATE, INT_MAX, nullptr, nullptr, 0);
    }
  }
  static_assert(sizeof(std::atomic<uint32_t>) == sizeof(uint32_t), "the futex word is the atomic itself");

  std::atomic<uint64_t> value_;
  std::atomic<bool> closed_{false};
  std::atomic<uint32_t> generation_{0};
  std::atomic<uint32_t> epoch_{0};  // the futex word: bumped by every Advance and Close
  std::atomic<int> waiters_{0};
};

}  // namespace toegang

#endif  // TOEGANG_BASE_SYNC_H_
