/// @file ioloop/net/http/url.h
/// URL: an absolute http(s) URL split into what an HTTP client needs to connect and to write a
/// request: scheme, host, port and request target (RFC 3986 syntax, RFC 9110 §4.2 http(s)
/// schemes). Parsing is strict and explains itself: every rejection is an InvalidArgument whose
/// message names the problem and quotes the offending part.
///
/// Not supported (rejected with InvalidArgument): schemes other than http and https, a URL
/// without "//authority" ("http:x"), userinfo ("user:pass@host"), an empty host, port 0,
/// spaces, control characters and non-ASCII bytes anywhere (percent-encode them), a '%' not
/// followed by two hex digits, characters other than RFC 3986's unreserved, sub-delims and
/// percent-encoding in a host name. The path and query are otherwise kept exactly as given
/// (dot segments included: the target is sent as it is); the fragment ("#...") is dropped, as
/// a client never sends it (RFC 9110 §4.2.5). Error messages quote input with C escapes
/// ('\\x00'). IPv6 literals are accepted in brackets ("http://[::1]:8080/")
/// and stored without them; IPvFuture ("[v1.x]") and zone identifiers are rejected.
///
/// Threading: a value type; use from one thread at a time.
///
/// Example:
/// ```
///   absl::StatusOr<URL> url = URL::parse("http://example.com:8080/a?b=1#frag");
///   // url->host == "example.com", url->port == 8080, url->target == "/a?b=1"
///   absl::StatusOr<URL> next = url->resolve("../c");  // http://example.com:8080/c
/// ```
#ifndef IOLOOP_NET_HTTP_URL_H_
#define IOLOOP_NET_HTTP_URL_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace ioloop::net {

/// An absolute http(s) URL split into scheme, host, port and request target. A value type;
/// parse() and resolve() explain each rejection (see the file comment of
/// ioloop/net/http/url.h).
struct URL {
  std::string scheme;  ///< lower-case: "http" or "https" (others: InvalidArgument)
  std::string host;    ///< without brackets for IPv6 literals; lower-case
  uint16_t port = 0;   ///< explicit or the scheme's default (80, 443)
  std::string target;  ///< path + "?" + query, at least "/"; no fragment

  /// "host" or "host:port" (port omitted when it is the scheme's default; IPv6 literals in
  /// brackets): the Host field value.
  std::string authority() const;
  /// The same, appended to `out` (no temporary string).
  void append_authority(std::string& out) const;
  /// scheme://authority, e.g. "http://[::1]:8080": the same for every URL of one server.
  std::string origin() const;
  /// scheme://authority target, e.g. "http://[::1]:8080/a?b".
  std::string to_string() const;
  /// Whether to_string() equals `text` (a URL given in canonical form), without building it.
  bool to_string_equals(absl::string_view text) const;

  /// Parses an absolute http(s) URL. InvalidArgument naming the problem: "URL: missing scheme
  /// in 'foo'", "URL: unsupported scheme 'ftp'", "URL: empty host", "URL: port 99999 out of
  /// range", "URL: userinfo not supported", "URL: invalid character ' ' at 4 in '...'" (control
  /// characters, space, non-ASCII bytes, and in a host what RFC 3986 does not allow there),
  /// etc. Other printable ASCII in the path and query ('|', '{', '"', ...) is kept as given,
  /// as the file comment says: servers differ on it, and encoding it is the caller's choice.
  static absl::StatusOr<URL> parse(absl::string_view url);

  /// Checks a request target (a path and query, as `target` holds, without a fragment) by the
  /// rules parse() applies to one: parse(origin + target) fails on the target if and only if
  /// this fails. For a server or proxy that builds a URL from a client's target and must tell
  /// a malformed target (the client's error) from other failures. InvalidArgument "invalid
  /// character in the target" (a control character, space or non-ASCII byte) or "invalid
  /// percent-encoding in the target" (a '%' not followed by two hex digits); the message
  /// quotes nothing, so that it can go back to whoever sent the target.
  static absl::Status check_target(absl::string_view target);

  /// Resolves a reference (a Location value, for redirects) against this URL, by RFC 3986
  /// §5.2: absolute ("https://h/p"), scheme-relative ("//h/p"), absolute-path ("/p"), relative
  /// ("p", "../p"), query-only ("?q") and empty/fragment-only (this URL). Dot segments are
  /// removed (§5.2.4). The result is checked like parse(): InvalidArgument for the same
  /// problems (an "ftp:" Location is "URL: unsupported scheme 'ftp'").
  absl::StatusOr<URL> resolve(absl::string_view reference) const;

  /// Field-by-field equality.
  friend bool operator==(const URL&, const URL&) = default;
};

}  // namespace ioloop::net

#endif  // IOLOOP_NET_HTTP_URL_H_
