// File: tests/net/http/http_server_tls_test.cc
// HTTPServer's connection end over TLS: a response that completes ends with close_notify (a
// clean end), one cut short does not (a truncation the client can tell). Over a socketpair
// with the test PKI; the client is an IOStream with a client TLSTransport.
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "gtest/gtest.h"
#include "ioloop/net/http/http_response_stream.h"
#include "ioloop/net/http/http_server.h"
#include "ioloop/net/tls/tls_context.h"
#include "net/http/http_server_testing.h"
#include "testing/tls_certs.h"
#include "testing/tls_fixture.h"

namespace ioloop::net {
namespace {

using ::ioloop::testing::client_context;
using ::ioloop::testing::server_context;
using ::ioloop::testing::test_pki;

class HTTPServerTLSTest : public HTTPServerTest {
 protected:
  void connect_tls() {
    auto server_ctx = server_context(test_pki().ecdsa_leaf);
    auto client_ctx = client_context();
    connect(
        [server_ctx](int fd) -> std::unique_ptr<Transport> {
          auto t = server_ctx->new_server_transport(fd);
          EXPECT_TRUE(t.ok()) << t.status();
          return t.ok() ? std::move(*t) : nullptr;
        },
        [client_ctx](int fd) -> std::unique_ptr<Transport> {
          auto t = client_ctx->new_client_transport(fd, "localhost", 443);
          EXPECT_TRUE(t.ok()) << t.status();
          return t.ok() ? std::move(*t) : nullptr;
        });
  }
  // An HTTP/1.0 request over TLS whose handler kept its response: stream_ is it.
  void start_http10_exchange(HTTPServerOptions options = {}, bool manual_clock = false) {
    auto keep = [this](const HTTPRequest&, HTTPResponseWriter& w) { stream_ = w.defer(); };
    if (manual_clock) {
      start_manual_server(keep, options);
    } else {
      start_server(keep, options);
    }
    connect_tls();
    send("GET /a HTTP/1.0\r\n\r\n");
    settle();
    ASSERT_NE(stream_, nullptr);
  }
  std::shared_ptr<HTTPResponseStream> stream_;
};

// HTTP/1.0 without a length: the body ends with the connection, and close_notify says it is
// all there.
TEST_F(HTTPServerTLSTest, CloseDelimitedResponseEndsWithCloseNotify) {
  ASSERT_NO_FATAL_FAILURE(start_http10_exchange());
  ASSERT_TRUE(stream_->write("12345").ok());
  ASSERT_TRUE(stream_->finish().ok());
  EXPECT_EQ(read_to_eof(), "HTTP/1.0 200 OK\r\nDate: D\r\nConnection: close\r\n\r\n12345");
  EXPECT_TRUE(end_status_.ok()) << end_status_;
}

// The same body cut short (an upstream that died mid-body): nothing on the wire but the end
// can say so, and a clean TLS end would pass the five bytes off as the whole body. The
// connection ends without close_notify, as nginx ends one whose request failed.
TEST_F(HTTPServerTLSTest, CloseDelimitedResponseCutShortEndsWithoutCloseNotify) {
  ASSERT_NO_FATAL_FAILURE(start_http10_exchange());
  ASSERT_TRUE(stream_->write("12345").ok());
  stream_->abort(absl::DataLossError("upstream closed mid-body"));
  EXPECT_EQ(read_to_eof(), "HTTP/1.0 200 OK\r\nDate: D\r\nConnection: close\r\n\r\n12345");
  EXPECT_EQ(end_status_.code(), absl::StatusCode::kDataLoss) << end_status_;
}

// The response timeout cutting a started response short ends the same way.
TEST_F(HTTPServerTLSTest, ResponseTimeoutAfterTheHeadEndsWithoutCloseNotify) {
  HTTPServerOptions options;
  options.response_timeout = absl::Seconds(5);
  ASSERT_NO_FATAL_FAILURE(start_http10_exchange(options, /*manual_clock=*/true));
  ASSERT_TRUE(stream_->write("12345").ok());
  settle();
  advance(absl::Seconds(5));
  EXPECT_EQ(read_to_eof(), "HTTP/1.0 200 OK\r\nDate: D\r\nConnection: close\r\n\r\n12345");
  EXPECT_EQ(end_status_.code(), absl::StatusCode::kDataLoss) << end_status_;
}

// The server closing the connection from outside while a close-delimited body is in progress,
// as TCPServer::stop(close_streams) and ~HTTPServer do (IOStream::close()): a clean TLS end
// would pass the five bytes off as the whole body. (A body with a length or chunks shows the
// cut by its framing.)
TEST_F(HTTPServerTLSTest, ServerClosingMidCloseDelimitedBodyEndsWithoutCloseNotify) {
  ASSERT_NO_FATAL_FAILURE(start_http10_exchange());
  ASSERT_TRUE(stream_->write("12345").ok());
  settle();
  server_stream_->close();
  EXPECT_EQ(read_to_eof(), "HTTP/1.0 200 OK\r\nDate: D\r\nConnection: close\r\n\r\n12345");
  EXPECT_EQ(end_status_.code(), absl::StatusCode::kDataLoss) << end_status_;
}

// Closed from outside between responses (keep-alive, nothing in progress), the connection ends
// cleanly: the client has every response whole.
TEST_F(HTTPServerTLSTest, ServerClosingAnIdleConnectionEndsWithCloseNotify) {
  start_server([](const HTTPRequest&, HTTPResponseWriter& w) { w.set_body("ok"); });
  connect_tls();
  send("GET /a HTTP/1.1\r\nHost: h\r\n\r\n");
  wait_for([this] { return received_.size() >= 4 && absl::EndsWith(received_, "ok"); });
  server_stream_->close();
  EXPECT_EQ(read_to_eof(), "HTTP/1.1 200 OK\r\nDate: D\r\nContent-Length: 2\r\n\r\nok");
  EXPECT_TRUE(end_status_.ok()) << end_status_;
}

}  // namespace
}  // namespace ioloop::net
