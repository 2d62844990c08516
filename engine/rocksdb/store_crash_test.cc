// Copyright toegang authors.
//
// Crash safety (DOMAIN D40): a writer process appends batches and reports each
// acknowledged sequence; we SIGKILL it at a random moment, 50 times, reopen the store
// each time and check that every acknowledged batch is there whole, and that no batch
// is there in part.
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <random>
#include <sstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "engine/rocksdb/rocksdb_store.h"
#include "engine/testing/crash_harness.h"
#include "gtest/gtest.h"

namespace toegang {
namespace {

TEST(StoreCrash, KilledWriterLosesNoAcknowledgedFactAndLeavesNoHalfBatch) {
  const std::string dir = testing::FreshDir("crash_store");
  std::mt19937 rng(20261123);
  int total_acked = 0;
  uint64_t last_seq_seen = 0;
  for (int round = 0; round < 50; ++round) {
    SCOPED_TRACE(absl::StrCat("round ", round));
    std::string tag = absl::StrCat("r", round);
    // Let it run 5..80 ms, then kill it mid-flight.
    bool started = false;
    std::string acks = testing::RunThenKill({dir, tag}, 5000 + rng() % 75000, round % 2 == 1, &started);
    ASSERT_TRUE(started);

    absl::StatusOr<std::unique_ptr<FactStore>> store = OpenDurableFactStore(dir, {});
    ASSERT_TRUE(store.ok()) << store.status();
    int acked = -1;
    uint64_t max_seq = 0;
    std::istringstream lines(acks);
    std::string word;
    int batch;
    unsigned long long seq;
    while (lines >> word >> batch >> seq) {
      acked = batch;
      max_seq = seq;
    }
    EXPECT_GE((*store)->LastSequence(), max_seq);
    EXPECT_GE((*store)->LastSequence(), last_seq_seen) << "the sequence went backwards";
    last_seq_seen = (*store)->LastSequence();
    // Every acknowledged batch whole; any later batch whole or absent.
    for (int b = 0; b <= acked + 2; ++b) {
      absl::StatusOr<std::vector<Fact>> h = (*store)->History(absl::StrCat(tag, "-", b));
      ASSERT_TRUE(h.ok()) << h.status();
      if (b <= acked) {
        EXPECT_EQ(h->size(), 3u) << "acknowledged batch " << b << " lost facts";
      } else {
        EXPECT_TRUE(h->empty() || h->size() == 3u) << "batch " << b << " is half-written: " << h->size();
      }
    }
    total_acked += acked + 1;
  }
  EXPECT_GT(total_acked, 50) << "the writer hardly wrote: the test proves little";
}

}  // namespace
}  // namespace toegang
