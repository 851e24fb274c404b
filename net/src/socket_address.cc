#include "ioloop/net/socket_address.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/un.h>

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace ioloop::net {

SocketAddress::SocketAddress(const struct sockaddr* addr, socklen_t len) {
  length_ = std::min<socklen_t>(len, sizeof storage_);
  std::memcpy(&storage_, addr, length_);
}

absl::StatusOr<SocketAddress> SocketAddress::parse(absl::string_view host, uint16_t port) {
  // inet_pton reads a C string: "1.2.3.4\0junk" would parse as 1.2.3.4.
  if (host.find('\0') != absl::string_view::npos) {
    return absl::InvalidArgumentError("address contains a NUL byte");
  }
  std::string text(host);
  if (text.size() >= 2 && text.front() == '[' && text.back() == ']') {
    text = text.substr(1, text.size() - 2);
  }
  SocketAddress out;
  auto* v4 = reinterpret_cast<struct sockaddr_in*>(&out.storage_);
  if (::inet_pton(AF_INET, text.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    out.length_ = sizeof *v4;
    return out;
  }
  out = SocketAddress();
  auto* v6 = reinterpret_cast<struct sockaddr_in6*>(&out.storage_);
  if (::inet_pton(AF_INET6, text.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    out.length_ = sizeof *v6;
    return out;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("'", host, "' is not a numeric IPv4 or IPv6 address"));
}

absl::StatusOr<SocketAddress> SocketAddress::unix_path(absl::string_view path) {
  SocketAddress out;
  auto* un = reinterpret_cast<struct sockaddr_un*>(&out.storage_);
  if (path.find('\0') != absl::string_view::npos) {  // the kernel would stop at it
    return absl::InvalidArgumentError("unix socket path contains a NUL byte");
  }
  if (path.empty() || path.size() >= sizeof un->sun_path) {
    return absl::InvalidArgumentError(absl::StrCat("unix socket path '", path, "' must be 1..",
                                                   sizeof un->sun_path - 1, " bytes"));
  }
  un->sun_family = AF_UNIX;
  std::memcpy(un->sun_path, path.data(), path.size());
  out.length_ = static_cast<socklen_t>(offsetof(struct sockaddr_un, sun_path) + path.size() + 1);
  return out;
}

SocketAddress SocketAddress::ipv4_loopback(uint16_t port) { return *parse("127.0.0.1", port); }

SocketAddress SocketAddress::ipv4_any(uint16_t port) { return *parse("0.0.0.0", port); }

uint16_t SocketAddress::port() const {
  if (family() == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in*>(&storage_)->sin_port);
  if (family() == AF_INET6) {
    return ntohs(reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_port);
  }
  return 0;
}

void SocketAddress::set_port(uint16_t port) {
  if (family() == AF_INET) reinterpret_cast<sockaddr_in*>(&storage_)->sin_port = htons(port);
  if (family() == AF_INET6) reinterpret_cast<sockaddr_in6*>(&storage_)->sin6_port = htons(port);
}

std::string SocketAddress::host() const {
  char buf[INET6_ADDRSTRLEN] = {};
  if (family() == AF_INET) {
    ::inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&storage_)->sin_addr, buf,
                sizeof buf);
    return buf;
  }
  if (family() == AF_INET6) {
    ::inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_addr, buf,
                sizeof buf);
    return buf;
  }
  if (family() == AF_UNIX) {
    const auto* un = reinterpret_cast<const sockaddr_un*>(&storage_);
    return std::string(un->sun_path, strnlen(un->sun_path, sizeof un->sun_path));
  }
  return "";
}

std::string SocketAddress::to_string() const {
  switch (family()) {
    case AF_INET:
      return absl::StrCat(host(), ":", port());
    case AF_INET6:
      return absl::StrCat("[", host(), "]:", port());
    case AF_UNIX:
      return absl::StrCat("unix:", host());
    default:
      return "(unspecified)";
  }
}

}  // namespace ioloop::net
