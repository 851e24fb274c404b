// File: tests/net/http/http_server_async_test.cc
// Deferred responses (HTTPResponseWriter::defer, HTTPResponseStream): completion from a loop
// timer and from another thread, exact chunked / Content-Length / HTTP/1.0 close-delimited
// bytes, Content-Length misuse both ways, pipelined order behind a slow response, exceptions
// and abandoned streams. Timeouts (response_timeout, idle) and slow readers are in
// http_server_async_flow_test.cc.
#include <sys/socket.h>

#include <atomic>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "ioloop/net/http/http_response_stream.h"
#include "ioloop/net/http/http_server.h"
#include "ioloop/net/socket.h"
#include "ioloop/net/socket_address.h"
#include "net/http/http_server_testing.h"

namespace ioloop::net {
namespace {

constexpr char kGet[] = "GET /a HTTP/1.1\r\nHost: x\r\n\r\n";

std::string chunked_head(absl::string_view extra = "") {
  return absl::StrCat("HTTP/1.1 200 OK\r\nDate: D\r\nContent-Type: text/plain\r\n", extra,
                      "Transfer-Encoding: chunked\r\n\r\n");
}

class HTTPServerAsyncTest : public HTTPServerTest {
 protected:
  // A handler that defers and keeps the stream in stream_.
  HTTPServer::Handler keep() {
    return [this](const HTTPRequest&, HTTPResponseWriter& w) {
      w.set_header("Content-Type", "text/plain");
      stream_ = w.defer();
      ASSERT_NE(stream_, nullptr);
      ++deferred_;
    };
  }
  std::shared_ptr<HTTPResponseStream> stream_;
  int deferred_ = 0;
};

TEST_F(HTTPServerAsyncTest, FinishFromATimerSendsChunks) {
  start_server([this](const HTTPRequest&, HTTPResponseWriter& w) {
    w.set_header("Content-Type", "text/plain");
    std::shared_ptr<HTTPResponseStream> s = w.defer();
    loop().call_later(absl::Milliseconds(1), [s] {
      EXPECT_TRUE(s->write("hello ").ok());
      EXPECT_TRUE(s->write("").ok());  // sends nothing (an empty chunk would end the body)
      EXPECT_TRUE(s->write("world").ok());
      EXPECT_TRUE(s->finish().ok());
      EXPECT_EQ(s->finish().code(), absl::StatusCode::kFailedPrecondition);
      EXPECT_FALSE(s->closed());
    });
  });
  connect();
  send(kGet);
  const std::string want = chunked_head() + "6\r\nhello \r\n5\r\nworld\r\n0\r\n\r\n";
  wait_for([&] { return normalize(received_) == want || eof_; });
  EXPECT_EQ(normalize(received_), want);
  // Keep-alive: the connection goes on.
  received_.clear();
  send(kGet);
  wait_for([&] { return normalize(received_) == want || eof_; });
  EXPECT_EQ(normalize(received_), want);
  EXPECT_EQ(stats().deferred_responses, 2u);
  EXPECT_EQ(stats().responses, 2u);
}

TEST_F(HTTPServerAsyncTest, FinishFromAnotherThreadThroughAddCallback) {
  std::thread worker;
  start_server([&](const HTTPRequest&, HTTPResponseWriter& w) {
    w.set_header("Content-Length", "11");
    std::shared_ptr<HTTPResponseStream> s = w.defer();
    worker = std::thread([s] {
      std::string body = "from thread";  // computed off the loop
      s->loop().add_callback([s, body] {
        EXPECT_TRUE(s->write(body).ok());
        EXPECT_TRUE(s->finish().ok());
      });
    });
  });
  connect();
  send(kGet);
  const std::string want = "HTTP/1.1 200 OK\r\nDate: D\r\nContent-Length: 11\r\n\r\nfrom thread";
  wait_for([&] { return normalize(received_) == want || eof_; });
  EXPECT_EQ(normalize(received_), want);
  worker.join();
}

// 1xx before the final response (103 Early Hints, or one a proxy forwards: RFC 9110 §15.2):
// exact bytes, unsafe fields dropped; nothing to an HTTP/1.0 client; too late once the head
// went; never 101.
TEST_F(HTTPServerAsyncTest, InterimResponsesComeBeforeTheHead) {
  std::vector<absl::Status> results;
  start_server([&](const HTTPRequest&, HTTPResponseWriter& w) {
    w.set_header("Content-Length", "2");
    std::shared_ptr<HTTPResponseStream> s = w.defer();
    HTTPHeaders hints;
    hints.add("Link", "</s.css>; rel=preload");
    hints.add("Content-Length", "9");  // framing: never in a 1xx
    hints.add("X-Bad", std::string("a\0b", 3));
    results.push_back(s->send_interim(103, "", hints));
    results.push_back(s->send_interim(102, "Still Here", {}));
    results.push_back(s->send_interim(101, "", {}));
    results.push_back(s->send_interim(200, "", {}));
    loop().call_later(absl::Milliseconds(1), [s, &results] {
      EXPECT_TRUE(s->write("ok").ok());
      results.push_back(s->send_interim(103, "", {}));
      EXPECT_TRUE(s->finish().ok());
    });
  });
  connect();
  send(kGet);
  const std::string want =
      "HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n"
      "HTTP/1.1 102 Still Here\r\n\r\n"
      "HTTP/1.1 200 OK\r\nDate: D\r\nContent-Length: 2\r\n\r\nok";
  wait_for([&] { return normalize(received_) == want || eof_; });
  EXPECT_EQ(normalize(received_), want);
  ASSERT_EQ(results.size(), 5u);
  EXPECT_TRUE(results[0].ok()) << results[0];
  EXPECT_TRUE(results[1].ok()) << results[1];
  EXPECT_EQ(results[2].code(), absl::StatusCode::kInvalidArgument) << results[2];
  EXPECT_EQ(results[3].code(), absl::StatusCode::kInvalidArgument) << results[3];
  EXPECT_EQ(results[4].code(), absl::StatusCode::kFailedPrecondition) << results[4];
  // HTTP/1.0: the 1xx is not sent (and not an error).
  results.clear();
  received_.clear();
  send("GET /a HTTP/1.0\r\n\r\n");
  wait_for([&] { return eof_; });
  EXPECT_EQ(normalize(received_),
            "HTTP/1.0 200 OK\r\nDate: D\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
  ASSERT_FALSE(results.empty());
  EXPECT_TRUE(results[0].ok()) << results[0];
}

TEST_F(HTTPServerAsyncTest, FinishInsideTheHandlerIsLikeASynchronousResponse) {
  start_manual_server([](const HTTPRequest& r, HTTPResponseWriter& w) {
    w.set_body("pre-");  // a body set on the writer is the first write
    std::shared_ptr<HTTPResponseStream> s = w.defer();
    EXPECT_EQ(w.defer(), s);
    EXPECT_TRUE(s->write(std::string(r.target())).ok());
    EXPECT_TRUE(s->finish().ok());
  });
  connect();
  send("GET /1 HTTP/1.1\r\nHost: x\r\n\r\nGET /2 HTTP/1.1\r\nHost: x\r\n\r\n");
  const std::string one = "HTTP/1.1 200 OK\r\nDate: D\r\nTransfer-Encoding: chunked\r\n\r\n";
  const std::string want = absl::StrCat(one, "4\r\npre-\r\n2\r\n/1\r\n0\r\n\r\n", one,
                                        "4\r\npre-\r\n2\r\n/2\r\n0\r\n\r\n");
  wait_for([&] { return normalize(received_) == want || eof_; });
  EXPECT_EQ(normalize(received_), want);
  EXPECT_EQ(stats().writes, 1u);  // both responses in one send, as synchronous ones
}

// As HTTPServerTest.ATwoHundredToConnectHasNoFramingAndNoBody, deferred: no chunked framing,
// and the writes are dropped like a HEAD's body.
TEST_F(HTTPServerAsyncTest, ATwoHundredToConnectHasNoFramingAndNoBody) {
  start_manual_server(keep());
  connect();
  send("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n");
  settle();
  ASSERT_NE(stream_, nullptr);
  EXPECT_TRUE(stream_->write("later").ok());
  EXPECT_TRUE(stream_->finish().ok());
  EXPECT_EQ(read_to_eof(),
            "HTTP/1.1 200 OK\r\nDate: D\r\nContent-Type: text/plain\r\nConnection: "
            "close\r\n\r\n");
}

TEST_F(HTTPServerAsyncTest, Http10IsCloseDelimited) {
  start_manual_server(keep());
  connect();
  send("GET / HTTP/1.0\r\n\r\n");
  settle();
  ASSERT_NE(stream_, nullptr);
  EXPECT_EQ(stream_->version_minor(), 0);
  EXPECT_TRUE(stream_->write("abc").ok());
  settle();
  EXPECT_EQ(normalize(received_),
            "HTTP/1.0 200 OK\r\nDate: D\r\nContent-Type: text/plain\r\nConnection: "
            "close\r\n\r\nabc");
  EXPECT_FALSE(eof_);
  EXPECT_TRUE(stream_->write("def").ok());
  EXPECT_TRUE(stream_->finish().ok());
  EXPECT_EQ(read_to_eof(),
            "HTTP/1.0 200 OK\r\nDate: D\r\nContent-Type: text/plain\r\nConnection: "
            "close\r\n\r\nabcdef");
}

TEST_F(HTTPServerAsyncTest, HeadAndNoContentGetNoBody) {
  start_manual_server([this](const HTTPRequest& r, HTTPResponseWriter& w) {
    if (r.target() == "/204") w.set_status(204);
    stream_ = w.defer();
    EXPECT_TRUE(stream_->write("discarded").ok());
    EXPECT_TRUE(stream_->finish().ok());
  });
  connect();
  send("HEAD / HTTP/1.1\r\nHost: x\r\n\r\nGET /204 HTTP/1.1\r\nHost: x\r\n\r\n");
  settle();
  EXPECT_EQ(normalize(received_),
            "HTTP/1.1 200 OK\r\nDate: D\r\nTransfer-Encoding: chunked\r\n\r\n"
            "HTTP/1.1 204 No Content\r\nDate: D\r\n\r\n");
  EXPECT_FALSE(eof_);
}

// As a synchronous 205 (found by a review: it went out with its body, chunked): RFC 9110
// §15.3.6 forbids content in it and asks for "Content-Length: 0".
TEST_F(HTTPServerAsyncTest, ResetContentHasAnEmptyBody) {
  start_manual_server([this](const HTTPRequest&, HTTPResponseWriter& w) {
    w.set_status(205);
    stream_ = w.defer();
    EXPECT_TRUE(stream_->write("discarded").ok());
    EXPECT_TRUE(stream_->finish().ok());
  });
  connect();
  send(kGet);
  settle();
  EXPECT_EQ(normalize(received_),
            "HTTP/1.1 205 Reset Content\r\nDate: D\r\nContent-Length: 0\r\n\r\n");
  EXPECT_FALSE(eof_);
}

// Found by http_connection_fuzzer: finish() counted a HEAD response's Content-Length as
// missing body bytes and failed it.
TEST_F(HTTPServerAsyncTest, HeadWithContentLengthFinishesWithoutBody) {
  start_manual_server([this](const HTTPRequest&, HTTPResponseWriter& w) {
    w.set_header("Content-Length", "5");
    stream_ = w.defer();
  });
  connect();
  send("HEAD / HTTP/1.1\r\nHost: x\r\n\r\n");
  settle();
  EXPECT_TRUE(stream_->write("hello").ok());  // discarded
  EXPECT_TRUE(stream_->finish().ok());
  settle();
  EXPECT_EQ(normalize(received_), "HTTP/1.1 200 OK\r\nDate: D\r\nContent-Length: 5\r\n\r\n");
  EXPECT_FALSE(eof_);
  EXPECT_EQ(stats().stream_errors, 0u);
}

TEST_F(HTTPServerAsyncTest, WritePastContentLengthSendsNothingOfItAndCloses) {
  start_manual_server(keep());
  connect();
  send(kGet);
  settle();
  stream_->head().set_header("Content-Length", "5");
  EXPECT_TRUE(stream_->write("abc").ok());
  EXPECT_TRUE(stream_->head_sent());
  const absl::Status s = stream_->write("def");
  EXPECT_EQ(s, absl::InvalidArgumentError(
                   "HTTP response write of 3 bytes exceeds its Content-Length (2 bytes left)"));
  EXPECT_TRUE(stream_->closed());
  EXPECT_EQ(stream_->write("x"), s);
  EXPECT_EQ(read_to_eof(),
            "HTTP/1.1 200 OK\r\nDate: D\r\nContent-Type: text/plain\r\nContent-Length: "
            "5\r\n\r\nabc");
  EXPECT_EQ(stats().stream_errors, 1u);
}

TEST_F(HTTPServerAsyncTest, FinishShortOfContentLengthCloses) {
  start_manual_server(keep());
  connect();
  send(kGet);
  settle();
  stream_->head().set_header("Content-Length", "5");
  EXPECT_TRUE(stream_->write("abc").ok());
  EXPECT_EQ(stream_->finish(),
            absl::InvalidArgumentError(
                "HTTP response finished with 2 bytes of its Content-Length missing"));
  EXPECT_EQ(read_to_eof(),
            "HTTP/1.1 200 OK\r\nDate: D\r\nContent-Type: text/plain\r\nContent-Length: "
            "5\r\n\r\nabc");
  EXPECT_EQ(stats().stream_errors, 1u);
}

TEST_F(HTTPServerAsyncTest, ContentLengthMisuseBeforeAnyByteIs500) {
  start_manual_server(keep());
  connect();
  send(kGet);
  settle();
  stream_->head().set_header("Content-Length", "5");
  EXPECT_EQ(stream_->finish(), absl::InvalidArgumentError(
                                   "HTTP response finished after 0 of its Content-Length 5 bytes"));
  EXPECT_EQ(read_to_eof(), error_response(500, "Internal Server Error"));
  EXPECT_EQ(stats().stream_errors, 1u);
}

TEST_F(HTTPServerAsyncTest, PipelinedRequestWaitsForTheSlowFirstResponse) {
  std::vector<std::string> events;
  start_manual_server([&](const HTTPRequest& r, HTTPResponseWriter& w) {
    events.push_back(absl::StrCat("handler ", r.target()));
    if (r.target() == "/slow") {
      stream_ = w.defer();
    } else {
      w.set_body("fast");
    }
  });
  connect();
  send("GET /slow HTTP/1.1\r\nHost: x\r\n\r\nGET /fast HTTP/1.1\r\nHost: x\r\n\r\n");
  settle();
  EXPECT_EQ(events, std::vector<std::string>{"handler /slow"});
  EXPECT_EQ(received_, "");
  EXPECT_TRUE(stream_->write("slow").ok());
  settle();
  EXPECT_EQ(events, std::vector<std::string>{"handler /slow"});
  events.push_back("finish");
  EXPECT_TRUE(stream_->finish().ok());
  settle();
  EXPECT_EQ(events, (std::vector<std::string>{"handler /slow", "finish", "handler /fast"}));
  EXPECT_EQ(normalize(received_),
            "HTTP/1.1 200 OK\r\nDate: D\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nslow\r\n0\r\n\r\n"
            "HTTP/1.1 200 OK\r\nDate: D\r\nContent-Length: 4\r\n\r\nfast");
  EXPECT_FALSE(eof_);
}

TEST_F(HTTPServerAsyncTest, ExceptionInDeferredCodeBeforeAnyByteIs500) {
  start_manual_server(keep());
  connect();
  send(kGet);
  settle();
  const uint64_t loop_exceptions = loop().stats().exceptions;
  const absl::Status s = stream_->run([] { throw std::runtime_error("boom"); });
  EXPECT_EQ(s, absl::InternalError("exception in HTTP deferred response: boom"));
  EXPECT_TRUE(stream_->closed());
  EXPECT_EQ(read_to_eof(), error_response(500, "Internal Server Error"));
  EXPECT_EQ(stats().handler_exceptions, 1u);
  EXPECT_EQ(loop().stats().exceptions, loop_exceptions + 1);
}

TEST_F(HTTPServerAsyncTest, ExceptionInDeferredCodeAfterBytesCloses) {
  start_manual_server(keep());
  connect();
  send(kGet);
  settle();
  absl::Status closed_with;
  stream_->set_close_callback([&](absl::Status st) { closed_with = st; });
  EXPECT_TRUE(stream_->write("part").ok());
  EXPECT_FALSE(stream_
                   ->run([&] {
                     stream_->write("more").IgnoreError();
                     throw std::runtime_error("boom");
                   })
                   .ok());
  EXPECT_EQ(read_to_eof(), chunked_head() + "4\r\npart\r\n4\r\nmore\r\n");
  EXPECT_EQ(closed_with, absl::InternalError("exception in HTTP deferred response: boom"));
  EXPECT_EQ(stats().handler_exceptions, 1u);
}

TEST_F(HTTPServerAsyncTest, HandlerThrowingAfterDeferIs500) {
  start_manual_server([](const HTTPRequest&, HTTPResponseWriter& w) {
    std::shared_ptr<HTTPResponseStream> s = w.defer();
    throw std::runtime_error("after defer");
  });
  connect();
  send(kGet);
  EXPECT_EQ(read_to_eof(), error_response(500, "Internal Server Error"));
  EXPECT_EQ(stats().handler_exceptions, 1u);
  EXPECT_EQ(stats().stream_errors, 0u);  // the unwinding dropped the stream: counted once
}

// Found by a probe: the same unwinding, but the handler catches the exception itself. The
// stream was dropped while an exception was in flight, so it was left for answer() to count,
// which saw no exception: the 500 went out neither logged nor counted.
TEST_F(HTTPServerAsyncTest, StreamDroppedByAnExceptionTheHandlerCatchesIsAStreamError) {
  start_manual_server([](const HTTPRequest&, HTTPResponseWriter& w) {
    try {
      std::shared_ptr<HTTPResponseStream> s = w.defer();
      throw std::runtime_error("caught by the handler");
    } catch (const std::runtime_error&) {
    }
  });
  connect();
  send(kGet);
  EXPECT_EQ(read_to_eof(), error_response(500, "Internal Server Error"));
  EXPECT_EQ(stats().handler_exceptions, 0u);
  EXPECT_EQ(stats().stream_errors, 1u);
}

TEST_F(HTTPServerAsyncTest, DroppedStreamIs500) {
  start_manual_server(keep());
  connect();
  send(kGet);
  settle();
  stream_.reset();  // e.g. an exception unwound through the callback that held it
  EXPECT_EQ(read_to_eof(), error_response(500, "Internal Server Error"));
  EXPECT_EQ(stats().stream_errors, 1u);
}

// Found by a threading probe: the last reference dropped on a worker thread (its copy of the
// stream, after posting the rest) failed the response from that thread, racing the loop
// (ThreadSanitizer: the connection's state written from both). It now fails on the loop.
TEST_F(HTTPServerAsyncTest, DroppedOnAnotherThreadIs500FromTheLoop) {
  start_manual_server(keep());
  connect();
  send(kGet);
  settle();
  ASSERT_NE(stream_, nullptr);
  std::thread worker([s = std::move(stream_)]() mutable { s.reset(); });
  EXPECT_EQ(read_to_eof(), error_response(500, "Internal Server Error"));  // the loop runs
  worker.join();
  EXPECT_EQ(stats().stream_errors, 1u);
}

// `count` blocking connections to 127.0.0.1:port, each of which has sent kGet.
std::vector<Socket> clients_sending_a_get(uint16_t port, int count) {
  absl::StatusOr<SocketAddress> to = SocketAddress::parse("127.0.0.1", port);
  EXPECT_TRUE(to.ok());
  std::vector<Socket> clients;
  for (int i = 0; to.ok() && i < count; ++i) {
    Socket c(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    EXPECT_EQ(::connect(c.fd(), to->get(), to->length()), 0);
    EXPECT_EQ(::send(c.fd(), kGet, sizeof kGet - 1, MSG_NOSIGNAL),
              static_cast<ssize_t>(sizeof kGet - 1));
    clients.push_back(std::move(c));
  }
  return clients;
}

// Found by a threading probe: with start(N > 1), destroying the server stopped each worker
// loop one iteration after closing its connections, before the close callbacks of pending
// deferred responses (a later hop) ran; a callback that held its own stream leaked it.
TEST(HTTPServerWorkersTest, DestroyingTheServerRunsPendingResponsesCloseCallbacks) {
  constexpr int kClients = 4;
  IOLoop loop;
  std::atomic<int> deferred{0};
  std::atomic<int> closed{0};
  auto server = std::make_unique<HTTPServer>(loop, [&](const HTTPRequest&, HTTPResponseWriter& w) {
    std::shared_ptr<HTTPResponseStream> s = w.defer();
    // Holds its own stream, as a handler that keeps the response with its callback does.
    s->set_close_callback([&closed, s](absl::Status status) {
      EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable) << status;
      ++closed;
    });
    ++deferred;
  });
  ASSERT_TRUE(server->listen(0, "127.0.0.1").ok());
  ASSERT_TRUE(server->start(2).ok());
  std::vector<Socket> clients = clients_sending_a_get(server->port(), kClients);
  while (deferred.load() < kClients) std::this_thread::yield();  // the workers' handlers ran
  server.reset();                                                // joins the workers
  EXPECT_EQ(closed.load(), kClients);
}

// The same on the caller's loop (start(1)): stop(true) closes the connections, and the close
// callbacks of their pending responses come a hop or two later. The documented shutdown
// (http_server.h) runs the loop until they have: stop_when_idle(), then start().
TEST(HTTPServerShutdownTest, StopThenStopWhenIdleRunsPendingResponsesCloseCallbacks) {
  constexpr int kClients = 3;
  IOLoop loop;
  int deferred = 0;
  int closed = 0;
  HTTPServer server(loop, [&](const HTTPRequest&, HTTPResponseWriter& w) {
    std::shared_ptr<HTTPResponseStream> s = w.defer();
    s->set_close_callback([&closed, s](absl::Status status) {
      EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable) << status;
      ++closed;
    });
    if (++deferred == kClients) loop.stop();
  });
  ASSERT_TRUE(server.listen(0, "127.0.0.1").ok());
  ASSERT_TRUE(server.start().ok());
  std::vector<Socket> clients = clients_sending_a_get(server.port(), kClients);
  loop.start();  // until the last handler deferred
  ASSERT_EQ(deferred, kClients);
  server.stop(/*close_connections=*/true);
  EXPECT_EQ(closed, 0);  // not yet: they come on later iterations
  loop.stop_when_idle();
  loop.start();
  EXPECT_EQ(closed, kClients);
}

TEST_F(HTTPServerAsyncTest, TimerCallbackThatThrowsDropsItsStream) {
  start_server([this](const HTTPRequest&, HTTPResponseWriter& w) {
    std::shared_ptr<HTTPResponseStream> s = w.defer();
    loop().call_later(absl::Milliseconds(1), [s] {
      s->write("x").IgnoreError();
      throw std::runtime_error("unwinds through the timer");
    });
  });
  connect();
  send(kGet);
  EXPECT_EQ(read_to_eof(),
            "HTTP/1.1 200 OK\r\nDate: D\r\nTransfer-Encoding: chunked\r\n\r\n"
            "1\r\nx\r\n");
  EXPECT_EQ(stats().stream_errors, 1u);
  EXPECT_GE(loop().stats().exceptions, 1u);
}

}  // namespace
}  // namespace ioloop::net
