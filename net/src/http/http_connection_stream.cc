// File: net/src/http/http_connection_stream.cc
// HTTPConnectionCore as the target of a deferred response (HTTPResponseStream): the framing
// (Content-Length, chunked, close-delimited), its misuse, and how the response ends.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <exception>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "http_connection.h"
#include "ioloop/logging.h"
#include "ioloop/rate_limiter.h"
#include "ioloop/time.h"
#include "post_status.h"

namespace ioloop::net {
absl::Status connection_closed_status(const absl::Status& why) {
  return absl::UnavailableError(why.ok() ? std::string("HTTP connection closed")
                                         : absl::StrCat("HTTP connection closed: ", why.message()));
}

std::shared_ptr<HTTPResponseStream> HTTPConnectionCore::defer() {
  if (d_.active) return d_.weak.lock();
  if (current_ == nullptr || d_.used) return nullptr;  // outside a handler, or ended already
  const HTTPRequest& r = *current_;
  static std::atomic<uint64_t> serials{0};
  d_ = Deferred{};
  d_.serial = serials.fetch_add(1, std::memory_order_relaxed) + 1;
  d_.used = d_.active = true;
  d_.minor = r.version_minor() == 0 ? 0 : 1;
  d_.head = r.method_id() == HTTPMethod::kHead;
  d_.connect = r.method_id() == HTTPMethod::kConnect;
  d_.keep_alive = request_keep_alive(r);  // decided by the parser: no second pass
  auto stream = HTTPResponseStream::make(this, loop_, &writer_, d_.minor, d_.head);
  d_.weak = stream;
  d_.stream = stream.get();
  s_->deferred_responses.fetch_add(1, std::memory_order_relaxed);
  return stream;
}

absl::Status HTTPConnectionCore::send_stream_head(HTTPOutput& out, size_t first, bool finishing) {
  if (d_.head_sent) return absl::OkStatus();
  std::string body = std::move(writer_.mutable_body());
  writer_.mutable_body().clear();
  uint64_t length = 0;
  const std::optional<absl::string_view> cl = writer_.headers().get("Content-Length");
  const bool bodyless = unframed_response(sent_status(writer_.status()), d_.connect);
  // A 205 has no content: "Content-Length: 0", writes dropped as a HEAD's (RFC 9110 §15.3.6).
  const bool reset = writer_.status() == 205;
  const bool no_body = bodyless || d_.head || reset;
  absl::Status error;
  if (cl && !bodyless && !parse_length(*cl, length)) {
    error = absl::InvalidArgumentError(
        absl::StrCat("HTTP response Content-Length \"", *cl, "\" is not a number"));
  } else if (cl && !no_body && body.size() + first > length) {
    error = absl::InvalidArgumentError(absl::StrCat("HTTP response write of ", body.size() + first,
                                                    " bytes exceeds its Content-Length ", length));
  } else if (cl && !no_body && finishing && body.size() < length) {
    error = absl::InvalidArgumentError(absl::StrCat("HTTP response finished after ", body.size(),
                                                    " of its Content-Length ", length, " bytes"));
  }
  if (!error.ok()) {
    report_stream_error(error);
    fail_response(error, 500, out);
    return error;
  }
  std::string& h = out.head;
  append_status_and_fields(d_.minor, h);
  bool keep_alive = d_.keep_alive && !writer_.close_requested() &&
                    !writer_.headers().has_token("Connection", "close");
  if (bodyless) {
    // no framing fields (RFC 9110 §8.6, RFC 9112 §6.1)
  } else if (reset) {
    h.append("Content-Length: 0\r\n");
    d_.has_length = true;
    d_.remaining = 0;
  } else if (cl) {
    absl::StrAppend(&h, "Content-Length: ", length, "\r\n");
    d_.has_length = true;
    d_.remaining = length;
  } else if (d_.minor == 1) {
    h.append("Transfer-Encoding: chunked\r\n");
    d_.chunked = true;
  } else if (!d_.head) {
    keep_alive = false;  // HTTP/1.0 without a length: the close ends the body
    out.message = HTTPOutput::Message::kIncomplete;
  }
  d_.no_body = no_body;
  d_.keep_alive = keep_alive;
  if (!keep_alive) {
    h.append("Connection: close\r\n");
  } else if (d_.minor == 0) {
    h.append("Connection: keep-alive\r\n");
  }
  h.append("\r\n");
  d_.head_sent = true;
  d_.stream->mark_head_sent();
  return append_body(std::move(body), out);
}

absl::Status HTTPConnectionCore::append_body(std::string chunk, HTTPOutput& out) {
  if (chunk.empty() || d_.no_body) return absl::OkStatus();
  if (d_.has_length) {
    if (chunk.size() > d_.remaining) {
      absl::Status error = absl::InvalidArgumentError(
          absl::StrCat("HTTP response write of ", chunk.size(),
                       " bytes exceeds its Content-Length (", d_.remaining, " bytes left)"));
      report_stream_error(error);
      fail_response(error, 500, out);
      return error;
    }
    d_.remaining -= chunk.size();
  }
  std::string& h = out.head;
  if (d_.chunked) absl::StrAppend(&h, absl::Hex(chunk.size()), "\r\n");
  if (chunk.size() <= kCopyBodyLimit) {
    h.append(chunk);
  } else {
    out.chunks.push_back(std::move(h));
    h.clear();
    out.chunks.push_back(std::move(chunk));
  }
  if (d_.chunked) h.append("\r\n");
  return absl::OkStatus();
}

absl::Status HTTPConnectionCore::stream_write(std::string chunk) {
  if (!d_.active) return absl::FailedPreconditionError("HTTP response not active");
  HTTPOutput& out = stream_out();
  const size_t n = chunk.size();
  absl::Status status = send_stream_head(out, n, /*finishing=*/false);
  if (status.ok()) status = append_body(std::move(chunk), out);
  notify(/*response_ended=*/!d_.active);
  return status;
}

void HTTPConnectionCore::stream_flush(HTTPOutput::FlushCallback done) {
  if (!d_.active) {
    return internal::post_status(loop_, std::move(done),
                                 absl::FailedPreconditionError("not active"));
  }
  HTTPOutput& out = stream_out();
  absl::Status status = send_stream_head(out, 0, /*finishing=*/false);
  if (!status.ok()) {
    internal::post_status(loop_, std::move(done), status);
    notify(/*response_ended=*/true);
    return;
  }
  out.on_flushed.push_back({std::move(done), d_.serial});
  notify(/*response_ended=*/false);
}

absl::Status HTTPConnectionCore::stream_finish(HTTPOutput::FlushCallback done) {
  if (!d_.active) {
    absl::Status status = absl::FailedPreconditionError("HTTP response not active");
    if (done) internal::post_status(loop_, std::move(done), status);
    return status;
  }
  HTTPOutput& out = stream_out();
  absl::Status status = send_stream_head(out, 0, /*finishing=*/true);
  if (status.ok() && d_.has_length && !d_.no_body && d_.remaining > 0) {
    status = absl::InvalidArgumentError(absl::StrCat("HTTP response finished with ", d_.remaining,
                                                     " bytes of its Content-Length missing"));
    report_stream_error(status);
    fail_response(status, 500, out);
  }
  if (!status.ok()) {
    if (done) internal::post_status(loop_, std::move(done), status);
    notify(/*response_ended=*/true);
    return status;
  }
  if (d_.chunked && !d_.no_body) out.head.append("0\r\n\r\n");
  if (d_.close_delimited()) out.message = HTTPOutput::Message::kComplete;
  if (done) out.on_flushed.push_back({std::move(done), d_.serial});  // behind the last bytes
  s_->responses.fetch_add(1, std::memory_order_relaxed);
  if (!d_.keep_alive) {
    // Later pipelined requests are not answered (RFC 9112 §9.6).
    finished_ = true;
    out.close = true;
    out.client_done = !has_backlog() && parser_.state() == RequestParser::State::kClosed;
    release_backlog();
  }
  HTTPResponseStream* stream = d_.stream;
  d_.stream = nullptr;
  d_.active = false;
  stream->detach(absl::OkStatus());
  notify(/*response_ended=*/true);
  return absl::OkStatus();
}

void HTTPConnectionCore::stream_fail(const absl::Status& why, bool exception) {
  if (!d_.active) return;
  if (exception) {
    s_->handler_exceptions.fetch_add(1, std::memory_order_relaxed);  // the loop logged it
  } else if (current_ != nullptr && std::uncaught_exceptions() > 0) {
    d_.failed_unwinding = true;  // answer() decides, once the handler returned or threw
  } else {
    report_stream_error(why);
  }
  fail_response(why, 500, stream_out());
  notify(/*response_ended=*/true);
}

void HTTPConnectionCore::report_stream_error(const absl::Status& why) {
  s_->stream_errors.fetch_add(1, std::memory_order_relaxed);
  // A few lines a second per thread: a failing source (an upstream resetting every response)
  // would otherwise write one per request.
  thread_local LogRateLimiter limiter{5, std::chrono::seconds(1)};
  uint64_t suppressed = 0;
  if (limiter.allow(Clock::now(), &suppressed)) {
    logger().error("{}{}", std::string(why.message()), suppressed_note(suppressed));
  }
}

void HTTPConnectionCore::fail_response(const absl::Status& why, int status, HTTPOutput& out) {
  logger().debug("HTTP response failed ({}): {}", d_.head_sent ? "closing" : "answering",
                 why.ToString());
  HTTPResponseStream* stream = d_.stream;
  d_.stream = nullptr;
  d_.active = false;
  d_.failure = why;
  if (!d_.head_sent) {
    respond_and_close(status, d_.minor, d_.head, out);
  } else {
    // Part of the response is out: only closing can tell the client it is cut short.
    finished_ = true;
    out.close = true;
    out.truncated = true;
    release_backlog();
  }
  // A stream being destroyed (abandoned) is already closed: nothing to tell it.
  if (stream != nullptr && !stream->closed()) stream->detach(why);
}

void HTTPConnectionCore::on_response_timeout(HTTPOutput& out) {
  if (!d_.active) return;
  s_->response_timeouts.fetch_add(1, std::memory_order_relaxed);
  fail_response(absl::DeadlineExceededError("HTTP response not finished within response_timeout"),
                503, out);
}

void HTTPConnectionCore::on_connection_closed(const absl::Status& why) {
  finished_ = true;
  // Nobody to tell (the usual close of an idle connection): spare making the status.
  if (body_.handler == nullptr && pending_.on_flushed.empty() && !d_.active) return;
  const absl::Status status = closed_status(why, d_.serial);
  if (body_.handler != nullptr) close_body(status);  // the client left mid-body
  for (HTTPOutput::Flush& f : pending_.on_flushed) {
    internal::post_status(loop_, std::move(f.callback), closed_status(why, f.response));
  }
  pending_.on_flushed.clear();
  if (!d_.active) return;
  HTTPResponseStream* stream = d_.stream;
  d_.stream = nullptr;
  d_.active = false;
  if (stream != nullptr && !stream->closed()) stream->detach(status);
}

size_t HTTPConnectionCore::stream_queued() const {
  const HTTPOutput& out = cur_out_ != nullptr ? *cur_out_ : pending_;
  return out.size() + (listener_ != nullptr ? listener_->queued_output() : 0);
}

void HTTPConnectionCore::notify(bool response_ended) {
  if (cur_out_ != nullptr) return;  // inside on_data(): its caller sends the output
  if (listener_ != nullptr) listener_->on_stream_output(response_ended);
}

}  // namespace ioloop::net
