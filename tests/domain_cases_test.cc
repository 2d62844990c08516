// Copyright toegang authors.
//
// One case corpus through every door: each case of tests/cases/domain_cases.json is
// decided by the evaluator, the Engine in memory and on RocksDB, the CLI, HTTP and the
// frame protocol (tests/testing/case_corpus.h), and every door must give the answer the
// case expects. A rule that holds in the evaluator but is lost on the way through a
// store, a codec or a transport fails here, naming the door.
#include "gtest/gtest.h"
#include "tests/testing/case_corpus.h"
#include "tests/testing/doors.h"

namespace toegang::corpus {
namespace {

TEST(DomainCases, EveryCaseThroughEveryDoor) {
  const std::vector<Case> cases = LoadDomainCases();
  ASSERT_GE(cases.size(), 100u);
  std::vector<std::unique_ptr<Decider>> doors = AllDoors();
  ASSERT_EQ(doors.size(), 7u);
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    for (const std::unique_ptr<Decider>& door : doors) {
      if (!c.load_error.empty() && !door->records_facts()) continue;
      SCOPED_TRACE(door->name());
      ExpectDecision(c, door->Decide(c));
    }
  }
}

}  // namespace
}  // namespace toegang::corpus
