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
#include "schemas/wire_generated.h"

namespace toegang::sidecar {
namespace {

namespace w = ::toegang::wire;

absl::Status Errno(absl::string_view what) {
  return absl::UnavailableError(absl::StrCat(what, ": ", std::strerror(errno)));
}

}  // namespace

absl::StatusOr<std::unique_ptr<Client>> Client::ConnectUnix(const std::string& path) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Errno("socket");
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    absl::Status s = Errno(absl::StrCat("connect ", path));
    close(fd);
    return s;
  }
  return std::unique_ptr<Client>(new Client(fd));
}

absl::StatusOr<std::unique_ptr<Client>> Client::ConnectTcp(const std::string& host, int port,
                                                           const std::string& token) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Errno("socket");
  absl::StatusOr<sockaddr_in> addr = ParseHostPort(absl::StrCat(host, ":", port), "the sidecar's address");
  if (!addr.ok()) {
    close(fd);
    return addr.status();
  }
  if (connect(fd, reinterpret_cast<const sockaddr*>(&*addr), sizeof *addr) != 0) {
    absl::Status s = Errno(absl::StrCat("connect ", host, ":", port));
    close(fd);
    return s;
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  std::unique_ptr<Client> client(new Client(fd));
  // The hello: the server reads nothing else on a TCP connection before it.
  flatbuffers::FlatBufferBuilder b(128);
  auto hello = w::CreateHello(b, b.CreateString(token));
  b.Finish(w::CreateRequest(b, 0, 0, hello), w::RequestIdentifier());
  absl::Status sent = client->SendFrameBytes(std::string(reinterpret_cast<const char*>(b.GetBufferPointer()), b.GetSize()));
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
  if (!SendAll(fd_, bytes.data(), bytes.size())) return Errno("send");
  return absl::OkStatus();
}

absl::Status Client::SendFrameBytes(const std::string& bytes) { return SendRaw(WithLength(bytes)); }

absl::StatusOr<uint64_t> Client::Send(const AccessRequest& r) {
  flatbuffers::FlatBufferBuilder b(256);
  flatbuffers::Offset<w::Party> recipient = 0;
  if (r.recipient) {
    recipient = w::CreatePartyDirect(b, static_cast<uint8_t>(r.recipient->kind),
                                     r.recipient->kind == Party::Kind::kRole ? nullptr : r.recipient->id.c_str(),
                                     static_cast<uint8_t>(r.recipient->role));
  }
  auto decide = w::CreateDecideRequestDirect(
      b, absl::ToUnixMicros(r.at), r.actor.id.c_str(), static_cast<uint8_t>(r.actor.role),
      r.actor.organization.empty() ? nullptr : r.actor.organization.c_str(), r.patient.c_str(),
      static_cast<uint8_t>(r.action), static_cast<uint8_t>(r.category), static_cast<uint8_t>(r.purpose), r.emergency,
      r.emergency_justification.empty() ? nullptr : r.emergency_justification.c_str(),
      r.legal_order ? r.legal_order->c_str() : nullptr, recipient);
  const uint64_t id = next_id_++;
  w::FinishRequestBuffer(b, w::CreateRequest(b, id, decide));
  absl::Status s = SendFrameBytes(std::string(reinterpret_cast<const char*>(b.GetBufferPointer()), b.GetSize()));
  if (!s.ok()) return s;
  return id;
}

absl::StatusOr<Answer> Client::Receive() {
  char header[kFrameHeaderBytes];
  if (!ReceiveAll(fd_, header, sizeof header)) return absl::UnavailableError("the sidecar closed the connection");
  const uint32_t n = FrameLength(header);
  if (n > (1u << 24)) return absl::DataLossError("answer frame too large");
  std::vector<uint64_t> buf(n / 8 + 1);
  if (!ReceiveAll(fd_, reinterpret_cast<char*>(buf.data()), n)) return absl::UnavailableError("the sidecar closed the connection");
  const uint8_t* data = reinterpret_cast<const uint8_t*>(buf.data());
  flatbuffers::Verifier v(data, n);
  if (!v.VerifyBuffer<w::Response>(nullptr)) return absl::DataLossError("answer frame fails verification");
  const w::Response* resp = flatbuffers::GetRoot<w::Response>(data);
  Answer a;
  a.id = resp->id();
  if (resp->error()) a.error = resp->error()->str();
  if (const w::Decision* d = resp->decision()) {
    a.permitted = d->permitted();
    if (d->reasons()) {
      for (uint8_t x : *d->reasons()) a.reasons.push_back(static_cast<Reason>(x));
    }
    if (d->legal_basis() >= 0) a.legal_basis = static_cast<LegalBasis>(d->legal_basis());
    if (d->obligations()) {
      for (uint8_t x : *d->obligations()) a.obligations.push_back(static_cast<Obligation>(x));
    }
    if (d->consents()) {
      for (const flatbuffers::String* c : *d->consents()) a.consents.push_back(c->str());
    }
    if (d->age_band() >= 0) a.age_band = static_cast<AgeBand>(d->age_band());
    if (d->policy()) a.policy = d->policy()->str();
    if (d->decision_id()) a.decision_id = d->decision_id()->str();
    if (d->rule()) a.rule = d->rule()->str();
  }
  return a;
}

absl::StatusOr<Answer> Client::Decide(const AccessRequest& request) {
  absl::StatusOr<uint64_t> id = Send(request);
  if (!id.ok()) return id.status();
  return Receive();
}

}  // namespace toegang::sidecar
