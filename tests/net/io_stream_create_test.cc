// IOStream::create and the socket it adopts: a blocking socket is made non-blocking (the loop
// must never block in read/send), unless the caller vouches with
// IOStreamOptions::socket_nonblocking, which spares the fcntl. The streams TCPServer and
// TCPClient hand out come from SOCK_NONBLOCK sockets and use that promise.
#include <fcntl.h>
#include <sys/socket.h>

#include <memory>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
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

// An fd the loop refuses (epoll: a regular file, EPERM; select: an fd at FD_SETSIZE or
// above): the stream closes with the loop's status, and the callbacks set before, a read and
// the close callback in either order, each run once; neither is dropped.
TEST_F(IOStreamCreateTest, FdTheLoopRefusesClosesTheStreamAndRunsEveryCallbackOnce) {
  for (bool close_callback_first : {false, true}) {
    SCOPED_TRACE(close_callback_first ? "close callback first" : "read first");
    Socket file(::open("/proc/self/exe", O_RDONLY | O_CLOEXEC));
    ASSERT_TRUE(file.valid());
    std::shared_ptr<IOStream> stream = IOStream::create(loop(), std::move(file));
    int reads = 0;
    int closes = 0;
    absl::Status read_status;
    absl::Status close_status;
    auto maybe_done = [&] {
      if (reads >= 1 && closes >= 1) done();
    };
    auto on_close = [&](absl::Status status) {
      ++closes;
      close_status = status;
      maybe_done();
    };
    auto on_read = [&](absl::StatusOr<std::string> got) {
      ++reads;
      read_status = got.status();
      maybe_done();
    };
    if (close_callback_first) stream->set_close_callback(on_close);
    stream->read_until("\n", on_read);
    if (!close_callback_first) stream->set_close_callback(on_close);
    ASSERT_TRUE(wait());
    EXPECT_EQ(reads, 1);
    EXPECT_EQ(closes, 1);
    EXPECT_FALSE(read_status.ok());
    EXPECT_FALSE(close_status.ok());
    EXPECT_TRUE(stream->closed());
  }
}

// Regression: with max_buffer_size 0 a stream with only a close callback kept READ registered
// (it reads ahead into an empty buffer) but had no room to read, so a byte from the peer made
// the level-triggered loop dispatch it on every turn. 0 is taken as 1.
TEST_F(IOStreamCreateTest, AZeroMaxBufferSizeDoesNotSpinOnUnreadBytes) {
  auto pair = Socket::pair();
  ASSERT_TRUE(pair.ok()) << pair.status();
  IOStreamOptions options;
  options.max_buffer_size = 0;
  std::shared_ptr<IOStream> stream = IOStream::create(loop(), std::move(pair->first), options);
  stream->set_close_callback([](absl::Status) {});
  ASSERT_EQ(::send(pair->second.fd(), "ab", 2, MSG_NOSIGNAL), 2);
  const uint64_t before = loop().stats().events_dispatched;
  run_turns(20);
  EXPECT_LE(loop().stats().events_dispatched - before, 1u);
  std::string got;
  stream->read_bytes(
      2,
      [&](absl::StatusOr<std::string> r) {
        ASSERT_TRUE(r.ok()) << r.status();
        got = *r;
        done();
      },
      /*partial=*/true);
  ASSERT_TRUE(wait());
  EXPECT_EQ(got, "a");
}

}  // namespace
}  // namespace ioloop::net
