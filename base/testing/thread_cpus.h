// Copyright toegang authors.
//
// thread_cpus.h (tests only): a process's threads as an operator sees them with `ps -L`
// — each thread's name and the CPUs it may run on — read from /proc.
#ifndef TOEGANG_BASE_TESTING_THREAD_CPUS_H_
#define TOEGANG_BASE_TESTING_THREAD_CPUS_H_

#include <sys/types.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace toegang::testing {

// Thread name -> the CPUs of each thread of that name (Cpus_allowed_list "0-2,5" read
// as {0,1,2,5}). pid 0: this process.
inline std::map<std::string, std::vector<std::vector<int>>> ThreadCpus(pid_t pid = 0) {
  std::map<std::string, std::vector<std::vector<int>>> by_name;
  const std::string tasks = pid == 0 ? "/proc/self/task" : absl::StrCat("/proc/", pid, "/task");
  for (const auto& task : std::filesystem::directory_iterator(tasks)) {
    std::ifstream comm(task.path() / "comm");
    std::string name;
    std::getline(comm, name);
    std::ifstream status(task.path() / "status");
    for (std::string line; std::getline(status, line);) {
      if (!absl::StartsWith(line, "Cpus_allowed_list:")) continue;
      const std::string list(absl::StripAsciiWhitespace(line.substr(18)));
      std::vector<int> cpus;
      for (absl::string_view range : absl::StrSplit(list, ',')) {
        std::vector<absl::string_view> ends = absl::StrSplit(range, '-');
        int first = -1, last = -1;
        if (!absl::SimpleAtoi(ends.front(), &first) || !absl::SimpleAtoi(ends.back(), &last)) continue;
        for (int cpu = first; cpu <= last; ++cpu) cpus.push_back(cpu);
      }
      by_name[name].push_back(cpus);
    }
  }
  return by_name;
}

}  // namespace toegang::testing

#endif  // TOEGANG_BASE_TESTING_THREAD_CPUS_H_
