// File: net/src/http/http_client_pool.cc
// HTTPClient's keep-alive pool, one HostPool per scheme+host+port: idle connections (reused most
// recently used first: the likeliest to still be open), at most max_connections_per_host open
// connections (connecting, busy or idle), and a FIFO queue of fetches waiting for one.
//
// Invariant: HostPool::open counts every ClientConnection with `counted` set plus the connects
// in progress; drop() clears `counted` exactly once. A slot freed by drop() goes to the queue's
// head (a new connect); a connection released after an exchange goes to the queue's head (the
// exchange starts at once) or, with nobody waiting, to the idle list with its idle timer.
#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "http/http_client_core.h"

namespace ioloop::net {

void HTTPClientCore::acquire(const FetchPtr& f) {
  HostPool& pool = pool_of(f->key);
  while (!pool.idle.empty()) {
    std::shared_ptr<ClientConnection> conn = std::move(pool.idle.back());
    pool.idle.pop_back();
    conn->idle_until = TimePoint{};  // its timer, if it fires, finds it busy (or re-arms)
    if (conn->closed()) {            // cannot happen (closing drops it), but never reuse one
      drop(*conn);
      continue;
    }
    if (discard_if_closed_for(*f, *conn)) continue;
    start_exchange(f, std::move(conn), /*reused=*/true);
    return;
  }
  if (pool.open < options.max_connections_per_host) {
    ++pool.open;
    connect(f);
    return;
  }
  enqueue(f);
}

void HTTPClientCore::enqueue(const FetchPtr& f) {
  f->phase = ClientFetch::Phase::kQueued;
  pool_of(f->key).queue.push_back(f);
  const absl::Duration t = f->request.queue_timeout;
  if (t == absl::ZeroDuration() || t == absl::InfiniteDuration()) return;
  // Weak: the timer may outlive the fetch and the client (then it does nothing).
  f->queue_timer = loop.call_later(t, [weak = weak_from_this(), fetch = std::weak_ptr(f)] {
    std::shared_ptr<HTTPClientCore> core = weak.lock();
    FetchPtr waiting = fetch.lock();
    if (!core || core->shut_down || !waiting) return;
    waiting->queue_timer = TimeoutHandle();
    core->on_queue_timeout(waiting);
  });
}

void HTTPClientCore::dequeued(ClientFetch& f) {
  if (!f.queue_timer.valid()) return;
  loop.remove_timeout(f.queue_timer);
  f.queue_timer = TimeoutHandle();
}

void HTTPClientCore::on_queue_timeout(const FetchPtr& f) {
  if (f->finished || f->phase != ClientFetch::Phase::kQueued) return;
  // complete() takes it out of the queue.
  absl::Status s = absl::DeadlineExceededError(
      absl::StrCat("queue_timeout (", absl::FormatDuration(f->request.queue_timeout),
                   ") expired: no free connection to ", f->url.authority(),
                   " (max_connections_per_host ", options.max_connections_per_host, ")"));
  fail(f, mark_timeout(in_context(*f, s, /*response_started=*/false), FetchTimeout::kQueue));
}

void HTTPClientCore::connect(const FetchPtr& f) {
  f->phase = ClientFetch::Phase::kConnecting;
  f->connect_started = loop.time();  // fresh, as request_started (start_exchange())
  ConnectOptions co;
  absl::Duration t = f->request.connect_timeout;
  co.timeout = (t == absl::ZeroDuration()) ? absl::InfiniteDuration() : t;
  if (f->url.scheme == "https") {
    // check_transport() let only fetches with a factory get here. The URL's host is what the
    // certificate must prove (and the SNI), whatever Host field the request carries.
    co.tls = options.tls;
    co.server_name = f->url.host;
    // connect_timeout bounds the handshake too; with equal limits TCPClient's overall one
    // always fires first (it started earlier), so its expiry reads "connect_timeout".
    co.handshake_timeout = co.timeout;
  }
  tcp.connect(
      f->url.host, f->url.port,
      [weak = weak_from_this(), fetch = std::weak_ptr(f), key = f->key, host = f->url.authority(),
       t](absl::StatusOr<std::shared_ptr<IOStream>> stream) {
        std::shared_ptr<HTTPClientCore> core = weak.lock();
        if (!core || core->shut_down) return;  // the stream closes as it is dropped
        // The fetch this connect is for, unless it ended (or moved on) meanwhile: then the
        // connection serves the queue or goes idle.
        FetchPtr waiting = fetch.lock();
        if (waiting != nullptr &&
            (waiting->finished || waiting->phase != ClientFetch::Phase::kConnecting)) {
          waiting = nullptr;
        }
        if (!stream.ok()) {
          --core->pool_of(key).open;
          // The freed slot goes to the queue's head before the callback below runs, as
          // drop() gives it: a fetch started from that callback queues behind the others.
          core->dispatch_queue(key);
          if (waiting != nullptr) {
            absl::Status s = stream.status();
            // TCPClient's DeadlineExceeded is its `timeout` (and handshake_timeout), both
            // connect_timeout here; the kernel's own ETIMEDOUT comes as Unavailable.
            const bool expired = absl::IsDeadlineExceeded(s);
            if (expired) {
              s = absl::DeadlineExceededError(absl::StrCat("connect to ", host,
                                                           ": connect_timeout (",
                                                           absl::FormatDuration(t), ") expired"));
            } else {
              // TCPClient's message may name the address first: here the URL's authority too.
              absl::string_view why = s.message();
              absl::ConsumePrefix(&why, absl::StrCat("connect ", host, ": "));
              s = absl::Status(s.code(), absl::StrCat("connect to ", host, ": ", why));
            }
            // Named like a connection's failure: "(GET URL, connecting)", the fd left out.
            s = in_context(*waiting, s, /*response_started=*/false);
            if (expired) s = mark_timeout(std::move(s), FetchTimeout::kConnect);
            core->fail(std::move(waiting), std::move(s));
          }
          return;
        }
        ++core->counters.connections_opened;
        ResponseParserOptions po;
        po.max_header_size = core->options.max_header_size;
        std::shared_ptr<ClientConnection> conn =
            ClientConnection::create(core->loop, *std::move(stream), key, po,
                                     std::static_pointer_cast<ClientConnection::Owner>(core));
        if (waiting != nullptr) {
          waiting->connect_time =
              to_duration(core->loop.iteration_time() - waiting->connect_started);
          core->start_exchange(waiting, std::move(conn), /*reused=*/false);
        } else {
          core->release(std::move(conn));  // its fetch went away: serve the queue or idle
        }
      },
      co);
}

void HTTPClientCore::release(std::shared_ptr<ClientConnection> conn) {
  if (conn->closed()) return drop(*conn);
  if (conn->reading_paused()) conn->resume_reading();
  HostPool& pool = pool_of(conn->key());
  while (!pool.queue.empty()) {
    if (pool.queue.front()->finished) {
      pool.queue.pop_front();
      continue;
    }
    if (discard_if_closed_for(*pool.queue.front(), *conn)) return;  // the queue gets a new one
    FetchPtr f = std::move(pool.queue.front());
    pool.queue.pop_front();
    dequeued(*f);
    start_exchange(f, std::move(conn), /*reused=*/true);
    return;
  }
  if (options.idle_timeout == absl::ZeroDuration()) {
    conn->close();
    return drop(*conn);
  }
  if (options.idle_timeout != absl::InfiniteDuration()) {
    conn->idle_until = loop.iteration_time() + to_clock_duration(options.idle_timeout);
    wake_at(conn, conn->idle_until);
  }
  pool.idle.push_back(std::move(conn));
}

bool HTTPClientCore::discard_if_closed_for(const ClientFetch& f, ClientConnection& conn) {
  if ((retriable(f) && !conn.last_response_bodiless()) || !conn.stale()) return false;
  conn.close();
  drop(conn);
  return true;
}

void HTTPClientCore::expire_idle(const std::shared_ptr<ClientConnection>& conn) {
  HostPool& pool = pool_of(conn->key());
  auto it = std::find(pool.idle.begin(), pool.idle.end(), conn);
  if (it == pool.idle.end()) return;
  pool.idle.erase(it);
  ++counters.idle_expired;
  conn->close();
  drop(*conn);
}

void HTTPClientCore::drop(ClientConnection& conn) {
  if (!conn.counted) return;
  conn.counted = false;
  loop.remove_timeout(conn.timer);
  conn.timer = TimeoutHandle();
  conn.timer_at = conn.idle_until = TimePoint{};
  auto pit = pools.find(conn.key());
  if (pit == pools.end()) return;
  HostPool& pool = *pit->second;
  auto it = std::find_if(pool.idle.begin(), pool.idle.end(),
                         [&](const auto& c) { return c.get() == &conn; });
  std::shared_ptr<ClientConnection> keep;  // `conn` may be owned only by the idle list
  if (it != pool.idle.end()) {
    keep = std::move(*it);
    pool.idle.erase(it);
  }
  --pool.open;
  dispatch_queue(conn.key());
}

HTTPClientCore::HostPool& HTTPClientCore::pool_of(const std::string& key) {
  std::unique_ptr<HostPool>& pool = pools[key];
  if (pool == nullptr) pool = std::make_unique<HostPool>();
  return *pool;
}

void HTTPClientCore::dispatch_queue(const std::string& key) {
  if (shut_down) return;
  HostPool& pool = pool_of(key);
  while (!pool.queue.empty() && pool.open < options.max_connections_per_host) {
    FetchPtr f = std::move(pool.queue.front());
    pool.queue.pop_front();
    if (!f->finished) {
      dequeued(*f);
      ++pool.open;
      connect(f);
    }
  }
  if (pool.unused()) schedule_pool_sweep();
}

// Later, from the loop: the pools' callers hold references to them (a pool may empty and
// fill again within one call), and the next fetch to a host usually comes soon.
void HTTPClientCore::schedule_pool_sweep() {
  if (pool_sweep_scheduled) return;
  pool_sweep_scheduled = true;
  loop.add_callback([weak = weak_from_this()] {
    std::shared_ptr<HTTPClientCore> core = weak.lock();
    if (!core) return;
    core->pool_sweep_scheduled = false;
    absl::erase_if(core->pools, [](const auto& entry) { return entry.second->unused(); });
  });
}

void HTTPClientCore::on_idle_closed(ClientConnection& c) { drop(c); }

}  // namespace ioloop::net
