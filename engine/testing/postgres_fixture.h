// Copyright toegang authors.
//
// postgres_fixture.h: a GoogleTest fixture over one TestPostgres (postgres.h) per test
// suite, with an empty database of its own for each test: conninfo_ connects to it,
// database_ names it, pg_ is the server (to stop, resume or query it).
#ifndef TOEGANG_ENGINE_TESTING_POSTGRES_FIXTURE_H_
#define TOEGANG_ENGINE_TESTING_POSTGRES_FIXTURE_H_

#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "engine/testing/postgres.h"
#include "gtest/gtest.h"

namespace toegang::testing {

class PostgresTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    absl::StatusOr<std::unique_ptr<TestPostgres>> pg = TestPostgres::Start();
    ASSERT_TRUE(pg.ok()) << pg.status();
    pg_ = pg->release();
  }
  static void TearDownTestSuite() {
    delete pg_;
    pg_ = nullptr;
  }
  void SetUp() override {
    ASSERT_NE(pg_, nullptr);
    static int n = 0;
    database_ = absl::StrCat("t", ++n);
    absl::StatusOr<std::string> db = pg_->NewDatabase(database_);
    ASSERT_TRUE(db.ok()) << db.status();
    conninfo_ = *db;
  }

  static inline TestPostgres* pg_ = nullptr;
  std::string conninfo_;
  std::string database_;
};

}  // namespace toegang::testing

#endif  // TOEGANG_ENGINE_TESTING_POSTGRES_FIXTURE_H_
