/// @file ioloop/net/http/http_server.h
/// HTTPServer: an HTTP/1.1 server (RFC 9112) on TCPServer. Each connection feeds what it reads
/// to a RequestParser and calls `handler(request, writer)` for every complete request, in
/// order. Either the handler fills the HTTPResponseWriter and returns, and the response is
/// then complete (the synchronous fast path), or it calls writer.defer() and completes the
/// response later through the returned HTTPResponseStream (write/flush/finish, possibly
/// streaming a chunked body; see http_response_stream.h). Either way keep the loop free: do
/// slow work elsewhere and finish from a timer, another stream's callback, or (from another
/// thread) by posting through the loop's handle (http_response_stream.h, "Threading").
///
/// ```
///   ioloop::IOLoop loop;
///   HTTPServer server(loop, [](const HTTPRequest& request, HTTPResponseWriter& response) {
///     response.set_header("Content-Type", "text/plain");
///     response.set_body("Hello, world!");
///   });
///   if (absl::Status s = server.listen(8080); !s.ok()) return s;
///   server.start();   // or start(N): N loops in N threads
///   loop.start();
/// ```
///
/// HTTPS: set HTTPServerOptions::tcp_options.tls to a server-side TransportFactory, normally a
/// TLSContext (ioloop/net/tls/tls_context.h, library ioloop::tls; this library does not link
/// OpenSSL) with ALPN "http/1.1" and "http/1.0" (both served; `curl --http1.0` offers the
/// second alone):
///
/// ```
///   auto tls = TLSContext::server({.cert_chain_file = "chain.pem",
///                                  .private_key_file = "key.pem",
///                                  .alpn_protocols = {"http/1.1", "http/1.0"}});
///   if (!tls.ok()) return tls.status();
///   HTTPServerOptions options;
///   options.tcp_options.tls = *tls;   // and tcp_options.handshake_timeout (10 s)
/// ```
///
/// Every connection then runs its handshake first (TCPServer), bounded by
/// tcp_options.handshake_timeout counted from accept; only a connection whose handshake
/// succeeded becomes an HTTP connection. So everything below (Stats::connections, every
/// timeout, the handler) starts after the handshake: a slow handshake is never a 408, and a
/// failed one (a plaintext client, garbage, an unknown client certificate) gets no HTTP
/// response at all (never a response in clear), is closed and counted in
/// Stats::handshake_failures, and the server goes on. Everything in this comment holds over TLS;
/// "shuts down its sending side" is then a close_notify.
///
/// Connection semantics:
///  - HTTP/1.1 keeps the connection open unless the request says "Connection: close";
///    HTTP/1.0 closes after the response unless it says "Connection: keep-alive" (then the
///    response says it too). A response after which the connection ends says
///    "Connection: close". The status line's version follows the request's (HTTP/1.0 or 1.1).
///  - HEAD gets the headers, with the Content-Length the body would have, and no body.
///  - Pipelining: requests are answered in order. The rule for deferred responses is
///    Tornado's (HTTP1Connection): the next pipelined request is not parsed, nor its handler
///    called, until the previous response finished (or failed). Input already read waits
///    unparsed in the connection's backlog; reading goes on meanwhile so that the client's
///    EOF or reset is noticed (and the response's stream is told), but pauses once that
///    backlog exceeds 64 KiB. A deferred response finished inside its handler costs nothing
///    more: the next request is answered in the same pass. All responses produced from one read are
///    sent with ONE send/sendmsg call (one buffer; large bodies as extra iovecs). This beat
///    TCP_CORK (cork, a send per response, uncork): see tests/bench/http_server_benchmark.cc.
///    One read (up to 256 KiB) can hold thousands of requests: the handler stops being called
///    once that read's output reaches max_pending_output (minus what is still queued), the
///    rest of the read is kept unparsed, reading stops, and answering resumes once the output
///    is in the kernel. So a connection queues at most max_pending_output plus one response.
///  - Expect: 100-continue: "HTTP/1.1 100 Continue" is sent when the header section is in and
///    the body is not (RequestParser::Result::send_continue).
///  - Streamed request bodies (the constructor with an HTTPBodyHandlerFactory): see
///    http_body_handler.h. Without a factory the server costs nothing more for them.
///  - Errors (each response says "Connection: close", then the connection closes once it is
///    flushed; responses to requests before the bad one in the same read go out first):
///    malformed request, bad Content-Length, Content-Length with Transfer-Encoding, HTTP/1.1
///    without Host -> 400; header section over max_header_size -> 431 (414 when the request
///    line alone is over it: a target that long); body over
///    max_body_size -> 413; unsupported Transfer-Encoding -> 501; HTTP major version != 1 ->
///    505; more than 8 empty lines (or a bare CR) before a request line -> 400 (see
///    request_parser.h). The status line says HTTP/1.0 when the request's line said so
///    (HTTP/1.1 when it was not complete or named another version). An exception escaping
///    the handler -> 500 on that connection only; it is logged through the loop's rate-limited
///    path and counted in the loop's stats().exceptions (IOLoop::handle_callback_exception)
///    and in Stats::handler_exceptions. The handler is the only user code this layer calls.
///  - Closing: after the last response the server shuts down its sending side and reads and
///    discards input, once its output is in the kernel, until the client closes or
///    linger_timeout passes without a byte from it, 30 s after the flush at most (or
///    linger_timeout, if longer): a "lingering close", nginx's lingering_timeout and
///    lingering_time. Closing with unread input would send a RST that can destroy the response
///    in flight, and a client may send the rest of a body before it reads an early answer.
///  - Backpressure: while max_pending_output bytes or more wait to be sent on a connection,
///    it stops reading from that connection (TCP flow control pushes back on the client), and
///    resumes at a quarter of it.
///
/// Timeouts (per connection, one loop timer each, re-armed lazily: a request only stores a new
/// deadline, and the timer, when it fires early, re-arms itself for the stored deadline; so
/// the per-request cost is one clock read, not a timer insert and cancel):
///  - idle_timeout: a connection that reads nothing for this long (a keep-alive connection
///    waiting for its next request, a request or body that stops arriving) is closed without
///    a response, unless its output is still draining to a slow reader (that is progress) or
///    a deferred response is in progress with nothing waiting to be sent (the handler's
///    business, see response_timeout). Output that the client takes no byte of between two
///    looks this far apart closes the connection, a pending response's too (nginx's
///    send_timeout): so a client that stops reading holds a connection, and what the handler
///    holds for it (http_proxy: an upstream connection), for at most twice this long.
///  - response_timeout (off by default): a deferred response not finished this long after
///    its handler deferred it fails: 503 "Service Unavailable" if no byte of it was sent,
///    else the connection closes; its stream is closed with DeadlineExceeded. Counted in
///    Stats::response_timeouts.
///  - header_timeout: a request whose header section started this long ago and is not
///    complete (slowloris) is answered 408 and the connection closed. The section starts at
///    the request's first byte, an empty line before its request line included.
///  - request_timeout (off by default): the same for a whole request, header section and
///    body, counted from its first byte.
///  - min_body_rate (off by default): a body is read in windows of body_rate_window from the
///    end of its header section; a window in which fewer than min_body_rate *
///    body_rate_window bytes arrived is answered 408 and the connection closed (the bytes of
///    the read that ended the header section count toward the first window).
///  While the server takes none of a connection's bytes (its output backed up, requests
///  waiting unparsed, a streamed body its handler holds stopped), the last three clocks stand
///  still: the time is not the client's, and afterwards it has exactly what it had left.
///  Zero or InfiniteDuration() disables idle_timeout, header_timeout and request_timeout.
///  Each 408 is counted in Stats (header_timeouts, request_timeouts, body_rate_timeouts).
///  The clocks read IOLoop::iteration_time() (no clock read per request), so a timeout may
///  start up to one loop iteration's work early, as libuv's timers do.
///
/// Options are checked when the server is constructed: listen(), add_sockets(), start() and
/// serve() return InvalidArgument, naming the field, for options that cannot work
/// (max_pending_output or max_header_size 0, body_rate_window under 1 ms or infinite with
/// min_body_rate set, a negative timeout, a server_name with a control byte, an empty handler);
/// serve(nullptr) is InvalidArgument too.
///
/// Threading: construct, listen, start and stop on `loop`'s thread (or before it runs). With
/// start(N > 1) the handler runs concurrently on N threads and must be thread-safe. stats() is
/// thread-safe. A deferred response's stream belongs to its connection's loop thread
/// (stream->loop()); complete it from another thread only by posting to that loop through its
/// handle (stream->loop().handle(), taken on the loop thread): with start(N > 1) the loops go
/// with the server, and a kept IOLoop& would dangle where the handle's post() returns false.
/// Lifetime: destroying the server stops it and closes its connections (one in the middle of a
/// close-delimited body with a TCP reset, over TLS without close_notify: the client sees a
/// truncation, not the body's end). The handler and options
/// are shared with the connections, so a connection that outlives the server (closing on its
/// loop) never touches freed state.
#ifndef IOLOOP_NET_HTTP_HTTP_SERVER_H_
#define IOLOOP_NET_HTTP_HTTP_SERVER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "ioloop/io_loop.h"
#include "ioloop/net/http/http_body_handler.h"
#include "ioloop/net/http/http_request.h"
#include "ioloop/net/http/http_response.h"
#include "ioloop/net/http/http_response_stream.h"
#include "ioloop/net/io_stream.h"
#include "ioloop/net/tcp_server.h"

namespace ioloop::net {

struct HTTPServerState;  // net/src/http/http_server_state.h

/// The options of an HTTPServer; invalid ones make listen(), add_sockets(), start() and
/// serve() return InvalidArgument.
struct HTTPServerOptions {
  /// 431 above this (414 for a request line alone over it). libhttp_parser's own limit, 80
  /// KiB, caps it: a larger value acts as 80 KiB (request_parser.h).
  size_t max_header_size = 64 * 1024;
  size_t max_body_size = 64 * 1024 * 1024;  ///< 413 above this
  /// Count and frame request bodies but do not keep them (HTTPRequest::body() is empty).
  bool discard_body = false;
  /// Closes a connection that reads nothing for this long (see "Timeouts").
  absl::Duration idle_timeout = absl::Seconds(60);
  /// 408 for a header section not complete this long after its first byte (see "Timeouts").
  absl::Duration header_timeout = absl::Seconds(10);
  /// How long a closing connection waits for the client's EOF once its output is flushed, from
  /// the client's last byte (see "Closing"). Cannot be disabled: zero or infinite means 2 s.
  absl::Duration linger_timeout = absl::Seconds(2);
  /// Output bound per connection: stop calling the handler once this many response bytes are
  /// unsent (see "Pipelining") and stop reading while they are (resume at a quarter of it).
  /// Must be > 0. It is what a client that pipelines and never reads costs: 64 KiB, in the
  /// spirit of nginx's output buffers (1 MiB before let 20,000 such clients take 20 GiB).
  size_t max_pending_output = 64 * 1024;
  /// 408 for a request body arriving slower than min_body_rate bytes per second on average
  /// over each body_rate_window (e.g. 1024 and 10 s). 0 (the default) disables; when set, the
  /// window must be finite and at least 1 ms.
  size_t min_body_rate = 0;
  /// The window of min_body_rate.
  absl::Duration body_rate_window = absl::Seconds(10);
  /// 408 for a request not complete this long after its first byte. Zero (the default) or
  /// InfiniteDuration() disables.
  absl::Duration request_timeout = absl::ZeroDuration();
  /// A deferred response not finished this long after its handler ran: 503 or close (see
  /// "Timeouts"). Zero (the default) or InfiniteDuration() disables.
  absl::Duration response_timeout = absl::ZeroDuration();
  /// The Server header's value; empty sends none.
  std::string server_name;
  /// The listener's options (TLS, threads' poller, accept tuning, stream options).
  TCPServerOptions tcp_options;
};

/// An HTTP/1.1 server on TCPServer: calls the handler for every complete request of every
/// connection, in order. Threading, timeouts, closing and errors: the file comment of
/// ioloop/net/http/http_server.h.
class HTTPServer {
 public:
  /// Answers one request, on the connection's loop thread (concurrently from N threads with
  /// start(N > 1)); the writer is valid only during the call unless deferred.
  using Handler = absl::AnyInvocable<void(const HTTPRequest&, HTTPResponseWriter&)>;

  /// Counters over all connections of this server (relaxed atomics: a snapshot).
  struct Stats {
    uint64_t connections = 0;         ///< accepted or handed to serve()
    uint64_t requests = 0;            ///< handed to the handler
    uint64_t responses = 0;           ///< serialized, including error responses and 408
    uint64_t writes = 0;              ///< write/writev calls on streams (one syscall each when
                                      ///< the kernel takes everything at once)
    uint64_t protocol_errors = 0;     ///< 400/413/414/431/501/505 sent
    uint64_t handler_exceptions = 0;  ///< exceptions from handlers and from deferred code run
                                      ///< through HTTPResponseStream::run() on an open
                                      ///< response (all also in the loop's
                                      ///< stats().exceptions): 500 or close
    uint64_t idle_timeouts = 0;       ///< connections closed by idle_timeout
    uint64_t header_timeouts = 0;     ///< 408 for a header section past header_timeout
    uint64_t body_rate_timeouts = 0;  ///< 408 for a body below min_body_rate
    uint64_t request_timeouts = 0;    ///< 408 for a request past request_timeout
    uint64_t output_stalls = 0;       ///< reads whose answering stopped at max_pending_output
    uint64_t max_output_queued = 0;   ///< most response bytes queued unsent on one connection
                                      ///< (after a write; at most max_pending_output + one
                                      ///< response)
    uint64_t deferred_responses = 0;  ///< defer() calls that returned a stream
    uint64_t response_timeouts = 0;   ///< deferred responses failed by response_timeout
    uint64_t stream_errors = 0;       ///< deferred responses failed by the handler: Content-
                                      ///< Length misuse, dropped unfinished (500 or close)
    uint64_t streamed_requests = 0;   ///< bodies the factory chose to stream (http_body_handler.h)
    uint64_t body_pauses = 0;         ///< on_body calls that returned false (reading stopped)
    uint64_t handshake_failures = 0;  ///< TLS handshakes failed or timed out (TCPServer's count:
                                      ///< those connections never reached HTTP)
  };

  /// Serves with `handler` on `loop` (which must outlive the server); request bodies are
  /// buffered up to max_body_size. Nothing is listened on before listen() or add_sockets().
  HTTPServer(IOLoop& loop, Handler handler, HTTPServerOptions options = {});
  /// With streamed request bodies: `on_headers` chooses, per request with a body, between
  /// streaming it to an HTTPBodyHandler and buffering it for `handler` (http_body_handler.h).
  /// An empty factory is the constructor above.
  HTTPServer(IOLoop& loop, Handler handler, HTTPBodyHandlerFactory on_headers,
             HTTPServerOptions options = {});
  ~HTTPServer();
  HTTPServer(const HTTPServer&) = delete;
  HTTPServer& operator=(const HTTPServer&) = delete;

  /// @{
  /// TCPServer's: bind (port 0 picks one, see port()), then start accepting on N loops.
  /// Each returns InvalidArgument first if the options are invalid (see above).
  absl::Status listen(uint16_t port, absl::string_view address = "");
  absl::Status add_sockets(std::vector<Socket> sockets);
  absl::Status start(int num_threads = 1);
  /// @}
  /// Stops accepting; with `close_connections`, closes every open connection too. The close
  /// callbacks of pending deferred responses run on later iterations of their loop: on the
  /// caller's loop (start(1)), run `loop.stop_when_idle(); loop.start();` after this to let
  /// them run; worker loops do it themselves when the server is destroyed.
  void stop(bool close_connections = false);
  /// The port of the first address listened on; 0 if none.
  uint16_t port() const;
  /// The addresses listened on, with the real port when 0 was asked.
  std::vector<SocketAddress> addresses() const;

  /// Serves an already connected stream (e.g. one end of a socketpair) of the server's loop,
  /// exactly as an accepted connection: stop(true) and the destructor close it too. Call on
  /// that loop's thread. InvalidArgument if the stream belongs to another loop (whose thread
  /// could still run the handler after the server is gone; the stream is left alone), or if
  /// the options are invalid (the stream is closed).
  absl::Status serve(std::shared_ptr<IOStream> stream);

  /// Thread-safe. A snapshot of the counters.
  Stats stats() const;

 private:
  /// Closes the streams given to serve() (stop(true), the destructor).
  void close_served();

  const absl::Status options_status_;  ///< InvalidArgument for options that cannot work
  IOLoop& loop_;
  /// The streams given to serve(), all of loop_ (so used on its thread only).
  std::vector<std::weak_ptr<IOStream>> served_;
  size_t served_after_prune_ = 0;
  /// Handler, options and counters, shared with the connections (private: only the library
  /// sees its definition).
  std::shared_ptr<HTTPServerState> state_;
  TCPServer tcp_server_;
};

}  // namespace ioloop::net

#endif  // IOLOOP_NET_HTTP_HTTP_SERVER_H_
