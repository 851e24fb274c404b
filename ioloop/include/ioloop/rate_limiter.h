/// @file ioloop/rate_limiter.h
/// LogRateLimiter caps how often a log line repeats: a handler that throws on every event,
/// or a listener out of fds, would otherwise write thousands of lines a second.
/// Not thread-safe: keep one per loop or per listener.
#ifndef IOLOOP_RATE_LIMITER_H_
#define IOLOOP_RATE_LIMITER_H_

#include <cstdint>
#include <string>

#include "absl/strings/str_cat.h"
#include "ioloop/time.h"

namespace ioloop {

/// Allows at most `burst` lines per `window`; counts what it refuses so the next allowed line
/// can say how many were dropped.
class LogRateLimiter {
 public:
  /// At most `burst` allowed lines per `window`.
  explicit LogRateLimiter(int burst = 10, Clock::duration window = std::chrono::seconds(1))
      : burst_(burst), window_(window) {}

  /// True if a line may be logged at `now`. On true, `*suppressed` receives the number of
  /// lines refused since the previous allowed one (and the count restarts): end the line with
  /// suppressed_note(*suppressed).
  bool allow(TimePoint now, uint64_t* suppressed) {
    if (now - window_start_ >= window_) {
      window_start_ = now;
      used_ = 0;
    }
    if (used_ >= burst_) {
      ++suppressed_;
      return false;
    }
    ++used_;
    *suppressed = suppressed_;
    suppressed_ = 0;
    return true;
  }

 private:
  int burst_;
  Clock::duration window_;
  TimePoint window_start_{};
  int used_ = 0;
  uint64_t suppressed_ = 0;
};

/// The end of a line LogRateLimiter::allow() let through: " (N similar lines suppressed)", or
/// nothing when it refused none before it.
inline std::string suppressed_note(uint64_t suppressed) {
  if (suppressed == 0) return std::string();
  return absl::StrCat(" (", suppressed, suppressed == 1 ? " similar line" : " similar lines",
                      " suppressed)");
}

}  // namespace ioloop

#endif  // IOLOOP_RATE_LIMITER_H_
