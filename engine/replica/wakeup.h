// Copyright toegang authors.
//
// wakeup.h (internal): the sleep of the replica's background threads (the applier, the
// access-log shipper) between rounds: up to their poll interval, cut short by another
// thread (a write to apply, a stop) or, for the applier, by PostgreSQL's socket
// becoming readable (a notification). A self-pipe, so it can sit in one poll() with
// that socket.
#ifndef TOEGANG_ENGINE_REPLICA_WAKEUP_H_
#define TOEGANG_ENGINE_REPLICA_WAKEUP_H_

#include <poll.h>
#include <unistd.h>

#include <algorithm>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace toegang::replica_internal {

class Wakeup {
 public:
  Wakeup() = default;
  ~Wakeup() {
    for (int fd : pipe_) {
      if (fd >= 0) close(fd);
    }
  }
  Wakeup(const Wakeup&) = delete;
  Wakeup& operator=(const Wakeup&) = delete;

  absl::Status Open() {
    if (pipe(pipe_) != 0) return absl::InternalError("cannot make a background thread's wake-up pipe");
    return absl::OkStatus();
  }

  // Ends the current or next Sleep. Safe from any thread.
  void Wake() {
    const char b = 0;
    if (pipe_[1] >= 0) (void)!write(pipe_[1], &b, 1);
  }

  // Returns when woken, when `fd` (if >= 0) is readable, or after `timeout`.
  void Sleep(absl::Duration timeout, int fd = -1) {
    pollfd fds[2] = {{pipe_[0], POLLIN, 0}, {fd, POLLIN, 0}};
    const int ms = static_cast<int>(std::max<int64_t>(1, absl::ToInt64Milliseconds(timeout)));
    if (poll(fds, fd >= 0 ? 2 : 1, ms) > 0 && (fds[0].revents & POLLIN) != 0) {
      char buf[64];
      (void)!read(pipe_[0], buf, sizeof buf);
    }
  }

 private:
  int pipe_[2] = {-1, -1};
};

}  // namespace toegang::replica_internal

#endif  // TOEGANG_ENGINE_REPLICA_WAKEUP_H_
