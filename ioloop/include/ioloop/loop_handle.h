/// @file ioloop/loop_handle.h
/// LoopHandle: a thread-safe way to reach an IOLoop that may be destroyed at any moment. Code
/// running on other threads (a resolver pool, a worker that finishes a job) keeps a
/// std::shared_ptr<LoopHandle> instead of an IOLoop& or IOLoop*, and posts through it:
///
/// ```
///   std::shared_ptr<LoopHandle> handle = loop.handle();     // on the loop's thread
///   std::thread([handle] {
///     Result r = slow_work();
///     handle->post([r] { use(r); });  // false (and nothing runs) if the loop is gone
///   }).detach();
/// ```
///
/// Contract:
/// - Every method is thread-safe.
/// - Lifetime: the handle is shared; it may outlive its loop. ~IOLoop detaches it before it
///   destroys anything else (waiting for a post() in progress on another thread to finish),
///   so a post() either completes while the loop is whole or sees the loop gone.
/// - post() while the loop exists is add_callback(): `cb` runs on the loop thread, or, if the
///   loop is destroyed before it runs, is destroyed unrun by ~IOLoop, on the thread destroying
///   the loop (for a TCPServer's or HTTPServer's worker loop, the one destroying the server).
/// - post() after the loop's destruction began returns false and destroys `cb` on the calling
///   thread, unrun, before it returns (after releasing the handle's lock, so the callable's
///   destructor may post again). Whatever `cb` owns must therefore be safe to destroy on the
///   posting thread: capture values and weak_ptrs, not objects tied to the loop's thread.
/// - Never called from a signal handler (it takes a lock).
#ifndef IOLOOP_LOOP_HANDLE_H_
#define IOLOOP_LOOP_HANDLE_H_

#include "absl/base/thread_annotations.h"
#include "ioloop/io_loop.h"
#include "ioloop/mutex.h"

namespace ioloop {

/// A thread-safe way to post to an IOLoop that may be destroyed at any moment; obtained from
/// IOLoop::handle() only. The contract is in the file comment of ioloop/loop_handle.h.
class LoopHandle {
 public:
  LoopHandle(const LoopHandle&) = delete;
  LoopHandle& operator=(const LoopHandle&) = delete;

  /// Thread-safe. Queues `cb` on the loop as add_callback() does and returns true, or returns
  /// false if the loop is being or has been destroyed (see the contract above).
  bool post(IOLoop::Callback cb) ABSL_LOCKS_EXCLUDED(mu_);
  /// Thread-safe. False once the loop's destruction began. Only a hint for skipping work: the
  /// loop may go right after it answered true; post() is the authority.
  bool alive() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  friend class IOLoop;
  explicit LoopHandle(IOLoop* loop) : loop_(loop) {}
  /// Called by ~IOLoop first. Waits for posts in progress.
  void detach() ABSL_LOCKS_EXCLUDED(mu_);

  /// Held by post() around its add_callback() and by detach(), so that detach() waits for a
  /// post in progress (posts from several threads take turns on it).
  mutable Mutex mu_;
  IOLoop* loop_ ABSL_GUARDED_BY(mu_);
};

}  // namespace ioloop

#endif  // IOLOOP_LOOP_HANDLE_H_
