// Copyright toegang authors.
//
// postgres.h: a real PostgreSQL server for a test (Debian's postgresql-15), started by
// the test itself. initdb refuses root, so when the test runs as root the server runs
// as the `postgres` user (or `nobody`): such tests are tagged no-sandbox, since Bazel's
// sandbox does not map other users. The server listens only on a Unix socket in its own
// directory under /tmp (a path every user can reach), trusts local connections as the
// superuser `toegang`, and is stopped and removed with this object.
#ifndef TOEGANG_ENGINE_TESTING_POSTGRES_H_
#define TOEGANG_ENGINE_TESTING_POSTGRES_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace toegang::testing {

class TestPostgres {
 public:
  // initdb and start; an error names the step and the server's log.
  static absl::StatusOr<std::unique_ptr<TestPostgres>> Start();
  ~TestPostgres();

  // A libpq connection string for `database`.
  std::string Conninfo(const std::string& database = "postgres") const;
  // A fresh, empty database; returns its connection string.
  absl::StatusOr<std::string> NewDatabase(const std::string& name);
  // Runs SQL through psql; returns what it printed (unaligned, tuples only).
  absl::StatusOr<std::string> Sql(const std::string& database, const std::string& sql);

  // Stops the server (fast shutdown: open transactions roll back) and starts it again.
  absl::Status Stop();
  absl::Status Resume();

 private:
  TestPostgres() = default;
  absl::Status Run(const std::string& what, const std::vector<std::string>& argv, std::string* output = nullptr);

  std::string dir_;   // /tmp/toegang-pg-XXXXXX: data/, socket dir, log
  std::string bin_;   // /usr/lib/postgresql/N/bin
  int uid_ = -1, gid_ = -1;  // whom the server runs as; -1: this process's user
  bool running_ = false;
};

}  // namespace toegang::testing

#endif  // TOEGANG_ENGINE_TESTING_POSTGRES_H_
