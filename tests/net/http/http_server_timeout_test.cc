// File: tests/net/http/http_server_timeout_test.cc
// HTTPServer's timeouts, driven by a ManualHTTPClock: time moves only in advance(), so each
// test states exactly when a timeout must fire and that it has not fired a moment before.
// Covers the header timeout (slowloris, including by blank lines), the empty-line limit, the
// body rate (min_body_rate) and the whole-request deadline (request_timeout).
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "ioloop/net/http/http_server.h"
#include "net/http/http_server_testing.h"

namespace ioloop::net {
namespace {

// Answers with the size of the body it got: "<target>|<size>".
void body_size(const HTTPRequest& r, HTTPResponseWriter& w) {
  w.set_header("Content-Type", "text/plain");
  w.set_body(absl::StrCat(r.target(), "|", r.body().size()));
}

class HTTPServerTimeoutTest : public HTTPServerTest {
 protected:
  // Header timeout 10 s, idle timeout 60 s (the defaults, spelled out for the arithmetic).
  static HTTPServerOptions options() {
    HTTPServerOptions o;
    o.header_timeout = absl::Seconds(10);
    o.idle_timeout = absl::Seconds(60);
    return o;
  }
  // Nothing more has been received and the connection is open.
  void expect_open(const std::string& so_far = "") {
    EXPECT_FALSE(eof_);
    EXPECT_EQ(normalize(received_), so_far);
  }
  void expect_closed_with(const std::string& all) {
    EXPECT_TRUE(eof_) << "still open after: " << received_;
    EXPECT_EQ(normalize(received_), all);
  }
};

TEST_F(HTTPServerTimeoutTest, HeaderTimeoutCountsFromTheFirstByteNotTheLast) {
  start_manual_server(hello, options());
  connect();
  send("GET / HTTP/1.1\r\nHost: x\r\n");
  settle();
  advance(absl::Seconds(6));
  send("X-A: 1\r\n");  // more header bytes do not extend the header timeout
  settle();
  advance(absl::Milliseconds(3999));
  expect_open();
  advance(absl::Milliseconds(1));
  expect_closed_with(error_response(408, "Request Timeout"));
  EXPECT_EQ(stats().header_timeouts, 1u);
  EXPECT_EQ(stats().idle_timeouts, 0u);
}

// Issue 7, defect 7: CRLFs before a request line kept the parser idle, so the header timeout
// never started and each one re-armed the idle timeout: two bytes a minute held a connection
// for ever. An empty line starts the header section and its timeout.
TEST_F(HTTPServerTimeoutTest, BlankLinesStartTheHeaderTimeout) {
  start_manual_server(hello, options());
  connect();
  send("\r\n");
  settle();
  advance(absl::Seconds(9));
  send("\r\n");
  settle();
  advance(absl::Milliseconds(999));
  expect_open();
  advance(absl::Milliseconds(1));
  expect_closed_with(error_response(408, "Request Timeout"));
  EXPECT_EQ(stats().header_timeouts, 1u);
}

// The same after a keep-alive request: the blank lines belong to the next request.
TEST_F(HTTPServerTimeoutTest, BlankLinesAfterARequestStartTheNextHeaderTimeout) {
  start_manual_server(hello, options());
  connect();
  send("GET / HTTP/1.1\r\nHost: x\r\n\r\n\r\n");
  settle();
  expect_open(ok_response("Hello, world!"));
  advance(absl::Seconds(10));
  expect_closed_with(ok_response("Hello, world!") + error_response(408, "Request Timeout"));
}

// At most 8 empty lines (CRLF or LF) before a request line; the 9th is a 400.
TEST_F(HTTPServerTimeoutTest, NineEmptyLinesBeforeARequestAre400) {
  start_manual_server(hello, options());
  connect();
  send("\r\n\r\n\n\r\n\r\n\n\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n");  // 8: fine
  settle();
  expect_open(ok_response("Hello, world!"));
  send("\r\n\r\n\r\n\r\n\n\n\n\n");
  settle();
  expect_open(ok_response("Hello, world!"));
  send("\n");
  settle();
  expect_closed_with(ok_response("Hello, world!") + error_response(400, "Bad Request"));
  EXPECT_EQ(stats().protocol_errors, 1u);
}

constexpr char kUpload[] = "POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 30720\r\n\r\n";

// 1 KiB/s averaged over 10 s: a window with less than 10 KiB of body is cut off with 408.
TEST_F(HTTPServerTimeoutTest, BodyBelowMinimumRateGets408) {
  HTTPServerOptions o = options();
  o.min_body_rate = 1024;
  o.body_rate_window = absl::Seconds(10);
  start_manual_server(body_size, o);
  connect();
  send(kUpload + std::string(12 * 1024, 'a'));
  settle();
  advance(absl::Seconds(10));  // 12 KiB in the first window: enough
  expect_open();
  send(std::string(4 * 1024, 'b'));
  settle();
  advance(absl::Milliseconds(9999));
  expect_open();
  advance(absl::Milliseconds(1));  // 4 KiB in the second window: too slow
  expect_closed_with(error_response(408, "Request Timeout"));
  EXPECT_EQ(stats().body_rate_timeouts, 1u);
  EXPECT_EQ(stats().requests, 0u);
}

TEST_F(HTTPServerTimeoutTest, BodyAtTheMinimumRateCompletes) {
  HTTPServerOptions o = options();
  o.min_body_rate = 1024;
  o.body_rate_window = absl::Seconds(10);
  start_manual_server(body_size, o);
  connect();
  // The header section and the first 10 KiB arrive together; then 10 KiB per window.
  send(kUpload + std::string(10 * 1024, 'a'));
  settle();
  for (int i = 0; i < 2; ++i) {
    advance(absl::Seconds(10));
    send(std::string(10 * 1024, 'b'));
    settle();
  }
  advance(absl::Seconds(10));
  expect_open(ok_response("/up|30720"));
  EXPECT_EQ(stats().body_rate_timeouts, 0u);
}

TEST_F(HTTPServerTimeoutTest, MinimumRateIsOffByDefault) {
  start_manual_server(body_size, options());
  connect();
  send(kUpload);
  settle();
  for (int i = 0; i < 5; ++i) {
    advance(absl::Seconds(50));  // a byte every 50 s: under the idle timeout
    send("z");
    settle();
  }
  expect_open();
  EXPECT_EQ(stats().body_rate_timeouts, 0u);
}

// A whole-request deadline counts from the request's first byte, whatever arrives meanwhile;
// each request gets its own.
TEST_F(HTTPServerTimeoutTest, RequestTimeoutCutsOffASlowRequest) {
  HTTPServerOptions o = options();
  o.request_timeout = absl::Seconds(30);
  start_manual_server(body_size, o);
  connect();
  send("GET /1 HTTP/1.1\r\nHost: x\r\n\r\n");
  settle();
  advance(absl::Seconds(25));
  send("POST /2 HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nab");  // starts at 25 s
  settle();
  advance(absl::Seconds(20));
  send("cd");
  settle();
  advance(absl::Milliseconds(9999));
  expect_open(ok_response("/1|0"));
  advance(absl::Milliseconds(1));  // 30 s after the POST's first byte
  expect_closed_with(ok_response("/1|0") + error_response(408, "Request Timeout"));
  EXPECT_EQ(stats().request_timeouts, 1u);
  EXPECT_EQ(stats().header_timeouts, 0u);
}

TEST_F(HTTPServerTimeoutTest, IdleKeepAliveConnectionClosesWithoutResponse) {
  start_manual_server(hello, options());
  connect();
  send("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  settle();
  advance(absl::Milliseconds(59999));
  expect_open(ok_response("Hello, world!"));
  advance(absl::Milliseconds(1));
  expect_closed_with(ok_response("Hello, world!"));
  EXPECT_EQ(stats().idle_timeouts, 1u);
}

}  // namespace
}  // namespace ioloop::net
