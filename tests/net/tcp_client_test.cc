#include "ioloop/net/tcp_client.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "gtest/gtest.h"
#include "ioloop/net/bind.h"
#include "ioloop/net/resolver.h"
#include "testing/connect_targets.h"
#include "testing/loop_test_base.h"

namespace ioloop::net {
namespace {

class TCPClientTest : public ioloop::testing::LoopTestBase {};

using ioloop::testing::ClosedPort;

TEST_F(TCPClientTest, ConnectsAndExchangesBytes) {
  absl::StatusOr<std::vector<Socket>> listeners = bind_sockets(0, "127.0.0.1");
  ASSERT_TRUE(listeners.ok());
  Socket& listener = (*listeners)[0];
  const uint16_t port = listener.local_address()->port();
  TCPClient client(loop());
  std::shared_ptr<IOStream> stream;
  client.connect("127.0.0.1", port, [&](absl::StatusOr<std::shared_ptr<IOStream>> s) {
    ASSERT_TRUE(s.ok()) << s.status();
    stream = *s;
    done();
  });
  ASSERT_TRUE(wait());
  EXPECT_EQ(client.pending(), 0u);
  int server_fd = ::accept4(listener.fd(), nullptr, nullptr, SOCK_CLOEXEC);
  ASSERT_GE(server_fd, 0);
  Socket server_side(server_fd);
  ASSERT_EQ(::write(server_fd, "abc", 3), 3);
  std::string got;
  stream->read_bytes(3, [&](absl::StatusOr<std::string> data) {
    ASSERT_TRUE(data.ok()) << data.status();
    got = *data;
    done();
  });
  ASSERT_TRUE(wait());
  EXPECT_EQ(got, "abc");
  // TCP_NODELAY is on by default.
  EXPECT_EQ(*stream->socket().get_option(IPPROTO_TCP, TCP_NODELAY, "TCP_NODELAY"), 1);
}

TEST_F(TCPClientTest, RefusedConnectionIsUnavailableAndNamesTheAddress) {
  ClosedPort closed;
  TCPClient client(loop());
  absl::StatusOr<std::shared_ptr<IOStream>> result;
  client.connect("127.0.0.1", closed.port, [&](absl::StatusOr<std::shared_ptr<IOStream>> s) {
    result = std::move(s);
    done();
  });
  ASSERT_TRUE(wait());
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), absl::StatusCode::kUnavailable) << result.status();
  EXPECT_NE(result.status().message().find("127.0.0.1:" + std::to_string(closed.port)),
            absl::string_view::npos)
      << result.status();
  EXPECT_NE(result.status().message().find("refused"), absl::string_view::npos) << result.status();
}

// A host with a NUL would be resolved up to the NUL: refused. An empty callback has nobody to
// answer: ignored (nothing pending), never a crash later.
// Found by a review: a connection's failure kept abseil's mapping of its errno, so a link-local
// address without a scope (EINVAL) came back InvalidArgument, the kernel's own SYN timeout
// (ETIMEDOUT) DeadlineExceeded, like the client's `timeout`, and EADDRNOTAVAIL (ephemeral ports
// used up) AlreadyExists. Every failed connection is Unavailable, with its errno's text.
TEST_F(TCPClientTest, EveryConnectionFailureIsUnavailable) {
  absl::StatusOr<SocketAddress> link_local = SocketAddress::parse("fe80::1", 9);
  ASSERT_TRUE(link_local.ok());
  absl::Status got;
  TCPClient client(loop());
  client.connect_to({*link_local}, [&](absl::StatusOr<std::shared_ptr<IOStream>> r) {
    got = r.status();
    done();
  });
  ASSERT_TRUE(wait());
  // Without IPv6 the socket cannot even be made (EAFNOSUPPORT, once Unimplemented): the same.
  EXPECT_EQ(got.code(), absl::StatusCode::kUnavailable) << got;
  if (!absl::StrContains(got.message(), "Address family not supported")) {
    EXPECT_EQ(got.message(), "connect [fe80::1]:9: Invalid argument");
  }
}

// Found by a review of the fix above: DeadlineExceeded is the client's `timeout` alone (its
// HTTPClient maps it to connect_timeout), but a lookup's DeadlineExceeded (getaddrinfo's
// EAI_SYSTEM with ETIMEDOUT, or any Lookup's) came through as it was.
TEST_F(TCPClientTest, ALookupsDeadlineExceededIsUnavailable) {
  Resolver resolver(1, [](const std::string& host, uint16_t, int) {
    return absl::StatusOr<std::vector<SocketAddress>>(
        absl::DeadlineExceededError(absl::StrCat("resolve '", host, "': Connection timed out")));
  });
  TCPClient client(loop(), &resolver);
  absl::Status got;
  client.connect("slow.test", 80, [&](absl::StatusOr<std::shared_ptr<IOStream>> r) {
    got = r.status();
    done();
  });
  ASSERT_TRUE(wait());
  EXPECT_EQ(got, absl::UnavailableError("resolve 'slow.test': Connection timed out"));
}

TEST_F(TCPClientTest, NulInHostAndEmptyCallbackAreRefused) {
  using namespace std::string_literals;
  ClosedPort closed;
  TCPClient client(loop());
  absl::StatusOr<std::shared_ptr<IOStream>> result;
  client.connect("127.0.0.1\0x"s, closed.port, [&](absl::StatusOr<std::shared_ptr<IOStream>> s) {
    result = std::move(s);
    done();
  });
  ASSERT_TRUE(wait());
  EXPECT_EQ(result.status(),
            absl::InvalidArgumentError("TCPClient: host name contains a NUL byte"));
  client.connect("127.0.0.1", closed.port, nullptr);
  client.connect_to({SocketAddress::ipv4_loopback(closed.port)}, nullptr);
  EXPECT_EQ(client.pending(), 0u);
}

// Options that make no sense are refused before anything starts, each naming its field (a
// negative timeout used to end the attempt at once with "timed out after -1s").
TEST_F(TCPClientTest, InvalidConnectOptionsAreRefused) {
  ClosedPort closed;
  TCPClient client(loop());
  struct Case {
    ConnectOptions options;
    std::string error;
  };
  // Each case sets one field on the defaults (assigned, not designated, as -Wextra warns of
  // every field a designated initializer leaves out).
  auto with = [](auto set) {
    ConnectOptions options;
    set(options);
    return options;
  };
  std::vector<Case> cases;
  cases.push_back({with([](ConnectOptions& o) { o.timeout = absl::Seconds(-1); }),
                   "ConnectOptions.timeout must be positive (got -1s)"});
  cases.push_back({with([](ConnectOptions& o) { o.handshake_timeout = absl::ZeroDuration(); }),
                   "ConnectOptions.handshake_timeout must be positive (got 0)"});
  cases.push_back({with([](ConnectOptions& o) { o.happy_eyeballs_delay = absl::Milliseconds(-5); }),
                   "ConnectOptions.happy_eyeballs_delay must not be negative (got -5ms)"});
  cases.push_back({with([](ConnectOptions& o) { o.family = AF_UNIX; }),
                   "ConnectOptions.family must be AF_UNSPEC, AF_INET or AF_INET6 (got 1)"});
  for (Case& c : cases) {
    SCOPED_TRACE(c.error);
    absl::Status connect_status, connect_to_status;
    client.connect(
        "127.0.0.1", closed.port,
        [&](absl::StatusOr<std::shared_ptr<IOStream>> s) { connect_status = s.status(); },
        c.options);
    client.connect_to(
        {SocketAddress::ipv4_loopback(closed.port)},
        [&](absl::StatusOr<std::shared_ptr<IOStream>> s) {
          connect_to_status = s.status();
          done();
        },
        c.options);
    ASSERT_TRUE(wait());
    EXPECT_EQ(connect_status, absl::InvalidArgumentError(c.error));
    EXPECT_EQ(connect_to_status, absl::InvalidArgumentError(c.error));
  }
}

TEST_F(TCPClientTest, TimeoutIsDeadlineExceeded) {
  // A listener whose accept queue is full drops further SYNs, so connect() hangs.
  absl::StatusOr<std::vector<Socket>> listeners = bind_sockets(0, "127.0.0.1", AF_INET, 0);
  ASSERT_TRUE(listeners.ok());
  const uint16_t port = (*listeners)[0].local_address()->port();
  std::vector<Socket> fillers;
  TCPClient client(loop());
  int filled = 0;
  absl::StatusOr<std::shared_ptr<IOStream>> result;
  bool timed_out = false;
  // Connect until one attempt times out; earlier ones fill the queue.
  std::function<void()> next = [&] {
    ConnectOptions options;
    options.timeout = absl::Milliseconds(200);
    client.connect(
        "127.0.0.1", port,
        [&](absl::StatusOr<std::shared_ptr<IOStream>> s) {
          if (s.ok()) {
            fillers.push_back(std::move((*s)->socket()));
            if (++filled > 16) return done();  // the kernel never dropped a SYN: give up
            return next();
          }
          result = std::move(s);
          timed_out = true;
          done();
        },
        options);
  };
  next();
  ASSERT_TRUE(wait(absl::Seconds(20)));
  ASSERT_TRUE(timed_out) << "accept queue never filled after " << filled << " connections";
  EXPECT_EQ(result.status().code(), absl::StatusCode::kDeadlineExceeded) << result.status();
}

TEST_F(TCPClientTest, UnknownHostIsNotFound) {
  TCPClient client(loop());
  absl::StatusOr<std::shared_ptr<IOStream>> result;
  client.connect("no-such-host.invalid", 80, [&](absl::StatusOr<std::shared_ptr<IOStream>> s) {
    result = std::move(s);
    done();
  });
  ASSERT_TRUE(wait(absl::Seconds(30)));
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), absl::StatusCode::kNotFound) << result.status();
}

TEST_F(TCPClientTest, RetryGivesUpAfterMaxAttempts) {
  ClosedPort closed;
  TCPClient client(loop());
  absl::StatusOr<std::shared_ptr<IOStream>> result;
  RetryPolicy retry{.initial_delay = absl::Milliseconds(1),
                    .max_delay = absl::Milliseconds(4),
                    .multiplier = 2.0,
                    .max_attempts = 3};
  client.connect_with_retry(
      "127.0.0.1", closed.port,
      [&](absl::StatusOr<std::shared_ptr<IOStream>> s) {
        result = std::move(s);
        done();
      },
      retry);
  ASSERT_TRUE(wait());
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), absl::StatusCode::kUnavailable);
}

TEST_F(TCPClientTest, RetrySucceedsOnceTheServerListens) {
  ClosedPort closed;
  TCPClient client(loop());
  absl::StatusOr<std::shared_ptr<IOStream>> result;
  RetryPolicy retry{.initial_delay = absl::Milliseconds(20),
                    .max_delay = absl::Milliseconds(40),
                    .multiplier = 2.0,
                    .max_attempts = 0};
  client.connect_with_retry(
      "127.0.0.1", closed.port,
      [&](absl::StatusOr<std::shared_ptr<IOStream>> s) {
        result = std::move(s);
        done();
      },
      retry);
  // The first attempt is refused (nothing listens); then the port starts listening.
  loop().call_later(absl::Milliseconds(5), [&] { ASSERT_EQ(::listen(closed.socket.fd(), 8), 0); });
  ASSERT_TRUE(wait());
  EXPECT_TRUE(result.ok()) << result.status();
}

TEST_F(TCPClientTest, DestroyingTheClientCancelsPendingConnects) {
  ClosedPort closed;
  absl::StatusOr<std::shared_ptr<IOStream>> result;
  int calls = 0;
  {
    TCPClient client(loop());
    RetryPolicy retry{.initial_delay = absl::Seconds(10)};
    client.connect_with_retry(
        "127.0.0.1", closed.port,
        [&](absl::StatusOr<std::shared_ptr<IOStream>> s) {
          ++calls;
          result = std::move(s);
        },
        retry);
    EXPECT_EQ(client.pending(), 1u);
  }
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(result.status().code(), absl::StatusCode::kCancelled);
  // Nothing left behind fires later.
  loop().call_later(absl::Milliseconds(20), [&] { done(); });
  ASSERT_TRUE(wait());
  EXPECT_EQ(calls, 1);
}

TEST_F(TCPClientTest, ConnectToWithNoAddressesIsInvalidArgument) {
  TCPClient client(loop());
  absl::Status status;
  client.connect_to({}, [&](absl::StatusOr<std::shared_ptr<IOStream>> s) {
    status = s.status();
    done();
  });
  ASSERT_TRUE(wait());
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace ioloop::net
