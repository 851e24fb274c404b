#include "ioloop/net/bind.h"

#include <netdb.h>
#include <netinet/in.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "ioloop/logging.h"
#include "ioloop/net/socket_address.h"

namespace ioloop::net {
namespace {

std::string family_name(int family) {
  switch (family) {
    case AF_UNSPEC:
      return "AF_UNSPEC";
    case AF_INET:
      return "AF_INET";
    case AF_INET6:
      return "AF_INET6";
    case AF_UNIX:
      return "AF_UNIX";
    default:
      return absl::StrCat("family ", family);
  }
}

struct AddrInfoDeleter {
  void operator()(struct addrinfo* ai) const { ::freeaddrinfo(ai); }
};

// The resolved addresses, IPv4 before IPv6 (as Tornado sorts them), duplicates dropped:
// getaddrinfo("localhost") may list 127.0.0.1 once per /etc/hosts line.
absl::StatusOr<std::vector<SocketAddress>> resolve_passive(int port, absl::string_view address,
                                                           int family) {
  struct addrinfo hints = {};
  hints.ai_family = family;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  const std::string host(address);
  const std::string service = std::to_string(port);
  struct addrinfo* raw = nullptr;
  int rc = ::getaddrinfo(host.empty() ? nullptr : host.c_str(), service.c_str(), &hints, &raw);
  const int err = errno;
  std::unique_ptr<struct addrinfo, AddrInfoDeleter> list(raw);
  if (rc != 0) {
    const std::string what = absl::StrCat("getaddrinfo(host='", host, "', port=", port,
                                          ", family=", family_name(family), ")");
    // ErrnoToStatus's message is "what: strerror text", made thread-safely (std::strerror may
    // share a buffer across threads); the code stays InvalidArgument.
    // (errno 0 after EAI_SYSTEM would give an empty message: getaddrinfo's text then.)
    return absl::InvalidArgumentError(rc == EAI_SYSTEM && err != 0
                                          ? std::string(absl::ErrnoToStatus(err, what).message())
                                          : absl::StrCat(what, ": ", ::gai_strerror(rc)));
  }
  std::vector<SocketAddress> out;
  for (const struct addrinfo* ai = list.get(); ai != nullptr; ai = ai->ai_next) {
    if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6) continue;
    SocketAddress addr(ai->ai_addr, ai->ai_addrlen);
    bool seen = std::any_of(out.begin(), out.end(), [&](const SocketAddress& other) {
      return other.length() == addr.length() &&
             std::memcmp(other.get(), addr.get(), addr.length()) == 0;
    });
    if (!seen) out.push_back(addr);
  }
  std::stable_sort(out.begin(), out.end(), [](const SocketAddress& a, const SocketAddress& b) {
    return a.family() < b.family();  // AF_INET (2) before AF_INET6 (10)
  });
  if (out.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("getaddrinfo(host='", host, "'): no IPv4 or IPv6 address"));
  }
  return out;
}

// One socket: create, options, bind, listen. Returns the errno of the failing step in
// `*err_no` (0 if the failure is not a syscall's).
absl::StatusOr<Socket> bind_one(const SocketAddress& addr, const BindOptions& options,
                                int* err_no) {
  *err_no = 0;
  int fd = ::socket(addr.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    *err_no = errno;
    return absl::ErrnoToStatus(*err_no, absl::StrCat("socket for ", addr.to_string()));
  }
  absl::StatusOr<Socket> sock = Socket(fd);
  if (absl::Status s = sock->set_reuse_addr(true); !s.ok()) return s;
  if (options.reuse_port) {
    if (absl::Status s = sock->set_reuse_port(true); !s.ok()) return s;
  }
  if (addr.family() == AF_INET6) {
    // Without V6ONLY, [::] also claims the IPv4 port and 0.0.0.0 then fails EADDRINUSE.
    if (absl::Status s = sock->set_option(IPPROTO_IPV6, IPV6_V6ONLY, 1, "IPV6_V6ONLY"); !s.ok()) {
      return s;
    }
  }
  if (::bind(sock->fd(), addr.get(), addr.length()) != 0) {
    *err_no = errno;
    return absl::ErrnoToStatus(*err_no, absl::StrCat("bind ", addr.to_string()));
  }
  if (::listen(sock->fd(), options.backlog) != 0) {
    *err_no = errno;
    return absl::ErrnoToStatus(*err_no, absl::StrCat("listen ", addr.to_string()));
  }
  return sock;
}

}  // namespace

absl::StatusOr<std::vector<Socket>> bind_sockets(int port, absl::string_view address, int family,
                                                 int backlog, bool reuse_port) {
  BindOptions options;
  options.family = family;
  options.backlog = backlog;
  options.reuse_port = reuse_port;
  return bind_sockets(port, address, options);
}

absl::StatusOr<std::vector<Socket>> bind_sockets(int port, absl::string_view address,
                                                 const BindOptions& options) {
  if (port < 0 || port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("bind_sockets: port ", port, " is outside 0..65535"));
  }
  if (options.family != AF_UNSPEC && options.family != AF_INET && options.family != AF_INET6) {
    return absl::InvalidArgumentError(absl::StrCat("bind_sockets: ", family_name(options.family),
                                                   " is not AF_UNSPEC, AF_INET or AF_INET6"));
  }
  absl::StatusOr<std::vector<SocketAddress>> addresses =
      resolve_passive(port, address, options.family);
  if (!addresses.ok()) return addresses.status();

  std::vector<Socket> sockets;
  absl::Status skipped;  // why an unusable IPv6 address was skipped, if one was
  uint16_t bound_port = 0;
  for (SocketAddress addr : *addresses) {
    // Port 0: the first socket's ephemeral port, so every family listens on the same one.
    if (port == 0 && bound_port != 0) addr.set_port(bound_port);
    int err_no = 0;
    absl::StatusOr<Socket> sock = bind_one(addr, options, &err_no);
    if (!sock.ok()) {
      // A host with IPv6 switched off (common in containers) still resolves "::" or "::1".
      bool ipv6_unusable = addr.family() == AF_INET6 && options.family == AF_UNSPEC &&
                           (err_no == EAFNOSUPPORT || err_no == EADDRNOTAVAIL);
      if (ipv6_unusable) {
        logger().debug("bind_sockets: skipping {}: {}", addr.to_string(),
                       std::string(sock.status().message()));
        skipped = sock.status();
        continue;
      }
      return sock.status();  // `sockets` closes what was bound so far
    }
    if (bound_port == 0) {
      absl::StatusOr<SocketAddress> local = sock->local_address();
      if (!local.ok()) return local.status();
      bound_port = local->port();
    }
    sockets.push_back(*std::move(sock));
  }
  if (sockets.empty()) return skipped;
  return sockets;
}

absl::StatusOr<Socket> bind_unix_socket(absl::string_view path, mode_t mode, int backlog) {
  absl::StatusOr<SocketAddress> addr = SocketAddress::unix_path(path);
  if (!addr.ok()) return addr.status();
  const std::string file(path);

  struct stat st;
  if (::lstat(file.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      return absl::AlreadyExistsError(
          absl::StrCat("bind_unix_socket: '", file, "' exists and is not a socket"));
    }
    // A socket file outlives its server; binding over it would fail EADDRINUSE.
    if (::unlink(file.c_str()) != 0 && errno != ENOENT) {
      return absl::ErrnoToStatus(errno, absl::StrCat("unlink stale socket '", file, "'"));
    }
  } else if (errno != ENOENT) {
    return absl::ErrnoToStatus(errno, absl::StrCat("stat '", file, "'"));
  }

  absl::StatusOr<Socket> sock = Socket::create(AF_UNIX);
  if (!sock.ok()) return sock.status();
  if (::bind(sock->fd(), addr->get(), addr->length()) != 0) {
    return absl::ErrnoToStatus(errno, absl::StrCat("bind ", addr->to_string()));
  }
  if (::chmod(file.c_str(), mode) != 0) {
    absl::Status s = absl::ErrnoToStatus(errno, absl::StrCat("chmod '", file, "'"));
    ::unlink(file.c_str());
    return s;
  }
  if (::listen(sock->fd(), backlog) != 0) {
    absl::Status s = absl::ErrnoToStatus(errno, absl::StrCat("listen ", addr->to_string()));
    ::unlink(file.c_str());
    return s;
  }
  return sock;
}

}  // namespace ioloop::net
