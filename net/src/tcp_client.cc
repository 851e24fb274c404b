#include "ioloop/net/tcp_client.h"

#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <optional>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"

namespace ioloop::net {

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
  std::vector<SocketAddress> families[2];  // [0] primary, [1] secondary
  size_t next_index[2] = {0, 0};
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
};

struct TCPClient::State : std::enable_shared_from_this<TCPClient::State> {
  State(IOLoop& l, Resolver* r) : loop(l), resolver(r) {}

  IOLoop& loop;
  Resolver* resolver;
  uint64_t next_id = 1;
  absl::flat_hash_map<uint64_t, std::unique_ptr<Attempt>> attempts;

  Attempt* find(uint64_t id, uint64_t generation) {
    auto it = attempts.find(id);
    if (it == attempts.end() || it->second->generation != generation) return nullptr;
    return it->second.get();
  }

  void start_try(Attempt* a) {
    ++a->generation;
    ++a->tries;
    a->families[0].clear();
    a->families[1].clear();
    a->next_index[0] = a->next_index[1] = 0;
    a->secondary_started = false;
    a->last_error = absl::OkStatus();
    std::weak_ptr<State> weak = weak_from_this();
    const uint64_t id = a->id, gen = a->generation;
    a->deadline_timer = loop.call_later(a->options.timeout, [weak, id, gen] {
      auto self = weak.lock();
      if (!self) return;
      Attempt* at = self->find(id, gen);
      if (at == nullptr) return;
      at->deadline_timer = TimeoutHandle();
      self->fail_try(at, absl::DeadlineExceededError(absl::StrCat(
                             "connect to ", at->host, ":", at->port, " timed out after ",
                             absl::FormatDuration(at->options.timeout))));
    });
    if (!a->given.empty()) {
      // Still asynchronous, so the callback never runs inside connect_to().
      loop.add_callback([weak, id, gen] {
        auto self = weak.lock();
        if (!self) return;
        if (Attempt* at = self->find(id, gen)) self->on_resolved(at, at->given);
      });
      return;
    }
    resolver->resolve(loop, a->host, a->port, a->options.family,
                      [weak, id, gen](absl::StatusOr<std::vector<SocketAddress>> addrs) {
                        auto self = weak.lock();
                        if (!self) return;
                        if (Attempt* at = self->find(id, gen)) self->on_resolved(at, std::move(addrs));
                      });
  }

  void on_resolved(Attempt* a, absl::StatusOr<std::vector<SocketAddress>> addrs) {
    if (!addrs.ok()) return fail_try(a, addrs.status());
    // Primary family: the resolver's first choice; the rest of its family keeps its order.
    const int primary = addrs->front().family();
    for (SocketAddress& addr : *addrs) {
      a->families[addr.family() == primary ? 0 : 1].push_back(std::move(addr));
    }
    if (!a->families[1].empty()) {
      std::weak_ptr<State> weak = weak_from_this();
      const uint64_t id = a->id, gen = a->generation;
      a->eyeballs_timer = loop.call_later(a->options.happy_eyeballs_delay, [weak, id, gen] {
        auto self = weak.lock();
        if (!self) return;
        if (Attempt* at = self->find(id, gen)) {
          at->eyeballs_timer = TimeoutHandle();
          self->start_secondary(at);
        }
      });
    }
    try_next(a, 0);
  }

  void start_secondary(Attempt* a) {
    if (a->secondary_started || a->families[1].empty()) return;
    a->secondary_started = true;
    loop.remove_timeout(a->eyeballs_timer);
    a->eyeballs_timer = TimeoutHandle();
    try_next(a, 1);
  }

  // Starts the next address of family `fi`; when that family is used up, moves on to the
  // other family or, if nothing is left in flight, fails the try.
  void try_next(Attempt* a, int fi) {
    const uint64_t gen = a->generation;
    while (a->next_index[fi] < a->families[fi].size()) {
      const SocketAddress addr = a->families[fi][a->next_index[fi]++];
      absl::StatusOr<Socket> sock = Socket::create(addr.family());
      if (!sock.ok()) {
        a->last_error = sock.status();
        continue;
      }
      if (::connect(sock->fd(), addr.get(), addr.length()) != 0 && errno != EINPROGRESS) {
        a->last_error = absl::ErrnoToStatus(errno, absl::StrCat("connect ", addr.to_string()));
        continue;
      }
      const int fd = sock->fd();
      std::weak_ptr<State> weak = weak_from_this();
      const uint64_t id = a->id;
      absl::Status s = loop.add_handler(
          fd,
          [weak, id, gen](int ready_fd, uint32_t) {
            auto self = weak.lock();
            if (!self) return;
            if (Attempt* at = self->find(id, gen)) self->on_connect_ready(at, ready_fd);
          },
          WRITE);
      if (!s.ok()) {
        a->last_error = s;
        continue;
      }
      a->in_flight.push_back(Attempt::InFlight{*std::move(sock), fi, addr});
      return;
    }
    if (fi == 0 && !a->secondary_started && !a->families[1].empty()) return start_secondary(a);
    if (a->in_flight.empty()) {
      fail_try(a, a->last_error.ok() ? absl::UnavailableError("no address to connect to")
                                     : a->last_error);
    }
  }

  void on_connect_ready(Attempt* a, int fd) {
    auto it = std::find_if(a->in_flight.begin(), a->in_flight.end(),
                           [fd](const Attempt::InFlight& f) { return f.socket.fd() == fd; });
    if (it == a->in_flight.end()) return;
    loop.remove_handler(fd);
    Attempt::InFlight done = std::move(*it);
    a->in_flight.erase(it);
    if (absl::Status err = done.socket.take_error(); !err.ok()) {
      a->last_error = absl::Status(err.code(), absl::StrCat("connect ", done.address.to_string(),
                                                            ": ", err.message()));
      return try_next(a, done.family_index);
    }
    if (a->options.nodelay) (void)done.socket.set_nodelay(true);
    std::shared_ptr<IOStream> stream =
        IOStream::create(loop, std::move(done.socket), a->options.stream_options);
    complete(a, std::move(stream));
  }

  // Stops everything the current try started.
  void abandon_try(Attempt* a) {
    ++a->generation;
    for (Attempt::InFlight& f : a->in_flight) loop.remove_handler(f.socket.fd());
    a->in_flight.clear();
    loop.remove_timeout(a->deadline_timer);
    loop.remove_timeout(a->eyeballs_timer);
    loop.remove_timeout(a->retry_timer);
    a->deadline_timer = a->eyeballs_timer = a->retry_timer = TimeoutHandle();
  }

  void fail_try(Attempt* a, absl::Status status) {
    abandon_try(a);
    if (a->retry && (a->retry->max_attempts == 0 || a->tries < a->retry->max_attempts)) {
      const absl::Duration delay = a->retry_delay;
      a->retry_delay = std::min(a->retry->max_delay, a->retry_delay * a->retry->multiplier);
      std::weak_ptr<State> weak = weak_from_this();
      const uint64_t id = a->id, gen = a->generation;
      a->retry_timer = loop.call_later(delay, [weak, id, gen] {
        auto self = weak.lock();
        if (!self) return;
        if (Attempt* at = self->find(id, gen)) {
          at->retry_timer = TimeoutHandle();
          self->start_try(at);
        }
      });
      return;
    }
    complete(a, std::move(status));
  }

  void complete(Attempt* a, absl::StatusOr<std::shared_ptr<IOStream>> result) {
    abandon_try(a);
    ConnectCallback cb = std::move(a->cb);
    attempts.erase(a->id);  // `a` is gone from here on
    // Last: the callback may destroy the client.
    std::move(cb)(std::move(result));
  }
};

namespace {
Resolver& default_resolver() {
  static Resolver* const resolver = new Resolver(2);  // never destroyed: threads may use it late
  return *resolver;
}
}  // namespace

TCPClient::TCPClient(IOLoop& loop, Resolver* resolver)
    : state_(std::make_shared<State>(loop, resolver ? resolver : &default_resolver())) {}

TCPClient::~TCPClient() {
  std::vector<ConnectCallback> cancelled;
  for (auto& [id, attempt] : state_->attempts) {
    state_->abandon_try(attempt.get());
    cancelled.push_back(std::move(attempt->cb));
  }
  state_->attempts.clear();
  for (ConnectCallback& cb : cancelled) {
    std::move(cb)(absl::CancelledError("TCPClient destroyed before the connection was made"));
  }
}

void TCPClient::connect(std::string host, uint16_t port, ConnectCallback cb,
                        ConnectOptions options) {
  begin(std::move(host), port, {}, std::move(cb), std::nullopt, std::move(options));
}

void TCPClient::connect_with_retry(std::string host, uint16_t port, ConnectCallback cb,
                                   RetryPolicy retry, ConnectOptions options) {
  begin(std::move(host), port, {}, std::move(cb), retry, std::move(options));
}

void TCPClient::connect_to(std::vector<SocketAddress> addresses, ConnectCallback cb,
                           ConnectOptions options) {
  if (addresses.empty()) {
    state_->loop.add_callback([cb = std::move(cb)]() mutable {
      std::move(cb)(absl::InvalidArgumentError("connect_to: no addresses"));
    });
    return;
  }
  std::string host = addresses.front().host();
  const uint16_t port = addresses.front().port();
  begin(std::move(host), port, std::move(addresses), std::move(cb), std::nullopt,
        std::move(options));
}

void TCPClient::begin(std::string host, uint16_t port, std::vector<SocketAddress> addresses,
                      ConnectCallback cb, std::optional<RetryPolicy> retry,
                      ConnectOptions options) {
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
  state_->start_try(raw);
}

size_t TCPClient::pending() const { return state_->attempts.size(); }

}  // namespace ioloop::net
