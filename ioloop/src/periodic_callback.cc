#include "ioloop/periodic_callback.h"

#include "absl/strings/str_cat.h"

namespace ioloop {

PeriodicCallback::PeriodicCallback(IOLoop& loop, absl::AnyInvocable<void()> callback,
                                   absl::Duration period)
    : loop_(loop),
      callback_(std::make_shared<absl::AnyInvocable<void()>>(std::move(callback))),
      period_(period) {}

PeriodicCallback::~PeriodicCallback() {
  *alive_ = false;
  stop();
}

absl::Status PeriodicCallback::start() {
  if (period_ <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "PeriodicCallback: period must be positive, got ", absl::FormatDuration(period_)));
  }
  if (!*callback_) return absl::InvalidArgumentError("PeriodicCallback: empty callback");
  if (running_) return absl::OkStatus();
  running_ = true;
  next_ = loop_.time() + to_clock_duration(period_);
  schedule_next();
  return absl::OkStatus();
}

void PeriodicCallback::stop() {
  running_ = false;
  loop_.remove_timeout(timeout_);
  timeout_ = TimeoutHandle();
}

void PeriodicCallback::schedule_next() {
  timeout_ = loop_.call_at(next_, [this] { run(); });
}

void PeriodicCallback::run() {
  timeout_ = TimeoutHandle();
  if (!running_) return;
  ++runs_;
  // The callback may destroy this object: keep what the rest of run() needs on the stack.
  // Destroying it must not destroy the running callable either (its captures would dangle
  // for the rest of the call): hold a reference of our own.
  std::shared_ptr<bool> alive = alive_;
  std::shared_ptr<absl::AnyInvocable<void()>> callback = callback_;
  IOLoop& loop = loop_;
  // Tornado's rule: an exception is logged (as this callback's, rate-limited) and counted in
  // the loop's stats().exceptions, and the schedule goes on.
  loop.invoke_guarded("periodic callback", [&] { (*callback)(); }).IgnoreError();
  // Reschedule unless the callback destroyed, stopped or restarted this object.
  if (*alive && running_ && !timeout_.valid()) advance();
}

void PeriodicCallback::advance() {
  // Next slot on the original grid: scheduled + k * period, the first one in the future.
  const Clock::duration period = to_clock_duration(period_);
  const TimePoint now = loop_.time();
  TimePoint next = next_ + period;
  if (next <= now) {
    const auto missed = (now - next) / period + 1;  // grid slots at or before now
    skipped_ += static_cast<uint64_t>(missed);
    next += missed * period;
  }
  next_ = next;
  schedule_next();
}

}  // namespace ioloop
