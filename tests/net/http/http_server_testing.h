// File: tests/net/http/http_server_testing.h
// Shared by the HTTPServer suites: response builders and a normalizer for exact-byte
// comparisons, and a fixture that serves one end of a socketpair and reads the other. The
// fixture runs the server either as HTTPServer (real loop timers) or as the bare stream glue
// with a ManualHTTPClock, whose timeouts move only when the test calls advance().
#ifndef IOLOOP_TESTS_NET_HTTP_HTTP_SERVER_TESTING_H_
#define IOLOOP_TESTS_NET_HTTP_HTTP_SERVER_TESTING_H_

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "gtest/gtest.h"
#include "http/http_connection.h"
#include "http/http_server_state.h"
#include "http/manual_http_clock.h"
#include "ioloop/net/http/http_response_stream.h"
#include "ioloop/net/http/http_server.h"
#include "ioloop/net/io_stream.h"
#include "ioloop/net/socket.h"
#include "ioloop/net/transport.h"
#include "testing/loop_test_base.h"

namespace ioloop::net {

// True if `v` is an IMF-fixdate, e.g. "Sun, 06 Nov 1994 08:49:37 GMT" (RFC 9110 §5.6.7).
// Checked by hand: std::regex trips g++ 12's -Wmaybe-uninitialized at -O1.
inline bool is_http_date(absl::string_view v) {
  static constexpr absl::string_view kDays[] = {"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"};
  static constexpr absl::string_view kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                  "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  // "Www, DD Mmm YYYY HH:MM:SS GMT"
  constexpr absl::string_view kShape = "aaa, 00 aaa 0000 00:00:00 GMT";
  if (v.size() != kShape.size()) return false;
  for (size_t i = 0; i < v.size(); ++i) {
    if (kShape[i] == '0' ? (v[i] < '0' || v[i] > '9') : kShape[i] != 'a' && v[i] != kShape[i]) {
      return false;
    }
  }
  const auto in = [](absl::string_view x, const absl::string_view* list, size_t n) {
    for (size_t i = 0; i < n; ++i) {
      if (list[i] == x) return true;
    }
    return false;
  };
  return in(v.substr(0, 3), kDays, 7) && in(v.substr(8, 3), kMonths, 12) && v[5] <= '3' &&
         v[17] <= '2' && v[20] <= '5' && v[23] <= '6';
}

// Replaces each well-formed Date field with "Date: D"; fails if any Date field is malformed.
inline std::string normalize(const std::string& s) {
  std::string out;
  size_t pos = 0;
  while (true) {
    const size_t p = s.find("Date: ", pos);
    if (p == std::string::npos) break;
    const size_t eol = s.find("\r\n", p);
    const bool line_start = p == 0 || s[p - 1] == '\n';
    if (!line_start || eol == std::string::npos) {
      out.append(s, pos, p + 6 - pos);
      pos = p + 6;
      continue;
    }
    EXPECT_TRUE(is_http_date(absl::string_view(s).substr(p + 6, eol - p - 6)))
        << "malformed Date in: " << s;
    out.append(s, pos, p - pos);
    out.append("Date: D\r\n");
    pos = eol + 2;
  }
  out.append(s, pos, std::string::npos);
  return out;
}

inline std::string ok_response(absl::string_view body, absl::string_view extra = "",
                               absl::string_view version = "HTTP/1.1") {
  return absl::StrCat(version, " 200 OK\r\nDate: D\r\nContent-Type: text/plain\r\n",
                      "Content-Length: ", body.size(), "\r\n", extra, "\r\n", body);
}

// Feeds `pieces` to a fresh connection core on `shared`, one on_data() per piece (as the reads
// of one connection), and returns what it wrote, normalize()d. The core must close by the end.
inline std::string feed_core(const std::shared_ptr<HTTPServerState>& shared,
                             const std::vector<absl::string_view>& pieces) {
  HTTPConnectionCore core(shared);
  std::string bytes;
  bool closed = false;
  for (absl::string_view piece : pieces) {
    HTTPOutput out;
    core.on_data(piece, out);
    for (std::string& c : out.chunks) bytes += c;
    bytes += out.head;
    closed = closed || out.close;
  }
  EXPECT_TRUE(closed);
  return normalize(bytes);
}

inline std::string error_response(int status, absl::string_view reason,
                                  absl::string_view version = "HTTP/1.1") {
  return absl::StrCat(version, " ", status, " ", reason,
                      "\r\nDate: D\r\nContent-Type: text/plain\r\nContent-Length: ",
                      reason.size() + 1, "\r\nConnection: close\r\n\r\n", reason, "\n");
}

// Counts complete responses at the start of `data` (HEAD responses are not expected here
// unless `heads` says which positions are HEAD).
inline size_t count_responses(const std::string& data, const std::vector<bool>& heads = {}) {
  size_t pos = 0, n = 0;
  while (true) {
    size_t end = data.find("\r\n\r\n", pos);
    if (end == std::string::npos) return n;
    std::string head = data.substr(pos, end + 4 - pos);
    size_t length = 0;
    size_t cl = head.find("Content-Length: ");
    if (cl != std::string::npos) {
      size_t eol = head.find("\r\n", cl);
      EXPECT_TRUE(absl::SimpleAtoi(head.substr(cl + 16, eol - cl - 16), &length));
    }
    const bool is_head = n < heads.size() && heads[n];
    if (head.rfind("HTTP/1.1 100", 0) == 0 || is_head) length = 0;
    if (data.size() < end + 4 + length) return n;
    pos = end + 4 + length;
    ++n;
  }
}

inline void hello(const HTTPRequest&, HTTPResponseWriter& w) {
  w.set_header("Content-Type", "text/plain");
  w.set_body("Hello, world!");
}

// Answers with the target and the body: "<target>|<body>".
inline void echo(const HTTPRequest& r, HTTPResponseWriter& w) {
  w.set_header("Content-Type", "text/plain");
  w.set_body(absl::StrCat(r.target(), "|", r.body()));
}

class HTTPServerTest : public ::ioloop::testing::LoopTestBase {
 protected:
  void start_server(HTTPServer::Handler handler = hello, HTTPServerOptions options = {}) {
    server_ = std::make_unique<HTTPServer>(loop(), std::move(handler), std::move(options));
  }

  // The stream glue without HTTPServer, on a ManualHTTPClock: no timeout fires unless the
  // test calls advance().
  void start_manual_server(HTTPServer::Handler handler = hello, HTTPServerOptions options = {}) {
    shared_ = std::make_shared<HTTPServerState>(std::move(handler), std::move(options));
    clock_ = std::make_shared<ManualHTTPClock>();
    shared_->clock = clock_;
  }

  HTTPServer::Stats stats() const {
    return server_ ? server_->stats() : http_server_stats(*shared_);
  }

  // A new connection: the server serves one end of a socketpair (server_stream_), client_ is
  // the other.
  // With transports, each end speaks through its own (TLS: a server and a client transport
  // made for these fds, see connect_tls() in the tests that need it).
  void connect(std::function<std::unique_ptr<Transport>(int fd)> server_transport = nullptr,
               std::function<std::unique_ptr<Transport>(int fd)> client_transport = nullptr) {
    auto pair = Socket::pair();
    ASSERT_TRUE(pair.ok()) << pair.status();
    const int server_fd = pair->first.fd();
    const int client_fd = pair->second.fd();
    server_stream_ = IOStream::create(loop(), std::move(pair->first), {},
                                      server_transport ? server_transport(server_fd) : nullptr);
    if (server_) {
      ASSERT_TRUE(server_->serve(server_stream_).ok());
    } else {
      serve_http_connection(shared_, server_stream_);
    }
    client_ = IOStream::create(loop(), std::move(pair->second), {},
                               client_transport ? client_transport(client_fd) : nullptr);
    received_.clear();
    eof_ = false;
    end_status_ = absl::OkStatus();
    client_->read_streaming(
        [this](absl::string_view chunk) {
          absl::StrAppend(&received_, chunk);
          check();
        },
        [this](absl::StatusOr<std::string> end) {
          eof_ = true;
          end_status_ = end.status();
          check();
        });
  }

  void send(std::string bytes) { client_->write(std::move(bytes)); }

  // Runs the loop until `pred` holds (checked after each chunk and at EOF).
  void wait_for(std::function<bool()> pred) {
    pred_ = std::move(pred);
    if (pred_()) return;
    ASSERT_TRUE(wait());
    pred_ = nullptr;
  }
  void check() {
    if (pred_ && pred_()) {
      pred_ = nullptr;
      done();
    }
  }

  // Everything the server sends until it closes, normalized.
  std::string read_to_eof() {
    wait_for([this] { return eof_; });
    return normalize(received_);
  }
  // The first `n` responses, normalized; the connection stays open.
  std::string read_responses(size_t n, std::vector<bool> heads = {}) {
    wait_for([this, n, heads] { return eof_ || count_responses(received_, heads) >= n; });
    EXPECT_FALSE(eof_) << "closed early after: " << received_;
    return normalize(received_);
  }

  // Runs loop iterations until one dispatches no event and runs no callback or timer: every
  // byte either side could read has been read and acted on (output the peer is not reading
  // stays queued). No wall clock is involved; the count of iterations is bounded.
  void settle() {
    for (int i = 0; i < 100000; ++i) {
      const IOLoop::Stats before = loop().stats();
      loop().stop();
      loop().start();  // exactly one iteration, polling without blocking
      const IOLoop::Stats after = loop().stats();
      if (after.events_dispatched == before.events_dispatched &&
          after.callbacks_run == before.callbacks_run &&
          after.timers_fired == before.timers_fired) {
        return;
      }
    }
    ADD_FAILURE() << "the loop did not settle";
  }

  // Manual clock: moves time by `d` (running the timeouts that fall due), then settles.
  void advance(absl::Duration d) {
    clock_->advance(d);
    settle();
  }

  std::unique_ptr<HTTPServer> server_;
  std::shared_ptr<HTTPServerState> shared_;
  std::shared_ptr<ManualHTTPClock> clock_;
  std::shared_ptr<IOStream> server_stream_;
  std::shared_ptr<IOStream> client_;
  std::string received_;
  bool eof_ = false;
  absl::Status end_status_;  // how the client's read ended (a TLS truncation: DataLoss)
  std::function<bool()> pred_;
};

// For deferred responses: keep() is a handler that takes the response (stream_) and records
// its close callback's calls.
class HTTPServerDeferredTest : public HTTPServerTest {
 protected:
  HTTPServer::Handler keep() {
    return [this](const HTTPRequest&, HTTPResponseWriter& w) {
      stream_ = w.defer();
      stream_->set_close_callback([this](absl::Status s) {
        ++close_calls_;
        close_status_ = s;
      });
    };
  }

  // Starts a server with keep() and a connection, and sends `request`: true once the
  // handler took its response (stream_).
  [[nodiscard]] bool start_deferred(const std::string& request, HTTPServerOptions options = {}) {
    start_manual_server(keep(), std::move(options));
    connect();
    send(request);
    settle();
    return stream_ != nullptr;
  }

  std::shared_ptr<HTTPResponseStream> stream_;
  int close_calls_ = 0;
  absl::Status close_status_;
};

}  // namespace ioloop::net

#endif  // IOLOOP_TESTS_NET_HTTP_HTTP_SERVER_TESTING_H_
