#include "ioloop/net/socket.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ioloop::net {
namespace {

using ::testing::HasSubstr;

bool is_open(int fd) { return ::fcntl(fd, F_GETFD) != -1; }

void expect_nonblocking_cloexec(int fd) {
  EXPECT_NE(::fcntl(fd, F_GETFL) & O_NONBLOCK, 0) << "fd " << fd;
  EXPECT_NE(::fcntl(fd, F_GETFD) & FD_CLOEXEC, 0) << "fd " << fd;
}

TEST(SocketTest, DefaultHoldsNoFd) {
  Socket s;
  EXPECT_FALSE(s.valid());
  EXPECT_FALSE(static_cast<bool>(s));
  EXPECT_EQ(s.fd(), -1);
}

TEST(SocketTest, CreateIsNonBlockingAndCloseOnExec) {
  for (int family : {AF_INET, AF_INET6, AF_UNIX}) {
    absl::StatusOr<Socket> s = Socket::create(family);
    if (family == AF_INET6 && !s.ok()) continue;  // host without IPv6
    ASSERT_TRUE(s.ok()) << s.status();
    EXPECT_TRUE(s->valid());
    expect_nonblocking_cloexec(s->fd());
  }
}

TEST(SocketTest, CreateFailureNamesTheFamily) {
  absl::StatusOr<Socket> s = Socket::create(12345);
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(s.status().message(), HasSubstr("socket(family=12345)"));
  EXPECT_THAT(s.status().message(), HasSubstr("Address family not supported by protocol"));
}

TEST(SocketTest, PairIsConnected) {
  absl::StatusOr<std::pair<Socket, Socket>> p = Socket::pair();
  ASSERT_TRUE(p.ok()) << p.status();
  expect_nonblocking_cloexec(p->first.fd());
  expect_nonblocking_cloexec(p->second.fd());
  ASSERT_EQ(::write(p->first.fd(), "abc", 3), 3);
  char buf[4];
  ASSERT_EQ(::read(p->second.fd(), buf, sizeof buf), 3);
  EXPECT_EQ(std::string(buf, 3), "abc");
  EXPECT_EQ(::read(p->second.fd(), buf, sizeof buf), -1);  // non-blocking: nothing more
  EXPECT_EQ(errno, EAGAIN);
}

TEST(SocketTest, DestructorCloses) {
  int fd;
  {
    Socket s = *Socket::create(AF_INET);
    fd = s.fd();
    EXPECT_TRUE(is_open(fd));
  }
  EXPECT_FALSE(is_open(fd));
}

TEST(SocketTest, MoveTransfersOwnership) {
  Socket a = *Socket::create(AF_INET);
  const int fd = a.fd();
  Socket b(std::move(a));
  EXPECT_FALSE(a.valid());  // NOLINT(bugprone-use-after-move): the moved-from state is API
  EXPECT_EQ(b.fd(), fd);

  Socket c = *Socket::create(AF_INET);
  const int c_fd = c.fd();
  c = std::move(b);  // closes c's old fd
  EXPECT_EQ(c.fd(), fd);
  EXPECT_FALSE(b.valid());  // NOLINT(bugprone-use-after-move)
  EXPECT_TRUE(is_open(fd));
  EXPECT_FALSE(is_open(c_fd));

  Socket& alias = c;
  c = std::move(alias);  // self-move keeps the fd
  EXPECT_EQ(c.fd(), fd);
  EXPECT_TRUE(is_open(fd));
}

TEST(SocketTest, ReleaseAndReset) {
  Socket s = *Socket::create(AF_INET);
  const int fd = s.release();
  EXPECT_FALSE(s.valid());
  EXPECT_TRUE(is_open(fd));  // released: not closed
  s.reset(fd);
  EXPECT_EQ(s.fd(), fd);
  s.reset();
  EXPECT_FALSE(s.valid());
  EXPECT_FALSE(is_open(fd));
}

TEST(SocketTest, TcpOptionsRoundTrip) {
  Socket s = *Socket::create(AF_INET);
  ASSERT_TRUE(s.set_nodelay(true).ok());
  EXPECT_EQ(*s.get_option(IPPROTO_TCP, TCP_NODELAY, "TCP_NODELAY"), 1);
  ASSERT_TRUE(s.set_nodelay(false).ok());
  EXPECT_EQ(*s.get_option(IPPROTO_TCP, TCP_NODELAY, "TCP_NODELAY"), 0);
  ASSERT_TRUE(s.set_cork(true).ok());
  EXPECT_EQ(*s.get_option(IPPROTO_TCP, TCP_CORK, "TCP_CORK"), 1);
  ASSERT_TRUE(s.set_cork(false).ok());
  EXPECT_EQ(*s.get_option(IPPROTO_TCP, TCP_CORK, "TCP_CORK"), 0);
  ASSERT_TRUE(s.set_reuse_addr(true).ok());
  EXPECT_EQ(*s.get_option(SOL_SOCKET, SO_REUSEADDR, "SO_REUSEADDR"), 1);
  ASSERT_TRUE(s.set_reuse_port(true).ok());
  EXPECT_EQ(*s.get_option(SOL_SOCKET, SO_REUSEPORT, "SO_REUSEPORT"), 1);
  ASSERT_TRUE(s.set_keepalive(true).ok());
  EXPECT_EQ(*s.get_option(SOL_SOCKET, SO_KEEPALIVE, "SO_KEEPALIVE"), 1);
}

TEST(SocketTest, BufferSizesAndLinger) {
  Socket s = *Socket::create(AF_INET);
  ASSERT_TRUE(s.set_send_buffer(64 * 1024).ok());
  ASSERT_TRUE(s.set_receive_buffer(64 * 1024).ok());
  // Linux doubles the value for its bookkeeping (socket(7)).
  EXPECT_EQ(*s.get_option(SOL_SOCKET, SO_SNDBUF, "SO_SNDBUF"), 128 * 1024);
  EXPECT_EQ(*s.get_option(SOL_SOCKET, SO_RCVBUF, "SO_RCVBUF"), 128 * 1024);
  ASSERT_TRUE(s.set_linger_zero().ok());
  struct linger lg = {};
  socklen_t len = sizeof lg;
  ASSERT_EQ(::getsockopt(s.fd(), SOL_SOCKET, SO_LINGER, &lg, &len), 0);
  EXPECT_EQ(lg.l_onoff, 1);
  EXPECT_EQ(lg.l_linger, 0);
}

TEST(SocketTest, OptionErrorsNameOptionFdAndErrno) {
  Socket unix_socket = *Socket::create(AF_UNIX);
  absl::Status s = unix_socket.set_nodelay(true);  // TCP option on a Unix socket
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(s.message(),
              HasSubstr("setsockopt(TCP_NODELAY=1) on fd " + std::to_string(unix_socket.fd())));
  EXPECT_THAT(s.message(), HasSubstr("Operation not supported"));

  Socket none;
  absl::Status bad = none.set_keepalive(true);
  EXPECT_EQ(bad.message(), "setsockopt(SO_KEEPALIVE=1) on fd -1: Bad file descriptor");
  EXPECT_EQ(none.get_option(SOL_SOCKET, SO_TYPE, "SO_TYPE").status().message(),
            "getsockopt(SO_TYPE) on fd -1: Bad file descriptor");
}

TEST(SocketTest, UnreadBytesCountsWhatArrivedAndNotWhatWasRead) {
  auto pair = Socket::pair();
  ASSERT_TRUE(pair.ok()) << pair.status();
  EXPECT_EQ(*pair->first.unread_bytes(), 0u);
  ASSERT_EQ(::write(pair->second.fd(), "hello", 5), 5);
  EXPECT_EQ(*pair->first.unread_bytes(), 5u);
  char buf[2];
  ASSERT_EQ(::read(pair->first.fd(), buf, sizeof buf), 2);
  EXPECT_EQ(*pair->first.unread_bytes(), 3u);

  Socket none;
  EXPECT_EQ(none.unread_bytes().status().message(),
            "ioctl(FIONREAD) on fd -1: Bad file descriptor");
}

TEST(SocketTest, AddressesOfAConnection) {
  Socket listener = *Socket::create(AF_INET);
  SocketAddress any = SocketAddress::ipv4_loopback(0);
  ASSERT_EQ(::bind(listener.fd(), any.get(), any.length()), 0);
  ASSERT_EQ(::listen(listener.fd(), 8), 0);
  const SocketAddress server = *listener.local_address();
  EXPECT_EQ(server.host(), "127.0.0.1");
  EXPECT_NE(server.port(), 0);

  Socket client = *Socket::create(AF_INET);
  int rc = ::connect(client.fd(), server.get(), server.length());
  ASSERT_TRUE(rc == 0 || errno == EINPROGRESS) << std::strerror(errno);
  pollfd pfd = {client.fd(), POLLOUT, 0};
  ASSERT_EQ(::poll(&pfd, 1, 10000), 1);
  EXPECT_TRUE(client.take_error().ok());
  EXPECT_EQ(client.peer_address()->to_string(), server.to_string());
  Socket conn(::accept4(listener.fd(), nullptr, nullptr, SOCK_CLOEXEC));
  ASSERT_TRUE(conn.valid());
  EXPECT_EQ(conn.peer_address()->to_string(), client.local_address()->to_string());

  EXPECT_EQ(
      listener.peer_address().status().message(),
      "getpeername fd " + std::to_string(listener.fd()) + ": Transport endpoint is not connected");
}

TEST(SocketTest, TakeErrorReportsRefusedConnect) {
  // A port nobody listens on: bind one, note it, close it.
  uint16_t port;
  {
    Socket probe = *Socket::create(AF_INET);
    SocketAddress a = SocketAddress::ipv4_loopback(0);
    ASSERT_EQ(::bind(probe.fd(), a.get(), a.length()), 0);
    port = probe.local_address()->port();
  }
  Socket client = *Socket::create(AF_INET);
  SocketAddress target = SocketAddress::ipv4_loopback(port);
  int rc = ::connect(client.fd(), target.get(), target.length());
  if (rc != 0 && errno == ECONNREFUSED) GTEST_SKIP() << "refused synchronously";
  ASSERT_EQ(errno, EINPROGRESS);
  pollfd pfd = {client.fd(), POLLOUT, 0};
  ASSERT_EQ(::poll(&pfd, 1, 10000), 1);
  absl::Status err = client.take_error();
  EXPECT_EQ(err.message(), "socket fd " + std::to_string(client.fd()) + ": Connection refused");
  EXPECT_TRUE(client.take_error().ok());  // reading SO_ERROR clears it
}

}  // namespace
}  // namespace ioloop::net
