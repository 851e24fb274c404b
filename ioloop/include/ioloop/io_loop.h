/// @file ioloop/io_loop.h
/// IOLoop: a single-threaded reactor in the style of Tornado's IOLoop. It watches file
/// descriptors (add_handler), runs one-shot callbacks (add_callback), timeouts (call_later,
/// call_at) and signal handlers (add_signal_handler), on epoll, poll or select.
///
/// Threading: an IOLoop belongs to the thread that runs start(). Every method must be called
/// on that thread (or before start(), by the thread that will run it), unless its comment
/// begins "Thread-safe." Only add_callback(), stop(), stop_when_idle(), handle(),
/// in_loop_thread() and running() are.
///
/// Ownership: the loop never owns registered fds. remove_handler() before closing an fd.
/// Callables passed in are owned by the loop until they run or are removed; a handler may
/// remove itself (or any other handler) while it runs: the running callable is destroyed
/// only after the dispatch batch.
///
/// Errors: misuse the caller can cause returns absl::Status. An exception escaping a
/// callback or handler is caught, logged (rate-limited) and counted in stats(); the loop
/// goes on. The library itself throws nothing.
///
/// Example:
/// ```
///   ioloop::IOLoop loop;
///   loop.call_later(absl::Milliseconds(10), [&loop] { loop.stop(); });
///   loop.start();
/// ```
#ifndef IOLOOP_IO_LOOP_H_
#define IOLOOP_IO_LOOP_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "ioloop/events.h"
#include "ioloop/mutex.h"
#include "ioloop/poller.h"
#include "ioloop/rate_limiter.h"
#include "ioloop/time.h"

/// The reactor (IOLoop, timeouts, signals, PeriodicCallback, LoopHandle) and, in
/// ioloop::net, everything built on it: sockets, streams, TCP, HTTP/1.1 and TLS.
namespace ioloop {

class TimerQueue;
class Waker;
class LoopHandle;  // ioloop/loop_handle.h

/// Identifies a timeout for remove_timeout(). A default-constructed handle is invalid and
/// removing it is a no-op; so is removing a handle whose timeout already ran.
class TimeoutHandle {
 public:
  TimeoutHandle() = default;
  /// Wraps an id the loop issued; 0 makes the invalid handle.
  explicit TimeoutHandle(uint64_t id) : id_(id) {}
  /// False for a default-constructed handle.
  bool valid() const { return id_ != 0; }
  /// The loop's id for the timeout (0: invalid).
  uint64_t id() const { return id_; }
  /// Equal handles name the same timeout.
  friend bool operator==(TimeoutHandle a, TimeoutHandle b) { return a.id_ == b.id_; }

 private:
  uint64_t id_ = 0;
};

/// What an IOLoop is created with (IOLoop::Options); the defaults suit production.
struct IOLoopOptions {
  /// The readiness backend: epoll (the default), poll or select.
  PollerKind poller = PollerKind::kEpoll;
  /// A callback, handler or timer that runs longer than this is logged with its duration
  /// (rate-limited) and counted. Zero disables the check and its clock reads.
  absl::Duration slow_callback_threshold = absl::ZeroDuration();
  /// Tests: run time(), every timeout and slow_callback_threshold's measure on this clock
  /// (not owned; must outlive the loop).
  /// When the loop would sleep until a timeout, it checks readiness without blocking and, if
  /// no fd is ready, no callback pending and no stop() requested, jumps the clock to that
  /// timeout's deadline instead: timers fire at once and in order, exactly at their
  /// deadlines. Waits with no timeout pending block as usual. nullptr: the steady clock.
  ManualClock* clock = nullptr;
};

/// A single-threaded reactor. The rules that hold for every member (which thread may call,
/// who owns what, how errors are reported) are in the file comment of ioloop/io_loop.h;
/// a member's own comment states only its departures from them.
class IOLoop {
 public:
  using Handler = absl::AnyInvocable<void(int fd, uint32_t events)>;  ///< repeating
  using Callback = absl::AnyInvocable<void() &&>;                     ///< runs at most once
  using SignalHandler = absl::AnyInvocable<void(int signo)>;          ///< repeating
  /// Passed to the function given to run_sync(); call it (once, from any thread) to finish.
  using Done = absl::AnyInvocable<void(absl::Status) &&>;

  /// @{
  /// The event masks of ioloop/events.h, also spelled IOLoop::READ, IOLoop::WRITE, ...
  static constexpr uint32_t READ = ::ioloop::READ;
  static constexpr uint32_t WRITE = ::ioloop::WRITE;
  static constexpr uint32_t ERROR = ::ioloop::ERROR;
  static constexpr uint32_t EDGE = ::ioloop::EDGE;
  /// @}

  /// The construction options (IOLoopOptions).
  using Options = IOLoopOptions;

  /// Counters since construction. Read them on the loop thread.
  struct Stats {
    uint64_t iterations = 0;          ///< loop iterations (poller waits)
    uint64_t events_dispatched = 0;   ///< handler invocations
    uint64_t callbacks_run = 0;       ///< add_callback() callbacks
    uint64_t timers_fired = 0;        ///< timeouts run
    uint64_t signals_dispatched = 0;  ///< signal handler invocations
    uint64_t exceptions = 0;          ///< exceptions caught from user code
    uint64_t slow_callbacks = 0;      ///< over Options::slow_callback_threshold
    uint64_t wakeups_sent = 0;        ///< eventfd writes by add_callback()/stop()
    uint64_t poll_failures = 0;       ///< failed poller waits (EINTR excluded); each one backs off
    /// In the poller's wait (and the back-off after a failed one); it also holds the
    /// destruction of handlers removed by the iteration's callbacks and timers, which comes
    /// between the clock read that ends the busy time and the wait.
    absl::Duration time_blocked;
    absl::Duration time_busy;     ///< running callbacks, timers and handlers
    size_t handlers = 0;          ///< registered fds (including the loop's own)
    size_t timers_pending = 0;    ///< live timeouts
    size_t timer_store_size = 0;  ///< heap entries + slots the timer store holds, live or dead
  };

  /// Dies (logs, then aborts) if the backend or the eventfd cannot be created or watched (on
  /// select, an eventfd past FD_SETSIZE); use create() to get that failure as a Status instead.
  IOLoop();
  /// As IOLoop(), with `options`; dies the same way on failure.
  explicit IOLoop(Options options);
  /// Creates a loop owned by the caller; the failure to create the backend or the eventfd, or
  /// to watch it (InvalidArgument on select when it is past FD_SETSIZE), is returned as a
  /// Status instead of dying.
  static absl::StatusOr<std::unique_ptr<IOLoop>> create(Options options = {});
  /// Must not be running. Pending callbacks and timeouts are destroyed unrun; registered
  /// fds are left open. Every thread that made it current stops seeing it as current. Its
  /// signals are given back as remove_signal_handler() does when it is destroyed on the thread
  /// that added the handlers; destroyed on another thread, it changes no thread's mask (that
  /// thread keeps them blocked).
  ~IOLoop();
  IOLoop(const IOLoop&) = delete;
  IOLoop& operator=(const IOLoop&) = delete;

  /// The process-wide loop, created on first use and never destroyed.
  static IOLoop& instance();
  /// This thread's current loop: the one running start() on this thread, else the one last
  /// made current with make_current() on this thread, if it still exists. Otherwise, on the
  /// main thread, instance(). On any other thread it dies (logs, then aborts) with a message
  /// naming make_current(): it never creates a loop, which nobody would run.
  static IOLoop& current();
  /// Makes this loop current() for the calling thread, until another loop is made current or
  /// this one is destroyed (by any thread).
  void make_current();

  /// Thread-safe. The loop's LoopHandle (ioloop/loop_handle.h), the same object every time:
  /// what other threads keep to post to this loop without ever touching it once destroyed.
  /// ~IOLoop detaches it before anything else; posts through it fail from then on.
  std::shared_ptr<LoopHandle> handle() const { return handle_; }

  /// The backend this loop runs on.
  PollerKind poller_kind() const;

  // --- File descriptors ---------------------------------------------------------------
  /// Watches `fd` for `events` (READ|WRITE, plus EDGE on epoll); ERROR is always reported,
  /// except on select (see ERROR in events.h).
  /// InvalidArgument: fd negative or not open, no READ/WRITE and no ERROR asked, EDGE on
  /// poll/select, fd >= FD_SETSIZE on select. AlreadyExists: fd is registered already.
  absl::Status add_handler(int fd, Handler handler, uint32_t events);
  /// Changes the events of a registered fd. NotFound if `fd` is not registered.
  absl::Status update_handler(int fd, uint32_t events);
  /// Stops watching `fd`. No further event for it is delivered, even from the batch being
  /// dispatched and even if the fd number is reused at once. A no-op for an unknown fd.
  void remove_handler(int fd);
  /// True if `fd` is registered (added and not removed since).
  bool has_handler(int fd) const;

  // --- Callbacks and timeouts ----------------------------------------------------------
  /// Thread-safe. Runs `cb` on the loop thread in a later iteration, FIFO per caller thread.
  /// Callbacks added while callbacks run wait for the next iteration, so I/O is never
  /// starved. The loop is woken (one eventfd write, coalesced) only if it may be sleeping.
  /// Not async-signal-safe: use add_signal_handler() for signals. An empty `cb` is ignored
  /// (an error log line): nothing could run it. As stop(), it is done with the loop before the
  /// loop can be destroyed, even when `cb` ends the loop's run.
  void add_callback(Callback cb) ABSL_LOCKS_EXCLUDED(mu_);
  /// Runs `cb` once `delay` has passed on the monotonic clock; never earlier. An empty `cb`
  /// is ignored (an error log line) and the handle returned is invalid.
  TimeoutHandle call_later(absl::Duration delay, Callback cb);
  /// Runs `cb` at `deadline` or later. Timeouts due together run in deadline, then
  /// insertion, order. An empty `cb` is ignored as by call_later().
  TimeoutHandle call_at(TimePoint deadline, Callback cb);
  /// Cancels a timeout and frees its callback now. Safe to call even if the timeout ran.
  void remove_timeout(TimeoutHandle handle);

  // --- Signals ---------------------------------------------------------------------------
  /// Runs `handler` on the loop thread when `signo` arrives, through a signalfd. Blocks the
  /// signal in the calling thread (threads started afterwards inherit the mask; block it in
  /// older threads yourself, or it may be delivered to them by default action). Whether the
  /// thread had it blocked already is recorded by the first of the thread's loops to take it;
  /// later loops of the thread that handle it share that record and the block. A standard signal
  /// that arrives again before its handler ran is one call (the kernel keeps one pending);
  /// real-time signals are queued, a call each. Signals pending together are dispatched a batch an
  /// iteration, so a handler that raises a signal again does not keep the loop in one iteration.
  /// Replaces an earlier handler for the same signal (a handler may replace or remove itself).
  /// InvalidArgument for a bad signo, SIGKILL/SIGSTOP, or 32 and 33 (glibc's own).
  absl::Status add_signal_handler(int signo, SignalHandler handler);
  /// Stops handling `signo` and gives the signal back to the thread that added this loop's
  /// handlers; called on any other thread, it changes no thread's mask. While another loop of
  /// that thread still handles `signo`, it stays blocked and nothing is discarded. Otherwise a
  /// signal the thread had blocked before the first of its loops took it stays blocked; any
  /// other is unblocked, and instances of it that arrived but were not dispatched are
  /// discarded first (not left to its default action, which may kill the process). No-op if
  /// unknown.
  void remove_signal_handler(int signo);

  // --- Running -----------------------------------------------------------------------------
  /// Runs until stop(). Makes this loop current() for the thread while it runs.
  /// If stop() was called before start(), start() returns after one iteration.
  void start();
  /// Thread-safe. Makes start() return after the current iteration. Not async-signal-safe
  /// (it takes the loop's mutex): to stop on a signal, call it from add_signal_handler().
  /// Called from another thread, it is done with the loop before the loop's destructor can
  /// free it, so the loop's own thread may destroy the loop as soon as start() returns.
  void stop() ABSL_LOCKS_EXCLUDED(mu_);
  /// Thread-safe. Makes start() return at the first iteration that ran nothing but this check
  /// (no other callback, I/O event, timer or signal since the check before), or after
  /// `max_rounds` checks, since a callback that re-adds itself would keep it going for ever.
  /// For a shutdown: what closing the connections queued (close callbacks, and what those queue
  /// in turn a hop later) runs before start() returns. Timers not yet due are left pending.
  /// If start() returns first for another reason (a stop()), the check is still queued and
  /// goes on at the next start(), as a stop() made before start() applies to it.
  ///   server.stop(/*close_connections=*/true);
  ///   loop.stop_when_idle();
  ///   loop.start();  // returns once the closes have run their course
  void stop_when_idle(int max_rounds = 64);
  /// Runs the loop until `fn` calls its Done argument (any thread), then returns that status;
  /// DeadlineExceeded if `timeout` passes first (InfiniteDuration means no limit); Cancelled if
  /// the loop is stopped by someone else's stop() first. FailedPrecondition, and `fn` never
  /// runs, if the loop is already running (e.g. run_sync from inside one of its callbacks).
  /// InvalidArgument for an empty `fn`. If `fn` throws, the exception is logged and counted
  /// (stats().exceptions) and run_sync returns Internal "exception in run_sync fn: <what()>";
  /// if its Done is destroyed without being called, Cancelled.
  /// A Done called after run_sync returned does nothing: it never stops a later start() and
  /// never touches the loop, which may be gone by then.
  absl::Status run_sync(absl::AnyInvocable<void(Done) &&> fn,
                        absl::Duration timeout = absl::InfiniteDuration());
  /// Thread-safe. True while start() runs.
  bool running() const { return running_.load(std::memory_order_acquire); }
  /// Thread-safe. True on the thread currently inside start().
  bool in_loop_thread() const;

  /// The monotonic clock's now() (Options::clock's, if set).
  TimePoint time() const { return options_.clock ? options_.clock->now() : Clock::now(); }
  /// time() as the loop last read it, without reading the clock (libuv's uv_now()): inside
  /// start(), when this iteration's wait ended (what its handlers see), when its timers came
  /// due (what they see), or, for the callbacks at an iteration's start, when the previous
  /// wait ended. So it lags time() by the work done since, which a callback that blocks makes
  /// long. For deadlines moved many times an iteration and for timings (a clock read is 20 to
  /// 40 ns): the HTTP server's timeouts use it, and the client's once started (a fetch takes
  /// time() when it begins, so that it gets its whole timeout after a long callback). Outside
  /// start(), and with Options::clock set, it is time(). Loop thread only while the loop runs.
  TimePoint iteration_time() const {
    if (options_.clock || !running_.load(std::memory_order_relaxed)) return time();
    return iteration_time_;
  }

  /// A snapshot of the counters (see Stats); loop thread only.
  Stats stats() const;

  // --- Exceptions from user code ---------------------------------------------------------
  /// For layers above the loop (streams, servers, clients) that call user code themselves
  /// and must repair their own state when it throws (Tornado's handle_callback_exception).
  /// Loop thread only.
  ///
  /// Call inside a catch block: logs the exception in flight through the loop's rate-limited
  /// path, counts it in stats().exceptions, and returns Internal "exception in <what>: <its
  /// what()>" for the caller to close its stream or connection with.
  absl::Status handle_callback_exception(const char* what);
  /// Runs `fn()`; OK if it returns normally, else handle_callback_exception(what).
  template <typename F>
  absl::Status invoke_guarded(const char* what, F&& fn) {
    try {
      std::forward<F>(fn)();
      return absl::OkStatus();
    } catch (...) {
      return handle_callback_exception(what);
    }
  }

 private:
  struct Entry;
  struct SignalState;
  friend class IOLoopTestPeer;  // src/io_loop_test_peer.h: fake pollers, injected sleep

  /// Does not watch the waker yet: watch_waker() does, so that create() can return its error.
  IOLoop(std::unique_ptr<Poller> poller, std::unique_ptr<Waker> waker, Options options);
  absl::Status watch_waker();
  void run_once();
  // stop_when_idle()'s check: `before` is the stats at the previous one.
  void stop_if_idle_since(const Stats& before, int rounds_left);
  void run_callbacks();
  /// The eventfd write of add_callback() and stop(), if the loop may be sleeping and none is
  /// outstanding. Under mu_, so that a caller that ends the loop's run is done with the loop
  /// before ~IOLoop (which takes mu_ first) can free it.
  void wake_if_sleeping() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void run_timers();
  void dispatch(const Poller::Event& ev);
  /// Frees graveyard_ (the entries removed during the batch).
  void bury_removed_handlers();
  /// After a batch that dropped stale events: rebuilds the poller if one of them was dropped
  /// in the batch before too.
  void check_stale_events();
  /// A fresh poller of the same kind with every registered handler, for one that keeps a
  /// registration of an fd closed before remove_handler() while a dup() keeps its file open
  /// (epoll: EPOLL_CTL_DEL needs the closed number). Logged; on failure the old one stays.
  void rebuild_poller();
  void handle_signals();
  /// Runs user code with the exception and slow-callback guards.
  template <typename F>
  void guarded(const char* what, F&& f);
  void report_exception(const char* what, const char* message);
  /// Counts and logs a failed wait, then sleeps the (doubled) back-off.
  void back_off_after_poll_failure(const absl::Status& status);

  Options options_;
  std::unique_ptr<Poller> poller_;
  std::unique_ptr<Waker> waker_;
  std::unique_ptr<TimerQueue> timers_;

  /// Indexed by fd: a vector, not a hash map, because fds are small and dense.
  std::vector<std::unique_ptr<Entry>> handlers_;
  /// Entries removed during dispatch; freed after the batch so a running handler survives.
  std::vector<std::unique_ptr<Entry>> graveyard_;
  uint32_t next_generation_ = 1;
  size_t handler_count_ = 0;
  std::vector<Poller::Event> events_;
  /// (fd << 32 | tag) of the events dispatch() dropped as stale in this batch and the last one.
  /// The same in two batches running means the kernel kept a registration remove_handler()
  /// could not take out: see rebuild_poller().
  std::vector<uint64_t> stale_now_;
  std::vector<uint64_t> stale_before_;

  std::unique_ptr<SignalState> signals_;

  mutable Mutex mu_;
  std::vector<Callback> pending_ ABSL_GUARDED_BY(mu_);
  bool polling_ ABSL_GUARDED_BY(mu_) = false;    ///< inside (or about to enter) the wait
  bool wake_sent_ ABSL_GUARDED_BY(mu_) = false;  ///< an eventfd write is outstanding
  std::vector<Callback> running_callbacks_;
  std::vector<uint64_t> due_;  ///< ids of the timeouts popped for this iteration
  TimePoint last_poll_end_{};
  TimePoint iteration_time_{};  ///< see iteration_time()

  std::atomic<bool> stop_requested_{false};
  std::atomic<bool> running_{false};
  std::atomic<std::thread::id> thread_id_{};

  Stats stats_;
  /// The sleep after the last failed wait; zero after a successful one.
  absl::Duration poll_backoff_ = absl::ZeroDuration();
  /// The poller-failure back-off sleeps through this if set (tests record instead).
  absl::AnyInvocable<void(absl::Duration)> sleep_for_;
  std::atomic<uint64_t> wakeups_sent_{0};
  /// Exception and slow-callback lines: a handler failing on every event must not flood.
  LogRateLimiter log_limiter_;
  /// Created with the loop, detached first thing in ~IOLoop; shared with other threads.
  std::shared_ptr<LoopHandle> handle_;
};

}  // namespace ioloop

#endif  // IOLOOP_IO_LOOP_H_
