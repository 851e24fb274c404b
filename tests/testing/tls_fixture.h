// File: testing/tls_fixture.h
// Contexts from the test PKI, a connected client/server TLSTransport pair over a StreamPair,
// for the TLS transport tests, and a TransportFactory that counts what a server accepts.
#ifndef IOLOOP_TESTS_TESTING_TLS_FIXTURE_H_
#define IOLOOP_TESTS_TESTING_TLS_FIXTURE_H_

#include <openssl/ssl.h>

#include <atomic>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "ioloop/net/tls/tls_context.h"
#include "ioloop/net/tls/tls_transport.h"
#include "ioloop/net/transport.h"
#include "testing/tls_certs.h"
#include "testing/tls_drive.h"

namespace ioloop::testing {

inline std::shared_ptr<const net::TLSContext> must(
    absl::StatusOr<std::shared_ptr<const net::TLSContext>> ctx) {
  EXPECT_TRUE(ctx.ok()) << ctx.status();
  return ctx.ok() ? *std::move(ctx) : nullptr;
}

// A server presenting `cert` (its chain), with these ALPN protocols.
inline std::shared_ptr<const net::TLSContext> server_context(const TestCert& cert,
                                                             std::vector<std::string> alpn = {}) {
  return must(net::TLSContext::server({.cert_chain_pem = cert.chain_pem,
                                       .private_key_pem = cert.key_pem,
                                       .alpn_protocols = std::move(alpn)}));
}

// A client trusting the test root only.
inline std::shared_ptr<const net::TLSContext> client_context(net::TLSClientOptions options = {}) {
  if (options.ca_pem.empty() && options.ca_file.empty()) options.ca_pem = test_pki().root_ca_pem;
  return must(net::TLSContext::client(options));
}

// A client and a server transport over one socket pair (fd[0]: client, fd[1]: server).
struct TLSPair {
  StreamPair sockets;
  std::unique_ptr<net::TLSTransport> client;
  std::unique_ptr<net::TLSTransport> server;

  TLSPair(const std::shared_ptr<const net::TLSContext>& server_ctx,
          const std::shared_ptr<const net::TLSContext>& client_ctx,
          const std::string& host = "localhost", PairKind kind = PairKind::kUnix,
          uint16_t port = 443)
      : sockets(kind) {
    if (server_ctx == nullptr || client_ctx == nullptr) return;
    auto c = client_ctx->new_client_transport(cfd(), host, port);
    auto s = server_ctx->new_server_transport(sfd());
    EXPECT_TRUE(c.ok()) << c.status();
    EXPECT_TRUE(s.ok()) << s.status();
    if (c.ok()) client = std::move(*c);
    if (s.ok()) server = std::move(*s);
  }
  int cfd() const { return sockets.fd[0]; }
  int sfd() const { return sockets.fd[1]; }

  HandshakeResults handshake() {
    if (client == nullptr || server == nullptr) {
      ADD_FAILURE() << "no transports";
      return {net::IOResult::error(absl::InternalError("no transports")),
              net::IOResult::error(absl::InternalError("no transports"))};
    }
    return drive_handshake(*client, cfd(), *server, sfd());
  }
  // The client's handshake must fail: its status (OK, and a test failure, if it did not).
  absl::Status client_error() {
    HandshakeResults r = handshake();
    EXPECT_EQ(r.client.outcome, net::IOResult::kError) << "the client's handshake did not fail";
    return r.client.status;
  }
  // Both handshakes must succeed.
  void connect() {
    HandshakeResults r = handshake();
    ASSERT_EQ(r.client.outcome, net::IOResult::kDone) << r.client.status;
    ASSERT_EQ(r.server.outcome, net::IOResult::kDone) << r.server.status;
  }
};

// From now on, counts in *count the TLS 1.3 KeyUpdate messages `transport` sends (through
// OpenSSL's message callback, which `count` must outlive).
inline void count_key_updates_sent(net::TLSTransport& transport, int* count) {
  SSL* ssl = transport.native_handle();
  SSL_set_msg_callback(
      ssl, [](int write_p, int, int content_type, const void* buf, size_t len, SSL*, void* arg) {
        if (write_p == 1 && content_type == SSL3_RT_HANDSHAKE && len > 0 &&
            static_cast<const unsigned char*>(buf)[0] == SSL3_MT_KEY_UPDATE) {
          ++*static_cast<int*>(arg);
        }
      });
  SSL_set_msg_callback_arg(ssl, count);
}

// Counts the server transports it makes, so a test knows the server accepted a connection
// before that connection's handshake starts.
class CountingFactory : public net::TransportFactory {
 public:
  explicit CountingFactory(std::shared_ptr<const net::TransportFactory> inner)
      : inner_(std::move(inner)) {}
  absl::StatusOr<std::unique_ptr<net::Transport>> server_transport(int fd) const override {
    ++accepted;
    return inner_->server_transport(fd);
  }
  absl::StatusOr<std::unique_ptr<net::Transport>> client_transport(int fd, absl::string_view host,
                                                                   uint16_t port) const override {
    return inner_->client_transport(fd, host, port);
  }
  mutable std::atomic<int> accepted{0};

 private:
  std::shared_ptr<const net::TransportFactory> inner_;
};

}  // namespace ioloop::testing

#endif  // IOLOOP_TESTS_TESTING_TLS_FIXTURE_H_
