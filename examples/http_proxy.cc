// http_proxy: a reverse proxy on HTTPServer (deferred responses) and HTTPClient (pooled
// keep-alive connections to the upstream).
//
//   http_proxy --upstream=http://127.0.0.1:8080 [--port=8000] [--address=] [--threads=1]
//              [--poller=epoll|poll|select] [--connect_timeout=5s] [--upstream_timeout=60s]
//              [--max_upstream_connections=64] [--queue_timeout=30s] [--idle_timeout=60s]
//              [--min_body_rate=500]
//              [--max_buffered_body=65536] [--log_level=info]
//              [--upstream_ca_file=PEM] [--tls_cert=PEM --tls_key=PEM] [--handshake_timeout=10s]
//   curl -i http://127.0.0.1:8000/any/path    # what the upstream answers, plus "Via: 1.1 ioloop"
//   http_proxy --upstream=https://origin.example:443 --tls_cert=chain.pem --tls_key=key.pem
//
// TLS, on either side or both:
//  - --upstream=https://HOST:PORT: upstream connections are TLS (ALPN "http/1.1"); the
//    upstream's certificate must be issued for HOST and verify against the system's trusted
//    CAs or, with --upstream_ca_file, against that PEM file's CAs only. A handshake or
//    verification failure is a 502 (the reason in a warning line), like a refused
//    connect; --connect_timeout bounds the handshake too.
//  - --tls_cert/--tls_key: clients speak HTTPS on --port (TLS 1.2 or 1.3, ALPN "http/1.1" or
//    "http/1.0"); --handshake_timeout bounds each client's handshake from accept, and the
//    proxy's own timeouts (--idle_timeout, the header timeout) start once it is done. A client
//    whose handshake fails is closed (rate-limited log line); the proxy goes on.
//
// What it does to each request and response (RFC 9110 §7.6; docs/guide.md §9 has the detail):
//  - forwards method, target, fields and body both ways: the target's path and query as
//    received (the '?' of an empty query too: RFC 9110 §7.7), in origin-form; Host as received
//    (for an absolute-form target, the server made it the target's authority: RFC 9112
//    §3.2.2; an HTTP/1.0 request without one gets the upstream's); the upstream's Date is
//    replaced by the proxy's own, as nginx's proxy_pass does; removes hop-by-hop fields both ways
//    (http_forwarding.h; a Connection token naming Host is ignored: Host is mandatory and
//    end-to-end); re-frames bodies for each side; appends the client to X-Forwarded-For and "1.x
//    ioloop" to Via both ways;
//  - forwards the upstream's 1xx (103 Early Hints...) but 100 Continue (the server answered
//    Expect itself), unless the request body is still arriving or the client is HTTP/1.0;
//  - reads a request body of up to --max_buffered_body whole before it asks the upstream, and
//    sends it under its own Content-Length; a longer one, from there on, and every response
//    body stream with backpressure (kHighWater each way). An error response (an early 413) or
//    one with Connection: close that starts before a streamed request body ended goes to the
//    client at once (HTTPBodyControl::answer_early()): the rest of the body is read and
//    dropped, not sent on, and both connections close after that response. Another early
//    response is held (up to kHighWater) while the upload goes on, until the request is
//    complete; if the body meanwhile waits kHighWater for an upstream that does not read it,
//    the fetch is cancelled and the client gets a 502;
//  - 502 when the upstream refuses or cannot be reached within --connect_timeout, 504 when it
//    is silent for --upstream_timeout before its response (any byte of it, an interim 102
//    Processing too, starts that time again; that connection is then closed, not pooled; the
//    client's stays usable; an interim or final head and then silence is a 502), 503 when no
//    upstream connection is free within --queue_timeout (below); silence mid-body, or an upstream
//    that dies, cuts the response and closes the client connection (its framing shows the cut: no
//    last chunk, or fewer bytes than Content-Length; an HTTP/1.0 client's close-delimited body,
//    which only the connection's end ends, ends with a TCP reset after its bytes, over TLS without
//    close_notify, where behind nginx it would look whole); a client that leaves mid-response
//    cancels the fetch (its upstream connection is closed, not pooled), and so does its end,
//    a half-close too, for each of its requests not yet answered (HTTPServer takes the EOF for
//    the client gone, as nginx does without proxy_ignore_client_abort); each upstream failure
//    is a log line with its reason (rate-limited), which the client's 502, 503 or 504 does not
//    carry: a warning, or for a response cut short the server's error line;
//  - a small request body holds no upstream connection while it arrives, a request body slower
//    than --min_body_rate is a 408, and a response the client takes no byte of for
//    --idle_timeout (twice, at most) closes its connection (HTTPServerOptions' idle_timeout);
//    a client reading its response slowly but steadily holds its upstream connection until it
//    is done (responses are not buffered: guide §9);
//  - a TRACE or OPTIONS goes on with its Max-Forwards one less; at Max-Forwards: 0 the proxy
//    answers it itself (RFC 9110 §7.6.2): a 200, a TRACE reflected without its credentials;
//  - 501 for CONNECT and for OPTIONS * (HTTPClient sends origin-form targets only); 400 for a
//    target with a '%' not followed by two hex digits or a non-ASCII byte (URL::check_target:
//    HTTPClient cannot send it), without contacting the upstream;
//  - upstream connections are pooled per thread (--max_upstream_connections; beyond it requests
//    wait in the pool's FIFO queue, for --queue_timeout at most: then a 503, as HAProxy's
//    `timeout queue`, so that clients holding every upstream connection, slow readers
//    included, delay the others by that much and no more); an idempotent request that meets a
//    pooled connection the upstream had just closed is retried once on a fresh one.
// Pipelined requests are answered in order (HTTPServer runs the next one when the previous
// response finished). SIGINT or SIGTERM stops it and it exits 0.
#include <sys/socket.h>

#include <cstdio>
#include <memory>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/time/time.h"
#include "example_support.h"
#include "example_tls.h"
#include "ioloop/io_loop.h"
#include "ioloop/logging.h"
#include "ioloop/net/bind.h"
#include "ioloop/net/http/http_body_handler.h"
#include "ioloop/net/http/http_server.h"
#include "ioloop/net/http/url.h"
#include "reverse_proxy.h"

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
          "502 when the upstream cannot be reached within this (0: no limit)");
ABSL_FLAG(absl::Duration, upstream_timeout, absl::Seconds(60),
          "504 when no response arrives within this of the request being sent; a response "
          "silent this long after its head is a 502, or cut (the client connection closes) "
          "once some of it went to the client (0: no limit)");
ABSL_FLAG(int, max_upstream_connections, 64, "upstream connections per thread (pool size)");
ABSL_FLAG(absl::Duration, queue_timeout, absl::Seconds(30),
          "503 for a request that waited this long for a free upstream connection (0: no limit)");
ABSL_FLAG(absl::Duration, idle_timeout, absl::Seconds(60),
          "close a client connection idle this long, or not reading its response (0 disables)");
ABSL_FLAG(int, min_body_rate, 500,
          "408 for a request body slower than this many bytes/s over 10 s (0 disables)");
ABSL_FLAG(int, max_buffered_body, 64 * 1024,
          "a request body is read whole before the upstream is asked, up to this many bytes; "
          "longer ones stream from there (0: every body streams)");
ABSL_FLAG(std::string, log_level, "info", "trace, debug, info, warn, error, critical or off");

namespace {

using ioloop::IOLoop;
using ioloop::logger;
using ioloop::examples::Proxy;
using ioloop::examples::ProxyConfig;
using ioloop::net::HTTPRequest;
using ioloop::net::HTTPResponseWriter;
using ioloop::net::HTTPServer;
using ioloop::net::URL;

// The TLS half of `config`, from --upstream's scheme, --upstream_ca_file, --tls_cert,
// --tls_key and --handshake_timeout: InvalidArgument for flags that cannot work together,
// TLSContext's error (naming the file) for a file it cannot use.
absl::Status configure_tls(ProxyConfig& config) {
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
                                       {"http/1.1", "http/1.0"});
  if (!server.ok()) return server.status();
  config.server_tls = *std::move(server);
  config.handshake_timeout = absl::GetFlag(FLAGS_handshake_timeout);
  if (config.handshake_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("--handshake_timeout must be positive");
  }
  return absl::OkStatus();
}

// One loop with its proxy and server. `loop` runs on the calling thread.
absl::Status serve(IOLoop& loop, const ProxyConfig& config,
                   std::vector<ioloop::net::Socket> sockets) {
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
  // What the closes queue runs on later iterations: let it, so that no response stream is
  // still attached when the proxy's client completes its fetches with Cancelled.
  loop.stop_when_idle();
  loop.start();
  return absl::OkStatus();
}

}  // namespace

int main(int argc, char** argv) {
  ioloop::examples::hold_standard_fds();
  absl::SetProgramUsageMessage("HTTP/1.1 reverse proxy: --upstream=http(s)://HOST:PORT");
  if (absl::StatusOr<std::vector<std::string>> args =
          ioloop::examples::parse_command_line(argc, argv);
      !args.ok()) {
    std::fprintf(stderr, "http_proxy: %s\n", std::string(args.status().message()).c_str());
    return 2;
  }
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
  const int max_buffered_body = absl::GetFlag(FLAGS_max_buffered_body);
  if (threads < 1 || port < 0 || port > 65535 || max_upstream < 1 || min_body_rate < 0 ||
      max_buffered_body < 0) {
    std::fprintf(stderr,
                 "http_proxy: --threads and --max_upstream_connections must be >= 1, --port in "
                 "0..65535, --min_body_rate and --max_buffered_body >= 0\n");
    return 2;
  }
  for (const auto& [name, value] :
       {std::pair{"--connect_timeout", absl::GetFlag(FLAGS_connect_timeout)},
        std::pair{"--upstream_timeout", absl::GetFlag(FLAGS_upstream_timeout)},
        std::pair{"--queue_timeout", absl::GetFlag(FLAGS_queue_timeout)},
        std::pair{"--idle_timeout", absl::GetFlag(FLAGS_idle_timeout)}}) {
    if (value < absl::ZeroDuration()) {
      std::fprintf(stderr, "http_proxy: %s must not be negative\n", name);
      return 2;
    }
  }
  absl::StatusOr<IOLoop::Options> options = ex::loop_options(absl::GetFlag(FLAGS_poller));
  if (!options.ok()) {
    std::fprintf(stderr, "http_proxy: %s\n", std::string(options.status().message()).c_str());
    return 2;
  }
  ProxyConfig config;
  config.upstream = *std::move(upstream);
  config.connect_timeout = absl::GetFlag(FLAGS_connect_timeout);
  config.upstream_timeout = absl::GetFlag(FLAGS_upstream_timeout);
  config.queue_timeout = absl::GetFlag(FLAGS_queue_timeout);
  config.max_upstream_connections = static_cast<size_t>(max_upstream);
  config.idle_timeout = absl::GetFlag(FLAGS_idle_timeout);
  config.min_body_rate = static_cast<size_t>(min_body_rate);
  config.max_buffered_body = static_cast<size_t>(max_buffered_body);
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
  try {
    for (int i = 1; i < threads; ++i) {
      workers.emplace_back(
          [&config, &loop = *loops[i - 1], sockets = std::move(listeners[i])]() mutable {
            loop.make_current();
            if (absl::Status s = serve(loop, config, std::move(sockets)); !s.ok()) {
              logger().critical("thread cannot serve: {}", std::string(s.message()));
            }
          });
    }
  } catch (const std::system_error& e) {  // EAGAIN: the thread or memory limit
    logger().critical("cannot start thread {} of {}: {}", workers.size() + 1, threads, e.what());
    for (auto& loop : loops) loop->stop();
    for (std::thread& t : workers) t.join();
    return 1;
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
