// File: net/src/http/http_client_exchange.cc
// One request/response exchange of HTTPClient on a ClientConnection: writing the request (a
// string body, or a streamed one from body_producer with flow control), the response events,
// the request_timeout, the keep-alive race retry and redirects.
#include <algorithm>
#include <string>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "http/http_client_core.h"
#include "ioloop/net/http/response_parser.h"

namespace ioloop::net {

namespace {

bool is_redirect(int status) {
  return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
}

}  // namespace

const char* phase_name(const ClientFetch& f, bool response_started) {
  switch (f.phase) {
    case ClientFetch::Phase::kNew:
      return "starting";
    case ClientFetch::Phase::kQueued:
      return "queued for a connection";
    case ClientFetch::Phase::kConnecting:
      return "connecting";
    case ClientFetch::Phase::kExchange:
      break;
  }
  if (response_started) return f.head_received ? "reading the body" : "reading the head";
  // A body given whole is written without a flush callback: the stream's queue tells.
  return !f.upload_done || f.writes_in_flight > 0 || (f.conn != nullptr && f.conn->sending())
             ? "sending the request"
             : "waiting for the response";
}

absl::Status in_context(const ClientFetch& f, const absl::Status& status, bool response_started) {
  return in_context(f, status, phase_name(f, response_started));
}

absl::Status in_context(const ClientFetch& f, const absl::Status& status, const char* phase) {
  std::string why(status.message());
  for (absl::string_view prefix :
       {"socket fd ", "IOStream: write to fd ", "IOStream: read from fd "}) {
    const size_t at = why.find(prefix.data(), 0, prefix.size());
    if (at == std::string::npos) continue;
    const size_t end = why.find(": ", at + prefix.size());
    if (end != std::string::npos) why.erase(at, end + 2 - at);
  }
  // Before validation the URL is only the request's text.
  const std::string url =
      f.phase == ClientFetch::Phase::kNew ? std::string(f.request.url) : f.url.to_string();
  return absl::Status(status.code(),
                      absl::StrCat(why, " (", f.request.method, " ", url, ", ", phase, ")"));
}

// The fetch's timers and flush callbacks hold weak_ptrs to the core and the fetch: the core
// cancels the timers when the exchange ends, but a timer or flush that still runs (or is
// destroyed unrun by the loop) after the fetch or the client went must do nothing.
void HTTPClientCore::start_exchange(const FetchPtr& f, std::shared_ptr<ClientConnection> conn,
                                    bool reused) {
  f->phase = ClientFetch::Phase::kExchange;
  f->conn = conn;
  conn->fetch = f;
  f->head_received = false;
  f->redirecting = false;
  f->response = HTTPClientResponse();
  f->response.reused_connection = reused;
  if (reused) {
    ++counters.connections_reused;
    f->connect_time = absl::ZeroDuration();
  }
  // Fresh, not iteration_time(): the deadlines start here, and this may run within fetch()
  // after the caller held the loop longer than the timeouts (they would have passed already).
  f->request_started = loop.time();
  const absl::Duration t = f->request.request_timeout;
  if (t != absl::ZeroDuration() && t != absl::InfiniteDuration()) {
    f->deadline = f->request_started + to_clock_duration(t);
    wake_at(conn, f->deadline);
  }
  const absl::Duration h = f->request.response_timeout;
  if (f->paused) {
    conn->pause_reading();  // a retry's or redirect hop's connection: the caller still holds
  } else if (h != absl::ZeroDuration() && h != absl::InfiniteDuration()) {
    f->response_deadline = f->request_started + to_clock_duration(h);
    wake_at(conn, f->response_deadline);
  }
  conn->begin(f->id, f->method);
  serialize_request(*f, options, request_text);
  ++f->exchange_serial;
  if (!f->request.body_producer) {
    f->writes_in_flight = 0;
    conn->write_copy(request_text);
  } else {
    f->writes_in_flight = 1;
    conn->write_copy(request_text, upload_flushed_callback(f));
  }
  if (request_text.capacity() > kKeptRequestCapacity) std::string().swap(request_text);
}

IOStream::WriteCallback HTTPClientCore::upload_flushed_callback(const FetchPtr& f) {
  return [weak = weak_from_this(), fetch = std::weak_ptr(f),
          serial = f->exchange_serial](absl::Status s) {
    std::shared_ptr<HTTPClientCore> core = weak.lock();
    FetchPtr locked = fetch.lock();
    if (core && locked && !core->shut_down && locked->exchange_serial == serial) {
      core->on_upload_flushed(locked, s);
    }
  };
}

void HTTPClientCore::stop_timers(ClientFetch& f) { f.deadline = f.response_deadline = TimePoint{}; }

void HTTPClientCore::wake_at(const std::shared_ptr<ClientConnection>& conn, TimePoint when) {
  if (conn->timer_at != TimePoint{} && conn->timer_at <= when) return;
  loop.remove_timeout(conn->timer);
  conn->timer_at = when;
  // Weak: the timer may outlive the connection and the client (then it does nothing).
  conn->timer = loop.call_at(when, [weak = weak_from_this(), wconn = std::weak_ptr(conn)] {
    std::shared_ptr<HTTPClientCore> core = weak.lock();
    std::shared_ptr<ClientConnection> c = wconn.lock();
    if (!core || !c || core->shut_down) return;
    c->timer = TimeoutHandle();
    c->timer_at = TimePoint{};
    core->on_connection_timer(c);
  });
}

void HTTPClientCore::on_connection_timer(const std::shared_ptr<ClientConnection>& conn) {
  if (conn->closed()) return;
  const TimePoint now = loop.iteration_time();
  if (conn->idle_until != TimePoint{}) {
    if (conn->idle_until <= now) return expire_idle(conn);
    return wake_at(conn, conn->idle_until);
  }
  FetchPtr f = conn->fetch.lock();
  if (f == nullptr || f->finished || f->phase != ClientFetch::Phase::kExchange || f->conn != conn) {
    return;  // nothing to watch until the next exchange or idle period arms it again
  }
  // Before the final head, bytes (an interim response, part of the head) end a silence too;
  // read here, when it would expire, rather than at every read. (From the head on, each body
  // piece restarts it: on_body().)
  if (f->response_deadline != TimePoint{} && !f->head_received &&
      conn->last_byte_at() != TimePoint{}) {
    f->response_deadline =
        std::max(f->response_deadline,
                 conn->last_byte_at() + to_clock_duration(f->request.response_timeout));
  }
  // The earlier deadline first; on a tie request_timeout (as when each had its own timer and
  // request_timeout's was added first).
  const bool has_silence = f->response_deadline != TimePoint{};
  const bool has_request = f->deadline != TimePoint{};
  const bool silence_first = has_silence && (!has_request || f->response_deadline < f->deadline);
  const TimePoint next = silence_first ? f->response_deadline : f->deadline;
  if (next == TimePoint{}) return;
  if (next <= now) return on_request_timeout(f, /*response_timeout=*/silence_first);
  wake_at(conn, next);
}

void HTTPClientCore::on_request_timeout(const FetchPtr& f, bool response_timeout) {
  if (f->finished || f->phase != ClientFetch::Phase::kExchange) return;
  const char* name = response_timeout ? "response_timeout" : "request_timeout";
  const absl::Duration d =
      response_timeout ? f->request.response_timeout : f->request.request_timeout;
  const char* phase =
      phase_name(*f, f->head_received || (f->conn && f->conn->first_byte_at() != TimePoint{}));
  fail(f, mark_timeout(absl::DeadlineExceededError(absl::StrCat(name, " (", absl::FormatDuration(d),
                                                                ") expired ", phase, " from ",
                                                                f->url.to_string())),
                       response_timeout ? FetchTimeout::kResponse : FetchTimeout::kRequest));
}

// --- Streamed upload ------------------------------------------------------------------------

void HTTPClientCore::restart_response_timeout(const FetchPtr& f, TimePoint from) {
  const absl::Duration h = f->request.response_timeout;
  if (h == absl::ZeroDuration() || h == absl::InfiniteDuration()) return;
  f->response_deadline = from + to_clock_duration(h);
  wake_at(f->conn, f->response_deadline);
}

void HTTPClientCore::on_upload_flushed(const FetchPtr& f, absl::Status status) {
  if (f->finished || f->phase != ClientFetch::Phase::kExchange) return;
  if (f->writes_in_flight > 0) --f->writes_in_flight;
  // A write error closes the stream: the read side reports it.
  if (!status.ok()) return;
  // Before the head, response_timeout runs while written bytes wait for the server and once
  // the request is complete, not while the producer has nothing to send: the server took this
  // write, so it starts again for what is still in flight, and stops if nothing is.
  const bool waiting = f->writes_in_flight > 0 || f->upload_done;
  if (!f->head_received && f->response_deadline != TimePoint{}) {
    if (waiting) {
      restart_response_timeout(f, loop.iteration_time());
    } else {
      f->response_deadline = TimePoint{};
    }
  }
  if (waiting) return;
  run_producer(f);
}

void HTTPClientCore::run_producer(const FetchPtr& f) {
  if (f->finished || f->in_producer || !f->request.body_producer) return;
  f->in_producer = true;
  HTTPClientBodyWriter writer(weak_from_this(), f);
  // The producer is moved out while it runs so that the fetch may end inside it (complete()
  // then drops the request's callables, which must not include the running one).
  auto producer = std::move(f->request.body_producer);
  const bool alive = call_user(f, "HTTPClient body_producer", nullptr, [&] { producer(writer); });
  if (!alive) return;
  f->in_producer = false;
  if (!f->upload_done) f->request.body_producer = std::move(producer);
}

bool HTTPClientCore::writer_active(const FetchPtr& f) const {
  return !shut_down && !f->finished && f->phase == ClientFetch::Phase::kExchange && !f->upload_done;
}

bool HTTPClientCore::writer_write(const FetchPtr& f, std::string chunk) {
  if (!writer_active(f)) return false;
  if (chunk.empty()) return true;
  f->uploaded += chunk.size();
  if (f->upload_length && f->uploaded > *f->upload_length) {
    fail(f, in_context(
                *f,
                absl::InvalidArgumentError(absl::StrCat(
                    "body_producer wrote more than the Content-Length (", *f->upload_length, ")")),
                f->head_received));
    return false;
  }
  std::string data;
  if (f->chunked_upload) {
    data = absl::StrCat(absl::Hex(chunk.size()), "\r\n", chunk, "\r\n");
  } else {
    data = std::move(chunk);
  }
  // Bytes wait for the server again: its silence counts (before the head; after it, the
  // response's own pace does).
  if (f->writes_in_flight++ == 0 && !f->head_received && !f->paused) {
    restart_response_timeout(f, loop.time());
  }
  f->conn->write(std::move(data), upload_flushed_callback(f));
  return true;
}

bool HTTPClientCore::writer_finish(const FetchPtr& f) {
  if (!writer_active(f)) return false;
  if (f->upload_length && f->uploaded != *f->upload_length) {
    fail(f, in_context(*f,
                       absl::InvalidArgumentError(
                           absl::StrCat("body_producer finished after ", f->uploaded,
                                        " bytes; the Content-Length is ", *f->upload_length)),
                       f->head_received));
    return false;
  }
  f->upload_done = true;
  f->request.body_producer = nullptr;
  if (f->chunked_upload) f->conn->write("0\r\n\r\n");
  if (!f->head_received && !f->paused && f->response_deadline == TimePoint{}) {
    restart_response_timeout(f, loop.time());  // the wait for the response begins
  }
  return true;
}

// --- Response events ------------------------------------------------------------------------

FetchPtr HTTPClientCore::fetch_of(ClientConnection& c, uint64_t exchange) const {
  FetchPtr f = c.fetch.lock();
  if (f == nullptr || f->finished || f->id != exchange || f->conn.get() != &c) return nullptr;
  return f;
}

void HTTPClientCore::on_head(ClientConnection& c, uint64_t exchange, HTTPResponseHead head) {
  FetchPtr f = fetch_of(c, exchange);
  if (f == nullptr) return;
  // A 408 on a reused connection is most often the server's word that it closed the idle
  // connection, sent before our request came (RFC 9110 §15.5.9 lets a client repeat the
  // request): the keep-alive race again, retried once on a fresh connection if it may be.
  if (head.status == 408 && f->response.reused_connection && retriable(*f)) {
    const absl::Status why = absl::UnavailableError("408 Request Timeout on a reused connection");
    c.close(why);
    return on_failed(c, exchange, why, /*response_started=*/false);
  }
  f->head_received = true;
  // From here response_timeout bounds the silence between body pieces (not the body's length).
  f->response_deadline = TimePoint{};
  if (!f->paused) restart_response_timeout(f, loop.iteration_time());
  // A 307 or 308 keeps the method and body: one from a body_producer cannot be produced again,
  // so that redirect is the final response, whatever its Location fields or max_redirects.
  if (f->request.follow_redirects && is_redirect(head.status) &&
      (head.status <= 303 || !f->streamed_body)) {
    // An empty Location names no target: the response is the final one (as curl).
    if (auto location = head.headers.get("Location"); location && !location->empty()) {
      // One URI (RFC 9110 §10.2.2): with several, an intermediary and this client could each
      // follow another.
      for (absl::string_view other : head.headers.get_all("Location")) {
        if (other == *location) continue;
        return fail(f, absl::DataLossError(absl::StrCat(
                           "malformed response: several different Location fields in the ",
                           head.status, " from ", f->url.to_string())));
      }
      if (f->redirects >= f->request.max_redirects) {
        return fail(f,
                    absl::AbortedError(absl::StrCat(
                        "too many redirects: max_redirects is ", f->request.max_redirects, ", and ",
                        f->url.to_string(), " redirects (", head.status, ") to ", *location)));
      }
      f->redirecting = true;
      f->redirect_body_read = 0;
      f->response.status = head.status;
      f->location = std::string(*location);
      // Its body is read and dropped, to keep the connection; one announced over the bound is
      // not worth reading.
      auto cl = head.headers.get("Content-Length");
      size_t n = 0;
      if (cl && !response_is_bodyless(f->method, head.status) && absl::SimpleAtoi(*cl, &n) &&
          n > kMaxRedirectBodyRead) {
        follow_redirect_now(f);
      }
      return;
    }
  }
  // A bodiless response's Content-Length describes a body that does not come.
  if (!f->request.streaming_callback && !response_is_bodyless(f->method, head.status)) {
    if (auto cl = head.headers.get("Content-Length")) {
      size_t n = 0;
      if (absl::SimpleAtoi(*cl, &n) && n > f->request.max_body_size) {
        return fail(f, absl::ResourceExhaustedError(absl::StrCat("response body of ", n,
                                                                 " bytes (Content-Length) exceeds "
                                                                 "max_body_size (",
                                                                 f->request.max_body_size,
                                                                 ") from ", f->url.to_string())));
      }
    }
  }
  if (f->request.header_callback) {
    // Moved out while it runs: the fetch may end (and be freed) inside it.
    auto cb = std::move(f->request.header_callback);
    if (!call_user(f, "HTTPClient header_callback", "reading the head", [&] { cb(head); })) return;
    f->request.header_callback = std::move(cb);
  }
  f->response.status = head.status;
  f->response.reason = std::move(head.reason);
  f->response.version_minor = head.version_minor;
  f->response.headers = std::move(head.headers);
}

void HTTPClientCore::on_interim(ClientConnection& c, uint64_t exchange, HTTPResponseHead head) {
  FetchPtr f = fetch_of(c, exchange);
  if (f == nullptr || !f->request.interim_callback) return;
  // Moved out while it runs: the fetch may end (and be freed) inside it.
  auto cb = std::move(f->request.interim_callback);
  if (!call_user(f, "HTTPClient interim_callback", "reading the head", [&] { cb(head); })) return;
  f->request.interim_callback = std::move(cb);
}

void HTTPClientCore::on_body(ClientConnection& c, uint64_t exchange, absl::string_view data) {
  FetchPtr f = fetch_of(c, exchange);
  if (f == nullptr) return;
  if (f->response_deadline != TimePoint{}) restart_response_timeout(f, loop.iteration_time());
  if (f->redirecting) {
    f->redirect_body_read += data.size();
    if (f->redirect_body_read > kMaxRedirectBodyRead) follow_redirect_now(f);
    return;
  }
  if (f->request.streaming_callback) {
    auto cb = std::move(f->request.streaming_callback);
    if (!call_user(f, "HTTPClient streaming_callback", nullptr, [&] { cb(data); })) return;
    f->request.streaming_callback = std::move(cb);
    return;
  }
  if (f->response.body.size() + data.size() > f->request.max_body_size) {
    return fail(f, absl::ResourceExhaustedError(absl::StrCat(
                       "response body exceeds max_body_size (", f->request.max_body_size,
                       " bytes) from ", f->url.to_string())));
  }
  f->response.body.append(data.data(), data.size());
}

void HTTPClientCore::on_complete(ClientConnection& c, uint64_t exchange, bool reusable) {
  FetchPtr f = fetch_of(c, exchange);
  std::shared_ptr<ClientConnection> conn = c.shared_from_this();
  // A response that came while the request body was still being streamed leaves the request
  // unfinished on the wire: that connection cannot carry another request. Unless the body had
  // a Content-Length and all of it was written: finish() would send nothing more (a server may
  // well answer at the last byte, before the producer calls it). The writes' flush callbacks
  // may still run: exchange_serial keeps them out of the next exchange.
  if (f != nullptr && !f->upload_done &&
      (f->chunked_upload || !f->upload_length || f->uploaded != *f->upload_length)) {
    reusable = false;
  }
  if (f != nullptr && f->conn == conn) {
    f->conn = nullptr;
    c.fetch.reset();
    stop_timers(*f);
    if (c.first_byte_at() != TimePoint{}) {
      f->response.timings.first_byte = to_duration(c.first_byte_at() - f->request_started);
    }
    f->response.timings.connect = f->connect_time;
  }
  if (reusable) {
    release(conn);  // may start a queued fetch's exchange on it at once
  } else {
    conn->close();
    drop(*conn);
  }
  if (shut_down || f == nullptr || f->finished) return;
  if (f->redirecting) return follow_redirect(f);
  complete(f, std::move(f->response));
}

void HTTPClientCore::follow_redirect_now(const FetchPtr& f) {
  if (std::shared_ptr<ClientConnection> conn = std::move(f->conn)) {
    conn->fetch.reset();
    conn->close();  // the rest of the redirect's body is on it
    drop(*conn);
  }
  stop_timers(*f);
  if (shut_down || f->finished) return;  // as on_complete(): drop() may have ended it
  follow_redirect(f);
}

namespace {
// A Location's spaces and bytes over 0x7F percent-encoded after its authority, as browsers
// send them (the WHATWG URL standard; curl too, but for a space in the query, which it sends as
// '+'); the scheme and authority are left as they are (an IDN host is no host once encoded),
// and any other byte a URL cannot hold for URL::resolve() to refuse.
std::string encode_location(absl::string_view location) {
  size_t from = 0;  // where the path starts: after "scheme://authority" or "//authority"
  const size_t scheme_end = location.find("://");
  if (scheme_end != absl::string_view::npos && location.find('/') > scheme_end) {
    from = scheme_end + 3;
  } else if (absl::StartsWith(location, "//")) {
    from = 2;
  }
  if (from > 0) from = std::min(location.find_first_of("/?#", from), location.size());
  std::string out(location.substr(0, from));
  out.reserve(location.size());
  for (char c : location.substr(from)) {
    const auto b = static_cast<unsigned char>(c);
    if (b == ' ' || b >= 0x80) {
      static constexpr char kHex[] = "0123456789ABCDEF";
      out += '%';
      out += kHex[b >> 4];
      out += kHex[b & 0xF];
    } else {
      out += c;
    }
  }
  return out;
}
}  // namespace

void HTTPClientCore::follow_redirect(const FetchPtr& f) {
  absl::StatusOr<URL> target = f->url.resolve(encode_location(f->location));
  if (!target.ok()) {
    return fail(
        f, absl::Status(target.status().code(), absl::StrCat("redirect from ", f->url.to_string(),
                                                             ": ", target.status().message())));
  }
  if (absl::Status s = check_transport(*target, options); !s.ok()) {
    return fail(f, absl::Status(s.code(), absl::StrCat("redirect from ", f->url.to_string(), ": ",
                                                       s.message())));
  }
  const int status = f->response.status;
  f->redirecting = false;
  if (!rewrite_for_redirect(*f, status == 0 ? 302 : status, *target)) {
    return complete(f, std::move(f->response));
  }
  ++f->redirects;
  ++counters.redirects;
  f->retried = false;
  acquire(f);
}

void HTTPClientCore::on_failed(ClientConnection& c, uint64_t exchange, absl::Status status,
                               bool response_started) {
  std::shared_ptr<ClientConnection> conn = c.shared_from_this();
  FetchPtr f = fetch_of(c, exchange);
  if (f == nullptr) return drop(*conn);
  f->conn = nullptr;
  c.fetch.reset();
  stop_timers(*f);
  // The keep-alive race: the server closed a pooled connection as the request went out. The
  // retry inherits the dead connection's slot (so the queue cannot take it first).
  if (!response_started && f->response.reused_connection && retriable(*f)) {
    f->retried = true;
    ++counters.retries;
    conn->counted = false;
    loop.remove_timeout(conn->timer);  // as drop() does: the dead connection watches nothing
    conn->timer = TimeoutHandle();
    return connect(f);
  }
  drop(*conn);
  if (shut_down || f->finished) return;
  fail(f, in_context(*f, status, response_started));
}

}  // namespace ioloop::net
