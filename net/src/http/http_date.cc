// File: net/src/http/http_date.cc
#include "http_date.h"

#include <time.h>

#include <cstdio>
#include <cstring>

namespace ioloop::net {
namespace {

constexpr const char* kDays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
constexpr const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

void format_into(int64_t unix_seconds, char (&out)[kHTTPDateLength + 1]) {
  const time_t t = static_cast<time_t>(unix_seconds);
  struct tm tm;
  ::gmtime_r(&t, &tm);
  // Years past 9999 would not fit; a wider scratch buffer keeps snprintf honest.
  char text[64];
  std::snprintf(text, sizeof text, "%s, %02d %s %04d %02d:%02d:%02d GMT", kDays[tm.tm_wday % 7],
                tm.tm_mday, kMonths[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
                tm.tm_sec);
  std::memcpy(out, text, kHTTPDateLength);
  out[kHTTPDateLength] = '\0';
}

struct DateCache {
  int64_t second = -1;
  uint64_t formats = 0;
  char text[kHTTPDateLength + 1] = {};
};

thread_local DateCache tls_cache;

}  // namespace

std::string format_http_date(int64_t unix_seconds) {
  char text[kHTTPDateLength + 1];
  format_into(unix_seconds, text);
  return std::string(text, kHTTPDateLength);
}

absl::string_view cached_http_date() {
  // The coarse clock is read from the vDSO without a syscall; its few milliseconds of
  // granularity do not matter for a value with one-second resolution.
  struct timespec ts;
  ::clock_gettime(CLOCK_REALTIME_COARSE, &ts);
  return cached_http_date(ts.tv_sec);
}

absl::string_view cached_http_date(int64_t unix_seconds) {
  DateCache& cache = tls_cache;
  if (unix_seconds != cache.second) {
    cache.second = unix_seconds;
    format_into(unix_seconds, cache.text);
    ++cache.formats;
  }
  return absl::string_view(cache.text, kHTTPDateLength);
}

uint64_t http_date_format_count() { return tls_cache.formats; }

}  // namespace ioloop::net
