// File: net/src/http/http_connection.h (private)
// The I/O-free core of an HTTPServer connection: bytes in, response bytes out. The server's
// stream glue (http_connection_glue.cc) reads, calls on_data(), writes what it produced in one
// call and closes when told; the benchmark and the fuzzer drive this class directly. It shares
// only an HTTPCoreState (below) with its server, and includes no socket, stream or server
// header: the server's own state (HTTPServerState) and the glue's entry point are in
// http_server_state.h.
//
// Deferred responses (http_response_stream.h): the core is the stream's target. It frames what
// the stream writes (http_connection_stream.cc); bytes written during on_data() go to that
// call's output, later ones to pending_output(), and the Listener (the glue) is told to send
// them. While a deferred response is pending, on_data() parses nothing: input joins the
// backlog, and parsing resumes with the next on_data() after the response ended.
#ifndef IOLOOP_NET_SRC_HTTP_HTTP_CONNECTION_H_
#define IOLOOP_NET_SRC_HTTP_HTTP_CONNECTION_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/string_view.h"
#include "ioloop/net/http/http_body_handler.h"
#include "ioloop/net/http/http_request.h"
#include "ioloop/net/http/http_response.h"
#include "ioloop/net/http/http_response_stream.h"
#include "ioloop/net/http/request_parser.h"

namespace ioloop::net {

// The status a handler's response is sent with (RFC 9110 §15): its own if a final status,
// 200..599; else 500. A 1xx is interim (a final response must follow it, and 101 would switch
// protocols), and no client takes 600 and above.
inline int sent_status(int status) { return status >= 200 && status <= 599 ? status : 500; }

// Whether a final response of `status` goes without framing fields and body: a 204, a 304
// (RFC 9110 §8.6), a 2xx to CONNECT (§9.3.6: what follows it would be the tunnel's, and this
// server opens none). A HEAD's keeps its Content-Length.
inline bool unframed_response(int status, bool connect) {
  return status == 204 || status == 304 || (connect && status < 300);
}

// A Content-Length value a handler set: digits only (RFC 9110 §8.6), no sign or spaces inside.
inline bool parse_length(absl::string_view v, uint64_t& n) {
  v = absl::StripAsciiWhitespace(v);
  if (v.empty()) return false;
  for (char c : v) {
    if (c < '0' || c > '9') return false;
  }
  return absl::SimpleAtoi(v, &n);
}

// What the core calls for each complete request; the same type as HTTPServer::Handler
// (http_server.cc checks), spelled here so that the core does not include the server.
using HTTPRequestHandler = absl::AnyInvocable<void(const HTTPRequest&, HTTPResponseWriter&)>;

// What the cores of one server's connections share: the handler, the body factory, the limits
// and Server name they answer with, and the counters HTTPServer::stats() reads. The server's
// private state (HTTPServerState, http_server_state.h) extends it with what only the stream
// glue needs (the options, a clock), so the I/O-free core never includes the socket and TCP
// server stack. Copied once from HTTPServerOptions when the server is built, never per
// connection or request.
// Threads: with start(N > 1) N loops use one state at once: the handler and factory must be
// thread-safe (http_server.h), the counters are relaxed atomics, the rest is immutable.
struct HTTPCoreState {
  HTTPCoreState(HTTPRequestHandler h, HTTPBodyHandlerFactory f, RequestParser::Options limits,
                std::string server)
      : handler(std::move(h)),
        body_factory(std::move(f)),
        parser_options(limits),
        server_name(std::move(server)) {}

  HTTPRequestHandler handler;
  // Empty: every body is buffered (the fast path tests only this).
  HTTPBodyHandlerFactory body_factory;
  const RequestParser::Options parser_options;  // HTTPServerOptions' header and body limits
  const std::string server_name;                // the Server field's value; empty: none
  std::atomic<uint64_t> connections{0};
  std::atomic<uint64_t> requests{0};
  std::atomic<uint64_t> responses{0};
  std::atomic<uint64_t> writes{0};
  std::atomic<uint64_t> protocol_errors{0};
  std::atomic<uint64_t> handler_exceptions{0};
  std::atomic<uint64_t> idle_timeouts{0};
  std::atomic<uint64_t> header_timeouts{0};
  std::atomic<uint64_t> body_rate_timeouts{0};
  std::atomic<uint64_t> request_timeouts{0};
  std::atomic<uint64_t> output_stalls{0};
  std::atomic<uint64_t> max_output_queued{0};
  std::atomic<uint64_t> deferred_responses{0};
  std::atomic<uint64_t> response_timeouts{0};
  std::atomic<uint64_t> stream_errors{0};
  std::atomic<uint64_t> streamed_requests{0};
  std::atomic<uint64_t> body_pauses{0};
};

// Bodies (and deferred chunks) up to this size are copied behind their headers (one buffer,
// one iovec); larger ones are moved into their own iovec.
inline constexpr size_t kCopyBodyLimit = 16 * 1024;

// A recycled core (HTTPConnectionCore::recycle()) keeps a buffer's capacity up to this much
// and frees larger ones, so that the cores kept for reuse cost a small, fixed amount.
inline constexpr size_t kRecycledCapacity = 4 * 1024;

// Response bytes produced by one on_data(): `head` collects small pieces; a large body is
// moved into `chunks` rather than copied (then head's bytes so far go before it). Send as
// chunks + head, in that order, with one write/writev.
struct HTTPOutput {
  using FlushCallback = absl::AnyInvocable<void(absl::Status) &&>;
  std::vector<std::string> chunks;
  std::string head;
  bool close = false;  // the connection ends once this output is flushed
  // With `close`: the client ended too. Its last request said so (Connection: close, or
  // HTTP/1.0 without keep-alive) and not a byte after it was parsed, so nothing more is
  // coming and the server may close at once after the flush, without a lingering close
  // (nginx's rule too), if the kernel holds no unread byte either (the glue checks). Otherwise
  // it lingers, so that unread client bytes cannot turn the close into a reset that destroys
  // the response.
  bool client_done = false;
  // With `close`: the response was cut short after its head (a failed deferred response).
  // The connection must not end cleanly: over TLS, no close_notify, which would pass a
  // close-delimited body off as complete (IOStream::shutdown_write_truncated(); a plain
  // stream's such body ends with a reset, by `message` below).
  bool truncated = false;
  // A close-delimited body begins (kIncomplete) or ends whole (kComplete) with this output: in
  // between, the connection's end, whatever causes it (a server stopping closes its streams),
  // must not look clean (IOStream::set_message_complete()). The glue applies it and resets it.
  enum class Message : uint8_t { kUnchanged, kIncomplete, kComplete };
  Message message = Message::kUnchanged;
  // HTTPResponseStream::flush() and finish(done) callbacks: run once these bytes (and all
  // before) are in the kernel, or with the error if the connection closes first. `response` is
  // the deferred response's serial (HTTPConnectionCore::closed_status()): the connection may be
  // serving the next one, whose failure is not this callback's, when the error comes.
  struct Flush {
    FlushCallback callback;
    uint64_t response = 0;
  };
  std::vector<Flush> on_flushed;

  bool empty() const { return chunks.empty() && head.empty(); }
  size_t size() const {
    size_t n = head.size();
    for (const std::string& c : chunks) n += c.size();
    return n;
  }
};

// What a response's stream, and its flush callbacks, report once the connection closed: the
// IOStream's error `why` (OK for a close without one) as Unavailable "HTTP connection
// closed[: why]".
absl::Status connection_closed_status(const absl::Status& why);

class HTTPConnectionCore final : public internal::HTTPResponseTarget, private HTTPBodyControl {
 public:
  // The stream glue, told about deferred-response output produced outside on_data().
  class Listener {
   public:
    // Bytes or flush callbacks were added to pending_output(): send them now.
    // `response_ended`: the deferred response finished or failed, so the connection closes
    // (pending_output().close) or goes on with its backlog.
    virtual void on_stream_output(bool response_ended) = 0;
    // Bytes queued on the connection and not yet in the kernel.
    virtual size_t queued_output() const = 0;
    // A streamed body's handler called resume(): parse the backlog and read again (later,
    // not inside the caller).
    virtual void on_body_resumed() = 0;

   protected:
    ~Listener() = default;
  };

  // `loop`, if given, is the connection's loop: a handler's exception is reported through
  // it (rate-limited log, stats().exceptions). Without one (benchmarks, the fuzzer) it is
  // logged through ioloop::logger().
  explicit HTTPConnectionCore(std::shared_ptr<HTTPCoreState> shared, IOLoop* loop = nullptr);
  // A stream still attached is detached as finished (its write(), finish() and flush() then
  // return FailedPrecondition), without its close callback: its loop may be going too.
  ~HTTPConnectionCore();
  HTTPConnectionCore(const HTTPConnectionCore&) = delete;
  HTTPConnectionCore& operator=(const HTTPConnectionCore&) = delete;

  // Without a listener, deferred output outside on_data() accumulates in pending_output()
  // for the caller to take (the fuzzer does).
  void set_listener(Listener* listener) { listener_ = listener; }
  // The connection's stream, for HTTPResponseWriter::remote_address(); once per connection.
  void set_stream(const IOStream* stream) { writer_.stream_ = stream; }
  HTTPOutput& pending_output() { return pending_; }

  // Parses `data`, runs the handler for each complete request and appends the responses (and
  // any 100 Continue, or a final error response) to `out`. Once `out.close` has been set, the
  // connection is finished: later calls ignore their input. Returns the number of requests
  // completed.
  //
  // Flow control: before each request is parsed, if out.size() >= `output_limit`, the core
  // stops and keeps the rest of the input, unparsed, as its backlog (has_backlog()). The
  // next call parses the backlog first, then its own `data` (call with empty data once the
  // output has drained). So one call's output exceeds output_limit by at most one response.
  size_t on_data(absl::string_view data, HTTPOutput& out, size_t output_limit = SIZE_MAX);
  bool has_backlog() const { return backlog_pos_ < backlog_.size(); }
  size_t backlog_size() const { return backlog_.size() - backlog_pos_; }

  // The 408 for a request that took too long (header section, body rate or whole-request
  // deadline); sets out.close. In the request's version when its request line is complete.
  void on_timeout(HTTPOutput& out);
  // The idle timeout is closing the connection (no response: http_server.h "Timeouts"): a
  // streamed body's handler gets on_close(DeadlineExceeded), not the Unavailable of a close.
  void on_idle_timeout();

  // Between requests with nothing pending (no deferred response or its stream, streamed
  // body, backlog, partial request or output): the core holds nothing that matters, so the
  // glue may destroy it and make a fresh one for the next request (an idle keep-alive
  // connection then costs no core). Not finished(): a finished core is closing.
  bool idle() const;
  // The client's address as the response writer cached it (empty if never asked), carried
  // from one core of a connection to the next so that it is asked of the socket once.
  std::string take_remote_address() { return std::move(writer_.remote_address_); }
  void set_remote_address(std::string address) { writer_.remote_address_ = std::move(address); }

  // Reuse instead of delete/new (the glue keeps a few idle cores per thread): recycle()
  // takes an idle() core back to the state of a new one, holding no server state (so a
  // recycled core keeps no server alive) and no large buffer; rebind() then makes it
  // equivalent to HTTPConnectionCore(shared, loop). Allocated capacity up to
  // kRecycledCapacity per buffer is kept: that is the point.
  void recycle();
  void rebind(std::shared_ptr<HTTPCoreState> shared, IOLoop* loop);

  // The parser's state, except that a request answered early (answer_early()) is complete:
  // the connection's last, whose remaining bytes are dropped (no request timeout applies).
  RequestParser::State parser_state() const {
    return body_.early ? RequestParser::State::kClosed : parser_.state();
  }
  // A request is answered early (or about to be: answer_early() waits for the glue's
  // callback): on_data() drops its input, so reading goes on whatever the output (a client that
  // reads only once it has sent its body must be able to send it), and no request timeout
  // applies any more.
  bool dropping_input() const { return body_.early || body_.early_requested; }
  bool finished() const { return finished_; }
  // A streamed body's handler returned false from on_body and has not resumed: parse and
  // read nothing (http_connection_body.cc).
  bool body_paused() const { return body_.paused; }

  // A deferred response has not ended yet (later requests wait in the backlog).
  bool response_pending() const { return d_.active; }
  // HTTPServerOptions::response_timeout ran out: 503 if nothing was sent, else close; the
  // stream is closed with DeadlineExceeded. Sets out.close.
  void on_response_timeout(HTTPOutput& out);
  // The connection closed: a pending response's stream is closed with Unavailable "HTTP
  // connection closed[: why]" and its flush callbacks in pending_output() fail.
  void on_connection_closed(const absl::Status& why);
  // What the stream of response `response` (a serial, see Deferred), or a flush or finish
  // callback of it, gets when the connection's end fails it: that response's own failure if it
  // failed (as its stream reports), else connection_closed_status(why).
  absl::Status closed_status(const absl::Status& why, uint64_t response) const {
    return response != d_.serial || d_.failure.ok() ? connection_closed_status(why) : d_.failure;
  }

  // internal::HTTPResponseTarget (HTTPResponseStream calls these).
  std::shared_ptr<HTTPResponseStream> defer() override;
  absl::Status stream_write(std::string chunk) override;
  void stream_flush(HTTPOutput::FlushCallback done) override;
  absl::Status stream_finish(HTTPOutput::FlushCallback done) override;
  absl::Status stream_interim(int status, absl::string_view reason,
                              const HTTPHeaders& fields) override;
  void stream_fail(const absl::Status& why, bool exception) override;
  size_t stream_queued() const override;

 private:
  // Empties result_.requests, handing the storage of the last one back to the parser.
  void recycle_requests() {
    if (result_.requests.empty()) return;
    parser_.recycle(std::move(result_.requests.back()));
    result_.requests.clear();
  }
  // request.keep_alive() for a request of result_, without scanning its fields again.
  bool request_keep_alive(const HTTPRequest& request) const;
  // Answers what the last parser_.feed() left in result_: its request (at most one), then
  // its error or 100 Continue. May finish the connection.
  void answer(HTTPOutput& out);
  // Appends writer_'s status line (after checking its status), the Server and Date fields and
  // the handler's fields; returns the status sent.
  int append_status_and_fields(int minor, std::string& h);
  // Serializes writer_ as the answer to a HEAD (`head`), CONNECT (`connect`) or other request
  // of HTTP/1.`minor`.
  void serialize(int minor, bool head, bool connect, bool keep_alive, HTTPOutput& out);
  // A canned response (errors, 408, 500) that closes the connection.
  void respond_and_close(int status, int minor, bool head, HTTPOutput& out);
  // The minor version for an error response: the request's if known, else 1.
  int error_minor() const { return parser_.version_minor().value_or(1) == 0 ? 0 : 1; }
  bool error_head() const { return parser_.head_request(); }  // no body (RFC 9110 §9.3.2)
  // Deferred responses (http_connection_stream.cc).
  // Where stream bytes go now: on_data()'s output during it, else pending_.
  HTTPOutput& stream_out() { return cur_out_ != nullptr ? *cur_out_ : pending_; }
  // Decides the framing and appends the head (and a body set on the writer); false if the
  // response failed instead.
  // `first` more bytes are about to be written, or the response is `finishing`: a Content-Length
  // they break fails the response with 500 before anything is sent.
  absl::Status send_stream_head(HTTPOutput& out, size_t first, bool finishing);
  absl::Status append_body(std::string chunk, HTTPOutput& out);
  // The response failed: 500/503 (`status`) if its head was not sent, else close; the stream
  // is closed with `why`. The caller notifies.
  void fail_response(const absl::Status& why, int status, HTTPOutput& out);
  // The handler misused its stream (or dropped or aborted it): counted in stream_errors and
  // logged, a few lines a second per thread.
  void report_stream_error(const absl::Status& why);
  // Tells the listener about output made outside on_data().
  void notify(bool response_ended);

  // Streamed request bodies (http_connection_body.cc). feed_streaming() is feed() with
  // stop_at_headers, asking the factory at a header section; returns the bytes consumed.
  size_t feed_streaming(absl::string_view input, HTTPOutput& out);
  bool on_body_piece(absl::string_view chunk);
  // on_end for the streamed request in result_ (rethrows the handler's exception).
  void end_body(const HTTPRequest& request);
  // The streamed request ended without on_end: on_close(why), then the handler is dropped.
  void close_body(const absl::Status& why);
  // answer_early() was called and the body is not complete: puts the request's head in
  // result_ for answer() (which runs on_end), and drops the rest of the connection's input.
  void start_early_answer();
  // HTTPBodyControl.
  void resume() override;
  void answer_early() override;
  uint64_t received() const override { return body_.received; }
  bool paused() const override { return body_.paused; }
  const std::string& remote_address() const override { return writer_.remote_address(); }

  void release_backlog() {
    std::string().swap(backlog_);  // give the memory back: it may be a whole read's worth
    backlog_pos_ = 0;
  }

  std::shared_ptr<HTTPCoreState> shared_;  // null only while recycled (see recycle())
  HTTPCoreState* s_;                       // shared_.get(), spelled short for the hot path
  IOLoop* loop_;
  RequestParser parser_;
  RequestParser::Result result_;
  HTTPResponseWriter writer_;
  // Input not parsed yet because output reached its limit: backlog_[backlog_pos_..].
  std::string backlog_;
  size_t backlog_pos_ = 0;
  bool finished_ = false;

  // The request whose handler is running (defer() reads it); null otherwise.
  const HTTPRequest* current_ = nullptr;
  HTTPOutput* cur_out_ = nullptr;  // on_data()'s output while it runs
  HTTPOutput pending_;             // deferred output made outside on_data()
  Listener* listener_ = nullptr;
  // The deferred response (one at a time: later requests wait).
  struct Deferred {
    // Unique to each deferred response of the process (its flush callbacks carry it), so that
    // a recycled core's next response is never taken for an earlier one.
    uint64_t serial = 0;
    std::weak_ptr<HTTPResponseStream> weak;
    HTTPResponseStream* stream = nullptr;  // attached while active
    uint64_t remaining = 0;                // Content-Length bytes still to write
    int minor = 1;
    bool used = false;     // defer() was called by the running handler
    bool active = false;   // not ended
    bool head = false;     // HEAD request
    bool connect = false;  // CONNECT request
    bool keep_alive = false;
    bool head_sent = false;
    bool has_length = false;
    bool chunked = false;
    bool no_body = false;  // HEAD, 204, 304, 2xx to CONNECT: body bytes are discarded
    absl::Status failure;  // why fail_response() ended it: what its pending flushes report
    // Dropped while an exception unwound in the handler: answer() counts the exception if it
    // leaves the handler, else reports `failure` as a stream error (the handler caught it).
    bool failed_unwinding = false;
    // HTTP/1.0 without a length: the connection's end ends the body.
    bool close_delimited() const { return head_sent && !has_length && !chunked && !no_body; }
  } d_;
  struct Body {
    std::unique_ptr<HTTPBodyHandler> handler;  // the streamed request's, until on_end/close
    uint64_t received = 0;
    bool paused = false;   // on_body returned false, no resume() yet
    bool in_sink = false;  // on_body is running
    bool resumed = false;  // resume() during on_body
    bool threw = false;    // on_body threw (the sink stopped feed())
    // feed_streaming() stopped at a header section: progress though it may have consumed no
    // byte (the head's last LF, which the parser takes next, can be all a read held).
    bool at_head = false;
    // The body ended on a piece that on_body stopped after: on_end waits for resume(), its
    // request kept in result_ (answer() held it, on_data() answers it once resumed).
    bool end_held = false;
    bool in_factory = false;       // on_headers is running (body_.handler is not set yet)
    bool early_requested = false;  // answer_early(): on_end as soon as the caller returned
    // Answered before its body ended: the connection's last request, input dropped.
    bool early = false;
  } body_;
};

}  // namespace ioloop::net

#endif  // IOLOOP_NET_SRC_HTTP_HTTP_CONNECTION_H_
