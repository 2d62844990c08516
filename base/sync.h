// Copyright toegang authors.
//
// sync.h: the mutex, lock guards and condition variable toegang's own code uses —
// Abseil's, made visible to ThreadSanitizer.
//
// Debian's Abseil is a prebuilt library without ThreadSanitizer's instrumentation, so
// under `--config=tsan` the happens-before edges of absl::Mutex (which waits on futexes
// itself rather than through pthreads) are invisible, and every access it guards looks
// like a race. These wrappers tell ThreadSanitizer about each lock and unlock; in every
// other build they are absl::Mutex and absl::CondVar with nothing added.
//
//   Mutex mu_;
//   int n_ ABSL_GUARDED_BY(mu_);
//   void Add() { MutexLock lock(&mu_); ++n_; }
#ifndef TOEGANG_BASE_SYNC_H_
#define TOEGANG_BASE_SYNC_H_

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

#if defined(__SANITIZE_THREAD__)
#define TOEGANG_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define TOEGANG_TSAN 1
#endif
#endif

#ifdef TOEGANG_TSAN
extern "C" void __tsan_acquire(void* addr);
extern "C" void __tsan_release(void* addr);
#endif

namespace toegang {

class CondVar;

class ABSL_LOCKABLE Mutex {
 public:
  Mutex() = default;
  // For a function-local static: constant-initialised, never destroyed out of order.
  explicit constexpr Mutex(absl::ConstInitType) : mu_(absl::kConstInit) {}
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  void Lock() ABSL_EXCLUSIVE_LOCK_FUNCTION() {
    mu_.Lock();
    Acquired();
  }
  void Unlock() ABSL_UNLOCK_FUNCTION() {
    Releasing();
    mu_.Unlock();
  }
  void ReaderLock() ABSL_SHARED_LOCK_FUNCTION() {
    mu_.ReaderLock();
    Acquired();
  }
  void ReaderUnlock() ABSL_UNLOCK_FUNCTION() {
    Releasing();
    mu_.ReaderUnlock();
  }

 private:
  friend class CondVar;
#ifdef TOEGANG_TSAN
  void Acquired() { __tsan_acquire(this); }
  void Releasing() { __tsan_release(this); }
#else
  void Acquired() {}
  void Releasing() {}
#endif
  absl::Mutex mu_;
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

class ABSL_SCOPED_LOCKABLE ReaderMutexLock {
 public:
  explicit ReaderMutexLock(Mutex* mu) ABSL_SHARED_LOCK_FUNCTION(mu) : mu_(mu) { mu_->ReaderLock(); }
  ~ReaderMutexLock() ABSL_UNLOCK_FUNCTION() { mu_->ReaderUnlock(); }
  ReaderMutexLock(const ReaderMutexLock&) = delete;
  ReaderMutexLock& operator=(const ReaderMutexLock&) = delete;

 private:
  Mutex* const mu_;
};

// Waits release `mu` (held exclusively) and hold it again when they return.
class CondVar {
 public:
  void Wait(Mutex* mu) {
    mu->Releasing();
    cv_.Wait(&mu->mu_);
    mu->Acquired();
  }
  // True if the timeout or deadline passed first.
  bool WaitWithTimeout(Mutex* mu, absl::Duration timeout) {
    mu->Releasing();
    bool timed_out = cv_.WaitWithTimeout(&mu->mu_, timeout);
    mu->Acquired();
    return timed_out;
  }
  bool WaitWithDeadline(Mutex* mu, absl::Time deadline) {
    mu->Releasing();
    bool timed_out = cv_.WaitWithDeadline(&mu->mu_, deadline);
    mu->Acquired();
    return timed_out;
  }
  void Signal() { cv_.Signal(); }
  void SignalAll() { cv_.SignalAll(); }

 private:
  absl::CondVar cv_;
};

}  // namespace toegang

#endif  // TOEGANG_BASE_SYNC_H_
