// File: net/src/http/http_client_core.h (private)
// HTTPClientCore: what HTTPClient is made of, split by concern over several files:
//   http_client.cc           the public API, fetch start/completion, cancel, shutdown
//   http_client_pool.cc      the per-host pool: idle connections, the limit, the FIFO queue
//   http_client_exchange.cc  one request/response on a connection: writing the request (and a
//                            streamed body), response events, timeouts, retry, redirects
//   http_client_request.cc   validation and serialization of requests (no I/O)
//
// Lifetime (the library's one idiom, docs/architecture.md §18): HTTPClient owns the core through
// a shared_ptr, and the core owns each pending fetch through a shared_ptr (`fetches`, and the
// host's queue while it waits). Every loop callback (timers, connects, flush completions, the
// invalid-request delivery, a kept HTTPClientBodyWriter) holds weak_ptrs to the core and to its
// fetch and locks both for its run; a connection's events reach the fetch through the
// connection's weak `fetch`. A fetch that completed is marked `finished` (and dropped by the
// core), so a callback whose lock still succeeds, because a dispatch up the stack holds the
// fetch, does nothing. ~HTTPClient calls shutdown(), which sets `shut_down` and completes every
// fetch; a dispatch in progress keeps the core alive until it unwinds and checks `shut_down`
// (or `finished`) after each user callback. Ids remain only as the public API's handles
// (cancel, pause_reading) and as the tag of a connection's exchange.
#ifndef IOLOOP_NET_SRC_HTTP_HTTP_CLIENT_CORE_H_
#define IOLOOP_NET_SRC_HTTP_HTTP_CLIENT_CORE_H_

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "http/http_client_connection.h"
#include "ioloop/io_loop.h"
#include "ioloop/net/http/http_client.h"
#include "ioloop/net/http/url.h"
#include "ioloop/net/tcp_client.h"

namespace ioloop::net {

// The origin of the last URL a fetch named, parsed once: a client whose fetches go to one
// server (a proxy's upstream) parses only the rest of each URL and builds no pool key.
struct LastOrigin {
  std::string text;  // url.origin(); empty before the first URL
  URL url;           // scheme, host and port; no target
  std::string key;   // pool_key(url)
  // The last URL parse() accepted is its own canonical text (URL::to_string() would give it
  // back): known without a comparison when only its target was parsed and kept as written.
  bool canonical = false;

  // URL::parse(u), the same result, errors included; afterwards `key` is the pool key of an
  // accepted URL.
  absl::StatusOr<URL> parse(absl::string_view u);
};

struct ClientFetch {
  enum class Phase { kNew, kQueued, kConnecting, kExchange };

  uint64_t id = 0;
  // Completed (or abandoned by shutdown()): nothing may touch it any more but to drop it.
  bool finished = false;
  HTTPClientRequest request;
  HTTPClient::FetchCallback callback;
  absl::Status invalid;  // a validation error, delivered from the loop
  URL url;
  bool url_is_request_text = false;  // request.url is url.to_string() (LastOrigin::canonical)
  std::string key;                   // the pool's (pool_key(url))
  HTTPMethod method = HTTPMethod::kGet;
  Phase phase = Phase::kNew;
  std::shared_ptr<ClientConnection> conn;
  TimeoutHandle queue_timer;  // queue_timeout, while queued with one
  // The current exchange's request_timeout and response_timeout, as deadlines (zero: none),
  // watched by its connection's timer (HTTPClientCore::wake_at()).
  TimePoint deadline{};
  TimePoint response_deadline{};
  // The caller's pause_reading() holds: the connection is not read and response_timeout does
  // not run. For the whole fetch: the keep-alive retry's and each redirect hop's connection
  // start paused.
  bool paused = false;
  bool head_received = false;
  bool redirecting = false;  // the current response is a redirect being followed
  std::string location;
  size_t redirect_body_read = 0;  // bytes of that redirect's body read and dropped
  bool retried = false;
  int redirects = 0;
  HTTPClientResponse response;
  TimePoint started{};
  TimePoint connect_started{};
  TimePoint request_started{};
  absl::Duration connect_time;
  // Streamed upload (body_producer).
  bool chunked_upload = false;
  std::optional<size_t> upload_length;  // a Content-Length the producer must match
  size_t uploaded = 0;
  size_t writes_in_flight = 0;  // writer writes not yet flushed (head included)
  // Counts exchanges: a flush callback of an earlier one (a connection reused by a redirect
  // before its upload's flushes ran) must not count in the current one.
  uint64_t exchange_serial = 0;
  bool upload_done = false;  // finish() called (always true without a producer)
  bool in_producer = false;
  bool streamed_body = false;  // the request's body comes from a body_producer
};

using FetchPtr = std::shared_ptr<ClientFetch>;

// Where the fetch is, for its error messages: "starting", "queued for a connection",
// "connecting", "sending the request", "waiting for the response", "reading the head" or
// "reading the body". `response_started`: a byte of the current response arrived.
const char* phase_name(const ClientFetch& f, bool response_started);
// `status` as the fetch's error: its message followed by " (METHOD URL, PHASE)", the request
// of this hop and phase_name(). The stream's file descriptor ("socket fd N: ", "IOStream: write
// to fd N: ", "IOStream: read from fd N: ") means nothing to the caller and goes, wherever it is
// in the message.
absl::Status in_context(const ClientFetch& f, const absl::Status& status, bool response_started);
// The same with the phase named by the caller.
absl::Status in_context(const ClientFetch& f, const absl::Status& status, const char* phase);
// `status` (a DeadlineExceeded) marked as the expiry of `which`, for fetch_timeout().
absl::Status mark_timeout(absl::Status status, FetchTimeout which);

class HTTPClientCore : public ClientConnection::Owner,
                       public std::enable_shared_from_this<HTTPClientCore> {
 public:
  HTTPClientCore(IOLoop& loop, HTTPClientOptions options);
  ~HTTPClientCore() override;

  // --- http_client.cc ---------------------------------------------------------------------
  // By reference: HTTPClient::fetch's parameters are moved once, into the ClientFetch.
  uint64_t fetch(HTTPClientRequest&& request, HTTPClient::FetchCallback&& callback);
  bool cancel(uint64_t id);
  bool pause_reading(uint64_t id, bool pause);
  HTTPClient::Stats stats() const;
  void shutdown();
  // shutdown()'s round: completes every fetch in `fetches` (Cancelled, or its invalid status).
  void complete_pending();
  // The pending fetch with this id (a public API handle), or null.
  FetchPtr find(uint64_t id) const;
  // Completes the fetch (marking it finished and removing it) with `result`; the connection it
  // holds, if any, is closed and dropped from the pool. Runs the user's callback last: the
  // caller must check shut_down before touching anything else. No-op if already finished.
  void complete(FetchPtr f, absl::StatusOr<HTTPClientResponse> result);
  void fail(FetchPtr f, absl::Status status) { complete(std::move(f), std::move(status)); }
  // Runs user code; on an exception fails the fetch with Internal and returns false. Also false
  // if the fetch finished (or the client shut down) when it returns. `phase` names where the
  // fetch is in that error (a head's callbacks run once the head is read, so phase_name()
  // would say "reading the body"); null: phase_name()'s.
  template <typename F>
  bool call_user(const FetchPtr& f, const char* what, const char* phase, F&& fn) {
    absl::Status s = loop.invoke_guarded(what, std::forward<F>(fn));
    if (shut_down) return false;
    if (!s.ok()) {
      if (!f->finished) {
        fail(f, in_context(*f, s, phase != nullptr ? phase : phase_name(*f, f->head_received)));
      }
      return false;
    }
    return !f->finished;
  }

  // --- http_client_pool.cc ----------------------------------------------------------------
  // Gives the fetch a connection: an idle one, a new one, or a place in the queue.
  void acquire(const FetchPtr& f);
  void connect(const FetchPtr& f);
  // A connection finished an exchange and may be reused: to the queue's head, else idle.
  void release(std::shared_ptr<ClientConnection> conn);
  // A connection closed (or is closed now): no longer counted; the queue may connect.
  void drop(ClientConnection& conn);
  // True when `conn` must not carry `f`, which is then closed and dropped: a request that would
  // not be retried (POST, PATCH, a streamed body) does not go on a connection whose peer
  // already closed it or sent bytes nobody asked for (ClientConnection::stale(): one
  // recv(MSG_PEEK)). Retriable requests pay nothing (the retry covers them), unless the last
  // response had no body: a server that sends one anyway (HEAD, 204, 304) would have it taken
  // for this request's response.
  bool discard_if_closed_for(const ClientFetch& f, ClientConnection& conn);
  // Connects queued fetches while the pool has room; an emptied pool is freed later.
  void dispatch_queue(const std::string& key);
  void schedule_pool_sweep();
  // The fetch waits for a connection to its host (phase kQueued), with its queue_timeout.
  void enqueue(const FetchPtr& f);
  // The fetch leaves the queue for a connection: its queue_timeout stops.
  void dequeued(ClientFetch& f);
  void on_queue_timeout(const FetchPtr& f);
  void expire_idle(const std::shared_ptr<ClientConnection>& conn);

  // --- http_client_exchange.cc ------------------------------------------------------------
  void start_exchange(const FetchPtr& f, std::shared_ptr<ClientConnection> conn, bool reused);
  void on_request_timeout(const FetchPtr& f, bool response_timeout);
  void stop_timers(ClientFetch& f);
  // Makes `conn`'s timer fire at `when` or earlier (a no-op when it already does).
  void wake_at(const std::shared_ptr<ClientConnection>& conn, TimePoint when);
  // `conn`'s timer fired: expires it if idle past idle_until, times out its exchange if past a
  // deadline, else re-arms for the next of them.
  void on_connection_timer(const std::shared_ptr<ClientConnection>& conn);
  void on_upload_flushed(const FetchPtr& f, absl::Status status);
  // Sets f's response_timeout deadline to `from` + response_timeout (if it has one): it bounds
  // the server's silence, so a streamed upload, each body piece and pause_reading() stop and
  // start it (see HTTPClientRequest::response_timeout). `from` is loop.iteration_time() for an
  // event, loop.time() where the caller's code calls in (the producer's writer, a resume): that
  // code may come after a callback that held the loop longer than the timeout.
  void restart_response_timeout(const FetchPtr& f, TimePoint from);
  // Whether the server owes the fetch something now, so that its silence counts: the head came
  // (the body's next piece), or written bytes wait for it, or the request is complete.
  static bool server_owes(const ClientFetch& f) {
    return f.head_received || f.writes_in_flight > 0 || f.upload_done;
  }
  // A flush callback for `f`'s upload (weak: a flush after the fetch ended does nothing).
  IOStream::WriteCallback upload_flushed_callback(const FetchPtr& f);
  void run_producer(const FetchPtr& f);
  bool writer_write(const FetchPtr& f, std::string chunk);
  bool writer_finish(const FetchPtr& f);
  bool writer_active(const FetchPtr& f) const;
  void follow_redirect(const FetchPtr& f);
  // Follows the redirect before its body ended: its connection, with the rest on it, closes.
  void follow_redirect_now(const FetchPtr& f);
  // The pending fetch whose exchange `exchange` runs on `c`, or null (a late event).
  FetchPtr fetch_of(ClientConnection& c, uint64_t exchange) const;
  // ClientConnection::Owner
  void on_head(ClientConnection& c, uint64_t exchange, HTTPResponseHead head) override;
  void on_interim(ClientConnection& c, uint64_t exchange, HTTPResponseHead head) override;
  void on_body(ClientConnection& c, uint64_t exchange, absl::string_view data) override;
  void on_complete(ClientConnection& c, uint64_t exchange, bool reusable) override;
  void on_failed(ClientConnection& c, uint64_t exchange, absl::Status status,
                 bool response_started) override;
  void on_idle_closed(ClientConnection& c) override;

  IOLoop& loop;
  const HTTPClientOptions options;
  const absl::Status options_status;
  TCPClient tcp;
  bool shut_down = false;
  bool pool_sweep_scheduled = false;
  uint64_t next_id = 1;
  absl::flat_hash_map<uint64_t, FetchPtr> fetches;  // the pending ones, by public id

  struct HostPool {
    std::vector<std::shared_ptr<ClientConnection>> idle;  // most recently used last
    std::deque<FetchPtr> queue;                           // waiting for a connection, FIFO
    size_t open = 0;                                      // connecting, busy or idle
    // No connection and no fetch waiting: the pool may be freed.
    bool unused() const { return open == 0 && queue.empty(); }
  };
  // Boxed, so that a pool stays where it is while the map grows: its users hold a reference
  // across calls that may run user code, which may start a fetch to a new host.
  absl::flat_hash_map<std::string, std::unique_ptr<HostPool>> pools;
  // The pool for `key`, made if there is none.
  HostPool& pool_of(const std::string& key);
  HTTPClient::Stats counters;
  LastOrigin last_origin;
  // Where each request is serialized before the connection copies what the kernel does not
  // take at once: its storage is kept between requests (up to kKeptRequestCapacity).
  std::string request_text;
  static constexpr size_t kKeptRequestCapacity = 16 * 1024;
  // A redirect's body (dropped) is read up to this to keep its connection; past it, or if
  // Content-Length says more, the connection is closed and the redirect followed at once.
  static constexpr size_t kMaxRedirectBodyRead = 64 * 1024;
};

// --- http_client_request.cc ---------------------------------------------------------------
// InvalidArgument naming the field, for options that cannot work.
absl::Status validate_options(const HTTPClientOptions& options);
// Checks the request and parses its URL (http or https) through `origins`. InvalidArgument.
absl::StatusOr<URL> validate_request(const HTTPClientRequest& request, LastOrigin& origins);
// FailedPrecondition, naming the option, for an https URL on a client without options.tls.
absl::Status check_transport(const URL& url, const HTTPClientOptions& options);
// The request line and fields (ending with the empty line), and the body when it is a string,
// into `out` (replacing what it held; its storage is reused). Sets f.chunked_upload /
// f.upload_length for a body_producer.
void serialize_request(ClientFetch& f, const HTTPClientOptions& options, std::string& out);
// The pool key of a URL: the same for URLs of one scheme, host and port (an explicit default
// port included). Opaque and short: a scheme letter, the port's two bytes, the host.
std::string pool_key(const URL& url);
// RFC 9110 §9.2.2.
bool idempotent(absl::string_view method);
// Whether the keep-alive race may retry `f` (see http_client.h): once, an idempotent method
// whose body can be sent again (not a body_producer's).
bool retriable(const ClientFetch& f);
// The request for following a redirect of `status` to `target` (see http_client.h). False if it
// must not be followed (a 307/308 with a body_producer).
bool rewrite_for_redirect(ClientFetch& f, int status, const URL& target);

}  // namespace ioloop::net

#endif  // IOLOOP_NET_SRC_HTTP_HTTP_CLIENT_CORE_H_
