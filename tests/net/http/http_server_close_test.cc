// How an HTTP connection ends, and what an idle one keeps.
//  - A client whose last request said "Connection: close" (or HTTP/1.0 without keep-alive)
//    and sent nothing after it is done: the server closes as soon as the response is
//    flushed, with no lingering close (nginx does the same). Any byte after that request
//    (parsed, or still unread in the kernel because the server had stopped reading) means the
//    client may still be sending, so the server shuts down its side and lingers, draining
//    input until the client's EOF, so that unread bytes cannot make the close a reset that
//    destroys the response.
//  - An idle keep-alive connection keeps no per-request memory (parser state, the last
//    request, response fields): after a request it costs the same heap as a connection that
//    never sent a byte.
// The manual clock keeps every timeout still, so "closed" below is never a timeout's doing.
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "http_server_testing.h"
#include "ioloop/net/http/http_response_stream.h"
#include "testing/heap.h"

namespace ioloop::net {
namespace {

class HTTPServerCloseTest : public HTTPServerTest {
 protected:
  void SetUp() override { start_manual_server(); }

  // A connection whose client end is a bare socket, so that it closes only when the test
  // says (an IOStream client would close itself at the server's EOF, ending any linger).
  void connect_raw() {
    auto pair = Socket::pair();
    ASSERT_TRUE(pair.ok()) << pair.status();
    server_stream_ = IOStream::create(loop(), std::move(pair->first));
    serve_http_connection(shared_, server_stream_);
    raw_ = std::move(pair->second);
  }
  void send_raw(const std::string& bytes) {
    ASSERT_EQ(::send(raw_.fd(), bytes.data(), bytes.size(), MSG_NOSIGNAL),
              static_cast<ssize_t>(bytes.size()));
  }
  // Everything the server sent so far, normalized; `eof` says whether its end came too.
  std::string recv_raw(bool* eof) {
    std::string got;
    char buf[4096];
    *eof = false;
    while (true) {
      const ssize_t n = ::recv(raw_.fd(), buf, sizeof buf, MSG_DONTWAIT);
      if (n > 0) {
        got.append(buf, static_cast<size_t>(n));
        continue;
      }
      *eof = n == 0;
      return normalize(got);
    }
  }

  void expect_linger_after_late_bytes(size_t last_size);

  Socket raw_;
};

TEST_F(HTTPServerCloseTest, ClientsLastRequestClosesAtOnceWithoutLingering) {
  connect();
  send("GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n");
  settle();
  // The client has not closed its side, and no timer ran: a lingering close would still be
  // waiting for the client's EOF here.
  EXPECT_TRUE(server_stream_->closed());
  EXPECT_EQ(read_to_eof(), ok_response("Hello, world!", "Connection: close\r\n"));
}

TEST_F(HTTPServerCloseTest, Http10WithoutKeepAliveClosesAtOnce) {
  connect();
  send("GET / HTTP/1.0\r\n\r\n");
  settle();
  EXPECT_TRUE(server_stream_->closed());
  EXPECT_EQ(read_to_eof(), ok_response("Hello, world!", "Connection: close\r\n", "HTTP/1.0"));
}

TEST_F(HTTPServerCloseTest, BytesAfterTheClosingRequestMakeTheServerLinger) {
  // The second request is not answered (RFC 9112 §9.6), but its bytes say the client may
  // still be sending: closing now could reset the connection under the response.
  connect_raw();
  send_raw(
      "GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"
      "GET /2 HTTP/1.1\r\nHost: h\r\n\r\n");
  settle();
  EXPECT_FALSE(server_stream_->closed());
  bool eof = false;
  EXPECT_EQ(recv_raw(&eof), ok_response("Hello, world!", "Connection: close\r\n"));
  EXPECT_TRUE(eof);  // the server's FIN: it shut down its side and drains ours
  raw_.reset();      // the client's EOF ends the lingering close
  settle();
  EXPECT_TRUE(server_stream_->closed());
}

// The same with the closing request's response deferred and finished inside its handler.
// Regression: the finish took the parser's end for the client's last word while the bytes after
// that request were still only in the read being parsed, and the server closed at once.
TEST_F(HTTPServerCloseTest, BytesAfterAClosingRequestFinishedInItsHandlerMakeTheServerLinger) {
  start_manual_server([](const HTTPRequest&, HTTPResponseWriter& w) {
    w.set_header("Content-Type", "text/plain");
    w.set_header("Content-Length", "2");
    std::shared_ptr<HTTPResponseStream> response = w.defer();
    EXPECT_TRUE(response->write("ok").ok());
    EXPECT_TRUE(response->finish().ok());
  });
  connect_raw();
  send_raw(
      "GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"
      "GET /2 HTTP/1.1\r\nHost: h\r\n\r\n");
  settle();
  EXPECT_FALSE(server_stream_->closed());
  bool eof = false;
  EXPECT_EQ(recv_raw(&eof), ok_response("ok", "Connection: close\r\n"));
  EXPECT_TRUE(eof);
  raw_.reset();
  settle();
  EXPECT_TRUE(server_stream_->closed());
}

// Found by http_server_fuzzer. The pipelined requests, the last saying "Connection: close",
// arrive in one read; the first response fills the output bound, so the server stops reading.
// Bytes the client sends meanwhile are not parsed: when the backlog is answered, the server
// must not take the closing request as the client's last word and close over them (a reset
// that can destroy the response). They wait unread in the kernel when the last response is
// small (sent at once), or are read and discarded while it flushes when it is large.
void HTTPServerCloseTest::expect_linger_after_late_bytes(size_t last_size) {
  shared_.reset();
  HTTPServerOptions options;
  options.max_pending_output = 256;
  start_manual_server(
      [last_size](const HTTPRequest& r, HTTPResponseWriter& w) {
        w.set_body(std::string(r.path() == "/big" ? 8000 : last_size, 'b'));
      },
      options);
  connect_raw();
  const int small = 4096;  // the server's output backs up after a few KiB
  ASSERT_EQ(::setsockopt(raw_.fd(), SOL_SOCKET, SO_RCVBUF, &small, sizeof small), 0);
  ASSERT_TRUE(server_stream_->socket().set_send_buffer(small).ok());
  send_raw(
      "GET /big HTTP/1.1\r\nHost: h\r\n\r\n"
      "GET /last HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n");
  settle();
  EXPECT_FALSE(server_stream_->closed());              // the first response is still queued
  send_raw("GET /after HTTP/1.1\r\nHost: h\r\n\r\n");  // the server is not reading now
  settle();
  std::string got;
  ssize_t n = 1;
  for (int i = 0; i < 1000 && n != 0; ++i) {  // the client reads until the server's EOF
    char buf[4096];
    n = ::recv(raw_.fd(), buf, sizeof buf, MSG_DONTWAIT);
    if (n > 0) got.append(buf, static_cast<size_t>(n));
    if (n < 0 && errno != EAGAIN) break;
    settle();
  }
  EXPECT_EQ(n, 0) << "the client saw no FIN: " << std::strerror(errno);
  EXPECT_EQ(normalize(got),
            absl::StrCat("HTTP/1.1 200 OK\r\nDate: D\r\nContent-Length: 8000\r\n\r\n",
                         std::string(8000, 'b'), "HTTP/1.1 200 OK\r\nDate: D\r\nContent-Length: ",
                         last_size, "\r\nConnection: close\r\n\r\n", std::string(last_size, 'b')));
  EXPECT_FALSE(server_stream_->closed());  // lingering: draining until the client's EOF
  raw_.reset();
  settle();
  EXPECT_TRUE(server_stream_->closed());
}

TEST_F(HTTPServerCloseTest, BytesUnreadWhileOutputWasBackedUpMakeTheServerLinger) {
  expect_linger_after_late_bytes(3);
}

TEST_F(HTTPServerCloseTest, BytesReadWhileTheLastResponseFlushesMakeTheServerLinger) {
  expect_linger_after_late_bytes(8000);
}

TEST_F(HTTPServerCloseTest, ServerChosenCloseOnAKeepAliveRequestLingers) {
  shared_.reset();
  start_manual_server([](const HTTPRequest&, HTTPResponseWriter& w) {
    w.set_body("bye");
    w.set_close();
  });
  connect_raw();
  // The client asked to keep the connection: it may send its next request at any moment.
  send_raw("GET / HTTP/1.1\r\nHost: h\r\n\r\n");
  settle();
  EXPECT_FALSE(server_stream_->closed());
  bool eof = false;
  EXPECT_EQ(recv_raw(&eof),
            "HTTP/1.1 200 OK\r\nDate: D\r\nContent-Length: 3\r\n"
            "Connection: close\r\n\r\nbye");
  EXPECT_TRUE(eof);
  raw_.reset();
  settle();
  EXPECT_TRUE(server_stream_->closed());
}

// Found by a review: a close whose output was still queued waited for the idle timeout from
// the last progress, not linger_timeout from the flush: a client that read the response and
// stayed silent held the connection 60 s instead of 2. The linger starts once the output is
// in the kernel.
TEST_F(HTTPServerCloseTest, TheLingerStartsWhenTheOutputIsFlushed) {
  shared_.reset();
  HTTPServerOptions options;
  options.max_pending_output = 4096;
  options.idle_timeout = absl::Seconds(60);
  start_manual_server(
      [](const HTTPRequest&, HTTPResponseWriter& w) {
        w.set_body(std::string(1 << 20, 'z'));
        w.set_close();
      },
      options);
  connect_raw();
  send_raw("GET / HTTP/1.1\r\nHost: h\r\n\r\n");
  settle();
  ASSERT_GT(server_stream_->write_buffer_size(), 0u);  // more than the socket holds
  std::string got;
  bool eof = false;
  while (!eof) {  // the client reads it all, in steps, and stays open
    got += recv_raw(&eof);
    settle();
  }
  EXPECT_EQ(got.size(), (1u << 20) + got.find("\r\n\r\n") + 4);
  advance(absl::Seconds(3));  // linger_timeout (2 s) from the flush
  EXPECT_TRUE(server_stream_->closed());
}

// Regression: with the idle timeout off, a closing response still flushing started the linger at
// once, so a client that read nothing for linger_timeout (2 s) lost the rest of the response. A
// keep-alive response is waited for in that case; a closing one is now too, and the linger
// starts at the flush.
TEST_F(HTTPServerCloseTest, WithoutAnIdleTimeoutAClosingResponseWaitsForASlowReader) {
  shared_.reset();
  HTTPServerOptions options;
  options.max_pending_output = 4096;
  options.idle_timeout = absl::ZeroDuration();
  start_manual_server(
      [](const HTTPRequest&, HTTPResponseWriter& w) {
        w.set_body(std::string(1 << 20, 'z'));
        w.set_close();
      },
      options);
  connect_raw();
  send_raw("GET / HTTP/1.1\r\nHost: h\r\n\r\n");
  settle();
  ASSERT_GT(server_stream_->write_buffer_size(), 0u);  // more than the socket holds
  advance(absl::Seconds(10));                          // the client reads nothing meanwhile
  EXPECT_FALSE(server_stream_->closed());
  std::string got;
  bool eof = false;
  while (!eof) {
    got += recv_raw(&eof);
    settle();
  }
  EXPECT_EQ(got.size(), (1u << 20) + got.find("\r\n\r\n") + 4);
  advance(absl::Seconds(3));  // linger_timeout (2 s) from the flush
  EXPECT_TRUE(server_stream_->closed());
}

TEST_F(HTTPServerCloseTest, DeferredResponseToTheClientsLastRequestClosesAtOnce) {
  std::shared_ptr<HTTPResponseStream> pending;
  shared_.reset();
  start_manual_server([&](const HTTPRequest&, HTTPResponseWriter& w) { pending = w.defer(); });
  connect();
  send("GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n");
  settle();
  ASSERT_NE(pending, nullptr);
  EXPECT_FALSE(server_stream_->closed());  // the response is not written yet
  pending->head().set_header("Content-Length", "5");
  ASSERT_TRUE(pending->write("later").ok());
  ASSERT_TRUE(pending->finish().ok());
  settle();
  EXPECT_TRUE(server_stream_->closed());
  EXPECT_EQ(read_to_eof(),
            "HTTP/1.1 200 OK\r\nDate: D\r\nContent-Length: 5\r\n"
            "Connection: close\r\n\r\nlater");
}

using ::ioloop::testing::heap_in_use;

TEST_F(HTTPServerCloseTest, IdleConnectionAfterARequestCostsNoMoreHeapThanAFreshOne) {
  constexpr int kConnections = 50;
  // Per connection: the server's stream and glue, the client's stream. `fresh` never sends;
  // `served` makes one keep-alive request and reads its response.
  auto open_many = [&](bool request) {
    std::vector<std::shared_ptr<IOStream>> keep;
    const size_t before = heap_in_use();
    for (int i = 0; i < kConnections; ++i) {
      connect();
      if (request) {
        send("GET /some/path?q=1 HTTP/1.1\r\nHost: example\r\nUser-Agent: test\r\n\r\n");
        EXPECT_EQ(read_responses(1), ok_response("Hello, world!"));
      }
      settle();
      keep.push_back(client_);
      keep.push_back(server_stream_);
    }
    const size_t after = heap_in_use();
    received_.clear();
    received_.shrink_to_fit();
    return std::make_pair(after - before, std::move(keep));
  };
  // Warm up once, so that one-time allocations (vectors of the loop, the date cache) are
  // not counted in either measure.
  auto warm = open_many(true);
  auto fresh = open_many(false);
  auto served = open_many(true);
  if (fresh.first == 0) GTEST_SKIP() << "mallinfo2() does not count this allocator's heap";
  // The vector of kept streams grows alike in both; allow for allocator rounding only.
  const double per_fresh = static_cast<double>(fresh.first) / kConnections;
  const double per_served = static_cast<double>(served.first) / kConnections;
  EXPECT_LE(per_served, per_fresh + 16)
      << "fresh " << per_fresh << " B, served " << per_served << " B per connection";
}

}  // namespace
}  // namespace ioloop::net
