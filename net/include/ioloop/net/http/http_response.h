/// @file ioloop/net/http/http_response.h
/// HTTPResponseWriter: what an HTTPServer handler fills in to answer one request: the status,
/// header fields and body. The server serializes it once the handler returns, unless the
/// handler called defer(): then the response finishes later, through the returned
/// HTTPResponseStream (http_response_stream.h).
///
/// The server writes these fields itself and ignores any the handler sets:
/// ```
///   Content-Length  the body's size (also for HEAD, where the body is not sent; a HEAD
///                   handler that sets no body may set the Content-Length its GET would
///                   send, and that one is sent: RFC 9110 §9.3.2); 0 for a 205, whose body
///                   is dropped (§15.3.6); omitted for 204, 304 and a 2xx to CONNECT, whose
///                   bodies are not sent (§9.3.6: this server opens no tunnel and closes
///                   after a CONNECT)
///   Date            the current time, from a per-thread cache refreshed once per second
///   Connection      "close" when the connection ends after this response, "keep-alive"
///                   for an HTTP/1.0 request that asked to stay open, absent otherwise
///   Transfer-Encoding  never sent by a synchronous response (bodies are sent whole, with
///                   Content-Length); a deferred one frames its body itself (see
///                   http_response_stream.h), where a Content-Length set by the handler counts
/// ```
/// A handler that sets "Connection: close" (or calls set_close()) ends the connection after
/// its response. `Server` is added when HTTPServerOptions::server_name is not empty (a
/// handler's own Server field is then dropped; with an empty server_name it is sent).
///
/// Threading: one writer per connection, used on that connection's loop thread.
/// Lifetime: valid only during the handler call it is passed to (a deferred response's head
/// stays reachable through HTTPResponseStream::head()).
#ifndef IOLOOP_NET_HTTP_HTTP_RESPONSE_H_
#define IOLOOP_NET_HTTP_HTTP_RESPONSE_H_

#include <memory>
#include <string>
#include <utility>

#include "absl/strings/string_view.h"
#include "ioloop/net/http/http_headers.h"

namespace ioloop::net {

class HTTPResponseStream;
class IOStream;
namespace internal {
class HTTPResponseTarget;
}  // namespace internal

/// The standard reason phrase of `status` (RFC 9110 §15 and the other codes of IANA's HTTP
/// status code registry that are in use), e.g. "Not Found" for 404; "Unknown" for a code it
/// does not list.
absl::string_view reason_phrase(int status);

/// What an HTTPServer handler fills in to answer one request: status, header fields, body.
/// Used on the connection's loop thread, valid only during the handler call (unless defer()red);
/// what the server adds itself is in the file comment of ioloop/net/http/http_response.h.
class HTTPResponseWriter {
 public:
  HTTPResponseWriter() = default;

  /// The status code: a final status, 200..599 (RFC 9110 §15). Others are sent as 500 and
  /// logged (rate-limited); a 1xx is interim, sent with HTTPResponseStream::send_interim(). The
  /// reason phrase is the standard one unless given.
  void set_status(int status) {
    status_ = status;
    reason_.clear();
  }
  /// As set_status(status), with `reason` sent as the reason phrase.
  void set_status(int status, std::string reason) {
    status_ = status;
    reason_ = std::move(reason);
  }
  /// The status code (200 unless set).
  int status() const { return status_; }
  /// The reason phrase that will be sent.
  absl::string_view reason() const {
    return reason_.empty() ? reason_phrase(status_) : absl::string_view(reason_);
  }

  /// Header fields, sent in this order after the server's own (see the file comment).
  /// A field whose name is not a token or whose value holds a control byte other than HTAB
  /// (CR, LF and NUL among them) is dropped: response splitting, or a response every client
  /// parser must reject. So is such a reason phrase, for the status's own.
  void add_header(std::string name, std::string value) {
    headers_.add(std::move(name), std::move(value));
  }
  /// Replaces every field named `name` (any case) with this one; same rules as add_header().
  void set_header(std::string name, std::string value) {
    headers_.set(std::move(name), std::move(value));
  }
  /// @{
  /// The handler's header fields (not the ones the server adds).
  const HTTPHeaders& headers() const { return headers_; }
  HTTPHeaders& mutable_headers() { return headers_; }
  /// @}

  /// The body: replaced by set_body, extended by write.
  void set_body(std::string body) { body_ = std::move(body); }
  /// Appends `data` to the body.
  void write(absl::string_view data) { body_.append(data.data(), data.size()); }
  /// @{
  /// The body as set so far.
  const std::string& body() const { return body_; }
  std::string& mutable_body() { return body_; }
  /// @}

  /// Ends the connection after this response (it then carries "Connection: close").
  void set_close() { close_ = true; }
  /// True after set_close().
  bool close_requested() const { return close_; }

  /// Takes ownership of the response: it is not sent when the handler returns but completed
  /// later through the returned stream (http_response_stream.h); later pipelined requests
  /// wait for it. Call it inside the handler; a second call returns the same stream while it
  /// lives. Null for a writer that no server handed to a handler.
  std::shared_ptr<HTTPResponseStream> defer();

  /// The client's IP address as text ("192.0.2.7", "::1"), as Tornado's request.remote_ip; empty
  /// when unknown (a socketpair, a closed connection, or a writer no server handed out). Asked
  /// of the socket (getpeername) on the connection's first call and kept, so that a server that
  /// never asks pays nothing and one that always asks pays one syscall per connection.
  const std::string& remote_address() const;

  /// Back to a fresh 200 with no headers and no body (keeps allocated capacity).
  void reset() {
    status_ = 200;
    reason_.clear();
    headers_.clear();
    body_.clear();
    close_ = false;
  }

 private:
  int status_ = 200;
  std::string reason_;
  HTTPHeaders headers_;
  std::string body_;
  bool close_ = false;
  internal::HTTPResponseTarget* target_ = nullptr;  ///< set by the server: what defer() uses
  const IOStream* stream_ = nullptr;                ///< set by the server, kept by reset()
  mutable std::string remote_address_;              ///< remote_address()'s cache, kept by reset()

  friend class HTTPConnectionCore;
};

}  // namespace ioloop::net

#endif  // IOLOOP_NET_HTTP_HTTP_RESPONSE_H_
