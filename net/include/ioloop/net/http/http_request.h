/// @file ioloop/net/http/http_request.h
/// HTTPRequest: one parsed HTTP/1.x request: method, request target (split into path and
/// query), version, ordered headers and the (de-chunked) body. RequestParser produces them;
/// handlers read them. A plain value type: copyable, movable, comparable (tests and the fuzzer
/// compare requests parsed from differently split input).
///
/// Threading: a value type; use from one thread at a time.
#ifndef IOLOOP_NET_HTTP_HTTP_REQUEST_H_
#define IOLOOP_NET_HTTP_HTTP_REQUEST_H_

#include <string>
#include <utility>

#include "absl/strings/string_view.h"
#include "ioloop/net/http/http_headers.h"

namespace ioloop::net {

/// The methods a server usually branches on; every other method the parser accepts (WebDAV,
/// PURGE, M-SEARCH, ...) is kOther, and HTTPRequest::method() still has its name.
enum class HTTPMethod {
  kGet,
  kHead,
  kPost,
  kPut,
  kDelete,
  kConnect,
  kOptions,
  kTrace,
  kPatch,
  kOther
};

/// Maps a method name (case-sensitive, as RFC 9110 §9.1 says) to the enum.
HTTPMethod http_method_from_string(absl::string_view name);

/// One parsed HTTP/1.x request: method, target, version, headers and body. A value type (one
/// thread at a time); RequestParser fills it in, handlers read it.
class HTTPRequest {
 public:
  HTTPRequest() = default;

  /// The method name as received, e.g. "GET", "M-SEARCH".
  const std::string& method() const { return method_; }
  /// The method as an enum (kOther for any method the enum does not list).
  HTTPMethod method_id() const { return method_id_; }
  /// Sets method() and method_id() (from the name).
  void set_method(std::string method);

  /// The request target exactly as received: origin-form "/a/b?x=1", absolute-form
  /// "http://host/a?x", authority-form "host:443" (CONNECT) or asterisk-form "*"; HTTPServer
  /// answers any other with a 400. With an absolute-form target, HTTPServer's requests carry
  /// the target's authority as their one Host field, whatever Host was received (RFC 9112
  /// §3.2.2 tells a server to use it; a proxy forwarding Host sends it on).
  const std::string& target() const { return target_; }
  /// The path of the target: "/a/b" for "/a/b?x=1" and for "http://host/a/b?x=1" ("/" when an
  /// absolute-form target has no path); the whole target for "*" and authority-form.
  /// Not percent-decoded.
  absl::string_view path() const;
  /// What follows the first '?' up to any '#', without the '?'; empty when there is none.
  absl::string_view query() const;
  /// Sets target() (path() and query() follow it).
  void set_target(std::string target);

  /// @{
  /// The HTTP version: 1 and 1 for "HTTP/1.1".
  int version_major() const { return version_major_; }
  int version_minor() const { return version_minor_; }
  void set_version(int major, int minor) {
    /// @}
    version_major_ = major;
    version_minor_ = minor;
  }
  /// "HTTP/1.1" for the status line of the response.
  std::string version_string() const;

  /// @{
  /// The header fields in arrival order.
  const HTTPHeaders& headers() const { return headers_; }
  HTTPHeaders& mutable_headers() { return headers_; }
  /// @}

  /// The body with any chunked framing removed; empty when the request had none or when the
  /// parser was told to discard bodies.
  const std::string& body() const { return body_; }
  /// @{
  /// Write access to body().
  std::string& mutable_body() { return body_; }
  void set_body(std::string body) { body_ = std::move(body); }
  /// @}

  /// Whether the connection may carry another request after this one's response
  /// (RFC 9112 §9.3), from the version and the headers:
  ///  - a "close" token in any Connection header: false;
  ///  - HTTP/1.1 (1.x, x >= 1): true;
  ///  - HTTP/1.0: true only with a "keep-alive" Connection token, and never when the request
  ///    has Transfer-Encoding (§6.1: an HTTP/1.0 message with it must close after processing);
  ///  - CONNECT: false (this library does not tunnel; the body framing after it is undefined);
  ///  - any other version: false.
  bool keep_alive() const;

  /// True for an HTTP/1.1 request carrying "Expect: 100-continue" (RFC 9110 §10.1.1; an
  /// HTTP/1.0 client's expectation is ignored, as that section requires).
  bool expects_continue() const;

  /// Back to a default-constructed request, keeping the allocated storage (for reuse).
  void clear();

  /// Field-by-field equality (tests and the fuzzer compare requests parsed from split input).
  friend bool operator==(const HTTPRequest&, const HTTPRequest&) = default;

 private:
  std::string method_;
  HTTPMethod method_id_ = HTTPMethod::kOther;
  std::string target_;
  int version_major_ = 1;
  int version_minor_ = 1;
  HTTPHeaders headers_;
  std::string body_;
};

}  // namespace ioloop::net

#endif  // IOLOOP_NET_HTTP_HTTP_REQUEST_H_
