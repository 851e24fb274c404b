// File: tests/net/http/http_client_testing.h
// Shared by the HTTPClient suites: a fixture whose loop runs on a ManualClock (timeouts fire
// exactly at their deadlines, and the loop jumps the clock instead of sleeping, so no test waits
// on the wall clock), a synchronous fetch helper, the project's HTTPServer as a peer, and a
// RawServer whose connections the test drives byte by byte.
//
// The manual clock is safe here because every peer lives on the test's own loop: loopback
// delivers bytes inside send(), so the loop only finds "nothing ready" when everything waits for
// a timeout.
#ifndef IOLOOP_TESTS_NET_HTTP_HTTP_CLIENT_TESTING_H_
#define IOLOOP_TESTS_NET_HTTP_HTTP_CLIENT_TESTING_H_

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "ioloop/io_loop.h"
#include "ioloop/net/http/http_client.h"
#include "ioloop/net/http/http_server.h"
#include "ioloop/net/io_stream.h"
#include "ioloop/net/tcp_server.h"
#include "ioloop/time.h"

namespace ioloop::net {

// The smallest complete response, which RawServer tests write when only success matters.
inline constexpr char kOkResponse[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

// A TCP server whose connections the test drives: it records what each one received and lets
// the test write exact bytes (or close/reset) whenever it likes.
class RawServer {
 public:
  struct Conn {
    std::shared_ptr<IOStream> stream;
    std::string received;
    bool eof = false;
    // Complete request heads received so far (counts "\r\n\r\n").
    size_t heads() const {
      size_t n = 0;
      for (size_t p = 0; (p = received.find("\r\n\r\n", p)) != std::string::npos; p += 4) ++n;
      return n;
    }
  };

  explicit RawServer(IOLoop& loop, std::function<void()> on_any = nullptr)
      : on_any_(std::move(on_any)),
        server_(loop, [this](std::shared_ptr<IOStream> s, const SocketAddress&) { accept(s); }) {
    EXPECT_TRUE(server_.listen(0, "127.0.0.1").ok());
    EXPECT_TRUE(server_.start().ok());
  }

  uint16_t port() const { return server_.port(); }
  std::string url(absl::string_view path = "/") const {
    return absl::StrCat("http://127.0.0.1:", port(), path);
  }
  size_t connections() const { return conns_.size(); }
  Conn& conn(size_t i) { return *conns_.at(i); }
  Conn& last() { return *conns_.back(); }

  // Called after each read on a connection (the test's hook to answer).
  std::function<void(Conn&)> on_data;

 private:
  void accept(std::shared_ptr<IOStream> s) {
    conns_.push_back(std::make_unique<Conn>());
    Conn* c = conns_.back().get();
    c->stream = s;
    if (on_any_) on_any_();
    // The stream's last callbacks may run after this server is gone (the loop is shared).
    s->read_streaming(
        [this, c, alive = std::weak_ptr<int>(alive_)](absl::string_view chunk) {
          if (alive.expired()) return;
          absl::StrAppend(&c->received, chunk);
          if (on_data) on_data(*c);
          if (on_any_) on_any_();
        },
        [this, c, alive = std::weak_ptr<int>(alive_)](absl::StatusOr<std::string>) {
          if (alive.expired()) return;
          c->eof = true;
          if (on_data) on_data(*c);
          if (on_any_) on_any_();
        });
  }

  std::shared_ptr<int> alive_ = std::make_shared<int>(0);
  std::function<void()> on_any_;
  std::vector<std::unique_ptr<Conn>> conns_;
  TCPServer server_;
};

class HTTPClientTest : public ::testing::Test {
 protected:
  // Without the manual clock (a peer in another process or thread), waits are bounded by 10 s
  // of real time instead.
  explicit HTTPClientTest(bool manual_clock = true) : manual_clock_(manual_clock) {
    IOLoop::Options options;
    if (manual_clock) options.clock = &clock_;
    loop_ = std::make_unique<IOLoop>(options);
  }

  IOLoop& loop() { return *loop_; }

  // Runs the loop (the manual clock jumping to each deadline when nothing else is ready) until
  // `pred` holds. It is checked by check() (called by the helpers' callbacks and RawServer) and
  // every 100 ms. Fails if `limit` passes first (default: 1000 s of manual time, or 10 s of real
  // time without the manual clock).
  bool wait_for(std::function<bool()> pred, absl::Duration limit = absl::ZeroDuration()) {
    if (limit == absl::ZeroDuration())
      limit = manual_clock_ ? absl::Seconds(1000) : absl::Seconds(10);
    if (pred()) return true;
    pred_ = std::move(pred);
    bool timed_out = false;
    TimeoutHandle t = loop().call_later(limit, [&] {
      timed_out = true;
      loop().stop();
    });
    poll();
    loop().start();
    loop().remove_timeout(t);
    loop().remove_timeout(poll_timer_);
    pred_ = nullptr;
    EXPECT_FALSE(timed_out) << "wait_for: the condition never held";
    return !timed_out;
  }
  void check() {
    if (pred_ && pred_()) {
      pred_ = nullptr;
      loop().stop();
    }
  }
  void poll() {
    poll_timer_ = loop().call_later(absl::Milliseconds(100), [this] {
      check();
      if (pred_) poll();
    });
  }

  // Runs one-iteration passes until one does nothing (no event, callback or timer), without
  // letting the manual clock jump: every byte either side could read has been acted on.
  void settle() {
    for (int i = 0; i < 100000; ++i) {
      const IOLoop::Stats before = loop().stats();
      loop().stop();
      loop().start();
      const IOLoop::Stats after = loop().stats();
      if (after.events_dispatched == before.events_dispatched &&
          after.callbacks_run == before.callbacks_run &&
          after.timers_fired == before.timers_fired) {
        return;
      }
    }
    ADD_FAILURE() << "the loop did not settle";
  }

  // Starts a fetch whose result lands in `*out` (then check()).
  uint64_t start(HTTPClient& client, HTTPClientRequest request,
                 std::optional<absl::StatusOr<HTTPClientResponse>>* out) {
    return client.fetch(std::move(request), [this, out](absl::StatusOr<HTTPClientResponse> r) {
      *out = std::move(r);
      check();
    });
  }

  absl::StatusOr<HTTPClientResponse> fetch(HTTPClient& client, HTTPClientRequest request) {
    std::optional<absl::StatusOr<HTTPClientResponse>> result;
    start(client, std::move(request), &result);
    if (!wait_for([&] { return result.has_value(); })) {
      return absl::InternalError("the fetch never completed");
    }
    return *std::move(result);
  }

  absl::StatusOr<HTTPClientResponse> get(HTTPClient& client, std::string url) {
    HTTPClientRequest request;
    request.url = std::move(url);
    return fetch(client, std::move(request));
  }

  // The project's HTTPServer on this loop.
  void start_server(HTTPServer::Handler handler, HTTPServerOptions options = {}) {
    server_ = std::make_unique<HTTPServer>(loop(), std::move(handler), std::move(options));
    ASSERT_TRUE(server_->listen(0, "127.0.0.1").ok());
    ASSERT_TRUE(server_->start().ok());
  }
  std::string url(absl::string_view path = "/") const {
    return absl::StrCat("http://127.0.0.1:", server_->port(), path);
  }
  // A RawServer on this loop whose events check() the pending wait_for().
  std::unique_ptr<RawServer> raw_server() {
    return std::make_unique<RawServer>(loop(), [this] { check(); });
  }

  const bool manual_clock_;
  ManualClock clock_;
  std::unique_ptr<IOLoop> loop_;
  std::function<bool()> pred_;
  TimeoutHandle poll_timer_;
  std::unique_ptr<HTTPServer> server_;
};

// The same fixture on the real clock, for a peer outside the test's loop, or for bulk transfers:
// a large write can leave the kernel with loopback work it finishes after send() returned (TCP
// small queues), and a manual clock would jump to a timeout over it. Its tests assert no
// durations; the real-time limits only bound a hang.
class HTTPClientRealClockTest : public HTTPClientTest {
 protected:
  HTTPClientRealClockTest() : HTTPClientTest(/*manual_clock=*/false) {}
};

// Answers the first request on each connection; on the second request of connection 0 it
// closes without a byte (EOF, or a reset with `reset`), as a server whose keep-alive timeout
// fires just as the request arrives. Later connections answer every request.
inline std::unique_ptr<RawServer> racy_server(std::unique_ptr<RawServer> raw, bool reset) {
  RawServer* r = raw.get();
  raw->on_data = [r, reset](RawServer::Conn& c) {
    if (c.eof) return;
    const bool first_conn = &c == &r->conn(0);
    if (first_conn && c.heads() == 2) {
      if (reset) (void)c.stream->socket().set_linger_zero();
      c.stream->close();
      return;
    }
    c.stream->write(kOkResponse);
  };
  return raw;
}

// Answers "<method> <target>|<body>" with the request's Content-Type echoed.
inline void echo_handler(const HTTPRequest& r, HTTPResponseWriter& w) {
  w.set_header("Content-Type", "text/plain");
  w.set_body(absl::StrCat(r.method(), " ", r.target(), "|", r.body()));
}

}  // namespace ioloop::net

#endif  // IOLOOP_TESTS_NET_HTTP_HTTP_CLIENT_TESTING_H_
