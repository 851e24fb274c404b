// File: examples/reverse_proxy.h
// The request path of examples/http_proxy: one loop's Proxy forwards each request its
// HTTPServer hands it to the upstream through an HTTPClient pool, and streams the answer back.
// Header-only, as each examples/*.cc is built as its own program; http_proxy.cc holds the
// flags, the threads and main(). What the proxy does to requests and responses is in
// http_proxy.cc's header comment and docs/guide.md §9.
//
// Threads: a Proxy, its Exchanges and every callback here run on the loop thread of the
// HTTPServer that calls the Proxy; one Proxy per loop.
#ifndef IOLOOP_EXAMPLES_REVERSE_PROXY_H_
#define IOLOOP_EXAMPLES_REVERSE_PROXY_H_

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "ioloop/io_loop.h"
#include "ioloop/logging.h"
#include "ioloop/net/http/http_body_handler.h"
#include "ioloop/net/http/http_client.h"
#include "ioloop/net/http/http_forwarding.h"
#include "ioloop/net/http/http_response_stream.h"
#include "ioloop/net/http/http_server.h"
#include "ioloop/net/http/url.h"
#include "ioloop/rate_limiter.h"
#include "ioloop/recycling_allocator.h"

namespace ioloop::examples {

// Response bytes queued towards a client above which the upstream is not read (and below
// which, once flushed, it is read again): bounds the memory of a fast upstream and a slow
// client to about this much per request.
constexpr size_t kHighWater = 256 * 1024;

struct ProxyConfig {
  net::URL upstream;
  absl::Duration connect_timeout;
  absl::Duration upstream_timeout;
  size_t max_upstream_connections = 64;
  absl::Duration queue_timeout;  // zero: requests wait in the pool's queue as long as it takes
  absl::Duration idle_timeout;
  size_t min_body_rate = 0;
  // A request body is read whole before the upstream is asked, up to this many bytes; past
  // them it streams. 0: every body streams from the header section on.
  size_t max_buffered_body = 64 * 1024;
  // TLS (http_proxy.cc's configure_tls()); null: plain. Contexts are immutable and shared by every
  // thread.
  std::shared_ptr<const net::TransportFactory> upstream_tls;  // https upstream
  std::shared_ptr<const net::TransportFactory> server_tls;    // --tls_cert/--tls_key
  absl::Duration handshake_timeout;
};

// The proxy's own answer to a request the upstream did not answer: `status`, `body` (of
// `content_type`, none when empty) under its Content-Length, and the end.
inline void answer(net::HTTPResponseStream& response, int status, absl::string_view content_type,
                   std::string body) {
  net::HTTPResponseWriter& head = response.head();
  head.set_status(status);
  head.mutable_headers().clear();
  if (!content_type.empty()) head.set_header("Content-Type", std::string(content_type));
  head.set_header("Content-Length", absl::StrCat(body.size()));
  response.write(std::move(body)).IgnoreError();
  response.finish().IgnoreError();
}

// An error answer with a one-line body: the reason phrase, then `why` if not empty.
inline void answer_error(net::HTTPResponseStream& response, int status, absl::string_view why) {
  answer(response, status, "text/plain",
         absl::StrCat(net::reason_phrase(status), why.empty() ? "" : ": ", why, "\n"));
}

class Proxy;

// One proxied request: the client's response and the upstream fetch, shared by the fetch's
// callbacks, the response's close callback and, for a request with a body, its Upload.
struct Exchange {
  // The proxy it runs on (which outlives it). Held here so that the callbacks capture only the
  // exchange: 16 bytes fit in AnyInvocable's inline storage, with `this` they would not.
  Proxy* proxy = nullptr;
  // Null while a streamed request body is still arriving (the response writer comes with
  // on_end, which an upstream's early error or close brings forward: answer_early()); what the
  // upstream sends meanwhile waits in early_* (its reading paused beyond kHighWater).
  std::shared_ptr<net::HTTPResponseStream> response;
  uint64_t fetch = 0;   // 0 once the fetch completed
  bool paused = false;  // the upstream is not read until the client drained
  std::optional<net::HTTPResponseHead> early_head;
  std::string early_body;
  std::optional<absl::Status> early_done;
  // Not 0: prepare() did not forward the request, and this (400, 501) with early_done's message
  // is the answer, or a 200 with `own_body` (a TRACE or OPTIONS whose Max-Forwards is 0). Kept
  // apart from the status's code, which HTTPClient's failures could share.
  int rejected = 0;
  std::string own_body;  // with rejected == 200: a TRACE's reflection, else empty
  // The upstream answered something: its final head or an interim one (a 504 is for nothing).
  bool upstream_answered = false;

  // The request body, client -> upstream (requests with a body only).
  net::HTTPBodyControl* control = nullptr;  // until on_end or on_close returned
  bool client_paused = false;               // on_body returned false: waits for pending to drain
  std::string pending;                      // body bytes not yet handed to the upstream
  net::HTTPClientBodyWriter writer;         // the upstream's side, from the body_producer
  bool writer_ready = false;                // everything written so far was flushed upstream
  bool body_complete = false;               // on_end ran: finish() once pending is written
  // The upstream refused the request before its body ended (an error status, or Connection:
  // close), or the exchange ended then: on_end comes early (answer_early()), the rest of the
  // body is dropped, and the upstream request is never finished (HTTPClient then closes that
  // connection, not pooled).
  bool answered_early = false;
};

// One loop's proxy: its upstream pool and the requests in flight on it. Loop thread only;
// lives as long as the loop's HTTPServer (declared before it).
class Proxy {
 public:
  Proxy(IOLoop& loop, const ProxyConfig& config)
      : loop_(loop),
        config_(config),
        origin_(config.upstream.origin()),
        client_(loop, client_options(config)) {}

  // A request without a body, complete: forward it.
  void handle(const net::HTTPRequest& request, net::HTTPResponseWriter& writer) {
    auto exchange = make_exchange();
    net::HTTPClientRequest up;
    if (prepare(*exchange, request, writer.remote_address(), up)) {
      launch(exchange, std::move(up), /*streamed_body=*/false);
    }
    attach(exchange, writer);
  }

  // A request with a body, at its header section (HTTPServer's on_headers factory). The body is
  // read up to config_.max_buffered_body before the upstream is asked: a client sending a small
  // body slowly then holds no upstream connection (nginx buffers every body). A longer body
  // streams from there on.
  std::unique_ptr<net::HTTPBodyHandler> on_headers(const net::HTTPRequest& head,
                                                   net::HTTPBodyControl& control) {
    auto exchange = make_exchange();
    exchange->control = &control;
    auto upload = std::make_unique<Upload>(*this, exchange);
    if (prepare(*exchange, head, control.remote_address(), upload->request)) {
      upload->buffering = true;
      if (config_.max_buffered_body == 0) upload->stream();
    } else {
      answer_early(*exchange);  // the proxy's own answer (a 400, a 501) needs none of the body
    }
    return upload;
  }

 private:
  // One per request, made and freed in bursts: its block is recycled per thread.
  std::shared_ptr<Exchange> make_exchange() {
    auto exchange = std::allocate_shared<Exchange>(RecyclingAllocator<Exchange>());
    exchange->proxy = this;
    return exchange;
  }

  // The body of one request, client -> upstream: buffered up to max_buffered_body, then
  // streamed with backpressure both ways: the client is not read while kHighWater bytes wait
  // for the upstream, and the upstream is given the next piece once everything before it was
  // flushed.
  class Upload final : public net::HTTPBodyHandler {
   public:
    Upload(Proxy& proxy, std::shared_ptr<Exchange> ex) : proxy_(proxy), ex_(std::move(ex)) {}

    // The upstream request, prepared and not sent yet while `buffering`.
    net::HTTPClientRequest request;
    bool buffering = false;

    // Sends the request now; the body follows as it arrives (pending first).
    void stream() {
      buffering = false;
      proxy_.launch(ex_, std::move(request), /*streamed_body=*/true);
    }

    bool on_body(absl::string_view chunk) override {
      if (!buffering && ex_->fetch == 0) {
        return true;  // the exchange ended (a 502) or was never sent (a 501): drop the rest
      }
      ex_->pending.append(chunk.data(), chunk.size());
      if (buffering) {
        if (ex_->pending.size() <= proxy_.config_.max_buffered_body) return true;
        stream();
      }
      pump_upload(*ex_);
      if (ex_->pending.size() < kHighWater) return true;
      ex_->client_paused = true;
      if (ex_->paused && !ex_->response) {
        proxy_.give_up_early(*ex_);  // resumes the client: the rest of the body is dropped
        return true;
      }
      return false;
    }
    void on_end(const net::HTTPRequest&, net::HTTPResponseWriter& writer) override {
      ex_->control = nullptr;
      if (buffering) {  // the whole body is in: sent with it, under its length
        buffering = false;
        request.body = std::exchange(ex_->pending, std::string());
        proxy_.launch(ex_, std::move(request), /*streamed_body=*/false);
      } else if (ex_->answered_early) {
        ex_->pending.clear();  // the upstream has answered: the rest of the body goes nowhere
      } else {
        ex_->body_complete = true;
        pump_upload(*ex_);
      }
      proxy_.attach(ex_, writer);
    }
    void on_close(const absl::Status&) override {
      // The client left (or sent a bad body) before the end of its request.
      ex_->control = nullptr;
      if (ex_->fetch != 0) proxy_.client_.cancel(ex_->fetch);
    }

   private:
    Proxy& proxy_;
    std::shared_ptr<Exchange> ex_;
  };

  static net::HTTPClientOptions client_options(const ProxyConfig& config) {
    net::HTTPClientOptions o;
    o.max_connections_per_host = config.max_upstream_connections;
    o.user_agent.clear();  // forward the client's User-Agent, add none
    o.tls = config.upstream_tls;
    return o;
  }

  // Makes `up`, the upstream request for `request`: false if the proxy answers it itself
  // (exchange.rejected and early_done say how; the client gets that at once, before any body,
  // and the connection then closes).
  bool prepare(Exchange& exchange, const net::HTTPRequest& request, const std::string& peer,
               net::HTTPClientRequest& up) {
    // net::HTTPClient sends origin-form targets only: no tunnel, no asterisk form.
    if (request.method() == "CONNECT" || request.target() == "*") {
      exchange.rejected = 501;
      exchange.early_done = absl::UnimplementedError(
          request.method() == "CONNECT"
              ? std::string("CONNECT: this reverse proxy does not open tunnels")
              : absl::StrCat(request.method(),
                             " *: the asterisk form is not forwarded to the upstream"));
      return false;
    }
    // RFC 9110 §7.6.2: a TRACE or OPTIONS with Max-Forwards 0 is answered here, as if the proxy
    // were the origin; above 0 it goes on one less. Other methods ignore the field.
    const std::optional<uint64_t> forwards =
        request.method() == "TRACE" || request.method() == "OPTIONS" ? max_forwards(request)
                                                                     : std::nullopt;
    if (forwards == 0u) {
      exchange.rejected = 200;
      if (request.method() == "TRACE") exchange.own_body = reflect(request);
      exchange.early_done = absl::CancelledError("Max-Forwards: 0");
      return false;
    }
    upstream_request(request, peer, up);
    if (forwards) up.headers.set("Max-Forwards", absl::StrCat(*forwards - 1));
    // A target the server lets through but HTTPClient's URL parsing refuses (a '%' without two
    // hex digits after it, a non-ASCII byte) is the client's malformed request: a 400 as nginx
    // answers it, and the upstream is not contacted. The fetch would fail too, but as a 502 that
    // blames the upstream. URL::check_target is that parsing's rule for a target.
    const absl::string_view target = absl::string_view(up.url).substr(origin_.size());
    if (absl::Status bad = net::URL::check_target(target); !bad.ok()) {
      exchange.rejected = 400;
      exchange.early_done = std::move(bad);
      return false;
    }
    return true;
  }

  // Max-Forwards' value (1*DIGIT), or nullopt when there is none or it is not a number.
  static std::optional<uint64_t> max_forwards(const net::HTTPRequest& request) {
    const std::optional<absl::string_view> value = request.headers().get("Max-Forwards");
    uint64_t n = 0;
    if (!value || value->empty() ||
        !std::all_of(value->begin(), value->end(), [](char c) { return absl::ascii_isdigit(c); }) ||
        !absl::SimpleAtoi(*value, &n)) {
      return std::nullopt;
    }
    return n;
  }

  // A TRACE's reflection, as its final recipient sends it back (RFC 9110 §9.3.8): the request
  // line and fields as received, without those likely to carry credentials.
  static std::string reflect(const net::HTTPRequest& request) {
    std::string out = absl::StrCat(request.method(), " ", request.target(), " HTTP/1.",
                                   request.version_minor(), "\r\n");
    for (const auto& [name, value] : request.headers()) {
      if (absl::EqualsIgnoreCase(name, "Authorization") ||
          absl::EqualsIgnoreCase(name, "Proxy-Authorization") ||
          absl::EqualsIgnoreCase(name, "Cookie")) {
        continue;
      }
      absl::StrAppend(&out, name, ": ", value, "\r\n");
    }
    out += "\r\n";
    return out;
  }

  // Starts the fetch of `up`. streamed_body: its body comes through the Upload, pending first.
  void launch(const std::shared_ptr<Exchange>& exchange, net::HTTPClientRequest&& up,
              bool streamed_body) {
    std::weak_ptr<Exchange> weak = exchange;
    if (streamed_body) {
      up.body_producer = [weak](net::HTTPClientBodyWriter& writer) {
        std::shared_ptr<Exchange> ex = weak.lock();
        if (!ex) return;
        ex->writer = writer;
        ex->writer_ready = true;
        pump_upload(*ex);
      };
    }
    up.header_callback = [weak](const net::HTTPResponseHead& head) {
      if (auto ex = weak.lock()) on_head(*ex, head);
    };
    up.interim_callback = [weak](const net::HTTPResponseHead& head) {
      if (auto ex = weak.lock()) on_interim(*ex, head);
    };
    up.streaming_callback = [weak](absl::string_view chunk) {
      if (auto ex = weak.lock()) ex->proxy->on_body(ex, chunk);
    };
    exchange->fetch = client_.fetch(
        std::move(up),
        [exchange](absl::StatusOr<net::HTTPClientResponse> r) { on_done(*exchange, r.status()); });
  }

  // The request is complete: take over its response and replay what the upstream already sent.
  void attach(const std::shared_ptr<Exchange>& ex, net::HTTPResponseWriter& writer) {
    ex->response = writer.defer();
    std::weak_ptr<Exchange> weak = ex;
    // The client left mid-response: stop the fetch; its upstream connection is closed rather
    // than pooled, since the rest of that response would still be on it.
    ex->response->set_close_callback([weak](absl::Status) {
      if (auto self = weak.lock(); self && self->fetch != 0)
        self->proxy->client_.cancel(self->fetch);
    });
    if (ex->early_head) on_head(*ex, *std::exchange(ex->early_head, std::nullopt));
    if (!ex->early_body.empty()) {
      ex->response->write(std::exchange(ex->early_body, std::string())).IgnoreError();
    }
    if (ex->early_done) {
      on_done(*ex, *ex->early_done);
    } else if (ex->paused) {
      resume_when_flushed(ex);
    }
  }

  // Hands the pending body to the upstream when it can take it, finishes the body after the
  // last piece, and lets the client send more once little is pending.
  static void pump_upload(Exchange& ex) {
    if (ex.writer_ready && !ex.pending.empty()) {
      ex.writer_ready = false;
      ex.writer.write(std::exchange(ex.pending, std::string()));
    }
    if (ex.writer_ready && ex.body_complete) {
      ex.writer_ready = false;
      ex.writer.finish();
    }
    if (ex.client_paused && ex.pending.size() < kHighWater && ex.control != nullptr) {
      ex.client_paused = false;
      ex.control->resume();
    }
  }

  void upstream_request(const net::HTTPRequest& request, const std::string& peer,
                        net::HTTPClientRequest& up) {
    up.method = request.method();
    // Only a path and query follow the upstream's origin (target text there could name another
    // host): "http://host/p?q" is sent on as "/p?q", its authority being the Host field. "*"
    // and CONNECT's form, the only others the server lets through, get prepare()'s 501.
    absl::string_view path = request.path();
    if (path.empty() || path[0] != '/') path = "/";
    const absl::string_view query = request.query();
    // "/p?" is not "/p" (RFC 9110 §7.7: a proxy does not rewrite the path or query), and
    // query() is empty for both: the target's text tells. Only a target longer than its path
    // (a query, a fragment or the absolute form) is searched; "/p" alone costs a comparison.
    const std::string& target = request.target();
    const bool has_query =
        !query.empty() || (target.size() > path.size() && target.find('?') != std::string::npos);
    up.url.reserve(origin_.size() + path.size() + query.size() + 1);
    up.url = origin_;
    up.url.append(path.data(), path.size());
    if (has_query) absl::StrAppend(&up.url, "?", query);
    // A streamed body keeps the client's Content-Length (sent unframed) or goes chunked without
    // one; a body read whole goes under its own length (HTTPClient writes it).
    // Room for the two fields appended next (X-Forwarded-For, Via): each append to a full
    // vector would move every field.
    net::copy_end_to_end_fields(request.headers(), up.headers, 2);
    if (!peer.empty()) net::append_forwarded_for(up.headers, peer);
    net::append_via(up.headers, request.version_minor(), "ioloop");
    up.connect_timeout = config_.connect_timeout;
    // --upstream_timeout bounds the upstream's silence (response_timeout): before the
    // response's head, from the request's first write (time in the pool's queue excluded),
    // while request body bytes wait for the upstream, and from the body's end; then between
    // pieces of the response body. Not while the proxy waits for the client's body or for the
    // client to drain the response: uploads and downloads last as long as the client takes.
    up.response_timeout = config_.upstream_timeout;
    up.request_timeout = absl::InfiniteDuration();
    up.queue_timeout = config_.queue_timeout;
    up.follow_redirects = false;  // a proxy passes redirects on
  }

  static void on_head(Exchange& ex, const net::HTTPResponseHead& upstream) {
    ex.upstream_answered = true;
    if (!ex.response) {
      // The upstream answered before the request body ended. An error (a 413, a 401) or a
      // Connection: close says it reads no more of it (RFC 9110 §15.5, RFC 9112 §9.6): the
      // client gets that now rather than after a body nobody reads, which it may never finish
      // sending. The server runs on_end from a callback of its own, which replays this head
      // (attach()). Another early head (a 200 streaming as the body arrives) goes out once the
      // body is in, as the upload goes on.
      ex.early_head = upstream;
      const bool closes =
          upstream.headers.has_token("Connection", "close") ||
          (upstream.version_minor == 0 && !upstream.headers.has_token("Connection", "keep-alive"));
      if (upstream.status >= 400 || closes) answer_early(ex);
      return;
    }
    if (ex.response->closed()) return;
    net::HTTPResponseWriter& head = ex.response->head();
    head.set_status(upstream.status, upstream.reason);
    head.mutable_headers().clear();
    // HTTPServer writes its own Date (and drops a handler's), as nginx's proxy_pass does: the
    // upstream's is not worth a copy.
    net::copy_end_to_end_fields(upstream.headers, head.mutable_headers(), 1, "Date");
    net::append_via(head.mutable_headers(), upstream.version_minor, "ioloop");
  }

  // RFC 9110 §15.2: a proxy forwards the 1xx it did not ask for (103 Early Hints, 102), with
  // the same field rules as a final head. Not 100 Continue: the server answered the client's
  // Expect itself. Dropped while the request body is still arriving (no response to put it
  // before yet) and for an HTTP/1.0 client (send_interim sends nothing).
  // Also dropped while kHighWater waits for the client: an upstream may send them without end,
  // and they carry no part of the response. (Not paused like the body: waiting for a flush would
  // send the final head before the upstream gave it.)
  static void on_interim(Exchange& ex, const net::HTTPResponseHead& upstream) {
    ex.upstream_answered = true;
    if (upstream.status == 100 || !ex.response || ex.response->closed()) return;
    if (ex.response->write_buffer_size() >= kHighWater) return;
    net::HTTPHeaders fields;
    net::copy_end_to_end_fields(upstream.headers, fields, 1);
    net::append_via(fields, upstream.version_minor, "ioloop");
    ex.response->send_interim(upstream.status, upstream.reason, fields).IgnoreError();
  }

  void on_body(const std::shared_ptr<Exchange>& ex, absl::string_view chunk) {
    if (!ex->response) {
      // The head came before the request's body ended (on_head): until the server's on_end
      // makes the client's response, hold up to kHighWater, then read no more of the upstream.
      ex->early_body.append(chunk.data(), chunk.size());
      if (ex->paused || ex->early_body.size() < kHighWater) return;
      if (client_.pause_reading(ex->fetch)) ex->paused = true;
      if (ex->paused && ex->client_paused && !ex->answered_early) give_up_early(*ex);
      return;
    }
    if (!ex->response->write(std::string(chunk)).ok() || ex->paused) return;
    if (ex->response->write_buffer_size() < kHighWater) return;
    // The client is slower than the upstream: stop reading the upstream until it caught up.
    if (!client_.pause_reading(ex->fetch)) return;
    ex->paused = true;
    resume_when_flushed(ex);
  }

  // The client's request is answered before its body ended (answer_early()): on_end comes from
  // the server's callback, the rest of the body is dropped, the upstream's request unfinished.
  static void answer_early(Exchange& ex) {
    if (ex.control == nullptr || ex.answered_early) return;
    ex.answered_early = true;
    ex.control->answer_early();
  }

  // Neither side can go on: an early response the upstream did not end the request with fills
  // what the proxy holds for it (the upstream is not read), and the request body waits for an
  // upstream that does not read it (the client is not read), typically because the upstream
  // blocks writing that response. Waiting would hold both connections and a pool slot for ever:
  // the fetch is cancelled (its connection closed), the rest of the body dropped, and the
  // client gets a 502 at once (on_done() answers early).
  void give_up_early(Exchange& ex) {
    ex.early_head.reset();
    ex.early_body.clear();
    client_.cancel(ex.fetch);  // on_done runs inside: it resumes the client
    ex.early_done = absl::UnavailableError(absl::StrCat(
        "the upstream's response (over ", kHighWater,
        " bytes) came before the request body ended, and the upstream stopped reading the body"));
  }

  void resume_when_flushed(const std::shared_ptr<Exchange>& ex) {
    ex->response->flush([this, weak = std::weak_ptr<Exchange>(ex)](absl::Status) {
      std::shared_ptr<Exchange> self = weak.lock();
      if (!self || !self->paused) return;
      self->paused = false;
      if (self->fetch != 0) client_.resume_reading(self->fetch);
    });
  }

  static void on_done(Exchange& ex, const absl::Status& status) {
    ex.fetch = 0;
    // A body still arriving is dropped from here on (Upload::on_body); let it come.
    ex.pending.clear();
    if (ex.client_paused && ex.control != nullptr) {
      ex.client_paused = false;
      ex.control->resume();
    }
    if (!ex.response) {
      // The exchange ended (a whole early response, or a failure) while the request body is
      // still arriving: nothing will read the rest, so the client's answer need not wait for it.
      ex.early_done = status;
      answer_early(ex);
      return;
    }
    net::HTTPResponseStream& response = *ex.response;
    if (response.closed()) return;
    if (status.ok()) {
      response.finish().IgnoreError();
      return;
    }
    if (response.head_sent()) {
      // The upstream died mid-response: the client sees its connection end before the
      // response's end, which is the only honest signal left. The server logs the failure
      // (rate-limited), so the reason names the upstream here instead of in a line of ours.
      response.abort(absl::Status(
          status.code(), absl::StrCat("upstream ", ex.proxy->origin_,
                                      "/: response cut short to the client: ", status.message())));
      return;
    }
    // A request prepare() did not forward: 501 for a form it cannot carry, 400 for a malformed
    // target; the client's request, not the upstream, and the reason names no upstream.
    if (ex.rejected == 200) {
      const absl::string_view type = ex.own_body.empty() ? "" : "message/http";
      answer(response, 200, type, std::move(ex.own_body));
      return;
    }
    if (ex.rejected != 0) {
      answer_error(response, ex.rejected, status.message());
      return;
    }
    // No response from the upstream within --upstream_timeout of the request being sent (not
    // even an interim one): 504.
    // No upstream connection free within --queue_timeout: 503 (the upstream was not asked).
    // Everything else before the client got a byte (refused, unreachable, connect timeout,
    // reset, malformed, a head and then silence): 502, a socket's own ETIMEDOUT included, as
    // nginx answers it.
    int code = 502;
    switch (net::fetch_timeout(status)) {
      case net::FetchTimeout::kResponse:
        if (!ex.upstream_answered) code = 504;
        break;
      case net::FetchTimeout::kQueue:
        code = 503;
        break;
      default:
        break;
    }
    ex.proxy->log_failure(status, code);
    answer_error(response, code, "");
  }

  // The upstream failed a request; the client got `answered`. The reason names the upstream's
  // address and what went wrong there, so it goes to the log, not to the client (nginx logs
  // these at error level and sends a generic page): a warning, at most a few lines a second
  // per loop, since a dead upstream fails every request.
  void log_failure(const absl::Status& status, int answered) {
    uint64_t suppressed = 0;
    if (!log_limiter_.allow(loop_.time(), &suppressed)) return;
    // The code and message: ToString() would add the status's payloads.
    logger().warn("upstream {}/: {} to the client: {}: {}{}", origin_, answered,
                  absl::StatusCodeToString(status.code()), std::string(status.message()),
                  suppressed_note(suppressed));
  }

  IOLoop& loop_;
  const ProxyConfig& config_;
  const std::string origin_;  // scheme://authority of the upstream, the start of every net::URL
  net::HTTPClient client_;
  LogRateLimiter log_limiter_{5, std::chrono::seconds(1)};
};

}  // namespace ioloop::examples

#endif  // IOLOOP_EXAMPLES_REVERSE_PROXY_H_
