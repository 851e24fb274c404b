// File: tests/net/http/http_server_async_close_test.cc
// The end of a deferred response as its handler sees it (http_response_stream.h, "Closed"):
// a flush() the connection's end fails reports what the stream reports, after the stream
// learnt it; flush() after finish() waits for the finished bytes; a failed response tells its
// close callback even when the failure dropped the last reference; Content-Length misuse is
// logged. Over a socketpair on a ManualHTTPClock (http_server_testing.h).
#include <memory>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "ioloop/net/http/http_response_stream.h"
#include "ioloop/net/http/http_server.h"
#include "net/http/http_server_testing.h"
#include "testing/log_capture.h"

namespace ioloop::net {
namespace {

constexpr char kGet[] = "GET /a HTTP/1.1\r\nHost: x\r\n\r\n";
constexpr size_t kBig = 4 << 20;  // far more than the socket buffers hold

class HTTPServerAsyncCloseTest : public HTTPServerDeferredTest {
 protected:
  // A deferred response with kBig bytes written to a client that does not read: most of them
  // stay queued in the server's stream.
  void start_stalled_response(HTTPServerOptions options = {}) {
    ASSERT_TRUE(start_deferred(kGet, std::move(options)));
    client_->pause_reading();
    ASSERT_TRUE(stream_->write(std::string(kBig, 'x')).ok());
  }
  static HTTPServerOptions idle_after(absl::Duration d) {
    HTTPServerOptions o;
    o.idle_timeout = d;
    return o;
  }

  // What a flush callback saw of the stream when it ran.
  struct FlushSeen {
    int calls = 0;
    absl::Status status;
    bool closed = false;
    absl::Status write;  // write() from inside the callback
  };
  HTTPResponseStream::Callback record(FlushSeen& seen) {
    return [this, &seen](absl::Status s) {
      ++seen.calls;
      seen.status = s;
      seen.closed = stream_->closed();
      seen.write = stream_->write("after");
    };
  }
};

// Found by a probe: the flush callback ran with the socket's own error while the stream was
// still open, so write() and finish() inside it succeeded, the response was counted as
// delivered, and the close callback never ran.
TEST_F(HTTPServerAsyncCloseTest, FlushFailedByTheIdleTimeoutSeesAClosedStream) {
  ASSERT_NO_FATAL_FAILURE(start_stalled_response(idle_after(absl::Seconds(10))));
  FlushSeen seen;
  stream_->flush(record(seen));
  settle();
  EXPECT_EQ(seen.calls, 0);
  advance(absl::Seconds(10));  // the queue moved since the last look: not idle yet
  advance(absl::Seconds(10));
  ASSERT_EQ(seen.calls, 1);
  EXPECT_EQ(seen.status, absl::UnavailableError("HTTP connection closed"));
  EXPECT_TRUE(seen.closed);
  EXPECT_EQ(seen.write, seen.status);
  EXPECT_EQ(stream_->status(), seen.status);
  settle();
  EXPECT_EQ(close_calls_, 1);
  EXPECT_EQ(close_status_, seen.status);
  EXPECT_EQ(stats().responses, 0u);
  EXPECT_EQ(stats().idle_timeouts, 1u);
}

TEST_F(HTTPServerAsyncCloseTest, FlushFailedByTheClientLeavingSeesAClosedStream) {
  ASSERT_NO_FATAL_FAILURE(start_stalled_response());
  FlushSeen seen;
  stream_->flush(record(seen));
  settle();
  client_->close();
  settle();
  ASSERT_EQ(seen.calls, 1);
  EXPECT_EQ(seen.status.code(), absl::StatusCode::kUnavailable) << seen.status;
  EXPECT_TRUE(absl::StartsWith(seen.status.message(), "HTTP connection closed")) << seen.status;
  EXPECT_TRUE(seen.closed);
  EXPECT_EQ(seen.write, seen.status);
  EXPECT_EQ(stream_->status(), seen.status);
  EXPECT_EQ(stream_->finish(), seen.status);
  EXPECT_EQ(close_calls_, 1);
  EXPECT_EQ(close_status_, seen.status);
  EXPECT_EQ(stats().responses, 0u);
  EXPECT_EQ(stats().stream_errors, 0u);  // the client's doing, not the handler's
}

// Found by a probe: a flush pending when the response failed (here by response_timeout, with
// part of it sent; and by a write past its Content-Length) got Unavailable "HTTP connection
// closed" while the stream and its close callback reported the failure itself.
TEST_F(HTTPServerAsyncCloseTest, FlushFailedByAFailedResponseReportsTheFailure) {
  HTTPServerOptions options;
  options.response_timeout = absl::Seconds(5);
  ASSERT_NO_FATAL_FAILURE(start_stalled_response(options));
  FlushSeen seen;
  stream_->flush(record(seen));
  settle();
  advance(absl::Seconds(5));
  EXPECT_EQ(seen.calls, 0);  // the bytes written go out first, then the connection closes
  client_->close();
  settle();
  ASSERT_EQ(seen.calls, 1);
  EXPECT_EQ(seen.status,
            absl::DeadlineExceededError("HTTP response not finished within response_timeout"));
  EXPECT_TRUE(seen.closed);
  EXPECT_EQ(stream_->status(), seen.status);
  settle();
  EXPECT_EQ(close_calls_, 1);
  EXPECT_EQ(close_status_, seen.status);
}

TEST_F(HTTPServerAsyncCloseTest, FlushFailedByContentLengthMisuseReportsTheMisuse) {
  ASSERT_TRUE(start_deferred(kGet));
  client_->pause_reading();
  stream_->head().set_header("Content-Length", std::to_string(kBig));
  ASSERT_TRUE(stream_->write(std::string(kBig - 1, 'x')).ok());
  FlushSeen seen;
  stream_->flush(record(seen));
  const absl::Status misuse = stream_->write("yz");
  EXPECT_EQ(misuse.code(), absl::StatusCode::kInvalidArgument) << misuse;
  settle();
  client_->close();
  settle();
  ASSERT_EQ(seen.calls, 1);
  EXPECT_EQ(seen.status, misuse);
  EXPECT_EQ(stream_->status(), misuse);
}

// Found by a probe: flush(nullptr) was accepted and aborted the process later, from the loop
// (an empty AnyInvocable called). An empty callback is no callback, as for finish().
TEST_F(HTTPServerAsyncCloseTest, FlushWithoutACallbackIsAFlush) {
  ASSERT_TRUE(start_deferred(kGet));
  ASSERT_TRUE(stream_->write("a").ok());
  stream_->flush(nullptr);
  settle();
  ASSERT_TRUE(stream_->finish().ok());
  stream_->flush(nullptr);  // after finish(): an error nobody hears
  settle();
  EXPECT_TRUE(absl::EndsWith(received_, "1\r\na\r\n0\r\n\r\n")) << received_;
}

// The guide's pump(): the flush callback holds the stream and drops it when the flush fails.
// Found by a probe: that was an abandoned response (logged as a handler error, counted in
// stream_errors) and the close callback was lost.
TEST_F(HTTPServerAsyncCloseTest, ProducerDroppingTheStreamOnAFailedFlushIsNoHandlerError) {
  ::ioloop::testing::ScopedLogCapture log;
  int close_calls = 0;
  int flush_calls = 0;
  start_manual_server([&](const HTTPRequest&, HTTPResponseWriter& w) {
    std::shared_ptr<HTTPResponseStream> s = w.defer();
    s->set_close_callback([&](absl::Status) { ++close_calls; });
    ASSERT_TRUE(s->write(std::string(kBig, 'x')).ok());
    s->flush([s, &flush_calls](absl::Status) mutable {
      ++flush_calls;
      s.reset();  // the only reference
    });
  });
  connect();
  client_->pause_reading();
  send(kGet);
  settle();
  client_->close();
  settle();
  EXPECT_EQ(flush_calls, 1);
  EXPECT_EQ(close_calls, 1);
  EXPECT_EQ(stats().stream_errors, 0u);
  EXPECT_EQ(log.text(), "");
}

// Found by a probe: flush() after finish() reported OK at once, with the whole response still
// queued for a client that was not reading. It now says it cannot tell; finish(done) does.
TEST_F(HTTPServerAsyncCloseTest, FinishWithACallbackWaitsForTheLastBytes) {
  ASSERT_NO_FATAL_FAILURE(start_stalled_response());
  int calls = 0;
  absl::Status finished;
  bool all_received = false;
  ASSERT_TRUE(stream_
                  ->finish([&](absl::Status s) {
                    ++calls;
                    finished = s;
                    all_received = received_.size() > kBig;
                  })
                  .ok());
  absl::Status late_flush;
  stream_->flush([&](absl::Status s) { late_flush = s; });
  EXPECT_TRUE(late_flush.ok());  // never inside the call
  settle();
  EXPECT_EQ(late_flush,
            absl::FailedPreconditionError(
                "HTTP response already finished (finish(done) tells when it was sent)"));
  EXPECT_EQ(calls, 0);  // the bytes wait for the reader
  client_->resume_reading();
  wait_for([&] { return absl::EndsWith(received_, "0\r\n\r\n"); });
  settle();
  EXPECT_EQ(calls, 1);
  EXPECT_TRUE(finished.ok()) << finished;
  EXPECT_FALSE(all_received);  // in the kernel, not yet all read by the client
  EXPECT_FALSE(stream_->closed());
  EXPECT_EQ(close_calls_, 0);
}

TEST_F(HTTPServerAsyncCloseTest, FinishWithACallbackReportsAConnectionThatWentFirst) {
  ASSERT_NO_FATAL_FAILURE(start_stalled_response());
  absl::Status finished;
  int calls = 0;
  ASSERT_TRUE(stream_
                  ->finish([&](absl::Status s) {
                    ++calls;
                    finished = s;
                  })
                  .ok());
  settle();
  client_->close();
  settle();
  ASSERT_EQ(calls, 1);
  EXPECT_EQ(finished.code(), absl::StatusCode::kUnavailable) << finished;
  EXPECT_TRUE(absl::StartsWith(finished.message(), "HTTP connection closed: ")) << finished;
  EXPECT_EQ(close_calls_, 0);  // finished: the close callback never runs
  EXPECT_EQ(stats().responses, 1u);
}

// A finish(done) whose bytes still wait when the next request's deferred response fails: done
// reports the connection that went, not that other response's failure. Regression: it got the
// failure of whichever response the connection was serving when the write failed.
TEST_F(HTTPServerAsyncCloseTest, FinishWithACallbackIgnoresTheNextResponsesFailure) {
  ASSERT_TRUE(start_deferred(kGet));
  client_->pause_reading();
  // Just past what the sockets hold: a few bytes stay queued, too few to stop the reading.
  while (stream_->write_buffer_size() == 0) {
    ASSERT_TRUE(stream_->write(std::string(4096, 'x')).ok());
    settle();
  }
  absl::Status finished;
  int calls = 0;
  ASSERT_TRUE(stream_
                  ->finish([&](absl::Status s) {
                    ++calls;
                    finished = s;
                  })
                  .ok());
  const std::shared_ptr<HTTPResponseStream> first = stream_;
  send(kGet);
  settle();
  ASSERT_NE(stream_, first) << "the second request was not read";
  ASSERT_TRUE(stream_->write("partial").ok());
  ::ioloop::testing::ScopedLogCapture log;
  stream_->abort(absl::InternalError("the second response failed"));
  settle();
  client_->close();
  settle();
  ASSERT_EQ(calls, 1);
  EXPECT_EQ(finished.code(), absl::StatusCode::kUnavailable) << finished;
  EXPECT_TRUE(absl::StartsWith(finished.message(), "HTTP connection closed")) << finished;
}

// The connection closes right after a close-delimited (HTTP/1.0) response: its bytes went.
TEST_F(HTTPServerAsyncCloseTest, FinishWithACallbackEndingTheConnectionIsOk) {
  ASSERT_TRUE(start_deferred("GET /a HTTP/1.0\r\n\r\n"));
  ASSERT_TRUE(stream_->write("body").ok());
  absl::Status finished = absl::UnknownError("not called");
  ASSERT_TRUE(stream_->finish([&](absl::Status s) { finished = s; }).ok());
  EXPECT_EQ(read_to_eof(), "HTTP/1.0 200 OK\r\nDate: D\r\nConnection: close\r\n\r\nbody");
  settle();
  EXPECT_TRUE(finished.ok()) << finished;
  EXPECT_EQ(close_calls_, 0);
}

TEST_F(HTTPServerAsyncCloseTest, FinishThatFailsGivesItsCallbackTheError) {
  ASSERT_TRUE(start_deferred(kGet));
  stream_->head().set_header("Content-Length", "5");
  ASSERT_TRUE(stream_->write("abc").ok());
  absl::Status finished;
  const absl::Status s = stream_->finish([&](absl::Status st) { finished = st; });
  EXPECT_EQ(s, absl::InvalidArgumentError(
                   "HTTP response finished with 2 bytes of its Content-Length missing"));
  EXPECT_TRUE(finished.ok());  // never inside the call
  settle();
  EXPECT_EQ(finished, s);
  absl::Status again;
  EXPECT_EQ(stream_->finish([&](absl::Status st) { again = st; }), s);  // closed: its status
  settle();
  EXPECT_EQ(again, s);
}

// Found by a probe: the close callback was scheduled through a weak reference, so a failure
// that dropped the stream's last reference (the timer holding it returned) lost it.
TEST_F(HTTPServerAsyncCloseTest, FailedResponseRunsTheCloseCallbackWhenItsLastReferenceGoes) {
  absl::Status why;
  int calls = 0;
  start_manual_server([&](const HTTPRequest&, HTTPResponseWriter& w) {
    w.set_header("Content-Length", "3");
    std::shared_ptr<HTTPResponseStream> s = w.defer();
    s->set_close_callback([&](absl::Status st) {
      ++calls;
      why = st;
    });
    s->loop().add_callback([s]() mutable {
      EXPECT_FALSE(s->write("toolong").ok());
      s.reset();  // the only reference
    });
  });
  connect();
  send(kGet);
  EXPECT_EQ(read_to_eof(), error_response(500, "Internal Server Error"));
  settle();
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(why, absl::InvalidArgumentError(
                     "HTTP response write of 7 bytes exceeds its Content-Length 3"));
  EXPECT_EQ(stats().stream_errors, 1u);
}

// Content-Length misuse is a handler error, logged like the others (rate-limited), not only
// counted.
TEST_F(HTTPServerAsyncCloseTest, ContentLengthMisuseIsLogged) {
  ::ioloop::testing::ScopedLogCapture log;
  ASSERT_TRUE(start_deferred(kGet));
  stream_->head().set_header("Content-Length", "5");
  EXPECT_FALSE(stream_->finish().ok());
  EXPECT_EQ(read_to_eof(), error_response(500, "Internal Server Error"));
  EXPECT_EQ(stats().stream_errors, 1u);
  EXPECT_NE(log.text().find("HTTP response finished after 0 of its Content-Length 5 bytes"),
            std::string::npos)
      << log.text();
}

}  // namespace
}  // namespace ioloop::net
