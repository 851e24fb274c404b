/// @file ioloop/periodic_callback.h
/// PeriodicCallback runs a callback every `period` on an IOLoop, on the monotonic clock.
///
/// Schedule: the next run is the last *scheduled* time plus k periods, the smallest k that
/// lands in the future. So it never drifts (a late or slow run does not push later runs back,
/// unlike libuv's and muduo's repeat timers, which re-arm from "now") and never bunches (runs
/// missed while the loop was busy are skipped, not replayed back to back); skipped() counts
/// them. A wall-clock jump changes nothing.
///
/// Threading and lifetime: loop thread only. The loop must outlive it, as for every object that
/// runs on a loop: stop() and the destructor cancel its timer there. Destroying it stops it; it
/// may be stopped or destroyed from inside its own callback. (The lifetime idiom of
/// docs/architecture.md, "Lifetimes": the state lives in a shared_ptr the object owns; the loop's
/// timer holds it weakly, and a run holds it strongly only while it lasts, so the running callable
/// survives its owner's destruction.)
///
/// Errors: an exception from the callback is logged through the loop's rate-limited path as
/// "exception escaped periodic callback: <what()>" and counted in the loop's stats().exceptions;
/// the callback keeps running on its grid (Tornado's PeriodicCallback does the same).
///
/// Time is the loop's time(): on a loop given a ManualClock (IOLoopOptions::clock) it runs on
/// that clock, which is how its tests drive it deterministically.
///
/// Example:
/// ```
///   ioloop::PeriodicCallback tick(loop, [] { flush_stats(); }, absl::Seconds(1));
///   tick.start();
/// ```
#ifndef IOLOOP_PERIODIC_CALLBACK_H_
#define IOLOOP_PERIODIC_CALLBACK_H_

#include <cstdint>
#include <memory>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "ioloop/io_loop.h"

namespace ioloop {

/// Runs a callback every `period` on an IOLoop, on a grid that neither drifts nor bunches. Loop
/// thread only; the schedule, lifetime and error rules are in the file comment of
/// ioloop/periodic_callback.h.
class PeriodicCallback {
 public:
  /// `period` must be from 1 ns (the clock's tick) to under 100 years; start() reports
  /// InvalidArgument otherwise.
  /// On a ManualClock jumped to the end of the clock's range, the runs stop there.
  PeriodicCallback(IOLoop& loop, absl::AnyInvocable<void()> callback, absl::Duration period);
  ~PeriodicCallback();
  PeriodicCallback(const PeriodicCallback&) = delete;
  PeriodicCallback& operator=(const PeriodicCallback&) = delete;

  /// Schedules the first run at now + period. A no-op if already running.
  absl::Status start();
  /// Cancels the next run. A no-op if not running.
  void stop();
  /// True between start() and stop() (or destruction).
  bool is_running() const;

  /// The period given at construction.
  absl::Duration period() const;
  /// How many times the callback has run (an exception it threw counts as a run).
  uint64_t runs() const;
  /// Scheduled runs that were skipped because the loop got to them late.
  uint64_t skipped() const;
  /// The grid time of the pending run; inside the callback, of the run in progress. Always
  /// first run + k * period: lateness never shifts it.
  TimePoint scheduled_time() const;

 private:
  // Everything a run needs. Owned here; the pending timer holds it weakly (a timer must not
  // keep a destroyed PeriodicCallback going), a run strongly while it lasts.
  struct State;
  std::shared_ptr<State> state_;
};

}  // namespace ioloop

#endif  // IOLOOP_PERIODIC_CALLBACK_H_
