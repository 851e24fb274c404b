// File: testing/socket_pair.h
// A connected non-blocking AF_UNIX stream pair as raw fds, for tests of the reactor layer
// (which knows nothing of net::Socket). Both ends are closed on destruction unless a test
// sets them to -1 first.
#ifndef IOLOOP_TESTS_TESTING_SOCKET_PAIR_H_
#define IOLOOP_TESTS_TESTING_SOCKET_PAIR_H_

#include <sys/socket.h>
#include <unistd.h>

#include <utility>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "gtest/gtest.h"
#include "ioloop/io_loop.h"

namespace ioloop::testing {

struct SocketPair {
  int fd[2] = {-1, -1};
  SocketPair() {
    EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fd), 0);
  }
  ~SocketPair() {
    for (int f : fd) {
      if (f >= 0) ::close(f);
    }
  }
  SocketPair(const SocketPair&) = delete;
  SocketPair& operator=(const SocketPair&) = delete;
  // Makes fd[0] readable: writes the first byte of `s` into fd[1].
  void send(const char* s = "x") { ASSERT_EQ(::write(fd[1], s, 1), 1); }
  // Watches fd[0] on `loop` for READ: each time, the handler reads one byte (one send()) and
  // runs `on_byte`. add_handler()'s status.
  absl::Status read_on(IOLoop& loop, absl::AnyInvocable<void()> on_byte) {
    return loop.add_handler(
        fd[0],
        [on_byte = std::move(on_byte)](int f, uint32_t) mutable {
          char c;
          ASSERT_EQ(::read(f, &c, 1), 1);
          on_byte();
        },
        IOLoop::READ);
  }
};

}  // namespace ioloop::testing

#endif  // IOLOOP_TESTS_TESTING_SOCKET_PAIR_H_
