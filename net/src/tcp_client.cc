#include "ioloop/net/tcp_client.h"

#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "ioloop/logging.h"

namespace ioloop::net {

namespace {

// Options that would turn the retry path into a busy loop are refused (point 9 of issue 7).
absl::Status validate(const RetryPolicy& retry) {
  if (retry.initial_delay <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        absl::StrCat("RetryPolicy.initial_delay must be positive (got ",
                     absl::FormatDuration(retry.initial_delay), "): retries would spin"));
  }
  if (retry.max_delay < retry.initial_delay) {
    return absl::InvalidArgumentError(
        absl::StrCat("RetryPolicy.max_delay must be at least initial_delay (got ",
                     absl::FormatDuration(retry.max_delay), " < ",
                     absl::FormatDuration(retry.initial_delay), ")"));
  }
  if (!(retry.multiplier >= 1.0)) {  // also NaN
    return absl::InvalidArgumentError(
        absl::StrCat("RetryPolicy.multiplier must be at least 1 (got ", retry.multiplier,
                     "): the delay would shrink towards zero"));
  }
  if (retry.max_attempts < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("RetryPolicy.max_attempts must be 0 (no limit) or positive (got ",
                     retry.max_attempts, ")"));
  }
  return absl::OkStatus();
}

// What a connection's failure is whatever its errno (connect(), or SO_ERROR later): the address
// could not be reached, Unavailable, the errno's text kept. abseil's mapping would make the
// kernel's ETIMEDOUT a DeadlineExceeded, which is the client's own `timeout`, and
// EADDRNOTAVAIL (no ephemeral port left) AlreadyExists.
absl::Status connection_failed(absl::string_view message) {
  return absl::UnavailableError(message);
}

// DeadlineExceeded from the client is its own `timeout` or handshake_timeout, which callers
// tell by the code (HTTPClient names it connect_timeout): one from a lookup or a socket (the
// kernel's ETIMEDOUT) is Unavailable.
absl::Status not_our_deadline(absl::Status error) {
  return absl::IsDeadlineExceeded(error) ? absl::UnavailableError(error.message()) : error;
}

// Options under which an attempt would end before it began, or never try: refused up front.
absl::Status validate(const ConnectOptions& o) {
  if (o.timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(absl::StrCat("ConnectOptions.timeout must be positive (got ",
                                                   absl::FormatDuration(o.timeout), ")"));
  }
  if (o.handshake_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        absl::StrCat("ConnectOptions.handshake_timeout must be positive (got ",
                     absl::FormatDuration(o.handshake_timeout), ")"));
  }
  if (o.happy_eyeballs_delay < absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        absl::StrCat("ConnectOptions.happy_eyeballs_delay must not be negative (got ",
                     absl::FormatDuration(o.happy_eyeballs_delay), ")"));
  }
  if (o.family != AF_UNSPEC && o.family != AF_INET && o.family != AF_INET6) {
    return absl::InvalidArgumentError(absl::StrCat(
        "ConnectOptions.family must be AF_UNSPEC, AF_INET or AF_INET6 (got ", o.family, ")"));
  }
  return absl::OkStatus();
}

}  // namespace

// What one connect() asked for. It moves from try to try (retries), and completing the
// connect consumes it.
struct TCPClient::Request {
  std::string host;
  uint16_t port = 0;
  std::vector<SocketAddress> given;  // connect_to(): no resolution
  ConnectOptions options;
  ConnectCallback cb;
  std::optional<RetryPolicy> retry;
  int tries = 0;
  absl::Duration retry_delay;
};

// One try of a connect: its resolution, its Happy Eyeballs race and its TLS handshake, or,
// for a retry, the back-off before it starts. The lifetime idiom (docs/architecture.md,
// "Lifetimes"): the client owns each try it still wants through a shared_ptr (State::tries);
// every callback the try hands to the loop, the resolver or a stream holds a weak_ptr and
// locks it (bind_try). Abandoning a try (completion, a timeout, a retry, the client's
// destruction) cancels what it started and drops the client's reference, so whatever
// callback of it still arrives finds nothing. The weak_ptr is all such a callback holds, so
// it may be destroyed on any thread (the resolver drops callbacks on its own threads).
struct TCPClient::Try {
  // The client that owns this try; null once it let the try go (the lock of a callback that
  // is still running may keep the try itself a little longer).
  State* client = nullptr;
  Request request;
  TimeoutHandle retry_timer;               // a retry's back-off, before the try starts
  Resolver::RequestId lookup = 0;          // in the resolver's hands; 0: none
  std::vector<SocketAddress> families[2];  // [0] primary, [1] secondary
  size_t next_index[2] = {0, 0};
  bool primary_failed = false;  // an address of the primary family failed
  bool secondary_started = false;
  struct InFlight {
    Socket socket;
    int family_index;
    SocketAddress address;
  };
  std::vector<InFlight> in_flight;
  absl::Status last_error;
  TimeoutHandle deadline_timer;
  TimeoutHandle eyeballs_timer;
  // TLS: the connection that won, while its handshake runs.
  std::shared_ptr<IOStream> handshaking;
  TimeoutHandle handshake_timer;
};

struct TCPClient::State {
  State(IOLoop& l, Resolver* r) : loop(l), resolver(r) {}

  IOLoop& loop;
  Resolver* resolver;
  // The tries the client still wants, one per pending connect.
  absl::flat_hash_map<const Try*, std::shared_ptr<Try>> tries;

  // Adds a try for `request`; it starts when its caller says.
  Try* add_try(Request request) {
    auto t = std::make_shared<Try>();
    t->client = this;
    t->request = std::move(request);
    Try* raw = t.get();
    tries.emplace(raw, std::move(t));
    return raw;
  }

  // Every callback a try hands out goes through here: `fn(state, try, args...)` runs only
  // while the client still owns the try. The lock keeps the try alive while `fn` runs, even
  // if `fn` lets it go or its user callback destroys the client.
  template <typename F>
  auto bind_try(Try* t, F fn) {
    return [weak = std::weak_ptr<Try>(tries.at(t)), fn = std::move(fn)](auto&&... args) mutable {
      std::shared_ptr<Try> locked = weak.lock();
      if (!locked || locked->client == nullptr) return;
      fn(*locked->client, locked.get(), std::forward<decltype(args)>(args)...);
    };
  }

  void start_try(Try* t) {
    ++t->request.tries;
    t->deadline_timer = loop.call_later(
        t->request.options.timeout, bind_try(t, [](State& self, Try* at) {
          at->deadline_timer = TimeoutHandle();
          self.fail_try(
              at, absl::DeadlineExceededError(absl::StrCat(
                      "connect to ", at->request.host, ":", at->request.port, " timed out after ",
                      absl::FormatDuration(at->request.options.timeout))));
        }));
    if (!t->request.given.empty()) {
      // Still asynchronous, so the callback never runs inside connect_to().
      loop.add_callback(
          bind_try(t, [](State& self, Try* at) { self.on_resolved(at, at->request.given); }));
      return;
    }
    t->lookup = resolver->resolve(
        loop, t->request.host, t->request.port, t->request.options.family,
        bind_try(t, [](State& self, Try* at, absl::StatusOr<std::vector<SocketAddress>> addrs) {
          at->lookup = 0;
          self.on_resolved(at, std::move(addrs));
        }));
  }

  void on_resolved(Try* t, absl::StatusOr<std::vector<SocketAddress>> addrs) {
    if (!addrs.ok()) return fail_try(t, not_our_deadline(addrs.status()));
    if (addrs->empty()) return fail_try(t, absl::UnavailableError("no address to connect to"));
    // Primary family: the resolver's first choice; the rest of its family keeps its order.
    const int primary = addrs->front().family();
    for (SocketAddress& addr : *addrs) {
      t->families[addr.family() == primary ? 0 : 1].push_back(addr);  // trivially copyable
    }
    if (!t->families[1].empty()) {
      t->eyeballs_timer = loop.call_later(t->request.options.happy_eyeballs_delay,
                                          bind_try(t, [](State& self, Try* at) {
                                            at->eyeballs_timer = TimeoutHandle();
                                            self.start_secondary(at);
                                            self.settle(at);
                                          }));
    }
    start_next(t, 0);
    settle(t);
  }

  // Happy Eyeballs as Tornado's _Connector. Each family is a chain that tries its addresses
  // one at a time, moving on when one fails. The primary chain starts at once; the
  // secondary when `happy_eyeballs_delay` expires or at the first failure of a primary
  // address, whichever comes first. The first connection made wins.

  // Tornado's try_connect: starts the next address of family `fi`, if it has one left. One
  // that fails at once (no socket, no route) is a failure like one reported later.
  void start_next(Try* t, int fi) {
    while (t->next_index[fi] < t->families[fi].size()) {
      const SocketAddress addr = t->families[fi][t->next_index[fi]++];
      absl::Status s = start_connect(t, fi, addr);
      if (s.ok()) return;
      note_failure(t, fi, std::move(s));
    }
  }

  absl::Status start_connect(Try* t, int fi, const SocketAddress& addr) {
    absl::StatusOr<Socket> sock = Socket::create(addr.family());
    // Out of fds or memory stays ResourceExhausted; anything else (EAFNOSUPPORT without IPv6)
    // is this address failing.
    if (!sock.ok() && !absl::IsResourceExhausted(sock.status())) {
      return connection_failed(
          absl::StrCat("connect ", addr.to_string(), ": ", sock.status().message()));
    }
    if (!sock.ok()) return sock.status();
    // A non-blocking connect() interrupted by a signal goes on asynchronously, as one that
    // returned EINPROGRESS.
    if (::connect(sock->fd(), addr.get(), addr.length()) != 0 && errno != EINPROGRESS &&
        errno != EINTR) {
      return connection_failed(
          absl::ErrnoToStatus(errno, absl::StrCat("connect ", addr.to_string())).message());
    }
    absl::Status s = loop.add_handler(
        sock->fd(),
        bind_try(t, [](State& self, Try* at, int fd, uint32_t) { self.on_connect_ready(at, fd); }),
        WRITE);
    // The loop cannot watch one more fd (select's FD_SETSIZE, epoll's max_user_watches).
    if (!s.ok()) return absl::ResourceExhaustedError(s.message());
    t->in_flight.push_back(Try::InFlight{*std::move(sock), fi, addr});
    return absl::OkStatus();
  }

  void note_failure(Try* t, int fi, absl::Status error) {
    t->last_error = std::move(error);
    if (fi == 0) t->primary_failed = true;
  }

  void start_secondary(Try* t) {
    if (t->secondary_started) return;
    t->secondary_started = true;
    loop.remove_timeout(t->eyeballs_timer);
    t->eyeballs_timer = TimeoutHandle();
    start_next(t, 1);
  }

  // Ends every event of a try. A failure in the primary family starts the secondary one
  // (Tornado's on_connect_done calls on_timeout). A chain with addresses left always has one
  // in flight, so nothing in flight means every started chain is used up, and the secondary
  // one has started too (the primary's failures started it): the try failed. Must be the
  // caller's last step, since failing may complete the connect.
  void settle(Try* t) {
    if (t->primary_failed) start_secondary(t);
    if (!t->in_flight.empty()) return;
    fail_try(
        t, t->last_error.ok() ? absl::UnavailableError("no address to connect to") : t->last_error);
  }

  void on_connect_ready(Try* t, int fd) {
    auto it = std::find_if(t->in_flight.begin(), t->in_flight.end(),
                           [fd](const Try::InFlight& f) { return f.socket.fd() == fd; });
    if (it == t->in_flight.end()) return;
    loop.remove_handler(fd);
    Try::InFlight done = std::move(*it);
    t->in_flight.erase(it);
    if (absl::Status err = done.socket.take_error(); !err.ok()) {
      note_failure(t, done.family_index,
                   connection_failed(
                       absl::StrCat("connect ", done.address.to_string(), ": ", err.message())));
      start_next(t, done.family_index);
      return settle(t);
    }
    const ConnectOptions& options = t->request.options;
    if (options.nodelay) (void)done.socket.set_nodelay(true);
    std::unique_ptr<Transport> transport;
    if (options.tls) {
      // The host's name, or its address without the brackets that only say where the port
      // is ("[::1]"): sent as SNI unless an IP literal, and what the certificate must match.
      absl::string_view name = options.server_name;
      if (name.empty()) {
        name = t->request.host;
        if (name.size() >= 2 && name.front() == '[' && name.back() == ']') {
          name = name.substr(1, name.size() - 2);
        }
      }
      absl::StatusOr<std::unique_ptr<Transport>> made =
          options.tls->client_transport(done.socket.fd(), name, t->request.port);
      if (!made.ok()) return complete(t, made.status());
      transport = *std::move(made);
    }
    IOStreamOptions stream_options = options.stream_options;
    stream_options.socket_nonblocking = true;  // Socket::create made it so
    std::shared_ptr<IOStream> stream =
        IOStream::create(loop, std::move(done.socket), stream_options, std::move(transport));
    if (!options.tls) return complete(t, std::move(stream));
    start_handshake(t, std::move(stream));
  }

  // The first connection made wins (the others stop now) and must finish its handshake
  // within handshake_timeout. The stream holds its handshake callback, which holds the try
  // weakly, as everywhere else.
  void start_handshake(Try* t, std::shared_ptr<IOStream> stream) {
    for (Try::InFlight& f : t->in_flight) loop.remove_handler(f.socket.fd());
    t->in_flight.clear();
    loop.remove_timeout(t->eyeballs_timer);
    t->eyeballs_timer = TimeoutHandle();
    t->handshaking = stream;
    const absl::Duration limit = t->request.options.handshake_timeout;
    t->handshake_timer =
        loop.call_later(limit, bind_try(t, [limit](State&, Try* at) {
                          at->handshake_timer = TimeoutHandle();
                          at->handshaking->close(absl::DeadlineExceededError(absl::StrCat(
                              "TLS handshake not finished within ", absl::FormatDuration(limit))));
                        }));
    stream->wait_for_handshake(bind_try(t, [](State& self, Try* at, absl::Status status) {
      std::shared_ptr<IOStream> s = std::move(at->handshaking);
      // The timer above clears its handle before it closes the stream: with the handle still
      // set, a DeadlineExceeded is the socket's (the kernel's ETIMEDOUT), not handshake_timeout.
      if (!status.ok() && at->handshake_timer.valid()) status = not_our_deadline(status);
      if (!status.ok()) return self.complete(at, std::move(status));
      self.complete(at, std::move(s));
    }));
  }

  // Stops everything the try started, its lookup included, and lets it go: the callbacks
  // it handed out find nothing from here on. Returns what the connect asked for.
  Request abandon_try(Try* t) {
    t->client = nullptr;
    if (t->lookup != 0) {
      resolver->cancel(t->lookup);
      t->lookup = 0;
    }
    for (Try::InFlight& f : t->in_flight) loop.remove_handler(f.socket.fd());
    t->in_flight.clear();
    loop.remove_timeout(t->deadline_timer);
    loop.remove_timeout(t->eyeballs_timer);
    loop.remove_timeout(t->retry_timer);
    loop.remove_timeout(t->handshake_timer);
    t->deadline_timer = t->eyeballs_timer = t->retry_timer = t->handshake_timer = TimeoutHandle();
    if (std::shared_ptr<IOStream> s = std::move(t->handshaking)) {
      s->close(absl::CancelledError("TCPClient: connection attempt abandoned"));
    }
    Request request = std::move(t->request);
    tries.erase(t);  // `t` may be gone from here on
    return request;
  }

  void fail_try(Try* t, absl::Status status) {
    Request request = abandon_try(t);
    if (request.retry &&
        (request.retry->max_attempts == 0 || request.tries < request.retry->max_attempts)) {
      const absl::Duration delay = request.retry_delay;
      request.retry_delay =
          std::min(request.retry->max_delay, request.retry_delay * request.retry->multiplier);
      Try* next = add_try(std::move(request));
      next->retry_timer = loop.call_later(delay, bind_try(next, [](State& self, Try* at) {
                                            at->retry_timer = TimeoutHandle();
                                            self.start_try(at);
                                          }));
      return;
    }
    run_callback(loop, std::move(request.cb), std::move(status));
  }

  void complete(Try* t, absl::StatusOr<std::shared_ptr<IOStream>> result) {
    Request request = abandon_try(t);
    // Last: the callback may destroy the client (the callback's lock keeps the try alive,
    // and nothing touches the client afterwards).
    run_callback(loop, std::move(request.cb), std::move(result));
  }

  // Runs a user callback. An exception from it is the loop's to log and count; it must not
  // unwind through the client (nor out of ~TCPClient, where it would terminate).
  static void run_callback(IOLoop& loop, ConnectCallback cb,
                           absl::StatusOr<std::shared_ptr<IOStream>> result) {
    loop.invoke_guarded("TCPClient connect callback", [&] { std::move(cb)(std::move(result)); })
        .IgnoreError();
  }
};

TCPClient::TCPClient(IOLoop& loop, Resolver* resolver)
    : state_(std::make_unique<State>(loop, resolver ? resolver : &Resolver::instance())) {}

TCPClient::~TCPClient() {
  // Rounds: a Cancelled callback may connect again (a retry on error); that try is cancelled
  // in the next round, so every callback runs once (one that always reconnects keeps the
  // destructor from returning, as HTTPClient's).
  while (!state_->tries.empty()) {
    std::vector<ConnectCallback> cancelled;
    while (!state_->tries.empty()) {
      cancelled.push_back(state_->abandon_try(state_->tries.begin()->second.get()).cb);
    }
    for (ConnectCallback& cb : cancelled) {
      State::run_callback(
          state_->loop, std::move(cb),
          absl::CancelledError("TCPClient destroyed before the connection was made"));
    }
  }
}

void TCPClient::connect(std::string host, uint16_t port, ConnectCallback cb,
                        ConnectOptions options) {
  begin(std::move(host), port, {}, std::move(cb), std::nullopt, std::move(options));
}

void TCPClient::connect_with_retry(std::string host, uint16_t port, ConnectCallback cb,
                                   RetryPolicy retry, ConnectOptions options) {
  absl::Status valid = validate(retry);
  begin(std::move(host), port, {}, std::move(cb), retry, std::move(options), std::move(valid));
}

void TCPClient::connect_to(std::vector<SocketAddress> addresses, ConnectCallback cb,
                           ConnectOptions options) {
  if (addresses.empty()) {
    begin("", 0, {}, std::move(cb), std::nullopt, std::move(options),
          absl::InvalidArgumentError("connect_to: no addresses"));
    return;
  }
  // ConnectOptions::family holds here as for a name looked up: only that family is tried.
  if (options.family == AF_INET || options.family == AF_INET6) {
    const int family = options.family;
    std::erase_if(addresses, [family](const SocketAddress& a) { return a.family() != family; });
    if (addresses.empty()) {
      begin("", 0, {}, std::move(cb), std::nullopt, std::move(options),
            absl::InvalidArgumentError(
                absl::StrCat("connect_to: no address of the family asked for (",
                             family == AF_INET ? "AF_INET" : "AF_INET6", ")")));
      return;
    }
  }
  std::string host = addresses.front().host();
  const uint16_t port = addresses.front().port();
  begin(std::move(host), port, std::move(addresses), std::move(cb), std::nullopt,
        std::move(options));
}

void TCPClient::begin(std::string host, uint16_t port, std::vector<SocketAddress> addresses,
                      ConnectCallback cb, std::optional<RetryPolicy> retry, ConnectOptions options,
                      absl::Status invalid) {
  if (!cb) {  // nobody to tell anything: a caller's bug, which must not crash the loop later
    logger().error("TCPClient: connect with an empty callback ignored");
    return;
  }
  if (invalid.ok() && host.find('\0') != std::string::npos) {
    invalid = absl::InvalidArgumentError("TCPClient: host name contains a NUL byte");
  }
  if (invalid.ok()) invalid = validate(options);
  Request request;
  request.host = std::move(host);
  request.port = port;
  request.given = std::move(addresses);
  request.options = std::move(options);
  request.cb = std::move(cb);
  request.retry = retry;
  if (retry) request.retry_delay = retry->initial_delay;
  Try* t = state_->add_try(std::move(request));
  if (!invalid.ok()) {
    // A pending connect like any other (destroying the client cancels it), completed from
    // the loop so that the callback never runs inside the call that was given it.
    state_->loop.add_callback(
        state_->bind_try(t, [invalid = std::move(invalid)](State& self, Try* at) mutable {
          self.complete(at, std::move(invalid));
        }));
    return;
  }
  state_->start_try(t);
}

size_t TCPClient::pending() const { return state_->tries.size(); }

}  // namespace ioloop::net
