/// @file ioloop/net/http/response_parser.h
/// ResponseParser: the incremental HTTP/1.x response parser an HTTP client reads a connection
/// with. One per connection, reused for each response: start() it with the method of the request
/// the response answers, then feed() it bytes as they arrive, in any split; it reports the
/// response to a Sink as events (head, body pieces, end) and stops right after the response's
/// last byte, so that the caller knows where the connection's next response starts. Built on
/// Debian's libhttp_parser in HTTP_RESPONSE mode, which stays private to the .cc.
///
/// Guarantees:
///  - Split independence: feeding a response in any split (one byte at a time or all at once)
///    gives the same events (the body's bytes may arrive in other pieces, but their
///    concatenation is the same), the same consumed byte count and the same error.
///    max_header_size is enforced at a fixed stream position to make this hold
///    (tests/fuzz/response_parser_fuzzer.cc checks it).
///  - Framing (RFC 9112 §6.3): no body for a response to HEAD, a 2xx to CONNECT, 1xx, 204 and
///    304, whatever the fields say; otherwise chunked (Transfer-Encoding: chunked, the only
///    coding accepted), Content-Length, or close-delimited (neither: the body runs until the peer
///    closes, which finish() reports).
///  - 1xx interim responses (100, 102, 103, ...) are consumed and handed to Sink::on_interim
///    (a proxy forwards them), never taken for the final response. 101 Switching Protocols is
///    an error (this client never asks for an upgrade).
///  - Line endings: CRLF or bare LF in the head and trailers. A CR not followed by LF is an
///    error anywhere in a head or trailer section, and chunk-size lines and the end of each
///    chunk's data need CRLF (Debian's libhttp_parser is built non-strict and would take any
///    byte for that LF: checked here). Empty lines before the status line are skipped (they
///    count toward max_header_size) and are not "a byte of the response" for
///    started_response().
///  - Trailer fields of a chunked body are consumed and not reported.
///  - Errors: the first one leaves the parser failed: every later feed() or finish() returns it
///    again (until the next start()). Events reported before the error stand.
///      DataLoss          malformed input, with libhttp_parser's reason, as
///                        "malformed response: <reason>" (e.g. "malformed response: invalid
///                        HTTP status code"); and, with the same prefix: a bare CR; a
///                        character outside RFC 9110's token in a field name (checked at the
///                        end of the head, so that the error does not depend on the split);
///                        a status outside 100..599; 101; an HTTP major version other than 1;
///                        Content-Length together with Transfer-Encoding; several
///                        Content-Length fields (even equal ones: libhttp_parser rejects them,
///                        and RFC 9112 §6.3 allows it); any transfer coding other than a single
///                        "chunked" ("gzip, chunked" too: this client sends no TE field, so a
///                        server must not use other codings, and passing their bytes on as the
///                        body would be wrong). And the connection closed before the response
///                        ended (finish(), messages below).
///      ResourceExhausted the status line and fields (or the trailer section) exceed
///                        max_header_size bytes; detected as soon as byte max_header_size + 1
///                        of the section arrives.
///      InvalidArgument   feed() before start(), or after the response completed.
///  - Memory is bounded by max_header_size (plus per-field bookkeeping); body bytes are passed
///    through to the Sink, never stored.
///  - libhttp_parser has its own compiled-in header limit (HTTP_MAX_HEADER_SIZE, 80 KiB); a
///    max_header_size above it is effectively 80 KiB (also reported as ResourceExhausted).
///
/// Threading: one connection's parser; use from one thread at a time. The Sink is called
/// synchronously from feed()/finish() on the calling thread; it must not call back into this
/// parser, nor throw (the parser's state would then be unspecified: discard it).
///
/// Example:
/// ```
///   parser.start(HTTPMethod::kGet);
///   absl::StatusOr<size_t> used = parser.feed(bytes_just_read, sink);
///   if (!used.ok()) fail(used.status());
///   else if (parser.complete()) { keep = parser.keep_alive(); leftover = bytes.substr(*used); }
///   ... on EOF: absl::Status s = parser.finish(sink);
/// ```
#ifndef IOLOOP_NET_HTTP_RESPONSE_PARSER_H_
#define IOLOOP_NET_HTTP_RESPONSE_PARSER_H_

#include <cstddef>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "ioloop/net/http/http_headers.h"
#include "ioloop/net/http/http_request.h"

namespace ioloop::net {

/// The status line and fields of a final response.
struct HTTPResponseHead {
  int version_minor = 1;  ///< HTTP/1.x
  int status = 0;         ///< the status code
  std::string reason;     ///< as received (may be empty)
  HTTPHeaders headers;    ///< as received, in order

  /// Whether the connection may carry another request after this response, by RFC 9112 §9.3
  /// for a response: a "close" Connection token -> false; HTTP/1.1 -> true; HTTP/1.0 -> only
  /// with a "keep-alive" Connection token, and never with Transfer-Encoding (§6.1: faulty
  /// framing, close after it). (A close-delimited body also ends the connection: see
  /// ResponseParser::keep_alive().)
  bool keep_alive() const;

  /// Field-by-field equality.
  friend bool operator==(const HTTPResponseHead&, const HTTPResponseHead&) = default;
};

/// Whether a final response of `status` to a `method` request has no body whatever its framing
/// fields say (RFC 9110 §6.4.1, §9.3.6): a HEAD's, a 204, a 304, a 2xx to CONNECT. A 1xx has none
/// either. The rule ResponseParser frames by.
bool response_is_bodyless(HTTPMethod method, int status);

/// The limits of a ResponseParser.
struct ResponseParserOptions {
  /// Bytes of the status line and fields, up to and including the empty line; the trailer
  /// section of a chunked body has the same limit, separately. Interim (1xx) heads count
  /// toward it with the final head (one budget for all the heads of a response, as curl's):
  /// a peer sending 1xx heads for ever is cut off at the limit.
  size_t max_header_size = 64 * 1024;
};

/// The incremental HTTP/1.x response parser of one client connection: one thread at a time;
/// events go to a Sink, synchronously. See the file comment of
/// ioloop/net/http/response_parser.h.
class ResponseParser {
 public:
  /// Receives the events of one response, in order: on_interim for each 1xx before it, on_head
  /// once, on_body zero or more times, on_complete once (unless an error comes first).
  class Sink {
   public:
    virtual ~Sink() = default;
    /// The final (non-1xx) head.
    virtual void on_head(HTTPResponseHead head) = 0;
    /// De-chunked body bytes, in any split (never empty). `data` is only valid during the call.
    virtual void on_body(absl::string_view data) = 0;
    /// The response ended.
    virtual void on_complete() = 0;
    /// An interim (1xx but 101) head, complete, before the final one; its fields are as
    /// received (no body, no framing: a 1xx has none). Ignored unless overridden.
    virtual void on_interim(HTTPResponseHead /*head*/) {}
  };

  /// A parser with these limits; call start() before each response.
  explicit ResponseParser(ResponseParserOptions options = {});
  ~ResponseParser();
  /// @{
  /// Moves the parser with its partial state; the moved-from parser may only be destroyed or
  /// assigned to.
  ResponseParser(ResponseParser&&) noexcept;
  ResponseParser& operator=(ResponseParser&&) noexcept;
  /// @}

  /// Before each response (fresh state, clearing any error): the method of the request it
  /// answers. HEAD (and a 2xx to CONNECT) has no body whatever the fields say.
  void start(HTTPMethod method);

  /// Feeds bytes of the current response. Returns how many were consumed: all of `data`, or
  /// fewer when the response completed inside it (it stops right after on_complete; the rest
  /// belongs to whatever follows, the caller decides). 1xx interim responses (100, 102, 103)
  /// are consumed and go to Sink::on_interim (101 is an error: no upgrades). Errors (the parser
  /// then stays failed): DataLoss with libhttp_parser's reason for malformed input ("malformed
  /// response: invalid HTTP status code" etc.), ResourceExhausted when the head exceeds
  /// max_header_size, InvalidArgument for feed() before start() / after completion. Framing:
  /// Content-Length, chunked, or close-delimited (no length, not chunked); none for HEAD, 1xx,
  /// 204, 304. Content-Length with Transfer-Encoding, several Content-Lengths, one over 2^63 - 1,
  /// or Transfer-Encoding other than one "chunked" (an empty field anywhere included): DataLoss. An
  /// empty `data` consumes nothing and is not an EOF (that is finish()).
  absl::StatusOr<size_t> feed(absl::string_view data, Sink& sink);

  /// The peer closed the connection. Completes a close-delimited body (on_complete, OK);
  /// otherwise DataLoss naming where it stopped: "connection closed before the response" (no
  /// byte yet), "connection closed in the response head", "connection closed after N of M body
  /// bytes", "connection closed in a chunked body". After completion: OK, nothing reported.
  /// After an error: that error again. Before start(): InvalidArgument.
  absl::Status finish(Sink& sink);

  /// A byte of the current response (an interim 1xx response included) has been consumed since
  /// start(). A client uses it to decide whether a request on a reused connection that the
  /// server closed may be retried.
  bool started_response() const;
  /// The current response has completed (on_complete was called).
  bool complete() const;
  /// After completion: whether the connection may carry another request (the head's
  /// keep_alive() and the body was not close-delimited). False before completion.
  bool keep_alive() const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ioloop::net

#endif  // IOLOOP_NET_HTTP_RESPONSE_PARSER_H_
