/// @file ioloop/net/socket.h
/// Socket: a move-only owner of one socket fd. Every fd it creates is SOCK_NONBLOCK and
/// SOCK_CLOEXEC. The destructor closes the fd; release() gives ownership away.
///
/// Threading: like an int. Use it from one thread at a time.
/// Errors: every setter returns a Status naming the option and the errno text.
///
/// Example:
/// ```
///   auto sock = ioloop::net::Socket::create(AF_INET);
///   if (!sock.ok()) return sock.status();
///   RETURN_IF_ERROR(sock->set_nodelay(true));
/// ```
#ifndef IOLOOP_NET_SOCKET_H_
#define IOLOOP_NET_SOCKET_H_

#include <sys/socket.h>

#include <cstddef>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "ioloop/net/socket_address.h"

/// Networking on the reactor: sockets and listeners, buffered streams (IOStream), TCP servers
/// and clients, the resolver pool (library ioloop::net); HTTP/1.1 server, client and proxy
/// field rules (ioloop::http); TLS over OpenSSL 3 (ioloop::tls).
namespace ioloop::net {

/// A move-only owner of one non-blocking, close-on-exec socket fd, closed on destruction. Like
/// an int: one thread at a time. Setters return a Status naming the option and the errno text.
class Socket {
 public:
  Socket() = default;  ///< holds no fd
  /// Adopts `fd` (it is closed by this object). Does not change its flags.
  explicit Socket(int fd) : fd_(fd) {}
  ~Socket() { reset(); }
  /// @{
  /// Takes `other`'s fd (closing this object's own first, on assignment); `other` holds none.
  Socket(Socket&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  Socket& operator=(Socket&& other) noexcept {
    /// @}
    if (this != &other) reset(std::exchange(other.fd_, -1));
    return *this;
  }
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;

  /// socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, protocol).
  static absl::StatusOr<Socket> create(int family, int type = SOCK_STREAM, int protocol = 0);
  /// A connected AF_UNIX pair, both non-blocking and close-on-exec.
  static absl::StatusOr<std::pair<Socket, Socket>> pair(int type = SOCK_STREAM);

  /// The fd, or -1 if none; still owned by this object.
  int fd() const { return fd_; }
  /// @{
  /// True if an fd is held.
  bool valid() const { return fd_ >= 0; }
  explicit operator bool() const { return valid(); }
  /// @}
  /// Gives up ownership; this object then holds no fd.
  [[nodiscard]] int release() { return std::exchange(fd_, -1); }
  /// Closes the current fd (if any) and adopts `fd`.
  void reset(int fd = -1);

  absl::Status set_nodelay(bool on);           ///< TCP_NODELAY: send small segments at once
  absl::Status set_cork(bool on);              ///< TCP_CORK: hold partial frames until uncorked
  absl::Status set_reuse_addr(bool on);        ///< SO_REUSEADDR
  absl::Status set_reuse_port(bool on);        ///< SO_REUSEPORT: several listeners, kernel balances
  absl::Status set_keepalive(bool on);         ///< SO_KEEPALIVE
  absl::Status set_send_buffer(int bytes);     ///< SO_SNDBUF
  absl::Status set_receive_buffer(int bytes);  ///< SO_RCVBUF
  absl::Status set_linger_zero();  ///< SO_LINGER {1, 0}: close() sends RST (tests, aborts)
  /// setsockopt() of an int option; the error names it as `name_for_errors`.
  absl::Status set_option(int level, int name, int value, const char* name_for_errors);
  /// getsockopt() of an int option; the error names it as `name_for_errors`.
  absl::StatusOr<int> get_option(int level, int name, const char* name_for_errors) const;

  /// Bytes received and not yet read (FIONREAD): closing a socket over unread bytes sends a
  /// reset instead of FIN. The errno status on failure (e.g. not a socket).
  absl::StatusOr<size_t> unread_bytes() const;
  /// The pending error (SO_ERROR) as a Status: OK if none. Clears it, as the kernel does.
  absl::Status take_error();
  /// getsockname(); the errno status on failure.
  absl::StatusOr<SocketAddress> local_address() const;
  /// getpeername(); the errno status on failure (ENOTCONN if not connected).
  absl::StatusOr<SocketAddress> peer_address() const;

 private:
  int fd_ = -1;
};

}  // namespace ioloop::net

#endif  // IOLOOP_NET_SOCKET_H_
