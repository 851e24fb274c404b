/// @file ioloop/net/tcp_server.h
/// TCPServer accepts TCP (or Unix-domain) connections and hands each to `handler` as an
/// IOStream, on one loop or on N loops in N threads.
///
/// ```
///   ioloop::IOLoop loop;
///   ioloop::net::TCPServer server(loop, [](std::shared_ptr<IOStream> stream, const SocketAddress&)
///   {
///     stream->read_until_close(...);
///   });
///   if (absl::Status s = server.listen(5000); !s.ok()) return s;
///   server.start(4);   // 4 loops; or start() / start(1): everything on `loop`
///   loop.start();
/// ```
///
/// Threads: with start(1) everything runs on `loop`. With start(N > 1) the server runs N
/// worker loops in N threads; each has its own SO_REUSEPORT listener on the same address, so
/// the kernel spreads connections with no hand-off and no shared lock. (The alternative, one
/// acceptor handing sockets round-robin to N loops as muduo does, costs a cross-thread
/// add_callback per connection and lets one thread's backlog stall all of them.) Every
/// stream lives on exactly one loop for its whole life; reach it from another thread through
/// that loop's handle and a weak_ptr to the stream, both taken on the loop thread
/// (docs/guide.md §3): worker loops go with the server, and a stream's last reference must not
/// be dropped off its loop thread. With N > 1, `handler` is called concurrently from the
/// worker threads and must be thread-safe. Worker threads block every signal but the fault
/// signals (SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGSYS, which go to the faulting thread:
/// a crash handler still runs), so signal handlers on the main loop keep working.
///
/// Methods are called on `loop`'s thread (or before it starts). stop() stops accepting;
/// open streams go on unless `close_streams`. The destructor stops, closes streams and joins
/// the workers; a start(1) server's handler may destroy it (what the handler captured lives
/// until it returns). Unix-domain listeners are accepted on the first loop only.
///
/// Errors: start(), listen() and add_sockets() return the first error of installing a
/// listener (for example add_handler()'s InvalidArgument for an fd the poller cannot watch,
/// or the errno of opening the acceptor's spare fd), never just log it. A failed call
/// installs none of its sockets (they are closed) and leaves earlier listeners alone.
///
/// TLS: with TCPServerOptions::tls, `handler` is called after a successful handshake. A
/// failed or timed-out handshake (a plaintext client, an unknown client certificate, a protocol
/// too old, garbage, silence) closes that connection only, is logged (at most a few lines a
/// second) and counted in handshake_failures(); the server goes on. A handshake that
/// stop(close_streams) or the destructor cuts short is not a failure and is not counted.
///
/// Exceptions: one escaping `handler` is logged through the loop's rate-limited path and
/// counted in that loop's stats().exceptions; the stream it was given is closed with
/// Internal "exception in TCPServer stream handler: <what()>" (its pending callbacks and its
/// close callback see that status), and the server goes on accepting.
#ifndef IOLOOP_NET_TCP_SERVER_H_
#define IOLOOP_NET_TCP_SERVER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "ioloop/io_loop.h"
#include "ioloop/net/accept.h"
#include "ioloop/net/bind.h"
#include "ioloop/net/io_stream.h"
#include "ioloop/net/socket.h"
#include "ioloop/net/socket_address.h"
#include "ioloop/net/transport.h"

namespace ioloop::net {

/// The options of a TCPServer.
struct TCPServerOptions {
  /// TLS (or another transport with a handshake): each accepted connection gets
  /// tls->server_transport(fd), and the handler receives its stream only once the handshake
  /// has finished. Null: plain TCP.
  std::shared_ptr<const TransportFactory> tls;
  /// Most time from accept to the end of the handshake (counted from accept, not from the
  /// last byte received, so a client that dribbles its hello cannot hold a connection
  /// longer). Only with `tls`; must be positive (start() checks it).
  absl::Duration handshake_timeout = absl::Seconds(10);
  /// listen()'s backlog for the sockets listen() binds.
  int backlog = kDefaultBacklog;
  /// Bind listen() sockets with SO_REUSEPORT, which start(N > 1) needs. Its side effect:
  /// another socket of the same user with SO_REUSEPORT (a second server, another process
  /// running this one) binds the same port too, with no EADDRINUSE, and the kernel spreads
  /// the connections between them. With false on either, the second listen() fails
  /// (EADDRINUSE).
  bool reuse_port = true;
  bool nodelay = true;  ///< TCP_NODELAY on accepted TCP connections
  /// The options of every accepted connection's stream.
  IOStreamOptions stream_options;
  /// The acceptor's tuning (see add_accept_handler()).
  AcceptOptions accept_options;
  PollerKind worker_poller = PollerKind::kEpoll;  ///< for the loops of start(N > 1)
};

/// Accepts TCP (or Unix-domain) connections and hands each to a handler as an IOStream, on one
/// loop or on N loops in N threads. Threading, ownership and errors: the file comment of
/// ioloop/net/tcp_server.h.
class TCPServer {
 public:
  /// Called once per connection (after its handshake, with TLS), on the loop the stream
  /// belongs to; with start(N > 1) concurrently from the worker threads.
  using StreamHandler =
      absl::AnyInvocable<void(std::shared_ptr<IOStream> stream, const SocketAddress& peer)>;

  /// Serves on `loop` (which must outlive the server); nothing is listened on before listen()
  /// or add_sockets().
  TCPServer(IOLoop& loop, StreamHandler handler, TCPServerOptions options = {});
  ~TCPServer();
  TCPServer(const TCPServer&) = delete;
  TCPServer& operator=(const TCPServer&) = delete;

  /// bind_sockets(port, address) + add_sockets(). Port 0 picks a free port (see port()).
  absl::Status listen(uint16_t port, absl::string_view address = "");
  /// Takes ownership of listening sockets. Before start() they wait; after it they accept at
  /// once. With N > 1 threads each TCP socket must have SO_REUSEPORT (FailedPrecondition
  /// otherwise), because every worker binds its own copy of the address.
  /// After start() with N > 1 the call blocks until every worker has installed its copies;
  /// each worker holds its loop until all have answered, so that none accepts from a batch
  /// another one refused. On error none of `sockets` accepts (all are closed), addresses()
  /// is unchanged and the earlier listeners go on.
  absl::Status add_sockets(std::vector<Socket> sockets);
  /// Starts accepting on `num_threads` loops. InvalidArgument for an empty handler, if
  /// num_threads < 1, for a handshake_timeout that is not positive, or if an option would turn
  /// an error path into a busy loop (accept_options.max_accepts_per_wakeup < 1,
  /// accept_options.emfile_backoff not positive and finite); FailedPrecondition if already started
  /// or (N > 1) a listener lacks SO_REUSEPORT; ResourceExhausted if a worker thread cannot be
  /// created; else the first error of installing a listener. Every listener is installed before
  /// any worker thread starts, and the ones started are stopped, so on error no thread is left
  /// running, the sockets added so far are closed, addresses() is empty, and the server may be
  /// given new sockets and started again.
  absl::Status start(int num_threads = 1);
  /// Stops accepting (listeners closed); with `close_streams`, closes every open stream too
  /// (IOStream::close(): a TLS stream says goodbye with close_notify, unless its handler marked
  /// a message in progress with IOStream::set_message_complete(false), which makes a plain
  /// TCP stream's end a reset).
  /// With N > 1 the workers do it asynchronously; the destructor waits for them, and each
  /// worker loop runs what the closes queued first (IOLoop::stop_when_idle()). On the caller's
  /// loop, close callbacks run on its later iterations: `loop.stop_when_idle(); loop.start();`.
  void stop(bool close_streams = false);

  /// The addresses listened on, with the real port when 0 was asked.
  std::vector<SocketAddress> addresses() const { return addresses_; }
  /// The port of the first address listened on; 0 if none.
  uint16_t port() const { return addresses_.empty() ? 0 : addresses_.front().port(); }
  /// The loops accepting: N after start(N), 0 before.
  int num_threads() const { return static_cast<int>(workers_.size()); }
  /// Connections whose handshake failed or timed out (any thread may read it); not those
  /// closed by stop(close_streams) or the destructor before their handshake finished.
  uint64_t handshake_failures() const;
  /// True after a successful start(); stop() does not reset it.
  bool started() const { return !workers_.empty(); }

 private:
  struct Worker;
  // What outlives the server: a handshake that ends after the server is gone finds no
  // handler here, rather than a dangling server.
  struct Handoff;
  /// Installs `sockets` on every worker (copies for workers 1..N-1): all or nothing.
  absl::Status activate(std::vector<Socket> sockets);
  /// Adds an Acceptor per socket of `set` to `worker`, on its thread (or before it runs);
  /// on failure removes those this call added and returns the error.
  absl::Status install(Worker* worker, std::vector<Socket>& set);
  absl::Status install_on_running_workers(std::vector<std::vector<Socket>> sets);
  /// Closes every listener and stream, stops and joins the worker threads, drops workers_.
  void shut_down_workers();
  void on_connection(Worker* worker, Socket conn, const SocketAddress& peer);
  /// Hands `stream` to the handler (after its handshake, if it has one).
  static void hand_over(Handoff& handoff, const std::shared_ptr<IOStream>& stream,
                        const SocketAddress& peer);

  IOLoop& loop_;
  std::shared_ptr<Handoff> handoff_;
  TCPServerOptions options_;
  std::vector<Socket> waiting_;  ///< added before start()
  std::vector<SocketAddress> addresses_;
  std::vector<std::unique_ptr<Worker>> workers_;
};

}  // namespace ioloop::net

#endif  // IOLOOP_NET_TCP_SERVER_H_
