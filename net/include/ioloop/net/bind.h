/// @file ioloop/net/bind.h
/// bind_sockets() and bind_unix_socket(): create listening sockets, as Tornado's
/// netutil.bind_sockets / bind_unix_socket do.
///
/// bind_sockets() resolves `address` with getaddrinfo(AI_PASSIVE) and returns one listening
/// socket per distinct resolved address, IPv4 first: "" means every local address, which on a
/// dual-stack host is two sockets, 0.0.0.0 and [::]. Every socket gets SO_REUSEADDR (a restarted
/// server can rebind while old connections sit in TIME_WAIT); IPv6 sockets get IPV6_V6ONLY so
/// that [::] and 0.0.0.0 can both bind the same port. With port 0 the kernel picks an ephemeral
/// port for the first socket and every further socket binds that same port, so a client reaches
/// the server on one port whichever family it uses.
///
/// The returned sockets are non-blocking, close-on-exec and listening; the caller owns them
/// (pass fd() to add_accept_handler()). Nothing is left open on error.
///
/// Errors name the address and carry the errno text, e.g.
///   "bind 127.0.0.1:5000: Address already in use"
///   "getaddrinfo(host='::1', port=80, family=AF_INET): Address family for hostname not supported"
/// A non-numeric `address` is looked up in DNS (blocking): pass numeric hosts in servers.
///
/// Threading: plain functions, safe from any thread.
///
/// Example:
/// ```
///   auto sockets = ioloop::net::bind_sockets(8080, "127.0.0.1");
///   if (!sockets.ok()) return sockets.status();
///   uint16_t port = (*sockets)[0].local_address()->port();
/// ```
#ifndef IOLOOP_NET_BIND_H_
#define IOLOOP_NET_BIND_H_

#include <sys/socket.h>
#include <sys/types.h>

#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "ioloop/net/socket.h"

namespace ioloop::net {

/// listen()'s default backlog. The kernel caps it at net.core.somaxconn.
inline constexpr int kDefaultBacklog = 1024;

/// The options of bind_sockets(), as a struct.
struct BindOptions {
  int family = AF_UNSPEC;  ///< AF_UNSPEC (every family address resolves to), AF_INET, AF_INET6
  /// listen()'s backlog (the kernel caps it at net.core.somaxconn).
  int backlog = kDefaultBacklog;
  /// SO_REUSEPORT: several sockets (one per loop thread or process) may bind the same port and
  /// the kernel spreads incoming connections over them.
  bool reuse_port = false;
};

/// `port` 0..65535 (0: an ephemeral port, shared by all returned sockets). `address` "" binds
/// every local address; otherwise a host such as "127.0.0.1", "::1", "0.0.0.0", "::" or a name.
/// InvalidArgument for a bad port, family or unresolvable address; the errno status of the
/// failing socket()/setsockopt()/bind()/listen() otherwise. With AF_UNSPEC, an IPv6 address the
/// host cannot use (no IPv6 support: EAFNOSUPPORT, EADDRNOTAVAIL) is skipped if another address
/// binds.
absl::StatusOr<std::vector<Socket>> bind_sockets(int port, absl::string_view address = "",
                                                 int family = AF_UNSPEC,
                                                 int backlog = kDefaultBacklog,
                                                 bool reuse_port = false);
/// As bind_sockets() above, with the family, backlog and SO_REUSEPORT from `options`.
absl::StatusOr<std::vector<Socket>> bind_sockets(int port, absl::string_view address,
                                                 const BindOptions& options);

/// A listening AF_UNIX stream socket at `path`, file mode `mode` (chmod after bind). Any socket
/// file at `path` is removed first, since one left by a previous run would fail the bind with
/// EADDRINUSE; nothing checks whether a server still listens on it (as Tornado's
/// bind_unix_socket), and that server keeps its socket but is no longer reachable by `path`.
/// Any other kind of file there is never removed: AlreadyExists naming the path.
absl::StatusOr<Socket> bind_unix_socket(absl::string_view path, mode_t mode = 0600,
                                        int backlog = kDefaultBacklog);

}  // namespace ioloop::net

#endif  // IOLOOP_NET_BIND_H_
