// IOStream::create and the socket it adopts: a blocking socket is made non-blocking (the loop
// must never block in read/send), unless the caller vouches with
// IOStreamOptions::socket_nonblocking, which spares the fcntl. The streams TCPServer and
// TCPClient hand out come from SOCK_NONBLOCK sockets and use that promise.
#include <fcntl.h>
#include <sys/socket.h>

#include <memory>
#include <utility>

#include "gtest/gtest.h"
#include "ioloop/net/io_stream.h"
#include "ioloop/net/socket.h"
#include "testing/loop_test_base.h"

namespace ioloop::net {
namespace {

using ::ioloop::testing::LoopTestBase;

// A connected AF_UNIX pair whose first end is blocking.
std::pair<Socket, Socket> blocking_pair() {
  int fds[2];
  EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
  return {Socket(fds[0]), Socket(fds[1])};
}

bool nonblocking(int fd) { return (::fcntl(fd, F_GETFL) & O_NONBLOCK) != 0; }

class IOStreamCreateTest : public LoopTestBase {};

TEST_F(IOStreamCreateTest, MakesABlockingSocketNonBlocking) {
  auto [mine, peer] = blocking_pair();
  ASSERT_FALSE(nonblocking(mine.fd()));
  std::shared_ptr<IOStream> stream = IOStream::create(loop(), std::move(mine));
  EXPECT_TRUE(nonblocking(stream->socket().fd()));
}

TEST_F(IOStreamCreateTest, SocketNonblockingOptionTakesTheCallersWordAndSkipsTheCheck) {
  auto [mine, peer] = blocking_pair();
  IOStreamOptions options;
  options.socket_nonblocking = true;
  std::shared_ptr<IOStream> stream = IOStream::create(loop(), std::move(mine), options);
  // Untouched: the option is a promise about the socket, not a request to change it.
  EXPECT_FALSE(nonblocking(stream->socket().fd()));
}

}  // namespace
}  // namespace ioloop::net
