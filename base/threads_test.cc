// Copyright toegang authors.
#include "base/threads.h"

#include <pthread.h>
#include <sched.h>

#include <cstring>
#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace toegang {
namespace {

using ::testing::ElementsAre;
using ::testing::ElementsAreArray;

TEST(SeparateBackground, Table) {
  struct Case {
    const char* name;
    std::vector<int> allowed;
    bool separated;
    std::vector<int> background;
    std::vector<int> requests;
  };
  const Case cases[] = {
      {"none", {}, false, {}, {}},
      {"one CPU: nothing to separate", {3}, false, {}, {}},
      {"two", {0, 1}, true, {1}, {0}},
      {"a cpuset with gaps", {2, 5, 7, 9}, true, {9}, {2, 5, 7}},
      {"not ascending", {1, 0}, false, {}, {}},
      {"a repeat", {0, 0}, false, {}, {}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    std::optional<Placement> p = SeparateBackground(c.allowed);
    ASSERT_EQ(p.has_value(), c.separated);
    if (!p) continue;
    EXPECT_EQ(p->background, c.background);
    EXPECT_EQ(p->requests, c.requests);
  }
}

TEST(AllowedCpus, AscendingAndNotEmpty) {
  absl::StatusOr<std::vector<int>> cpus = AllowedCpus();
  ASSERT_TRUE(cpus.ok()) << cpus.status();
  ASSERT_FALSE(cpus->empty());
  for (size_t i = 1; i < cpus->size(); ++i) EXPECT_LT((*cpus)[i - 1], (*cpus)[i]);
}

// On a thread of its own, so the test process keeps its CPUs.
TEST(PinCurrentThread, NarrowsTheThreadAndWhatItStarts) {
  std::thread([] {
    std::vector<int> all = *AllowedCpus();
    ASSERT_TRUE(PinCurrentThread({all.back()}).ok());
    EXPECT_THAT(*AllowedCpus(), ElementsAre(all.back()));
    std::vector<int> child;
    std::thread([&] { child = *AllowedCpus(); }).join();
    EXPECT_THAT(child, ElementsAre(all.back()));
  }).join();
}

TEST(PinCurrentThread, APinnedThreadMayMoveAgain) {
  std::thread([] {
    std::vector<int> all = *AllowedCpus();
    ASSERT_TRUE(PinCurrentThread({all.front()}).ok());
    ASSERT_TRUE(PinCurrentThread(all).ok());
    EXPECT_THAT(*AllowedCpus(), ElementsAreArray(all));
  }).join();
}

TEST(PinCurrentThread, RefusesWhatItMayNotUseAndChangesNothing) {
  std::thread([] {
    std::vector<int> all = *AllowedCpus();
    absl::Status empty = PinCurrentThread({});
    EXPECT_EQ(empty.code(), absl::StatusCode::kInvalidArgument);
    const int absent = CPU_SETSIZE - 1;  // no test machine has 1,024 CPUs
    absl::Status s = PinCurrentThread({all.front(), absent});
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(s.message().find("CPU " + std::to_string(absent)), absl::string_view::npos) << s;
    absl::Status only_absent = PinCurrentThread({absent});
    EXPECT_EQ(only_absent.code(), absl::StatusCode::kInvalidArgument) << only_absent;
    for (int nonsense : {-1, CPU_SETSIZE}) {
      absl::Status s = PinCurrentThread({nonsense});
      EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
      EXPECT_NE(s.message().find(std::to_string(nonsense)), absl::string_view::npos) << s;
    }
    EXPECT_THAT(*AllowedCpus(), ElementsAreArray(all));
  }).join();
}

TEST(NameCurrentThread, KeepsFifteenBytes) {
  std::thread([] {
    NameCurrentThread("toegang-a-very-long-name");
    char name[32] = {};
    ASSERT_EQ(pthread_getname_np(pthread_self(), name, sizeof name), 0);
    EXPECT_STREQ(name, "toegang-a-very-");
  }).join();
}

}  // namespace
}  // namespace toegang
