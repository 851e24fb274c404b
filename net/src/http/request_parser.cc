// File: net/src/http/request_parser.cc
// RequestParser on libhttp_parser. The parser is paused in four callbacks so that
// http_parser_execute() returns at each boundary where this wrapper has work to do: end of a
// header section that a body follows, end of a chunk's data, last-chunk line (start of
// trailers) and end of a message. Between boundaries, the bytes handed to libhttp_parser in a
// header or trailer section are capped at what is left of max_header_size, so the 431 fires at
// one fixed stream position whatever the split (and before libhttp_parser can see, and report,
// anything past the limit).
#include "ioloop/net/http/request_parser.h"

#include <http_parser.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "http/chunk_line_guard.h"
#include "http/http_ascii.h"
#include "http/line_end_scan.h"
#include "http/request_head.h"

namespace ioloop::net {

using internal::clear_for_reuse;
using internal::is_tchar;  // RFC 9110 §5.6.2 token characters
using internal::Piece;

class RequestParser::Impl {
 public:
  explicit Impl(Options options) : options_(options) {
    http_parser_init(&parser_, HTTP_REQUEST);
    parser_.data = this;
  }

  // A new parser's state, by assignment so that no member can be forgotten.
  void reset(Options options) {
    *this = Impl(options);
    parser_.data = this;
  }

  void recycle(HTTPRequest request) {
    clear_for_reuse(request);
    spare_ = std::move(request);
  }

  size_t feed(absl::string_view data, Result& result, const FeedOptions& options);
  absl::Status stream_body(BodySink sink);
  bool streaming() const { return static_cast<bool>(sink_); }

  State state() const { return state_; }
  std::optional<int> version_minor() const {
    if (!request_line_done_ || parser_.http_major != 1) return std::nullopt;
    return parser_.http_minor;
  }
  bool head_request() const { return head_; }
  std::optional<RequestError> error() const { return error_; }
  const std::string& error_detail() const { return error_detail_; }
  const HTTPRequest* pending_request() const {
    return state_ == State::kBody ? &current_ : nullptr;
  }
  const Options& options() const { return options_; }

 private:
  enum class Section { kHead, kBody, kTrailers, kOther };

  Section section() const {
    if (state_ == State::kIdle || state_ == State::kHeaders) return Section::kHead;
    if (state_ == State::kBody) return in_trailers_ ? Section::kTrailers : Section::kBody;
    return Section::kOther;
  }

  // Records the first error; the callback that calls it returns -1 to stop libhttp_parser.
  int fail(RequestError error, std::string detail) {
    if (!error_) {
      error_ = error;
      error_detail_ = std::move(detail);
    }
    state_ = State::kError;
    sink_ = nullptr;  // never called again: release what it holds
    return -1;
  }

  void commit_header() {
    if (!field_.empty() || in_value_) {
      absl::string_view value = value_.get();
      while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) {
        value.remove_suffix(1);
      }
      current_.mutable_headers().add(field_.get(), value);
    }
    field_.clear();
    value_.clear();
    in_value_ = false;
  }

  int validate_head();
  // An error in a head's or trailers' bytes found after http_parser_execute() returned (a bare
  // CR, a fold, a version not spelled HTTP) overrides any other from that call (those bytes came
  // first). A request it completed is none; its method stays for head_request() (the caller
  // drops it for a bare CR in the request line: fed bytewise, that line never ended). Only
  // `in_trailers` does the version stand for the error response: in a head, the parser may have
  // run past a bare CR (taking an LF for a letter of the version), so it depends on the split.
  void fail_after_parse(Result& result, size_t requests_before, bool in_trailers,
                        absl::string_view detail) {
    error_.reset();
    fail(RequestError::kMalformed, std::string(detail));
    while (result.requests.size() > requests_before) {  // one at most: each completion pauses
      head_ = result.requests.back().method_id() == HTTPMethod::kHead;
      if (!result.streamed.empty() && result.streamed.back() + 1 == result.requests.size()) {
        result.streamed.pop_back();
      }
      result.requests.pop_back();
    }
    request_line_done_ = in_trailers;
  }
  int fail_body_too_large() {
    return fail(RequestError::kBodyTooLarge,
                absl::StrCat("Content-Length ", parser_.content_length, " > max_body_size ",
                             options_.max_body_size));
  }

  // libhttp_parser callbacks.
  static Impl* self(http_parser* p) { return static_cast<Impl*>(p->data); }
  static int on_message_begin(http_parser* p);
  static int on_url(http_parser* p, const char* at, size_t n);
  static int on_header_field(http_parser* p, const char* at, size_t n);
  static int on_header_value(http_parser* p, const char* at, size_t n);
  static int on_headers_complete(http_parser* p);
  static int on_body(http_parser* p, const char* at, size_t n);
  static int on_chunk_header(http_parser* p);
  static int on_chunk_complete(http_parser* p);
  static int on_message_complete(http_parser* p);
  static const http_parser_settings& settings();

  Options options_;
  http_parser parser_;
  State state_ = State::kIdle;
  bool in_trailers_ = false;
  // The two bytes after a chunk's data: on_chunk_complete pauses after them and feed() checks
  // them (internal::consumed_ends_with_crlf), with the last byte of the previous call.
  bool chunk_data_end_ = false;
  char last_byte_ = 0;
  // Checked apart from libhttp_parser: chunk-size lines (before it sees them); CRs and folds in
  // head and trailer sections (at_head_end_: on_headers_complete ran, data[n] is the head's LF).
  internal::ChunkLineGuard chunk_line_;
  internal::LineEndScan line_ends_{internal::LineEndScan::Folds::kReject};
  bool at_head_end_ = false;
  std::optional<RequestError> error_;
  std::string error_detail_;

  HTTPRequest current_;
  HTTPRequest spare_;  // recycle()'s request: storage for the next current_
  std::string target_;
  Piece field_;
  Piece value_;
  bool in_value_ = false;
  // Decided by validate_head() for the current request: what keep_alive() and
  // expects_continue() would say (the header section does not change after it).
  bool keep_alive_ = false;
  bool expects_continue_ = false;
  size_t section_bytes_ = 0;  // bytes of the current header or trailer section so far
  size_t body_bytes_ = 0;
  bool continue_pending_ = false;  // expects 100-continue, body incomplete, not yet reported
  // Before a request line: the header section has started with empty lines only (state_ is
  // kHeaders, libhttp_parser has seen none of it), how many, and a CR awaiting its LF.
  bool leading_ = false;
  internal::UnknownMethod method_;  // libhttp_parser failed at a method token's byte: reads on
  internal::EmptyLines empty_lines_;
  bool request_line_done_ = false;      // the current request's line has its LF: version known
  bool head_ = false;                   // and it named HEAD (head_request())
  internal::RequestLine request_line_;  // where it ends; whether its version spells HTTP
  Result* result_ = nullptr;            // where on_message_complete puts requests
  // Streaming: this feed()'s stop_at_headers; why the last pause ends feed() (a header section
  // followed by a body, or the sink asked to stop); a 413 (Content-Length above max_body_size)
  // held back at a stop at the header section until the caller has chosen not to stream (the
  // next feed()); the current request's sink.
  enum class Stop : uint8_t { kNone, kHeaders, kSink };
  bool stop_at_headers_ = false;
  Stop stop_ = Stop::kNone;
  bool too_large_pending_ = false;
  BodySink sink_;
};

const http_parser_settings& RequestParser::Impl::settings() {
  static const http_parser_settings kSettings = [] {
    http_parser_settings s{};  // what http_parser_settings_init() does: no callback
    s.on_message_begin = &Impl::on_message_begin;
    s.on_url = &Impl::on_url;
    s.on_header_field = &Impl::on_header_field;
    s.on_header_value = &Impl::on_header_value;
    s.on_headers_complete = &Impl::on_headers_complete;
    s.on_body = &Impl::on_body;
    s.on_chunk_header = &Impl::on_chunk_header;
    s.on_chunk_complete = &Impl::on_chunk_complete;
    s.on_message_complete = &Impl::on_message_complete;
    return s;
  }();
  return kSettings;
}

int RequestParser::Impl::on_message_begin(http_parser* p) {
  Impl* me = self(p);
  me->state_ = State::kHeaders;
  me->leading_ = false;
  me->empty_lines_.reset_count();
  me->request_line_done_ = me->head_ = me->in_trailers_ = false;
  me->current_.clear();
  me->target_.clear();
  me->field_.clear();
  me->value_.clear();
  me->in_value_ = me->continue_pending_ = me->too_large_pending_ = false;
  me->body_bytes_ = 0;
  return 0;
}

int RequestParser::Impl::on_url(http_parser* p, const char* at, size_t n) {
  self(p)->target_.append(at, n);
  return 0;
}

int RequestParser::Impl::on_header_field(http_parser* p, const char* at, size_t n) {
  Impl* me = self(p);
  // Debian builds libhttp_parser non-strict, which lets spaces into field names ("Host : h",
  // " Host: h"); RFC 9112 §5.1 requires a 400 for those, in trailer field lines too.
  for (size_t i = 0; i < n; ++i) {
    if (!is_tchar(at[i])) {
      return me->fail(RequestError::kMalformed, "invalid character in header field name");
    }
  }
  if (me->in_trailers_) return 0;  // trailers are framing leftovers: checked, not kept
  if (me->in_value_) me->commit_header();
  me->field_.add(at, n);
  return 0;
}

int RequestParser::Impl::on_header_value(http_parser* p, const char* at, size_t n) {
  Impl* me = self(p);
  // For a trailer value's first byte: libhttp_parser checks the others (validate_head() a head's).
  if (me->in_trailers_ && !internal::is_field_value(absl::string_view(at, n))) {
    return me->fail(RequestError::kMalformed, http_errno_description(HPE_INVALID_HEADER_TOKEN));
  }
  if (me->in_trailers_) return 0;
  me->in_value_ = true;
  me->value_.add(at, n);
  return 0;
}

int RequestParser::Impl::validate_head() {
  if (parser_.http_major != 1) {
    return fail(RequestError::kUnsupportedVersion,
                absl::StrCat("HTTP/", parser_.http_major, ".", parser_.http_minor));
  }
  if (!internal::is_valid_target(current_.target(), parser_.method == HTTP_CONNECT)) {
    return fail(RequestError::kMalformed, "invalid request target");
  }
  const auto [hosts, host, lengths, length, transfer_encoding, expect_continue, connection,
              control_first] = internal::scan_head_fields(current_.headers());
  if (control_first) {
    return fail(RequestError::kMalformed, http_errno_description(HPE_INVALID_HEADER_TOKEN));
  }
  if (hosts > 1 || (hosts == 0 && parser_.http_minor >= 1) || !internal::is_valid_host(host)) {
    return fail(RequestError::kBadHost, hosts == 0  ? "HTTP/1.1 request without Host"
                                        : hosts > 1 ? "several Host fields"
                                                    : "invalid Host value");
  }
  if (!internal::valid_content_length(lengths, length, parser_.content_length)) {
    return fail(RequestError::kInvalidContentLength,
                lengths > 1 ? std::string("several Content-Length fields")
                            : absl::StrCat("Content-Length: ", length));
  }
  if (transfer_encoding) {
    auto [error, detail] = internal::check_transfer_encoding(current_.headers(), lengths > 0,
                                                             parser_.flags & F_CHUNKED);
    if (error) return fail(*error, std::move(detail));
  }
  keep_alive_ = internal::keep_alive_rule(1, parser_.http_minor, parser_.method == HTTP_CONNECT,
                                          connection, transfer_encoding);
  expects_continue_ = parser_.http_minor >= 1 && expect_continue;
  // Last: it may move fields, which the views above point into.
  if (!internal::host_from_target(current_)) {
    return fail(RequestError::kBadHost, "invalid authority in the request target");
  }
  if ((parser_.flags & F_CONTENTLENGTH) && parser_.content_length > options_.max_body_size &&
      parser_.method != HTTP_CONNECT) {  // a CONNECT has no body (on_headers_complete)
    // Stopping at this header section, the caller may yet stream the body (no limit then).
    if (stop_at_headers_) {
      too_large_pending_ = true;
      return 0;
    }
    return fail_body_too_large();
  }
  return 0;
}

int RequestParser::Impl::on_headers_complete(http_parser* p) {
  Impl* me = self(p);
  me->at_head_end_ = true;
  me->commit_header();
  me->current_.set_method(http_method_str(static_cast<http_method>(p->method)));
  me->current_.set_target(std::move(me->target_));
  me->target_.clear();
  me->current_.set_version(p->http_major, p->http_minor);
  if (me->validate_head() != 0) return -1;
  me->state_ = State::kBody;
  // What follows a CONNECT's head is the tunnel's (RFC 9110 §9.3.6), never read as a body.
  const bool has_body =
      p->method != HTTP_CONNECT &&
      ((p->flags & F_CHUNKED) || ((p->flags & F_CONTENTLENGTH) && p->content_length > 0));
  me->continue_pending_ = has_body && me->expects_continue_;
  if (has_body && me->stop_at_headers_) me->stop_ = Stop::kHeaders;
  if (has_body && (p->flags & F_CHUNKED)) me->chunk_line_.begin(/*after_head=*/true);
  // Without a body the message completes on the same LF (and pauses there): one
  // http_parser_execute() per request on the fast path instead of two.
  if (has_body) http_parser_pause(p, 1);
  return 0;
}

int RequestParser::Impl::on_body(http_parser* p, const char* at, size_t n) {
  Impl* me = self(p);
  if (me->sink_) {
    if (n == 0) return 0;
    me->body_bytes_ += n;
    if (!me->sink_(absl::string_view(at, n))) {
      me->stop_ = Stop::kSink;
      // The last piece of a Content-Length body: let the message complete first. Pausing
      // here would leave that piece's last byte unconsumed (libhttp_parser counts it when it
      // completes the message), so feed() could return 0 after delivering a piece.
      if ((p->flags & F_CHUNKED) || p->content_length > 0) http_parser_pause(p, 1);
    }
    return 0;
  }
  if (n > me->options_.max_body_size - me->body_bytes_) {
    // Unreachable while Content-Length and chunk sizes are checked up front; kept as a bound.
    return me->fail(RequestError::kBodyTooLarge, "body exceeds max_body_size");
  }
  me->body_bytes_ += n;
  if (!me->options_.discard_body) me->current_.mutable_body().append(at, n);
  return 0;
}

int RequestParser::Impl::on_chunk_header(http_parser* p) {
  Impl* me = self(p);
  uint64_t size = p->content_length;
  if (size == 0) {  // last-chunk: trailers follow, bounded like a header section
    me->in_trailers_ = true;
    http_parser_pause(p, 1);
    return 0;
  }
  if (!me->sink_ && size > me->options_.max_body_size - me->body_bytes_) {
    return me->fail(RequestError::kBodyTooLarge, absl::StrCat("chunked body exceeds max_body_size ",
                                                              me->options_.max_body_size));
  }
  return 0;
}

int RequestParser::Impl::on_chunk_complete(http_parser* p) {
  Impl* me = self(p);
  if (me->in_trailers_) return 0;  // also called at the end of the trailer section
  me->chunk_data_end_ = true;
  me->chunk_line_.begin(/*after_head=*/false);
  http_parser_pause(p, 1);
  return 0;
}

int RequestParser::Impl::on_message_complete(http_parser* p) {
  Impl* me = self(p);
  const bool keep_alive = me->keep_alive_;
  if (me->sink_) {
    me->result_->streamed.push_back(me->result_->requests.size());
    me->sink_ = nullptr;
  }
  me->result_->requests.push_back(std::move(me->current_));
  me->current_ = std::move(me->spare_);  // cleared by recycle(), or empty
  me->state_ = keep_alive ? State::kIdle : State::kClosed;
  me->request_line_done_ = me->head_ = false;
  me->in_trailers_ = me->continue_pending_ = false;
  http_parser_pause(p, 1);
  return 0;
}

size_t RequestParser::Impl::feed(absl::string_view data, Result& result,
                                 const FeedOptions& feed_options) {
  result_ = &result;
  stop_at_headers_ = feed_options.stop_at_headers;
  const size_t max_requests = feed_options.max_requests;
  const size_t size = data.size();
  const size_t first_request = result.requests.size();
  bool at_headers = false;
  // Only a feed() stopping at a header section sets it, so it is checked at the next one's
  // first byte (the header section's last LF, where the buffered parse reports it).
  if (too_large_pending_ && !data.empty()) {  // the caller did not stream the body
    too_large_pending_ = false;
    fail_body_too_large();
  }
  while (!data.empty() && state_ != State::kError && state_ != State::kClosed) {
    const Section before = section();
    const size_t requests_before = result.requests.size();
    size_t len = data.size();
    if (before == Section::kHead || before == Section::kTrailers) {
      if (section_bytes_ >= options_.max_header_size) {
        if (method_.pending()) {  // RFC 9112 §3: longer than any method is a 501
          fail(RequestError::kUnknownMethod, internal::kMethodNotImplemented);
        } else if (before == Section::kHead && !request_line_done_) {
          fail(RequestError::kUriTooLong,
               absl::StrCat("request line exceeds max_header_size ", options_.max_header_size));
        } else {
          fail(RequestError::kHeaderTooLarge,
               absl::StrCat(before == Section::kHead ? "header" : "trailer",
                            " section exceeds max_header_size ", options_.max_header_size));
        }
        break;
      }
      len = std::min(len, options_.max_header_size - section_bytes_);
    }
    if (method_.pending()) {
      std::optional<RequestError> decided;
      const size_t n = method_.read(data.substr(0, len), decided);
      data.remove_prefix(n);
      section_bytes_ += n;
      if (decided == RequestError::kUnknownMethod) fail(*decided, internal::kMethodNotImplemented);
      if (decided == RequestError::kMalformed) fail(*decided, "invalid HTTP method");
      continue;
    }
    if (state_ == State::kIdle || leading_) {
      // Empty lines before the request line are consumed here, not by libhttp_parser (which
      // would skip any number silently), and they start the header section: its size limit
      // and the server's header timeout count them.
      std::string error;
      const size_t skipped = empty_lines_.skip(data.substr(0, len), error);
      if (!error.empty()) {
        fail(RequestError::kMalformed, std::move(error));
        break;
      }
      if (skipped > 0) {
        data.remove_prefix(skipped);
        section_bytes_ += skipped;
        state_ = State::kHeaders;
        leading_ = true;
        continue;
      }
      if (empty_lines_.pending_cr()) {  // data[0] starts the request line: the CR was bare
        fail(RequestError::kMalformed, "bare CR before a request line");
        break;
      }
    }
    const bool line_pending = !request_line_done_ && before == Section::kHead;
    // A chunk-size line's bytes before a bad one go first; then data[0] is that byte.
    len = chunk_line_.limit(data.substr(0, len));
    if (len == 0) {
      fail(RequestError::kMalformed, std::string(chunk_line_.reason()));
      break;
    }
    size_t n = http_parser_execute(&parser_, &settings(), data.data(), len);
    field_.spill();  // a field split across reads: its bytes so far outlive `data`
    value_.spill();
    const char previous = last_byte_;
    if (n > 0) last_byte_ = data[n - 1];
    if (chunk_data_end_) {
      chunk_data_end_ = false;
      if (!internal::consumed_ends_with_crlf(data.substr(0, n), previous)) {
        fail(RequestError::kMalformed, "CRLF expected after chunk data");
        break;
      }
    }
    // The request line ends at the first LF consumed: http_major/minor are final then.
    const size_t line_end =
        line_pending ? request_line_.find_end(data.substr(0, n)) : absl::string_view::npos;
    if (line_end != absl::string_view::npos && state_ != State::kIdle && state_ != State::kClosed) {
      request_line_done_ = true;
      head_ = parser_.method == HTTP_HEAD;
    }
    // At a head's end libhttp_parser stopped on the byte it takes for the head's last LF (it
    // consumes it after the pause, or never): checked first, a bare CR there is the error.
    const absl::string_view next =
        std::exchange(at_head_end_, false) ? data.substr(n, 1) : absl::string_view();
    const size_t bad = before == Section::kHead || before == Section::kTrailers
                           ? line_ends_.find(data.substr(0, n), next)
                           : absl::string_view::npos;
    if (line_end != absl::string_view::npos && !request_line_.spells_http() &&
        (bad == absl::string_view::npos || bad > line_end)) {
      fail_after_parse(result, requests_before, false, "invalid HTTP version in the request line");
      break;
    }
    if (bad != absl::string_view::npos) {
      fail_after_parse(result, requests_before, before == Section::kTrailers, line_ends_.error());
      if (line_end != absl::string_view::npos && bad < line_end) head_ = false;
      break;
    }
    data.remove_prefix(n);
    if (before == Section::kHead || before == Section::kTrailers) section_bytes_ += n;
    // A request without a body goes from its header section to the next one's in one call.
    if (section() != before || result.requests.size() != requests_before) section_bytes_ = 0;
    if (result.requests.size() != requests_before) {  // a new message starts
      line_ends_.reset();
      parser_.nread = 0;  // libhttp_parser's own head count (80 KiB) outlived trailers
    }

    http_errno err = HTTP_PARSER_ERRNO(&parser_);
    if (error_) break;  // a callback failed
    if (err == HPE_PAUSED) {
      http_parser_pause(&parser_, 0);
      if (stop_ != Stop::kNone) {  // streaming only: never on the synchronous fast path
        at_headers = stop_ == Stop::kHeaders;
        (at_headers ? result.at_headers : result.sink_paused) = true;
        stop_ = Stop::kNone;
        break;
      }
      if (result.requests.size() - first_request >= max_requests) break;
      continue;
    }
    if (err != HPE_OK) {
      const absl::string_view in_chunk_line =
          section() == Section::kBody && (parser_.flags & F_CHUNKED)
              ? internal::ChunkLineGuard::parser_error(err)
              : absl::string_view();
      if (!in_chunk_line.empty()) {
        fail(RequestError::kMalformed, std::string(in_chunk_line));
      } else if (err == HPE_INVALID_METHOD && !data.empty() && data[0] == ' ' &&
                 state_ == State::kHeaders && !leading_) {
        // A known method's prefix ("GE"): on_message_begin ran, so it took a letter at least.
        fail(RequestError::kUnknownMethod, internal::kMethodNotImplemented);
      } else if (err == HPE_INVALID_METHOD && !data.empty() && method_.start(data[0])) {
        state_ = State::kHeaders;  // a request has begun: the header timeout and limit count
        continue;
      } else {
        fail(internal::classify_parser_error(err, request_line_done_, current_.headers(),
                                             field_.get()),
             http_errno_description(err));
      }
      break;
    }
    if (n == 0) {  // no progress without a pause or an error: never loop forever
      fail(RequestError::kMalformed, "parser made no progress");
      break;
    }
  }
  // At a stop at the header section, the 100 waits for the caller's choice (next feed()).
  if (state_ == State::kBody && continue_pending_ && !at_headers) {
    result.send_continue = true;
    continue_pending_ = false;
  }
  if (error_) result.error = error_;
  result_ = nullptr;
  stop_at_headers_ = false;
  return size - data.size();
}

absl::Status RequestParser::Impl::stream_body(BodySink sink) {
  if (!sink) return absl::InvalidArgumentError("stream_body: empty sink");
  if (state_ != State::kBody) {
    return absl::FailedPreconditionError("stream_body: no request body is pending");
  }
  if (sink_) return absl::FailedPreconditionError("stream_body: the body is streamed already");
  if (body_bytes_ > 0) {
    return absl::FailedPreconditionError("stream_body: body bytes were consumed already");
  }
  sink_ = std::move(sink);
  too_large_pending_ = false;  // a streamed body has no max_body_size
  return absl::OkStatus();
}

RequestParser::RequestParser() : RequestParser(Options()) {}
RequestParser::RequestParser(Options options) : impl_(std::make_unique<Impl>(options)) {}
RequestParser::~RequestParser() = default;
RequestParser::RequestParser(RequestParser&&) noexcept = default;
RequestParser& RequestParser::operator=(RequestParser&&) noexcept = default;
void RequestParser::reset(Options options) { impl_->reset(options); }
void RequestParser::recycle(HTTPRequest request) { impl_->recycle(std::move(request)); }

RequestParser::Result RequestParser::feed(absl::string_view data) {
  Result result;
  impl_->feed(data, result, FeedOptions());
  return result;
}
void RequestParser::feed(absl::string_view data, Result& result) {
  impl_->feed(data, result, FeedOptions());
}
size_t RequestParser::feed(absl::string_view data, Result& result, size_t max_requests) {
  return impl_->feed(data, result, FeedOptions{.max_requests = max_requests});
}
size_t RequestParser::feed(absl::string_view data, Result& result, const FeedOptions& options) {
  return impl_->feed(data, result, options);
}
absl::Status RequestParser::stream_body(BodySink sink) {
  return impl_->stream_body(std::move(sink));
}
bool RequestParser::streaming() const { return impl_->streaming(); }

RequestParser::State RequestParser::state() const { return impl_->state(); }
std::optional<RequestError> RequestParser::error() const { return impl_->error(); }
const std::string& RequestParser::error_detail() const { return impl_->error_detail(); }
const HTTPRequest* RequestParser::pending_request() const { return impl_->pending_request(); }
std::optional<int> RequestParser::version_minor() const { return impl_->version_minor(); }
bool RequestParser::head_request() const { return impl_->head_request(); }
const RequestParser::Options& RequestParser::options() const { return impl_->options(); }

}  // namespace ioloop::net
