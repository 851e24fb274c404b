// File: tests/net/accept_testing.h
// What the Acceptor suites share: a loopback listener, a blocking connect.
#ifndef IOLOOP_TESTS_NET_ACCEPT_TESTING_H_
#define IOLOOP_TESTS_NET_ACCEPT_TESTING_H_

#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "ioloop/net/bind.h"
#include "ioloop/net/socket.h"
#include "ioloop/net/socket_address.h"

namespace ioloop::net::accept_testing {

inline Socket listen_v4(int backlog = kDefaultBacklog) {
  absl::StatusOr<std::vector<Socket>> s = bind_sockets(0, "127.0.0.1", AF_INET, backlog);
  EXPECT_TRUE(s.ok()) << s.status();
  return s.ok() ? std::move((*s)[0]) : Socket();
}

inline SocketAddress address_of(const Socket& listener) { return *listener.local_address(); }

// A blocking connect: when it returns, the connection waits in the listener's accept queue.
inline Socket connect_blocking(const SocketAddress& addr) {
  Socket s(::socket(addr.family(), SOCK_STREAM | SOCK_CLOEXEC, 0));
  EXPECT_TRUE(s.valid()) << std::strerror(errno);
  EXPECT_EQ(::connect(s.fd(), addr.get(), addr.length()), 0) << std::strerror(errno);
  return s;
}

}  // namespace ioloop::net::accept_testing

#endif  // IOLOOP_TESTS_NET_ACCEPT_TESTING_H_
