// Copyright toegang authors.
#include "engine/sidecar/socket_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <algorithm>
#include <atomic>
#include <deque>
#include <functional>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "base/files.h"
#include "base/sync.h"
#include "base/threads.h"
#include "base/worker_pool.h"
#include "engine/sidecar/net.h"
#include "engine/sidecar/wire_codec.h"

namespace toegang::sidecar {
namespace {

constexpr size_t kMaxBufferedFrames = 16;

struct Connection {
  Connection(int f, bool trusted, std::string peer) : fd(f), authenticated(trusted), client(std::move(peer)) {}
  ~Connection() { close(fd); }
  const int fd;
  bool authenticated;        // Unix peers: checked at accept; TCP: after a good hello (I/O thread only)
  const std::string client;  // the peer's address (TCP), for the failure limiter
  std::string in;                        // bytes read, not yet a whole frame (I/O thread only)
  absl::Time last_activity = absl::Now();  // I/O thread only
  absl::Time frame_started = absl::InfinitePast();
  // Output. Never held across a blocking call: a thread either sends without blocking
  // or appends to `pending`, which one drain task at a time writes out in order.
  Mutex out_mu;
  std::string pending ABSL_GUARDED_BY(out_mu);
  bool draining ABSL_GUARDED_BY(out_mu) = false;
  bool broken ABSL_GUARDED_BY(out_mu) = false;
};

class SocketServerImpl final : public SocketServer {
 public:
  SocketServerImpl(Service* service, SocketServerOptions options)
      : service_(service), options_(std::move(options)), workers_(std::make_unique<WorkerPool>(options_.workers, "toegang-worker")) {}

  ~SocketServerImpl() override { Shutdown(); }

  absl::Status Bind() {
    epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
    if (epoll_fd_ < 0) return ErrnoStatus("epoll_create1");
    wake_fd_[0] = wake_fd_[1] = -1;
    if (pipe2(wake_fd_, O_CLOEXEC | O_NONBLOCK) != 0) return ErrnoStatus("pipe");
    AddToEpoll(wake_fd_[0]);
    if (!options_.unix_path.empty()) {
      absl::StatusOr<int> fd = BindUnix();
      if (!fd.ok()) return fd.status();
      unix_listener_ = *fd;
      listeners_.push_back(*fd);
    }
    if (!options_.tcp_address.empty()) {
      absl::StatusOr<sockaddr_in> parsed = ParseHostPort(options_.tcp_address, "--tcp");
      if (!parsed.ok()) return parsed.status();
      sockaddr_in addr = *parsed;
      int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      if (fd < 0) return ErrnoStatus("socket(AF_INET)");
      int one = 1;
      setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
      if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || listen(fd, 512) != 0) {
        absl::Status s = ErrnoStatus(absl::StrCat("bind ", options_.tcp_address));
        close(fd);
        return s;
      }
      socklen_t len = sizeof addr;
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
      tcp_port_ = ntohs(addr.sin_port);
      listeners_.push_back(fd);
    }
    for (int fd : listeners_) {
      // Non-blocking, so that the I/O thread can accept until there is nobody left.
      fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
      AddToEpoll(fd);
    }
    io_thread_ = std::thread([this] { Loop(); });
    return absl::OkStatus();
  }

  int tcp_port() const override { return tcp_port_; }

  // The Unix socket, created 0660 in a directory toegang creates 0750 when missing.
  // Whatever is at the path stays unless it is a socket nobody answers on (stale).
  absl::StatusOr<int> BindUnix() {
    const std::string& path = options_.unix_path;
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (path.size() >= sizeof(addr.sun_path)) {
      return absl::InvalidArgumentError(absl::StrCat("--socket: the path is longer than ", sizeof(addr.sun_path) - 1,
                                                     " bytes"));
    }
    std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
    const size_t slash = path.rfind('/');
    const std::string dir = slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
    struct stat st;
    if (stat(dir.c_str(), &st) != 0) {
      if (errno != ENOENT || mkdir(dir.c_str(), 0750) != 0) return ErrnoStatus(absl::StrCat("--socket: directory ", dir));
      if (chmod(dir.c_str(), 0750) != 0) return ErrnoStatus(absl::StrCat("--socket: chmod ", dir));  // whatever the umask
    }
    if (lstat(path.c_str(), &st) == 0) {
      if (!S_ISSOCK(st.st_mode)) {
        return absl::FailedPreconditionError(
            absl::StrCat("--socket: '", path, "' exists and is not a socket; toegang does not remove it"));
      }
      int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
      if (probe < 0) return ErrnoStatus("socket(AF_UNIX)");
      const bool live = connect(probe, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
      const int err = errno;
      close(probe);
      if (live) {
        return absl::FailedPreconditionError(
            absl::StrCat("--socket: a server is already answering on '", path, "'"));
      }
      if (err != ECONNREFUSED) return ErrnoStatus(absl::StrCat("--socket: probing ", path));
      unlink(path.c_str());  // stale: its server is gone
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return ErrnoStatus("socket(AF_UNIX)");
    // Created 0660 from the start: a chmod after bind would leave a moment at the
    // umask's mode.
    const mode_t old_mask = umask(0117);
    const bool bound = bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    const int bind_err = errno;
    umask(old_mask);
    if (!bound || listen(fd, 512) != 0) {
      errno = bound ? errno : bind_err;
      absl::Status s = ErrnoStatus(absl::StrCat("bind ", path));
      close(fd);
      return s;
    }
    if (stat(path.c_str(), &st) == 0) socket_inode_ = st.st_ino;
    return fd;
  }

  // Whether a Unix-socket peer may talk to the server.
  bool PeerAllowed(int fd) {
    ucred cred{};
    socklen_t len = sizeof cred;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) return false;
    if (options_.allow_uids.empty() && options_.allow_gids.empty()) return cred.uid == geteuid();
    return std::find(options_.allow_uids.begin(), options_.allow_uids.end(), cred.uid) != options_.allow_uids.end() ||
           std::find(options_.allow_gids.begin(), options_.allow_gids.end(), cred.gid) != options_.allow_gids.end();
  }

  // Sends one answer without blocking; what does not fit is queued behind a drain task
  // (and the connection is not read until it drains). Safe from any thread.
  void Answer(const std::shared_ptr<Connection>& c, const std::string& frame) {
    std::string bytes = WithLength(frame);
    MutexLock lock(&c->out_mu);
    if (c->broken) return;
    if (c->draining) {
      c->pending += bytes;
      return;
    }
    size_t sent = 0;
    while (sent < bytes.size()) {
      ssize_t w = send(c->fd, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (w > 0) {
        sent += static_cast<size_t>(w);
      } else if (w < 0 && errno == EINTR) {
        continue;
      } else if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        break;
      } else {
        c->broken = true;
        shutdown(c->fd, SHUT_RDWR);
        return;
      }
    }
    if (sent == bytes.size()) return;
    c->pending = bytes.substr(sent);
    c->draining = true;
    PauseReading(c->fd);
    workers_->Submit([this, c] { Drain(c); });
  }

  // Writes `pending` out, blocking up to the send timeout per write; resumes reading.
  void Drain(const std::shared_ptr<Connection>& c) {
    while (true) {
      std::string chunk;
      {
        MutexLock lock(&c->out_mu);
        if (c->broken) return;
        if (c->pending.empty()) {
          c->draining = false;
          ResumeReading(c->fd);
          return;
        }
        chunk.swap(c->pending);
      }
      if (!SendAll(c->fd, chunk.data(), chunk.size())) {
        MutexLock lock(&c->out_mu);
        c->broken = true;
        shutdown(c->fd, SHUT_RDWR);  // a client that does not read its answers
        service_->CountTransportError("write_timeout");
        return;
      }
    }
  }

  void PauseReading(int fd) {
    epoll_event ev{};
    ev.events = 0;
    ev.data.fd = fd;
    epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, fd, &ev);
  }
  void ResumeReading(int fd) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = fd;
    epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, fd, &ev);  // ENOENT if already dropped: fine
  }

  void Shutdown() override {
    if (!io_thread_.joinable()) return;
    stopping_.store(true);
    char b = 1;
    (void)!write(wake_fd_[1], &b, 1);
    io_thread_.join();
    // Workers finish the frames already read (their connections stay referenced).
    workers_.reset();
    conns_.clear();
    for (int fd : listeners_) close(fd);
    listeners_.clear();
    // Only our own socket: another server may have been started on the path since.
    struct stat st;
    if (!options_.unix_path.empty() && lstat(options_.unix_path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode) &&
        st.st_ino == socket_inode_) {
      unlink(options_.unix_path.c_str());
    }
    close(epoll_fd_);
    close(wake_fd_[0]);
    close(wake_fd_[1]);
  }

 private:
  void AddToEpoll(int fd) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = fd;
    epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev);
  }

  void Drop(int fd) {
    epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);
    auto it = conns_.find(fd);
    if (it == conns_.end()) return;
    shutdown(fd, SHUT_RDWR);
    conns_.erase(it);  // the fd closes when the last in-flight answer is written
  }

  void Accept(int listener) {
    while (true) {
      sockaddr_storage peer{};
      socklen_t peer_len = sizeof peer;
      int fd = accept4(listener, reinterpret_cast<sockaddr*>(&peer), &peer_len, SOCK_CLOEXEC);
      if (fd < 0) return;
      if (conns_.size() >= options_.max_connections) {
        service_->CountTransportError("too_many_connections");
        close(fd);
        continue;
      }
      const bool unix_peer = listener == unix_listener_;
      if (unix_peer && !PeerAllowed(fd)) {
        service_->CountPeerRefused();
        close(fd);
        continue;
      }
      char address[INET6_ADDRSTRLEN] = {0};
      if (peer.ss_family == AF_INET) {
        inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(&peer)->sin_addr, address, sizeof address);
      }
      int one = 1;
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);  // fails harmlessly on Unix sockets
      timeval tv{};
      tv.tv_sec = static_cast<time_t>(absl::ToInt64Seconds(options_.write_timeout));
      tv.tv_usec = static_cast<suseconds_t>(absl::ToInt64Microseconds(options_.write_timeout) % 1000000);
      setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
      conns_[fd] = std::make_shared<Connection>(fd, unix_peer, address);
      AddToEpoll(fd);
    }
  }

  void Read(int fd) {
    auto it = conns_.find(fd);
    if (it == conns_.end()) return;
    std::shared_ptr<Connection> c = it->second;
    char buf[16384];
    while (true) {
      ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
      if (n > 0) {
        c->in.append(buf, static_cast<size_t>(n));
        c->last_activity = absl::Now();
        // Bound what one connection may have buffered; the rest waits in the kernel.
        if (c->in.size() > kMaxBufferedFrames * (service_->limits().max_frame_bytes + 4)) break;
        continue;
      }
      if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
        Drop(fd);
        return;
      }
      if (errno == EINTR) continue;
      break;
    }
    // Cut whole frames.
    size_t pos = 0;
    while (c->in.size() - pos >= 4) {
      const uint32_t len = FrameLength(c->in.data() + pos);
      if (len > service_->limits().max_frame_bytes) {
        service_->CountTransportError("frame_too_large");
        // Best effort, never blocking the I/O thread: the connection closes anyway.
        Answer(c, EncodeErrorResponse(0, absl::StrCat("frame of ", len, " bytes exceeds the limit of ",
                                                     service_->limits().max_frame_bytes, "; closing")));
        Drop(fd);
        return;
      }
      if (c->in.size() - pos - 4 < len) break;
      std::string frame = c->in.substr(pos + 4, len);
      pos += 4 + len;
      if (!c->authenticated) {
        // A TCP connection opens with its hello; nothing else is read before it passes.
        std::string answer;
        absl::StatusOr<Caller> caller = service_->HelloFrame(frame, c->client, &answer);
        Answer(c, answer);
        if (!caller.ok()) {
          Drop(fd);
          return;
        }
        c->authenticated = true;
        continue;
      }
      if (options_.inline_decisions) {
        // Decisions that cannot block (no durable log sync) are answered right here:
        // no handoff to a worker, no extra wake-ups.
        Answer(c, service_->DecideFrame(frame));
      } else {
        workers_->Submit([this, c, frame = std::move(frame)] { Answer(c, service_->DecideFrame(frame)); });
      }
    }
    c->in.erase(0, pos);
    c->frame_started = c->in.empty() ? absl::InfinitePast() : (c->frame_started == absl::InfinitePast() ? absl::Now() : c->frame_started);
  }

  // Closes idle connections and those dribbling a frame too slowly.
  void Sweep() {
    absl::Time now = absl::Now();
    std::vector<int> doomed;
    for (auto& [fd, c] : conns_) {
      if (now - c->last_activity > options_.idle_timeout ||
          (c->frame_started != absl::InfinitePast() && now - c->frame_started > options_.frame_timeout)) {
        doomed.push_back(fd);
      }
    }
    for (int fd : doomed) {
      service_->CountTransportError("timeout");
      Drop(fd);
    }
  }

  void Loop() {
    NameCurrentThread("toegang-frames");
    epoll_event events[64];
    while (!stopping_.load()) {
      int n = epoll_wait(epoll_fd_, events, 64, 200);
      for (int i = 0; i < n; ++i) {
        int fd = events[i].data.fd;
        if (fd == wake_fd_[0]) continue;
        if (std::find(listeners_.begin(), listeners_.end(), fd) != listeners_.end()) {
          if (!stopping_.load()) Accept(fd);
          continue;
        }
        if (events[i].events & (EPOLLHUP | EPOLLERR)) {
          Read(fd);  // take what is there, then notice the hang-up
          if (conns_.count(fd)) Drop(fd);
          continue;
        }
        Read(fd);
      }
      Sweep();
    }
  }

  Service* const service_;
  const SocketServerOptions options_;
  std::unique_ptr<WorkerPool> workers_;
  int epoll_fd_ = -1;
  int wake_fd_[2];
  std::vector<int> listeners_;
  int tcp_port_ = 0;
  int unix_listener_ = -1;
  ino_t socket_inode_ = 0;  // of the socket we bound, so that we remove only ours
  std::thread io_thread_;
  std::atomic<bool> stopping_{false};
  absl::flat_hash_map<int, std::shared_ptr<Connection>> conns_;  // I/O thread only
};

}  // namespace

absl::StatusOr<std::unique_ptr<SocketServer>> SocketServer::Start(Service* service, SocketServerOptions options) {
  auto server = std::make_unique<SocketServerImpl>(service, std::move(options));
  absl::Status s = server->Bind();
  if (!s.ok()) return s;
  return std::unique_ptr<SocketServer>(std::move(server));
}

}  // namespace toegang::sidecar
