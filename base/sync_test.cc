// Copyright toegang authors.
//
// Watermark: every waiter returns once the value reaches its target, none before, and
// Close() ends the waits that can no longer be met.
#include "base/sync.h"

#include <atomic>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace toegang {
namespace {

TEST(Watermark, EveryWaiterReturnsOnceItsTargetIsReachedAndNotBefore) {
  Watermark mark(0);
  constexpr int kWaiters = 32;
  constexpr uint64_t kSteps = 2000;
  std::atomic<int> early{0};
  std::vector<std::thread> waiters;
  for (int i = 0; i < kWaiters; ++i) {
    waiters.emplace_back([&, i] {
      for (uint64_t target = 1 + i % 7; target <= kSteps; target += 1 + (i % 5) * 13) {
        ASSERT_TRUE(mark.WaitFor(target));
        if (mark.value() < target) early.fetch_add(1);
      }
    });
  }
  for (uint64_t v = 1; v <= kSteps; ++v) {
    mark.Advance(v);
    if (v % 64 == 0) std::this_thread::yield();
  }
  for (auto& t : waiters) t.join();
  EXPECT_EQ(early.load(), 0);
  EXPECT_EQ(mark.value(), kSteps);
}

TEST(Watermark, CloseEndsWaitsThatCannotBeMet) {
  Watermark mark(5);
  EXPECT_TRUE(mark.WaitFor(5)) << "a target already reached does not wait";
  std::atomic<int> refused{0};
  std::vector<std::thread> waiters;
  for (int i = 0; i < 8; ++i) {
    waiters.emplace_back([&] {
      if (!mark.WaitFor(100)) refused.fetch_add(1);
    });
  }
  mark.Advance(50);
  mark.Close();
  for (auto& t : waiters) t.join();
  EXPECT_EQ(refused.load(), 8);
  EXPECT_FALSE(mark.WaitFor(51)) << "a closed mark refuses later waits too";
  EXPECT_TRUE(mark.WaitFor(50));
}

TEST(Watermark, AReopenedMarkRefusesWaitersOfTheGenerationBefore) {
  Watermark mark(10);
  const uint32_t before = mark.generation();
  std::atomic<int> refused{0};
  std::thread old_waiter([&] {
    if (!mark.WaitFor(12, before)) refused.fetch_add(1);
  });
  mark.Close();
  mark.Reopen(10);  // numbering restarts after 10: 11 and 12 will be other records
  const uint32_t after = mark.generation();
  EXPECT_NE(after, before);
  std::thread new_waiter([&] { EXPECT_TRUE(mark.WaitFor(12, after)); });
  mark.Advance(12);
  old_waiter.join();
  new_waiter.join();
  EXPECT_EQ(refused.load(), 1);
  EXPECT_FALSE(mark.WaitFor(11, before)) << "reached again, but by another generation's record";
  EXPECT_TRUE(mark.WaitFor(12));
}

}  // namespace
}  // namespace toegang
