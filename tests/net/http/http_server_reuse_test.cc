// File: tests/net/http/http_server_reuse_test.cc
// A connection's core (parser, response writer) is dropped whenever the connection is idle
// and its storage reused by the next request, on this connection or another one, of this
// server or another: nothing of one may reach the other, and a kept core keeps no server alive.
#include <memory>
#include <string>
#include <utility>

#include "gtest/gtest.h"
#include "ioloop/net/http/http_server.h"
#include "ioloop/net/tcp_client.h"
#include "net/http/http_server_testing.h"

namespace ioloop::net {
namespace {

constexpr char kGet[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";

using HTTPServerReuseTest = HTTPServerTest;

TEST_F(HTTPServerReuseTest, EachServerAnswersWithItsOwnLimits) {
  HTTPServerOptions small;
  small.max_header_size = 40;
  auto strict = std::make_unique<HTTPServer>(loop(), hello, small);
  start_server();
  const std::string request = "GET / HTTP/1.1\r\nHost: x\r\nX-Padding: 0123456789\r\n\r\n";
  for (int round = 0; round < 2; ++round) {
    connect();  // the default server: its core goes back for reuse after the response
    send(request);
    EXPECT_EQ(read_responses(1), ok_response("Hello, world!"));
    std::swap(server_, strict);
    connect();  // the strict server, likely on the core the other one just used
    send(request);
    EXPECT_EQ(read_to_eof(), error_response(431, "Request Header Fields Too Large"));
    std::swap(server_, strict);
  }
}

TEST_F(HTTPServerReuseTest, RemoteAddressDoesNotCarryToTheNextConnection) {
  std::string seen = "unset";
  start_server([&seen](const HTTPRequest&, HTTPResponseWriter& w) { seen = w.remote_address(); });
  ASSERT_TRUE(server_->listen(0, "127.0.0.1").ok());
  ASSERT_TRUE(server_->start().ok());
  TCPClient tcp(loop());
  tcp.connect("127.0.0.1", server_->port(), [this](absl::StatusOr<std::shared_ptr<IOStream>> s) {
    ASSERT_TRUE(s.ok()) << s.status();
    client_ = *s;
    client_->write(kGet);
    client_->read_until("\r\n\r\n", [this](absl::StatusOr<std::string>) { done(); });
  });
  ASSERT_TRUE(wait());
  ASSERT_EQ(seen, "127.0.0.1");
  connect();  // a socketpair: no address
  send(kGet);
  read_responses(1);
  EXPECT_EQ(seen, "");
  server_->stop(true);
}

TEST_F(HTTPServerReuseTest, KeptCoresKeepNoServerStateAlive) {
  auto token = std::make_shared<int>(0);
  start_manual_server([token](const HTTPRequest&, HTTPResponseWriter& w) { w.set_body("ok"); });
  std::weak_ptr<HTTPServerState> state = shared_;
  connect();
  send(kGet);
  read_responses(1);  // the connection is idle: its core went back for reuse
  client_->close();
  settle();
  server_stream_.reset();
  shared_.reset();
  EXPECT_TRUE(state.expired());
  EXPECT_EQ(token.use_count(), 1);
}

}  // namespace
}  // namespace ioloop::net
