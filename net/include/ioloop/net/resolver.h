/// @file ioloop/net/resolver.h
/// Resolver: getaddrinfo() on a small pool of threads, so DNS never blocks a loop. Results
/// are posted back to the requesting loop through its LoopHandle. Numeric hosts ("127.0.0.1",
/// "::1") are answered without a thread hop or any lookup. The threads start with the first
/// lookup that needs one: a program that only ever connects to addresses starts none, and
/// stays single-threaded (libstdc++ then counts shared_ptr references without atomics).
///
/// Threading: every method is thread-safe; callbacks run on the loop they were given.
///
/// Lifetime (no lookup ever touches a destroyed loop):
/// - Loops are reached only through their LoopHandle. A lookup whose loop is destroyed
///   first never runs its callback: if still queued, it is dropped without being looked up;
///   if in flight, its result is discarded. The callback is then destroyed unrun on a resolver
///   thread (or the thread destroying the Resolver), so whatever it captures must be safe to
///   destroy there: values and weak_ptrs, not objects tied to the loop's thread.
/// - cancel() withdraws one lookup (TCPClient cancels its own when it is destroyed).
/// - ~Resolver completes queued lookups with Cancelled on their loops (dropped if the loop is
///   gone) and waits for lookups in progress (getaddrinfo cannot be interrupted).
/// - instance() is the process-wide resolver, never destroyed (see there).
///
/// Errors passed to callbacks: NotFound (no such name, no address of the family, a permanent
/// name server failure), Unavailable (EAI_AGAIN, a transient failure: try again later),
/// InvalidArgument (a bad family or service), ResourceExhausted (EAI_MEMORY), errno's status
/// for EAI_SYSTEM (e.g. ResourceExhausted for EMFILE), Unknown for anything else, Cancelled
/// (resolver destroyed). Messages name the host and carry gai_strerror's (or errno's) text.
#ifndef IOLOOP_NET_RESOLVER_H_
#define IOLOOP_NET_RESOLVER_H_

#include <sys/socket.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "ioloop/io_loop.h"
#include "ioloop/loop_handle.h"
#include "ioloop/mutex.h"
#include "ioloop/net/socket_address.h"

namespace ioloop::net {

/// getaddrinfo() on a small pool of threads, so DNS never blocks a loop. Every method is
/// thread-safe; callbacks run on the loop given. Ownership and errors: the file comment of
/// ioloop/net/resolver.h.
class Resolver {
 public:
  /// Runs once on the loop given to resolve(): the addresses, or the error (see the file comment).
  using Callback = absl::AnyInvocable<void(absl::StatusOr<std::vector<SocketAddress>>) &&>;
  /// The blocking lookup the threads run, called concurrently from all of them. The default
  /// is resolve_blocking(); tests inject one that blocks on a latch or fails on purpose.
  using Lookup = absl::AnyInvocable<absl::StatusOr<std::vector<SocketAddress>>(
      const std::string& host, uint16_t port, int family) const>;
  /// Names a lookup for cancel(). 0 never names one.
  using RequestId = uint64_t;

  /// `num_threads` below 1 means 1. The threads start with the first lookup that needs one;
  /// they block every signal but the fault signals (as TCPServer's workers). If none can start,
  /// that lookup fails with ResourceExhausted.
  explicit Resolver(int num_threads = 2);
  /// As Resolver(num_threads), with the threads running `lookup` instead of resolve_blocking().
  Resolver(int num_threads, Lookup lookup);
  ~Resolver();
  Resolver(const Resolver&) = delete;
  Resolver& operator=(const Resolver&) = delete;

  /// The process-wide resolver (two threads) that TCPClient uses unless given another. It is
  /// created on first use and never destroyed, like IOLoop::instance(): destroying it at exit
  /// would make exit wait for lookups in progress and race with threads still resolving.
  /// Leaving it is safe because it reaches loops only through LoopHandles; idle, its threads
  /// sleep on a condition variable.
  static Resolver& instance();

  /// Resolves `host` for SOCK_STREAM connections to `port` (family AF_UNSPEC, AF_INET or
  /// AF_INET6), in getaddrinfo's order (RFC 6724 preference), and posts the result to `loop`.
  /// Returns the id to cancel() it with, or 0 if the answer was posted at once (a numeric
  /// host, a host with a NUL byte: InvalidArgument, or a resolver shutting down) and cannot be
  /// cancelled. An empty `cb` or `loop` has nobody to answer: ignored (an error log line), 0.
  RequestId resolve(std::shared_ptr<LoopHandle> loop, std::string host, uint16_t port, int family,
                    Callback cb) ABSL_LOCKS_EXCLUDED(mu_);
  /// The same for a loop the caller knows to be alive (e.g. the caller runs on it).
  RequestId resolve(IOLoop& loop, std::string host, uint16_t port, int family, Callback cb)
      ABSL_LOCKS_EXCLUDED(mu_);

  /// Withdraws lookup `id`: its callback will not run. A queued lookup is dropped (its
  /// callback destroyed on the calling thread, after the lock is released); one in progress
  /// has its result discarded (its callback destroyed on the resolver thread). Returns false
  /// if `id` is 0, unknown, or already answered (the callback may then still run).
  bool cancel(RequestId id) ABSL_LOCKS_EXCLUDED(mu_);

  /// The synchronous lookup the threads run by default; also handy in tools and tests.
  static absl::StatusOr<std::vector<SocketAddress>> resolve_blocking(const std::string& host,
                                                                     uint16_t port, int family);

 private:
  struct Request {
    std::shared_ptr<LoopHandle> loop;
    std::string host;
    uint16_t port = 0;
    int family = AF_UNSPEC;
    Callback cb;
  };
  void worker() ABSL_LOCKS_EXCLUDED(mu_);
  absl::Status start_threads() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool has_work() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return shutdown_ || !queue_.empty(); }

  const Lookup lookup_;
  const int num_threads_;
  Mutex mu_;
  RequestId next_id_ ABSL_GUARDED_BY(mu_) = 1;
  /// FIFO by id; a map so that cancel() takes one out without scanning.
  std::map<RequestId, Request> queue_ ABSL_GUARDED_BY(mu_);
  /// Lookups a thread is running: id -> cancelled.
  absl::flat_hash_map<RequestId, bool> in_progress_ ABSL_GUARDED_BY(mu_);
  bool shutdown_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_ ABSL_GUARDED_BY(mu_);
};

}  // namespace ioloop::net

#endif  // IOLOOP_NET_RESOLVER_H_
