// File: net/src/http/response_parser.cc
// ResponseParser on libhttp_parser (HTTP_RESPONSE mode). As in request_parser.cc, the parser is
// paused in the callbacks that end a section (end of a head, last-chunk line, end of a message)
// so that http_parser_execute() returns at each boundary where this wrapper has work to do, and
// the bytes handed to it in a head or trailer section are capped at what is left of
// max_header_size, so the limit fires at one fixed stream position whatever the split. Pausing
// in on_message_complete also makes feed() stop right after a response's last byte.
//
// libhttp_parser quirks handled here:
//  - It decides "no body" for 1xx/204/304 only without Content-Length or chunked, and never for
//    HEAD (it does not know the request): on_headers_complete returns 1 ("skip body") for all
//    of those, whatever the fields say.
//  - A close-delimited body ends at EOF only (http_parser_execute with len 0); finish() ends it
//    here instead, from the wrapper's own phase.
//  - After a message that does not keep the connection alive it enters s_dead; the parser is
//    re-initialised after each 1xx and on start(), so that never matters.
//  - Non-strict, it checks only the first letter of "HTTP" and reads a status code with
//    leading zeros ("0200" as 200): the status line's first 12 bytes are kept as they are fed
//    and checked at the head's end.
//  - Debian builds it non-strict: spaces in field names are let through, and after a CR
//    where an LF must follow it takes any byte as that LF (status line, end of the head,
//    chunk-size lines, the CRLF after chunk data, trailers). Both are rejected here: field
//    names are checked at the end of the head; every CR in a head or trailer section must be
//    followed by LF (scanned here); chunk-size lines are checked before the parser sees them
//    (chunk_line_guard.h); and the parser is paused after each chunk's data so that the bytes
//    it took for CR and LF can be checked.
#include "ioloop/net/http/response_parser.h"

#include <http_parser.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "http/chunk_line_guard.h"
#include "http/http_ascii.h"
#include "http/line_end_scan.h"

namespace ioloop::net {

bool HTTPResponseHead::keep_alive() const {
  const internal::ConnectionTokens tokens = internal::connection_tokens_of(headers);
  if (tokens.close) return false;
  // RFC 9112 §6.1: an HTTP/1.0 message with Transfer-Encoding has faulty framing; close after.
  if (version_minor < 1 && headers.contains("Transfer-Encoding")) return false;
  return version_minor >= 1 || tokens.keep_alive;
}

namespace {

absl::Status malformed(absl::string_view what) {
  return absl::DataLossError(absl::StrCat("malformed response: ", what));
}

// Debian's non-strict libhttp_parser lets spaces (and more) into a field name; it refuses an
// empty one itself.
bool bad_field_name(absl::string_view name) { return !name.empty() && !internal::is_token(name); }
constexpr absl::string_view kBadFieldName = "invalid character in header field name";

}  // namespace

class ResponseParser::Impl {
 public:
  explicit Impl(ResponseParserOptions options) : options_(options) {}

  void start(HTTPMethod method) {
    method_ = method;
    phase_ = Phase::kHead;
    started_ = false;
    close_delimited_ = false;
    interim_ = false;
    no_body_ = false;
    head_done_ = message_done_ = at_head_end_ = chunk_data_end_ = false;  // an error may leave one
    head_ = HTTPResponseHead();
    field_.clear();
    value_.clear();
    in_value_ = false;
    section_bytes_ = 0;
    interims_ = 0;
    line_ends_.reset();
    last_byte_ = 0;
    body_bytes_ = 0;
    content_length_ = 0;
    chunk_line_.reset();
    error_ = absl::OkStatus();
    init_parser();
  }

  absl::StatusOr<size_t> feed(absl::string_view data, Sink& sink);
  absl::Status finish(Sink& sink);

  bool started_response() const { return started_; }
  bool complete() const { return phase_ == Phase::kComplete; }
  bool keep_alive() const {
    return phase_ == Phase::kComplete && !close_delimited_ && head_keep_alive_;
  }

 private:
  enum class Phase {
    kNotStarted,  // before the first start()
    kHead,        // status line and fields (of a 1xx or of the final response)
    kBody,        // body after the final head (Content-Length, chunked or close-delimited)
    kTrailers,    // trailer section of a chunked body
    kComplete,
    kError,
  };

  // Also for each head after a 1xx: its status line is the next one kept.
  void init_parser() {
    http_parser_init(&parser_, HTTP_RESPONSE);
    parser_.data = this;
    status_kept_ = 0;
  }

  // Keeps the start of the status line from `offered`, bytes about to be given to
  // libhttp_parser in a head: a head that completes consumed them all (they precede its end).
  void keep_status_line(absl::string_view offered) {
    if (status_kept_ == 0) {  // libhttp_parser skips empty lines before a status line
      while (!offered.empty() && (offered[0] == '\r' || offered[0] == '\n')) {
        offered.remove_prefix(1);
      }
    }
    const size_t n = std::min(offered.size(), sizeof(status_line_) - status_kept_);
    std::memcpy(status_line_ + status_kept_, offered.data(), n);
    status_kept_ += n;
  }
  // RFC 9112 §4: "HTTP/" DIGIT "." DIGIT SP 3DIGIT, the code being `status`.
  bool status_line_ok(int status) const {
    if (status_kept_ != sizeof(status_line_)) return false;
    const absl::string_view line(status_line_, sizeof(status_line_));
    auto digit = [&line](size_t i) { return line[i] >= '0' && line[i] <= '9'; };
    return absl::StartsWith(line, "HTTP/") && digit(5) && line[6] == '.' && digit(7) &&
           line[8] == ' ' && internal::is_digits(line.substr(9, 3)) &&
           (line[9] - '0') * 100 + (line[10] - '0') * 10 + (line[11] - '0') == status;
  }

  // Records the first error; a callback that calls it returns -1 to stop libhttp_parser.
  int fail(absl::Status status) {
    if (error_.ok()) error_ = std::move(status);
    phase_ = Phase::kError;
    return -1;
  }

  void commit_header() {
    if (!field_.empty() || in_value_) {
      absl::string_view value = value_;
      while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) {
        value.remove_suffix(1);
      }
      // Most heads have under 8 fields: one allocation instead of the vector doubling.
      if (head_.headers.empty()) head_.headers.reserve(8);
      head_.headers.add(std::move(field_), value);
    }
    field_.clear();
    value_.clear();
    in_value_ = false;
  }

  // Checks the final head's framing fields; returns -1 (after fail()) if they are unusable.
  int validate_head();
  absl::Status classify_parser_error(http_errno err) const;

  // libhttp_parser callbacks.
  static Impl* self(http_parser* p) { return static_cast<Impl*>(p->data); }
  static int on_status(http_parser* p, const char* at, size_t n);
  static int on_header_field(http_parser* p, const char* at, size_t n);
  static int on_header_value(http_parser* p, const char* at, size_t n);
  static int on_headers_complete(http_parser* p);
  static int on_body(http_parser* p, const char* at, size_t n);
  static int on_chunk_header(http_parser* p);
  static int on_chunk_complete(http_parser* p);
  // Checks the line ends libhttp_parser (non-strict) does not; see the top of the file.
  // Returns false (after recording the error, which then takes precedence over any other from
  // the same http_parser_execute() call: those bytes came first) on a bad one.
  bool check_line_ends(absl::string_view data, size_t n, Phase before);
  static int on_message_complete(http_parser* p);
  static const http_parser_settings& settings();

  ResponseParserOptions options_;
  http_parser parser_;
  HTTPMethod method_ = HTTPMethod::kGet;
  Phase phase_ = Phase::kNotStarted;
  absl::Status error_;
  bool started_ = false;
  bool close_delimited_ = false;
  bool head_keep_alive_ = false;
  // Set by on_headers_complete for a 1xx head (skipped), and for a final head without body.
  bool interim_ = false;
  bool no_body_ = false;
  // Set in callbacks, acted upon by feed() once http_parser_execute() has returned paused.
  bool head_done_ = false;
  bool message_done_ = false;
  bool at_head_end_ = false;     // on_headers_complete ran: data[n] is the head's last LF
  bool chunk_data_end_ = false;  // on_chunk_complete ran: data[n - 2, n) are CR LF
  // In head and trailer sections: bare CRs (a response's folds are joined, RFC 9112 §5.2).
  internal::LineEndScan line_ends_{internal::LineEndScan::Folds::kAllow};
  char last_byte_ = 0;  // the last byte consumed
  // Control bytes and bare CRs in chunk-size lines, checked before the parser sees them.
  internal::ChunkLineGuard chunk_line_;
  HTTPResponseHead head_;
  std::string field_;
  std::string value_;
  bool in_value_ = false;
  // Bytes of the current head (with the interim heads before it) or trailer section so far.
  size_t section_bytes_ = 0;
  size_t interims_ = 0;  // interim (1xx) heads of the current response
  uint64_t body_bytes_ = 0;
  uint64_t content_length_ = 0;  // of the final head, when it has Content-Length
  Sink* sink_ = nullptr;         // during feed() only
  char status_line_[12];         // "HTTP/1.1 200": the current head's, as far as kept
  size_t status_kept_ = 0;
};

const http_parser_settings& ResponseParser::Impl::settings() {
  static const http_parser_settings settings = [] {
    http_parser_settings s;
    http_parser_settings_init(&s);
    s.on_status = &Impl::on_status;
    s.on_header_field = &Impl::on_header_field;
    s.on_header_value = &Impl::on_header_value;
    s.on_headers_complete = &Impl::on_headers_complete;
    s.on_body = &Impl::on_body;
    s.on_chunk_header = &Impl::on_chunk_header;
    s.on_chunk_complete = &Impl::on_chunk_complete;
    s.on_message_complete = &Impl::on_message_complete;
    return s;
  }();
  return settings;
}

int ResponseParser::Impl::on_status(http_parser* p, const char* at, size_t n) {
  self(p)->head_.reason.append(at, n);
  return 0;
}

int ResponseParser::Impl::on_header_field(http_parser* p, const char* at, size_t n) {
  Impl* me = self(p);
  if (me->phase_ == Phase::kTrailers) return 0;  // trailers are framing leftovers: not kept
  if (me->in_value_) me->commit_header();
  // Names are checked in on_headers_complete, not here: this callback runs at buffer ends, so
  // failing here would report the error at a split-dependent position (before or after an
  // error libhttp_parser finds later in the same name).
  me->field_.append(at, n);
  return 0;
}

int ResponseParser::Impl::on_header_value(http_parser* p, const char* at, size_t n) {
  Impl* me = self(p);
  if (me->phase_ == Phase::kTrailers) return 0;
  me->in_value_ = true;
  me->value_.append(at, n);
  return 0;
}

int ResponseParser::Impl::validate_head() {
  const HTTPHeaders& headers = head_.headers;
  std::vector<absl::string_view> encodings = headers.get_all("Transfer-Encoding");
  if (encodings.empty()) return 0;
  if (headers.contains("Content-Length")) {
    return fail(malformed("both Content-Length and Transfer-Encoding"));
  }
  // Only "chunked", once: this client asks for no other transfer coding (it sends no TE), and
  // passing on a body still encoded (or framed by EOF for "gzip") would hand its user bytes
  // that are not the representation.
  // A field with no coding is refused wherever it is: libhttp_parser frames by the last one.
  int chunked = 0;
  bool empty_field = false;
  for (absl::string_view value : encodings) {
    bool any = false;
    for (absl::string_view coding : split_header_list(value)) {
      if (!absl::EqualsIgnoreCase(coding, "chunked")) {
        return fail(malformed(absl::StrCat("unsupported Transfer-Encoding: ", value)));
      }
      any = true;
      ++chunked;
    }
    empty_field = empty_field || !any;
  }
  if (empty_field || chunked != 1 || !(parser_.flags & F_CHUNKED)) {
    return fail(malformed("Transfer-Encoding must be exactly \"chunked\""));
  }
  return 0;
}

int ResponseParser::Impl::on_headers_complete(http_parser* p) {
  Impl* me = self(p);
  me->at_head_end_ = true;
  me->commit_header();
  for (const auto& [name, value] : me->head_.headers) {
    if (bad_field_name(name)) return me->fail(malformed(kBadFieldName));
    // libhttp_parser checks every byte of a value but the first (after the colon and any
    // whitespace): a NUL or an escape sequence there would reach a proxy's client.
    if (!value.empty() && internal::is_control_but_htab(value[0])) {
      return me->fail(malformed(http_errno_description(HPE_INVALID_HEADER_TOKEN)));
    }
  }
  // RFC 9112 §4: reason-phrase = *( HTAB / SP / VCHAR / obs-text ); libhttp_parser lets
  // control bytes through, which a proxy would forward. (Checked here with the names, so that
  // the error is the same at every split.)
  if (!internal::is_field_value(me->head_.reason)) {
    return me->fail(malformed("invalid character in reason phrase"));
  }
  const int status = static_cast<int>(p->status_code);
  if (!me->status_line_ok(status)) return me->fail(malformed("invalid status line"));
  if (p->http_major != 1) {
    return me->fail(
        malformed(absl::StrCat("unsupported version HTTP/", p->http_major, ".", p->http_minor)));
  }
  if (status < 100 || status > 599) {
    return me->fail(malformed(absl::StrCat("invalid status code ", status)));
  }
  if (status == 101) {
    return me->fail(malformed("101 Switching Protocols (upgrades are not supported)"));
  }
  me->head_.version_minor = p->http_minor;
  me->head_.status = status;
  me->head_done_ = true;
  http_parser_pause(p, 1);
  if (status < 200) {  // interim: skipped whatever its fields say (RFC 9110 §15.2)
    me->interim_ = true;
    return 1;
  }
  // Over what a signed 64-bit length holds (a proxy's client may wrap it): nginx's 502.
  if ((p->flags & F_CONTENTLENGTH) && p->content_length > uint64_t{INT64_MAX}) {
    return me->fail(
        malformed(absl::StrCat("Content-Length ", p->content_length, " is over 2^63 - 1")));
  }
  // Without a body the head ends the response whatever its framing fields say (RFC 9112
  // §6.3): a HEAD response names the codings its GET would have.
  me->no_body_ = response_is_bodyless(me->method_, status);
  if (me->no_body_) return 1;
  if (me->validate_head() != 0) return -1;
  if (p->flags & F_CONTENTLENGTH) {
    me->content_length_ = p->content_length;
  } else if (!(p->flags & F_CHUNKED)) {
    me->close_delimited_ = true;
  } else {
    me->chunk_line_.begin(/*after_head=*/true);
  }
  return 0;
}

int ResponseParser::Impl::on_body(http_parser* p, const char* at, size_t n) {
  Impl* me = self(p);
  if (n == 0) return 0;
  me->body_bytes_ += n;
  me->sink_->on_body(absl::string_view(at, n));
  return 0;
}

int ResponseParser::Impl::on_chunk_header(http_parser* p) {
  Impl* me = self(p);
  if (p->content_length == 0) {  // last-chunk: trailers follow, bounded like a head
    me->phase_ = Phase::kTrailers;
    me->section_bytes_ = 0;
    http_parser_pause(p, 1);
  }
  return 0;
}

int ResponseParser::Impl::on_chunk_complete(http_parser* p) {
  Impl* me = self(p);
  // Also called at the end of the trailers (not a chunk's data; checked by the scan there).
  if (me->phase_ == Phase::kBody) {
    me->chunk_data_end_ = true;
    me->chunk_line_.begin(/*after_head=*/false);
    http_parser_pause(p, 1);
  }
  return 0;
}

bool ResponseParser::Impl::check_line_ends(absl::string_view data, size_t n, Phase before) {
  const char previous = last_byte_;
  if (n > 0) last_byte_ = data[n - 1];
  absl::string_view bad;
  // At a head's end libhttp_parser stopped on the byte it takes for the head's last LF (it
  // consumes it after the pause, or never: the callback may have failed).
  const absl::string_view next = at_head_end_ ? data.substr(n, 1) : absl::string_view();
  at_head_end_ = false;
  if ((before == Phase::kHead || before == Phase::kTrailers) &&
      line_ends_.find(data.substr(0, n), next) != absl::string_view::npos) {
    bad = internal::LineEndScan::kBareCr;
  }
  if (bad.empty() && chunk_data_end_) {
    chunk_data_end_ = false;
    if (!internal::consumed_ends_with_crlf(data.substr(0, n), previous)) {
      bad = "CRLF expected after chunk data";
    }
  }
  if (bad.empty()) return true;
  error_ = malformed(bad);  // overrides: these bytes precede whatever else failed
  phase_ = Phase::kError;
  return false;
}

int ResponseParser::Impl::on_message_complete(http_parser* p) {
  Impl* me = self(p);
  me->message_done_ = true;
  http_parser_pause(p, 1);
  return 0;
}

absl::Status ResponseParser::Impl::classify_parser_error(http_errno err) const {
  if (phase_ == Phase::kBody && (parser_.flags & F_CHUNKED)) {
    const absl::string_view in_chunk_line = internal::ChunkLineGuard::parser_error(err);
    if (!in_chunk_line.empty()) return malformed(in_chunk_line);
  }
  switch (err) {
    case HPE_HEADER_OVERFLOW:
      return absl::ResourceExhaustedError(
          absl::StrCat("response head exceeds ", HTTP_MAX_HEADER_SIZE, " bytes"));
    case HPE_UNEXPECTED_CONTENT_LENGTH: {
      // libhttp_parser raises it in a Content-Length value or at the head's end: every name
      // before is complete. One that is no token ("Transfer-Encoding :", which libhttp_parser
      // reads as Transfer-Encoding) is the first error.
      if (bad_field_name(field_) ||
          std::any_of(head_.headers.begin(), head_.headers.end(),
                      [](const auto& f) { return bad_field_name(f.first); })) {
        return malformed(kBadFieldName);
      }
      // A second Content-Length, or Content-Length with chunked: tell which.
      bool te = head_.headers.contains("Transfer-Encoding") ||
                absl::EqualsIgnoreCase(field_, "Transfer-Encoding");
      return malformed(te ? "both Content-Length and Transfer-Encoding"
                          : "several Content-Length fields");
    }
    case HPE_INVALID_CONSTANT:
      // In response mode only the "HTTP/" a status line starts with is such a constant: bytes
      // that are no HTTP response, or what follows a response whose framing ended before them.
      return malformed("no status line (\"HTTP/\") where one begins");
    default:
      return malformed(http_errno_description(err));
  }
}

bool response_is_bodyless(HTTPMethod method, int status) {
  return status < 200 || status == 204 || status == 304 || method == HTTPMethod::kHead ||
         (method == HTTPMethod::kConnect && status < 300);
}

absl::StatusOr<size_t> ResponseParser::Impl::feed(absl::string_view data, Sink& sink) {
  switch (phase_) {
    case Phase::kNotStarted:
      return absl::InvalidArgumentError("ResponseParser: feed() before start()");
    case Phase::kComplete:
      return absl::InvalidArgumentError("ResponseParser: feed() after the response completed");
    case Phase::kError:
      return error_;
    default:
      break;
  }
  sink_ = &sink;
  const size_t size = data.size();
  while (!data.empty()) {
    const Phase before = phase_;
    size_t len = data.size();
    if (before == Phase::kHead || before == Phase::kTrailers) {
      if (section_bytes_ >= options_.max_header_size) {
        fail(absl::ResourceExhaustedError(
            absl::StrCat("response ", before == Phase::kHead ? "head" : "trailer section",
                         before == Phase::kHead && interims_ > 0
                             ? absl::StrCat(", with its ", interims_, " interim (1xx) head",
                                            interims_ == 1 ? "," : "s,")
                             : "",
                         " exceeds max_header_size ", options_.max_header_size)));
        break;
      }
      len = std::min(len, options_.max_header_size - section_bytes_);
    }
    // A chunk-size line's bytes before a bad one go first; then data[0] is that byte.
    len = chunk_line_.limit(data.substr(0, len));
    if (len == 0) {
      fail(malformed(chunk_line_.reason()));
      break;
    }
    if (before == Phase::kHead && status_kept_ < sizeof(status_line_)) {
      keep_status_line(data.substr(0, len));
    }
    size_t n = http_parser_execute(&parser_, &settings(), data.data(), len);
    if (!started_) {
      // Empty lines before a status line (which libhttp_parser skips) are not a response yet.
      started_ = std::any_of(data.begin(), data.begin() + n,
                             [](char c) { return c != '\r' && c != '\n'; });
    }
    if (!check_line_ends(data, n, before)) break;
    data.remove_prefix(n);
    if (before == Phase::kHead || before == Phase::kTrailers) section_bytes_ += n;

    if (phase_ == Phase::kError) break;  // a callback failed
    http_errno err = HTTP_PARSER_ERRNO(&parser_);
    if (err == HPE_PAUSED) {
      http_parser_pause(&parser_, 0);
      if (head_done_) {
        head_done_ = false;
        if (!interim_) {
          head_keep_alive_ = head_.keep_alive();
          phase_ = Phase::kBody;
          section_bytes_ = 0;
          sink.on_head(std::move(head_));
          head_ = HTTPResponseHead();
        }
      }
      if (message_done_) {
        message_done_ = false;
        if (interim_) {  // a 1xx ended: the final response (or another 1xx) follows
          interim_ = false;
          ++interims_;
          sink.on_interim(std::move(head_));
          head_ = HTTPResponseHead();
          // section_bytes_ runs on: the interim heads and the final one share one budget.
          init_parser();
          continue;
        }
        phase_ = Phase::kComplete;
        sink.on_complete();
        break;
      }
      continue;
    }
    if (err != HPE_OK) {
      fail(classify_parser_error(err));
      break;
    }
    if (n == 0) {  // no progress without a pause or an error: never loop forever
      fail(malformed("parser made no progress"));
      break;
    }
  }
  sink_ = nullptr;
  if (phase_ == Phase::kError) {
    started_ = true;  // whatever arrived was not nothing
    return error_;
  }
  return size - data.size();
}

absl::Status ResponseParser::Impl::finish(Sink& sink) {
  switch (phase_) {
    case Phase::kNotStarted:
      return absl::InvalidArgumentError("ResponseParser: finish() before start()");
    case Phase::kComplete:
      return absl::OkStatus();
    case Phase::kError:
      return error_;
    case Phase::kHead:
      fail(absl::DataLossError(started_ ? "connection closed in the response head"
                                        : "connection closed before the response"));
      return error_;
    case Phase::kBody:
      if (close_delimited_) {
        phase_ = Phase::kComplete;
        sink.on_complete();
        return absl::OkStatus();
      }
      if (parser_.flags & F_CHUNKED) {
        fail(absl::DataLossError("connection closed in a chunked body"));
      } else {
        fail(absl::DataLossError(absl::StrCat("connection closed after ", body_bytes_, " of ",
                                              content_length_, " body bytes")));
      }
      return error_;
    case Phase::kTrailers:
      fail(absl::DataLossError("connection closed in a chunked body"));
      return error_;
  }
  return error_;
}

ResponseParser::ResponseParser(ResponseParserOptions options)
    : impl_(std::make_unique<Impl>(options)) {}
ResponseParser::~ResponseParser() = default;
ResponseParser::ResponseParser(ResponseParser&&) noexcept = default;
ResponseParser& ResponseParser::operator=(ResponseParser&&) noexcept = default;

void ResponseParser::start(HTTPMethod method) { impl_->start(method); }
absl::StatusOr<size_t> ResponseParser::feed(absl::string_view data, Sink& sink) {
  return impl_->feed(data, sink);
}
absl::Status ResponseParser::finish(Sink& sink) { return impl_->finish(sink); }
bool ResponseParser::started_response() const { return impl_->started_response(); }
bool ResponseParser::complete() const { return impl_->complete(); }
bool ResponseParser::keep_alive() const { return impl_->keep_alive(); }

}  // namespace ioloop::net
