#include "ioloop/io_loop.h"

#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "io_loop_signals.h"
#include "ioloop/logging.h"
#include "ioloop/loop_handle.h"
#include "timer_queue.h"
#include "waker.h"

namespace ioloop {

struct IOLoop::Entry {
  Handler handler;
  uint32_t events;
  uint32_t generation;
};

namespace {

// This thread's current loop, with its handle: another thread may destroy a loop this thread
// made current (and a new loop may reuse its address), so the pointer alone could dangle.
struct CurrentLoop {
  IOLoop* loop = nullptr;
  std::weak_ptr<LoopHandle> handle;
};
thread_local CurrentLoop t_current;

// The current loop if it still exists, else nullptr (and forgets it).
IOLoop* live_current() {
  if (t_current.loop == nullptr) return nullptr;
  std::shared_ptr<LoopHandle> handle = t_current.handle.lock();
  if (handle == nullptr || !handle->alive()) {
    t_current = CurrentLoop{};
    return nullptr;
  }
  return t_current.loop;
}

bool is_main_thread() { return ::syscall(SYS_gettid) == ::getpid(); }

template <typename T>
T value_or_die(absl::StatusOr<T> v, const char* what) {
  if (!v.ok()) {
    logger().critical("cannot create IOLoop {}: {}", what, v.status().ToString());
    std::abort();
  }
  return *std::move(v);
}

}  // namespace

absl::StatusOr<std::unique_ptr<IOLoop>> IOLoop::create(Options options) {
  auto poller = Poller::create(options.poller);
  if (!poller.ok()) return poller.status();
  auto waker = Waker::create();
  if (!waker.ok()) return waker.status();
  std::unique_ptr<IOLoop> loop(new IOLoop(*std::move(poller), *std::move(waker), options));
  if (absl::Status s = loop->watch_waker(); !s.ok()) return s;
  return loop;
}

IOLoop::IOLoop() : IOLoop(Options{}) {}

IOLoop::IOLoop(Options options)
    : IOLoop(value_or_die(Poller::create(options.poller), "poller"),
             value_or_die(Waker::create(), "waker"), options) {
  if (absl::Status s = watch_waker(); !s.ok()) {
    logger().critical("cannot watch the IOLoop waker: {}", s.ToString());
    std::abort();
  }
}

IOLoop::IOLoop(std::unique_ptr<Poller> poller, std::unique_ptr<Waker> waker, Options options)
    : options_(options),
      poller_(std::move(poller)),
      waker_(std::move(waker)),
      timers_(std::make_unique<TimerQueue>()),
      handle_(new LoopHandle(this)) {}

absl::Status IOLoop::watch_waker() {
  // Fails on select when the eventfd is past FD_SETSIZE (every lower fd in use).
  return add_handler(
      waker_->fd(), [this](int, uint32_t) { waker_->drain(); }, READ);
}

IOLoop::~IOLoop() {
  // First: from here on no other thread may reach the loop through its handle (a post in
  // progress is waited for), so what follows tears down a loop nobody else can touch.
  handle_->detach();
  if (t_current.loop == this) t_current = CurrentLoop{};  // other threads notice the handle
  if (signals_ && signals_->fd >= 0) {
    remove_handler(signals_->fd);
    ::close(signals_->fd);
    signals_->release_all();
    // Their captures go while the loop is whole, as every other callable's below.
    for (std::unique_ptr<SignalHandler>& h : signals_->handlers) h.reset();
  }
  remove_handler(waker_->fd());
  // Destroy user callables while the loop is still whole: their destructors may call back
  // into it (a stream's destructor calls remove_handler), which must find consistent state.
  // Round after round until none is left, since destroying one callable may register another
  // (cleanup scheduled from a destructor): the members below must be empty by the time they
  // are destroyed, or a registration would land in a member being destroyed. A callable that
  // registers another on every destruction never ends, as a callback re-adding itself never
  // lets the loop sleep.
  for (;;) {
    std::vector<std::unique_ptr<Entry>> handlers;
    handlers.swap(handlers_);
    handler_count_ = 0;
    std::vector<Callback> pending;
    {
      // The first time also waits for another thread's stop() or add_callback() that is still
      // inside (they do all their work under mu_): nothing is freed before.
      MutexLock lock(&mu_);
      pending.swap(pending_);
    }
    const bool none = pending.empty() && graveyard_.empty() && timers_->live() == 0 &&
                      std::none_of(handlers.begin(), handlers.end(),
                                   [](const std::unique_ptr<Entry>& e) { return e != nullptr; });
    if (none) break;
    handlers.clear();
    pending.clear();
    bury_removed_handlers();
    timers_->clear();
  }
}

IOLoop& IOLoop::instance() {
  static IOLoop* const loop = new IOLoop();  // never destroyed: threads may outlive main
  return *loop;
}

IOLoop& IOLoop::current() {
  if (IOLoop* loop = live_current()) return *loop;
  if (is_main_thread()) return instance();
  // Creating one here would hand out a loop nobody runs: its callbacks would never run.
  static constexpr char kMessage[] =
      "IOLoop::current() on a thread with no current loop: create an IOLoop for this thread "
      "and call its make_current() (or run its start()) first; only the main thread falls back "
      "to IOLoop::instance()";
  if (logger().should_log(spdlog::level::critical)) {
    logger().critical(kMessage);
    logger().flush();
  } else {
    std::fprintf(stderr, "%s\n", kMessage);
  }
  std::abort();
}

void IOLoop::make_current() { t_current = CurrentLoop{this, handle_}; }

PollerKind IOLoop::poller_kind() const { return poller_->kind(); }

bool IOLoop::in_loop_thread() const {
  return thread_id_.load(std::memory_order_acquire) == std::this_thread::get_id();
}

// ---------------------------------------------------------------------------------------------
// File descriptors

absl::Status IOLoop::add_handler(int fd, Handler handler, uint32_t events) {
  if (fd < 0) return absl::InvalidArgumentError(absl::StrCat("add_handler: invalid fd ", fd));
  if ((events & ~(READ | WRITE | ERROR | EDGE)) != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("add_handler: unknown event bits 0x", absl::Hex(events), " for fd ", fd));
  }
  if ((events & (READ | WRITE | ERROR)) == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("add_handler: fd ", fd, ": events must include READ, WRITE or ERROR"));
  }
  if (!handler) return absl::InvalidArgumentError("add_handler: empty handler");
  if (static_cast<size_t>(fd) < handlers_.size() && handlers_[fd]) {
    return absl::AlreadyExistsError(absl::StrCat("add_handler: fd ", fd, " already registered"));
  }
  uint32_t generation = next_generation_++;
  if (next_generation_ == 0) next_generation_ = 1;
  // The poller refuses a closed fd ("fd N is not open"): epoll_ctl says so without a syscall
  // of its own, which a check here would add to every registration.
  if (absl::Status s = poller_->add(fd, events, generation); !s.ok()) {
    return absl::Status(s.code(), absl::StrCat("add_handler: ", s.message()));
  }
  if (static_cast<size_t>(fd) >= handlers_.size()) {
    handlers_.resize(std::max<size_t>(static_cast<size_t>(fd) + 1, handlers_.size() * 2));
  }
  handlers_[fd] = std::make_unique<Entry>(Entry{std::move(handler), events, generation});
  ++handler_count_;
  return absl::OkStatus();
}

absl::Status IOLoop::update_handler(int fd, uint32_t events) {
  if (!has_handler(fd)) {
    return absl::NotFoundError(absl::StrCat("update_handler: fd ", fd, " is not registered"));
  }
  if ((events & ~(READ | WRITE | ERROR | EDGE)) != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("update_handler: unknown event bits 0x", absl::Hex(events), " for fd ", fd));
  }
  Entry& entry = *handlers_[fd];
  if (entry.events == events) return absl::OkStatus();  // spare the syscall
  if (absl::Status s = poller_->modify(fd, events, entry.generation); !s.ok()) return s;
  entry.events = events;
  return absl::OkStatus();
}

void IOLoop::remove_handler(int fd) {
  if (!has_handler(fd)) return;
  poller_->remove(fd);
  // The entry may be the handler running right now: keep it alive until the batch ends.
  graveyard_.push_back(std::move(handlers_[fd]));
  --handler_count_;
}

bool IOLoop::has_handler(int fd) const {
  return fd >= 0 && static_cast<size_t>(fd) < handlers_.size() && handlers_[fd] != nullptr;
}

// ---------------------------------------------------------------------------------------------
// Callbacks and timeouts

void IOLoop::add_callback(Callback cb) {
  if (!cb) {  // a caller's bug, but it must not crash the loop later, on another thread
    logger().error("IOLoop::add_callback: empty callback ignored");
    return;
  }
  MutexLock lock(&mu_);
  pending_.push_back(std::move(cb));
  // The loop thread itself is never polling here, and a loop that is not polling checks
  // pending_ before it next blocks: only a sleeping loop needs the eventfd.
  wake_if_sleeping();
}

void IOLoop::wake_if_sleeping() {
  // Under mu_, the eventfd write included: the callback may stop the loop, whose owner may
  // destroy it as soon as start() returns, and ~IOLoop takes mu_ before it frees anything,
  // so the caller's last touch of the loop must be inside the lock.
  if (!polling_ || wake_sent_) return;
  wake_sent_ = true;
  wakeups_sent_.fetch_add(1, std::memory_order_relaxed);
  waker_->wake();
}

TimeoutHandle IOLoop::call_later(absl::Duration delay, Callback cb) {
  if (!cb) {  // as add_callback: nothing could run it
    logger().error("IOLoop::call_later: empty callback ignored");
    return TimeoutHandle();
  }
  return TimeoutHandle(
      timers_->add(add_saturating(time(), to_clock_duration(delay)), std::move(cb)));
}

TimeoutHandle IOLoop::call_at(TimePoint deadline, Callback cb) {
  if (!cb) {
    logger().error("IOLoop::call_at: empty callback ignored");
    return TimeoutHandle();
  }
  return TimeoutHandle(timers_->add(deadline, std::move(cb)));
}

void IOLoop::remove_timeout(TimeoutHandle handle) {
  if (handle.valid()) timers_->cancel(handle.id());
}

// ---------------------------------------------------------------------------------------------
// Running

template <typename F>
void IOLoop::guarded(const char* what, F&& f) {
  try {
    if (options_.slow_callback_threshold <= absl::ZeroDuration()) {
      f();
      return;
    }
    // On the loop's clock (Options::clock's, if set), as every other time the loop reads.
    const TimePoint t0 = time();
    f();
    const TimePoint t1 = time();
    const absl::Duration took = to_duration(t1 - t0);
    if (took > options_.slow_callback_threshold) {
      ++stats_.slow_callbacks;
      uint64_t suppressed = 0;
      if (log_limiter_.allow(t1, &suppressed)) {
        logger().warn(
            "slow {}: blocked the loop for {} (threshold {}){}", what, absl::FormatDuration(took),
            absl::FormatDuration(options_.slow_callback_threshold), suppressed_note(suppressed));
      }
    }
  } catch (...) {
    handle_callback_exception(what).IgnoreError();  // the loop goes on
  }
}

void IOLoop::handle_signals() {
  struct signalfd_siginfo info[8];
  signals_->dispatching = true;
  struct Done {
    SignalState* state;
    ~Done() {
      state->dispatching = false;
      state->retired.clear();
    }
  } done{signals_.get()};
  // One read a dispatch, not until the signalfd is empty: a handler that raises a signal again
  // would otherwise hold the loop in this iteration for ever (stop() never taking effect).
  // What is left keeps the fd readable for the next iteration.
  ssize_t n;
  do {
    n = ::read(signals_->fd, info, sizeof info);
  } while (n < 0 && errno == EINTR);
  if (n <= 0) return;  // EAGAIN: nothing pending
  for (size_t i = 0; i < static_cast<size_t>(n) / sizeof info[0]; ++i) {
    const int signo = static_cast<int>(info[i].ssi_signo);
    if (signo <= 0 || signo >= _NSIG || !signals_->handlers[signo]) continue;
    ++stats_.signals_dispatched;
    SignalHandler& handler = *signals_->handlers[signo];  // stays put if removed meanwhile
    guarded("signal handler", [&] { handler(signo); });
  }
}

absl::Status IOLoop::handle_callback_exception(const char* what) {
  std::string message;
  try {
    throw;
  } catch (const std::exception& e) {
    message = e.what();
  } catch (...) {
    message = "non-std::exception";
  }
  report_exception(what, message.c_str());
  return absl::InternalError(absl::StrCat("exception in ", what, ": ", message));
}

void IOLoop::report_exception(const char* what, const char* message) {
  ++stats_.exceptions;
  uint64_t suppressed = 0;
  if (log_limiter_.allow(time(), &suppressed)) {
    logger().error("exception escaped {}: {}{}", what, message, suppressed_note(suppressed));
  }
}

void IOLoop::run_callbacks() {
  {
    MutexLock lock(&mu_);
    if (pending_.empty()) return;
    // Swap, then run outside the lock; anything added meanwhile waits for the next
    // iteration so a callback that re-adds itself cannot starve I/O.
    running_callbacks_.swap(pending_);
  }
  for (Callback& cb : running_callbacks_) {
    ++stats_.callbacks_run;
    guarded("callback", [&] { std::move(cb)(); });
    cb = nullptr;  // destroy captures now, not with the next batch
  }
  running_callbacks_.clear();
}

void IOLoop::dispatch(const Poller::Event& ev) {
  Entry* entry = ev.fd >= 0 && static_cast<size_t>(ev.fd) < handlers_.size()
                     ? handlers_[ev.fd].get()
                     : nullptr;
  // Removed earlier in this batch, or removed and the number re-registered: stale.
  if (entry == nullptr || entry->generation != ev.tag) {
    stale_now_.push_back(static_cast<uint64_t>(static_cast<uint32_t>(ev.fd)) << 32 | ev.tag);
    return;
  }
  // Mask to the current interest: an earlier handler in the batch may have dropped WRITE.
  const uint32_t events = ev.events & ((entry->events & (READ | WRITE)) | ERROR);
  if (events == 0) return;
  ++stats_.events_dispatched;
  // The signalfd's handler guards and times each signal handler itself: one slow signal
  // handler is one slow callback, not two.
  if (signals_ != nullptr && ev.fd == signals_->fd) return handle_signals();
  guarded("handler", [&] { entry->handler(ev.fd, events); });
}

void IOLoop::run_once() {
  ++stats_.iterations;
  run_callbacks();

  TimePoint now = Clock::now();
  iteration_time_ = now;
  if (timers_->live() > 0) {
    due_.clear();
    timers_->pop_due(options_.clock ? options_.clock->now() : now, &due_);
    if (!due_.empty()) {
      // Take each callback only when its turn comes: an earlier timeout of the batch may
      // have cancelled it, and a cancelled timeout must never run.
      for (uint64_t id : due_) {
        TimerQueue::Callback cb = timers_->take(id);
        if (!cb) continue;
        ++stats_.timers_fired;
        guarded("timeout", [&] { std::move(cb)(); });
      }
      due_.clear();
      now = Clock::now();
      iteration_time_ = now;
    }
  }
  // Handlers removed by this iteration's callbacks and timers go now: the wait may be long, and
  // they may hold sockets and memory (nothing runs them any more). Before the wait's timeout is
  // worked out: what they held may arm a timer or post a callback as it goes.
  if (!graveyard_.empty()) bury_removed_handlers();
  // Busy: everything since the last wait ended (its handlers, these callbacks and timers).
  stats_.time_busy += to_duration(now - last_poll_end_);

  std::optional<absl::Duration> timeout;
  const std::optional<TimePoint> next = timers_->next_deadline();
  if (next) {
    const TimePoint t = options_.clock ? options_.clock->now() : now;
    timeout = next <= t ? absl::ZeroDuration() : to_duration(*next - t);
  }
  std::optional<absl::Duration> wait;
  {
    MutexLock lock(&mu_);
    if (!pending_.empty() || stop_requested_.load(std::memory_order_relaxed)) {
      timeout = absl::ZeroDuration();
    }
    // A manual clock is never slept for: only check readiness, then jump it (below).
    wait = options_.clock && timeout ? absl::ZeroDuration() : timeout;
    polling_ = wait != absl::ZeroDuration();
  }

  events_.clear();
  absl::StatusOr<int> n = poller_->poll(wait, &events_);
  bool jump = options_.clock && next && timeout && *timeout > absl::ZeroDuration() && n.ok() &&
              events_.empty();
  {
    MutexLock lock(&mu_);
    polling_ = false;
    wake_sent_ = false;
    // A callback or stop() posted during the check sent no wake (polling_ was false): it is
    // something ready too.
    if (jump && (!pending_.empty() || stop_requested_.load(std::memory_order_relaxed))) {
      jump = false;
    }
  }
  // With nothing ready (a zero timeout: something is), the manual clock jumps to the deadline
  // itself, not by the wait's length: a length of 100 years or more is capped
  // (to_clock_duration()), and another thread may have moved the clock meanwhile.
  if (jump) options_.clock->advance_to(*next);
  if (n.ok()) {
    poll_backoff_ = absl::ZeroDuration();
  } else {
    back_off_after_poll_failure(n.status());
  }
  last_poll_end_ = Clock::now();
  iteration_time_ = last_poll_end_;
  stats_.time_blocked += to_duration(last_poll_end_ - now);
  for (const Poller::Event& ev : events_) dispatch(ev);
  bury_removed_handlers();
  if (!stale_now_.empty() || !stale_before_.empty()) check_stale_events();
}

void IOLoop::check_stale_events() {
  // A stale event is normal within the batch that removed its handler; the poller forgets the
  // registration then. One seen again in the next batch was not forgotten.
  const bool stuck = std::any_of(stale_now_.begin(), stale_now_.end(), [&](uint64_t key) {
    return std::find(stale_before_.begin(), stale_before_.end(), key) != stale_before_.end();
  });
  stale_before_.swap(stale_now_);
  stale_now_.clear();
  if (!stuck) return;
  stale_before_.clear();
  rebuild_poller();
}

void IOLoop::rebuild_poller() {
  absl::StatusOr<std::unique_ptr<Poller>> fresh = Poller::create(poller_->kind());
  uint64_t suppressed = 0;
  const bool log = log_limiter_.allow(time(), &suppressed);
  if (!fresh.ok()) {
    if (log) {
      logger().error("cannot rebuild the poller: {}{}", fresh.status().ToString(),
                     suppressed_note(suppressed));
    }
    return;
  }
  for (size_t fd = 0; fd < handlers_.size(); ++fd) {
    const Entry* e = handlers_[fd].get();
    if (e == nullptr) continue;
    // Fails for an fd closed behind the loop's back: the old poller reported it once, muted.
    (void)(*fresh)->add(static_cast<int>(fd), e->events, e->generation);
  }
  poller_ = *std::move(fresh);
  if (log) {
    logger().warn(
        "an fd closed before its remove_handler() was still reported after remove_handler() (a "
        "dup() of it keeps its file open): rebuilt the {} set{}",
        std::string(poller_kind_name(poller_->kind())), suppressed_note(suppressed));
  }
}

void IOLoop::bury_removed_handlers() {
  // Out of graveyard_ first: a callable's destructor may remove another handler (a stream's
  // removes its fd), which then lands in graveyard_ for the next batch, not in the vector
  // being cleared. The storage comes back when nothing was added, so a batch does not
  // allocate.
  std::vector<std::unique_ptr<Entry>> dead;
  dead.swap(graveyard_);
  dead.clear();
  if (graveyard_.empty()) graveyard_.swap(dead);
}

void IOLoop::back_off_after_poll_failure(const absl::Status& status) {
  // A wait that fails at once would otherwise make the loop spin at 100% CPU while it
  // dispatches nothing. Doubling from 1 ms to 100 ms keeps a transient failure (ENOMEM)
  // nearly invisible and a persistent one cheap; the next successful wait resets it.
  constexpr absl::Duration kFirst = absl::Milliseconds(1);
  constexpr absl::Duration kMax = absl::Milliseconds(100);
  poll_backoff_ =
      poll_backoff_ == absl::ZeroDuration() ? kFirst : std::min(poll_backoff_ * 2, kMax);
  ++stats_.poll_failures;
  uint64_t suppressed = 0;
  if (log_limiter_.allow(time(), &suppressed)) {
    logger().error("poller ({}) failed: {}; retrying in {}{}",
                   std::string(poller_kind_name(poller_->kind())), status.ToString(),
                   absl::FormatDuration(poll_backoff_), suppressed_note(suppressed));
  }
  if (sleep_for_) {
    sleep_for_(poll_backoff_);
  } else {
    absl::SleepFor(poll_backoff_);
  }
}

void IOLoop::start() {
  if (running_.exchange(true, std::memory_order_acq_rel)) {
    logger().error("IOLoop::start(): already running");
    return;
  }
  CurrentLoop previous = std::exchange(t_current, CurrentLoop{this, handle_});
  thread_id_.store(std::this_thread::get_id(), std::memory_order_release);
  last_poll_end_ = Clock::now();
  iteration_time_ = last_poll_end_;
  do {
    run_once();
  } while (!stop_requested_.load(std::memory_order_acquire));
  stop_requested_.store(false, std::memory_order_release);
  thread_id_.store(std::thread::id(), std::memory_order_release);
  t_current = std::move(previous);  // current() checks it still exists
  running_.store(false, std::memory_order_release);
}

void IOLoop::stop() {
  // The flag too under mu_ (see wake_if_sleeping()): a loop that sees it may be destroyed at
  // once, so nothing of stop() may come after it outside the lock.
  MutexLock lock(&mu_);
  stop_requested_.store(true, std::memory_order_release);
  wake_if_sleeping();
}

void IOLoop::stop_when_idle(int max_rounds) {
  add_callback([this, max_rounds] { stop_if_idle_since(stats(), max_rounds); });
}

void IOLoop::stop_if_idle_since(const Stats& before, int rounds_left) {
  const Stats now = stats();
  // This check is the one callback run since `before` (the first check has run none: it
  // compares with itself, and goes round once more).
  const bool idle = now.callbacks_run == before.callbacks_run + 1 &&
                    now.events_dispatched == before.events_dispatched &&
                    now.timers_fired == before.timers_fired &&
                    now.signals_dispatched == before.signals_dispatched;
  if (idle || rounds_left <= 1) {
    stop();
    return;
  }
  add_callback([this, now, rounds_left] { stop_if_idle_since(now, rounds_left - 1); });
}

IOLoop::Stats IOLoop::stats() const {
  Stats s = stats_;
  s.wakeups_sent = wakeups_sent_.load(std::memory_order_relaxed);
  s.handlers = handler_count_;
  s.timers_pending = timers_->live();
  s.timer_store_size = timers_->store_size();
  return s;
}

}  // namespace ioloop
