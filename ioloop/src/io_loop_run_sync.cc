// IOLoop::run_sync(): runs a stopped loop until fn's Done is called, apart from io_loop.cc
// (the reactor itself) since it is built only on the public API (add_callback, call_later,
// stop, start).
#include <memory>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "ioloop/io_loop.h"
#include "ioloop/mutex.h"

namespace ioloop {

absl::Status IOLoop::run_sync(absl::AnyInvocable<void(Done) &&> fn, absl::Duration timeout) {
  if (!fn) return absl::InvalidArgumentError("run_sync: empty function");
  if (running()) {
    // A nested start() would return at once, and fn's Done would later stop the caller's loop.
    return absl::FailedPreconditionError(
        "run_sync: the loop is already running (run_sync runs a stopped loop to completion)");
  }
  // Shared with Done, which may be called from any thread, at any time, even after this
  // returned and the loop was destroyed: `over` tells it to touch nothing.
  struct State {
    Mutex mu;
    bool over ABSL_GUARDED_BY(mu) = false;      // run_sync returned
    bool finished ABSL_GUARDED_BY(mu) = false;  // fn's Done (or the timeout) ended the run
    absl::Status status ABSL_GUARDED_BY(mu);
  };
  auto state = std::make_shared<State>();
  // Loop thread. Only the first completion counts, and none once run_sync returned: a late
  // Done must not stop a later start().
  auto finish = [this, state](absl::Status s) {
    {
      MutexLock lock(&state->mu);
      if (state->over || state->finished) return;
      state->finished = true;
      state->status = std::move(s);
    }
    stop();
  };
  TimeoutHandle deadline;
  if (timeout != absl::InfiniteDuration()) {
    deadline = call_later(timeout, [finish, timeout]() mutable {
      finish(absl::DeadlineExceededError(
          absl::StrCat("run_sync: not done after ", absl::FormatDuration(timeout))));
    });
  }
  // fn's Done: hops back onto the loop, unless run_sync has returned (the loop may be gone).
  // Destroyed uncalled (fn dropped it, or threw), it ends the run with Cancelled: nothing
  // could call it any more, and the caller would otherwise wait for ever.
  class DoneOnce {
   public:
    DoneOnce(IOLoop* loop, std::shared_ptr<State> state, decltype(finish) finish)
        : loop_(loop), state_(std::move(state)), finish_(std::move(finish)) {}
    DoneOnce(DoneOnce&& other) noexcept
        : loop_(std::exchange(other.loop_, nullptr)),
          state_(std::move(other.state_)),
          finish_(std::move(other.finish_)) {}
    DoneOnce& operator=(DoneOnce&&) = delete;
    ~DoneOnce() {
      if (loop_ != nullptr) {
        deliver(absl::CancelledError("run_sync: fn's Done was destroyed without being called"));
      }
    }
    void operator()(absl::Status s) && {
      if (loop_ != nullptr) deliver(std::move(s));
      loop_ = nullptr;
    }

   private:
    void deliver(absl::Status s) {
      MutexLock lock(&state_->mu);
      if (state_->over) return;
      loop_->add_callback([finish = finish_, s = std::move(s)]() mutable { finish(std::move(s)); });
    }
    IOLoop* loop_;
    std::shared_ptr<State> state_;
    decltype(finish) finish_;
  };
  add_callback([this, state, finish, fn = std::move(fn)]() mutable {
    // An exception ends the run with it (logged and counted as any callback's).
    absl::Status thrown =
        invoke_guarded("run_sync fn", [&] { std::move(fn)(Done(DoneOnce(this, state, finish))); });
    if (!thrown.ok()) finish(std::move(thrown));
  });
  start();
  remove_timeout(deadline);
  MutexLock lock(&state->mu);
  state->over = true;
  if (!state->finished) {
    return absl::CancelledError("run_sync: the loop was stopped before fn called Done");
  }
  return state->status;
}

}  // namespace ioloop
