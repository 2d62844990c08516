// Copyright toegang authors.
//
// doors.h: every door into toegang as a corpus::Decider (case_corpus.h lists them):
// the evaluator, the Engine in memory and on RocksDB, the CLI, HTTP and frames. The
// last three drive the real `toegang` binary.
#ifndef TOEGANG_TESTS_TESTING_DOORS_H_
#define TOEGANG_TESTS_TESTING_DOORS_H_

#include <memory>
#include <vector>

#include "tests/testing/case_corpus.h"

namespace toegang::corpus {

// Every door, in case_corpus.h's order.
std::vector<std::unique_ptr<Decider>> AllDoors();

}  // namespace toegang::corpus

#endif  // TOEGANG_TESTS_TESTING_DOORS_H_
