// http_responder: answers every HTTP request, any path and any method libhttp_parser knows
// (an unknown one is a 501), with "Hello, world!".
//
//   http_responder [--port=8080] [--address=] [--threads=1] [--poller=epoll|poll|select]
//                  [--idle_timeout=60s] [--header_timeout=10s] [--min_body_rate=500]
//                  [--log_level=info]
//                  [--tls_cert=chain.pem --tls_key=key.pem] [--handshake_timeout=10s]
//   curl -i http://127.0.0.1:8080/        # 200, Content-Type: text/plain, Hello, world!
//   curl --cacert ca.pem https://localhost:8080/    # with --tls_cert/--tls_key
//   ab -k -n 100000 -c 50 http://127.0.0.1:8080/
//
// The source tutorial's second program, as a real HTTP/1.1 server on HTTPServer: keep-alive,
// pipelining, HEAD, request bodies read and discarded, limits and timeouts against hostile
// clients (a head slower than --header_timeout, a body slower than --min_body_rate over 10 s
// and a response not read for --idle_timeout get a 408 or the close). With --threads=N it runs N
// loops, each with its own SO_REUSEPORT listener. SIGINT or SIGTERM stops it and it exits 0. With
// --tls_cert and --tls_key it serves HTTPS on the same --port (TLS 1.2 or 1.3, ALPN "http/1.1"
// or "http/1.0"); the header timeout starts once the handshake has finished, which
// --handshake_timeout bounds from accept.
#include <sys/socket.h>

#include <cstdio>
#include <memory>
#include <string>
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
#include "ioloop/net/http/http_server.h"
#include "ioloop/poller.h"

ABSL_FLAG(int, port, 8080, "TCP port; 0 lets the kernel pick one (printed on stdout)");
ABSL_FLAG(std::string, address, "",
          "address to listen on; empty means every local address, IPv4 and IPv6");
ABSL_FLAG(int, threads, 1, "event loops (threads), each with its own SO_REUSEPORT listener");
ABSL_FLAG(std::string, poller, "epoll", "readiness backend: epoll, poll or select");
ABSL_FLAG(absl::Duration, idle_timeout, absl::Seconds(60),
          "close a keep-alive connection idle this long (0 disables)");
ABSL_FLAG(absl::Duration, header_timeout, absl::Seconds(10),
          "answer 408 and close when a request's headers take longer than this (0 disables)");
ABSL_FLAG(int, min_body_rate, 500,
          "408 for a request body slower than this many bytes/s over 10 s (0 disables)");
ABSL_FLAG(std::string, log_level, "info", "trace, debug, info, warn, error, critical or off");
ABSL_FLAG(std::string, tls_cert, "",
          "PEM certificate chain (leaf first); with --tls_key, serve HTTPS on --port");
ABSL_FLAG(std::string, tls_key, "", "PEM private key of --tls_cert");
ABSL_FLAG(absl::Duration, handshake_timeout, absl::Seconds(10),
          "TLS: most time from accept to the end of the handshake");

int main(int argc, char** argv) {
  ioloop::examples::hold_standard_fds();
  absl::SetProgramUsageMessage("HTTP/1.1 server answering every request with Hello, world!");
  if (absl::StatusOr<std::vector<std::string>> args =
          ioloop::examples::parse_command_line(argc, argv);
      !args.ok()) {
    std::fprintf(stderr, "http_responder: %s\n", std::string(args.status().message()).c_str());
    return 2;
  }
  namespace ex = ioloop::examples;
  using ioloop::IOLoop;
  using ioloop::logger;

  if (absl::Status s = ex::configure_logging(absl::GetFlag(FLAGS_log_level)); !s.ok()) {
    std::fprintf(stderr, "http_responder: %s\n", std::string(s.message()).c_str());
    return 2;
  }
  absl::StatusOr<IOLoop::Options> options = ex::loop_options(absl::GetFlag(FLAGS_poller));
  if (!options.ok()) {
    std::fprintf(stderr, "http_responder: %s\n", std::string(options.status().message()).c_str());
    return 2;
  }
  const int threads = absl::GetFlag(FLAGS_threads);
  const int port = absl::GetFlag(FLAGS_port);
  const int min_body_rate = absl::GetFlag(FLAGS_min_body_rate);
  if (threads < 1 || port < 0 || port > 65535 || min_body_rate < 0) {
    std::fprintf(stderr,
                 "http_responder: --threads must be >= 1, --port in 0..65535 and "
                 "--min_body_rate >= 0\n");
    return 2;
  }
  // Raises the fd limit, ignores SIGPIPE, stops the loop on SIGINT/SIGTERM; before any
  // thread starts, so that every thread inherits the blocked signals.
  absl::StatusOr<std::unique_ptr<IOLoop>> loop = ex::make_server_loop(*options);
  if (!loop.ok()) {
    logger().critical("{}", std::string(loop.status().message()));
    return 1;
  }

  absl::StatusOr<std::shared_ptr<const ioloop::net::TLSContext>> tls = ex::server_tls_context(
      absl::GetFlag(FLAGS_tls_cert), absl::GetFlag(FLAGS_tls_key), {"http/1.1", "http/1.0"});
  if (!tls.ok()) {
    std::fprintf(stderr, "http_responder: %s\n", std::string(tls.status().message()).c_str());
    return 2;
  }
  if (absl::GetFlag(FLAGS_handshake_timeout) <= absl::ZeroDuration()) {
    std::fprintf(stderr, "http_responder: --handshake_timeout must be positive\n");
    return 2;
  }
  // Here, not at server.start(): that comes after "listening on", which a script reads first.
  for (const auto& [name, value] :
       {std::pair{"--idle_timeout", absl::GetFlag(FLAGS_idle_timeout)},
        std::pair{"--header_timeout", absl::GetFlag(FLAGS_header_timeout)}}) {
    if (value < absl::ZeroDuration()) {
      std::fprintf(stderr, "http_responder: %s must not be negative\n", name);
      return 2;
    }
  }

  ioloop::net::HTTPServerOptions http_options;
  http_options.tcp_options.tls = *tls;
  http_options.tcp_options.handshake_timeout = absl::GetFlag(FLAGS_handshake_timeout);
  http_options.idle_timeout = absl::GetFlag(FLAGS_idle_timeout);
  http_options.header_timeout = absl::GetFlag(FLAGS_header_timeout);
  http_options.min_body_rate = static_cast<size_t>(min_body_rate);  // over the default 10 s
  http_options.discard_body = true;  // bodies are framed (for pipelining) but not kept
  http_options.tcp_options.worker_poller = (*loop)->poller_kind();

  ioloop::net::HTTPServer server(
      **loop,
      [](const ioloop::net::HTTPRequest&, ioloop::net::HTTPResponseWriter& response) {
        response.add_header("Content-Type", "text/plain");
        response.set_body("Hello, world!");
      },
      http_options);

  // Bind here rather than with server.listen() so that the real port of --port 0 can be
  // announced: `listen` would hide the sockets.
  absl::StatusOr<std::vector<ioloop::net::Socket>> sockets =
      ioloop::net::bind_sockets(port, absl::GetFlag(FLAGS_address), AF_UNSPEC,
                                ioloop::net::kDefaultBacklog, /*reuse_port=*/true);
  if (!sockets.ok()) {
    logger().critical("{}", std::string(sockets.status().message()));
    return 1;
  }
  ex::announce_listening(*sockets);
  if (absl::Status s = server.add_sockets(*std::move(sockets)); !s.ok()) {
    logger().critical("{}", std::string(s.message()));
    return 1;
  }
  if (absl::Status s = server.start(threads); !s.ok()) {
    logger().critical("cannot start: {}", std::string(s.message()));
    return 1;
  }
  logger().info("HTTP{} responder running on {} with {} thread(s); Ctrl-C stops it",
                *tls ? "S" : "", std::string(ioloop::poller_kind_name((*loop)->poller_kind())),
                threads);

  (*loop)->start();

  const ioloop::net::HTTPServer::Stats stats = server.stats();
  logger().info("stopped after {} connection(s), {} request(s)", stats.connections, stats.requests);
  server.stop(/*close_connections=*/true);
  return 0;
}
