#include "ioloop/net/transport.h"

#include <sys/socket.h>

#include <cerrno>

#include "absl/strings/str_cat.h"
#include "socket_status.h"

namespace ioloop::net {
namespace {

bool would_block(int err) { return err == EAGAIN || err == EWOULDBLOCK; }

// The socket itself: one recv (recvmsg) per read, one send (sendmsg) per write batch.
class PlainTransport final : public Transport {
 public:
  IOResult handshake(int) override { return IOResult::done(0); }

  IOResult read(int fd, Buffer& buffer, size_t limit) override {
    const size_t asked = buffer.read_fd_request(limit);
    int err = 0;
    const ssize_t n = buffer.read_socket(fd, &err, limit);
    if (n > 0) return IOResult::done(static_cast<size_t>(n), static_cast<size_t>(n) < asked);
    if (n == 0) return IOResult::eof();
    if (would_block(err)) return IOResult::want_read();
    return IOResult::error(
        internal::socket_errno_status(err, absl::StrCat("IOStream: read from fd ", fd)));
  }

  IOResult write(int fd, const struct iovec* iov, int count) override {
    ssize_t n;
    do {
      if (count == 1) {
        n = ::send(fd, iov[0].iov_base, iov[0].iov_len, MSG_NOSIGNAL | MSG_DONTWAIT);
      } else {
        struct msghdr msg = {};
        msg.msg_iov = const_cast<struct iovec*>(iov);
        msg.msg_iovlen = static_cast<size_t>(count);
        n = ::sendmsg(fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
      }
    } while (n < 0 && errno == EINTR);
    if (n >= 0) return IOResult::done(static_cast<size_t>(n));
    if (would_block(errno)) return IOResult::want_write();
    return IOResult::error(
        internal::socket_errno_status(errno, absl::StrCat("IOStream: write to fd ", fd)));
  }

  IOResult shutdown_write(int fd) override {
    if (::shutdown(fd, SHUT_WR) != 0 && errno != ENOTCONN) {
      return IOResult::error(internal::socket_errno_status(
          errno, absl::StrCat("IOStream: shutdown(SHUT_WR) fd ", fd)));
    }
    return IOResult::done(0);
  }

  bool has_buffered_input() const override { return false; }
};

}  // namespace

Transport& Transport::plain() {
  static PlainTransport* const kPlain = new PlainTransport();
  return *kPlain;
}

}  // namespace ioloop::net
