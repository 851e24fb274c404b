// File: net/src/http/http_connection_body.cc
// HTTPConnectionCore with an HTTPBodyHandlerFactory: streamed request bodies
// (http_body_handler.h) on RequestParser's streaming mode (stop_at_headers, stream_body(), a
// sink returning false). Only reached when a factory is installed.
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "http_connection.h"
#include "http_exception.h"

namespace ioloop::net {

size_t HTTPConnectionCore::feed_streaming(absl::string_view input, HTTPOutput& out) {
  RequestParser::FeedOptions options;
  options.max_requests = 1;
  options.stop_at_headers = true;
  size_t n = parser_.feed(input, result_, options);
  if (result_.at_headers) {
    result_.at_headers = false;
    const HTTPRequest& head = *parser_.pending_request();
    std::unique_ptr<HTTPBodyHandler> handler;
    body_ = Body{};
    body_.at_head = true;
    body_.in_factory = true;
    try {
      handler = s_->body_factory(head, *this);
    } catch (...) {
      body_.in_factory = false;
      internal::report_http_exception(loop_, "HTTP body handler factory").IgnoreError();
      s_->handler_exceptions.fetch_add(1, std::memory_order_relaxed);
      respond_and_close(500, error_minor(), head.method_id() == HTTPMethod::kHead, out);
      return n;
    }
    body_.in_factory = false;
    bool buffered_too_large = false;
    if (handler != nullptr) {
      s_->streamed_requests.fetch_add(1, std::memory_order_relaxed);
      body_.handler = std::move(handler);
      // Cannot fail: state() is kBody and no body byte has been consumed.
      parser_.stream_body([this](absl::string_view chunk) { return on_body_piece(chunk); })
          .IgnoreError();
      if (body_.early_requested) {  // answered at the head: no 100 Continue, no body
        start_early_answer();
        return n;
      }
    } else if (const auto cl = head.headers().get("Content-Length")) {
      uint64_t length = 0;
      buffered_too_large =
          absl::SimpleAtoi(*cl, &length) && length > s_->parser_options.max_body_size;
    }
    // The rest of this read (the head's last LF at least, as the parser stops before it)
    // follows in the caller's next feed(). If nothing is left, an empty
    // feed() reports a 100 Continue the client may be waiting for (not for a buffered body
    // over max_body_size: its 413 comes with the next byte).
    body_.early_requested = false;  // a buffered body: answer_early() does not apply
    if (n == input.size() && !buffered_too_large) parser_.feed({}, result_, options);
    return n;
  }
  if (body_.threw) {
    // on_body threw: the parser stopped after that piece.
    body_.threw = false;
    s_->handler_exceptions.fetch_add(1, std::memory_order_relaxed);
    close_body(absl::InternalError("HTTP body handler's on_body threw"));
    result_.clear();  // a request its last piece completed is not answered
    respond_and_close(500, error_minor(), error_head(), out);
    return n;
  }
  if (body_.early_requested) {
    // on_body asked: on_end now. If that piece completed the body, its request is in result_
    // already; either way the connection ends with this response (no framing-dependent rule).
    if (result_.error) {
      body_.early_requested = false;  // the 400 of answer() wins
    } else if (result_.requests.empty()) {
      start_early_answer();
    } else {
      body_.early_requested = false;
      body_.early = true;
    }
  }
  return n;
}

void HTTPConnectionCore::start_early_answer() {
  body_.early_requested = false;
  body_.early = true;
  body_.paused = false;
  body_.end_held = false;
  result_.requests.push_back(*parser_.pending_request());
}

void HTTPConnectionCore::answer_early() {
  if (body_.handler == nullptr && !body_.in_factory) return;  // ended, or buffered
  if (body_.early_requested || body_.early) return;
  if (body_.end_held) {  // the body is complete, its request held: on_end comes with resume()
    body_.early = true;
    return resume();
  }
  body_.early_requested = true;
  // Inside on_headers or on_body feed_streaming() acts on it when that returns; elsewhere the
  // glue comes back to on_data() from a callback of its own (as for resume()).
  if (body_.in_sink || body_.in_factory) return;
  body_.paused = false;
  if (listener_ != nullptr) listener_->on_body_resumed();
}

bool HTTPConnectionCore::on_body_piece(absl::string_view chunk) {
  if (body_.handler == nullptr) return true;  // closed: drain
  body_.received += chunk.size();
  body_.in_sink = true;
  body_.resumed = false;
  bool go = true;
  try {
    go = body_.handler->on_body(chunk);
  } catch (...) {
    internal::report_http_exception(loop_, "HTTP body handler").IgnoreError();
    body_.in_sink = false;
    body_.threw = true;
    return false;
  }
  body_.in_sink = false;
  if (body_.early_requested) return false;  // stop here: feed_streaming() answers
  if (!go && !body_.resumed) {
    body_.paused = true;
    s_->body_pauses.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  return true;
}

void HTTPConnectionCore::end_body(const HTTPRequest& request) {
  // Destroyed when on_end returns or throws. Never paused here: answer() holds the request
  // until resume().
  std::unique_ptr<HTTPBodyHandler> handler = std::move(body_.handler);
  body_.paused = false;
  handler->on_end(request, writer_);
}

void HTTPConnectionCore::close_body(const absl::Status& why) {
  std::unique_ptr<HTTPBodyHandler> handler = std::move(body_.handler);
  body_.paused = false;
  body_.end_held = false;
  if (handler == nullptr) return;
  try {
    handler->on_close(why);
  } catch (...) {
    internal::report_http_exception(loop_, "HTTP body handler's on_close").IgnoreError();
    s_->handler_exceptions.fetch_add(1, std::memory_order_relaxed);
  }
}

void HTTPConnectionCore::on_idle_timeout() {
  if (body_.handler != nullptr) {
    close_body(absl::DeadlineExceededError("HTTP request body timed out (idle)"));
  }
}

void HTTPConnectionCore::resume() {
  if (body_.in_sink) {
    body_.resumed = true;
    return;
  }
  if (!body_.paused) return;
  body_.paused = false;
  if (listener_ != nullptr) listener_->on_body_resumed();
}

}  // namespace ioloop::net
