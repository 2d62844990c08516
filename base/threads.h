// Copyright toegang authors.
//
// threads.h: where toegang's threads run, and what they are called.
//
// Why placement matters (measured on the 2-core VM, bench/RESULTS.md "Thread
// placement"): the access log's writer hashes, writes and syncs batches back to back
// while traffic flows. When the scheduler puts it on the CPU that is answering a
// request, that round trip waits for the writer's batch or moves to the other CPU, and
// on a virtual machine waking an idle CPU costs tens of microseconds. With the writer
// kept on a CPU of its own and the threads that answer requests kept off it, one
// client's socket round trip went from p99 28–39 µs in most runs to 9–13 µs, HTTP's
// from 117–186 µs to 35–92 µs.
//
//   absl::StatusOr<std::vector<int>> cpus = AllowedCpus();
//   if (std::optional<Placement> p = SeparateBackground(*cpus)) {
//     audit_options.writer_cpus = p->background;
//     PinCurrentThread(p->requests);  // threads started from here on inherit it
//   }
//
// Thread-compatible functions of the calling thread; no state of their own.
#ifndef TOEGANG_BASE_THREADS_H_
#define TOEGANG_BASE_THREADS_H_

#include <optional>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace toegang {

// The CPUs the calling thread may run on (its affinity mask), ascending.
absl::StatusOr<std::vector<int>> AllowedCpus();

// Restricts the calling thread to `cpus`, any of the process's CPUs (a pinned thread
// may be moved again). Threads it creates afterwards start with the same restriction.
// InvalidArgument, naming the CPU, if `cpus` is empty or holds a CPU the process may not
// use (offline, outside its cpuset, nonexistent); the thread's placement is then
// unchanged.
absl::Status PinCurrentThread(absl::Span<const int> cpus);

// Names the calling thread as `ps -L`, `top -H`, perf and gdb show it. Linux keeps the
// first 15 bytes.
void NameCurrentThread(absl::string_view name);

// A split of the CPUs between background work (the access log's writer) and the
// threads that answer requests.
struct Placement {
  std::vector<int> background;
  std::vector<int> requests;
};

// The split `toegang serve` uses: the last of `allowed` for the background, the rest for
// requests. nullopt for fewer than two CPUs (nothing to separate) or a list that is not
// ascending and free of repeats (as AllowedCpus returns it).
std::optional<Placement> SeparateBackground(absl::Span<const int> allowed);

}  // namespace toegang

#endif  // TOEGANG_BASE_THREADS_H_
