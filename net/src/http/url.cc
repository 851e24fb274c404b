// File: net/src/http/url.cc
// URL parsing (RFC 3986 §3 syntax, restricted to what an http(s) client can use) and reference
// resolution (§5.2). resolve() builds the target URL's text and parses it, so a redirect goes
// through exactly the checks of URL::parse().
#include "ioloop/net/http/url.h"

#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "http/url_internal.h"

namespace ioloop::net {

namespace {

absl::Status invalid(absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("URL: ", what));
}

std::string quote(absl::string_view s) { return absl::StrCat("'", absl::CHexEscape(s), "'"); }

// Character classes of RFC 3986 §2, as bits of one table: parse() runs per fetch, and a
// table lookup per character beats the chains of comparisons and searches it replaces.
enum : uint8_t {
  kVisible = 1,     // 0x21-0x7e: what a URL may hold at all (no controls, space or non-ASCII)
  kHostChar = 2,    // unreserved / sub-delims / '%' (reg-name, IPv4)
  kSchemeChar = 4,  // ALPHA / DIGIT / '+' / '-' / '.'
};

constexpr std::array<uint8_t, 256> make_char_classes() {
  std::array<uint8_t, 256> t{};
  for (int c = 0x21; c < 0x7f; ++c) t[c] |= kVisible;
  for (int c = 0; c < 256; ++c) {
    const bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    if (alnum) t[c] |= kHostChar | kSchemeChar;
  }
  for (char c : absl::string_view("-._~!$&'()*+,;=%")) t[static_cast<uint8_t>(c)] |= kHostChar;
  for (char c : absl::string_view("+-.")) t[static_cast<uint8_t>(c)] |= kSchemeChar;
  return t;
}
constexpr std::array<uint8_t, 256> kCharClasses = make_char_classes();

bool has_class(char c, uint8_t cls) { return (kCharClasses[static_cast<uint8_t>(c)] & cls) != 0; }

// Lower-cases ASCII into `out` (an assignment, so a short result reuses out's storage).
void assign_lower(absl::string_view in, std::string& out) {
  out.assign(in.data(), in.size());
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
  }
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
  if (colon != absl::string_view::npos && colon > 0 && absl::ascii_isalpha(s[0])) {
    bool ok = true;  // every character before the colon a scheme character (so no '/' or '?')
    for (char c : s.substr(0, colon)) ok = ok && has_class(c, kSchemeChar);
    if (ok) {
      assign_lower(s.substr(0, colon), r.scheme.emplace());
      s.remove_prefix(colon + 1);
    }
  }
  if (absl::StartsWith(s, "//")) {
    s.remove_prefix(2);
    size_t a = 0;
    while (a < s.size() && s[a] != '/' && s[a] != '?') ++a;
    r.authority = s.substr(0, a);
    s.remove_prefix(a);
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
    } else if (absl::StartsWith(in, "./") || absl::StartsWith(in, "/./")) {
      in.remove_prefix(2);  // "./" goes; "/./" becomes "/"
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
      if (!has_class(c, kHostChar)) {
        return invalid(absl::StrCat("invalid character ", quote(absl::string_view(&c, 1)),
                                    " in host ", quote(host)));
      }
    }
    if (bad_percent(host)) {
      return invalid(absl::StrCat("invalid percent-encoding in host ", quote(host)));
    }
  }
  if (host.empty()) return invalid("empty host");
  assign_lower(host, out.host);
  out.port = default_port(out.scheme);
  if (has_port && !port.empty()) {
    for (char c : port) {
      if (!absl::ascii_isdigit(c)) return invalid(absl::StrCat("invalid port ", quote(port)));
    }
    // Leading zeros are allowed (RFC 3986 §3.2.3: port = *DIGIT); the value saturates above
    // the range, however many digits follow.
    int value = 0;
    for (char c : port) value = std::min(value * 10 + (c - '0'), 65536);
    if (value > 65535 || value == 0) {
      return invalid(absl::StrCat("port ", port, " out of range"));
    }
    out.port = static_cast<uint16_t>(value);
  }
  return absl::OkStatus();
}

}  // namespace

void URL::append_authority(std::string& out) const {
  const bool bracket = host.find(':') != std::string::npos;
  if (bracket) out += '[';
  out += host;
  if (bracket) out += ']';
  if (port == default_port(scheme)) return;
  char digits[8];
  const char* end = std::to_chars(digits, digits + sizeof digits, port).ptr;
  out += ':';
  out.append(digits, static_cast<size_t>(end - digits));
}

std::string URL::authority() const {
  std::string out;
  out.reserve(host.size() + 8);
  append_authority(out);
  return out;
}

std::string URL::origin() const {
  std::string out;
  out.reserve(scheme.size() + host.size() + 11);
  out += scheme;
  out += "://";
  append_authority(out);
  return out;
}

std::string URL::to_string() const {
  std::string out;
  out.reserve(scheme.size() + host.size() + target.size() + 11);
  out += scheme;
  out += "://";
  append_authority(out);
  out += target;
  return out;
}

bool URL::to_string_equals(absl::string_view text) const {
  auto take = [&text](absl::string_view part) {
    if (!absl::StartsWith(text, part)) return false;
    text.remove_prefix(part.size());
    return true;
  };
  if (!take(scheme) || !take("://")) return false;
  const bool bracket = host.find(':') != std::string::npos;
  if ((bracket && !take("[")) || !take(host) || (bracket && !take("]"))) return false;
  if (port != default_port(scheme)) {
    // The port's decimal digits, as append_authority() writes them.
    char digits[8];
    const char* end = std::to_chars(digits, digits + sizeof digits, port).ptr;
    if (!take(":") || !take(absl::string_view(digits, static_cast<size_t>(end - digits)))) {
      return false;
    }
  }
  return text == target;
}

namespace {

// Whether url[from..] holds only characters a URI may (no controls, space or non-ASCII); else
// the InvalidArgument that names the first other one.
absl::Status check_visible(absl::string_view url, size_t from) {
  for (size_t i = from; i < url.size(); ++i) {
    if (!has_class(url[i], kVisible)) {
      return invalid(absl::StrCat("invalid character ", quote(url.substr(i, 1)), " at ", i, " in ",
                                  quote(url)));
    }
  }
  return absl::OkStatus();
}

// Sets out.target from the path and query (contiguous in `url`: one copy; "/" first when the
// path is empty) and checks its percent-encoding.
absl::Status set_target(absl::string_view url, absl::string_view path_and_query, bool path_empty,
                        URL& out) {
  if (path_empty) {
    out.target.reserve(path_and_query.size() + 1);
    out.target += '/';
  }
  out.target.append(path_and_query.data(), path_and_query.size());
  if (std::optional<size_t> bad = bad_percent(out.target)) {
    return invalid(absl::StrCat("invalid percent-encoding ", quote(out.target.substr(*bad, 3)),
                                " in ", quote(url)));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status URL::check_target(absl::string_view target) {
  // parse()'s checks in parse()'s order (every character first, then the '%'s), with the same
  // table and bad_percent(): one rule, two messages.
  for (const char c : target) {
    if (!has_class(c, kVisible)) {
      return absl::InvalidArgumentError("invalid character in the target");
    }
  }
  if (bad_percent(target)) {
    return absl::InvalidArgumentError("invalid percent-encoding in the target");
  }
  return absl::OkStatus();
}

absl::StatusOr<URL> URL::parse(absl::string_view url) {
  // Characters that cannot appear in a request line or a Host field, nor in any URI.
  if (absl::Status s = check_visible(url, 0); !s.ok()) return s;
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
  out.scheme = *std::move(r.scheme);
  if (absl::Status s = parse_host(*r.authority, url, out); !s.ok()) return s;
  const absl::string_view path_and_query(
      r.path.data(),
      r.query ? static_cast<size_t>(r.query->end() - r.path.begin()) : r.path.size());
  if (absl::Status s = set_target(url, path_and_query, r.path.empty(), out); !s.ok()) return s;
  return out;
}

namespace internal {

absl::StatusOr<URL> parse_url_on_origin(absl::string_view url, const URL& origin,
                                        size_t origin_size) {
  // The origin's text is canonical (no '#', nothing invisible), so the checks of parse() that
  // remain are those of the rest: the same error for the same URL.
  if (absl::Status s = check_visible(url, origin_size); !s.ok()) return s;
  absl::string_view rest = url.substr(origin_size);
  rest = rest.substr(0, rest.find('#'));  // the path and query
  URL out;
  out.scheme = origin.scheme;
  out.host = origin.host;
  out.port = origin.port;
  const bool path_empty = rest.empty() || rest[0] == '?';
  if (absl::Status s = set_target(url, rest, path_empty, out); !s.ok()) return s;
  return out;
}

}  // namespace internal

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
