/// @file ioloop/net/accept.h
/// add_accept_handler(): accept connections on a listening socket from an IOLoop, as Tornado's
/// netutil.add_accept_handler does, hardened against the three ways an acceptor goes wrong:
///
///  1. Starvation. One READ wake-up accepts until EAGAIN but at most
///     AcceptOptions::max_accepts_per_wakeup connections; the rest wait for the next
///     iteration (the listener is level-triggered, so it fires again) and other fds get a turn.
///  2. Transient errors. ECONNABORTED (the client reset before we accepted), EINTR, EPROTO and
///     the network errors Linux passes through accept() are skipped; accepting goes on.
///  3. Running out of fds. On EMFILE/ENFILE (and ENOBUFS/ENOMEM) the listener stays readable
///     but accept() keeps failing, so a level-triggered loop would spin at 100% CPU while the
///     clients wait forever. Instead the acceptor closes its reserved spare fd (a /dev/null fd
///     opened at creation), accepts the waiting client into that slot and closes it at once (the
///     client sees EOF instead of hanging; libev's and muduo's trick), reopens the spare, and
///     then stops watching the listener for AcceptOptions::emfile_backoff. A timer re-enables
///     it, so accepting resumes by itself once fds are free. Each such event is counted in
///     stats() and logged at most a few times a second (LogRateLimiter). With several loops in
///     one process another thread may take the slot the spare freed; the spare is then
///     reopened when the back-off ends. A re-enable the poller refuses (epoll's
///     max_user_watches, ENOMEM) is retried after another back-off, never the end of accepting.
///
/// Threading: an Acceptor belongs to its loop's thread. Create, use and destroy it there (or
/// before the loop starts). on_connection runs on the loop thread.
/// Ownership: the caller keeps owning `listen_fd` and must keep it open while the Acceptor
/// accepts; stop() (or destruction) before closing it. Each accepted connection is handed to
/// on_connection as a Socket that it owns (non-blocking, close-on-exec).
/// Lifetime: on_connection may call stop(), and may even destroy the Acceptor (the running
/// callable is kept alive until it returns); no further connection is then accepted from
/// that wake-up.
/// Exceptions: one escaping on_connection is logged through the loop's rate-limited path and
/// counted in the loop's stats().exceptions; the connection it was given is closed (unless
/// the callback moved the Socket elsewhere first) and accepting goes on in the same batch.
///
/// Example:
/// ```
///   auto sockets = ioloop::net::bind_sockets(5000, "");
///   auto acceptor = ioloop::net::add_accept_handler(
///       loop, (*sockets)[0].fd(), [](ioloop::net::Socket conn, ioloop::net::SocketAddress peer) {
///         ioloop::logger().info("connection from {}", peer.to_string());
///       });
///   if (!acceptor.ok()) return acceptor.status();
/// ```
#ifndef IOLOOP_NET_ACCEPT_H_
#define IOLOOP_NET_ACCEPT_H_

#include <cstdint>
#include <memory>

#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "ioloop/io_loop.h"
#include "ioloop/net/socket.h"
#include "ioloop/net/socket_address.h"

namespace ioloop::net {

/// The tuning of add_accept_handler(); the defaults suit servers.
struct AcceptOptions {
  /// Upper bound on accept() calls per READ wake-up (successful or not), for fairness.
  int max_accepts_per_wakeup = 128;
  /// How long the listener is ignored after accept() ran out of fds. Positive and finite.
  absl::Duration emfile_backoff = absl::Milliseconds(100);
};

/// Accepts connections on one listening fd; made by add_accept_handler(). Loop thread only; the
/// ownership, lifetime and exception rules are in the file comment of ioloop/net/accept.h.
class Acceptor {
 public:
  /// Called once per accepted connection, on the loop thread; it owns `conn`.
  using ConnectionCallback = absl::AnyInvocable<void(Socket conn, SocketAddress peer)>;

  /// Counters since creation; read on the loop thread.
  struct Stats {
    uint64_t wakeups = 0;           ///< READ events handled
    uint64_t accepted = 0;          ///< connections handed to on_connection
    uint64_t transient_errors = 0;  ///< ECONNABORTED, EINTR, EPROTO, ... (skipped)
    uint64_t emfile_events = 0;     ///< accept() failed EMFILE/ENFILE/ENOBUFS/ENOMEM
    uint64_t rejected = 0;          ///< clients accepted into the spare fd and closed at once
    uint64_t paused = 0;            ///< back-offs begun (after an error, or a failed re-enable)
    uint64_t resumed = 0;           ///< back-offs ended: re-enables tried
    uint64_t other_errors = 0;      ///< unexpected accept() errors (also cause a back-off)
  };

  /// Use add_accept_handler().
  Acceptor(IOLoop& loop, int listen_fd, ConnectionCallback on_connection, AcceptOptions options,
           int spare_fd);
  /// stop()s; closes the spare fd, never the listening fd.
  ~Acceptor();
  Acceptor(const Acceptor&) = delete;
  Acceptor& operator=(const Acceptor&) = delete;

  /// Stops accepting for good: removes the listener from the loop and cancels a pending
  /// back-off. Connections still queued stay in the kernel's backlog. Idempotent.
  void stop();

  bool accepting() const;  ///< not stopped (maybe paused)
  bool paused() const;     ///< inside an EMFILE back-off
  /// The listening fd (not owned).
  int listen_fd() const;
  /// The counters, updated in place (the reference lives as long as the Acceptor).
  const Stats& stats() const;

 private:
  friend absl::StatusOr<std::unique_ptr<Acceptor>> add_accept_handler(IOLoop&, int,
                                                                      ConnectionCallback,
                                                                      AcceptOptions);
  // Everything the listener's handler and the back-off timer use, on_connection included:
  // the lifetime idiom of docs/architecture.md ("Lifetimes"). The Acceptor owns it; the
  // handler and the timer hold it weakly and lock it while they run, so on_connection may
  // destroy the Acceptor: the running code keeps the State (it sees `stopped` and touches
  // nothing more), which goes when the handler returns. Without a running handler,
  // destroying the Acceptor destroys on_connection at once.
  struct State;
  std::shared_ptr<State> state_;
};

/// Starts accepting connections on `listen_fd` (a listening, non-blocking socket) in `loop`,
/// calling `on_connection(conn, peer)` for each. Loop thread only.
/// Errors: InvalidArgument for max_accepts_per_wakeup < 1, an emfile_backoff that is not
/// positive and finite (zero would spin on EMFILE), or an empty callback; the
/// errno status if the spare fd cannot be opened; add_handler()'s status (e.g. AlreadyExists
/// when `listen_fd` is already registered).
absl::StatusOr<std::unique_ptr<Acceptor>> add_accept_handler(
    IOLoop& loop, int listen_fd, Acceptor::ConnectionCallback on_connection,
    AcceptOptions options = {});

}  // namespace ioloop::net

#endif  // IOLOOP_NET_ACCEPT_H_
