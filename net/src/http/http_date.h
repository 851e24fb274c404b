// File: net/src/http/http_date.h (private)
// The Date header's value (RFC 9110 §5.6.7 IMF-fixdate, "Sun, 06 Nov 1994 08:49:37 GMT"),
// formatted at most once per second per thread: every response needs it, and formatting a
// time costs far more than a response's other headers. One cache per thread is one cache per
// loop, since a loop runs on one thread.
#ifndef IOLOOP_NET_SRC_HTTP_HTTP_DATE_H_
#define IOLOOP_NET_SRC_HTTP_HTTP_DATE_H_

#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"

namespace ioloop::net {

constexpr size_t kHTTPDateLength = 29;  // "Sun, 06 Nov 1994 08:49:37 GMT"

// Formats `unix_seconds` (UTC) as an IMF-fixdate.
std::string format_http_date(int64_t unix_seconds);

// The current time as an IMF-fixdate, from this thread's cache (re-formatted when the
// wall-clock second changes). The view stays valid until the next call on this thread.
absl::string_view cached_http_date();
// The same cache for `unix_seconds` (what cached_http_date() passes the clock's second as): a
// second other than the cached one is formatted and becomes the cached one.
absl::string_view cached_http_date(int64_t unix_seconds);

// How many times this thread's cache has been (re)formatted: for tests.
uint64_t http_date_format_count();

}  // namespace ioloop::net

#endif  // IOLOOP_NET_SRC_HTTP_HTTP_DATE_H_
