// Copyright toegang authors.
#include "base/threads.h"

#include <pthread.h>
#include <sched.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/files.h"

namespace toegang {
namespace {

}  // namespace

absl::StatusOr<std::vector<int>> AllowedCpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) != 0) return ErrnoStatus("sched_getaffinity");
  std::vector<int> cpus;
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
    if (CPU_ISSET(cpu, &set)) cpus.push_back(cpu);
  }
  return cpus;
}

absl::Status PinCurrentThread(absl::Span<const int> cpus) {
  if (cpus.empty()) return absl::InvalidArgumentError("no CPU to run on");
  cpu_set_t want;
  CPU_ZERO(&want);
  for (int cpu : cpus) {
    if (cpu < 0 || cpu >= CPU_SETSIZE) return absl::InvalidArgumentError(absl::StrCat("there is no CPU ", cpu));
    CPU_SET(cpu, &want);
  }
  cpu_set_t before;
  if (sched_getaffinity(0, sizeof before, &before) != 0) return ErrnoStatus("sched_getaffinity");
  // The kernel keeps only the CPUs the process's cpuset allows, and refuses a set with
  // none of them; so what was asked for is checked against what it kept.
  if (sched_setaffinity(0, sizeof want, &want) != 0) {
    if (errno == EINVAL) {
      return absl::InvalidArgumentError(
          absl::StrCat("none of CPU ", absl::StrJoin(cpus, ","), " is one this process may run on"));
    }
    return ErrnoStatus("sched_setaffinity");
  }
  cpu_set_t kept;
  CPU_ZERO(&kept);
  if (sched_getaffinity(0, sizeof kept, &kept) != 0) CPU_ZERO(&kept);
  for (int cpu : cpus) {
    if (!CPU_ISSET(cpu, &kept)) {
      (void)sched_setaffinity(0, sizeof before, &before);  // it was allowed a moment ago
      return absl::InvalidArgumentError(absl::StrCat("CPU ", cpu, " is not one this process may run on"));
    }
  }
  return absl::OkStatus();
}

void NameCurrentThread(absl::string_view name) {
  std::string kept(name.substr(0, 15));
  // Naming is for people reading ps and perf output; a failure changes nothing else.
  (void)pthread_setname_np(pthread_self(), kept.c_str());
}

std::optional<Placement> SeparateBackground(absl::Span<const int> allowed) {
  if (allowed.size() < 2) return std::nullopt;
  for (size_t i = 1; i < allowed.size(); ++i) {
    if (allowed[i] <= allowed[i - 1]) return std::nullopt;
  }
  Placement p;
  p.background = {allowed.back()};
  p.requests.assign(allowed.begin(), allowed.end() - 1);
  return p;
}

}  // namespace toegang
