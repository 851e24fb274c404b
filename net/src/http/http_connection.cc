// File: net/src/http/http_connection.cc
#include "http_connection.h"

#include <cassert>
#include <chrono>
#include <cstdint>
#include <utility>

#include "absl/strings/str_cat.h"
#include "http/http_ascii.h"
#include "http/raw_writer.h"
#include "http_date.h"
#include "http_exception.h"
#include "ioloop/logging.h"
#include "ioloop/net/io_stream.h"
#include "ioloop/rate_limiter.h"

namespace ioloop::net {
namespace {

using internal::RawWriter;

// Fields the server writes itself (see http_response.h); Server too while it names one.
bool is_server_field(absl::string_view name, const std::string& server_name) {
  switch (name.size()) {
    case 4:
      return internal::equals_ignore_case(name, "Date");
    case 6:
      return !server_name.empty() && internal::equals_ignore_case(name, "Server");
    case 10:
      return internal::equals_ignore_case(name, "Connection");
    case 14:
      return internal::equals_ignore_case(name, "Content-Length");
    case 17:
      return internal::equals_ignore_case(name, "Transfer-Encoding");
    default:
      return false;
  }
}

// What append_head() writes besides the handler's fields (their names and values excluded)
// and besides the status line's reason and the Server name.
constexpr size_t kHeadFixed = sizeof("HTTP/1.1 200 \r\n") - 1 + sizeof("Server: \r\n") - 1 +
                              sizeof("Date: \r\n") - 1 + kHTTPDateLength;
// What serialize() writes after append_head(), body excluded.
constexpr size_t kTailBound = sizeof("Content-Length: 18446744073709551615\r\n") - 1 +
                              sizeof("Connection: keep-alive\r\n") - 1 + 2;

// Appends the status line, Server, Date and the handler's fields to `h`, with room for `more`
// bytes after them: returns where those go (the caller writes them, then trims `h` to what
// it wrote) and sets `status_out` to the status sent. Inlined into serialize(): the
// synchronous fast path pays no call for sharing it with deferred heads.
[[gnu::always_inline]] inline char* append_head(const HTTPResponseWriter& writer,
                                                const std::string& server_name, int minor,
                                                std::string& h, size_t more, int& status_out) {
  const int status = sent_status(writer.status());
  absl::string_view reason = writer.reason();
  if (status != writer.status()) {
    // A few lines a second per thread: a handler that does this does it for every request.
    thread_local LogRateLimiter limiter{5, std::chrono::seconds(1)};
    uint64_t suppressed = 0;
    if (limiter.allow(Clock::now(), &suppressed)) {
      logger().error("HTTP handler set status {}, not a final status (200..599); sending 500{}",
                     writer.status(), suppressed_note(suppressed));
    }
    reason = reason_phrase(500);
  } else if (!internal::is_field_value(reason)) {
    reason = reason_phrase(status);
  }
  size_t bound = kHeadFixed + reason.size() + server_name.size() + more;
  for (const auto& [name, value] : writer.headers()) bound += name.size() + value.size() + 4;
  const size_t start = h.size();
  h.resize(start + bound);
  RawWriter w(h.data() + start);
  if (minor == 0) {
    w.literal("HTTP/1.0 ");
  } else {
    w.literal("HTTP/1.1 ");
  }
  w.put(static_cast<char>('0' + status / 100));
  w.put(static_cast<char>('0' + status / 10 % 10));
  w.put(static_cast<char>('0' + status % 10));
  w.put(' ');
  w.put(reason);
  w.literal("\r\n");
  if (!server_name.empty()) {
    w.literal("Server: ");
    w.put(server_name);
    w.literal("\r\n");
  }
  w.literal("Date: ");
  w.put(cached_http_date());
  w.literal("\r\n");
  for (const auto& [name, value] : writer.headers()) {
    if (is_server_field(name, server_name) || !internal::is_sendable_field(name, value)) continue;
    w.put(name);
    w.literal(": ");
    w.put(value);
    w.literal("\r\n");
  }
  status_out = status;
  return w.end();
}

}  // namespace

HTTPConnectionCore::HTTPConnectionCore(std::shared_ptr<HTTPCoreState> shared, IOLoop* loop)
    : shared_(std::move(shared)), s_(shared_.get()), loop_(loop), parser_(s_->parser_options) {
  writer_.target_ = this;
}

HTTPConnectionCore::~HTTPConnectionCore() {
  if (body_.handler != nullptr) close_body(absl::CancelledError("HTTP connection destroyed"));
  if (d_.stream != nullptr) {
    HTTPResponseStream* stream = d_.stream;
    d_.stream = nullptr;
    d_.active = false;
    stream->detach(absl::OkStatus());  // no close callback: nobody is left to run it
  }
}

size_t HTTPConnectionCore::on_data(absl::string_view data, HTTPOutput& out, size_t output_limit) {
  if (finished_) return 0;
  absl::string_view input = data;
  const bool had_backlog = has_backlog();
  if (had_backlog) {
    backlog_.append(data.data(), data.size());
    input = absl::string_view(backlog_).substr(backlog_pos_);
  }
  size_t completed = 0;
  cur_out_ = &out;
  if (body_.end_held && !body_.paused) [[unlikely]] {
    body_.end_held = false;
    answer(out);  // the held request: on_end now
  }
  if (body_.early_requested) [[unlikely]] {  // answer_early() from outside on_data()
    recycle_requests();
    result_.clear();
    start_early_answer();
    answer(out);
  }
  // Streamed bodies cost the synchronous fast path this one test.
  const bool streaming = static_cast<bool>(s_->body_factory);
  // One request per feed(), so that answering can stop between any two requests, with the
  // bytes after the stop still unparsed (they cost their size; parsed requests would cost
  // far more). A pending deferred response stops it too (the pipelining rule), and so does a
  // streamed body's handler that stopped (flow control).
  while (!input.empty() && !finished_ && out.size() < output_limit && !d_.active && !body_.paused &&
         !body_.early) {
    recycle_requests();
    result_.send_continue = false;
    result_.error.reset();
    const size_t n =
        streaming ? feed_streaming(input, out) : parser_.feed(input, result_, /*max_requests=*/1);
    input.remove_prefix(n);
    completed += result_.requests.size();
    answer(out);
    // The parser takes nothing more (never spin), unless it stopped at a streamed request's
    // head: then its last LF is still to be fed, whatever else the read held.
    const bool at_head = std::exchange(body_.at_head, false);
    if (n == 0 && !finished_ && !at_head) input = {};
    // A handler that stopped or destroyed the server closed the stream (the close is reported
    // after this dispatch): no request behind that one reaches the handler.
    if (writer_.stream_ != nullptr && writer_.stream_->closed()) input = {};
  }
  cur_out_ = nullptr;
  // Decided here, over stream_finish()'s guess, when this call made the close: a deferred
  // response finished inside its handler could not see the bytes after its request, which are
  // still in `input`, not yet in the backlog.
  if (out.close) {
    out.client_done = input.empty() && parser_.state() == RequestParser::State::kClosed;
  }
  if (finished_ || body_.early || input.empty()) {  // answered early: the rest is dropped
    if (had_backlog || !backlog_.empty()) release_backlog();
  } else if (had_backlog) {
    backlog_pos_ = backlog_.size() - input.size();
  } else {
    backlog_.assign(input.data(), input.size());
    backlog_pos_ = 0;
  }
  if (has_backlog() && !d_.active && !body_.paused)
    s_->output_stalls.fetch_add(1, std::memory_order_relaxed);
  return completed;
}

void HTTPConnectionCore::answer(HTTPOutput& out) {
  for (const HTTPRequest& request : result_.requests) {
    if (body_.paused) [[unlikely]] {
      // A streamed body whose last piece on_body stopped after: on_end waits for resume(),
      // as it would for any other piece (on_data() comes back to this request).
      body_.end_held = true;
      return;
    }
    s_->requests.fetch_add(1, std::memory_order_relaxed);
    writer_.reset();
    // The parser answers any major version but 1 with 505, so only the minor matters here;
    // HTTP/1.2+ is answered as HTTP/1.1, the highest version we speak (RFC 9110 §6.2).
    const int minor = request.version_minor() == 0 ? 0 : 1;
    const bool head = request.method_id() == HTTPMethod::kHead;
    const bool connect = request.method_id() == HTTPMethod::kConnect;
    bool threw = false;
    current_ = &request;
    try {
      if (body_.handler == nullptr) [[likely]] {
        s_->handler(request, writer_);
      } else {
        end_body(request);  // the streamed request (feed_streaming() completes one at most)
      }
    } catch (...) {
      threw = true;
      // Logged (rate-limited) and counted by the loop, like any user callback's exception.
      internal::report_http_exception(loop_, "HTTP handler").IgnoreError();
    }
    current_ = nullptr;
    if (d_.used) {
      // The handler deferred its response: the stream serialized (or will serialize) it.
      d_.used = false;
      const bool failed_unwinding = std::exchange(d_.failed_unwinding, false);
      if (threw) {
        s_->handler_exceptions.fetch_add(1, std::memory_order_relaxed);
        if (d_.active) {
          fail_response(absl::InternalError("HTTP handler threw after defer()"), 500, out);
        }
      } else if (failed_unwinding) {
        report_stream_error(d_.failure);  // the exception that dropped it was caught
      }
      if (d_.active || finished_) return;  // wait for it, or the connection ended
      continue;
    }
    if (threw) {
      s_->handler_exceptions.fetch_add(1, std::memory_order_relaxed);
      logger().debug("HTTP handler threw on {} {}; answering 500 and closing", request.method(),
                     request.target());
      respond_and_close(500, minor, head, out);
      return;
    }
    const bool keep_alive = request_keep_alive(request) && !writer_.close_requested() &&
                            !writer_.headers().has_token("Connection", "close");
    serialize(minor, head, connect, keep_alive, out);
    s_->responses.fetch_add(1, std::memory_order_relaxed);
    if (!keep_alive) {
      // Later pipelined requests are not answered (RFC 9112 §9.6: the connection ends with
      // this response).
      finished_ = true;
      out.close = true;
      return;
    }
  }

  if (result_.error) {
    s_->protocol_errors.fetch_add(1, std::memory_order_relaxed);
    logger().debug("HTTP request rejected: {} ({})", std::string(error_name(*result_.error)),
                   parser_.error_detail());
    if (body_.handler != nullptr) {
      close_body(absl::InvalidArgumentError(absl::StrCat(
          "HTTP request body: ", error_name(*result_.error), " (", parser_.error_detail(), ")")));
    }
    respond_and_close(error_status(*result_.error), error_minor(), error_head(), out);
    return;
  }
  if (result_.send_continue) out.head.append("HTTP/1.1 100 Continue\r\n\r\n");
}

void HTTPConnectionCore::on_timeout(HTTPOutput& out) {
  if (finished_) return;
  if (body_.handler != nullptr) {
    close_body(absl::DeadlineExceededError("HTTP request body timed out"));
  }
  respond_and_close(408, error_minor(), error_head(), out);
}

void HTTPConnectionCore::respond_and_close(int status, int minor, bool head, HTTPOutput& out) {
  writer_.reset();
  writer_.set_status(status);
  writer_.add_header("Content-Type", "text/plain");
  writer_.set_body(absl::StrCat(reason_phrase(status), "\n"));
  serialize(minor, head, /*connect=*/false, /*keep_alive=*/false, out);  // 4xx, 5xx: framed
  s_->responses.fetch_add(1, std::memory_order_relaxed);
  finished_ = true;
  out.close = true;
  release_backlog();
}

// Here rather than with the other stream_* calls (http_connection_stream.cc) for
// is_server_field(): an interim head drops the same fields a final one does.
absl::Status HTTPConnectionCore::stream_interim(int status, absl::string_view reason,
                                                const HTTPHeaders& fields) {
  if (!d_.active) return absl::FailedPreconditionError("HTTP response not active");
  // RFC 9110 §15.2: an HTTP/1.0 client would take it for the final response.
  if (d_.minor == 0) return absl::OkStatus();
  if (reason.empty() || !internal::is_field_value(reason)) reason = reason_phrase(status);
  std::string& h = stream_out().head;
  absl::StrAppend(&h, "HTTP/1.1 ", status, " ", reason, "\r\n");
  for (const auto& [name, value] : fields) {
    if (is_server_field(name, s_->server_name) || !internal::is_sendable_field(name, value)) {
      continue;
    }
    absl::StrAppend(&h, name, ": ", value, "\r\n");
  }
  h.append("\r\n");
  notify(/*response_ended=*/false);
  return absl::OkStatus();
}

int HTTPConnectionCore::append_status_and_fields(int minor, std::string& h) {
  int status = 0;
  char* end = append_head(writer_, s_->server_name, minor, h, 0, status);
  h.resize(static_cast<size_t>(end - h.data()));
  return status;
}

void HTTPConnectionCore::recycle() {
  shared_.reset();
  s_ = nullptr;
  loop_ = nullptr;
  listener_ = nullptr;
  recycle_requests();  // the last request's storage, trimmed, goes to the parser
  result_.clear();
  writer_.reset();
  writer_.stream_ = nullptr;
  writer_.remote_address_.clear();
  if (writer_.body_.capacity() > kRecycledCapacity) std::string().swap(writer_.body_);
  // idle() guarantees the rest: no backlog, pending output, stream or body handler, and
  // the parser between requests (rebind() resets it). A past deferred response's stream may
  // still be referenced weakly, and its failure kept; a streamed body's flags go too (an
  // early answer never leaves an idle core, but a reused one must not inherit one).
  d_ = Deferred{};
  body_ = Body{};
}

void HTTPConnectionCore::rebind(std::shared_ptr<HTTPCoreState> shared, IOLoop* loop) {
  shared_ = std::move(shared);
  s_ = shared_.get();
  loop_ = loop;
  finished_ = false;
  current_ = nullptr;
  cur_out_ = nullptr;
  // An idle core's parser is between requests, the state in which a keep-alive connection's
  // parser begins its next one: only another server's limits need a reset.
  if (!(parser_.options() == s_->parser_options)) parser_.reset(s_->parser_options);
}

bool HTTPConnectionCore::request_keep_alive(const HTTPRequest& request) const {
  if (body_.early) return false;  // its body's rest is not read: the connection's last
  // The parser decided it already: after a request that is not keep-alive it is kClosed for
  // good and completes no other (request_parser.h), so only the last request of a feed can be
  // one, and it is one exactly when the parser is closed.
  const bool keep_alive =
      &request != &result_.requests.back() || parser_.state() != RequestParser::State::kClosed;
  assert(keep_alive == request.keep_alive());
  return keep_alive;
}

bool HTTPConnectionCore::idle() const {
  return !finished_ && !d_.active && d_.stream == nullptr && body_.handler == nullptr &&
         !has_backlog() && current_ == nullptr && pending_.empty() && pending_.on_flushed.empty() &&
         parser_.state() == RequestParser::State::kIdle;
}

void HTTPConnectionCore::serialize(int minor, bool head, bool connect, bool keep_alive,
                                   HTTPOutput& out) {
  std::string& h = out.head;
  std::string& body = writer_.mutable_body();
  // The body is copied behind the head unless it is large (then it gets its own chunk); a
  // body that is not sent is never copied.
  const bool copy_body = !head && body.size() <= kCopyBodyLimit;
  int status = 0;
  RawWriter w(append_head(writer_, s_->server_name, minor, h,
                          kTailBound + (copy_body ? body.size() : 0), status));
  const bool bodyless = unframed_response(status, connect);
  const bool reset = status == 205;  // no content, "Content-Length: 0" (RFC 9110 §15.3.6)
  if (reset) body.clear();
  uint64_t length = body.size();
  // A HEAD without a body: the handler's Content-Length, what its GET would send (§9.3.2).
  if (head && body.empty() && !reset) {
    uint64_t n = 0;
    const auto cl = writer_.headers().get("Content-Length");
    if (cl && parse_length(*cl, n)) length = n;
  }
  if (!bodyless) {
    w.literal("Content-Length: ");
    w.decimal(length);
    w.literal("\r\n");
  }
  if (!keep_alive) {
    w.literal("Connection: close\r\n");
  } else if (minor == 0) {
    w.literal("Connection: keep-alive\r\n");
  }
  w.literal("\r\n");
  if (!head && !bodyless && copy_body) w.put(body);
  h.resize(static_cast<size_t>(w.end() - h.data()));
  if (head || bodyless || body.empty() || copy_body) return;
  out.chunks.push_back(std::move(h));
  h.clear();
  out.chunks.push_back(std::move(body));
  body.clear();
}

}  // namespace ioloop::net
