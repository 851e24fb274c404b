// File: net/src/http/http_ascii.h
// Inline ASCII helpers for the HTTP hot paths (field lookup, hop-by-hop removal, request
// validation): absl::EqualsIgnoreCase is an out-of-line call into a shared library, and
// string_view::find_first_of builds a lookup table per call; these run per field per request.
#ifndef IOLOOP_NET_SRC_HTTP_HTTP_ASCII_H_
#define IOLOOP_NET_SRC_HTTP_HTTP_ASCII_H_

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>

#include "absl/strings/string_view.h"

namespace ioloop::net::internal {

inline char ascii_lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; }

// Eight bytes at once: 'A'..'Z' become 'a'..'z', every other byte (non-ASCII included) stays.
// Per byte h (its low seven bits), h + 0x3F carries into bit 7 when h >= 'A' and h + 0x25
// when h > 'Z', never into the next byte; bit 7 of the original byte excludes non-ASCII.
inline uint64_t ascii_lower8(uint64_t x) {
  constexpr uint64_t kOnes = 0x0101010101010101ULL;
  constexpr uint64_t kHigh = kOnes * 0x80;
  const uint64_t low7 = x & ~kHigh;
  const uint64_t at_least_a = low7 + kOnes * (0x80 - 'A');
  const uint64_t above_z = low7 + kOnes * (0x80 - 'Z' - 1);
  const uint64_t upper = at_least_a & ~above_z & ~x & kHigh;
  return x | (upper >> 2);  // bit 7 -> bit 5 (0x20)
}

inline uint64_t load8(const char* p) {
  uint64_t w;
  std::memcpy(&w, p, sizeof w);
  return w;
}

// Case-insensitive ASCII equality (field names, list tokens): a word at a time (they run per
// field per request, many times; most names are 8 bytes or longer).
inline bool equals_ignore_case(absl::string_view a, absl::string_view b) {
  const size_t n = a.size();
  if (n != b.size()) return false;
  if (n < 8) {
    for (size_t i = 0; i < n; ++i) {
      if (ascii_lower(a[i]) != ascii_lower(b[i])) return false;
    }
    return true;
  }
  for (size_t i = 0; i + 8 < n; i += 8) {
    if (ascii_lower8(load8(a.data() + i)) != ascii_lower8(load8(b.data() + i))) return false;
  }
  // The last eight bytes (overlapping what the loop compared when n is not a multiple of 8).
  return ascii_lower8(load8(a.data() + n - 8)) == ascii_lower8(load8(b.data() + n - 8));
}

// RFC 9110 §5.6.2 tchar and RFC 3986 §3.2.2 reg-name characters (unreserved and sub-delims)
// as a table: a lookup per byte instead of a chain of comparisons (validation runs per field).
enum : unsigned char { kTchar = 1, kHostChar = 2 };
constexpr std::array<unsigned char, 256> make_ascii_classes() {
  std::array<unsigned char, 256> t{};
  for (int c = 0; c < 256; ++c) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) {
      t[c] = kTchar | kHostChar;
    }
  }
  for (char c : absl::string_view("!#$%&'*+-.^_`|~")) t[static_cast<unsigned char>(c)] |= kTchar;
  for (char c : absl::string_view("-._~!$&'()*+,;=")) t[static_cast<unsigned char>(c)] |= kHostChar;
  return t;
}
inline constexpr std::array<unsigned char, 256> kAsciiClasses = make_ascii_classes();

// A control byte other than HTAB (and DEL): what RFC 9112 allows in neither a reason phrase
// nor a chunk extension, where libhttp_parser (non-strict) lets them through.
inline bool is_control_but_htab(char c) {
  const auto u = static_cast<unsigned char>(c);
  return (u < 0x20 && u != '\t') || u == 0x7f;
}

inline bool is_tchar(char c) { return kAsciiClasses[static_cast<unsigned char>(c)] & kTchar; }

inline bool is_token(absl::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!is_tchar(c)) return false;
  }
  return true;
}

// One or more ASCII digits (a Content-Length value, a port).
inline bool is_digits(absl::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// Bit 7 of each byte of the result is set exactly when that byte of `x` is below `n` (1..0x80),
// each byte on its own: its bit 7 is cleared before the add, so no carry crosses into the next.
inline uint64_t bytes_below(uint64_t x, unsigned char n) {
  constexpr uint64_t kOnes = 0x0101010101010101ULL;
  constexpr uint64_t kHigh = kOnes * 0x80;
  return ~(((x & ~kHigh) + kOnes * (0x80 - n)) | x) & kHigh;
}

// RFC 9110 §5.5: a field value (or a reason phrase) may hold HTAB, SP, visible bytes and
// obs-text, but no other control byte: CR, LF and NUL would end or split the line, and every
// parser of this library rejects the others, as strict ones elsewhere do. Checked on every field
// a server or client sends, so a word at a time.
inline bool is_field_value(absl::string_view s) {
  constexpr uint64_t kOnes = 0x0101010101010101ULL;
  auto control = [](uint64_t w) {
    const uint64_t tab = bytes_below(w ^ (kOnes * '\t'), 1);
    const uint64_t del = bytes_below(w ^ (kOnes * 0x7f), 1);
    return ((bytes_below(w, 0x20) & ~tab) | del) != 0;
  };
  const size_t n = s.size();
  if (n < 8) return std::none_of(s.begin(), s.end(), is_control_but_htab);
  for (size_t i = 0; i + 8 < n; i += 8) {
    if (control(load8(s.data() + i))) return false;
  }
  return !control(load8(s.data() + n - 8));  // the last eight bytes, overlapping
}

// A field this library may put on the wire: a token for a name (a space or colon in one would
// make another field of it), a field value for a value.
inline bool is_sendable_field(absl::string_view name, absl::string_view value) {
  return is_token(name) && is_field_value(value);
}

// Whether the bytes one http_parser_execute() call consumed end with CR LF, `before` being the
// byte before them in the stream (the CR of a split pair). libhttp_parser, not built strict,
// consumes the two bytes after a chunk's data without looking at them: both parsers check them.
inline bool consumed_ends_with_crlf(absl::string_view consumed, char before) {
  const size_t n = consumed.size();
  if (n == 0) return false;
  return (n >= 2 ? consumed[n - 2] : before) == '\r' && consumed[n - 1] == '\n';
}

// Where the element that starts `value` ends: its first comma outside a quoted-string (RFC 9110
// §5.6.4, '\\' escaping the next byte) and outside a comment (§5.6.5: Via's "(a, b)", nested,
// '\\' escaping too), or npos. An unterminated string or comment runs to the end. A byte loop,
// not memchr: values are short, and a null data pointer (an empty view) is never passed on.
inline size_t list_element_end(absl::string_view value) {
  const size_t n = value.size();
  for (size_t i = 0; i < n; ++i) {
    const char c = value[i];
    if (c == ',') return i;
    if (c != '"' && c != '(') continue;
    int depth = 1;  // of comments; a quoted-string ends at its one closing quote
    for (++i; i < n && depth > 0; ++i) {
      if (value[i] == '\\') {
        ++i;
      } else if (c == '"') {
        depth -= value[i] == '"' ? 1 : 0;
      } else if (value[i] == '(' || value[i] == ')') {
        depth += value[i] == '(' ? 1 : -1;
      }
    }
    if (depth > 0) return absl::string_view::npos;
    --i;  // the closing byte; the loop's ++i moves past it
  }
  return absl::string_view::npos;
}

// Calls fn(element) for each non-empty element of a comma-separated field value (RFC 9110
// §5.6.1), trimmed of spaces and tabs, in order, until fn returns true; returns whether one
// did. Commas inside quoted-strings and comments belong to their element (list_element_end),
// unless `tokens`: a token list (`#token`, as Connection) holds neither, so it is split at
// every comma, as its peers read it (libhttp_parser, nginx). Allocates nothing
// (split_header_list() is the vector-returning form).
template <typename Fn>
bool any_element(absl::string_view value, bool tokens, Fn fn) {
  while (true) {
    const void* at =
        tokens && !value.empty() ? std::memchr(value.data(), ',', value.size()) : nullptr;
    const size_t comma = !tokens ? list_element_end(value)
                         : at    ? static_cast<size_t>(static_cast<const char*>(at) - value.data())
                                 : absl::string_view::npos;
    absl::string_view element = value.substr(0, comma);
    while (!element.empty() && (element.front() == ' ' || element.front() == '\t')) {
      element.remove_prefix(1);
    }
    while (!element.empty() && (element.back() == ' ' || element.back() == '\t')) {
      element.remove_suffix(1);
    }
    if (!element.empty() && fn(element)) return true;
    if (comma == absl::string_view::npos) return false;
    value.remove_prefix(comma + 1);
  }
}
template <typename Fn>
bool any_list_element(absl::string_view value, Fn fn) {
  return any_element(value, /*tokens=*/false, fn);
}
template <typename Fn>
bool any_token(absl::string_view value, Fn fn) {
  return any_element(value, /*tokens=*/true, fn);
}

// The Connection tokens that decide keep-alive, accumulated over every Connection field.
struct ConnectionTokens {
  bool close = false;
  bool keep_alive = false;
};
inline void scan_connection_tokens(absl::string_view value, ConnectionTokens& tokens) {
  any_token(value, [&tokens](absl::string_view token) {
    tokens.close = tokens.close || equals_ignore_case(token, "close");
    tokens.keep_alive = tokens.keep_alive || equals_ignore_case(token, "keep-alive");
    return false;
  });
}
// The same over every Connection field of `headers` (a range of name-value pairs).
template <typename Headers>
ConnectionTokens connection_tokens_of(const Headers& headers) {
  ConnectionTokens tokens;
  for (const auto& [name, value] : headers) {
    if (equals_ignore_case(name, "Connection")) scan_connection_tokens(value, tokens);
  }
  return tokens;
}

// RFC 9112 §9.3 as HTTPRequest::keep_alive() states it: the one rule, shared with the
// request parser (which decides it while it validates a header section).
inline bool keep_alive_rule(int major, int minor, bool connect, const ConnectionTokens& tokens,
                            bool transfer_encoding) {
  if (major != 1 || connect || tokens.close) return false;
  if (minor >= 1) return true;
  return !transfer_encoding && tokens.keep_alive;
}

// An absolute-form request target ("http://a.example:81/p?q") split after its authority:
// the authority ("a.example:81") and what follows it ("/p?q", "?q" or nothing). Nothing for
// the other forms ("/p", "*", CONNECT's "host:port"). HTTPRequest::path() and the server's
// Host rule (request_head.h) read a target through it.
struct AbsoluteForm {
  absl::string_view authority;
  absl::string_view rest;
};
inline std::optional<AbsoluteForm> split_absolute_form(absl::string_view target) {
  if (target.empty() || target[0] == '/' || target[0] == '*') return std::nullopt;
  const size_t scheme_end = target.find("://");
  if (scheme_end == absl::string_view::npos) return std::nullopt;
  const absl::string_view t = target.substr(scheme_end + 3);
  const size_t end = std::min(t.find_first_of("/?#"), t.size());
  return AbsoluteForm{t.substr(0, end), t.substr(end)};
}

}  // namespace ioloop::net::internal

#endif  // IOLOOP_NET_SRC_HTTP_HTTP_ASCII_H_
