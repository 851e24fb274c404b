#include "ioloop/periodic_callback.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace ioloop {

// The lifetime idiom (docs/architecture.md, "Lifetimes"): the PeriodicCallback owns its
// State; the loop's timer captures a weak_ptr and locks it, so a timer that fires after its
// owner is gone does nothing, and the lock keeps the State, the running callable included,
// alive while the callback runs, even if the callback destroys its owner.
struct PeriodicCallback::State {
  State(IOLoop& l, absl::AnyInvocable<void()> cb, absl::Duration p)
      : loop(l), callback(std::move(cb)), period(p) {}

  void schedule_next(const std::shared_ptr<State>& self);
  static void run(std::shared_ptr<State> self);
  void advance(const std::shared_ptr<State>& self);
  void stop();

  IOLoop& loop;
  absl::AnyInvocable<void()> callback;
  absl::Duration period;
  bool running = false;  // also cleared by ~PeriodicCallback: an orphan never reschedules
  TimePoint next{};
  TimeoutHandle timeout;
  uint64_t runs = 0;
  uint64_t skipped = 0;
};

PeriodicCallback::PeriodicCallback(IOLoop& loop, absl::AnyInvocable<void()> callback,
                                   absl::Duration period)
    : state_(std::make_shared<State>(loop, std::move(callback), period)) {}

PeriodicCallback::~PeriodicCallback() { state_->stop(); }

absl::Status PeriodicCallback::start() {
  State& s = *state_;
  // to_clock_duration() saturates from 100 years on: such a period (infinite included)
  // could not be kept. Under the clock's tick (1 ns) it truncates to 0: no grid at all.
  if (s.period < absl::Nanoseconds(1) || s.period >= absl::Hours(24 * 365 * 100)) {
    return absl::InvalidArgumentError(
        absl::StrCat("PeriodicCallback: period must be from 1ns to under 100 years, got ",
                     absl::FormatDuration(s.period)));
  }
  if (!s.callback) return absl::InvalidArgumentError("PeriodicCallback: empty callback");
  if (s.running) return absl::OkStatus();
  s.running = true;
  s.next = add_saturating(s.loop.time(), to_clock_duration(s.period));
  s.schedule_next(state_);
  return absl::OkStatus();
}

void PeriodicCallback::stop() { state_->stop(); }

bool PeriodicCallback::is_running() const { return state_->running; }
absl::Duration PeriodicCallback::period() const { return state_->period; }
uint64_t PeriodicCallback::runs() const { return state_->runs; }
uint64_t PeriodicCallback::skipped() const { return state_->skipped; }
TimePoint PeriodicCallback::scheduled_time() const { return state_->next; }

void PeriodicCallback::State::stop() {
  running = false;
  loop.remove_timeout(timeout);
  timeout = TimeoutHandle();
}

void PeriodicCallback::State::schedule_next(const std::shared_ptr<State>& self) {
  timeout = loop.call_at(next, [weak = std::weak_ptr<State>(self)] {
    if (std::shared_ptr<State> state = weak.lock()) run(std::move(state));
  });
}

// `self` is the strong reference that keeps this State, and the callable, alive for the
// whole run, whatever the callback does to its owner.
void PeriodicCallback::State::run(std::shared_ptr<State> self) {
  State& s = *self;
  s.timeout = TimeoutHandle();
  if (!s.running) return;
  ++s.runs;
  // Tornado's rule: an exception is logged (as this callback's, rate-limited) and counted in
  // the loop's stats().exceptions, and the schedule goes on.
  s.loop.invoke_guarded("periodic callback", [&] { s.callback(); }).IgnoreError();
  // Reschedule unless the callback destroyed, stopped or restarted its owner.
  if (s.running && !s.timeout.valid()) s.advance(self);
}

void PeriodicCallback::State::advance(const std::shared_ptr<State>& self) {
  // Next slot on the original grid: scheduled + k * period, the first one in the future.
  const Clock::duration p = to_clock_duration(period);
  const TimePoint now = loop.time();
  // A ManualClock may be jumped to the end of the clock's range: no slot is left there.
  if (next > TimePoint::max() - p || now > TimePoint::max() - p) {
    running = false;
    return;
  }
  TimePoint n = next + p;
  if (n <= now) {
    const auto missed = (now - n) / p + 1;  // grid slots at or before now
    skipped += static_cast<uint64_t>(missed);
    n = add_saturating(n, missed * p);
  }
  next = n;
  schedule_next(self);
}

}  // namespace ioloop
