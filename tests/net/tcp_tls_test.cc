// TCPServer and TCPClient with TLS (TCPServerOptions::tls, ConnectOptions::tls): streams are
// handed over only after the handshake; failed handshakes close that connection only and are
// counted; a client gets a clear status for a certificate that does not verify.
#include <fcntl.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "ioloop/net/io_stream.h"
#include "ioloop/net/socket_address.h"
#include "ioloop/net/tcp_client.h"
#include "ioloop/net/tcp_server.h"
#include "ioloop/net/tls/tls_context.h"
#include "ioloop/net/tls/tls_transport.h"
#include "testing/loop_test_base.h"
#include "testing/tls_fixture.h"

namespace ioloop::net {
namespace {

using ::ioloop::testing::client_context;
using ::ioloop::testing::server_context;
using ::ioloop::testing::test_pki;

class TCPTLSTest : public ioloop::testing::LoopTestBase {
 protected:
  // A TLS echo server (one line back per line) on 127.0.0.1; `handed` counts the streams
  // handed to the handler, each checked to have finished its handshake; `factory_` the
  // connections accepted.
  void start_server(absl::Duration handshake_timeout = absl::Seconds(10)) {
    TCPServerOptions options;
    factory_ =
        std::make_shared<ioloop::testing::CountingFactory>(server_context(test_pki().ecdsa_leaf));
    options.tls = factory_;
    options.handshake_timeout = handshake_timeout;
    server_ = std::make_unique<TCPServer>(
        loop(),
        [this](std::shared_ptr<IOStream> stream, const SocketAddress&) {
          ++handed_;
          auto& tls = dynamic_cast<TLSTransport&>(stream->transport());
          EXPECT_TRUE(tls.handshake_done());
          echo(stream);
        },
        options);
    ASSERT_TRUE(server_->listen(0, "127.0.0.1").ok());
    ASSERT_TRUE(server_->start().ok());
  }
  static void echo(std::shared_ptr<IOStream> s) {
    s->read_until("\n", [s](absl::StatusOr<std::string> line) {
      if (!line.ok()) return;
      s->write(*line);
      echo(s);
    });
  }

  // Connects with `tls` (a client context) and returns the result.
  absl::StatusOr<std::shared_ptr<IOStream>> connect(std::shared_ptr<const TLSContext> tls,
                                                    std::string server_name = "localhost") {
    TCPClient client(loop());
    ConnectOptions options;
    options.tls = std::move(tls);
    options.server_name = std::move(server_name);
    absl::StatusOr<std::shared_ptr<IOStream>> result = absl::UnknownError("not called");
    client.connect(
        "127.0.0.1", server_->port(),
        [&](absl::StatusOr<std::shared_ptr<IOStream>> s) {
          result = std::move(s);
          done();
        },
        options);
    EXPECT_TRUE(wait());
    return result;
  }

  // One line through the echo server.
  void expect_echo(const std::shared_ptr<IOStream>& stream) {
    absl::StatusOr<std::string> got;
    stream->write("ping\n");
    stream->read_until("\n", [&](absl::StatusOr<std::string> r) {
      got = std::move(r);
      done();
    });
    ASSERT_TRUE(wait());
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(*got, "ping\n");
  }

  // Runs the loop until `pred` holds (checked every iteration; bounded by wait()'s timeout).
  void run_until(std::function<bool()> pred) {
    std::function<void()> check = [&] {
      if (pred()) {
        done();
      } else {
        loop().add_callback([&] { check(); });
      }
    };
    loop().add_callback([&] { check(); });
    ASSERT_TRUE(wait());
  }

  // A raw TCP connection to the server, non-blocking.
  Socket raw_connect() {
    Socket s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    SocketAddress addr = SocketAddress::ipv4_loopback(server_->port());
    EXPECT_EQ(::connect(s.fd(), addr.get(), addr.length()), 0);
    ::fcntl(s.fd(), F_SETFL, O_NONBLOCK);
    return s;
  }

  // Reads from `fd` through the loop until the server ends the connection; returns the bytes.
  std::string read_until_closed(int fd) {
    std::string got;
    bool ended = false;
    EXPECT_TRUE(loop()
                    .add_handler(
                        fd,
                        [&](int, uint32_t) {
                          char buf[4096];
                          const ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
                          if (n > 0) {
                            got.append(buf, static_cast<size_t>(n));
                            return;
                          }
                          if (n < 0 && errno == EAGAIN) return;
                          ended = true;  // EOF or a reset
                          loop().remove_handler(fd);
                          done();
                        },
                        IOLoop::READ)
                    .ok());
    EXPECT_TRUE(wait());
    EXPECT_TRUE(ended);
    return got;
  }

  int handed_ = 0;
  std::shared_ptr<ioloop::testing::CountingFactory> factory_;
  std::unique_ptr<TCPServer> server_;
};

// Nothing sent in clear: what the server wrote, if anything, is TLS alert records (type 21).
void expect_only_alerts(const std::string& bytes) {
  size_t off = 0;
  while (off + 5 <= bytes.size()) {
    EXPECT_EQ(static_cast<unsigned char>(bytes[off]), 21) << "record type at " << off;
    off += 5 + ((static_cast<unsigned char>(bytes[off + 3]) << 8) |
                static_cast<unsigned char>(bytes[off + 4]));
  }
  EXPECT_EQ(off, bytes.size()) << "a partial record";
}

TEST_F(TCPTLSTest, ClientAndServerConnectOverTls13) {
  start_server();
  auto stream = connect(client_context());
  ASSERT_TRUE(stream.ok()) << stream.status();
  auto& tls = dynamic_cast<TLSTransport&>((*stream)->transport());
  EXPECT_TRUE(tls.handshake_done());
  EXPECT_EQ(tls.protocol_version(), "TLSv1.3");
  expect_echo(*stream);
  EXPECT_EQ(handed_, 1);
  EXPECT_EQ(server_->handshake_failures(), 0u);
  (*stream)->close();
}

// The deadline counts from accept: a client that connects and says nothing is closed, and
// never reaches the handler.
TEST_F(TCPTLSTest, HandshakeTimeoutClosesASilentClient) {
  start_server(absl::Milliseconds(200));
  Socket silent = raw_connect();
  const std::string got = read_until_closed(silent.fd());
  EXPECT_EQ(got, "");  // the server sends nothing before the ClientHello
  run_until([&] { return server_->handshake_failures() == 1; });
  EXPECT_EQ(handed_, 0);
  // The server goes on.
  auto stream = connect(client_context());
  ASSERT_TRUE(stream.ok()) << stream.status();
  expect_echo(*stream);
  EXPECT_EQ(server_->handshake_failures(), 1u);
}

// stop(close_streams) closes the connections still in their handshake too: the server cut
// them short, so they are neither handshake failures nor handed to the handler.
TEST_F(TCPTLSTest, StopClosingStreamsDoesNotCountTheHandshakesItCutShort) {
  start_server();
  Socket silent = raw_connect();  // never sends its ClientHello
  run_until([&] { return factory_->accepted.load() == 1; });
  server_->stop(/*close_streams=*/true);
  // The closed streams complete in a callback stop() queued: run_until's check runs after it.
  run_until([] { return true; });
  EXPECT_EQ(server_->handshake_failures(), 0u);
  EXPECT_EQ(handed_, 0);
  EXPECT_EQ(read_until_closed(silent.fd()), "");  // the server did close it
}

TEST_F(TCPTLSTest, PlaintextClientGetsNoApplicationDataAndTheServerGoesOn) {
  start_server();
  Socket plain = raw_connect();
  const std::string request = "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n";
  ASSERT_EQ(::send(plain.fd(), request.data(), request.size(), MSG_NOSIGNAL),
            static_cast<ssize_t>(request.size()));
  expect_only_alerts(read_until_closed(plain.fd()));
  run_until([&] { return server_->handshake_failures() == 1; });
  EXPECT_EQ(handed_, 0);
  auto stream = connect(client_context());
  ASSERT_TRUE(stream.ok()) << stream.status();
  expect_echo(*stream);
  EXPECT_EQ(handed_, 1);
}

// A client that offers TLS 1.1 at most (raw OpenSSL, blocking, on its own thread while the
// loop serves) is refused: TLS 1.2 is the minimum.
TEST_F(TCPTLSTest, Tls11ClientIsRefused) {
  start_server();
  Socket s = raw_connect();
  ASSERT_EQ(::fcntl(s.fd(), F_SETFL, 0), 0);  // blocking for SSL_connect
  std::atomic<int> connect_result{1};
  std::thread client([&] {
    SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_security_level(ctx, 0);  // OpenSSL 3 would not even offer TLS 1.1 otherwise
    SSL_CTX_set_min_proto_version(ctx, TLS1_1_VERSION);
    SSL_CTX_set_max_proto_version(ctx, TLS1_1_VERSION);
    SSL* ssl = SSL_new(ctx);
    SSL_set_fd(ssl, s.fd());
    connect_result = SSL_connect(ssl);
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    loop().add_callback([this] { done(); });
  });
  ASSERT_TRUE(wait());
  client.join();
  EXPECT_LE(connect_result.load(), 0);
  run_until([&] { return server_->handshake_failures() == 1; });
  EXPECT_EQ(handed_, 0);
  auto stream = connect(client_context());
  ASSERT_TRUE(stream.ok()) << stream.status();
  expect_echo(*stream);
}

TEST_F(TCPTLSTest, WrongHostnameFailsWithUnauthenticated) {
  start_server();
  auto stream = connect(client_context(), "wrong.example");
  ASSERT_FALSE(stream.ok());
  EXPECT_EQ(stream.status().code(), absl::StatusCode::kUnauthenticated) << stream.status();
  EXPECT_NE(stream.status().message().find("hostname mismatch"), absl::string_view::npos)
      << stream.status();
  run_until([&] { return server_->handshake_failures() == 1; });
  EXPECT_EQ(handed_, 0);
}

TEST_F(TCPTLSTest, UnknownCaFailsWithUnauthenticated) {
  start_server();
  auto stream = connect(client_context({.ca_pem = test_pki().other_ca_pem}));
  ASSERT_FALSE(stream.ok());
  EXPECT_EQ(stream.status().code(), absl::StatusCode::kUnauthenticated) << stream.status();
  EXPECT_NE(stream.status().message().find("certificate verify failed"), absl::string_view::npos)
      << stream.status();
  EXPECT_NE(stream.status().message().find("unable to get local issuer certificate"),
            absl::string_view::npos)
      << stream.status();
  run_until([&] { return server_->handshake_failures() == 1; });
  EXPECT_EQ(handed_, 0);
}

}  // namespace
}  // namespace ioloop::net
