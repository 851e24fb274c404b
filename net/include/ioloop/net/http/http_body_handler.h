/// @file ioloop/net/http/http_body_handler.h
/// HTTPBodyHandler: a request body consumed as it arrives (Tornado's `@stream_request_body`:
/// prepare / data_received / on_finish), with flow control, instead of a body buffered up to
/// HTTPServerOptions::max_body_size. A large upload then costs the connection's read buffer
/// (one read) plus what the handler keeps, not the body's size.
///
/// ```
///   HTTPServer server(loop, handler,
///       /*on_headers=*/[](const HTTPRequest& head, HTTPBodyControl& control)
///           -> std::unique_ptr<HTTPBodyHandler> {
///         if (head.path() != "/upload") return nullptr;  // buffered, to `handler`
///         return std::make_unique<FileSink>(control);     // streamed
///       });
/// ```
///
/// Per request, in order, on the connection's loop thread:
///  1. on_headers(head, control) (the HTTPBodyHandlerFactory) runs for every request with a
///     body (chunked, or Content-Length > 0) once its header section is in, before any body
///     byte is consumed: `head` has method, target, version and fields, no body. It returns
///       - nullptr: the body is buffered as without a factory (max_body_size, 413) and the
///         request goes to the server's Handler;
///       - a handler: the body is streamed to it; max_body_size does not apply (the handler
///         counts bytes itself, see control.received()).
///     Requests without a body never reach on_headers: they go to the Handler. With
///     "Expect: 100-continue", "100 Continue" is sent after on_headers returned.
///  2. on_body(chunk) for each piece of the de-chunked body (non-empty, framing bytes never
///     included; their concatenation is the body). A piece ends where a read ends or, in a
///     chunked body, where a chunk ends: a client sending tiny chunks gets tiny pieces, and a
///     handler that stops after every piece then pays a loop iteration per chunk. Returning true
///     asks for the next piece at once; false stops: the connection parses nothing more and
///     stops reading (TCP flow control then stops the client) until control.resume(). A
///     resume() made during that on_body call means "go on". A stop on the body's last piece
///     holds on_end until resume() too. While a handler holds the body stopped, the idle,
///     header, request and body-rate timeouts do not fire and their clocks stand still (the
///     wait is the handler's: after resume() the client has the time it had left), and the
///     connection does not read: a client's EOF is noticed only after resume() (a reset at
///     once, as an error the kernel reports without a read).
///  3. on_end(request, response) once the body is complete: `request` is the head again (body
///     empty); respond exactly as a Handler does (fill `response` and return, or
///     response.defer()). Pipelined requests after it follow the server's rule (http_server.h,
///     "Pipelining").
///     Or earlier, if the handler asked with control.answer_early() (a 413 or 401 decided at the
///     head, a proxy whose upstream answered before the body ended): on_end then runs before
///     the body is complete, on_body no more. The response says "Connection: close" and the
///     connection ends after it; meanwhile the rest of the request is read and dropped, so that
///     a client that sends its whole body before it reads (curl, Python's http.client) is not
///     stuck behind a response it does not read yet, and is not reset before it has read it.
///  4. on_close(why) instead of on_end if the request ends first: the client's EOF or reset
///     mid-body, or the server closing the connection (Unavailable); a framing error in the
///     body (InvalidArgument with the parser's reason; the client gets its 400/431); a timeout
///     (DeadlineExceeded); an exception from on_body (Internal). At most once, never after
///     on_end.
/// Then the handler is destroyed (before the next request's on_headers). Exactly one of on_end
/// and on_close runs for every handler that on_headers returned, unless the server is
/// destroyed with the connection open (then neither may run).
///
/// Exceptions from on_headers, on_body or on_end are handled like a Handler's: logged through
/// the loop and counted in its stats().exceptions and in HTTPServer::Stats::handler_exceptions;
/// the client gets 500 with "Connection: close" (if no byte of the response was sent, else the
/// connection closes). An exception from on_close is logged and counted the same way. The
/// server is unharmed.
///
/// Threading: every callback runs on the connection's loop thread; HTTPBodyControl is usable
/// only there (from another thread, post to that loop through its handle), and only until
/// on_end or on_close has returned. With HTTPServer::start(N > 1) the factory runs
/// concurrently on N threads and must be thread-safe.
#ifndef IOLOOP_NET_HTTP_HTTP_BODY_HANDLER_H_
#define IOLOOP_NET_HTTP_HTTP_BODY_HANDLER_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "ioloop/net/http/http_request.h"
#include "ioloop/net/http/http_response.h"

namespace ioloop::net {

/// The connection's side of a streamed body, handed to on_headers. Owned by the connection;
/// valid until the handler's on_end or on_close has returned (keep a reference in the
/// handler, not elsewhere). Loop thread only.
class HTTPBodyControl {
 public:
  /// After on_body returned false: parse what was already read, then read again. A no-op when
  /// not stopped.
  virtual void resume() = 0;
  /// Body bytes delivered to on_body so far (this request).
  virtual uint64_t received() const = 0;
  /// Whether the connection is stopped waiting for resume().
  virtual bool paused() const = 0;
  /// The client's IP address, as HTTPResponseWriter::remote_address() (a proxy's
  /// X-Forwarded-For needs it before on_end).
  virtual const std::string& remote_address() const = 0;
  /// Answers now, before the body ended (see 3. in the file comment): on_end runs next, after
  /// the on_headers or on_body call this is made in has returned, or from a loop callback when
  /// made elsewhere (never inside this call), and on_body no more; the request's timeouts stop
  /// at once. With "Expect: 100-continue", no 100 Continue is sent if none was yet (a call
  /// inside on_headers; the server sends it as soon as on_headers returned).
  /// The connection ends after that response even if the body turns out to be complete (a
  /// last piece, a held end): one rule, whatever the framing. A no-op after on_end or
  /// on_close.
  virtual void answer_early() = 0;

 protected:
  ~HTTPBodyControl() = default;
};

/// Consumes one request's body as it arrives; made per request by an HTTPBodyHandlerFactory.
/// Every call is on the connection's loop thread; the order of the calls and flow control are
/// in the file comment of ioloop/net/http/http_body_handler.h.
class HTTPBodyHandler {
 public:
  virtual ~HTTPBodyHandler() = default;
  /// A piece of the body; false to stop until HTTPBodyControl::resume() (flow control).
  virtual bool on_body(absl::string_view chunk) = 0;
  /// The body is complete: respond as an HTTPServer::Handler does.
  virtual void on_end(const HTTPRequest& request, HTTPResponseWriter& response) = 0;
  /// The request ended without on_end (see 4. above).
  virtual void on_close(const absl::Status& why) { (void)why; }
};

/// on_headers: nullptr buffers the body for the server's Handler; a handler streams it.
using HTTPBodyHandlerFactory = absl::AnyInvocable<std::unique_ptr<HTTPBodyHandler>(
    const HTTPRequest& head, HTTPBodyControl& control)>;

}  // namespace ioloop::net

#endif  // IOLOOP_NET_HTTP_HTTP_BODY_HANDLER_H_
