// File: net/src/http/http_client.cc
// HTTPClient's public API and the fetch lifecycle: start, completion (exactly once), cancel,
// shutdown. See http_client_core.h for how the core is split and kept alive.
#include "ioloop/net/http/http_client.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "http/http_client_core.h"
#include "ioloop/recycling_allocator.h"

namespace ioloop::net {

// --- HTTPClientBodyWriter ---------------------------------------------------------------------

bool HTTPClientBodyWriter::write(std::string chunk) {
  std::shared_ptr<HTTPClientCore> core = core_.lock();
  std::shared_ptr<ClientFetch> fetch = fetch_.lock();
  return core && fetch && core->writer_write(fetch, std::move(chunk));
}

bool HTTPClientBodyWriter::finish() {
  std::shared_ptr<HTTPClientCore> core = core_.lock();
  std::shared_ptr<ClientFetch> fetch = fetch_.lock();
  return core && fetch && core->writer_finish(fetch);
}

bool HTTPClientBodyWriter::active() const {
  std::shared_ptr<HTTPClientCore> core = core_.lock();
  std::shared_ptr<ClientFetch> fetch = fetch_.lock();
  return core && fetch && core->writer_active(fetch);
}

// --- Timeouts as data ------------------------------------------------------------------------

namespace {

// The payload naming the limit; its value is the option's name (what Status::ToString() shows).
constexpr absl::string_view kTimeoutPayload = "ioloop.net.FetchTimeout";

constexpr std::pair<FetchTimeout, absl::string_view> kTimeoutNames[] = {
    {FetchTimeout::kConnect, "connect_timeout"},
    {FetchTimeout::kQueue, "queue_timeout"},
    {FetchTimeout::kRequest, "request_timeout"},
    {FetchTimeout::kResponse, "response_timeout"},
};

}  // namespace

absl::Status mark_timeout(absl::Status status, FetchTimeout which) {
  for (const auto& [t, name] : kTimeoutNames) {
    if (t == which) status.SetPayload(kTimeoutPayload, absl::Cord(name));
  }
  return status;
}

FetchTimeout fetch_timeout(const absl::Status& status) {
  if (status.code() != absl::StatusCode::kDeadlineExceeded) return FetchTimeout::kNone;
  const auto name = status.GetPayload(kTimeoutPayload);  // absl::optional in Debian's abseil
  if (!name.has_value()) return FetchTimeout::kNone;
  for (const auto& [t, n] : kTimeoutNames) {
    if (*name == n) return t;
  }
  return FetchTimeout::kNone;
}

// --- HTTPClient -----------------------------------------------------------------------------

HTTPClient::HTTPClient(IOLoop& loop, HTTPClientOptions options)
    : core_(std::make_shared<HTTPClientCore>(loop, std::move(options))) {}

HTTPClient::~HTTPClient() { core_->shutdown(); }

uint64_t HTTPClient::fetch(HTTPClientRequest request, FetchCallback callback) {
  return core_->fetch(std::move(request), std::move(callback));
}

bool HTTPClient::cancel(uint64_t id) { return core_->cancel(id); }
bool HTTPClient::pause_reading(uint64_t id) { return core_->pause_reading(id, true); }
bool HTTPClient::resume_reading(uint64_t id) { return core_->pause_reading(id, false); }
HTTPClient::Stats HTTPClient::stats() const { return core_->stats(); }

// --- HTTPClientCore -------------------------------------------------------------------------

HTTPClientCore::HTTPClientCore(IOLoop& l, HTTPClientOptions o)
    : loop(l),
      options(std::move(o)),
      options_status(validate_options(options)),
      tcp(l, options.resolver) {}

HTTPClientCore::~HTTPClientCore() = default;

FetchPtr HTTPClientCore::find(uint64_t id) const {
  auto it = fetches.find(id);
  return it == fetches.end() ? nullptr : it->second;
}

uint64_t HTTPClientCore::fetch(HTTPClientRequest&& request, HTTPClient::FetchCallback&& callback) {
  const uint64_t id = next_id++;
  ++counters.fetches;
  // One per fetch, made and freed in bursts under load: its block is recycled per thread.
  FetchPtr f = std::allocate_shared<ClientFetch>(RecyclingAllocator<ClientFetch>());
  f->id = id;
  f->callback = std::move(callback);
  f->started = loop.time();  // fresh: a callback before this one may have held the loop
  f->request = std::move(request);
  fetches.emplace(id, f);
  if (shut_down) return id;  // from a callback ~HTTPClient runs: shutdown() completes it
  absl::StatusOr<URL> url = options_status.ok() ? validate_request(f->request, last_origin)
                                                : absl::StatusOr<URL>(options_status);
  if (url.ok()) {
    if (absl::Status s = check_transport(*url, options); !s.ok()) url = std::move(s);
  }
  if (!url.ok()) {
    // Never inside fetch(): delivered from the loop (or by the destructor, if it comes first).
    f->invalid = url.status();
    loop.add_callback([weak = weak_from_this(), fetch = std::weak_ptr(f)] {
      std::shared_ptr<HTTPClientCore> core = weak.lock();
      FetchPtr pending = fetch.lock();
      if (!core || core->shut_down || !pending || pending->finished) return;
      absl::Status status = pending->invalid;
      core->fail(std::move(pending), std::move(status));
    });
    return id;
  }
  f->url = *std::move(url);
  f->url_is_request_text = last_origin.canonical;
  f->key = last_origin.key;
  f->method = http_method_from_string(f->request.method);
  f->streamed_body = static_cast<bool>(f->request.body_producer);
  acquire(f);
  return id;
}

void HTTPClientCore::complete(FetchPtr f, absl::StatusOr<HTTPClientResponse> result) {
  if (f->finished) return;
  f->finished = true;
  fetches.erase(f->id);
  stop_timers(*f);
  if (f->phase == ClientFetch::Phase::kQueued) {
    dequeued(*f);
    auto pit = pools.find(f->key);
    if (pit != pools.end()) {
      auto& q = pit->second->queue;
      q.erase(std::remove(q.begin(), q.end(), f), q.end());
    }
  }
  if (std::shared_ptr<ClientConnection> conn = std::move(f->conn)) {
    conn->fetch.reset();
    // Mid-exchange: the response (or our request) is unfinished; the connection cannot be
    // reused.
    conn->close(result.ok() ? absl::OkStatus() : result.status());
    drop(*conn);
  }
  if (result.ok()) {
    // The request's own text when it is already canonical (the usual case): no string built.
    if (f->url_is_request_text || f->url.to_string_equals(f->request.url)) {
      result->effective_url = std::move(f->request.url);
    } else {
      result->effective_url = f->url.to_string();
    }
    result->redirects = f->redirects;
    result->timings.total = to_duration(loop.iteration_time() - f->started);
  }
  HTTPClient::FetchCallback cb = std::move(f->callback);
  // The user's callables go now, as if the fetch were destroyed: a dispatch up the stack may
  // still hold it (only to see `finished`).
  f->request = HTTPClientRequest();
  f.reset();
  if (cb) {
    // An exception here is logged and counted; the fetch is over either way.
    (void)loop.invoke_guarded("HTTPClient fetch callback",
                              [&] { std::move(cb)(std::move(result)); });
  }
}

bool HTTPClientCore::cancel(uint64_t id) {
  FetchPtr f = find(id);
  if (shut_down || f == nullptr) return false;
  const bool response_started = f->conn != nullptr && f->conn->first_byte_at() != TimePoint{};
  absl::Status status = in_context(*f, absl::CancelledError("fetch cancelled"), response_started);
  fail(std::move(f), std::move(status));
  return true;
}

bool HTTPClientCore::pause_reading(uint64_t id, bool pause) {
  FetchPtr f = find(id);
  if (shut_down || f == nullptr || f->finished) return false;
  // While the caller does not read, the server's silence is not the server's: response_timeout
  // stops, and starts again from the resume if the server owes something then. A fetch between
  // connections (the keep-alive retry connecting, a redirect hop queued) keeps the pause for
  // its next one (start_exchange()).
  if (f->paused == pause) return true;
  f->paused = pause;
  const bool exchanging = f->phase == ClientFetch::Phase::kExchange && f->conn != nullptr;
  if (pause) {
    if (exchanging) f->conn->pause_reading();
    f->response_deadline = TimePoint{};
  } else if (exchanging) {
    f->conn->resume_reading();
    if (server_owes(*f)) restart_response_timeout(f, loop.time());
  }
  return true;
}

HTTPClient::Stats HTTPClientCore::stats() const {
  HTTPClient::Stats s = counters;
  s.open_connections = s.idle_connections = s.queued = 0;
  s.hosts = pools.size();
  for (const auto& [key, pool] : pools) {
    s.open_connections += pool->open;
    s.idle_connections += pool->idle.size();
    s.queued += pool->queue.size();
  }
  s.pending = fetches.size();
  return s;
}

void HTTPClientCore::shutdown() {
  if (shut_down) return;
  shut_down = true;
  for (auto& [key, pool] : pools) {
    for (auto& conn : pool->idle) {
      loop.remove_timeout(conn->timer);
      conn->close();
    }
    pool->idle.clear();
    pool->queue.clear();
  }
  // Until none is left: a callback run below may start another fetch, completed here too (so
  // a callback that always fetches again keeps the destructor from returning).
  while (!fetches.empty()) complete_pending();
}

void HTTPClientCore::complete_pending() {
  std::vector<FetchPtr> pending;
  pending.reserve(fetches.size());
  for (auto& [id, f] : fetches) pending.push_back(std::move(f));
  fetches.clear();
  std::sort(pending.begin(), pending.end(),
            [](const auto& a, const auto& b) { return a->id < b->id; });
  for (auto& f : pending) {
    f->finished = true;
    stop_timers(*f);
    dequeued(*f);
    if (std::shared_ptr<ClientConnection> conn = std::move(f->conn)) {
      conn->fetch.reset();
      conn->close(absl::CancelledError("HTTPClient destroyed"));
    }
  }
  pools.clear();
  for (auto& f : pending) {
    absl::Status status = f->invalid.ok()
                              ? absl::CancelledError("HTTPClient destroyed with the fetch pending")
                              : f->invalid;
    HTTPClient::FetchCallback cb = std::move(f->callback);
    f->request = HTTPClientRequest();  // as complete() does
    f.reset();
    if (cb) {
      (void)loop.invoke_guarded("HTTPClient fetch callback",
                                [&] { std::move(cb)(std::move(status)); });
    }
  }
}

}  // namespace ioloop::net
