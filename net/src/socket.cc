#include "ioloop/net/socket.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>

#include "absl/strings/str_cat.h"
#include "socket_status.h"

namespace ioloop::net {

absl::StatusOr<Socket> Socket::create(int family, int type, int protocol) {
  int fd = ::socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, protocol);
  if (fd < 0) return absl::ErrnoToStatus(errno, absl::StrCat("socket(family=", family, ")"));
  return Socket(fd);
}

absl::StatusOr<std::pair<Socket, Socket>> Socket::pair(int type) {
  int fds[2];
  if (::socketpair(AF_UNIX, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) != 0) {
    return absl::ErrnoToStatus(errno, "socketpair");
  }
  return std::make_pair(Socket(fds[0]), Socket(fds[1]));
}

void Socket::reset(int fd) {
  if (fd_ >= 0) ::close(fd_);  // Linux frees the fd even when close() reports EINTR
  fd_ = fd;
}

absl::Status Socket::set_option(int level, int name, int value, const char* name_for_errors) {
  if (::setsockopt(fd_, level, name, &value, sizeof value) != 0) {
    return absl::ErrnoToStatus(
        errno, absl::StrCat("setsockopt(", name_for_errors, "=", value, ") on fd ", fd_));
  }
  return absl::OkStatus();
}

absl::StatusOr<int> Socket::get_option(int level, int name, const char* name_for_errors) const {
  int value = 0;
  socklen_t len = sizeof value;
  if (::getsockopt(fd_, level, name, &value, &len) != 0) {
    return absl::ErrnoToStatus(errno,
                               absl::StrCat("getsockopt(", name_for_errors, ") on fd ", fd_));
  }
  return value;
}

absl::Status Socket::set_nodelay(bool on) {
  return set_option(IPPROTO_TCP, TCP_NODELAY, on, "TCP_NODELAY");
}
absl::Status Socket::set_cork(bool on) { return set_option(IPPROTO_TCP, TCP_CORK, on, "TCP_CORK"); }
absl::Status Socket::set_reuse_addr(bool on) {
  return set_option(SOL_SOCKET, SO_REUSEADDR, on, "SO_REUSEADDR");
}
absl::Status Socket::set_reuse_port(bool on) {
  return set_option(SOL_SOCKET, SO_REUSEPORT, on, "SO_REUSEPORT");
}
absl::Status Socket::set_keepalive(bool on) {
  return set_option(SOL_SOCKET, SO_KEEPALIVE, on, "SO_KEEPALIVE");
}
absl::Status Socket::set_send_buffer(int bytes) {
  return set_option(SOL_SOCKET, SO_SNDBUF, bytes, "SO_SNDBUF");
}
absl::Status Socket::set_receive_buffer(int bytes) {
  return set_option(SOL_SOCKET, SO_RCVBUF, bytes, "SO_RCVBUF");
}

absl::Status Socket::set_linger_zero() {
  struct linger lg = {1, 0};
  if (::setsockopt(fd_, SOL_SOCKET, SO_LINGER, &lg, sizeof lg) != 0) {
    return absl::ErrnoToStatus(errno, absl::StrCat("setsockopt(SO_LINGER) on fd ", fd_));
  }
  return absl::OkStatus();
}

absl::Status Socket::take_error() {
  absl::StatusOr<int> err = get_option(SOL_SOCKET, SO_ERROR, "SO_ERROR");
  if (!err.ok()) return err.status();
  if (*err == 0) return absl::OkStatus();
  return internal::socket_errno_status(*err, absl::StrCat("socket fd ", fd_));
}

absl::StatusOr<size_t> Socket::unread_bytes() const {
  int n = 0;
  if (::ioctl(fd_, FIONREAD, &n) != 0) {
    return absl::ErrnoToStatus(errno, absl::StrCat("ioctl(FIONREAD) on fd ", fd_));
  }
  return static_cast<size_t>(n);
}

absl::StatusOr<SocketAddress> Socket::local_address() const {
  SocketAddress addr;
  socklen_t len = sizeof(struct sockaddr_storage);
  if (::getsockname(fd_, addr.mutable_get(), &len) != 0) {
    return absl::ErrnoToStatus(errno, absl::StrCat("getsockname fd ", fd_));
  }
  addr.set_length(len);
  return addr;
}

absl::StatusOr<SocketAddress> Socket::peer_address() const {
  SocketAddress addr;
  socklen_t len = sizeof(struct sockaddr_storage);
  if (::getpeername(fd_, addr.mutable_get(), &len) != 0) {
    return absl::ErrnoToStatus(errno, absl::StrCat("getpeername fd ", fd_));
  }
  addr.set_length(len);
  return addr;
}

}  // namespace ioloop::net
