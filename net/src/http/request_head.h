// File: net/src/http/request_head.h (private)
// RequestParser's helpers for a request's header section: the field name or value being
// received, the empty lines allowed before it, the one pass over the fields that validation
// and keep-alive need, the emptying of a request whose storage is reused, the request line's
// end and version letters, and the RequestError for each error libhttp_parser reports.
#ifndef IOLOOP_NET_SRC_HTTP_REQUEST_HEAD_H_
#define IOLOOP_NET_SRC_HTTP_REQUEST_HEAD_H_

#include <http_parser.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "http/http_ascii.h"
#include "ioloop/net/http/http_headers.h"
#include "ioloop/net/http/http_request.h"
#include "ioloop/net/http/request_parser.h"

namespace ioloop::net::internal {

// A field name or value being received. libhttp_parser hands it over in one piece unless the
// bytes were split across reads, so it is kept as a view of the caller's data and copied only
// when a second piece comes or the data goes away (spill(): at the end of every
// http_parser_execute() call); commit_header() then builds the field's strings once.
class Piece {
 public:
  void add(const char* at, size_t n) {
    if (!spilled_ && view_.empty()) {
      view_ = absl::string_view(at, n);
      return;
    }
    spill();
    copy_.append(at, n);
  }
  // Copies a view into owned storage (the data it points into is about to go away).
  void spill() {
    if (spilled_ || view_.empty()) return;
    copy_.assign(view_.data(), view_.size());
    view_ = {};
    spilled_ = true;
  }
  absl::string_view get() const { return spilled_ ? absl::string_view(copy_) : view_; }
  bool empty() const { return get().empty(); }
  void clear() {
    view_ = {};
    copy_.clear();
    spilled_ = false;
  }

 private:
  absl::string_view view_;
  std::string copy_;
  bool spilled_ = false;
};

// Empty lines before a request line (RFC 9112 §2.2 asks a server to ignore "at least one";
// old clients send one after a POST body), which RequestParser consumes here rather than let
// libhttp_parser skip any number silently. More than kMax is a 400: a client sending a blank
// line now and then must not hold a connection for ever.
class EmptyLines {
 public:
  static constexpr int kMax = 8;

  // Consumes the CR and LF bytes at the start of `data`; returns how many. On a bare CR or on
  // the line past kMax, sets `error` and returns the position of the byte at fault.
  size_t skip(absl::string_view data, std::string& error) {
    size_t i = 0;
    for (; i < data.size(); ++i) {
      if (data[i] == '\n') {
        pending_cr_ = false;
        if (++count_ > kMax) {
          error = absl::StrCat("more than ", kMax, " empty lines before a request line");
          return i;
        }
      } else if (data[i] == '\r') {
        if (pending_cr_) {
          error = "bare CR before a request line";
          return i;
        }
        pending_cr_ = true;
      } else {
        break;
      }
    }
    return i;
  }
  // The bytes skipped so far end with a CR: the request line must not come next.
  bool pending_cr() const { return pending_cr_; }
  // A request line has started: the next request may have kMax again.
  void reset_count() { count_ = 0; }

 private:
  int count_ = 0;
  bool pending_cr_ = false;
};

// A request kept for its storage (RequestParser::recycle()) keeps at most this much: a
// large body or field list is freed, not kept.
inline constexpr size_t kReusedBodyCapacity = 4 * 1024;
inline constexpr size_t kReusedFields = 64;

// Empties `request` for reuse, keeping its storage within those bounds.
inline void clear_for_reuse(HTTPRequest& request) {
  if (request.body().capacity() > kReusedBodyCapacity) request.set_body(std::string());
  if (request.headers().size() > kReusedFields) request.mutable_headers() = HTTPHeaders();
  request.clear();
}

// RFC 9112 §3.2 (a 400 for an invalid Host value): uri-host [ ":" port ], RFC 3986 §3.2.2,
// with uri-host an IP-literal in brackets or a reg-name (unreserved, sub-delims and
// pct-encoded characters; an IPv4 address is one). Empty is valid (a target without an
// authority); a port after an empty host (":80") is not. A proxy forwards Host as received, so
// what it lets through reaches the upstream.
inline bool is_valid_host(absl::string_view host) {
  auto is_hex = [](char c) { return absl::ascii_isxdigit(static_cast<unsigned char>(c)); };
  auto is_name_char = [](char c) {  // unreserved / sub-delims, by table: this runs per request
    return (kAsciiClasses[static_cast<unsigned char>(c)] & kHostChar) != 0;
  };
  const char* p = host.data();
  const char* const end = p + host.size();
  if (p != end && *p == '[') {  // IPv6address or IPvFuture: checked loosely
    const char* const close = std::find(p, end, ']');
    if (close == end || close == p + 1) return false;
    for (++p; p != close; ++p) {
      if (!is_name_char(*p) && *p != ':') return false;
    }
    ++p;
  } else {
    while (p != end) {
      if (is_name_char(*p)) {
        ++p;
      } else if (*p == '%' && end - p >= 3 && is_hex(p[1]) && is_hex(p[2])) {
        p += 3;
      } else {
        break;
      }
    }
  }
  if (p == end) return true;
  if (*p != ':' || p == host.data()) return false;  // a port needs a host (RFC 9110 §4.2.1)
  for (++p; p != end; ++p) {
    if (*p < '0' || *p > '9') return false;
  }
  return true;
}

// RFC 9112 §3: a request target is one word. libhttp_parser (non-strict) lets HTAB, FF and DEL
// into it, where a front end that splits the request line at any whitespace reads other words.
// And §3.2: it has one of four forms. libhttp_parser takes any target that starts with '*' for
// a path ("*.evil.example:1/p"), which http_proxy appended to its upstream's origin (a request
// to a host and port of the client's choosing), and any target for CONNECT:
//  - origin-form "/path?query" and absolute-form "scheme://authority/path" (libhttp_parser
//    checks the scheme's "://"), for any method but CONNECT;
//  - authority-form "host:port", for CONNECT only;
//  - asterisk-form "*" (RFC 9112 §3.2.4 names OPTIONS; SSDP's M-SEARCH uses it too, so any
//    method but CONNECT may: the server's handler, or http_proxy's 501, answers it).
// No form has a fragment ("#"): libhttp_parser cut it off the path, and a proxy then forwarded
// a target other than the one received.
inline bool is_valid_target(absl::string_view target, bool connect) {
  for (const char c : target) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u == 0x7f || c == '#') return false;
  }
  if (connect) {
    const size_t colon = target.rfind(':');
    return colon != absl::string_view::npos && is_digits(target.substr(colon + 1)) &&
           is_valid_host(target);
  }
  if (target.empty() || target[0] == '/') return !target.empty();
  if (target[0] == '*') return target.size() == 1;
  return target.find("://") != absl::string_view::npos;
}

// RFC 9112 §3.2.2: with an absolute-form target, the server "MUST ignore the received Host
// header field (if any) and instead use the host information of the request-target", and a
// proxy must send that on. So the target's authority becomes the Host field (replacing the one
// received, which was checked, or added for HTTP/1.0, which may omit Host), for handlers and
// for http_proxy, which forwards Host as received. False if the authority is not a valid Host
// (or is empty, or has userinfo, which RFC 9110 §4.2.4 asks a recipient to treat as an error).
// Moves the request's fields: call it after the last use of a view into them.
inline bool host_from_target(HTTPRequest& request) {
  const std::optional<AbsoluteForm> absolute = split_absolute_form(request.target());
  if (!absolute) return true;
  if (absolute->authority.empty() || !is_valid_host(absolute->authority)) return false;
  request.mutable_headers().set("Host", std::string(absolute->authority));
  return true;
}

// None, or one Content-Length of digits whose value (`parsed`, libhttp_parser's) a signed
// 64-bit length holds: many an upstream would wrap a larger one (nginx answers 400 too).
inline bool valid_content_length(size_t fields, absl::string_view value, uint64_t parsed) {
  return fields == 0 || (fields == 1 && is_digits(value) && parsed <= uint64_t{INT64_MAX});
}

// RFC 9112 §6.1 for a request with Transfer-Encoding: exactly one coding, "chunked" (which
// libhttp_parser, `parser_chunked`, must have seen too), and no Content-Length beside it. The
// error (none if the fields are good) and its detail.
inline std::pair<std::optional<RequestError>, std::string> check_transfer_encoding(
    const HTTPHeaders& headers, bool content_length, bool parser_chunked) {
  if (content_length) {
    return {RequestError::kContentLengthWithTransferEncoding,
            "both Content-Length and Transfer-Encoding"};
  }
  int chunked = 0;
  bool empty_field = false;  // refused wherever it is: libhttp_parser frames by the last field
  for (const auto& [name, value] : headers) {
    if (!equals_ignore_case(name, "Transfer-Encoding")) continue;
    bool any = false;
    for (absl::string_view coding : split_header_list(value)) {
      any = true;
      if (!equals_ignore_case(coding, "chunked")) {
        return {RequestError::kUnsupportedTransferEncoding,
                absl::StrCat("Transfer-Encoding: ", value)};
      }
      ++chunked;
    }
    empty_field = empty_field || !any;
  }
  if (empty_field || chunked != 1 || !parser_chunked) {
    return {RequestError::kInvalidTransferEncoding,
            "Transfer-Encoding must be exactly \"chunked\""};
  }
  return {};
}

// What a header section says about framing and the connection, gathered in one pass (names
// are told apart by length first: most fields are none of these).
struct HeadFields {
  size_t hosts = 0;
  absl::string_view host;    // the first Host's value
  size_t lengths = 0;        // Content-Length fields
  absl::string_view length;  // the first Content-Length's value
  bool transfer_encoding = false;
  bool expect_continue = false;  // an Expect field holds 100-continue
  ConnectionTokens connection;
  // A value starts with a control byte: libhttp_parser checks every byte of a value but the
  // first (after the colon and whitespace), so "X: \x00evil" got through.
  bool control_first = false;
};

inline HeadFields scan_head_fields(const HTTPHeaders& headers) {
  HeadFields f;
  for (const auto& [name, value] : headers) {
    if (!value.empty() && is_control_but_htab(value[0])) f.control_first = true;
    switch (name.size()) {
      case 4:
        if (equals_ignore_case(name, "Host") && f.hosts++ == 0) f.host = value;
        break;
      case 6:
        if (!f.expect_continue && equals_ignore_case(name, "Expect")) {
          f.expect_continue = any_list_element(value, [](absl::string_view token) {
            return equals_ignore_case(token, "100-continue");
          });
        }
        break;
      case 10:
        if (equals_ignore_case(name, "Connection")) scan_connection_tokens(value, f.connection);
        break;
      case 14:
        if (equals_ignore_case(name, "Content-Length") && f.lengths++ == 0) f.length = value;
        break;
      case 17:
        if (equals_ignore_case(name, "Transfer-Encoding")) f.transfer_encoding = true;
        break;
      default:
        break;
    }
  }
  return f;
}

// Whether a request line, up to its first LF (`line`, without the LF), spells its version
// "HTTP/". libhttp_parser, built non-strict, checks the H and the digits and takes any byte for
// "TTP/", an LF included, so "GET / HXTP/1.1" was served and "GET /x H\nTP/1.1" was one line to
// it and two to a front end. A line without a second run of spaces is HTTP/0.9's "GET /x",
// which validation answers with a 505. Lines libhttp_parser rejects never get here.
inline bool request_line_spells_http(absl::string_view line) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  // The usual line: " HTTP/" and the version's three bytes (libhttp_parser checked those).
  constexpr absl::string_view kVersion = " HTTP/";
  if (line.size() >= kVersion.size() + 3 &&
      std::memcmp(line.data() + line.size() - 3 - kVersion.size(), kVersion.data(),
                  kVersion.size()) == 0) {
    return true;
  }
  const char* begin = line.data();
  const char* end = begin + line.size();
  const char* first = static_cast<const char*>(std::memchr(begin, ' ', line.size()));
  if (first == nullptr) return true;
  const char* last = end - 1;
  while (last > first && *last != ' ') --last;  // the last space: the version follows it
  const char* after_first = first;
  while (after_first < end && *after_first == ' ') ++after_first;
  if (after_first > last) return true;  // one run of spaces: "GET /x"
  constexpr absl::string_view kHttp = "HTTP/";
  return static_cast<size_t>(end - (last + 1)) >= kHttp.size() &&
         std::memcmp(last + 1, kHttp.data(), kHttp.size()) == 0;
}

// The request line as libhttp_parser consumes it: where its first LF is, and whether it spells
// its version HTTP. A line split across reads is gathered (at most max_header_size bytes, the
// header section's limit).
class RequestLine {
 public:
  // `consumed`: what libhttp_parser took while the line was pending. The LF's offset in it, or
  // npos: the line goes on.
  size_t find_end(absl::string_view consumed) {
    const void* lf = std::memchr(consumed.data(), '\n', consumed.size());
    if (lf == nullptr) {
      partial_.append(consumed.data(), consumed.size());
      return absl::string_view::npos;
    }
    const auto at = static_cast<size_t>(static_cast<const char*>(lf) - consumed.data());
    absl::string_view line = consumed.substr(0, at);
    if (!partial_.empty()) line = partial_.append(line.data(), line.size());
    spells_http_ = request_line_spells_http(line);
    partial_.clear();
    return at;
  }
  // For the line find_end() last found the end of.
  bool spells_http() const { return spells_http_; }

 private:
  std::string partial_;
  bool spells_http_ = true;
};

// The detail of a 501 for a method token (RequestError::kUnknownMethod).
inline constexpr char kMethodNotImplemented[] = "request method not implemented";

// A method token libhttp_parser does not know. It knows a fixed list (RFC 9110's, WebDAV's,
// PATCH, PURGE, M-SEARCH and a few more) and fails at the first byte that continues none of
// them. When that byte is a token character, the rest of the token decides: a space after it
// makes a well-formed method that this server does not implement, a 501 (RFC 9110 §9.1); any
// other byte a malformed request line. The same byte decides at every split.
class UnknownMethod {
 public:
  bool pending() const { return pending_; }
  // libhttp_parser failed at `byte`: true if the token goes on (read() decides).
  bool start(char byte) {
    pending_ = is_tchar(byte);
    return pending_;
  }
  // Reads on: the bytes of `data` taken, and `error` set once decided.
  size_t read(absl::string_view data, std::optional<RequestError>& error) {
    size_t i = 0;
    while (i < data.size() && is_tchar(data[i])) ++i;
    if (i < data.size()) {
      pending_ = false;
      error = data[i] == ' ' ? RequestError::kUnknownMethod : RequestError::kMalformed;
    }
    return i;
  }

 private:
  bool pending_ = false;
};

// The RequestError for an error libhttp_parser reported. `field`: the name being received.
inline RequestError classify_parser_error(http_errno err, bool request_line_done,
                                          const HTTPHeaders& headers, absl::string_view field) {
  switch (err) {
    case HPE_HEADER_OVERFLOW:  // libhttp_parser's own limit, when max_header_size is above it
      return request_line_done ? RequestError::kHeaderTooLarge : RequestError::kUriTooLong;
    case HPE_INVALID_CONTENT_LENGTH:
      return RequestError::kInvalidContentLength;
    case HPE_UNEXPECTED_CONTENT_LENGTH: {
      // A second Content-Length, or Content-Length with chunked: tell which.
      bool te =
          headers.contains("Transfer-Encoding") || equals_ignore_case(field, "Transfer-Encoding");
      return te ? RequestError::kContentLengthWithTransferEncoding
                : RequestError::kInvalidContentLength;
    }
    case HPE_INVALID_TRANSFER_ENCODING:
      return RequestError::kInvalidTransferEncoding;
    default:
      return RequestError::kMalformed;
  }
}

}  // namespace ioloop::net::internal

#endif  // IOLOOP_NET_SRC_HTTP_REQUEST_HEAD_H_
