// Copyright toegang authors.
//
// pg.h (internal): the little of libpq the replica needs — a connection, a result,
// statements with text parameters, COPY in — with every failure an absl::Status that
// says where (host and database, never the password) and what PostgreSQL answered.
// The package is the only code that includes libpq's headers. Thread-compatible: one
// connection is used by one thread at a time.
#ifndef TOEGANG_ENGINE_REPLICA_PG_H_
#define TOEGANG_ENGINE_REPLICA_PG_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

struct pg_conn;
struct pg_result;

namespace toegang::pg {

// What a statement returned. Rows are read by column number; values are text unless
// the statement asked for binary results.
class Result {
 public:
  explicit Result(pg_result* r);
  int rows() const;
  bool IsNull(int row, int col) const;
  absl::string_view Get(int row, int col) const;
  // A text integer column (0 for NULL); a malformed one is DataLoss.
  absl::StatusOr<int64_t> Int(int row, int col) const;
  pg_result* raw() const { return r_.get(); }

 private:
  std::shared_ptr<pg_result> r_;
};

class Conn {
 public:
  // Connects with a libpq connection string. Unavailable, naming the server, when it
  // cannot be reached.
  static absl::StatusOr<std::unique_ptr<Conn>> Open(const std::string& conninfo, absl::string_view application);
  ~Conn();
  Conn(const Conn&) = delete;
  Conn& operator=(const Conn&) = delete;

  // Runs `sql` with text parameters $1, $2, ... (nullopt-free: every one given).
  absl::StatusOr<Result> Exec(absl::string_view sql, const std::vector<std::string>& params = {});
  // The same, results in binary (bytea as its bytes, int8 as 8 bytes big-endian).
  absl::StatusOr<Result> ExecBinary(absl::string_view sql, const std::vector<std::string>& params = {});
  // COPY ... FROM STDIN with `data` in COPY's text format.
  absl::Status CopyIn(absl::string_view sql, absl::string_view data);

  // Reads what the server sent and returns the payloads of the notifications received.
  absl::StatusOr<std::vector<std::string>> Notifications();
  // The socket to wait on for notifications.
  int socket() const;
  // False once the connection broke: open a new one.
  bool healthy() const;
  // "host:port/database", for messages.
  const std::string& where() const { return where_; }

 private:
  explicit Conn(pg_conn* c);
  absl::StatusOr<Result> Run(absl::string_view sql, const std::vector<std::string>& params, int format);
  absl::Status Error(absl::string_view what, pg_result* r) const;

  pg_conn* c_;
  std::string where_;
};

// COPY text format: escapes a value; bytes become bytea's hex form.
void AppendCopyText(std::string* out, absl::string_view text);
void AppendCopyBytea(std::string* out, absl::string_view bytes);
// A binary int8 result value.
int64_t BinaryInt64(absl::string_view v);

}  // namespace toegang::pg

#endif  // TOEGANG_ENGINE_REPLICA_PG_H_
