// File: tests/net/http/http_server_flow_test.cc
// HTTPServer flow control: how much response output one read may produce (max_pending_output
// bounds it, and the requests not yet answered wait, unread, until it drains), with exact
// bytes and order checked once the client reads. The loop is driven with settle() (iterations
// until nothing happens), never with wall-clock waits.
#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "http/http_connection.h"
#include "http/http_server_state.h"
#include "ioloop/net/http/http_server.h"
#include "net/http/http_server_testing.h"

namespace ioloop::net {
namespace {

constexpr size_t kBody = 20 * 1024;  // > 16 KiB: sent as its own iovec, not copied
// A real Date field is this much longer than the normalized "Date: D".
constexpr size_t kDateWidth = sizeof("Sun, 06 Nov 1994 08:49:37 GMT") - sizeof("D");

// A body of exactly kBody bytes that names the request: "<target>|xxxx...".
void padded(const HTTPRequest& r, HTTPResponseWriter& w) {
  w.set_header("Content-Type", "text/plain");
  std::string body = absl::StrCat(r.target(), "|");
  body.resize(kBody, 'x');
  w.set_body(std::move(body));
}

std::string padded_response(absl::string_view target) {
  std::string body = absl::StrCat(target, "|");
  body.resize(kBody, 'x');
  return ok_response(body);
}

// Issue 7, defect 5: one read of 200 pipelined GETs (6 KB) used to run all 200 handlers and
// queue 4 MB before anything was flushed. Handlers must stop once the read's output reaches
// max_pending_output, reading must stop meanwhile, and everything must still arrive in order.
TEST_F(HTTPServerTest, PipelinedOutputIsBoundedByMaxPendingOutputAndStaysInOrder) {
  constexpr size_t kRequests = 200;
  HTTPServerOptions options;
  options.max_pending_output = 64 * 1024;
  start_server(padded, options);
  connect();
  client_->pause_reading();  // the peer does not read: the server's output piles up
  std::string requests, expected;
  for (size_t i = 0; i < kRequests; ++i) {
    requests += absl::StrCat("GET /", i, " HTTP/1.1\r\nHost: x\r\n\r\n");
    expected += padded_response(absl::StrCat("/", i));
  }
  const size_t one_response = padded_response("/0").size() + kDateWidth;
  send(requests);
  settle();

  const size_t bound = options.max_pending_output + one_response;
  EXPECT_LE(server_stream_->write_buffer_size(), bound);
  EXPECT_LE(stats().max_output_queued, bound);
  EXPECT_LT(stats().requests, kRequests) << "every handler ran before the output drained";
  EXPECT_GE(stats().output_stalls, 1u);
  EXPECT_TRUE(server_stream_->reading_paused());

  client_->resume_reading();
  EXPECT_EQ(read_responses(kRequests), expected);
  EXPECT_EQ(stats().requests, kRequests);
  EXPECT_EQ(stats().responses, kRequests);
  EXPECT_LE(stats().max_output_queued, bound);
}

// The requests waiting behind the stall may end in a partial request, a body, or a request
// that closes the connection: all of it is answered once output drains, nothing after the
// close. (40 responses, 800 KB, are more than the socketpair's kernel buffers take.)
TEST_F(HTTPServerTest, StalledPipelineKeepsPartialRequestAndCloseOrder) {
  constexpr int kRequests = 40;
  HTTPServerOptions options;
  options.max_pending_output = 32 * 1024;  // two responses fill it
  start_server(padded, options);
  connect();
  client_->pause_reading();
  std::string requests, expected;
  for (int i = 0; i < kRequests; ++i) {
    requests += absl::StrCat("POST /", i, " HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc");
    expected += padded_response(absl::StrCat("/", i));
  }
  requests += "GET /last HTTP/1.1\r\nHost: x\r\nConnection: clo";  // completed below
  send(requests);
  settle();
  EXPECT_LT(stats().requests, static_cast<uint64_t>(kRequests));
  send("se\r\n\r\nGET /never HTTP/1.1\r\nHost: x\r\n\r\n");
  client_->resume_reading();
  std::string last = "/last|";
  last.resize(kBody, 'x');
  expected += ok_response(last, "Connection: close\r\n");
  EXPECT_EQ(read_to_eof(), expected);
  EXPECT_EQ(stats().requests, kRequests + 1u);
  EXPECT_LE(stats().max_output_queued,
            options.max_pending_output + padded_response("/0").size() + kDateWidth);
}

// The core under an output limit: stopping after any response and resuming later (with or
// without new input) gives the bytes of one unlimited call, and never exceeds the limit by
// more than one response.
TEST(HTTPConnectionCoreFlowTest, OutputLimitOnlyDelaysResponses) {
  const std::string input =
      "\r\nPOST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
      "HEAD /b HTTP/1.1\r\nHost: x\r\n\r\n"
      "POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nq\r\n0\r\n\r\n"
      "GET /d HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nzz"
      "GET /e HTTP/1.0\n\nGET /never HTTP/1.1\r\nHost: x\r\n\r\n";
  auto shared = std::make_shared<HTTPServerState>(echo, HTTPServerOptions{});
  auto bytes_of = [](HTTPOutput& out) {
    std::string b;
    for (const std::string& c : out.chunks) b += c;
    return b + out.head;
  };
  HTTPConnectionCore whole(shared);
  HTTPOutput all;
  EXPECT_EQ(whole.on_data(input, all), 5u);
  EXPECT_TRUE(all.close);
  EXPECT_FALSE(whole.has_backlog());
  const std::string expected = normalize(bytes_of(all));

  for (size_t limit : {size_t{1}, size_t{100}, size_t{200}}) {
    for (size_t k = 0; k <= input.size(); ++k) {  // the second piece arrives mid-backlog
      HTTPConnectionCore core(shared);
      std::string got;
      size_t calls = 0, biggest = 0;
      bool closed = false;
      std::vector<std::string> pieces = {input.substr(0, k), input.substr(k)};
      for (size_t p = 0; !closed && (p < pieces.size() || core.has_backlog()); ++calls) {
        HTTPOutput out;
        core.on_data(p < pieces.size() ? pieces[p++] : "", out, limit);
        const std::string b = bytes_of(out);
        biggest = std::max(biggest, b.size());
        got += b;
        closed = out.close;
        ASSERT_LT(calls, 100u);
      }
      EXPECT_EQ(normalize(got), expected) << "limit " << limit << ", split at " << k;
      EXPECT_TRUE(closed);
      EXPECT_FALSE(core.has_backlog());
      if (limit == 1) {
        EXPECT_LE(biggest, 160u) << "more than one response per call";
      }
    }
  }
}

}  // namespace
}  // namespace ioloop::net
