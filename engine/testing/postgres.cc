// Copyright toegang authors.
#include "engine/testing/postgres.h"

#include <fcntl.h>
#include <pwd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace toegang::testing {
namespace {

std::string FindBin() {
  std::error_code ec;
  std::string best;
  for (const auto& e : std::filesystem::directory_iterator("/usr/lib/postgresql", ec)) {
    std::string bin = (e.path() / "bin").string();
    if (std::filesystem::exists(bin + "/initdb") && bin > best) best = bin;
  }
  return best;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace

absl::StatusOr<std::unique_ptr<TestPostgres>> TestPostgres::Start() {
  std::unique_ptr<TestPostgres> pg(new TestPostgres);
  pg->bin_ = FindBin();
  if (pg->bin_.empty()) {
    return absl::FailedPreconditionError("no PostgreSQL server under /usr/lib/postgresql (./run test installs postgresql-15)");
  }
  char tmpl[] = "/tmp/toegang-pg-XXXXXX";
  if (mkdtemp(tmpl) == nullptr) return absl::InternalError("mkdtemp failed");
  pg->dir_ = tmpl;
  if (geteuid() == 0) {
    const passwd* pw = getpwnam("postgres");
    if (pw == nullptr) pw = getpwnam("nobody");
    if (pw == nullptr) return absl::FailedPreconditionError("running as root and no user postgres or nobody to run PostgreSQL as");
    pg->uid_ = static_cast<int>(pw->pw_uid);
    pg->gid_ = static_cast<int>(pw->pw_gid);
    if (chown(pg->dir_.c_str(), pw->pw_uid, pw->pw_gid) != 0) return absl::InternalError("chown of the test directory failed");
  }
  chmod(pg->dir_.c_str(), 0755);
  absl::Status init = pg->Run("initdb", {pg->bin_ + "/initdb", "-D", pg->dir_ + "/data", "-U", "toegang",
                                         "--auth=trust", "--no-sync", "-E", "UTF8", "--locale=C"});
  if (!init.ok()) return init;
  std::ofstream(pg->dir_ + "/data/postgresql.conf", std::ios::app)
      << "listen_addresses = ''\nunix_socket_directories = '" << pg->dir_ << "'\nmax_connections = 60\n"
      << "shared_buffers = 32MB\n";
  absl::Status started = pg->Resume();
  if (!started.ok()) return started;
  return pg;
}

TestPostgres::~TestPostgres() {
  if (running_) Stop().IgnoreError();
  std::error_code ec;
  if (!dir_.empty()) std::filesystem::remove_all(dir_, ec);
}

std::string TestPostgres::Conninfo(const std::string& database) const {
  return absl::StrCat("host=", dir_, " port=5432 user=toegang dbname=", database);
}

absl::StatusOr<std::string> TestPostgres::NewDatabase(const std::string& name) {
  absl::StatusOr<std::string> made = Sql("postgres", absl::StrCat("CREATE DATABASE ", name));
  if (!made.ok()) return made.status();
  return Conninfo(name);
}

absl::StatusOr<std::string> TestPostgres::Sql(const std::string& database, const std::string& sql) {
  std::string out;
  absl::Status s = Run("psql", {bin_ + "/psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", dir_, "-U",
                                "toegang", "-d", database, "-c", sql},
                       &out);
  if (!s.ok()) return s;
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

absl::Status TestPostgres::Stop() {
  absl::Status s = Run("pg_ctl stop", {bin_ + "/pg_ctl", "-D", dir_ + "/data", "-m", "fast", "-w", "stop"});
  if (s.ok()) running_ = false;
  return s;
}

absl::Status TestPostgres::Resume() {
  absl::Status s =
      Run("pg_ctl start", {bin_ + "/pg_ctl", "-D", dir_ + "/data", "-l", dir_ + "/server.log", "-w", "start"});
  if (!s.ok()) return absl::Status(s.code(), absl::StrCat(s.message(), "\nserver log:\n", ReadFile(dir_ + "/server.log")));
  running_ = true;
  return s;
}

absl::Status TestPostgres::Run(const std::string& what, const std::vector<std::string>& argv, std::string* output) {
  const std::string out_path = absl::StrCat(dir_, "/run-", getpid(), ".out");
  pid_t pid = fork();
  if (pid < 0) return absl::InternalError("fork failed");
  if (pid == 0) {
    // psql runs as this process's user (it only connects); the server's tools as its own.
    const bool as_server = argv[0].find("/psql") == std::string::npos;
    if (as_server && uid_ >= 0 && (setgid(static_cast<gid_t>(gid_)) != 0 || setuid(static_cast<uid_t>(uid_)) != 0)) _exit(126);
    int fd = open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0666);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
    }
    std::vector<char*> args;
    for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  std::string out = ReadFile(out_path);
  unlink(out_path.c_str());
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return absl::InternalError(absl::StrCat(what, " failed (", WIFEXITED(status) ? WEXITSTATUS(status) : -1, "): ", out));
  }
  if (output != nullptr) *output = out;
  return absl::OkStatus();
}

}  // namespace toegang::testing
