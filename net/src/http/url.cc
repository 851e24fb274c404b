// File: net/src/http/url.cc
// URL parsing (RFC 3986 §3 syntax, restricted to what an http(s) client can use) and reference
// resolution (§5.2). resolve() builds the target URL's text and parses it, so a redirect goes
// through exactly the checks of URL::parse().
#include "ioloop/net/http/url.h"

#include <arpa/inet.h>

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace ioloop::net {

namespace {

absl::Status invalid(absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("URL: ", what));
}

std::string quote(absl::string_view s) { return absl::StrCat("'", absl::CHexEscape(s), "'"); }

bool is_unreserved(char c) {
  return absl::ascii_isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

bool is_sub_delim(char c) {
  return absl::string_view("!$&'()*+,;=").find(c) != absl::string_view::npos;
}

uint16_t default_port(absl::string_view scheme) { return scheme == "https" ? 443 : 80; }

// Checks that every '%' in `s` starts a "%XX" triplet; returns the offset of a bad one.
std::optional<size_t> bad_percent(absl::string_view s) {
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') continue;
    if (i + 2 >= s.size()) return i;
    if (!absl::ascii_isxdigit(s[i + 1]) || !absl::ascii_isxdigit(s[i + 2])) return i;
  }
  return std::nullopt;
}

// The parts of a URI reference (RFC 3986 §4.1), without any checks beyond splitting.
struct Reference {
  std::optional<std::string> scheme;  // lower-cased
  std::optional<absl::string_view> authority;
  absl::string_view path;
  std::optional<absl::string_view> query;
};

// RFC 3986 appendix B's regular expression, by hand.
Reference split_reference(absl::string_view s) {
  Reference r;
  size_t end = s.find('#');
  if (end != absl::string_view::npos) s = s.substr(0, end);
  size_t colon = s.find(':');
  if (colon != absl::string_view::npos && colon > 0 && absl::ascii_isalpha(s[0]) &&
      s.find_first_of("/?") > colon) {
    bool ok = true;
    for (char c : s.substr(0, colon)) {
      if (!absl::ascii_isalnum(c) && c != '+' && c != '-' && c != '.') ok = false;
    }
    if (ok) {
      r.scheme = absl::AsciiStrToLower(s.substr(0, colon));
      s.remove_prefix(colon + 1);
    }
  }
  if (absl::StartsWith(s, "//")) {
    s.remove_prefix(2);
    size_t a = s.find_first_of("/?");
    r.authority = s.substr(0, a);
    s.remove_prefix(a == absl::string_view::npos ? s.size() : a);
  }
  size_t q = s.find('?');
  r.path = s.substr(0, q);
  if (q != absl::string_view::npos) r.query = s.substr(q + 1);
  return r;
}

// RFC 3986 §5.2.4.
std::string remove_dot_segments(absl::string_view in) {
  std::string out;
  while (!in.empty()) {
    if (absl::StartsWith(in, "../")) {
      in.remove_prefix(3);
    } else if (absl::StartsWith(in, "./")) {
      in.remove_prefix(2);
    } else if (absl::StartsWith(in, "/./")) {
      in.remove_prefix(2);
    } else if (in == "/.") {
      in = "/";
    } else if (absl::StartsWith(in, "/../") || in == "/..") {
      // Drop the last output segment; "/.." at the end leaves "/" to copy.
      in = in.size() == 3 ? absl::string_view("/") : in.substr(3);
      size_t last = out.rfind('/');
      out.erase(last == std::string::npos ? 0 : last);
    } else if (in == "." || in == "..") {
      in = {};
    } else {
      size_t next = in.find('/', in[0] == '/' ? 1 : 0);
      absl::string_view segment = in.substr(0, next);
      out.append(segment.data(), segment.size());
      in.remove_prefix(segment.size());
    }
  }
  return out;
}

absl::Status parse_host(absl::string_view authority, absl::string_view url, URL& out) {
  absl::string_view host = authority;
  absl::string_view port;
  bool has_port = false;
  if (absl::StartsWith(authority, "[")) {
    size_t close = authority.find(']');
    if (close == absl::string_view::npos) {
      return invalid(absl::StrCat("unterminated IPv6 literal in ", quote(url)));
    }
    host = authority.substr(1, close - 1);
    absl::string_view rest = authority.substr(close + 1);
    if (!rest.empty()) {
      if (rest[0] != ':') {
        return invalid(
            absl::StrCat("unexpected ", quote(rest), " after the IPv6 literal in ", quote(url)));
      }
      has_port = true;
      port = rest.substr(1);
    }
    in6_addr addr;
    if (inet_pton(AF_INET6, std::string(host).c_str(), &addr) != 1) {
      return invalid(absl::StrCat("invalid IPv6 literal ", quote(host)));
    }
  } else {
    size_t colon = authority.rfind(':');
    if (colon != absl::string_view::npos) {
      host = authority.substr(0, colon);
      port = authority.substr(colon + 1);
      has_port = true;
    }
    for (char c : host) {
      if (!is_unreserved(c) && !is_sub_delim(c) && c != '%') {
        return invalid(absl::StrCat("invalid character ", quote(absl::string_view(&c, 1)),
                                    " in host ", quote(host)));
      }
    }
    if (bad_percent(host)) {
      return invalid(absl::StrCat("invalid percent-encoding in host ", quote(host)));
    }
  }
  if (host.empty()) return invalid("empty host");
  out.host = absl::AsciiStrToLower(host);
  out.port = default_port(out.scheme);
  if (has_port && !port.empty()) {
    for (char c : port) {
      if (!absl::ascii_isdigit(c)) return invalid(absl::StrCat("invalid port ", quote(port)));
    }
    int value = 0;
    for (char c : port.substr(0, 6)) value = value * 10 + (c - '0');
    if (port.size() > 5 || value > 65535 || value == 0) {
      return invalid(absl::StrCat("port ", port, " out of range"));
    }
    out.port = static_cast<uint16_t>(value);
  }
  return absl::OkStatus();
}

}  // namespace

std::string URL::authority() const {
  std::string h = host.find(':') != std::string::npos ? absl::StrCat("[", host, "]") : host;
  return port == default_port(scheme) ? h : absl::StrCat(h, ":", port);
}

std::string URL::to_string() const { return absl::StrCat(scheme, "://", authority(), target); }

absl::StatusOr<URL> URL::parse(absl::string_view url) {
  // Characters that cannot appear in a request line or a Host field, nor in any URI.
  for (size_t i = 0; i < url.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(url[i]);
    if (c <= 0x20 || c >= 0x7f) {
      return invalid(absl::StrCat("invalid character ", quote(url.substr(i, 1)), " at ", i, " in ",
                                  quote(url)));
    }
  }
  Reference r = split_reference(url);
  if (!r.scheme) return invalid(absl::StrCat("missing scheme in ", quote(url)));
  if (*r.scheme != "http" && *r.scheme != "https") {
    return invalid(absl::StrCat("unsupported scheme ", quote(*r.scheme)));
  }
  if (!r.authority) {
    return invalid(absl::StrCat("expected '//' after '", *r.scheme, ":' in ", quote(url)));
  }
  if (r.authority->find('@') != absl::string_view::npos) return invalid("userinfo not supported");
  URL out;
  out.scheme = *r.scheme;
  if (absl::Status s = parse_host(*r.authority, url, out); !s.ok()) return s;
  out.target = r.path.empty() ? "/" : std::string(r.path);
  if (r.query) absl::StrAppend(&out.target, "?", *r.query);
  if (std::optional<size_t> bad = bad_percent(out.target)) {
    return invalid(absl::StrCat("invalid percent-encoding ", quote(out.target.substr(*bad, 3)),
                                " in ", quote(url)));
  }
  return out;
}

absl::StatusOr<URL> URL::resolve(absl::string_view reference) const {
  for (size_t i = 0; i < reference.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(reference[i]);
    if (c <= 0x20 || c >= 0x7f) {
      return invalid(absl::StrCat("invalid character ", quote(reference.substr(i, 1)), " at ", i,
                                  " in ", quote(reference)));
    }
  }
  const Reference r = split_reference(reference);
  const size_t q = target.find('?');
  const absl::string_view base_path = absl::string_view(target).substr(0, q);
  const std::optional<absl::string_view> base_query =
      q == std::string::npos
          ? std::nullopt
          : std::optional<absl::string_view>(absl::string_view(target).substr(q + 1));
  // RFC 3986 §5.2.2 (strict: a reference with a scheme is absolute even if it is ours).
  std::string scheme_part, authority_part, path;
  std::optional<absl::string_view> query;
  if (r.scheme) {
    scheme_part = *r.scheme;
    if (r.authority) authority_part = std::string(*r.authority);
    path = remove_dot_segments(r.path);
    query = r.query;
    if (!r.authority) {  // "http:g": not a usable http(s) URL; parse() says why
      return parse(absl::StrCat(scheme_part, ":", path, query ? "?" : "", query.value_or("")));
    }
  } else {
    scheme_part = scheme;
    if (r.authority) {
      authority_part = std::string(*r.authority);
      path = remove_dot_segments(r.path);
      query = r.query;
    } else {
      authority_part = authority();
      if (r.path.empty()) {
        path = std::string(base_path);
        query = r.query ? r.query : base_query;
      } else {
        if (r.path[0] == '/') {
          path = remove_dot_segments(r.path);
        } else {  // §5.2.3 merge: the base always has an authority and a path of at least "/"
          size_t slash = base_path.rfind('/');
          path = remove_dot_segments(absl::StrCat(
              base_path.substr(0, slash == absl::string_view::npos ? 0 : slash + 1), r.path));
        }
        query = r.query;
      }
    }
  }
  return parse(
      absl::StrCat(scheme_part, "://", authority_part, path, query ? "?" : "", query.value_or("")));
}

}  // namespace ioloop::net
