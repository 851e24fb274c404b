// File: tests/fuzz/http_body_stream_fuzzer.cc
// libFuzzer target for HTTPServer's streamed request bodies (http_body_handler.h): the
// connection core's streaming mode (net/src/http/http_connection_body.cc) under the real stream
// glue, with handlers that stop and resume the body, throw, defer and answer. The harness is
// http_server_fuzzer's (a socketpair with small kernel buffers, a real IOStream and loop, a
// ManualHTTPClock, the same response-stream checks from http_fuzz_harness.h) with a
// body-handler factory installed. HTTP_SERVER_FUZZER_DEBUG=1 traces a reproducer.
//
// Input: 4 bytes of options (decode_options()), then 1 byte (bit 0: stream every body,
// else only targets with "stream" in the query) and the schedule of handlers whose target has
// none; then operations: send raw bytes, send a canned request (POST/PUT with a Content-Length,
// chunked or Expect: 100-continue body of up to 30 KB, or a GET; its query carries "stream",
// "defer", "close", "fthrow" (the factory throws), the handler's schedule "s=N" and an id),
// advance the clock, fire the next timer, read on the client, half-close, complete the deferred
// response, resume the stopped body. A canned request's operation byte of 202 to 252 adds a byte
// that cuts the request into reads around the end of its head or its body (split_points()). What
// the client sends waits in an outbox the loop drains as the server reads (so large bodies arrive
// in many pieces, and not at all while stopped). A schedule byte: bits 0-3, piece i returns false
// if bit i%4 is set; bit 4, call resume() inside on_body first (meaning "go on"); bit 5, resume
// from a loop callback, else wait for the resume operation; bits 4 and 5 both, answer_early()
// inside on_body instead; bits 6-7, on_body throws at piece 1..3. A "/throw" path throws in
// on_end. The resume operation's bytes of 208 to 249 call answer_early() instead, from outside.
//
// Besides http_server_fuzzer's invariants on the response stream (well-formed, the handler's
// answers in request order, Connection: close honoured, no busy loop, bounded queue, closed at
// the end), it traps when:
//  - on_headers runs for a request without a body, or while the previous handler is alive;
//  - a handler gets both on_end and on_close, or neither by the time it is destroyed, or is
//    still alive at the end (the connection closed);
//  - on_body runs after on_end/on_close, or while the body is stopped (after false, before
//    resume), or with an empty piece; control.received() or control.paused() disagree;
//  - the pieces of a canned body are not a prefix of it, or not all of it at on_end (the same
//    for a buffered canned body in the Handler, unless discard_body);
//  - on_close reports a reason other than the documented ones (Internal exactly when on_body
//    threw).
// The harness resumes only handlers that have not ended: HTTPBodyControl is invalid after
// on_end/on_close, and a posted resume checks that first (the handler's state outlives it).
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "absl/status/status.h"
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
#include "ioloop/net/http/http_body_handler.h"
#include "ioloop/net/http/http_response_stream.h"
#include "ioloop/net/io_stream.h"
#include "ioloop/net/socket.h"

namespace {

using ioloop::IOLoop;
using ioloop::net::HTTPBodyControl;
using ioloop::net::HTTPBodyHandler;
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

// One streamed body's handler as the harness sees it; outlives the handler (posted resumes
// hold it), so `control` is used only while alive().
struct Stream {
  HTTPBodyControl* control = nullptr;
  std::string target;
  const std::string* expected = nullptr;  // a canned body, else unknown
  uint64_t received = 0;
  int pieces = 0;
  uint8_t schedule = 0;
  bool stopped = false;  // on_body returned false, not resumed since
  bool ended = false;
  bool closed = false;
  bool threw = false;  // on_body threw
  bool early = false;  // answer_early() was called: no on_body after it
  bool destroyed = false;
  bool alive() const { return !ended && !closed; }
};

class Harness;

class BodyHandler final : public HTTPBodyHandler {
 public:
  BodyHandler(Harness& h, std::shared_ptr<Stream> s) : h_(h), s_(std::move(s)) {}
  ~BodyHandler() override;
  bool on_body(absl::string_view chunk) override;
  void on_end(const HTTPRequest& request, HTTPResponseWriter& response) override;
  void on_close(const absl::Status& why) override;

 private:
  Harness& h_;
  std::shared_ptr<Stream> s_;
};

class Harness {
 public:
  Harness(HTTPServerOptions options, bool stream_all, uint8_t schedule, std::string nonce)
      : options_(options),
        stream_all_(stream_all),
        default_schedule_(schedule),
        nonce_(std::move(nonce)) {}

  bool setup() {
    auto pair = Socket::pair();
    if (!pair.ok()) return false;
    // Small kernel buffers: bodies arrive in pieces, backpressure comes into play early.
    const int small = 4096;
    ::setsockopt(pair->first.fd(), SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
    ::setsockopt(pair->second.fd(), SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
    client_ = std::move(pair->second);
    shared_ = std::make_shared<HTTPServerState>(
        [this](const HTTPRequest& r, HTTPResponseWriter& w) { handle_buffered(r, w); },
        [this](const HTTPRequest& head, HTTPBodyControl& control) {
          return on_headers(head, control);
        },
        options_);
    shared_->clock = clock_;
    server_ = IOStream::create(loop_, std::move(pair->first));
    ioloop::net::serve_http_connection(shared_, server_);
    return true;
  }

  // The canned body whose id the target carries (the nonce makes it unforgeable by raw bytes,
  // and the id comes last, so a target whose front a previous body swallowed keeps it).
  const std::string* canned_body(absl::string_view target) const {
    const std::string key = absl::StrCat("&id=", nonce_, ".");
    const size_t at = target.find(key);
    size_t k = 0;
    if (at == absl::string_view::npos || !absl::SimpleAtoi(target.substr(at + key.size()), &k) ||
        k >= canned_.size()) {
      return nullptr;
    }
    return &canned_[k];
  }

  std::unique_ptr<HTTPBodyHandler> on_headers(const HTTPRequest& head, HTTPBodyControl& control) {
    FUZZ_CHECK(live_ == 0);  // the previous handler was destroyed before this on_headers
    FUZZ_CHECK(head.body().empty());
    const auto cl = head.headers().get("Content-Length");
    FUZZ_CHECK(head.headers().contains("Transfer-Encoding") || (cl.has_value() && *cl != "0"));
    if (!stream_all_ && !absl::StrContains(head.query(), "stream")) return nullptr;
    if (absl::StrContains(head.query(), "fthrow")) {
      seen_.push_back({head.method_id() == HTTPMethod::kHead, head.target(), true});
      throw std::runtime_error("fuzz: factory");
    }
    auto s = std::make_shared<Stream>();
    s->control = &control;
    s->target = head.target();
    s->expected = canned_body(head.target());
    s->schedule = default_schedule_;
    const size_t at = head.query().find("s=");
    int schedule = 0;
    if (at != absl::string_view::npos &&
        absl::SimpleAtoi(head.query().substr(at + 2, head.query().find('&', at) - at - 2),
                         &schedule)) {
      s->schedule = static_cast<uint8_t>(schedule);
    }
    FUZZ_CHECK(!control.paused() && control.received() == 0);
    streams_.push_back(s);
    ++live_;
    return std::make_unique<BodyHandler>(*this, std::move(s));
  }

  bool on_body(const std::shared_ptr<Stream>& sp, absl::string_view chunk) {
    Stream& s = *sp;
    if (debug()) std::fprintf(stderr, "on_body %s %zu\n", s.target.c_str(), chunk.size());
    FUZZ_CHECK(s.alive() && !s.stopped && !s.early && !chunk.empty());
    FUZZ_CHECK(!s.control->paused());
    s.received += chunk.size();
    FUZZ_CHECK(s.control->received() == s.received);
    if (s.expected != nullptr) {
      FUZZ_CHECK(s.received <= s.expected->size());
      FUZZ_CHECK(absl::string_view(*s.expected).substr(s.received - chunk.size(), chunk.size()) ==
                 chunk);
    }
    const int piece = s.pieces++;
    ++pieces_;
    if ((s.schedule >> 6) == piece + 1) {
      s.threw = true;
      seen_.push_back({false, s.target, true});  // the 500 answers it
      throw std::runtime_error("fuzz: on_body");
    }
    if ((s.schedule & (1 << (piece % 4))) == 0) return true;
    if ((s.schedule & 0x30) == 0x30) {  // answer now, not after the body
      s.early = true;
      s.control->answer_early();
      return false;
    }
    if (s.schedule & 0x10) {
      s.control->resume();  // during on_body: false then means "go on"
      return false;
    }
    s.stopped = true;
    if (s.schedule & 0x20) {
      loop_.add_callback([this, sp] { resume(*sp); });
    }
    return false;
  }

  void on_end(Stream& s, const HTTPRequest& r, HTTPResponseWriter& w) {
    FUZZ_CHECK(s.alive());
    s.ended = true;
    s.stopped = false;  // a stop after the last piece ends with the body
    FUZZ_CHECK(r.body().empty() && r.target() == s.target);
    FUZZ_CHECK(s.control->received() == s.received);
    if (s.expected != nullptr) {
      FUZZ_CHECK(s.early ? s.received <= s.expected->size() : s.received == s.expected->size());
    }
    handle(r, w, s.received);
  }

  void on_close(Stream& s, const absl::Status& why) {
    FUZZ_CHECK(s.alive());
    s.closed = true;
    s.stopped = false;
    FUZZ_CHECK(!why.ok());
    FUZZ_CHECK(s.threw == (why.code() == absl::StatusCode::kInternal));
    FUZZ_CHECK(why.code() == absl::StatusCode::kInternal ||
               why.code() == absl::StatusCode::kInvalidArgument ||
               why.code() == absl::StatusCode::kDeadlineExceeded ||
               why.code() == absl::StatusCode::kUnavailable);
  }

  void destroyed(Stream& s) {
    FUZZ_CHECK(s.ended != s.closed);  // exactly one of on_end and on_close
    FUZZ_CHECK(!s.destroyed);
    s.destroyed = true;
    --live_;
  }

  // Resumes `s` if it is still alive (never after on_end/on_close); true if it was stopped.
  bool resume(Stream& s) {
    if (!s.alive()) return false;
    FUZZ_CHECK(s.control->paused() == s.stopped);
    const bool was = s.stopped;
    s.stopped = false;
    s.control->resume();
    FUZZ_CHECK(!s.control->paused());
    return was;
  }

  bool resume_current() { return !streams_.empty() && resume(*streams_.back()); }

  // answer_early() on the current handler from outside the server's calls: on_end follows
  // from a loop callback, never inside.
  void answer_early_current() {
    if (streams_.empty() || !streams_.back()->alive()) return;
    Stream& s = *streams_.back();
    s.early = true;
    s.stopped = false;
    s.control->answer_early();
    FUZZ_CHECK(s.alive() && !s.control->paused());
  }

  void handle_buffered(const HTTPRequest& r, HTTPResponseWriter& w) {
    if (const std::string* body = canned_body(r.target())) {
      FUZZ_CHECK(options_.discard_body ? r.body().empty() : r.body() == *body);
    }
    handle(r, w, r.body().size());
  }

  void handle(const HTTPRequest& r, HTTPResponseWriter& w, uint64_t body_size) {
    const bool threw = r.path() == "/throw";
    seen_.push_back({r.method_id() == HTTPMethod::kHead, r.target(), threw});
    if (threw) throw std::runtime_error("fuzz");
    std::string body = absl::StrCat(r.target(), "|", body_size, "|");
    body.resize(std::max(body.size(), wanted_size(r.path())), 'b');
    biggest_body_ = std::max(biggest_body_, body.size());
    w.set_header("Content-Type", "text/plain");
    if (absl::StrContains(r.query(), "close")) w.set_header("Connection", "close");
    if (absl::StrContains(r.query(), "defer")) {
      w.set_header("Content-Length", absl::StrCat(body.size()));
      deferred_body_ = std::move(body);
      deferred_ = w.defer();
      FUZZ_CHECK(deferred_ != nullptr);
      return;
    }
    w.set_body(std::move(body));
  }

  // Completes the pending deferred response: half, flush, the rest, finish. True if any.
  bool complete() {
    if (deferred_ == nullptr) return false;
    std::shared_ptr<HTTPResponseStream> s = std::move(deferred_);
    if (s->closed()) {
      seen_.back().cancelled = true;
      return false;
    }
    const size_t half = deferred_body_.size() / 2;
    FUZZ_CHECK(s->write(deferred_body_.substr(0, half)).ok());
    s->flush([](absl::Status) {});
    FUZZ_CHECK(s->write(deferred_body_.substr(half)).ok());
    FUZZ_CHECK(s->finish().ok());
    return true;
  }

  // Runs loop iterations (the client sending what the server takes) until nothing happens;
  // traps on a loop that never settles.
  void settle() {
    for (int i = 0; i < 20000; ++i) {
      const size_t outbox = outbox_.size();
      const uint64_t pieces = pieces_;
      pump();
      const IOLoop::Stats before = loop_.stats();
      loop_.stop();
      loop_.start();
      const IOLoop::Stats after = loop_.stats();
      if (after.events_dispatched == before.events_dispatched &&
          after.callbacks_run == before.callbacks_run && outbox_.size() == outbox) {
        check_queue_bound();
        return;
      }
      if (pieces_ != pieces) i = 0;  // body progress (finite): not a busy loop
      if (debug() && i > 19990) {
        std::fprintf(stderr, "busy: events %lu callbacks %lu outbox %zu -> %zu closed %d\n",
                     after.events_dispatched - before.events_dispatched,
                     after.callbacks_run - before.callbacks_run, outbox, outbox_.size(),
                     server_->closed());
      }
    }
    FUZZ_CHECK(false);  // a busy loop
  }

  void pump() {
    if (outbox_.empty() || write_closed_ || client_.fd() < 0) return;
    const ssize_t n =
        ::send(client_.fd(), outbox_.data(), outbox_.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) outbox_.erase(0, static_cast<size_t>(n));
  }

  void send(absl::string_view bytes) {
    if (write_closed_ || client_.fd() < 0) return;
    outbox_.append(bytes.data(), bytes.size());
    pump();
  }

  // c: bits 0-1 framing (Content-Length, chunked, Expect: 100-continue, a GET), 2 "stream",
  // 3 "close", 4 "defer", 5 path /throw, 6 "fthrow", 7 HTTP/1.0 (not chunked);
  // d: bits 0-2 body size, 3-4 response size, 5-7 chunk size; e: the schedule; split: where
  // the request is cut into reads (split_points()), 0 for none.
  void send_canned(uint8_t c, uint8_t d, uint8_t e, uint8_t split) {
    static constexpr size_t kBodies[] = {1, 10, 100, 1000, 4000, 9000, 20000, 30000};
    static constexpr size_t kResponses[] = {0, 1000, 20000, kMaxBody};
    static constexpr size_t kChunks[] = {1, 7, 64, 500, 1000, 4096, 16384, 100000};
    const int framing = c & 3;
    const size_t k = canned_.size();
    // Tiny chunks (a piece each) on small bodies only: a piece can cost two loop iterations.
    const size_t size =
        kChunks[d >> 5] < 64 ? std::min<size_t>(kBodies[d & 7], 1000) : kBodies[d & 7];
    std::string body(framing == 3 ? 0 : size, '\0');
    for (size_t i = 0; i < body.size(); ++i) body[i] = static_cast<char>(i * 31 + (i >> 8) + k);
    canned_.push_back(body);
    const std::string target = absl::StrCat(
        (c & 0x20) ? "/throw" : absl::StrCat("/", kResponses[(d >> 3) & 3]), "?",
        (c & 0x08) ? "close&" : "", (c & 0x10) ? "defer&" : "", (c & 0x40) ? "fthrow&" : "",
        (c & 0x04) ? "stream&" : "", "s=", e, "&id=", nonce_, ".", k);
    const char* version = (c & 0x80) && framing != 1 ? "HTTP/1.0" : "HTTP/1.1";
    std::string r = absl::StrCat(framing == 3 ? "GET " : "POST ", target, " ", version,
                                 "\r\nHost: x\r\n", framing == 2 ? "Expect: 100-continue\r\n" : "");
    if (framing == 1) {
      absl::StrAppend(&r, "Transfer-Encoding: chunked\r\n\r\n");
      const size_t step = kChunks[d >> 5];
      for (size_t at = 0; at < body.size(); at += step) {
        const absl::string_view piece = absl::string_view(body).substr(at, step);
        absl::StrAppend(&r, absl::Hex(piece.size()), "\r\n", piece, "\r\n");
      }
      absl::StrAppend(&r, "0\r\n\r\n");
    } else if (framing != 3) {
      absl::StrAppend(&r, "Content-Length: ", body.size(), "\r\n\r\n", body);
    } else {
      absl::StrAppend(&r, "\r\n");
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

  void half_close() {  // what the outbox still holds is never sent
    if (write_closed_ || client_.fd() < 0) return;
    ::shutdown(client_.fd(), SHUT_WR);
    write_closed_ = true;
    outbox_.clear();
  }

  // Moves the clock (timeouts run inside), then lets the loop act on what they did.
  void advance(absl::Duration d) {
    const bool was_open = !server_->closed();
    const uint64_t idle_before = ioloop::net::http_server_stats(*shared_).idle_timeouts;
    clock_->advance(d);
    if (was_open && server_->closed()) closed_by_timer_ = true;
    if (ioloop::net::http_server_stats(*shared_).idle_timeouts != idle_before) {
      FUZZ_CHECK(server_->closed());  // an idle timeout closes the connection at once
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
    FUZZ_CHECK(queued <= options_.max_pending_output + biggest_body_ + 512);
  }

  // Everything runs to its end: stopped bodies resume (while stopped, no timeout fires),
  // deferred responses complete, the client reads everything, time runs out every timeout,
  // then the client closes; the server must have closed and every handler ended.
  void finish() {
    for (int round = 0; round < 64 && !server_->closed(); ++round) {
      for (int i = 0; i < 4096; ++i) {
        const size_t before = received_.size(), outbox = outbox_.size();
        bool acted = resume_current();
        if (complete()) acted = true;
        read(0);
        settle();
        if (!acted && received_.size() == before && outbox_.size() == outbox) break;
      }
      advance(absl::Seconds(5));
    }
    read(0);
    if (!server_->closed()) {  // timeouts disabled: the client ends it
      client_ = Socket();
      outbox_.clear();
      for (int i = 0; i < 4096 && !server_->closed(); ++i) {
        resume_current();
        settle();
      }
    }
    complete();  // marks a response the close cancelled
    FUZZ_CHECK(server_->closed());
    FUZZ_CHECK(live_ == 0);
    for (const std::shared_ptr<Stream>& s : streams_) FUZZ_CHECK(s->destroyed);
  }

  // The invariants on the whole response stream (http_fuzz_harness.h).
  void verify() {
    if (debug()) {
      std::fprintf(stderr, "received %zu bytes:\n%s\n--- answered:\n", received_.size(),
                   received_.substr(0, 4000).c_str());
      for (const Seen& s : seen_)
        std::fprintf(stderr, "  %s%s\n", s.threw ? "threw " : "", s.target.c_str());
      for (const std::shared_ptr<Stream>& s : streams_) {
        std::fprintf(stderr, "  stream %s: %d pieces, %lu bytes, %s\n", s->target.c_str(),
                     s->pieces, s->received, s->ended ? "ended" : "closed");
      }
      const HTTPServer::Stats st = ioloop::net::http_server_stats(*shared_);
      std::fprintf(stderr, "streamed %lu pauses %lu exceptions %lu\n", st.streamed_requests,
                   st.body_pauses, st.handler_exceptions);
    }
    ioloop_fuzz::check_responses(received_, seen_, closed_by_timer_, eof_,
                                 ioloop::net::http_server_stats(*shared_));
  }

  // The loop outlives everything that may touch it.
  IOLoop loop_;
  HTTPServerOptions options_;
  const bool stream_all_;
  const uint8_t default_schedule_;
  const std::string nonce_;
  std::shared_ptr<ManualHTTPClock> clock_ = std::make_shared<ManualHTTPClock>();
  std::deque<std::string> canned_;  // by id; grows at the back only (streams point into it)
  std::vector<std::shared_ptr<Stream>> streams_;
  int live_ = 0;         // handlers not destroyed
  uint64_t pieces_ = 0;  // on_body calls, all handlers
  std::shared_ptr<HTTPServerState> shared_;
  std::shared_ptr<IOStream> server_;
  Socket client_;
  std::string outbox_;
  std::vector<Seen> seen_;
  std::shared_ptr<HTTPResponseStream> deferred_;
  std::string deferred_body_;
  std::string received_;
  size_t biggest_body_ = 0;
  bool eof_ = false;
  bool write_closed_ = false;
  bool closed_by_timer_ = false;
};

BodyHandler::~BodyHandler() { h_.destroyed(*s_); }
bool BodyHandler::on_body(absl::string_view chunk) { return h_.on_body(s_, chunk); }
void BodyHandler::on_end(const HTTPRequest& request, HTTPResponseWriter& response) {
  h_.on_end(*s_, request, response);
}
void BodyHandler::on_close(const absl::Status& why) { h_.on_close(*s_, why); }

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  ioloop::set_log_level("off").IgnoreError();  // handler exceptions would flood stderr
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  uint32_t hash = 2166136261u;  // FNV-1a of the input: canned ids raw bytes cannot forge
  for (size_t i = 0; i < size; ++i) hash = (hash ^ data[i]) * 16777619u;
  Input in{data, size};
  const HTTPServerOptions options = ioloop_fuzz::decode_options(in);
  const uint8_t mode = in.byte();
  Harness h(options, (mode & 1) != 0, in.byte(), absl::StrCat(absl::Hex(hash, absl::kZeroPad8)));
  if (!h.setup()) return 0;
  for (int ops = 0; ops < kMaxOps && !in.done(); ++ops) {
    const uint8_t op = in.byte();
    if (debug()) std::fprintf(stderr, "op %d at %zu\n", op % 10, in.pos - 1);
    switch (op % 10) {
      case 0:
      case 1:
        h.send(in.bytes(1 + in.byte()));  // 1..256 bytes, exactly as the input has them
        break;
      case 2: {
        const uint8_t c = in.byte(), d = in.byte(), e = in.byte();
        h.send_canned(c, d, e, op >= 200 ? in.byte() : 0);  // only 202..252 split it
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
      case 7:
        h.complete();
        break;
      default:
        if (op >= 200) {
          h.answer_early_current();  // 208, 209, ..., 248, 249
        } else {
          h.resume_current();
        }
        break;
    }
    h.settle();
  }
  h.finish();
  h.verify();
  return 0;
}
