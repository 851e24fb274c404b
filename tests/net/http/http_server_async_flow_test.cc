// File: tests/net/http/http_server_async_flow_test.cc
// Deferred responses over time and flow control: response_timeout (503, or close after a
// partial response), the idle timeout leaving a pending response alone (unless the client takes
// no byte of it between two looks), flush() with a reader that does not read (memory bounded,
// the producer waits for each flush), and the close notification when the client resets the
// connection mid-stream.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <functional>
#include <memory>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "ioloop/net/http/http_response_stream.h"
#include "ioloop/net/http/http_server.h"
#include "net/http/http_server_testing.h"

namespace ioloop::net {
namespace {

constexpr char kGet[] = "GET /a HTTP/1.1\r\nHost: x\r\n\r\n";

class HTTPServerAsyncFlowTest : public HTTPServerDeferredTest {
 protected:
  static HTTPServerOptions timeouts() {
    HTTPServerOptions o;
    o.idle_timeout = absl::Seconds(60);
    o.response_timeout = absl::Seconds(5);
    return o;
  }
};

TEST_F(HTTPServerAsyncFlowTest, ResponseTimeoutBeforeAnyByteIs503) {
  ASSERT_TRUE(start_deferred(kGet, timeouts()));
  advance(absl::Milliseconds(4999));
  EXPECT_EQ(received_, "");
  EXPECT_FALSE(stream_->closed());
  advance(absl::Milliseconds(1));
  EXPECT_EQ(read_to_eof(), error_response(503, "Service Unavailable"));
  EXPECT_EQ(close_calls_, 1);
  EXPECT_EQ(close_status_,
            absl::DeadlineExceededError("HTTP response not finished within response_timeout"));
  EXPECT_EQ(stream_->write("late"), close_status_);
  EXPECT_EQ(stats().response_timeouts, 1u);
}

TEST_F(HTTPServerAsyncFlowTest, ResponseTimeoutAfterPartialResponseCloses) {
  ASSERT_TRUE(start_deferred(kGet, timeouts()));
  EXPECT_TRUE(stream_->write("part").ok());
  settle();
  advance(absl::Seconds(5));
  EXPECT_EQ(read_to_eof(),
            "HTTP/1.1 200 OK\r\nDate: D\r\nTransfer-Encoding: chunked\r\n\r\n4\r\npart\r\n");
  EXPECT_EQ(close_calls_, 1);
  EXPECT_TRUE(stream_->closed());
  EXPECT_EQ(stats().response_timeouts, 1u);
}

TEST_F(HTTPServerAsyncFlowTest, IdleTimeoutDoesNotCloseAPendingResponse) {
  HTTPServerOptions o = timeouts();
  o.response_timeout = absl::ZeroDuration();  // off
  ASSERT_TRUE(start_deferred(kGet, o));
  advance(absl::Seconds(600));
  EXPECT_FALSE(eof_);
  EXPECT_FALSE(stream_->closed());
  EXPECT_EQ(stats().idle_timeouts, 0u);
  EXPECT_TRUE(stream_->finish().ok());
  settle();
  EXPECT_EQ(normalize(received_),
            "HTTP/1.1 200 OK\r\nDate: D\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n");
  // Idle again from the end of the response.
  advance(absl::Milliseconds(59999));
  EXPECT_FALSE(eof_);
  advance(absl::Milliseconds(1));
  EXPECT_TRUE(eof_);
  EXPECT_EQ(stats().idle_timeouts, 1u);
  EXPECT_EQ(close_calls_, 0);  // finished: the close callback never runs
}

// A pending response is the handler's business, but not one whose output the client stopped
// reading: no byte taken for idle_timeout is the client's idleness (nginx's send_timeout).
// Found by a probe: 64 clients that never read their downloads held every upstream connection
// of http_proxy, and no other client was served.
TEST_F(HTTPServerAsyncFlowTest, IdleTimeoutClosesAPendingResponseTheClientDoesNotRead) {
  HTTPServerOptions o = timeouts();
  o.response_timeout = absl::ZeroDuration();  // off
  ASSERT_TRUE(start_deferred(kGet, o));
  client_->pause_reading();
  ASSERT_TRUE(stream_->write(std::string(16 << 20, 'x')).ok());  // more than the socket buffers
  settle();
  ASSERT_GT(stream_->write_buffer_size(), 0u);
  advance(absl::Seconds(60));  // the first look at the queue
  EXPECT_FALSE(stream_->closed());
  advance(absl::Milliseconds(59999));
  EXPECT_FALSE(stream_->closed());
  advance(absl::Milliseconds(1));  // the next: not one byte taken since
  EXPECT_TRUE(stream_->closed());
  EXPECT_EQ(close_calls_, 1);
  EXPECT_EQ(stats().idle_timeouts, 1u);
}

// The queue is looked at every idle_timeout; the client took bytes in between even when the
// handler wrote as many again, so that the queue has the same size at both looks. Regression:
// progress was a change of the queue's size, and this client, reading, was closed as idle.
TEST_F(HTTPServerAsyncFlowTest, AQueueRefilledToTheSameSizeIsProgress) {
  HTTPServerOptions o = timeouts();
  o.response_timeout = absl::ZeroDuration();  // off
  // HTTP/1.0: the body is close-delimited, so the queue holds exactly the bytes written.
  ASSERT_TRUE(start_deferred("GET /a HTTP/1.0\r\n\r\n", o));
  client_->pause_reading();
  ASSERT_TRUE(stream_->write(std::string(16 << 20, 'x')).ok());  // more than the socket buffers
  settle();
  const size_t queued = stream_->write_buffer_size();
  ASSERT_GT(queued, 0u);
  advance(absl::Seconds(60));  // the first look at the queue
  EXPECT_FALSE(stream_->closed());
  client_->resume_reading();  // one iteration of reading, then none
  loop().stop();
  loop().start();
  client_->pause_reading();
  settle();
  const size_t left = stream_->write_buffer_size();
  ASSERT_LT(left, queued);  // the client took some
  ASSERT_TRUE(stream_->write(std::string(queued - left, 'y')).ok());
  settle();
  ASSERT_EQ(stream_->write_buffer_size(), queued);
  advance(absl::Seconds(60));  // the next look: the same size, but bytes were taken
  EXPECT_FALSE(stream_->closed());
  EXPECT_EQ(stats().idle_timeouts, 0u);
  advance(absl::Seconds(60));  // and none since: idle
  EXPECT_TRUE(stream_->closed());
  EXPECT_EQ(stats().idle_timeouts, 1u);
}

// Found by http_body_stream_fuzzer. The last request of a connection (Connection: close)
// leaves the parser closed rather than idle; its header, whole-request and body-rate
// deadlines must end with it all the same, or a pending response to it is cut by a 408 long
// after the request was read.
TEST_F(HTTPServerAsyncFlowTest, RequestTimeoutsEndWithTheLastRequestOfAConnection) {
  HTTPServerOptions o = timeouts();
  o.response_timeout = absl::ZeroDuration();  // off
  o.header_timeout = absl::Seconds(10);
  o.request_timeout = absl::Seconds(20);
  o.min_body_rate = 1000;  // bytes per second, over body_rate_window (1 s)
  start_manual_server(keep(), o);
  connect();
  // The body in a later read than the head: the deadlines started with the head.
  send("POST /a HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 4\r\n\r\nbo");
  settle();
  send("dy");
  settle();
  ASSERT_NE(stream_, nullptr);
  advance(absl::Seconds(30));
  EXPECT_EQ(received_, "");
  EXPECT_FALSE(stream_->closed());
  EXPECT_EQ(stats().header_timeouts + stats().request_timeouts + stats().body_rate_timeouts, 0u);
  EXPECT_TRUE(stream_->finish().ok());
  EXPECT_EQ(read_to_eof(),
            "HTTP/1.1 200 OK\r\nDate: D\r\nTransfer-Encoding: chunked\r\nConnection: "
            "close\r\n\r\n0\r\n\r\n");
}

TEST_F(HTTPServerAsyncFlowTest, ClientEofClosesTheStream) {
  ASSERT_TRUE(start_deferred(kGet, timeouts()));
  ASSERT_NE(stream_, nullptr);
  ::shutdown(client_->fd(), SHUT_WR);
  settle();
  EXPECT_EQ(close_calls_, 1);
  EXPECT_EQ(close_status_, absl::UnavailableError("HTTP connection closed"));
  EXPECT_EQ(stream_->finish(), close_status_);
}

// The producer writes 64 KiB, waits for flush(), writes the next: with a reader that does not
// read, it stops once the kernel buffers are full, and the stream never queues more than one
// chunk (plus its framing).
TEST_F(HTTPServerAsyncFlowTest, FlushWithASlowReaderBoundsMemory) {
  constexpr size_t kChunk = 64 * 1024;
  constexpr int kChunks = 64;  // 4 MiB: far more than the socket buffers hold
  int written = 0;
  size_t max_queued = 0;
  std::function<void()> produce;
  produce = [&] {
    if (written == kChunks) {
      EXPECT_TRUE(stream_->finish().ok());
      return;
    }
    ASSERT_TRUE(stream_->write(std::string(kChunk, static_cast<char>('a' + written % 26))).ok());
    ++written;
    max_queued = std::max(max_queued, stream_->write_buffer_size());
    stream_->flush([&](absl::Status s) {
      ASSERT_TRUE(s.ok()) << s;
      produce();
    });
  };
  start_manual_server([&](const HTTPRequest&, HTTPResponseWriter& w) {
    stream_ = w.defer();
    produce();
  });
  connect();
  client_->pause_reading();
  send(kGet);
  settle();
  EXPECT_GT(written, 0);
  EXPECT_LT(written, kChunks);  // waiting for the reader
  const int stalled_at = written;
  settle();
  EXPECT_EQ(written, stalled_at);  // no busy loop, no progress without reading
  EXPECT_LE(max_queued, kChunk + 200);
  client_->resume_reading();
  wait_for([&] {
    return received_.size() >= 5 && received_.compare(received_.size() - 5, 5, "0\r\n\r\n") == 0;
  });
  EXPECT_EQ(written, kChunks);
  EXPECT_LE(max_queued, kChunk + 200);
  // The body decodes to exactly what was written.
  std::string body;
  size_t pos = received_.find("\r\n\r\n") + 4;
  while (true) {
    const size_t eol = received_.find("\r\n", pos);
    const size_t n = std::stoul(received_.substr(pos, eol - pos), nullptr, 16);
    if (n == 0) break;
    body += received_.substr(eol + 2, n);
    pos = eol + 2 + n + 2;
  }
  ASSERT_EQ(body.size(), kChunk * kChunks);
  for (int i = 0; i < kChunks; ++i) {
    EXPECT_EQ(body[i * kChunk], static_cast<char>('a' + i % 26));
  }
}

// A TCP client that resets the connection (SO_LINGER 0) while the response streams: the
// stream's close callback runs with the reset, later writes report the connection is gone.
TEST_F(HTTPServerAsyncFlowTest, ClientResetMidStreamRunsTheCloseCallback) {
  start_server(keep());
  ASSERT_TRUE(server_->listen(0, "127.0.0.1").ok());
  ASSERT_TRUE(server_->start().ok());
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(server_->port());
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::send(fd, kGet, sizeof kGet - 1, 0), static_cast<ssize_t>(sizeof kGet - 1));
  std::function<void()> poll_for_stream = [&] {
    if (stream_) return done();
    loop().call_later(absl::Milliseconds(1), poll_for_stream);
  };
  poll_for_stream();
  ASSERT_TRUE(wait());
  EXPECT_TRUE(stream_->write("first").ok());
  char buf[256];
  ASSERT_GT(::recv(fd, buf, sizeof buf, 0), 0);  // the head and the first chunk arrived
  const linger lin{1, 0};
  ASSERT_EQ(::setsockopt(fd, SOL_SOCKET, SO_LINGER, &lin, sizeof lin), 0);
  ::close(fd);  // RST
  stream_->set_close_callback([&](absl::Status s) {
    ++close_calls_;
    close_status_ = s;
    done();
  });
  ASSERT_TRUE(wait());
  EXPECT_EQ(close_calls_, 1);
  EXPECT_EQ(close_status_.code(), absl::StatusCode::kUnavailable);
  // "HTTP connection closed: socket fd N: Connection reset by peer"
  EXPECT_TRUE(absl::StartsWith(close_status_.message(), "HTTP connection closed: "))
      << close_status_;
  EXPECT_TRUE(absl::EndsWith(close_status_.message(), ": Connection reset by peer"))
      << close_status_;
  EXPECT_TRUE(stream_->closed());
  EXPECT_EQ(stream_->write("more"), close_status_);
  bool flushed = false;
  stream_->flush([&](absl::Status s) {
    EXPECT_EQ(s, close_status_);
    flushed = true;
    done();
  });
  EXPECT_FALSE(flushed);  // never inside the call
  ASSERT_TRUE(wait());
  EXPECT_TRUE(flushed);
}

}  // namespace
}  // namespace ioloop::net
