// File: net/src/http/http_ascii.h
// Inline ASCII helpers for the HTTP hot paths (field lookup, hop-by-hop removal, request
// validation): absl::EqualsIgnoreCase is an out-of-line call into a shared library, and
// string_view::find_first_of builds a lookup table per call; these run per field per request.
#ifndef IOLOOP_NET_SRC_HTTP_HTTP_ASCII_H_
#define IOLOOP_NET_SRC_HTTP_HTTP_ASCII_H_

#include <array>
#include <cstddef>

#include "absl/strings/string_view.h"

namespace ioloop::net::internal {

inline char ascii_lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; }

// Case-insensitive ASCII equality (field names, list tokens).
inline bool equals_ignore_case(absl::string_view a, absl::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (ascii_lower(a[i]) != ascii_lower(b[i])) return false;
  }
  return true;
}

// RFC 9110 §5.6.2 tchar, and the bytes a field value we send must not hold (CR, LF, NUL), as
// one table: a lookup per byte instead of a chain of comparisons (validation runs per field).
enum : unsigned char { kTchar = 1, kCrLfNul = 2 };
constexpr std::array<unsigned char, 256> make_ascii_classes() {
  std::array<unsigned char, 256> t{};
  for (int c = 0; c < 256; ++c) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) t[c] = kTchar;
  }
  for (char c : absl::string_view("!#$%&'*+-.^_`|~")) t[static_cast<unsigned char>(c)] = kTchar;
  t['\r'] = t['\n'] = t[0] = kCrLfNul;
  return t;
}
inline constexpr std::array<unsigned char, 256> kAsciiClasses = make_ascii_classes();

inline bool is_tchar(char c) { return kAsciiClasses[static_cast<unsigned char>(c)] & kTchar; }

inline bool is_token(absl::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!is_tchar(c)) return false;
  }
  return true;
}

// Whether a field value holds CR, LF or NUL (never allowed in one we send).
inline bool has_cr_lf_nul(absl::string_view value) {
  for (char c : value) {
    if (kAsciiClasses[static_cast<unsigned char>(c)] & kCrLfNul) return true;
  }
  return false;
}

// Calls fn(element) for each non-empty element of a comma-separated field value (RFC 9110
// §5.6.1), trimmed of spaces and tabs, in order, until fn returns true; returns whether one
// did. Allocates nothing (split_header_list() is the vector-returning form).
template <typename Fn>
bool any_list_element(absl::string_view value, Fn fn) {
  while (true) {
    const size_t comma = value.find(',');
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

// The Connection tokens that decide keep-alive, accumulated over every Connection field.
struct ConnectionTokens {
  bool close = false;
  bool keep_alive = false;
};
inline void scan_connection_tokens(absl::string_view value, ConnectionTokens& tokens) {
  any_list_element(value, [&tokens](absl::string_view token) {
    tokens.close = tokens.close || equals_ignore_case(token, "close");
    tokens.keep_alive = tokens.keep_alive || equals_ignore_case(token, "keep-alive");
    return false;
  });
}

// RFC 9112 §9.3 as HTTPRequest::keep_alive() states it: the one rule, shared with the
// request parser (which decides it while it validates a header section).
inline bool keep_alive_rule(int major, int minor, bool connect, const ConnectionTokens& tokens,
                            bool transfer_encoding) {
  if (major != 1 || connect || tokens.close) return false;
  if (minor >= 1) return true;
  return !transfer_encoding && tokens.keep_alive;
}

}  // namespace ioloop::net::internal

#endif  // IOLOOP_NET_SRC_HTTP_HTTP_ASCII_H_
