// TCPClient with a transport that has a handshake (ConnectOptions::tls): the connection that
// won runs it, and the connect completes with its outcome, its timeout, or Cancelled when
// the client goes first. A fake transport stands in for TLS: the server's first byte decides
// the handshake ('K' finishes it, anything else fails it), so these tests need no OpenSSL.
#include <sys/socket.h>

#include <cerrno>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "ioloop/net/tcp_client.h"
#include "testing/connect_targets.h"
#include "testing/loop_test_base.h"
#include "testing/plain_transport.h"

namespace ioloop::net {
namespace {

using ioloop::testing::Listener;

using ConnectResult = absl::StatusOr<std::shared_ptr<IOStream>>;

// Handshake: read one byte. Everything else: the plain socket.
class OneByteHandshake final : public ioloop::testing::PlainTransport {
 public:
  IOResult handshake(int fd) override {
    char c = 0;
    const ssize_t n = ::recv(fd, &c, 1, MSG_DONTWAIT);
    if (n == 1) {
      if (c == 'K') return IOResult::done(0);
      return IOResult::error(absl::PermissionDeniedError("bad handshake byte"));
    }
    if (n == 0) return IOResult::error(absl::UnavailableError("peer closed in the handshake"));
    if (errno == EAGAIN || errno == EWOULDBLOCK) return IOResult::want_read();
    return IOResult::error(absl::ErrnoToStatus(errno, "handshake recv"));
  }
};

class OneByteHandshakeFactory final : public TransportFactory {
 public:
  absl::StatusOr<std::unique_ptr<Transport>> server_transport(int) const override {
    return absl::UnimplementedError("client side only");
  }
  absl::StatusOr<std::unique_ptr<Transport>> client_transport(int, absl::string_view host,
                                                              uint16_t) const override {
    ++made;
    last_host = std::string(host);
    return std::make_unique<OneByteHandshake>();
  }
  mutable int made = 0;
  mutable std::string last_host;
};

class TCPClientHandshakeTest : public ioloop::testing::LoopTestBase {
 protected:
  // Accepts on `server` (server_ by default) and answers each connection with `reply`
  // (nothing if empty).
  void serve(std::string reply) { serve(std::move(reply), server_); }
  void serve(std::string reply, const Listener& server) {
    const int listener = server.listener.fd();
    ASSERT_TRUE(loop()
                    .add_handler(
                        listener,
                        [this, reply, listener](int, uint32_t) {
                          int fd =
                              ::accept4(listener, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
                          if (fd < 0) return;
                          accepted_.emplace_back(fd);
                          if (!reply.empty()) {
                            ASSERT_EQ(::send(fd, reply.data(), reply.size(), MSG_NOSIGNAL),
                                      static_cast<ssize_t>(reply.size()));
                          }
                        },
                        IOLoop::READ)
                    .ok());
  }
  ~TCPClientHandshakeTest() override { loop().remove_handler(server_.listener.fd()); }

  ConnectOptions options() {
    ConnectOptions o;
    o.tls = factory_;
    return o;
  }

  // A connect callback that keeps the result in result_, counts its calls in calls_ and ends
  // the wait().
  TCPClient::ConnectCallback record() {
    return [this](ConnectResult r) {
      ++calls_;
      result_ = std::move(r);
      done();
    };
  }

  Listener server_;
  int calls_ = 0;
  ConnectResult result_;
  std::vector<Socket> accepted_;
  std::shared_ptr<OneByteHandshakeFactory> factory_ = std::make_shared<OneByteHandshakeFactory>();
};

TEST_F(TCPClientHandshakeTest, ConnectCompletesAfterTheHandshake) {
  serve("K");
  TCPClient client(loop());
  ConnectOptions o = options();
  o.server_name = "name.test";
  client.connect_to({server_.address}, record(), o);
  ASSERT_TRUE(wait());
  ASSERT_TRUE(result_.ok()) << result_.status();
  EXPECT_EQ(calls_, 1);
  EXPECT_EQ(factory_->made, 1);
  EXPECT_EQ(factory_->last_host, "name.test");
  EXPECT_EQ(client.pending(), 0u);
  (*result_)->close();
}

// Found by a review: the default TLS name was the host as written, so "[::1]" reached the
// transport with its brackets: sent as SNI (RFC 6066 allows no IP literal there) and checked
// as a DNS name, where no IP-address SAN could match it. The brackets are addressing syntax.
TEST_F(TCPClientHandshakeTest, TheDefaultNameOfABracketedAddressIsTheAddress) {
  SKIP_WITHOUT_IPV6_LOOPBACK();
  Listener v6("::1");
  serve("K", v6);
  TCPClient client(loop());
  client.connect("[::1]", v6.address.port(), record(), options());
  ASSERT_TRUE(wait());
  ASSERT_TRUE(result_.ok()) << result_.status();
  EXPECT_EQ(factory_->last_host, "::1");
  (*result_)->close();
  loop().remove_handler(v6.listener.fd());
}

TEST_F(TCPClientHandshakeTest, AFailedHandshakeCompletesWithItsReasonAndIsNotRetried) {
  serve("X");
  TCPClient client(loop());
  RetryPolicy retry;
  retry.initial_delay = absl::Milliseconds(1);
  retry.max_attempts = 5;
  client.connect_with_retry(server_.address.host(), server_.address.port(), record(), retry,
                            options());
  ASSERT_TRUE(wait());
  EXPECT_EQ(result_.status().code(), absl::StatusCode::kPermissionDenied) << result_.status();
  EXPECT_EQ(calls_, 1);
  EXPECT_EQ(factory_->made, 1);
  EXPECT_EQ(client.pending(), 0u);
}

TEST_F(TCPClientHandshakeTest, AHandshakeThatDoesNotFinishTimesOut) {
  serve("");  // accepts, never answers
  TCPClient client(loop());
  ConnectOptions o = options();
  o.handshake_timeout = absl::Milliseconds(50);
  client.connect_to({server_.address}, record(), o);
  ASSERT_TRUE(wait());
  EXPECT_EQ(result_.status().code(), absl::StatusCode::kDeadlineExceeded) << result_.status();
  EXPECT_NE(result_.status().message().find("handshake"), absl::string_view::npos)
      << result_.status();
  EXPECT_EQ(calls_, 1);
  EXPECT_EQ(client.pending(), 0u);
}

// The client goes while the handshake runs: Cancelled at once, and nothing of the try (the
// handshake timer, the stream's handshake callback) runs afterwards. ASan checks the rest.
TEST_F(TCPClientHandshakeTest, DestroyingTheClientDuringTheHandshakeCancelsIt) {
  serve("");
  auto client = std::make_unique<TCPClient>(loop());
  int calls = 0;
  ConnectResult result;
  ConnectOptions o = options();
  o.handshake_timeout = absl::Milliseconds(20);
  client->connect_to(
      {server_.address},
      [&](ConnectResult r) {
        ++calls;
        result = std::move(r);
      },
      o);
  // Poll until the handshake has started, then destroy the client.
  std::function<void()> poll = [&] {
    if (factory_->made == 0) {
      loop().call_later(absl::Milliseconds(1), poll);
      return;
    }
    client.reset();
    EXPECT_EQ(calls, 1);
    EXPECT_EQ(result.status().code(), absl::StatusCode::kCancelled) << result.status();
    // Past the handshake timeout: a stale timer or handshake callback would show here.
    loop().call_later(absl::Milliseconds(60), [this] { done(); });
  };
  loop().add_callback(poll);
  ASSERT_TRUE(wait());
  EXPECT_EQ(calls, 1);
}

// The user callback destroys the client that is completing it; another connect of the same
// client is still in its handshake and is cancelled from the destructor.
TEST_F(TCPClientHandshakeTest, TheCallbackMayDestroyTheClientWithAnotherHandshakeRunning) {
  serve("");
  auto client = std::make_unique<TCPClient>(loop());
  std::vector<absl::StatusCode> codes;
  ConnectOptions quick = options();
  quick.handshake_timeout = absl::Milliseconds(20);
  ConnectOptions slow = options();
  slow.handshake_timeout = absl::Seconds(5);
  client->connect_to(
      {server_.address},
      [&](ConnectResult r) {
        codes.push_back(r.status().code());
        client.reset();
        loop().call_later(absl::Milliseconds(30), [this] { done(); });
      },
      quick);
  client->connect_to(
      {server_.address}, [&](ConnectResult r) { codes.push_back(r.status().code()); }, slow);
  ASSERT_TRUE(wait());
  ASSERT_EQ(codes.size(), 2u);
  EXPECT_EQ(codes[0], absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(codes[1], absl::StatusCode::kCancelled);
}

}  // namespace
}  // namespace ioloop::net
