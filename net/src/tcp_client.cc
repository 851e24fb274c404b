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

}  // namespace

struct TCPClient::Attempt {
  uint64_t id = 0;
  std::string host;
  uint16_t port = 0;
  std::vector<SocketAddress> given;  // connect_to(): no resolution
  ConnectOptions options;
  ConnectCallback cb;
  std::optional<RetryPolicy> retry;
  int tries = 0;
  absl::Duration retry_delay;

  // State of the current try; `generation` makes callbacks of an abandoned try stale.
  uint64_t generation = 0;
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
  TimeoutHandle retry_timer;
  // TLS: the connection that won, while its handshake runs.
  std::shared_ptr<IOStream> handshaking;
  TimeoutHandle handshake_timer;
};

struct TCPClient::State : std::enable_shared_from_this<TCPClient::State> {
  State(IOLoop& l, Resolver* r) : loop(l), resolver(r) {}

  IOLoop& loop;
  Resolver* resolver;
  uint64_t next_id = 1;
  absl::flat_hash_map<uint64_t, std::unique_ptr<Attempt>> attempts;

  // Every callback a try hands to the loop or the resolver goes through here: `fn(self,
  // attempt, args...)` runs only if the client still exists and `a`'s current try is the
  // one that made the callback (the client's destruction, completion, a timeout or a retry
  // make it stale). It captures only a weak_ptr and two integers, so it may be destroyed on
  // any thread (the resolver drops callbacks on its own threads).
  template <typename F>
  auto bind_try(const Attempt* a, F fn) {
    return [weak = weak_from_this(), id = a->id, gen = a->generation,
            fn = std::move(fn)](auto&&... args) mutable {
      std::shared_ptr<State> self = weak.lock();
      if (!self) return;
      auto it = self->attempts.find(id);
      if (it == self->attempts.end() || it->second->generation != gen) return;
      fn(*self, it->second.get(), std::forward<decltype(args)>(args)...);
    };
  }

  void start_try(Attempt* a) {
    ++a->generation;
    ++a->tries;
    a->families[0].clear();
    a->families[1].clear();
    a->next_index[0] = a->next_index[1] = 0;
    a->primary_failed = a->secondary_started = false;
    a->last_error = absl::OkStatus();
    a->deadline_timer = loop.call_later(
        a->options.timeout, bind_try(a, [](State& self, Attempt* at) {
          at->deadline_timer = TimeoutHandle();
          self.fail_try(at, absl::DeadlineExceededError(absl::StrCat(
                                "connect to ", at->host, ":", at->port, " timed out after ",
                                absl::FormatDuration(at->options.timeout))));
        }));
    if (!a->given.empty()) {
      // Still asynchronous, so the callback never runs inside connect_to().
      loop.add_callback(
          bind_try(a, [](State& self, Attempt* at) { self.on_resolved(at, at->given); }));
      return;
    }
    a->lookup = resolver->resolve(
        loop, a->host, a->port, a->options.family,
        bind_try(a, [](State& self, Attempt* at, absl::StatusOr<std::vector<SocketAddress>> addrs) {
          at->lookup = 0;
          self.on_resolved(at, std::move(addrs));
        }));
  }

  void on_resolved(Attempt* a, absl::StatusOr<std::vector<SocketAddress>> addrs) {
    if (!addrs.ok()) return fail_try(a, addrs.status());
    if (addrs->empty()) return fail_try(a, absl::UnavailableError("no address to connect to"));
    // Primary family: the resolver's first choice; the rest of its family keeps its order.
    const int primary = addrs->front().family();
    for (SocketAddress& addr : *addrs) {
      a->families[addr.family() == primary ? 0 : 1].push_back(std::move(addr));
    }
    if (!a->families[1].empty()) {
      a->eyeballs_timer = loop.call_later(a->options.happy_eyeballs_delay,
                                          bind_try(a, [](State& self, Attempt* at) {
                                            at->eyeballs_timer = TimeoutHandle();
                                            self.start_secondary(at);
                                            self.settle(at);
                                          }));
    }
    start_next(a, 0);
    settle(a);
  }

  // Happy Eyeballs as Tornado's _Connector. Each family is a chain that tries its addresses
  // one at a time, moving on when one fails. The primary chain starts at once; the
  // secondary when `happy_eyeballs_delay` expires or at the first failure of a primary
  // address, whichever comes first. The first connection made wins.

  // Tornado's try_connect: starts the next address of family `fi`, if it has one left. One
  // that fails at once (no socket, no route) is a failure like one reported later.
  void start_next(Attempt* a, int fi) {
    while (a->next_index[fi] < a->families[fi].size()) {
      const SocketAddress addr = a->families[fi][a->next_index[fi]++];
      absl::Status s = start_connect(a, fi, addr);
      if (s.ok()) return;
      note_failure(a, fi, std::move(s));
    }
  }

  absl::Status start_connect(Attempt* a, int fi, const SocketAddress& addr) {
    absl::StatusOr<Socket> sock = Socket::create(addr.family());
    if (!sock.ok()) return sock.status();
    // A non-blocking connect() interrupted by a signal goes on asynchronously, as one that
    // returned EINPROGRESS.
    if (::connect(sock->fd(), addr.get(), addr.length()) != 0 && errno != EINPROGRESS &&
        errno != EINTR) {
      return absl::ErrnoToStatus(errno, absl::StrCat("connect ", addr.to_string()));
    }
    absl::Status s = loop.add_handler(sock->fd(),
                                      bind_try(a, [](State& self, Attempt* at, int fd,
                                                     uint32_t) { self.on_connect_ready(at, fd); }),
                                      WRITE);
    if (!s.ok()) return s;
    a->in_flight.push_back(Attempt::InFlight{*std::move(sock), fi, addr});
    return absl::OkStatus();
  }

  void note_failure(Attempt* a, int fi, absl::Status error) {
    a->last_error = std::move(error);
    if (fi == 0) a->primary_failed = true;
  }

  void start_secondary(Attempt* a) {
    if (a->secondary_started) return;
    a->secondary_started = true;
    loop.remove_timeout(a->eyeballs_timer);
    a->eyeballs_timer = TimeoutHandle();
    start_next(a, 1);
  }

  // Ends every event of a try. A failure in the primary family starts the secondary one
  // (Tornado's on_connect_done calls on_timeout). A chain with addresses left always has one
  // in flight, so nothing in flight means every started chain is used up, and the secondary
  // one has started too (the primary's failures started it): the try failed. Must be the
  // caller's last step, since failing may complete the attempt.
  void settle(Attempt* a) {
    if (a->primary_failed) start_secondary(a);
    if (!a->in_flight.empty()) return;
    fail_try(
        a, a->last_error.ok() ? absl::UnavailableError("no address to connect to") : a->last_error);
  }

  void on_connect_ready(Attempt* a, int fd) {
    auto it = std::find_if(a->in_flight.begin(), a->in_flight.end(),
                           [fd](const Attempt::InFlight& f) { return f.socket.fd() == fd; });
    if (it == a->in_flight.end()) return;
    loop.remove_handler(fd);
    Attempt::InFlight done = std::move(*it);
    a->in_flight.erase(it);
    if (absl::Status err = done.socket.take_error(); !err.ok()) {
      note_failure(a, done.family_index,
                   absl::Status(err.code(), absl::StrCat("connect ", done.address.to_string(), ": ",
                                                         err.message())));
      start_next(a, done.family_index);
      return settle(a);
    }
    if (a->options.nodelay) (void)done.socket.set_nodelay(true);
    std::unique_ptr<Transport> transport;
    if (a->options.tls) {
      const std::string& name = a->options.server_name.empty() ? a->host : a->options.server_name;
      absl::StatusOr<std::unique_ptr<Transport>> made =
          a->options.tls->client_transport(done.socket.fd(), name, a->port);
      if (!made.ok()) return complete(a, made.status());
      transport = *std::move(made);
    }
    std::shared_ptr<IOStream> stream = IOStream::create(
        loop, std::move(done.socket), a->options.stream_options, std::move(transport));
    if (!a->options.tls) return complete(a, std::move(stream));
    start_handshake(a, std::move(stream));
  }

  // The first connection made wins (the others stop now) and must finish its handshake
  // within handshake_timeout; the try's generation makes a late callback of an abandoned
  // try stale, as everywhere else.
  void start_handshake(Attempt* a, std::shared_ptr<IOStream> stream) {
    for (Attempt::InFlight& f : a->in_flight) loop.remove_handler(f.socket.fd());
    a->in_flight.clear();
    loop.remove_timeout(a->eyeballs_timer);
    a->eyeballs_timer = TimeoutHandle();
    a->handshaking = stream;
    const absl::Duration limit = a->options.handshake_timeout;
    a->handshake_timer = loop.call_later(limit, bind_try(a, [limit](State&, Attempt* at) {
      at->handshake_timer = TimeoutHandle();
      at->handshaking->close(absl::DeadlineExceededError(
          absl::StrCat("TLS handshake not finished within ", absl::FormatDuration(limit))));
    }));
    stream->wait_for_handshake(bind_try(a, [](State& self, Attempt* at, absl::Status status) {
      std::shared_ptr<IOStream> s = std::move(at->handshaking);
      if (!status.ok()) return self.complete(at, std::move(status));
      self.complete(at, std::move(s));
    }));
  }

  // Stops everything the current try started, its lookup included.
  void abandon_try(Attempt* a) {
    ++a->generation;
    if (a->lookup != 0) {
      resolver->cancel(a->lookup);
      a->lookup = 0;
    }
    for (Attempt::InFlight& f : a->in_flight) loop.remove_handler(f.socket.fd());
    a->in_flight.clear();
    loop.remove_timeout(a->deadline_timer);
    loop.remove_timeout(a->eyeballs_timer);
    loop.remove_timeout(a->retry_timer);
    loop.remove_timeout(a->handshake_timer);
    a->deadline_timer = a->eyeballs_timer = a->retry_timer = a->handshake_timer = TimeoutHandle();
    if (std::shared_ptr<IOStream> s = std::move(a->handshaking)) {
      s->close(absl::CancelledError("TCPClient: connection attempt abandoned"));
    }
  }

  void fail_try(Attempt* a, absl::Status status) {
    abandon_try(a);
    if (a->retry && (a->retry->max_attempts == 0 || a->tries < a->retry->max_attempts)) {
      const absl::Duration delay = a->retry_delay;
      a->retry_delay = std::min(a->retry->max_delay, a->retry_delay * a->retry->multiplier);
      a->retry_timer = loop.call_later(delay, bind_try(a, [](State& self, Attempt* at) {
                                         at->retry_timer = TimeoutHandle();
                                         self.start_try(at);
                                       }));
      return;
    }
    complete(a, std::move(status));
  }

  void complete(Attempt* a, absl::StatusOr<std::shared_ptr<IOStream>> result) {
    abandon_try(a);
    ConnectCallback cb = std::move(a->cb);
    attempts.erase(a->id);  // `a` is gone from here on
    // Last: the callback may destroy the client (the caller holds the State alive).
    run_callback(loop, std::move(cb), std::move(result));
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
    : state_(std::make_shared<State>(loop, resolver ? resolver : &Resolver::instance())) {}

TCPClient::~TCPClient() {
  std::vector<ConnectCallback> cancelled;
  for (auto& [id, attempt] : state_->attempts) {
    state_->abandon_try(attempt.get());
    cancelled.push_back(std::move(attempt->cb));
  }
  state_->attempts.clear();
  for (ConnectCallback& cb : cancelled) {
    State::run_callback(state_->loop, std::move(cb),
                        absl::CancelledError("TCPClient destroyed before the connection was made"));
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
  std::string host = addresses.front().host();
  const uint16_t port = addresses.front().port();
  begin(std::move(host), port, std::move(addresses), std::move(cb), std::nullopt,
        std::move(options));
}

void TCPClient::begin(std::string host, uint16_t port, std::vector<SocketAddress> addresses,
                      ConnectCallback cb, std::optional<RetryPolicy> retry, ConnectOptions options,
                      absl::Status invalid) {
  auto a = std::make_unique<Attempt>();
  a->id = state_->next_id++;
  a->host = std::move(host);
  a->port = port;
  a->given = std::move(addresses);
  a->options = std::move(options);
  a->cb = std::move(cb);
  a->retry = retry;
  if (retry) a->retry_delay = retry->initial_delay;
  Attempt* raw = a.get();
  state_->attempts.emplace(raw->id, std::move(a));
  if (!invalid.ok()) {
    // A pending attempt like any other (destroying the client cancels it), completed from
    // the loop so that the callback never runs inside the call that was given it.
    state_->loop.add_callback(
        state_->bind_try(raw, [invalid = std::move(invalid)](State& self, Attempt* at) mutable {
          self.complete(at, std::move(invalid));
        }));
    return;
  }
  state_->start_try(raw);
}

size_t TCPClient::pending() const { return state_->attempts.size(); }

}  // namespace ioloop::net
