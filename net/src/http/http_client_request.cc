// File: net/src/http/http_client_request.cc
// Request validation and serialization for HTTPClient (no I/O).
#include <string>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "http/http_ascii.h"
#include "http/http_client_core.h"
#include "http/raw_writer.h"
#include "http/url_internal.h"

namespace ioloop::net {

namespace {

using internal::equals_ignore_case;
using internal::is_token;
using internal::RawWriter;

// What serialize_request() writes besides the method, target, host, User-Agent value, the
// caller's fields (4 bytes each besides name and value) and the body: the space after the
// method, the request line's rest, "Host: " with brackets and a port, "User-Agent: ", the
// longest framing field and the empty line.
constexpr size_t kRequestFixed = 1 + sizeof(" HTTP/1.1\r\n") - 1 + sizeof("Host: []:65535\r\n") -
                                 1 + sizeof("User-Agent: \r\n") - 1 +
                                 sizeof("Content-Length: 18446744073709551615\r\n") - 1 + 2;

// Fields the client writes itself (see HTTPClientRequest::headers).
bool client_owned(absl::string_view name) {
  return equals_ignore_case(name, "Content-Length") ||
         equals_ignore_case(name, "Transfer-Encoding") || equals_ignore_case(name, "Connection") ||
         equals_ignore_case(name, "Keep-Alive");
}

}  // namespace

absl::Status validate_options(const HTTPClientOptions& options) {
  if (options.max_connections_per_host == 0) {
    return absl::InvalidArgumentError("HTTPClientOptions.max_connections_per_host must be > 0");
  }
  if (options.max_header_size == 0) {
    return absl::InvalidArgumentError("HTTPClientOptions.max_header_size must be > 0");
  }
  if (options.idle_timeout < absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        absl::StrCat("HTTPClientOptions.idle_timeout must not be negative (got ",
                     absl::FormatDuration(options.idle_timeout), ")"));
  }
  if (!internal::is_field_value(options.user_agent)) {  // as request.headers' values
    return absl::InvalidArgumentError(
        "HTTPClientOptions.user_agent contains a control byte (only HTAB may)");
  }
  return absl::OkStatus();
}

absl::StatusOr<URL> LastOrigin::parse(absl::string_view u) {
  if (!text.empty() && absl::StartsWith(u, text) &&
      (u.size() == text.size() || u[text.size()] == '/' || u[text.size()] == '?' ||
       u[text.size()] == '#')) {
    absl::StatusOr<URL> parsed = internal::parse_url_on_origin(u, url, text.size());
    // The target is the rest as written (no '/' added, no fragment dropped): the origin's
    // text being canonical, so is the URL's.
    canonical = parsed.ok() && parsed->target.size() == u.size() - text.size();
    return parsed;
  }
  canonical = false;
  absl::StatusOr<URL> parsed = URL::parse(u);
  if (parsed.ok()) {
    url.scheme = parsed->scheme;
    url.host = parsed->host;
    url.port = parsed->port;
    text = url.origin();
    key = pool_key(url);
  }
  return parsed;
}

absl::StatusOr<URL> validate_request(const HTTPClientRequest& request, LastOrigin& origins) {
  if (!is_token(request.method)) {
    return absl::InvalidArgumentError(absl::StrCat("HTTPClientRequest.method is not a token: '",
                                                   absl::CHexEscape(request.method), "'"));
  }
  if (request.method == "CONNECT") {
    return absl::InvalidArgumentError("HTTPClientRequest.method CONNECT is not supported");
  }
  if (request.max_redirects < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "HTTPClientRequest.max_redirects must not be negative (got ", request.max_redirects, ")"));
  }
  if (request.connect_timeout < absl::ZeroDuration() ||
      request.request_timeout < absl::ZeroDuration() ||
      request.response_timeout < absl::ZeroDuration() ||
      request.queue_timeout < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("HTTPClientRequest: timeouts must not be negative");
  }
  if (request.body_producer && !request.body.empty()) {
    return absl::InvalidArgumentError(
        "HTTPClientRequest: set either body or body_producer, not both");
  }
  const std::string* host = nullptr;
  const std::string* content_length = nullptr;
  for (const auto& [name, value] : request.headers) {
    if (!is_token(name)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "HTTPClientRequest.headers: field name is not a token: '", absl::CHexEscape(name), "'"));
    }
    if (!internal::is_field_value(value)) {
      return absl::InvalidArgumentError(absl::StrCat("HTTPClientRequest.headers: the value of ",
                                                     name,
                                                     " contains a control byte (only HTAB may)"));
    }
    // Only the first Host (and, with a body_producer, Content-Length) is sent: two that differ
    // are the caller's mistake, which must not go out as a request it did not mean. Equal means
    // the same host in any case, the same number however written.
    const bool is_host = equals_ignore_case(name, "Host");
    if (!is_host && !equals_ignore_case(name, "Content-Length")) continue;
    const std::string*& first = is_host ? host : content_length;
    if (first == nullptr) {
      first = &value;
      continue;
    }
    size_t a = 0, b = 0;
    const bool differ = is_host ? !equals_ignore_case(*first, value)
                                : request.body_producer && !(absl::SimpleAtoi(*first, &a) &&
                                                             absl::SimpleAtoi(value, &b) && a == b);
    if (differ) {
      return absl::InvalidArgumentError(
          absl::StrCat("HTTPClientRequest.headers: ", is_host ? "Host" : "Content-Length",
                       " fields that differ: '", *first, "' and '", value, "'"));
    }
  }
  if (request.body_producer && content_length != nullptr) {
    size_t n;
    if (!absl::SimpleAtoi(*content_length, &n)) {
      return absl::InvalidArgumentError(
          absl::StrCat("HTTPClientRequest.headers: bad Content-Length '", *content_length, "'"));
    }
  }
  return origins.parse(request.url);
}

absl::Status check_transport(const URL& url, const HTTPClientOptions& options) {
  if (url.scheme != "https" || options.tls != nullptr) return absl::OkStatus();
  // The HTTP library cannot make a TLS context itself (it does not link OpenSSL): the
  // program must hand one in.
  return absl::FailedPreconditionError(absl::StrCat(
      url.to_string(),
      " needs HTTPClientOptions.tls (a client TransportFactory, e.g. TLSContext::client)"));
}

std::string pool_key(const URL& url) {
  // Within std::string's inline storage (15 bytes) for a host of up to 12 characters
  // ("127.0.0.1", "localhost"): then a fetch copies its pool's key without allocating.
  std::string key;
  key.reserve(3 + url.host.size());
  key += url.scheme == "https" ? 's' : 'h';
  key += static_cast<char>(url.port >> 8);
  key += static_cast<char>(url.port & 0xff);
  key += url.host;
  return key;
}

bool idempotent(absl::string_view m) {
  return m == "GET" || m == "HEAD" || m == "PUT" || m == "DELETE" || m == "OPTIONS" || m == "TRACE";
}

bool retriable(const ClientFetch& f) {
  return !f.retried && !f.streamed_body && idempotent(f.request.method);
}

void serialize_request(ClientFetch& f, const HTTPClientOptions& options, std::string& out) {
  const HTTPClientRequest& r = f.request;
  // One pass over the fields finds Host, User-Agent and Content-Length and bounds the output:
  // then it is written with one allocation.
  const std::string* host = nullptr;
  const std::string* content_length = nullptr;
  bool has_user_agent = false;
  size_t size = r.method.size() + f.url.target.size() + kRequestFixed + options.user_agent.size() +
                f.url.host.size();
  for (const auto& [name, value] : r.headers) {
    size += name.size() + value.size() + 4;
    if (equals_ignore_case(name, "Host")) {
      if (host == nullptr) host = &value;
    } else if (equals_ignore_case(name, "User-Agent")) {
      has_user_agent = true;
    } else if (equals_ignore_case(name, "Content-Length")) {
      if (content_length == nullptr) content_length = &value;
    }
  }
  if (!r.body_producer) size += r.body.size();
  out.clear();
  out.reserve(size);
  out += r.method;
  out += ' ';
  out += f.url.target;
  out += " HTTP/1.1\r\nHost: ";
  if (host != nullptr) {
    out += *host;
  } else {
    f.url.append_authority(out);
  }
  // The rest, field lines above all, into the storage reserved: no capacity check per piece.
  const size_t start = out.size();
  out.resize(size);
  RawWriter w(out.data() + start);
  auto line = [&w](absl::string_view name, absl::string_view value) {
    w.put(name);
    w.literal(": ");
    w.put(value);
    w.literal("\r\n");
  };
  w.literal("\r\n");
  if (!options.user_agent.empty() && !has_user_agent) line("User-Agent", options.user_agent);
  for (const auto& [name, value] : r.headers) {
    if (client_owned(name) || equals_ignore_case(name, "Host")) continue;
    line(name, value);
  }
  f.chunked_upload = false;
  f.upload_length.reset();
  f.uploaded = 0;
  f.upload_done = !r.body_producer;
  if (r.body_producer) {
    if (content_length != nullptr) {
      size_t n = 0;
      (void)absl::SimpleAtoi(*content_length, &n);  // checked by validate_request
      f.upload_length = n;
      w.literal("Content-Length: ");
      w.decimal(n);
      w.literal("\r\n");
    } else {
      f.chunked_upload = true;
      w.literal("Transfer-Encoding: chunked\r\n");
    }
  } else if (!r.body.empty() || r.method == "POST" || r.method == "PUT" || r.method == "PATCH") {
    w.literal("Content-Length: ");
    w.decimal(r.body.size());
    w.literal("\r\n");
  }
  w.literal("\r\n");
  if (!r.body_producer) w.put(r.body);
  out.resize(static_cast<size_t>(w.end() - out.data()));
}

bool rewrite_for_redirect(ClientFetch& f, int status, const URL& target) {
  HTTPClientRequest& r = f.request;
  if (status == 301 || status == 302 || status == 303) {
    if (r.method != "HEAD") r.method = "GET";
    r.body.clear();
    r.body_producer = nullptr;
    f.streamed_body = false;
    r.headers.remove("Content-Type");
    r.headers.remove("Content-Encoding");
    r.headers.remove("Content-Language");
    r.headers.remove("Content-Location");
  } else if (f.streamed_body) {
    return false;  // 307/308 must resend the body, which was streamed once
  }
  // Within the origin the caller's Host (a virtual host reached by address) and credentials
  // still apply; another origin gets neither, and its own authority as Host.
  if (target.host != f.url.host || target.port != f.url.port || target.scheme != f.url.scheme) {
    r.headers.remove("Authorization");
    r.headers.remove("Cookie");
    r.headers.remove("Host");
  }
  r.url = target.to_string();
  f.url = target;
  f.url_is_request_text = true;  // r.url was just made from it
  f.key = pool_key(target);
  f.method = http_method_from_string(r.method);
  return true;
}

}  // namespace ioloop::net
