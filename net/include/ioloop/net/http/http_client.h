/// @file ioloop/net/http/http_client.h
/// HTTPClient: an asynchronous HTTP/1.1 client in the style of Tornado's AsyncHTTPClient, with
/// what Tornado's simple client lacks: a keep-alive connection pool.
///
/// ```
///   ioloop::net::HTTPClient client(loop);
///   HTTPClientRequest request;
///   request.url = "http://127.0.0.1:8080/hello";
///   client.fetch(std::move(request), [](absl::StatusOr<HTTPClientResponse> r) {
///     if (!r.ok()) { log(r.status()); return; }
///     use(r->status, r->body);
///   });
/// ```
///
/// HTTPS: give the client a client-side TransportFactory in HTTPClientOptions::tls, normally a
/// TLSContext (ioloop/net/tls/tls_context.h, library ioloop::tls; this library does not link
/// OpenSSL, so plain-HTTP users never do):
///
/// ```
///   auto tls = TLSContext::client({.alpn_protocols = {"http/1.1"}});  // the system store
///   if (!tls.ok()) return tls.status();
///   HTTPClient client(loop, {.tls = *tls});   // now https:// URLs work too
/// ```
///
/// Contract:
///  - fetch() runs its callback exactly once, on the loop thread, never inside fetch() itself:
///    with the final response (any status code: a 404 is a response, not an error) or with an
///    error status. cancel() runs it inside cancel(); ~HTTPClient inside the destructor.
///  - Errors (the message names the URL or host and the phase; a failed connect, a connection's
///    failure, queue_timeout, cancel(), a body_producer's misuse and a user callback's exception
///    end with "(METHOD URL, PHASE)", PHASE one of
///    "starting" (before the request was checked), "queued for a connection", "connecting",
///    "sending the request", "waiting for the response", "reading the head", "reading the
///    body"; e.g. "connect to 127.0.0.1:1: Connection refused (GET http://127.0.0.1:1/,
///    connecting)"):
///      InvalidArgument    a bad URL (URL::parse's message), method, header field or option;
///                         a body_producer that writes more or fewer bytes than the
///                         Content-Length it gave. The response parser's InvalidArgument.
///      FailedPrecondition an https:// URL (or a redirect to one) with HTTPClientOptions::tls
///                         null: "https://h/ needs HTTPClientOptions.tls ...".
///      Unauthenticated    the server's certificate did not verify (unknown CA, expired, not
///                         issued for the URL's host): "connect to h:443: TLS handshake failed:
///                         certificate verify failed: <OpenSSL's reason>".
///      Unavailable        connecting failed ("Connection refused"), the TLS handshake failed
///                         otherwise ("connect to h:443: TLS handshake failed: <reason>": no
///                         common protocol, not TLS at all, ...), the server closed or reset
///                         the connection before any byte of the response (after the one retry
///                         described below, if it applied), or a socket error (a reset) or a
///                         TLS end without close_notify cut the response after it began
///                         ("connection error while reading the response: ..."): the
///                         transport failed, where DataLoss says the server's own bytes were
///                         malformed or ended early.
///      NotFound           the host name does not resolve (the Resolver's error).
///      DeadlineExceeded   a timeout, naming its phase: "connect" (connect_timeout, which
///                         bounds resolution, the TCP connect and the TLS handshake),
///                         "queued for a connection" (queue_timeout), "waiting for the
///                         response", "reading the head" (some of it came) or "reading
///                         the body" (request_timeout, response_timeout). fetch_timeout() tells
///                         which limit it was.
///      DataLoss           a malformed response, or one the server ended (FIN) before its
///                         framing said it was complete, with the parser's reason
///                         ("malformed response: ...", "connection closed after 3 of 10 body
///                         bytes", see response_parser.h).
///      ResourceExhausted  the response head over max_header_size, or the body over
///                         max_body_size.
///      Aborted            "too many redirects": more than max_redirects redirects.
///      Cancelled          cancel() ("fetch cancelled (GET http://h/, connecting)"), or the
///                         client destroyed with the fetch pending.
///      Internal           a user callback other than the final one (header_callback,
///                         interim_callback, streaming_callback, body_producer) threw: the
///                         exception is logged and counted by the loop (IOLoop::invoke_guarded,
///                         stats().exceptions), the connection is closed, and the fetch ends with
///                         Internal "exception in <callback>: <what()> (METHOD URL, PHASE)".
///                         An exception from the FetchCallback itself is logged and counted
///                         and goes no further.
///  - HTTPS (https:// with HTTPClientOptions::tls): each connection runs its TLS handshake as
///    part of the connect, sending the URL's host as SNI and verifying the certificate against
///    it (an IP literal against the certificate's IP addresses); the Host field is the same
///    authority as over http. A handshake or verification failure fails that fetch (and
///    nothing else) with the status above; it is never taken for the keep-alive race below, so
///    it is not retried. Redirects may cross between http and https either way (to https only
///    with `tls` set). Over TLS, a server that ends the connection without close_notify in the
///    middle of a response (a close-delimited body included) fails the fetch with Unavailable
///    naming the truncation: a cut body is never passed off as complete.
///  - Keep-alive pool, one per scheme+host+port (http://h and https://h never share a
///    connection): a connection whose response completed with keep-alive (RFC 9112 §9.3) and
///    nothing unexpected after it is kept idle and reused (the most recently used first); idle
///    connections close after idle_timeout, when the server closes them, or when bytes nobody
///    asked for arrive. (A server that sends one response too many is caught only when the
///    extra bytes come before the next request goes out, read or waiting unread: unread, for a
///    request that would not be retried, and for any request after a response without a body
///    (a HEAD's, a 204, a 304), after which a buggy server's body is the classic case; after
///    the request, HTTP/1.1 cannot tell them from its response, for this client as for any
///    other.) At most
///    max_connections_per_host connections (connecting, busy or idle) per scheme+host+port;
///    more fetches wait in a FIFO queue. Time spent in the queue counts toward no timeout but
///    queue_timeout.
///  - The keep-alive race: when a request written on a REUSED connection meets EOF or a reset
///    before any byte of the response, or a 408 (what some servers send as they close an idle
///    connection; RFC 9110 §15.5.9 lets the client repeat the request), the fetch is retried
///    once, on a fresh connection, if its method is idempotent (GET, HEAD, PUT, DELETE, OPTIONS,
///    TRACE; RFC 9110 §9.2.2) and its body is not produced by a body_producer (it cannot be
///    replayed). Never otherwise: a POST then fails with Unavailable (or gets the 408).
///    Stats::retries counts retries. Before a request that would not be retried goes on a
///    reused connection, the pool checks (one non-blocking peek) that the server has neither
///    closed it nor sent anything on it since the last response: a FIN, a stray response or a
///    TLS close_notify waiting unread then sends the request on another connection instead.
///  - Framing: Content-Length, chunked or close-delimited; no body for HEAD, 1xx, 204, 304;
///    interim 1xx responses go to interim_callback, never taken for the final response.
///  - Redirects (follow_redirects): 301, 302 and 303 are followed with GET and no body (HEAD
///    stays HEAD); 307 and 308 keep the method and body. The Location is resolved against the
///    current URL (RFC 3986), its spaces and bytes over 0x7F after the authority
///    percent-encoded first (as browsers do). The redirect responses' bodies are read and
///    dropped, up to 64 KiB (so their connection can be reused; past that, or with a larger
///    Content-Length, the connection is closed and the redirect followed at once), and
///    header_callback/streaming_callback see only the final response. On a change of origin
///    (scheme, host or port), Host, Authorization and Cookie fields given by the caller are not
///    forwarded; within it they are. Each hop gets its own connect_timeout and request_timeout.
///    A 3xx without Location (or with an empty one), a 307/308 to a request with a
///    body_producer, and any 3xx with follow_redirects false are final responses. One to
///    follow with several different Location fields is malformed (DataLoss).
///
/// Threading: every method on the loop thread. The loop (and the resolver) must outlive the
/// client. Lifetime: the client may be destroyed from inside any of its callbacks; nothing it
/// started runs afterwards, except the callbacks completed from its destructor.
#ifndef IOLOOP_NET_HTTP_HTTP_CLIENT_H_
#define IOLOOP_NET_HTTP_HTTP_CLIENT_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "ioloop/io_loop.h"
#include "ioloop/net/http/http_headers.h"
#include "ioloop/net/http/response_parser.h"
#include "ioloop/net/resolver.h"
#include "ioloop/net/transport.h"

namespace ioloop::net {

class HTTPClientCore;  // net/src/http/http_client_core.h
struct ClientFetch;

/// Handed to HTTPClientRequest::body_producer: sends the next pieces of a streamed request body.
/// A cheap copyable handle; keep it to write later (loop thread only), e.g. when the data arrives
/// from another stream. Every method returns false, sending nothing, once the fetch has ended or
/// after finish().
class HTTPClientBodyWriter {
 public:
  HTTPClientBodyWriter() = default;  ///< writes nothing

  /// Queues `chunk` (an empty one is ignored). With chunked framing it is sent as one chunk.
  bool write(std::string chunk);
  /// Ends the body (chunked: the last-chunk). With a Content-Length given, fewer bytes than it
  /// fail the fetch with InvalidArgument (as do more, at the write()).
  bool finish();
  /// The fetch is still sending its body.
  bool active() const;

 private:
  friend class HTTPClientCore;
  HTTPClientBodyWriter(std::weak_ptr<HTTPClientCore> core, std::weak_ptr<ClientFetch> fetch)
      : core_(std::move(core)), fetch_(std::move(fetch)) {}
  /// Weak: a kept writer keeps neither the client nor its fetch alive.
  std::weak_ptr<HTTPClientCore> core_;
  std::weak_ptr<ClientFetch> fetch_;
};

/// One fetch: what to send and how long to wait. Moved into HTTPClient::fetch(); its callables
/// run on the client's loop thread.
struct HTTPClientRequest {
  std::string method = "GET";  ///< a token (RFC 9110 §5.6.2), else InvalidArgument
  /// Absolute http:// or https:// URL (see url.h); https:// needs HTTPClientOptions::tls.
  std::string url;
  /// Sent in order after the client's own fields. The client owns, and drops if given here:
  /// Content-Length (from `body`, unless a body_producer is set: see there), Transfer-Encoding,
  /// Connection and Keep-Alive. Host is taken from here if given (a proxy forwards it), else
  /// from the URL's authority. User-Agent is HTTPClientOptions::user_agent unless given. Names
  /// must be tokens and values free of control bytes but HTAB (RFC 9110 §5.5; CR, LF and NUL
  /// among them), and Host fields (and, with a body_producer, Content-Length fields) must not
  /// differ: InvalidArgument otherwise.
  HTTPHeaders headers;
  /// Sent with Content-Length (also "Content-Length: 0" for an empty POST, PUT or PATCH).
  std::string body;
  /// Streaming upload, instead of `body`: called when the connection can take more of the body
  /// (first once the request head has been flushed, then each time everything written so far
  /// has been flushed, until finish()). A call that writes nothing is not repeated until
  /// something is written through a kept writer. Sent chunked, unless the request has a
  /// Content-Length field: then exactly that many bytes, unframed.
  absl::AnyInvocable<void(HTTPClientBodyWriter&)> body_producer;

  /// Bounds the connect: name resolution, TCP connect and, for https, the TLS handshake. Zero
  /// or infinite: no limit.
  absl::Duration connect_timeout = absl::Seconds(20);
  /// Bounds one exchange: from the moment the request starts being written (on a connection
  /// out of the pool or just made; queue time excluded) until the response's last byte. Its
  /// phase is "waiting for the response" until a byte of the response comes (the request may
  /// still be being sent), then "reading the head" (an interim response too) until the final
  /// head is complete, then "reading the body". The connection is closed.
  /// Zero or infinite: no limit.
  absl::Duration request_timeout = absl::Seconds(20);
  /// Optional (zero or infinite: off): bounds the server's silence, as nginx's
  /// proxy_read_timeout, not the exchange's length. First the wait for the final response's
  /// head, from the request's first write or the response's last byte (an interim response,
  /// part of the head): DeadlineExceeded "response_timeout (..) expired waiting for the
  /// response from <url>" ("reading the head" once a byte came). Then the wait for each
  /// piece of its body, from the head or the last piece: "... expired reading the body from
  /// <url>". The connection is closed. It does not run while pause_reading() holds the response (it
  /// starts again at the resume), nor, with a body_producer, while the producer has nothing to
  /// send: before the head it runs only while written body bytes wait for the server (starting
  /// again each time the server took a write) and from finish() on. So an upload or a download may
  /// last as long as it takes, and a server that stops reading or sending fails it. For a proxy's
  /// 504, with request_timeout infinite.
  absl::Duration response_timeout = absl::ZeroDuration();
  /// Optional (zero or infinite: off): bounds the wait in the pool's FIFO queue, when all
  /// max_connections_per_host connections to the URL's host are busy (HAProxy's `timeout
  /// queue`). DeadlineExceeded "queue_timeout (..) expired: no free connection to <authority>
  /// (max_connections_per_host N) (METHOD URL, queued for a connection)". A fetch that got a
  /// connection in time is not affected, however long its exchange lasts. Each redirect hop
  /// that queues waits anew.
  absl::Duration queue_timeout = absl::ZeroDuration();
  /// Follows 301, 302, 303, 307 and 308 up to max_redirects times (see the file comment).
  bool follow_redirects = true;
  int max_redirects = 5;  ///< >= 0, else InvalidArgument
  /// Largest body kept in HTTPClientResponse::body: ResourceExhausted above it (checked against
  /// Content-Length at the head, then as bytes arrive). Not applied with a streaming_callback.
  size_t max_body_size = 64 * 1024 * 1024;
  /// The final response's head, once complete (before any of its body).
  absl::AnyInvocable<void(const HTTPResponseHead&)> header_callback;
  /// Each interim (1xx) response before the final one (100 Continue, 103 Early Hints, ...),
  /// with its fields as received; a proxy forwards them (RFC 9110 §15.2). Redirect responses'
  /// interim heads come too. An exception fails the fetch as header_callback's does.
  absl::AnyInvocable<void(const HTTPResponseHead&)> interim_callback;
  /// The final response's body pieces as they arrive, instead of HTTPClientResponse::body
  /// (which stays empty): one call per read that brought body bytes, however many chunks of a
  /// chunked body it held (the view is valid during the call only). See
  /// HTTPClient::pause_reading() for backpressure.
  absl::AnyInvocable<void(absl::string_view)> streaming_callback;
};

/// The final response of a fetch, owned by the fetch callback.
struct HTTPClientResponse {
  int status = 0;             ///< the status code
  std::string reason;         ///< the reason phrase as received
  int version_minor = 1;      ///< 0 for an HTTP/1.0 response
  HTTPHeaders headers;        ///< in arrival order
  std::string body;           ///< empty with a streaming_callback
  std::string effective_url;  ///< the URL of the final response, after redirects
  /// Where the time of the fetch went: each span starts on a fresh clock read and ends on
  /// IOLoop::iteration_time() (as do the timeouts: no clock read per step; a span is at most
  /// the iteration's work short).
  struct Timings {
    absl::Duration connect;        ///< the final exchange's connect (zero on a reused connection)
    absl::Duration first_byte;     ///< from the final request's first write to the first response
                                   ///< byte
    absl::Duration total;          ///< from fetch() to completion, queue and redirects included
  } timings;                       ///< where the time of the fetch went
  int redirects = 0;               ///< redirects followed
  bool reused_connection = false;  ///< the final exchange ran on a pooled connection
};

/// The options of an HTTPClient. Options that cannot work fail every fetch with
/// InvalidArgument naming the field (see the comment after the struct).
struct HTTPClientOptions {
  size_t max_connections_per_host = 8;  ///< > 0; a FIFO queue beyond it
  /// Pooled idle connections are closed after this. Zero: connections are not kept idle.
  /// InfiniteDuration(): kept until the server closes them.
  absl::Duration idle_timeout = absl::Seconds(60);
  /// Of a response head, with the interim (1xx) heads before it; > 0.
  size_t max_header_size = 64 * 1024;
  std::string user_agent = "ioloop";  ///< empty: no User-Agent field
  Resolver* resolver = nullptr;       ///< null: Resolver::instance(); must outlive the client
  /// Makes the transport of every https:// connection: a client-side TransportFactory,
  /// normally TLSContext::client(...) (ioloop/net/tls/tls_context.h) offering ALPN "http/1.1".
  /// It is asked for a transport to the URL's host and port, and that host is the name the
  /// server's certificate must prove (and the SNI). Its trust anchors decide which servers are
  /// accepted (TLSClientOptions: a CA file, or the system store). Shared: one context may serve
  /// many clients on many threads. Null: https:// fetches fail with FailedPrecondition.
  std::shared_ptr<const TransportFactory> tls;
};
// Options that cannot work (max_connections_per_host or max_header_size 0, a negative
// idle_timeout) fail every fetch with InvalidArgument naming the field.

/// Which of the request's own limits ended a fetch: connect_timeout, queue_timeout,
/// request_timeout or response_timeout.
enum class FetchTimeout { kNone, kConnect, kQueue, kRequest, kResponse };

/// The limit named in an error status an HTTPClient delivered, read from the status's payload
/// (not its message), for a program that answers each differently (a proxy: 502, 503, 504).
/// kNone for OK, for every other error (a socket's own ETIMEDOUT included: the kernel's, not a
/// limit of the request) and for statuses HTTPClient did not make. Any thread.
FetchTimeout fetch_timeout(const absl::Status& status);

/// An asynchronous HTTP/1.1 client with a keep-alive connection pool. Loop thread only; the
/// callback, error and retry rules are in the file comment of ioloop/net/http/http_client.h.
class HTTPClient {
 public:
  /// Runs exactly once on the loop thread: the final response, or the error.
  using FetchCallback = absl::AnyInvocable<void(absl::StatusOr<HTTPClientResponse>) &&>;

  /// Counters since construction, and the current pool (a snapshot; loop thread).
  struct Stats {
    uint64_t fetches = 0;             ///< fetch() calls
    uint64_t connections_opened = 0;  ///< connects that succeeded
    uint64_t connections_reused = 0;  ///< exchanges started on a pooled connection
    uint64_t retries = 0;             ///< keep-alive race retries
    uint64_t redirects = 0;           ///< redirects followed
    uint64_t idle_expired = 0;        ///< idle connections closed by idle_timeout
    size_t open_connections = 0;      ///< connecting, busy or idle
    size_t idle_connections = 0;      ///< pooled, waiting for a fetch
    size_t queued = 0;                ///< fetches waiting for a connection
    size_t pending = 0;               ///< fetches not yet completed
    /// scheme+host+port pools: those with a connection or a queued fetch (an unused one is
    /// freed on a later loop iteration).
    size_t hosts = 0;
  };

  /// A client on `loop` (which must outlive it); nothing is connected before the first fetch().
  explicit HTTPClient(IOLoop& loop, HTTPClientOptions options = {});
  /// Closes every connection and completes every pending fetch, in fetch order, from here:
  /// with Cancelled (or with the InvalidArgument it was already failing with). A fetch that one
  /// of those callbacks starts is completed here too, Cancelled, and never sent (so a callback
  /// that always fetches again keeps the destructor from returning).
  ~HTTPClient();
  HTTPClient(const HTTPClient&) = delete;
  HTTPClient& operator=(const HTTPClient&) = delete;

  /// Starts a fetch; returns its id (never 0) for cancel(). See the file comment.
  uint64_t fetch(HTTPClientRequest request, FetchCallback callback);
  /// Completes a pending fetch with Cancelled (inside this call). A connection in the middle of
  /// its exchange is closed, not pooled. False if `id` is not pending.
  bool cancel(uint64_t id);
  /// @{
  /// Backpressure for streaming_callback users: stop (and resume) reading the fetch's response
  /// from its connection. Body bytes of a read already made are still delivered (a pause in
  /// header_callback stops the reads after the head's, not the body that came with it). A pause
  /// holds for the whole fetch: a keep-alive retry's or a redirect hop's connection starts
  /// paused, and a pause made while the fetch waits for a connection applies to the one it
  /// gets. response_timeout does not run while paused; the resume starts it again, whole, if
  /// the server owes the fetch something then. The request_timeout still runs. False if `id` is
  /// not pending. A fetch that ends paused resumes reading before its connection goes back to
  /// the pool.
  bool pause_reading(uint64_t id);
  bool resume_reading(uint64_t id);
  /// @}

  /// A snapshot of the counters.
  Stats stats() const;

 private:
  std::shared_ptr<HTTPClientCore> core_;
};

}  // namespace ioloop::net

#endif  // IOLOOP_NET_HTTP_HTTP_CLIENT_H_
