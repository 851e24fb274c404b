/// @file ioloop/mutex.h
/// Mutex and MutexLock: the library's one lock, a std::mutex carrying clang's thread-safety
/// annotations (so ABSL_GUARDED_BY members are checked at compile time) with absl::Mutex's
/// Await: a waiter sleeps until its predicate holds and is re-checked whenever the lock is
/// released, so no caller has to remember to signal a condition variable.
///
/// Why not absl::Mutex: Debian's abseil is compiled without ThreadSanitizer, so TSan cannot see
/// absl::Mutex's lock and unlock (they live in the uninstrumented shared library) and reports
/// every access the mutex protects as a race. std::mutex is pthread_mutex, which TSan
/// intercepts, so the `tsan` preset checks the real synchronisation.
///
/// Threading: any thread. Not recursive. Errors: none (std::mutex failures abort).
#ifndef IOLOOP_MUTEX_H_
#define IOLOOP_MUTEX_H_

#include <condition_variable>
#include <mutex>

#include "absl/base/thread_annotations.h"
#include "absl/time/time.h"

namespace ioloop {

/// A std::mutex with thread-safety annotations and absl::Mutex's Await (see the file comment of
/// ioloop/mutex.h). Any thread; not recursive.
class ABSL_LOCKABLE Mutex {
 public:
  Mutex() = default;
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  /// Blocks until the calling thread holds the lock (which it must not hold already).
  void lock() ABSL_EXCLUSIVE_LOCK_FUNCTION() { mu_.lock(); }
  /// Wakes the threads inside await() (if any) so they re-check their predicates. It notifies
  /// before unlocking, so the Mutex is never touched after another thread could own it.
  void unlock() ABSL_UNLOCK_FUNCTION() {
    if (waiters_ > 0) cv_.notify_all();
    mu_.unlock();
  }

  /// Blocks, with the lock released while asleep, until `pred()` is true. Called with the lock
  /// held; returns with it held. `pred` runs with the lock held.
  template <typename Pred>
  void await(Pred pred) ABSL_EXCLUSIVE_LOCKS_REQUIRED(this) {
    if (pred()) return;
    wake_before_sleeping();
    ++waiters_;
    std::unique_lock<std::mutex> lk(mu_, std::adopt_lock);
    cv_.wait(lk, pred);
    lk.release();
    --waiters_;
  }
  /// As await(), but gives up after `timeout`; returns whether `pred()` holds.
  template <typename Pred>
  bool await_with_timeout(Pred pred, absl::Duration timeout) ABSL_EXCLUSIVE_LOCKS_REQUIRED(this) {
    if (pred()) return true;
    wake_before_sleeping();
    ++waiters_;
    std::unique_lock<std::mutex> lk(mu_, std::adopt_lock);
    // wait_for() adds the timeout to now(): a timeout of centuries (InfiniteDuration() becomes
    // nanoseconds::max()) would overflow into the past and return at once.
    bool ok;
    if (timeout >= absl::Hours(24 * 365 * 100)) {
      cv_.wait(lk, pred);
      ok = true;
    } else {
      ok = cv_.wait_for(lk, absl::ToChronoNanoseconds(timeout), pred);
    }
    lk.release();
    --waiters_;
    return ok;
  }

 private:
  /// Going to sleep releases the lock without unlock(): the caller may have changed state
  /// another waiter is waiting for (a worker that reports, then waits for the verdict), so
  /// that waiter must re-check now, as it would at unlock().
  void wake_before_sleeping() {
    if (waiters_ > 0) cv_.notify_all();
  }

  std::mutex mu_;
  std::condition_variable cv_;
  int waiters_ = 0;  ///< guarded by mu_ (threads inside await())
};

/// Holds `mu` for the scope: MutexLock lock(&mu_);
class ABSL_SCOPED_LOCKABLE MutexLock {
 public:
  /// Locks `mu` (not owned; must outlive this object) until destruction.
  explicit MutexLock(Mutex* mu) ABSL_EXCLUSIVE_LOCK_FUNCTION(mu) : mu_(mu) { mu_->lock(); }
  ~MutexLock() ABSL_UNLOCK_FUNCTION() { mu_->unlock(); }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

 private:
  Mutex* const mu_;
};

}  // namespace ioloop

#endif  // IOLOOP_MUTEX_H_
