// Copyright toegang authors.
#include "engine/replica/pg.h"

#include <postgresql/libpq-fe.h>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace toegang::pg {

Result::Result(pg_result* r) : r_(r, PQclear) {}
int Result::rows() const { return PQntuples(r_.get()); }
bool Result::IsNull(int row, int col) const { return PQgetisnull(r_.get(), row, col) != 0; }
absl::string_view Result::Get(int row, int col) const {
  return absl::string_view(PQgetvalue(r_.get(), row, col), static_cast<size_t>(PQgetlength(r_.get(), row, col)));
}
absl::StatusOr<int64_t> Result::Int(int row, int col) const {
  if (IsNull(row, col)) return 0;
  int64_t v = 0;
  if (!absl::SimpleAtoi(Get(row, col), &v)) {
    return absl::DataLossError(absl::StrCat("PostgreSQL returned '", Get(row, col), "' where a number was due"));
  }
  return v;
}

Conn::Conn(pg_conn* c) : c_(c) {
  const char* host = PQhost(c_);
  const char* port = PQport(c_);
  const char* db = PQdb(c_);
  where_ = absl::StrCat(host != nullptr ? host : "?", ":", port != nullptr ? port : "?", "/", db != nullptr ? db : "?");
}

Conn::~Conn() { PQfinish(c_); }

absl::StatusOr<std::unique_ptr<Conn>> Conn::Open(const std::string& conninfo, absl::string_view application) {
  // Parsed first, so that a malformed string is the caller's error, not an outage.
  char* parse_error = nullptr;
  PQconninfoOption* parsed = PQconninfoParse(conninfo.c_str(), &parse_error);
  if (parsed == nullptr) {
    std::string why = parse_error != nullptr ? parse_error : "out of memory";
    PQfreemem(parse_error);
    return absl::InvalidArgumentError(
        absl::StrCat("--replicate: not a PostgreSQL connection string: ", absl::StripTrailingAsciiWhitespace(why)));
  }
  PQconninfoFree(parsed);
  const std::string app = std::string(application);
  const char* keys[] = {"dbname", "application_name", "connect_timeout", nullptr};
  const char* values[] = {conninfo.c_str(), app.c_str(), "5", nullptr};
  // expand_dbname: the connection string's own settings win over the two defaults.
  pg_conn* c = PQconnectdbParams(keys, values, /*expand_dbname=*/1);
  if (c == nullptr) return absl::ResourceExhaustedError("libpq could not allocate a connection");
  std::unique_ptr<Conn> conn(new Conn(c));
  if (PQstatus(c) != CONNECTION_OK) {
    return absl::UnavailableError(absl::StrCat("PostgreSQL at ", conn->where(), " cannot be reached: ",
                                               absl::StripTrailingAsciiWhitespace(PQerrorMessage(c))));
  }
  return conn;
}

absl::Status Conn::Error(absl::string_view what, pg_result* r) const {
  std::string msg = absl::StrCat("PostgreSQL at ", where_, ", ", what, ": ",
                                 absl::StripTrailingAsciiWhitespace(r != nullptr ? PQresultErrorMessage(r)
                                                                                 : PQerrorMessage(c_)));
  if (PQstatus(c_) != CONNECTION_OK) return absl::UnavailableError(msg);
  const char* state = r != nullptr ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : nullptr;
  // Class 08: connection exceptions; 57P: the server is shutting down.
  if (state != nullptr && (absl::StartsWith(state, "08") || absl::StartsWith(state, "57P"))) {
    return absl::UnavailableError(msg);
  }
  return absl::InternalError(msg);
}

absl::StatusOr<Result> Conn::Run(absl::string_view sql, const std::vector<std::string>& params, int format) {
  const std::string text(sql);
  std::vector<const char*> values;
  std::vector<int> lengths;
  for (const std::string& p : params) {
    values.push_back(p.c_str());
    lengths.push_back(static_cast<int>(p.size()));
  }
  // Without parameters, the simple protocol: it also runs several statements at once.
  pg_result* r = params.empty() && format == 0
                     ? PQexec(c_, text.c_str())
                     : PQexecParams(c_, text.c_str(), static_cast<int>(params.size()), nullptr, values.data(),
                                    lengths.data(), nullptr, format);
  Result out(r);
  const ExecStatusType st = r != nullptr ? PQresultStatus(r) : PGRES_FATAL_ERROR;
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
    absl::string_view head = absl::StripLeadingAsciiWhitespace(text);
    return Error(absl::StrCat("running '", head.substr(0, head.find_first_of(" \n", 30)), "'"), r);
  }
  return out;
}

absl::StatusOr<Result> Conn::Exec(absl::string_view sql, const std::vector<std::string>& params) {
  return Run(sql, params, 0);
}

absl::StatusOr<Result> Conn::ExecBinary(absl::string_view sql, const std::vector<std::string>& params) {
  return Run(sql, params, 1);
}

absl::Status Conn::CopyIn(absl::string_view sql, absl::string_view data) {
  const std::string text(sql);
  Result start(PQexec(c_, text.c_str()));
  if (PQresultStatus(start.raw()) != PGRES_COPY_IN) return Error("starting COPY", start.raw());
  if (PQputCopyData(c_, data.data(), static_cast<int>(data.size())) != 1 || PQputCopyEnd(c_, nullptr) != 1) {
    return Error("sending COPY data", nullptr);
  }
  absl::Status s = absl::OkStatus();
  while (pg_result* r = PQgetResult(c_)) {
    Result done(r);
    if (PQresultStatus(r) != PGRES_COMMAND_OK && s.ok()) s = Error("copying rows", r);
  }
  return s;
}

absl::StatusOr<std::vector<std::string>> Conn::Notifications() {
  if (PQconsumeInput(c_) != 1) return Error("reading notifications", nullptr);
  std::vector<std::string> out;
  while (PGnotify* n = PQnotifies(c_)) {
    out.push_back(n->extra != nullptr ? n->extra : "");
    PQfreemem(n);
  }
  return out;
}

int Conn::socket() const { return PQsocket(c_); }
bool Conn::healthy() const { return PQstatus(c_) == CONNECTION_OK; }

void AppendCopyText(std::string* out, absl::string_view text) {
  for (char ch : text) {
    switch (ch) {
      case '\\': out->append("\\\\"); break;
      case '\t': out->append("\\t"); break;
      case '\n': out->append("\\n"); break;
      case '\r': out->append("\\r"); break;
      default: out->push_back(ch);
    }
  }
}

void AppendCopyBytea(std::string* out, absl::string_view bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  out->append("\\\\x");  // bytea's hex form, its backslash escaped for COPY
  for (unsigned char b : bytes) {
    out->push_back(kHex[b >> 4]);
    out->push_back(kHex[b & 0xf]);
  }
}

int64_t BinaryInt64(absl::string_view v) {
  uint64_t x = 0;
  for (size_t i = 0; i < 8 && i < v.size(); ++i) x = (x << 8) | static_cast<unsigned char>(v[i]);
  return static_cast<int64_t>(x);
}

}  // namespace toegang::pg
