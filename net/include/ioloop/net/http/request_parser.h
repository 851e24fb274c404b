/// @file ioloop/net/http/request_parser.h
/// RequestParser: the incremental, connection-level HTTP/1.x request parser. One per
/// connection: feed() it bytes as they arrive, in any split; it keeps partial state between
/// calls and returns every request completed by those bytes (pipelining), in order. Built on
/// Debian's libhttp_parser, which stays private to the .cc (nothing here sees its callbacks).
///
/// Guarantees:
///  - Split independence: feeding a byte stream in any split (one byte at a time or all at once)
///    yields the same requests and the same error. Limits are enforced at fixed stream
///    positions to make this hold (tests/fuzz/request_parser_fuzzer.cc checks it).
///  - Line endings: CRLF or bare LF in the request line, headers and trailers ("GET /
///    HTTP/1.0\n\n" parses). Chunk-size lines of a chunked body need CRLF (libhttp_parser's
///    rule): a bare LF there is a 400.
///  - Empty lines before a request line (CRLF or LF; RFC 9112 §2.2): up to 8 are skipped, the
///    9th is a 400 (kMalformed), and so is a bare CR among them. They belong to the next
///    request's header section: state() is kHeaders from the first of them (so the server's
///    header timeout starts there, and a client cannot hold a connection open with a blank
///    line now and then), and they count toward max_header_size.
///  - Errors (RequestError): the first one puts the parser in State::kError for good; every
///    later feed() reports it again and parses nothing. Requests completed before the error in
///    the same feed() are still returned: answer them, then send error_status() and close.
///    The rules, checked when the header section is complete unless stated otherwise:
///      400 kMalformed                syntax libhttp_parser rejects (bad request line, bad
///                                    header name character, bad chunk size, ...); more than
///                                    8 empty lines, or a bare CR, before a request line (at
///                                    that byte)
///      400 kInvalidContentLength     a non-numeric Content-Length, one over 2^63 - 1 (what a
///                                    signed 64-bit length holds), or several Content-Length
///                                    fields (even equal ones: RFC 9112 §6.3 lets a recipient
///                                    reject them, and libhttp_parser does)
///      400 kContentLengthWithTransferEncoding  both framing headers (request smuggling)
///      400 kInvalidTransferEncoding  "chunked" more than once, a field with an empty coding
///                                    list (wherever it is), or a value libhttp_parser does not
///                                    frame as chunked ("chunked" then an HTAB or a comma)
///      400 kBadHost                  HTTP/1.1 without Host, or several Host fields (§3.2)
///      431 kHeaderTooLarge           header section (request line, headers, blank line, and
///                                    any empty lines before the request line) longer than
///                                    max_header_size bytes; detected as soon as byte
///                                    max_header_size + 1 arrives. Trailers have the same limit.
///      414 kUriTooLong               the request line alone (its LF not yet seen) longer than
///                                    max_header_size: in practice the target (a long version
///                                    fails at once, a long method is kUnknownMethod)
///      413 kBodyTooLarge             Content-Length above max_body_size (at the end of the
///                                    header section, before any body byte), or chunks whose
///                                    sizes add up past it (at the chunk-size line)
///      501 kUnsupportedTransferEncoding  any transfer coding other than "chunked" anywhere in
///                                    the list ("gzip", "gzip, chunked", "chunked, gzip"):
///                                    RFC 9112 §6.1 says 501 for a coding the server does not
///                                    implement. This takes precedence over §6.3's 400 for a
///                                    list whose last coding is not chunked; both close the
///                                    connection, so the body is never misread either way.
///      505 kUnsupportedVersion       an HTTP major version other than 1 (including 0.9)
///      501 kUnknownMethod            a method token libhttp_parser does not know, followed
///                                    by a space ("QUERY /", "get /", "GE /"; RFC 9110 §9.1),
///                                    or longer than max_header_size (RFC 9112 §3); one ended
///                                    by any other byte is kMalformed. libhttp_parser's list: RFC
///                                    9110's, WebDAV's, PATCH, PURGE, LINK, UNLINK, SOURCE,
///                                    M-SEARCH and a few more
///  - After a request whose keep_alive() is false, the parser enters State::kClosed and ignores
///    every further byte (RFC 9112 §9.6: no further request on that connection is processed).
///  - Memory is bounded by the limits: max_header_size for the header section (plus
///    per-field bookkeeping), max_body_size for a stored body (a streamed body is not stored).
///  - libhttp_parser has its own compiled-in header limit (HTTP_MAX_HEADER_SIZE, 80 KiB); a
///    max_header_size above it is effectively 80 KiB (also reported as 431). It is not
///    raised, as that setting is process-wide.
///
/// Expect: 100-continue: when a feed() completes the header section of a request that
/// expects_continue() and has a body, but the body is not complete yet, that feed()'s
/// Result::send_continue is true (once per request). The server writes "HTTP/1.1 100
/// Continue\r\n\r\n" after the responses to the requests returned by the same feed() (the
/// waiting request is always the last one on the connection). pending_request() shows its
/// method, target and headers meanwhile, should the server prefer a final status instead.
///
/// Streaming bodies (Tornado's `@stream_request_body`), for a handler that consumes a body as it
/// arrives instead of a buffered body up to max_body_size:
///  1. feed() with FeedOptions::stop_at_headers: a feed() that completes the header section of a
///     request with a body (chunked, or Content-Length > 0) stops right there, before any body
///     byte, with Result::at_headers set; state() is kBody and pending_request() is that request
///     (method, target, headers). A request without a body does not stop: it completes as usual.
///  2. Optionally stream_body(sink) (state() is kBody, no body byte consumed yet): the request's
///     body bytes, de-chunked, go to `sink` instead of HTTPRequest::body(), in order, in
///     non-empty pieces whose boundaries depend on the split (their concatenation does not).
///     max_body_size and discard_body do not apply to a streamed body: memory stays bounded
///     because nothing is kept, and a consumer that wants a limit counts bytes itself. Without
///     stream_body() the body is buffered as before; its 413 (Content-Length above
///     max_body_size) is then reported by the next feed() at the same stream position.
///  3. Flow control: a sink returning false stops feed() right after that piece; the bytes
///     consumed so far are returned (Result::sink_paused is set) and the caller feeds the rest
///     later, e.g. once its consumer has caught up. As with max_requests, stopping there is just
///     another split: the same body bytes, requests and errors result. A stop after the last
///     piece of a Content-Length body comes once the request has completed (it is then in
///     Result::requests); every stop has consumed at least one byte.
///  4. The request completes like any other: it is appended to Result::requests with an empty
///     body, and its index in that vector is appended to Result::streamed (so the caller knows
///     its body ended; requests pipelined after it follow as usual). The parser drops the sink
///     then, on an error, or when it is destroyed.
///  Errors while streaming (chunk framing, trailers too large) are the same RequestError at the
///  same stream position as for a buffered body; the sink has then received exactly the body
///  bytes before that position (a buffered body would be dropped with the request).
///  Expect: 100-continue with stop_at_headers: send_continue is not reported by the feed() that
///  stops at the headers but by the next one that leaves the request in kBody, so the caller
///  decides (stream, buffer, or answer with a final status) before the client is told to send.
///
/// Timeouts: state() is kIdle between requests (idle_timeout applies) and kHeaders while a
/// request's header section, empty lines before its request line included, has started but
/// is not complete (header_timeout: slowloris).
///
/// Threading: one connection's parser; use from one thread at a time.
///
/// Example:
/// ```
///   RequestParser parser;
///   RequestParser::Result result = parser.feed(bytes_just_read);
///   for (HTTPRequest& request : result.requests) respond(request);
///   if (result.send_continue) write("HTTP/1.1 100 Continue\r\n\r\n");
///   if (result.error) { write_error(error_status(*result.error)); close(); }
/// ```
#ifndef IOLOOP_NET_HTTP_REQUEST_PARSER_H_
#define IOLOOP_NET_HTTP_REQUEST_PARSER_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "ioloop/net/http/http_request.h"

namespace ioloop::net {

/// Why a request was refused: error_status() gives the status to answer with, error_name() a
/// name for logs.
enum class RequestError {
  kMalformed,
  kInvalidContentLength,
  kContentLengthWithTransferEncoding,
  kInvalidTransferEncoding,
  kBadHost,
  kHeaderTooLarge,
  kBodyTooLarge,
  kUnsupportedTransferEncoding,
  kUnsupportedVersion,
  kUriTooLong,
  kUnknownMethod,
};

/// The HTTP status to answer `error` with: 400, 413, 414, 431, 501 or 505.
int error_status(RequestError error);
/// A short name for logs and tests, e.g. "header section too large".
absl::string_view error_name(RequestError error);

/// The incremental, connection-level HTTP/1.x request parser: one per connection, used from one
/// thread at a time. Its guarantees (split independence, limits, streaming bodies) are in the
/// file comment of ioloop/net/http/request_parser.h.
class RequestParser {
 public:
  /// The limits of a parser.
  struct Options {
    size_t max_header_size = 64 * 1024;       ///< bytes of a header (or trailer) section
    size_t max_body_size = 64 * 1024 * 1024;  ///< bytes of a body after de-chunking
    /// Count and frame bodies, but do not keep them (HTTPRequest::body() stays empty): for
    /// servers that ignore bodies, such as the example responder.
    bool discard_body = false;

    /// Same limits.
    friend bool operator==(const Options&, const Options&) = default;
  };

  /// Where the parser is in the byte stream.
  enum class State {
    kIdle,     ///< between requests: not a byte of the next request yet
    kHeaders,  ///< a request's header section (or an empty line before it) has started
    kBody,     ///< header section complete, body (or trailers) not complete
    kClosed,   ///< a request without keep-alive ended the connection; input is ignored
    kError,    ///< a RequestError occurred; see error()
  };

  /// What one feed() produced.
  struct Result {
    std::vector<HTTPRequest> requests;  ///< completed by this feed(), in order
    bool send_continue = false;         ///< see "Expect: 100-continue" above
    std::optional<RequestError> error;  ///< set on the error's feed() and every later one
    /// Streaming (see "Streaming bodies" above); false and empty unless it is used.
    bool at_headers = false;       ///< stopped after pending_request()'s header section
    bool sink_paused = false;      ///< stopped because the body sink returned false
    std::vector<size_t> streamed;  ///< indices in `requests` of requests whose body was streamed

    /// Empties everything, keeping the vectors' capacity (for a result reused across feeds).
    void clear() {
      requests.clear();
      send_continue = false;
      error.reset();
      at_headers = false;
      sink_paused = false;
      streamed.clear();
    }
  };

  /// When a feed() stops early (see feed()).
  struct FeedOptions {
    size_t max_requests = SIZE_MAX;  ///< stop once this many (>= 1) requests have completed
    bool stop_at_headers = false;    ///< stop after a header section if a body follows
  };

  /// Receives a streamed body's bytes; returns false to stop the current feed() after this
  /// piece (flow control). Runs inside feed(), on its thread; it must not call feed() or
  /// stream_body() on this parser nor destroy it (the other const accessors are fine).
  using BodySink = absl::AnyInvocable<bool(absl::string_view chunk)>;

  RequestParser();
  /// A parser with these limits (RequestParser() has the defaults).
  explicit RequestParser(Options options);
  ~RequestParser();
  /// @{
  /// Moves the parser with its partial state; the moved-from parser may only be destroyed or
  /// assigned to.
  RequestParser(RequestParser&&) noexcept;
  RequestParser& operator=(RequestParser&&) noexcept;
  /// @}

  /// Makes this parser equivalent to RequestParser(options): no partial request, error, sink
  /// or state carries over. For a server that reuses a parser for another connection.
  void reset(Options options);
  /// Optional: gives back a request this parser returned, once it is no longer needed, so that
  /// a later request is built in its storage (strings, field list) instead of fresh
  /// allocations; a server calls it after answering each request. Only storage carries over
  /// (a huge body or field list is freed rather than kept), never content.
  void recycle(HTTPRequest request);

  /// Consumes all of `data` (the bytes are copied as needed; `data` may be reused after the
  /// call).
  Result feed(absl::string_view data);
  /// Same, appending to `result` (whose vector's capacity is then reused): for servers.
  void feed(absl::string_view data, Result& result);
  /// Same, but stops once `max_requests` (>= 1) requests have completed in this call: returns
  /// how many bytes of `data` were consumed; feed the rest later (a server that must stop
  /// answering for a while keeps the unparsed bytes rather than parsed requests). Stopping
  /// there is just another split: the requests and errors are the same.
  size_t feed(absl::string_view data, Result& result, size_t max_requests);
  /// The general form: max_requests as above, and stop_at_headers (see "Streaming bodies").
  /// Returns how many bytes of `data` were consumed; feed the rest later.
  size_t feed(absl::string_view data, Result& result, const FeedOptions& options);

  /// Sends the body of pending_request() to `sink` (see "Streaming bodies"). FailedPrecondition,
  /// and nothing changes, unless state() is kBody, no byte of that body has been consumed and
  /// it is not streamed already; InvalidArgument for an empty sink.
  absl::Status stream_body(BodySink sink);
  /// Whether pending_request()'s body goes to a sink.
  bool streaming() const;

  /// Where the parser is (see State).
  State state() const;
  /// The error that stopped the parser (state() is kError), or nullopt.
  std::optional<RequestError> error() const;
  /// A human-readable detail of the error, e.g. libhttp_parser's description; empty if none.
  const std::string& error_detail() const;
  /// The request whose header section is complete and whose body is still arriving (state()
  /// is kBody), without its body; nullptr otherwise.
  const HTTPRequest* pending_request() const;
  /// The minor version of the request being parsed (or of the one that failed) once its
  /// request line is complete and says HTTP/1.x; nullopt before that or for another major
  /// version. Error and timeout responses use it for their status line.
  std::optional<int> version_minor() const;
  /// Whether the request being parsed (or the one that failed) is a HEAD, once its request
  /// line is complete (false before): error and timeout responses to it carry no body.
  bool head_request() const;
  /// The limits the parser was made (or last reset()) with.
  const Options& options() const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ioloop::net

#endif  // IOLOOP_NET_HTTP_REQUEST_PARSER_H_
