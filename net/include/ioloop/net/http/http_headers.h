/// @file ioloop/net/http/http_headers.h
/// HTTPHeaders: an ordered list of header fields (name, value) with case-insensitive lookup.
/// Order and repeated fields are kept exactly as received (RFC 9110 §5.3 lets a recipient
/// combine repeated fields only for list-valued ones, so combining is left to the caller:
/// get_all() or has_token()). Names keep the spelling they arrived with.
///
/// Threading: a value type; use from one thread at a time.
/// Lifetime: string_views returned by get()/get_all() point into this object and are
/// invalidated by any mutation of it.
///
/// Example:
/// ```
///   if (auto host = request.headers().get("host")) use(*host);
///   bool close = request.headers().has_token("Connection", "close");
/// ```
#ifndef IOLOOP_NET_HTTP_HTTP_HEADERS_H_
#define IOLOOP_NET_HTTP_HTTP_HEADERS_H_

#include <algorithm>
#include <concepts>
#include <cstddef>
#include <optional>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"

namespace ioloop::net {

/// An ordered list of header fields with case-insensitive lookup, kept exactly as received. A
/// value type (one thread at a time); views it returns are invalidated by any mutation.
class HTTPHeaders {
 public:
  using Field = std::pair<std::string, std::string>;  ///< (name, value)
  /// @{
  /// Container aliases, for range-for and the standard algorithms (read-only iteration).
  using value_type = Field;
  using const_iterator = std::vector<Field>::const_iterator;
  using iterator = const_iterator;
  /// @}

  /// Appends a field; never replaces an existing one with the same name. Takes anything a
  /// std::string is made from (a string, moved or copied, a view, a literal) and makes the
  /// field's strings from it in place: a parser or a forwarder adding fields from views copies
  /// each byte once.
  template <typename Name, typename Value>
  requires std::constructible_from<std::string, Name&&> &&
      std::constructible_from<std::string, Value&&>
  void add(Name&& name, Value&& value) {
    fields_.emplace_back(std::piecewise_construct, std::forward_as_tuple(std::forward<Name>(name)),
                         std::forward_as_tuple(std::forward<Value>(value)));
  }
  /// Removes every field named `name`, then appends (name, value).
  void set(std::string name, std::string value);
  /// Removes every field named `name` (which may view one of these fields); returns how many
  /// were removed.
  size_t remove(absl::string_view name);
  /// Removes every field for which pred(const Field&) is true, in one pass, keeping the order
  /// of the others; returns how many were removed. `pred` must not refer into this object's
  /// fields (they move while it runs).
  template <typename Pred>
  size_t remove_if(Pred pred) {
    auto it = std::remove_if(fields_.begin(), fields_.end(), pred);
    const size_t removed = static_cast<size_t>(fields_.end() - it);
    fields_.erase(it, fields_.end());
    return removed;
  }
  /// Removes every field (keeps the allocated storage).
  void clear() { fields_.clear(); }
  /// Makes room for `n` fields, so that adding that many allocates once (a parser's head).
  void reserve(size_t n) { fields_.reserve(n); }

  /// The value of the first field named `name` (any case), or nullopt.
  std::optional<absl::string_view> get(absl::string_view name) const;
  /// The values of every field named `name`, in arrival order.
  std::vector<absl::string_view> get_all(absl::string_view name) const;
  /// True if a field is named `name` (any case).
  bool contains(absl::string_view name) const { return get(name).has_value(); }
  /// How many fields are named `name`.
  size_t count(absl::string_view name) const;
  /// True if any field named `name`, read as a comma-separated list (RFC 9110 §5.6.1, as
  /// split_header_list() splits it), has an element equal to `token` ignoring case and
  /// surrounding whitespace. For Connection, Expect, Transfer-Encoding and the like.
  /// Connection is a list of tokens, where '"' and '(' open no string or comment: it is split
  /// at every comma, as HTTP/1.1 parsers read it.
  bool has_token(absl::string_view name, absl::string_view token) const;

  /// @{
  /// The fields in order, as a read-only sequence: size(), empty(), [i] (i < size()), begin(),
  /// end(). Invalidated by any mutation.
  size_t size() const { return fields_.size(); }
  bool empty() const { return fields_.empty(); }
  const Field& operator[](size_t i) const { return fields_[i]; }
  const_iterator begin() const { return fields_.begin(); }
  const_iterator end() const { return fields_.end(); }
  /// @}

  /// Same fields, same spelling, same order.
  friend bool operator==(const HTTPHeaders&, const HTTPHeaders&) = default;

 private:
  std::vector<Field> fields_;
};

/// Splits a comma-separated header list into its non-empty elements, trimmed of spaces and tabs.
/// A comma inside a quoted-string or a comment (RFC 9110 §5.6.4, §5.6.5) belongs to its element.
std::vector<absl::string_view> split_header_list(absl::string_view value);

}  // namespace ioloop::net

#endif  // IOLOOP_NET_HTTP_HTTP_HEADERS_H_
