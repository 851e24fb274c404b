// http_proxy: a reverse proxy on HTTPServer (deferred responses) and HTTPClient (pooled
// keep-alive connections to the upstream).
//
//   http_proxy --upstream=http://127.0.0.1:8080 [--port=8000] [--address=] [--threads=1]
//              [--poller=epoll|poll|select] [--connect_timeout=5s] [--upstream_timeout=60s]
//              [--max_upstream_connections=64] [--idle_timeout=60s] [--min_body_rate=500]
//              [--log_level=info]
//              [--upstream_ca_file=PEM] [--tls_cert=PEM --tls_key=PEM] [--handshake_timeout=10s]
//   curl -i http://127.0.0.1:8000/any/path    # what the upstream answers, plus "Via: 1.1 ioloop"
//   http_proxy --upstream=https://origin.example:443 --tls_cert=chain.pem --tls_key=key.pem
//
// TLS, on either side or both:
//  - --upstream=https://HOST:PORT: upstream connections are TLS (ALPN "http/1.1"); the
//    upstream's certificate must be issued for HOST and verify against the system's trusted
//    CAs or, with --upstream_ca_file, against that PEM file's CAs only. A handshake or
//    verification failure is a 502 naming the reason (and a debug log line), like a refused
//    connect; --connect_timeout bounds the handshake too.
//  - --tls_cert/--tls_key: clients speak HTTPS on --port (TLS 1.2 or 1.3, ALPN "http/1.1");
//    --handshake_timeout bounds each client's handshake from accept, and the proxy's own
//    timeouts (--idle_timeout, the header timeout) start once it is done. A client whose
//    handshake fails is closed (rate-limited log line); the proxy goes on.
//
// What it does to each request and response (RFC 9110 §7.6; docs/guide.md §9 has the detail):
//  - forwards method, target, fields and body both ways; Host as received (for an absolute-form
//    target, the server made it the target's authority: RFC 9112 §3.2.2); removes hop-by-hop
//    fields both ways (http_forwarding.h); re-frames bodies for each side; appends the client
//    to X-Forwarded-For and "1.x ioloop" to Via both ways;
//  - streams bodies both ways with backpressure (kHighWater each way). A response that starts
//    before the request body ended is held (up to kHighWater) until the request is complete;
//    if the body meanwhile waits kHighWater for an upstream that does not read it, the fetch
//    is cancelled and the client gets a 502;
//  - 502 when the upstream refuses or cannot be reached within --connect_timeout, 504 when it
//    is silent for --upstream_timeout before its response (that connection is then closed, not
//    pooled; the client's stays usable); silence mid-body, or an upstream that dies, cuts the
//    response and closes the client connection; a client that leaves mid-response cancels the
//    fetch (its upstream connection is closed, not pooled);
//  - a client holds an upstream connection only while it keeps up: a request body slower than
//    --min_body_rate is a 408, and a response the client takes no byte of for --idle_timeout
//    (twice, at most) closes its connection (HTTPServerOptions' idle_timeout);
//  - 501 for CONNECT and for OPTIONS * (HTTPClient sends origin-form targets only);
//  - upstream connections are pooled per thread (--max_upstream_connections; beyond it requests
//    wait in the pool's FIFO queue); an idempotent request that meets a pooled connection the
//    upstream had just closed is retried once on a fresh one.
// Pipelined requests are answered in order (HTTPServer runs the next one when the previous
// response finished). SIGINT or SIGTERM stops it and it exits 0.
#include <sys/socket.h>

#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "example_support.h"
#include "example_tls.h"
#include "ioloop/io_loop.h"
#include "ioloop/logging.h"
#include "ioloop/net/bind.h"
#include "ioloop/net/http/http_body_handler.h"
#include "ioloop/net/http/http_client.h"
#include "ioloop/net/http/http_forwarding.h"
#include "ioloop/net/http/http_response_stream.h"
#include "ioloop/net/http/http_server.h"
#include "ioloop/net/http/url.h"

ABSL_FLAG(int, port, 8000, "TCP port; 0 lets the kernel pick one (printed on stdout)");
ABSL_FLAG(std::string, address, "",
          "address to listen on; empty means every local address, IPv4 and IPv6");
ABSL_FLAG(std::string, upstream, "",
          "the server to forward to, http://HOST:PORT or https://HOST:PORT (required)");
ABSL_FLAG(std::string, upstream_ca_file, "",
          "https upstream: trust only the CAs in this PEM file (default: the system's CAs)");
ABSL_FLAG(std::string, tls_cert, "",
          "PEM certificate chain (leaf first); with --tls_key, serve HTTPS on --port");
ABSL_FLAG(std::string, tls_key, "", "PEM private key of --tls_cert");
ABSL_FLAG(absl::Duration, handshake_timeout, absl::Seconds(10),
          "TLS: most time from accept to the end of a client's handshake");
ABSL_FLAG(int, threads, 1, "event loops (threads); each has its own listener and upstream pool");
ABSL_FLAG(std::string, poller, "epoll", "readiness backend: epoll, poll or select");
ABSL_FLAG(absl::Duration, connect_timeout, absl::Seconds(5),
          "502 when the upstream cannot be reached within this");
ABSL_FLAG(absl::Duration, upstream_timeout, absl::Seconds(60),
          "504 when no response arrives within this of the request being sent; a response "
          "body silent this long is cut (the client connection closes)");
ABSL_FLAG(int, max_upstream_connections, 64, "upstream connections per thread (pool size)");
ABSL_FLAG(absl::Duration, idle_timeout, absl::Seconds(60),
          "close a client connection idle this long, or not reading its response (0 disables)");
ABSL_FLAG(int, min_body_rate, 500,
          "408 for a request body slower than this many bytes/s over 10 s (0 disables)");
ABSL_FLAG(std::string, log_level, "info", "trace, debug, info, warn, error, critical or off");

namespace {

using ioloop::IOLoop;
using ioloop::logger;
using ioloop::net::HTTPBodyControl;
using ioloop::net::HTTPBodyHandler;
using ioloop::net::HTTPClient;
using ioloop::net::HTTPClientBodyWriter;
using ioloop::net::HTTPClientRequest;
using ioloop::net::HTTPClientResponse;
using ioloop::net::HTTPRequest;
using ioloop::net::HTTPResponseHead;
using ioloop::net::HTTPResponseStream;
using ioloop::net::HTTPResponseWriter;
using ioloop::net::HTTPServer;
using ioloop::net::URL;

// Response bytes queued towards a client above which the upstream is not read (and below
// which, once flushed, it is read again): bounds the memory of a fast upstream and a slow
// client to about this much per request.
constexpr size_t kHighWater = 256 * 1024;

struct Config {
  URL upstream;
  absl::Duration connect_timeout;
  absl::Duration upstream_timeout;
  size_t max_upstream_connections = 64;
  absl::Duration idle_timeout;
  size_t min_body_rate = 0;
  // TLS (configure_tls()); null: plain. Contexts are immutable and shared by every thread.
  std::shared_ptr<const ioloop::net::TransportFactory> upstream_tls;  // https upstream
  std::shared_ptr<const ioloop::net::TransportFactory> server_tls;    // --tls_cert/--tls_key
  absl::Duration handshake_timeout;
};

// The TLS half of `config`, from --upstream's scheme, --upstream_ca_file, --tls_cert,
// --tls_key and --handshake_timeout: InvalidArgument for flags that cannot work together,
// TLSContext's error (naming the file) for a file it cannot use.
absl::Status configure_tls(Config& config) {
  namespace ex = ioloop::examples;
  const std::string ca_file = absl::GetFlag(FLAGS_upstream_ca_file);
  if (config.upstream.scheme == "https") {
    auto client = ex::client_tls_context(ca_file, {"http/1.1"});
    if (!client.ok()) return client.status();
    config.upstream_tls = *std::move(client);
  } else if (!ca_file.empty()) {
    return absl::InvalidArgumentError("--upstream_ca_file needs an https:// --upstream");
  }
  auto server = ex::server_tls_context(absl::GetFlag(FLAGS_tls_cert), absl::GetFlag(FLAGS_tls_key),
                                       {"http/1.1"});
  if (!server.ok()) return server.status();
  config.server_tls = *std::move(server);
  config.handshake_timeout = absl::GetFlag(FLAGS_handshake_timeout);
  if (config.handshake_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("--handshake_timeout must be positive");
  }
  return absl::OkStatus();
}

// The status and a one-line body for a request the upstream did not answer.
void answer_error(HTTPResponseStream& response, int status, absl::string_view why) {
  HTTPResponseWriter& head = response.head();
  head.set_status(status);
  head.mutable_headers().clear();
  head.set_header("Content-Type", "text/plain");
  const std::string body = absl::StrCat(ioloop::net::reason_phrase(status), ": ", why, "\n");
  head.set_header("Content-Length", absl::StrCat(body.size()));
  response.write(body).IgnoreError();
  response.finish().IgnoreError();
}

class Proxy;

// One proxied request: the client's response and the upstream fetch, shared by the fetch's
// callbacks, the response's close callback and, for a request with a body, its Upload.
struct Exchange {
  // The proxy it runs on (which outlives it). Held here so that the callbacks capture only the
  // exchange: 16 bytes fit in AnyInvocable's inline storage, with `this` they would not.
  Proxy* proxy = nullptr;
  // Null while a streamed request body is still arriving (the response writer comes with
  // on_end); what the upstream sends meanwhile waits in early_* (its reading paused).
  std::shared_ptr<HTTPResponseStream> response;
  uint64_t fetch = 0;   // 0 once the fetch completed
  bool paused = false;  // the upstream is not read until the client drained
  std::optional<HTTPResponseHead> early_head;
  std::string early_body;
  std::optional<absl::Status> early_done;

  // The request body, client -> upstream (requests with a body only).
  HTTPBodyControl* control = nullptr;  // until on_end or on_close returned
  bool client_paused = false;          // on_body returned false: waits for pending to drain
  std::string pending;                 // body bytes not yet handed to the upstream
  HTTPClientBodyWriter writer;         // the upstream's side, from the body_producer
  bool writer_ready = false;           // everything written so far was flushed upstream
  bool body_complete = false;          // on_end ran: finish() once pending is written
};

// One loop's proxy: its upstream pool and the requests in flight on it. Loop thread only;
// lives as long as the loop's HTTPServer (declared before it).
class Proxy {
 public:
  Proxy(IOLoop& loop, const Config& config)
      : config_(config), origin_(config.upstream.origin()), client_(loop, client_options(config)) {}

  // A request without a body, complete: forward it.
  void handle(const HTTPRequest& request, HTTPResponseWriter& writer) {
    auto exchange = std::make_shared<Exchange>();
    exchange->proxy = this;
    start(exchange, request, writer.remote_address(), /*streamed_body=*/false);
    attach(exchange, writer);
  }

  // A request with a body, at its header section: forward the head now and the body as it
  // arrives (HTTPServer's on_headers factory).
  std::unique_ptr<HTTPBodyHandler> on_headers(const HTTPRequest& head, HTTPBodyControl& control) {
    auto exchange = std::make_shared<Exchange>();
    exchange->proxy = this;
    exchange->control = &control;
    start(exchange, head, control.remote_address(), /*streamed_body=*/true);
    return std::make_unique<Upload>(*this, std::move(exchange));
  }

 private:
  // The streamed body of one request, client -> upstream, with backpressure both ways: the
  // client is not read while kHighWater bytes wait for the upstream, and the upstream is
  // given the next piece once everything before it was flushed.
  class Upload final : public HTTPBodyHandler {
   public:
    Upload(Proxy& proxy, std::shared_ptr<Exchange> ex) : proxy_(proxy), ex_(std::move(ex)) {}
    bool on_body(absl::string_view chunk) override {
      if (ex_->fetch == 0) return true;  // the exchange already ended (a 502): drop the rest
      ex_->pending.append(chunk.data(), chunk.size());
      pump_upload(*ex_);
      if (ex_->pending.size() < kHighWater) return true;
      ex_->client_paused = true;
      if (ex_->paused && !ex_->response) {
        proxy_.give_up_early(*ex_);  // resumes the client: the rest of the body is dropped
        return true;
      }
      return false;
    }
    void on_end(const HTTPRequest&, HTTPResponseWriter& writer) override {
      ex_->control = nullptr;
      ex_->body_complete = true;
      pump_upload(*ex_);
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

  static ioloop::net::HTTPClientOptions client_options(const Config& config) {
    ioloop::net::HTTPClientOptions o;
    o.max_connections_per_host = config.max_upstream_connections;
    o.user_agent.clear();  // forward the client's User-Agent, add none
    o.tls = config.upstream_tls;
    return o;
  }

  // Starts the upstream fetch for `request` (its body, if any, comes through the Upload).
  void start(const std::shared_ptr<Exchange>& exchange, const HTTPRequest& request,
             const std::string& peer, bool streamed_body) {
    // HTTPClient sends origin-form targets only: no tunnel, no asterisk form. The client gets
    // a 501 (on_done) once its request is complete; a body is dropped as it arrives.
    if (request.method() == "CONNECT" || request.target() == "*") {
      exchange->early_done = absl::UnimplementedError(
          request.method() == "CONNECT"
              ? "CONNECT: this reverse proxy does not open tunnels"
              : "OPTIONS *: the asterisk form is not forwarded to the upstream");
      return;
    }
    HTTPClientRequest up = upstream_request(request, peer);
    std::weak_ptr<Exchange> weak = exchange;
    if (streamed_body) {
      up.body_producer = [weak](HTTPClientBodyWriter& writer) {
        std::shared_ptr<Exchange> ex = weak.lock();
        if (!ex) return;
        ex->writer = writer;
        ex->writer_ready = true;
        pump_upload(*ex);
      };
    }
    up.header_callback = [weak](const HTTPResponseHead& head) {
      if (auto ex = weak.lock()) on_head(*ex, head);
    };
    up.streaming_callback = [weak](absl::string_view chunk) {
      if (auto ex = weak.lock()) ex->proxy->on_body(ex, chunk);
    };
    exchange->fetch = client_.fetch(
        std::move(up),
        [exchange](absl::StatusOr<HTTPClientResponse> r) { on_done(*exchange, r.status()); });
  }

  // The request is complete: take over its response and replay what the upstream already sent.
  void attach(const std::shared_ptr<Exchange>& ex, HTTPResponseWriter& writer) {
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

  HTTPClientRequest upstream_request(const HTTPRequest& request, const std::string& peer) {
    HTTPClientRequest up;
    up.method = request.method();
    // Only a path and query follow the upstream's origin (target text there could name another
    // host): "http://host/p?q" is sent on as "/p?q", its authority being the Host field. "*"
    // and CONNECT's form, the only others the server lets through, get start()'s 501.
    absl::string_view path = request.path();
    if (path.empty() || path[0] != '/') path = "/";
    const absl::string_view query = request.query();
    up.url.reserve(origin_.size() + path.size() + query.size() + 1);
    up.url = origin_;
    up.url.append(path.data(), path.size());
    if (!query.empty()) absl::StrAppend(&up.url, "?", query);
    // A body keeps the client's Content-Length (sent unframed) or goes chunked without one.
    // Room for the two fields appended next (X-Forwarded-For, Via): each append to a full
    // vector would move every field.
    ioloop::net::copy_end_to_end_fields(request.headers(), up.headers, 2);
    if (!peer.empty()) ioloop::net::append_forwarded_for(up.headers, peer);
    ioloop::net::append_via(up.headers, request.version_minor(), "ioloop");
    up.connect_timeout = config_.connect_timeout;
    // --upstream_timeout bounds the upstream's silence (response_timeout): before the
    // response's head, from the request's first write (time in the pool's queue excluded),
    // while request body bytes wait for the upstream, and from the body's end; then between
    // pieces of the response body. Not while the proxy waits for the client's body or for the
    // client to drain the response: uploads and downloads last as long as the client takes.
    up.response_timeout = config_.upstream_timeout;
    up.request_timeout = absl::InfiniteDuration();
    up.follow_redirects = false;  // a proxy passes redirects on
    return up;
  }

  static void on_head(Exchange& ex, const HTTPResponseHead& upstream) {
    if (!ex.response) {
      ex.early_head = upstream;
      return;
    }
    if (ex.response->closed()) return;
    HTTPResponseWriter& head = ex.response->head();
    head.set_status(upstream.status, upstream.reason);
    head.mutable_headers().clear();
    // HTTPServer writes its own Date (and drops a handler's), as nginx's proxy_pass does: the
    // upstream's is not worth a copy.
    ioloop::net::copy_end_to_end_fields(upstream.headers, head.mutable_headers(), 1, "Date");
    ioloop::net::append_via(head.mutable_headers(), upstream.version_minor, "ioloop");
  }

  void on_body(const std::shared_ptr<Exchange>& ex, absl::string_view chunk) {
    if (!ex->response) {
      // The upstream answers before the request's body ended (the response goes out once the
      // request is complete): hold up to kHighWater of it, then read no more of the upstream
      // until the client's response exists.
      ex->early_body.append(chunk.data(), chunk.size());
      if (ex->paused || ex->early_body.size() < kHighWater) return;
      if (client_.pause_reading(ex->fetch)) ex->paused = true;
      if (ex->paused && ex->client_paused) give_up_early(*ex);
      return;
    }
    if (!ex->response->write(std::string(chunk)).ok() || ex->paused) return;
    if (ex->response->write_buffer_size() < kHighWater) return;
    // The client is slower than the upstream: stop reading the upstream until it caught up.
    if (!client_.pause_reading(ex->fetch)) return;
    ex->paused = true;
    resume_when_flushed(ex);
  }

  // Neither side can go on: the upstream's early response fills what the proxy holds for it
  // (the upstream is not read), and the request body waits for an upstream that does not read
  // it (the client is not read), typically because the upstream blocks writing that response.
  // Waiting would hold both connections and a pool slot for ever: the fetch is cancelled (its
  // connection closed), the rest of the body dropped, and the client gets a 502 at its end.
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
      ex.early_done = status;
      return;
    }
    HTTPResponseStream& response = *ex.response;
    if (response.closed()) return;
    if (status.ok()) {
      response.finish().IgnoreError();
      return;
    }
    logger().debug("upstream: {}", status.ToString());
    if (response.head_sent()) {
      // The upstream died mid-response: the client sees its connection end before the
      // response's end, which is the only honest signal left.
      response.abort(status);
      return;
    }
    // No response byte within --upstream_timeout of the request being sent: 504. A request
    // form start() does not forward: 501. Everything else before a response (refused,
    // unreachable, connect timeout, reset, malformed): 502.
    const bool timeout = status.code() == absl::StatusCode::kDeadlineExceeded &&
                         absl::StrContains(status.message(), "waiting for the response");
    const bool unforwardable = status.code() == absl::StatusCode::kUnimplemented;
    answer_error(response, timeout ? 504 : unforwardable ? 501 : 502, status.message());
  }

  const Config& config_;
  const std::string origin_;  // scheme://authority of the upstream, the start of every URL
  HTTPClient client_;
};

// One loop with its proxy and server. `loop` runs on the calling thread.
absl::Status serve(IOLoop& loop, const Config& config, std::vector<ioloop::net::Socket> sockets) {
  Proxy proxy(loop, config);
  ioloop::net::HTTPServerOptions options;
  options.idle_timeout = config.idle_timeout;
  options.min_body_rate = config.min_body_rate;  // over the default 10 s window
  options.tcp_options.tls = config.server_tls;
  options.tcp_options.handshake_timeout = config.handshake_timeout;
  HTTPServer server(
      loop,
      [&proxy](const HTTPRequest& request, HTTPResponseWriter& writer) {
        proxy.handle(request, writer);
      },
      [&proxy](const HTTPRequest& head, ioloop::net::HTTPBodyControl& control) {
        return proxy.on_headers(head, control);
      },
      options);
  if (absl::Status s = server.add_sockets(std::move(sockets)); !s.ok()) return s;
  if (absl::Status s = server.start(); !s.ok()) return s;
  loop.start();
  server.stop(/*close_connections=*/true);
  // The connections close on later iterations: let them (briefly), so that no response stream
  // is still attached when the proxy's client completes its fetches with Cancelled.
  loop.run_sync([&loop](IOLoop::Done done) {
        loop.call_later(absl::Milliseconds(50),
                        [done = std::move(done)]() mutable { std::move(done)(absl::OkStatus()); });
      })
      .IgnoreError();
  return absl::OkStatus();
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage("HTTP/1.1 reverse proxy: --upstream=http(s)://HOST:PORT");
  absl::ParseCommandLine(argc, argv);
  namespace ex = ioloop::examples;

  if (absl::Status s = ex::configure_logging(absl::GetFlag(FLAGS_log_level)); !s.ok()) {
    std::fprintf(stderr, "http_proxy: %s\n", std::string(s.message()).c_str());
    return 2;
  }
  absl::StatusOr<URL> upstream = URL::parse(absl::GetFlag(FLAGS_upstream));
  if (!upstream.ok() || upstream->target != "/") {
    std::fprintf(stderr, "http_proxy: --upstream must be http(s)://HOST:PORT%s%s\n",
                 upstream.ok() ? "" : ": ",
                 upstream.ok() ? "" : std::string(upstream.status().message()).c_str());
    return 2;
  }
  const int threads = absl::GetFlag(FLAGS_threads);
  const int port = absl::GetFlag(FLAGS_port);
  const int max_upstream = absl::GetFlag(FLAGS_max_upstream_connections);
  const int min_body_rate = absl::GetFlag(FLAGS_min_body_rate);
  if (threads < 1 || port < 0 || port > 65535 || max_upstream < 1 || min_body_rate < 0) {
    std::fprintf(stderr,
                 "http_proxy: --threads and --max_upstream_connections must be >= 1, --port in "
                 "0..65535, --min_body_rate >= 0\n");
    return 2;
  }
  absl::StatusOr<IOLoop::Options> options = ex::loop_options(absl::GetFlag(FLAGS_poller));
  if (!options.ok()) {
    std::fprintf(stderr, "http_proxy: %s\n", std::string(options.status().message()).c_str());
    return 2;
  }
  Config config;
  config.upstream = *std::move(upstream);
  config.connect_timeout = absl::GetFlag(FLAGS_connect_timeout);
  config.upstream_timeout = absl::GetFlag(FLAGS_upstream_timeout);
  config.max_upstream_connections = static_cast<size_t>(max_upstream);
  config.idle_timeout = absl::GetFlag(FLAGS_idle_timeout);
  config.min_body_rate = static_cast<size_t>(min_body_rate);
  if (absl::Status s = configure_tls(config); !s.ok()) {
    std::fprintf(stderr, "http_proxy: %s\n", std::string(s.message()).c_str());
    return 2;
  }

  // Signals are blocked in this thread before any other starts, so every thread inherits it.
  absl::StatusOr<std::unique_ptr<IOLoop>> main_loop = ex::make_server_loop(*options);
  if (!main_loop.ok()) {
    logger().critical("{}", std::string(main_loop.status().message()));
    return 1;
  }

  // One listener per thread on the same port (SO_REUSEPORT): the first picks the port for
  // --port 0, the others bind the one it got.
  std::vector<std::vector<ioloop::net::Socket>> listeners;
  int bound_port = port;
  for (int i = 0; i < threads; ++i) {
    absl::StatusOr<std::vector<ioloop::net::Socket>> sockets = ioloop::net::bind_sockets(
        bound_port, absl::GetFlag(FLAGS_address), AF_UNSPEC, ioloop::net::kDefaultBacklog,
        /*reuse_port=*/true);
    if (!sockets.ok()) {
      logger().critical("{}", std::string(sockets.status().message()));
      return 1;
    }
    if (i == 0) {
      ex::announce_listening(*sockets);
      if (absl::StatusOr<ioloop::net::SocketAddress> a = (*sockets)[0].local_address(); a.ok()) {
        bound_port = a->port();
      }
    }
    listeners.push_back(*std::move(sockets));
  }

  // Threads 1..N-1 run loops of their own; the main loop is thread 0 and stops them all.
  std::vector<std::unique_ptr<IOLoop>> loops;
  for (int i = 1; i < threads; ++i) {
    absl::StatusOr<std::unique_ptr<IOLoop>> loop = IOLoop::create(*options);
    if (!loop.ok()) {
      logger().critical("cannot create loop {}: {}", i, std::string(loop.status().message()));
      return 1;
    }
    loops.push_back(*std::move(loop));
  }
  std::vector<std::thread> workers;
  for (int i = 1; i < threads; ++i) {
    workers.emplace_back(
        [&config, &loop = *loops[i - 1], sockets = std::move(listeners[i])]() mutable {
          loop.make_current();
          if (absl::Status s = serve(loop, config, std::move(sockets)); !s.ok()) {
            logger().critical("thread cannot serve: {}", std::string(s.message()));
          }
        });
  }
  logger().info("HTTP{} proxy to {} on {} thread(s); Ctrl-C stops it", config.server_tls ? "S" : "",
                config.upstream.to_string(), threads);
  absl::Status status = serve(**main_loop, config, std::move(listeners[0]));
  for (auto& loop : loops) loop->stop();
  for (std::thread& t : workers) t.join();
  if (!status.ok()) {
    logger().critical("cannot serve: {}", std::string(status.message()));
    return 1;
  }
  return 0;
}
