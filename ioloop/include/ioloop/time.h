/// @file ioloop/time.h
/// The one clock of the library: std::chrono::steady_clock (CLOCK_MONOTONIC). Deadlines are
/// time points on it, delays are absl::Duration. Tests may run a loop on a ManualClock instead. The
/// wall clock is never consulted, so a settimeofday() or NTP step cannot make a timer fire early or
/// late (Tornado #2333).
#ifndef IOLOOP_TIME_H_
#define IOLOOP_TIME_H_

#include <atomic>
#include <chrono>

#include "absl/time/time.h"

namespace ioloop {

/// The library's clock: steady_clock (CLOCK_MONOTONIC).
using Clock = std::chrono::steady_clock;
/// A deadline: a point on Clock.
using TimePoint = Clock::time_point;

/// Converts a (possibly infinite) absl::Duration to the clock's duration, saturating.
inline Clock::duration to_clock_duration(absl::Duration d) {
  if (d >= absl::Hours(24 * 365 * 100)) return Clock::duration::max() / 2;
  if (d <= -absl::Hours(24 * 365 * 100)) return Clock::duration::min() / 2;
  return absl::ToChronoNanoseconds(d);
}

/// `t + d`, or TimePoint::max() where that would overflow (a ManualClock far in the future).
inline TimePoint add_saturating(TimePoint t, Clock::duration d) {
  if (d > Clock::duration::zero() && t > TimePoint::max() - d) return TimePoint::max();
  return t + d;
}

/// Converts the clock's duration to an absl::Duration (exactly: both count nanoseconds).
inline absl::Duration to_duration(Clock::duration d) { return absl::FromChrono(d); }

/// A clock that moves only when told, for tests: give it to IOLoopOptions::clock and the loop's
/// time(), timeouts and everything built on them (PeriodicCallback, stream and server timeouts)
/// run on it, and the loop jumps it to the next timeout instead of sleeping. Timing tests then
/// assert exact times and counts instead of wall-clock windows.
///
/// Thread-safe (an atomic). It never goes backwards.
class ManualClock {
 public:
  /// Starts at `start`, by default an arbitrary point well after the clock's epoch.
  explicit ManualClock(TimePoint start = TimePoint(std::chrono::hours(24)))
      : ns_(start.time_since_epoch().count()) {}
  ManualClock(const ManualClock&) = delete;
  ManualClock& operator=(const ManualClock&) = delete;

  /// The current time: where the clock was last advanced to.
  TimePoint now() const { return TimePoint(Clock::duration(ns_.load(std::memory_order_acquire))); }
  /// Moves the clock forward by `d`; a negative `d` is ignored. Saturates at TimePoint::max()
  /// (an infinite `d` goes there), so that the clock never wraps around into the past.
  void advance(absl::Duration d) {
    if (d <= absl::ZeroDuration()) return;
    // to_clock_duration() caps an infinite `d` at half the range (146 years): the end is meant.
    const Clock::duration step =
        d == absl::InfiniteDuration() ? Clock::duration::max() : to_clock_duration(d);
    Clock::rep have = ns_.load(std::memory_order_acquire);
    Clock::rep want;
    do {
      want = add_saturating(TimePoint(Clock::duration(have)), step).time_since_epoch().count();
    } while (!ns_.compare_exchange_weak(have, want, std::memory_order_acq_rel));
  }
  /// Moves the clock to `t` if that is later than now().
  void advance_to(TimePoint t) {
    Clock::rep want = t.time_since_epoch().count();
    Clock::rep have = ns_.load(std::memory_order_acquire);
    while (have < want && !ns_.compare_exchange_weak(have, want, std::memory_order_acq_rel)) {
    }
  }

 private:
  std::atomic<Clock::rep> ns_;
};

}  // namespace ioloop

#endif  // IOLOOP_TIME_H_
