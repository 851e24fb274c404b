// File: tests/fuzz/http_server_fuzzer.cc
// libFuzzer target for HTTPServer's stream glue (net/src/http/http_server.cc): the connection
// over a real IOStream and loop, its timeouts and its flow control. The I/O-free connection
// core (parser, handler dispatch, split independence) is http_connection_fuzzer's; this one
// drives what sits around it. http_body_stream_fuzzer is its sibling for streamed request
// bodies; the two share http_fuzz_harness.h (input, options, response-stream checks).
//
// A socketpair with small kernel buffers joins the server's IOStream to a raw client fd the
// fuzzer works by hand; time is a ManualHTTPClock, so every timeout is deterministic. The
// first 4 input bytes pick the options (max_pending_output from 256 B, header, request, idle
// and linger timeouts, min_body_rate, size limits); the rest is a sequence of operations:
//   send N raw bytes (N from the input: truly arbitrary splits), send a canned request (GET,
//   HEAD, POST with a body, chunked, HTTP/1.0, Connection: close, Expect: 100-continue, a
//   handler that throws, bodies up to 70 KB; some cut into reads around the head's end or the
//   body's, split_points()), advance the clock, fire the next timer, read N
//   bytes on the client (not reading is how the peer applies backpressure), half-close,
//   complete the deferred response (a canned request with "?defer" makes the handler
//   defer() with a Content-Length; later pipelined requests wait behind it).
// The loop runs until quiet after each operation. At the end the client reads everything,
// time runs out every timeout, and the client closes.
//
// Besides the sanitizers' checks (crashes, leaks, UB), it traps when:
//  - the response stream is not a sequence of well-formed HTTP/1.x responses (status line,
//    fields, Content-Length framing; 100 Continue only as an interim response);
//  - the responses are not the handler's answers in request order (each body names its
//    request), followed at most by one error response (400/408/413/414/431/501/505);
//  - anything follows a "Connection: close" response, or the client never sees EOF after it;
//  - a response is cut short although the server did not close the connection on a timeout;
//  - an idle timeout leaves the connection open, or the connection is still open at the end;
//  - the stream ever queued more than max_pending_output plus one response;
//  - the loop does not settle (a busy loop).
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "http/http_connection.h"
#include "http/http_server_state.h"
#include "http/manual_http_clock.h"
#include "http_fuzz_harness.h"
#include "ioloop/io_loop.h"
#include "ioloop/logging.h"
#include "ioloop/net/http/http_response_stream.h"
#include "ioloop/net/io_stream.h"
#include "ioloop/net/socket.h"

namespace {

using ioloop::IOLoop;
using ioloop::net::HTTPMethod;
using ioloop::net::HTTPRequest;
using ioloop::net::HTTPResponseStream;
using ioloop::net::HTTPResponseWriter;
using ioloop::net::HTTPServer;
using ioloop::net::HTTPServerOptions;
using ioloop::net::HTTPServerState;
using ioloop::net::IOStream;
using ioloop::net::ManualHTTPClock;
using ioloop::net::Socket;

using ioloop_fuzz::debug;
using ioloop_fuzz::Input;
using ioloop_fuzz::kMaxBody;
using ioloop_fuzz::Seen;
using ioloop_fuzz::wanted_size;

constexpr int kMaxOps = 256;

class Harness {
 public:
  explicit Harness(HTTPServerOptions options) : options_(options) {}

  bool setup() {
    auto pair = Socket::pair();
    if (!pair.ok()) return false;
    // Small kernel buffers: the stream's own queue and backpressure come into play early.
    const int small = 4096;
    ::setsockopt(pair->first.fd(), SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
    ::setsockopt(pair->second.fd(), SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
    client_ = std::move(pair->second);
    shared_ = std::make_shared<HTTPServerState>(
        [this](const HTTPRequest& r, HTTPResponseWriter& w) { handle(r, w); }, options_);
    shared_->clock = clock_;
    server_ = IOStream::create(loop_, std::move(pair->first));
    ioloop::net::serve_http_connection(shared_, server_);
    return true;
  }

  void handle(const HTTPRequest& r, HTTPResponseWriter& w) {
    const bool threw = r.path() == "/throw";
    seen_.push_back({r.method_id() == HTTPMethod::kHead, r.target(), threw});
    if (threw) throw std::runtime_error("fuzz");
    std::string body = absl::StrCat(r.target(), "|", r.body().size(), "|");
    body.resize(std::max(body.size(), wanted_size(r.path())), 'b');
    biggest_body_ = std::max(biggest_body_, body.size());
    w.set_header("Content-Type", "text/plain");
    if (absl::StrContains(r.query(), "close")) w.set_header("Connection", "close");
    if (absl::StrContains(r.query(), "defer")) {
      // The same bytes as the synchronous response, written later in two pieces.
      w.set_header("Content-Length", absl::StrCat(body.size()));
      deferred_body_ = std::move(body);
      deferred_ = w.defer();
      FUZZ_CHECK(deferred_ != nullptr);
      return;
    }
    w.set_body(std::move(body));
  }

  // Completes the pending deferred response: half, flush, the rest, finish.
  void complete() {
    if (deferred_ == nullptr) return;
    std::shared_ptr<HTTPResponseStream> s = std::move(deferred_);
    if (s->closed()) {
      seen_.back().cancelled = true;
      return;
    }
    const size_t half = deferred_body_.size() / 2;
    FUZZ_CHECK(s->write(deferred_body_.substr(0, half)).ok());
    s->flush([](absl::Status) {});
    FUZZ_CHECK(s->write(deferred_body_.substr(half)).ok());
    FUZZ_CHECK(s->finish().ok());
  }

  // Runs loop iterations until one does nothing; traps on a loop that never settles.
  void settle() {
    for (int i = 0; i < 20000; ++i) {
      if (ioloop_fuzz::quiet_iteration(loop_)) {
        check_queue_bound();
        return;
      }
    }
    FUZZ_CHECK(false);  // a busy loop
  }

  void send(absl::string_view bytes) {
    if (write_closed_ || client_.fd() < 0) return;
    // What does not fit is dropped (a client giving up mid-send): the checks rely on what the
    // handler saw, not on what was sent.
    (void)!::send(client_.fd(), bytes.data(), bytes.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
  }

  // split: where the request is cut into reads (split_points()), 0 for none.
  void send_canned(uint8_t c, uint8_t d, uint8_t split) {
    static constexpr size_t kSizes[] = {0, 10, 1000, 5000, 20000, kMaxBody};
    const size_t size = kSizes[d % 6];
    const char* version = (c & 0x80) ? "HTTP/1.0" : "HTTP/1.1";
    const std::string query =
        (d & 0x40) ? ((c & 0x40) ? "?close&defer" : "?close") : ((c & 0x40) ? "?defer" : "");
    const std::string target = (d & 0x80) ? "/throw" : absl::StrCat("/", size, query);
    std::string body = std::string((d >> 3) & 7, 'q');
    std::string r;
    switch (c % 6) {
      case 0:
        r = absl::StrCat("GET ", target, " ", version, "\r\nHost: x\r\n\r\n");
        break;
      case 1:
        r = absl::StrCat("HEAD ", target, " ", version, "\r\nHost: x\r\n\r\n");
        break;
      case 2:
        r = absl::StrCat("POST ", target, " ", version,
                         "\r\nHost: x\r\nContent-Length: ", body.size(), "\r\n\r\n", body);
        break;
      case 3:
        r = absl::StrCat(
            "POST ", target, " HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n", "\r\n",
            body.empty() ? "" : absl::StrCat(body.size(), "\r\n", body, "\r\n"), "0\r\n\r\n");
        break;
      case 4:  // Expect: 100-continue, the body follows in a later operation (or never)
        r = absl::StrCat("PUT ", target, " HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n",
                         "Content-Length: 4\r\n\r\n");
        break;
      default:
        r = absl::StrCat("GET ", target, " ", version, "\r\nHost: x\r\nConnection: close\r\n\r\n");
        break;
    }
    ioloop_fuzz::send_split(
        r, split, [this](absl::string_view piece) { send(piece); }, [this] { settle(); });
  }

  // Reads up to `n` bytes (0: all there is) on the client.
  void read(size_t n) {
    if (client_.fd() < 0) return;
    char buf[16384];
    size_t total = 0;
    while (n == 0 || total < n) {
      const size_t want = n == 0 ? sizeof buf : std::min(sizeof buf, n - total);
      const ssize_t got = ::recv(client_.fd(), buf, want, MSG_DONTWAIT);
      if (got > 0) {
        received_.append(buf, static_cast<size_t>(got));
        total += static_cast<size_t>(got);
      } else {
        if (got == 0) eof_ = true;
        return;
      }
    }
  }

  void half_close() {
    if (write_closed_ || client_.fd() < 0) return;
    ::shutdown(client_.fd(), SHUT_WR);
    write_closed_ = true;
  }

  // Moves the clock (timeouts run inside), then lets the loop act on what they did.
  void advance(absl::Duration d) {
    const bool was_open = !server_->closed();
    const uint64_t idle_before = ioloop::net::http_server_stats(*shared_).idle_timeouts;
    clock_->advance(d);
    if (was_open && server_->closed()) closed_by_timer_ = true;
    // An idle timeout closes the connection at once.
    if (ioloop::net::http_server_stats(*shared_).idle_timeouts != idle_before) {
      FUZZ_CHECK(server_->closed());
    }
    settle();
  }

  void fire_next_timer() {
    const ioloop::TimePoint next = clock_->next_deadline();
    if (next == ioloop::TimePoint::max()) return settle();
    advance(ioloop::to_duration(next - clock_->now()));
  }

  void check_queue_bound() {
    const uint64_t queued = ioloop::net::http_server_stats(*shared_).max_output_queued;
    // One response: its body, the head (status line, Date, Content-Type, Content-Length,
    // Connection) and at most a 100 Continue and an error response around it.
    FUZZ_CHECK(queued <= options_.max_pending_output + biggest_body_ + 512);
  }

  // Reads everything, lets every timeout run out, then closes the client; the server must
  // have closed.
  // A request parsed meanwhile may defer again (it waited behind the one completed), so each
  // round completes whatever is pending; one still pending when the client closes is cancelled.
  void finish() {
    complete();
    for (int round = 0; round < 64 && !server_->closed(); ++round) {
      for (int i = 0; i < 256; ++i) {  // drain: the server may be waiting on our reading
        const size_t before = received_.size();
        read(0);
        settle();
        complete();
        settle();
        if (received_.size() == before) break;
      }
      advance(absl::Seconds(5));
    }
    read(0);
    if (!server_->closed()) {  // timeouts disabled: the client ends it
      client_ = Socket();
      settle();
    }
    complete();  // marks a response the close cancelled
    FUZZ_CHECK(server_->closed());
  }

  // The invariants on the whole response stream.
  void verify() {
    if (debug()) {
      std::fprintf(stderr, "received %zu bytes:\n%s\n--- handler saw:\n", received_.size(),
                   received_.substr(0, 4000).c_str());
      for (const Seen& s : seen_)
        std::fprintf(stderr, "  %s%s\n", s.head ? "HEAD " : "", s.target.c_str());
      const HTTPServer::Stats st = ioloop::net::http_server_stats(*shared_);
      std::fprintf(
          stderr, "eof %d closed_by_timer %d idle %lu header %lu request %lu rate %lu stalls %lu\n",
          eof_, closed_by_timer_, st.idle_timeouts, st.header_timeouts, st.request_timeouts,
          st.body_rate_timeouts, st.output_stalls);
    }
    ioloop_fuzz::check_responses(received_, seen_, closed_by_timer_, eof_,
                                 ioloop::net::http_server_stats(*shared_));
  }

  // The loop outlives everything that may touch it.
  IOLoop loop_;
  HTTPServerOptions options_;
  std::shared_ptr<ManualHTTPClock> clock_ = std::make_shared<ManualHTTPClock>();
  std::shared_ptr<HTTPServerState> shared_;
  std::shared_ptr<IOStream> server_;
  Socket client_;
  std::vector<Seen> seen_;
  std::shared_ptr<HTTPResponseStream> deferred_;
  std::string deferred_body_;
  std::string received_;
  size_t biggest_body_ = 0;
  bool eof_ = false;
  bool write_closed_ = false;
  bool closed_by_timer_ = false;
};

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  ioloop::set_log_level("off").IgnoreError();  // handler exceptions would flood stderr
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Input in{data, size};
  Harness h(ioloop_fuzz::decode_options(in));
  if (!h.setup()) return 0;
  for (int ops = 0; ops < kMaxOps && !in.done(); ++ops) {
    const uint8_t op = in.byte();
    switch (op % 8) {
      case 0:
      case 1:
        h.send(in.bytes(1 + in.byte()));  // 1..256 bytes, exactly as the input has them
        break;
      case 2: {
        const uint8_t c = in.byte(), d = in.byte();
        h.send_canned(c, d, op >= 200 ? in.byte() : 0);  // only 202..250 split it
        break;
      }
      case 3: {
        const uint8_t t = in.byte();  // up to 127 s, in 10 ms or 1 s steps
        h.advance(absl::Milliseconds((t & 0x7f) * ((t & 0x80) ? 1000 : 10)));
        continue;  // advance() settles
      }
      case 4:
        h.read(in.byte() * size_t{64});  // 0: everything there is
        break;
      case 5:
        h.fire_next_timer();
        continue;
      case 6:
        h.half_close();
        break;
      default:
        h.complete();
        break;
    }
    h.settle();
  }
  h.finish();
  h.verify();
  return 0;
}
