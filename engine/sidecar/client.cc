// Copyright toegang authors.
#include "engine/sidecar/client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "engine/sidecar/net.h"
#include "engine/sidecar/wire_codec.h"

namespace toegang::sidecar {
namespace {

// A socket call that failed: the sidecar cannot be reached (Unavailable, whatever errno).
absl::Status Unreachable(absl::string_view what) {
  return absl::UnavailableError(absl::StrCat(what, ": ", std::strerror(errno)));
}

}  // namespace

absl::StatusOr<std::unique_ptr<Client>> Client::ConnectUnix(const std::string& path) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Unreachable("socket");
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    absl::Status s = Unreachable(absl::StrCat("connect ", path));
    close(fd);
    return s;
  }
  return std::unique_ptr<Client>(new Client(fd));
}

absl::StatusOr<std::unique_ptr<Client>> Client::ConnectTcp(const std::string& host, int port,
                                                           const std::string& token) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Unreachable("socket");
  absl::StatusOr<sockaddr_in> addr = ParseHostPort(absl::StrCat(host, ":", port), "the sidecar's address");
  if (!addr.ok()) {
    close(fd);
    return addr.status();
  }
  if (connect(fd, reinterpret_cast<const sockaddr*>(&*addr), sizeof *addr) != 0) {
    absl::Status s = Unreachable(absl::StrCat("connect ", host, ":", port));
    close(fd);
    return s;
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  std::unique_ptr<Client> client(new Client(fd));
  // The hello: the server reads nothing else on a TCP connection before it.
  absl::Status sent = client->SendFrameBytes(EncodeHello(token));
  if (!sent.ok()) return sent;
  absl::StatusOr<Answer> answer = client->Receive();
  if (!answer.ok()) return answer.status();
  if (!answer->error.empty()) {
    return absl::PermissionDeniedError(absl::StrCat("the sidecar refused the token: ", answer->error));
  }
  return client;
}

Client::~Client() { close(fd_); }

absl::Status Client::SendRaw(const std::string& bytes) {
  if (!SendAll(fd_, bytes.data(), bytes.size())) return Unreachable("send");
  return absl::OkStatus();
}

absl::Status Client::SendFrameBytes(const std::string& bytes) { return SendRaw(WithLength(bytes)); }

absl::StatusOr<uint64_t> Client::Send(const AccessRequest& r) {
  const uint64_t id = next_id_++;
  absl::Status s = SendFrameBytes(EncodeDecideRequest(id, r));
  if (!s.ok()) return s;
  return id;
}

absl::StatusOr<Answer> Client::Receive() {
  char header[kFrameHeaderBytes];
  if (!ReceiveAll(fd_, header, sizeof header)) return absl::UnavailableError("the sidecar closed the connection");
  const uint32_t n = FrameLength(header);
  if (n > (1u << 24)) return absl::DataLossError("answer frame too large");
  std::string frame(n, '\0');
  if (!ReceiveAll(fd_, frame.data(), n)) return absl::UnavailableError("the sidecar closed the connection");
  return DecodeResponse(frame);
}

absl::StatusOr<Answer> Client::Decide(const AccessRequest& request) {
  absl::StatusOr<uint64_t> id = Send(request);
  if (!id.ok()) return id.status();
  return Receive();
}

}  // namespace toegang::sidecar
