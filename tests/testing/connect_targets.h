// File: testing/connect_targets.h
// Loopback addresses with a known connect() outcome, for TCPClient tests:
//   ClosedPort   bound but not listening: connect() fails with ECONNREFUSED (asynchronously
//                for a non-blocking socket on Linux loopback).
//   Blackhole    listening with a full accept queue: SYNs are dropped, connect() hangs.
//   Listener     listening with room: connect() succeeds; connections() tells afterwards
//                how many connects reached it (the kernel completes the handshake inside
//                connect() on loopback, so a started connect is always counted).
// `host` is "127.0.0.1" or "::1". IPv6 tests call SKIP_WITHOUT_IPV6_LOOPBACK() first: hosts
// without ::1 skip, not fail.
#ifndef IOLOOP_TESTS_TESTING_CONNECT_TARGETS_H_
#define IOLOOP_TESTS_TESTING_CONNECT_TARGETS_H_

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <vector>

#include "gtest/gtest.h"
#include "ioloop/net/bind.h"
#include "ioloop/net/socket.h"
#include "ioloop/net/socket_address.h"

namespace ioloop::testing {

// True if a TCP socket can be bound to [::1].
inline bool has_ipv6_loopback() {
  static const bool has = [] {
    absl::StatusOr<net::Socket> s = net::Socket::create(AF_INET6);
    if (!s.ok()) return false;
    absl::StatusOr<net::SocketAddress> addr = net::SocketAddress::parse("::1", 0);
    return addr.ok() && ::bind(s->fd(), addr->get(), addr->length()) == 0;
  }();
  return has;
}

#define SKIP_WITHOUT_IPV6_LOOPBACK()                                              \
  do {                                                                            \
    if (!::ioloop::testing::has_ipv6_loopback()) {                                \
      GTEST_SKIP() << "this host has no IPv6 loopback (::1); the test needs one"; \
    }                                                                             \
  } while (0)

inline net::SocketAddress bound_address(const net::Socket& s) { return *s.local_address(); }

struct ClosedPort {
  net::Socket socket;
  net::SocketAddress address;
  uint16_t port = 0;
  explicit ClosedPort(const char* host = "127.0.0.1") {
    net::SocketAddress any = *net::SocketAddress::parse(host, 0);
    socket = *net::Socket::create(any.family());
    EXPECT_EQ(::bind(socket.fd(), any.get(), any.length()), 0);
    address = bound_address(socket);
    port = address.port();
  }
};

struct Blackhole {
  net::Socket listener;
  std::vector<net::Socket> fillers;
  net::SocketAddress address;
  explicit Blackhole(const char* host = "127.0.0.1") {
    auto sockets = net::bind_sockets(0, host, AF_UNSPEC, 0);
    EXPECT_TRUE(sockets.ok()) << sockets.status();
    listener = std::move((*sockets)[0]);
    address = bound_address(listener);
    // Backlog 0 admits one connection (two on some kernels); fill generously.
    for (int i = 0; i < 4; ++i) {
      net::Socket s = *net::Socket::create(address.family());
      ::connect(s.fd(), address.get(), address.length());
      fillers.push_back(std::move(s));
    }
    // The non-blocking connects finish in the kernel's softirq, which a loaded machine may
    // run late; until a filler sits in the accept queue, the listener still answers SYNs
    // (with backlog 0, by SYN cookies) and a test's connect would succeed. Wait for it.
    for (int i = 0; i < 10000 && accept_queue_length() < 1; ++i) ::usleep(1000);
    EXPECT_GE(accept_queue_length(), 1) << "the blackhole's accept queue did not fill";
  }
  // Connections the kernel completed that nobody accepted (for a listener, tcp_info's
  // tcpi_unacked is its accept queue's length: what `ss -lnt` shows as Recv-Q).
  int accept_queue_length() const {
    tcp_info info = {};
    socklen_t len = sizeof info;
    if (::getsockopt(listener.fd(), IPPROTO_TCP, TCP_INFO, &info, &len) != 0) return -1;
    return static_cast<int>(info.tcpi_unacked);
  }
};

struct Listener {
  net::Socket listener;
  net::SocketAddress address;
  explicit Listener(const char* host = "127.0.0.1") {
    auto sockets = net::bind_sockets(0, host, AF_UNSPEC, 16);
    EXPECT_TRUE(sockets.ok()) << sockets.status();
    listener = std::move((*sockets)[0]);
    address = bound_address(listener);
  }
  // Accepts (and closes) every connection queued so far; returns how many there were.
  int connections() {
    int n = 0;
    for (;;) {
      int fd = ::accept4(listener.fd(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) return n;
      net::Socket closer(fd);
      ++n;
    }
  }
};

}  // namespace ioloop::testing

#endif  // IOLOOP_TESTS_TESTING_CONNECT_TARGETS_H_
