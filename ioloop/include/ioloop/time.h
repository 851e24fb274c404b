// File: ioloop/time.h
// The one clock of the library: std::chrono::steady_clock (CLOCK_MONOTONIC). Deadlines are
// time points on it, delays are absl::Duration. The wall clock is never consulted, so a
// settimeofday() or NTP step cannot make a timer fire early or late (Tornado #2333).
#ifndef IOLOOP_TIME_H_
#define IOLOOP_TIME_H_

#include <chrono>

#include "absl/time/time.h"

namespace ioloop {

using Clock = std::chrono::steady_clock;
using TimePoint = Clock::time_point;

// Converts a (possibly infinite) absl::Duration to the clock's duration, saturating.
inline Clock::duration to_clock_duration(absl::Duration d) {
  if (d >= absl::Hours(24 * 365 * 100)) return Clock::duration::max() / 2;
  if (d <= -absl::Hours(24 * 365 * 100)) return Clock::duration::min() / 2;
  return absl::ToChronoNanoseconds(d);
}

inline absl::Duration to_duration(Clock::duration d) { return absl::FromChrono(d); }

}  // namespace ioloop

#endif  // IOLOOP_TIME_H_
