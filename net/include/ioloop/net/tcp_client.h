/// @file ioloop/net/tcp_client.h
/// TCPClient opens outgoing TCP connections and hands each one over as an IOStream.
///
/// ```
///   ioloop::net::TCPClient client(loop);
///   client.connect("example.com", 80, [](absl::StatusOr<std::shared_ptr<IOStream>> s) {
///     if (!s.ok()) { log(s.status()); return; }
///     (*s)->write("GET / HTTP/1.0\r\n\r\n");
///   });
/// ```
///
/// Behaviour:
/// - connect() never blocks: names are resolved on a Resolver thread pool (numeric addresses
///   skip it) and sockets connect non-blocking.
/// - Happy Eyeballs (RFC 8305, as Tornado's _Connector): the addresses are split into the
///   family of the resolver's first choice (primary) and the other one (secondary), each
///   kept in the resolver's order. Each family tries its addresses one at a time, moving to
///   its next address when one fails. The primary family starts at once; the secondary when
///   `happy_eyeballs_delay` expires or at the first failure of a primary address, whichever
///   comes first. The first connection made wins; the others are closed.
/// - `timeout` bounds the whole attempt, resolution and TLS handshake included:
///   DeadlineExceeded.
/// - TLS (ConnectOptions::tls): the first TCP connection made wins and runs the handshake;
///   the callback gets the stream once it finished. A handshake failure is not retried.
/// - connect_with_retry() retries failed attempts with exponential back-off (muduo's
///   Connector), up to `max_attempts`.
/// The callback runs exactly once on the loop thread: with the stream, with the last
/// connection error (Unavailable with the errno text, e.g. "Connection refused", whatever the
/// errno, the kernel's ETIMEDOUT too; ResourceExhausted if no socket could be made or watched:
/// out of file descriptors or memory, or past select's FD_SETSIZE), with the resolver's error
/// (NotFound; Unavailable for a transient DNS failure or a lookup that timed out), with
/// DeadlineExceeded (`timeout` or handshake_timeout, and only those), with InvalidArgument for bad
/// arguments (see each method), or with Cancelled if the TCPClient is destroyed first (then it
/// runs from the destructor). It never runs inside the call that was given it. An exception
/// thrown by it is logged and counted by the loop (IOLoop::handle_callback_exception,
/// stats().exceptions) and goes no further: the client stays usable, other connects are
/// unaffected.
///
/// Threading: loop thread only. The loop and the resolver must outlive the client.
/// Lifetime: destroying the client cancels its lookups in the resolver (queued ones are never
/// looked up) and closes its sockets in progress; nothing it started runs afterwards.
#ifndef IOLOOP_NET_TCP_CLIENT_H_
#define IOLOOP_NET_TCP_CLIENT_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "ioloop/io_loop.h"
#include "ioloop/net/io_stream.h"
#include "ioloop/net/resolver.h"
#include "ioloop/net/transport.h"

namespace ioloop::net {

/// The options of one TCPClient connect. A connect whose timeout or handshake_timeout is not
/// positive, whose happy_eyeballs_delay is negative or whose family is another completes with
/// InvalidArgument naming the field.
struct ConnectOptions {
  /// TLS (or another transport with a handshake): the connection is handed over only after
  /// tls->client_transport()'s handshake succeeded; a failed one completes the connect with
  /// its reason (e.g. a certificate that does not verify). Null: plain TCP.
  std::shared_ptr<const TransportFactory> tls;
  /// The name the server must prove and that is sent as SNI; empty: the host given to
  /// connect(), an IPv6 literal without its brackets (for connect_to(), the first address's
  /// numeric host).
  std::string server_name;
  /// Most time from the TCP connection to the end of the handshake (within `timeout`).
  absl::Duration handshake_timeout = absl::Seconds(10);
  /// Bounds the whole attempt, resolution and TLS handshake included (DeadlineExceeded).
  absl::Duration timeout = absl::Seconds(20);
  /// How long the primary family tries alone before the secondary starts (earlier if a primary
  /// address fails).
  absl::Duration happy_eyeballs_delay = absl::Milliseconds(300);
  int family = AF_UNSPEC;  ///< or AF_INET / AF_INET6 to use one family only
  bool nodelay = true;     ///< TCP_NODELAY on the connected socket
  /// The options of the connected stream.
  IOStreamOptions stream_options;
};

/// The n-th retry waits min(max_delay, initial_delay * multiplier^(n-1)). A policy under
/// which retries could spin is refused with InvalidArgument naming the field: initial_delay
/// must be positive, max_delay at least initial_delay, multiplier at least 1, max_attempts
/// not negative.
struct RetryPolicy {
  absl::Duration initial_delay = absl::Milliseconds(500);  ///< the wait before the first retry
  absl::Duration max_delay = absl::Seconds(30);            ///< the longest wait between tries
  double multiplier = 2.0;  ///< growth of the wait from one retry to the next
  int max_attempts = 0;     ///< 0: retry until it succeeds or the client is destroyed
};

/// Opens TCP connections (resolution on a Resolver pool, Happy Eyeballs, timeouts, retries,
/// optional TLS) and completes each with an IOStream. Loop thread only; the loop and the
/// resolver must outlive it. Details in the file comment of ioloop/net/tcp_client.h.
class TCPClient {
 public:
  /// Runs exactly once on the loop thread: the connected stream (owned by the callee), or the
  /// error.
  using ConnectCallback = absl::AnyInvocable<void(absl::StatusOr<std::shared_ptr<IOStream>>) &&>;

  /// `resolver` may be shared between clients and must outlive them; null uses
  /// Resolver::instance().
  explicit TCPClient(IOLoop& loop, Resolver* resolver = nullptr);
  /// Completes every pending connect with Cancelled, a connect that one of those callbacks
  /// starts included (so a callback that always connects again keeps it from returning).
  ~TCPClient();
  TCPClient(const TCPClient&) = delete;
  TCPClient& operator=(const TCPClient&) = delete;

  /// Resolves `host` and connects to `port` (Happy Eyeballs over the addresses); `cb` gets the
  /// stream or the error as the file comment says. Never blocks, never runs `cb` inside the call.
  /// InvalidArgument through `cb` for a host with a NUL byte. An empty `cb` (here and below):
  /// the call is ignored, with an error log line.
  void connect(std::string host, uint16_t port, ConnectCallback cb, ConnectOptions options = {});
  /// InvalidArgument through `cb` for a RetryPolicy that could spin (see RetryPolicy).
  void connect_with_retry(std::string host, uint16_t port, ConnectCallback cb, RetryPolicy retry,
                          ConnectOptions options = {});
  /// Skips resolution: Happy Eyeballs over `addresses` (each with its port), in this order,
  /// less those of another family than ConnectOptions::family. InvalidArgument through `cb`
  /// if none is left.
  void connect_to(std::vector<SocketAddress> addresses, ConnectCallback cb,
                  ConnectOptions options = {});

  /// Connects in progress (including ones waiting to retry).
  size_t pending() const;

 private:
  /// Adds a pending attempt and starts it, or, if `invalid` is an error, completes it with
  /// that error from the loop.
  void begin(std::string host, uint16_t port, std::vector<SocketAddress> addresses,
             ConnectCallback cb, std::optional<RetryPolicy> retry, ConnectOptions options,
             absl::Status invalid = absl::OkStatus());

  // The client's state and its tries: each try is owned here through a shared_ptr and held
  // weakly by the callbacks it hands out (docs/architecture.md, "Lifetimes").
  struct State;
  struct Request;
  struct Try;
  std::unique_ptr<State> state_;
};

}  // namespace ioloop::net

#endif  // IOLOOP_NET_TCP_CLIENT_H_
