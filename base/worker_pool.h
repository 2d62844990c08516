// Copyright toegang authors.
//
// worker_pool.h: a fixed set of named threads running tasks in the order submitted.
// The sidecar's frame workers and its HTTP batch workers.
//
//   WorkerPool pool(4, "toegang-worker");
//   pool.Submit([] { ... });
//
// Destruction runs what is queued, then joins. Thread-safe.
#ifndef TOEGANG_BASE_WORKER_POOL_H_
#define TOEGANG_BASE_WORKER_POOL_H_

#include <deque>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "base/sync.h"
#include "base/threads.h"

namespace toegang {

class WorkerPool {
 public:
  WorkerPool(int n, std::string name) {
    for (int i = 0; i < n; ++i) {
      threads_.emplace_back([this, name] {
        NameCurrentThread(name);
        Run();
      });
    }
  }
  ~WorkerPool() {
    {
      MutexLock lock(&mu_);
      stop_ = true;
      cv_.SignalAll();
    }
    for (auto& t : threads_) t.join();
  }
  void Submit(std::function<void()> task) {
    MutexLock lock(&mu_);
    tasks_.push_back(std::move(task));
    cv_.Signal();
  }

 private:
  void Run() {
    while (true) {
      std::function<void()> task;
      {
        MutexLock lock(&mu_);
        while (!stop_ && tasks_.empty()) cv_.Wait(&mu_);
        if (tasks_.empty()) return;  // stop_ and drained
        task = std::move(tasks_.front());
        tasks_.pop_front();
      }
      task();
    }
  }
  Mutex mu_;
  CondVar cv_;  // a task or stop_
  std::deque<std::function<void()>> tasks_ ABSL_GUARDED_BY(mu_);
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;
};

}  // namespace toegang

#endif  // TOEGANG_BASE_WORKER_POOL_H_
