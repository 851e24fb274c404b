/// @file ioloop/net/http/http_forwarding.h
/// Header-field rewriting for an HTTP intermediary (a reverse proxy such as
/// examples/http_proxy): what RFC 9110 asks of a proxy when it forwards a message, in either
/// direction, plus the de-facto X-Forwarded-For.
///
/// ```
///   remove_hop_by_hop_fields(request.mutable_headers());  // or, copying to the next hop's
///                                                         // message: copy_end_to_end_fields
///   append_forwarded_for(request.mutable_headers(), "192.0.2.7");
///   append_via(request.mutable_headers(), request.version_minor(), "ioloop");
/// ```
///
/// The functions only edit fields; framing (Content-Length or chunked) is the forwarder's
/// business, since it re-frames the body for the next hop.
///
/// Threading: pure functions on a value; no shared state.
#ifndef IOLOOP_NET_HTTP_HTTP_FORWARDING_H_
#define IOLOOP_NET_HTTP_HTTP_FORWARDING_H_

#include "absl/strings/string_view.h"
#include "ioloop/net/http/http_headers.h"

namespace ioloop::net {

/// Removes the fields that describe one connection, not the message (RFC 9110 §7.6.1):
/// Connection and every field its tokens name, Keep-Alive, Proxy-Connection, TE, Trailer,
/// Transfer-Encoding, Upgrade, Proxy-Authenticate and Proxy-Authorization. Returns how many
/// fields were removed. A Connection token naming another end-to-end field removes it too (the
/// sender asked for exactly that), except "Host": Host is mandatory in a request (RFC 9112
/// §3.2) and may not be listed (RFC 9110 §7.6.1), so it stays, as nginx and HAProxy keep it.
size_t remove_hop_by_hop_fields(HTTPHeaders& headers);

/// Appends to `to` the fields of `from` that remove_hop_by_hop_fields(from) would keep, in
/// their order: a forwarder's copy of a message's end-to-end fields in one pass, without
/// copying the hop-by-hop ones first. `room` reserves space for that many more fields (those
/// the forwarder appends next). `also_skip`, when not empty, names one more field to leave out
/// (any case): one the next hop replaces anyway, such as Date before HTTPServer, which writes
/// its own. Returns how many fields were left out.
size_t copy_end_to_end_fields(const HTTPHeaders& from, HTTPHeaders& to, size_t room = 0,
                              absl::string_view also_skip = {});

/// Appends `client` (an address, e.g. "192.0.2.7" or "2001:db8::1") to X-Forwarded-For. The
/// existing X-Forwarded-For fields are combined into one, in their order, before it (a list
/// field split over several lines means the same as one line, RFC 9110 §5.3), so the result
/// is exactly one field: "a, b, client".
void append_forwarded_for(HTTPHeaders& headers, absl::string_view client);

/// Appends "<received-protocol> <pseudonym>" to Via (RFC 9110 §7.6.3): "1.1 ioloop" for a
/// message received as HTTP/1.1 (`received_minor` 1), "1.0 ioloop" for HTTP/1.0. Existing Via
/// fields are combined into one, in order, like X-Forwarded-For.
void append_via(HTTPHeaders& headers, int received_minor, absl::string_view pseudonym);

}  // namespace ioloop::net

#endif  // IOLOOP_NET_HTTP_HTTP_FORWARDING_H_
