// echo_server: echoes every byte back to each client, in order, until the client closes.
// Built on TCPServer + IOStream; examples/echo_server_lowlevel.cc is the same program on
// add_handler + add_accept_handler, for readers of the low-level API.
//
//   echo_server [--port=5000] [--address=] [--threads=1] [--poller=epoll|poll|select]
//               [--log_level=info] [--max_pending=1048576]
//               [--tls_cert=chain.pem --tls_key=key.pem] [--handshake_timeout=10s]
//   printf hi | nc -q1 127.0.0.1 5000      # prints "hi"
//   openssl s_client -quiet -connect 127.0.0.1:5000    # with --tls_cert/--tls_key
//
// TLS: with --tls_cert and --tls_key the same --port speaks TLS (1.2 or 1.3), and everything
// below holds over it. A handshake that fails or takes longer than --handshake_timeout
// (counted from accept) closes that connection only. Half-close over TLS is the client's
// close_notify: the echo still flushes, then the server sends its own and closes.
//
// Backpressure: a client that sends but does not read its echo would make the server queue
// without bound. When a client's unsent echo reaches --max_pending bytes the server stops
// reading from it (TCP flow control then stops the client) and resumes once half of it has
// drained. So memory per client is bounded by about --max_pending plus one read slice.
//
// Half-close: when the client shuts down its side, IOStream still flushes every queued byte
// and only then closes the connection (IOStreamOptions::allow_half_open is false), so the
// client gets its whole echo followed by EOF.
//
// Start-up raises the soft open-file limit to the hard one (logged), so that the server can
// hold tens of thousands of clients; if it still runs out of fds, the acceptor backs off
// instead of spinning (see ioloop/net/accept.h). SIGINT or SIGTERM closes every client and
// exits 0.
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <utility>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/time/time.h"
#include "example_support.h"
#include "example_tls.h"
#include "ioloop/io_loop.h"
#include "ioloop/logging.h"
#include "ioloop/net/io_stream.h"
#include "ioloop/net/tcp_server.h"

ABSL_FLAG(int, port, 5000, "TCP port; 0 lets the kernel pick one (printed on stdout)");
ABSL_FLAG(std::string, address, "",
          "address to listen on; empty means every local address, IPv4 and IPv6");
ABSL_FLAG(int, threads, 1, "number of loops (threads), each with its own SO_REUSEPORT listener");
ABSL_FLAG(std::string, poller, "epoll", "readiness backend: epoll, poll or select");
ABSL_FLAG(std::string, log_level, "info", "trace, debug, info, warn, error, critical or off");
ABSL_FLAG(int64_t, max_pending, int64_t{1} << 20,
          "bytes of unsent echo per client before the server stops reading from it");

ABSL_FLAG(std::string, tls_cert, "",
          "PEM certificate chain (leaf first); with --tls_key, serve TLS on --port");
ABSL_FLAG(std::string, tls_key, "", "PEM private key of --tls_cert");
ABSL_FLAG(absl::Duration, handshake_timeout, absl::Seconds(10),
          "TLS: most time from accept to the end of the handshake");

namespace {

using ioloop::logger;
using ioloop::net::IOStream;

void serve(IOStream& stream, size_t max_pending) {
  // Callbacks stored on the stream capture a raw pointer: owning the stream from inside
  // itself would be a cycle. The loop keeps the stream alive while it is open.
  IOStream* s = &stream;
  s->set_write_watermarks(max_pending, max_pending / 2).IgnoreError();  // low < high, or 0
  s->set_high_watermark_callback([s] { s->pause_reading(); });
  s->set_low_watermark_callback([s] { s->resume_reading(); });
  s->set_close_callback([](absl::Status why) {
    if (!why.ok()) logger().debug("client closed: {}", std::string(why.message()));
  });
  // Each chunk goes straight back. At EOF there is nothing to do: the stream closes itself
  // once the queued echo has flushed. On an error (a reset) it has closed already.
  s->read_streaming([s](absl::string_view chunk) { s->write_copy(chunk); },
                    [](absl::StatusOr<std::string>) {});
}

int usage_error(const std::string& message) {
  std::fprintf(stderr, "echo_server: %s\n", message.c_str());
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  ioloop::examples::hold_standard_fds();
  absl::SetProgramUsageMessage("TCP echo server on ioloop's TCPServer and IOStream");
  if (absl::StatusOr<std::vector<std::string>> args =
          ioloop::examples::parse_command_line(argc, argv);
      !args.ok()) {
    return usage_error(std::string(args.status().message()));
  }
  namespace ex = ioloop::examples;

  if (absl::Status s = ex::configure_logging(absl::GetFlag(FLAGS_log_level)); !s.ok()) {
    return usage_error(std::string(s.message()));
  }
  absl::StatusOr<ioloop::IOLoop::Options> options = ex::loop_options(absl::GetFlag(FLAGS_poller));
  if (!options.ok()) return usage_error(std::string(options.status().message()));
  if (absl::GetFlag(FLAGS_max_pending) <= 0) return usage_error("--max_pending must be positive");
  const int threads = absl::GetFlag(FLAGS_threads);
  if (threads < 1) return usage_error("--threads must be at least 1");
  const int port = absl::GetFlag(FLAGS_port);
  if (port < 0 || port > 65535) return usage_error("--port must be 0..65535");
  // Raises the fd limit, ignores SIGPIPE, stops the loop on SIGINT/SIGTERM; before any
  // thread starts, so that every thread inherits the blocked signals.
  absl::StatusOr<std::unique_ptr<ioloop::IOLoop>> loop = ex::make_server_loop(*options);
  if (!loop.ok()) {
    logger().critical("{}", std::string(loop.status().message()));
    return 1;
  }

  absl::StatusOr<std::shared_ptr<const ioloop::net::TLSContext>> tls =
      ex::server_tls_context(absl::GetFlag(FLAGS_tls_cert), absl::GetFlag(FLAGS_tls_key));
  if (!tls.ok()) return usage_error(std::string(tls.status().message()));
  if (absl::GetFlag(FLAGS_handshake_timeout) <= absl::ZeroDuration()) {
    return usage_error("--handshake_timeout must be positive");
  }

  const auto max_pending = static_cast<size_t>(absl::GetFlag(FLAGS_max_pending));
  ioloop::net::TCPServerOptions server_options;
  server_options.worker_poller = options->poller;
  server_options.tls = *tls;
  server_options.handshake_timeout = absl::GetFlag(FLAGS_handshake_timeout);
  // With --threads > 1 this handler runs on every worker thread; it touches nothing shared.
  ioloop::net::TCPServer server(
      **loop,
      [max_pending](std::shared_ptr<IOStream> stream, const ioloop::net::SocketAddress&) {
        serve(*stream, max_pending);
      },
      server_options);
  if (absl::Status s = server.listen(static_cast<uint16_t>(port), absl::GetFlag(FLAGS_address));
      !s.ok()) {
    logger().critical("{}", std::string(s.message()));
    return 1;
  }
  if (absl::Status s = server.start(threads); !s.ok()) {
    logger().critical("{}", std::string(s.message()));
    return 1;
  }
  ex::announce_listening(server.addresses());
  logger().info("echo server running with {} thread(s) on {}{}; Ctrl-C stops it", threads,
                std::string(ioloop::poller_kind_name((*loop)->poller_kind())), *tls ? ", TLS" : "");

  (*loop)->start();

  // SIGINT/SIGTERM stopped the loop: stop accepting and close every client; the server's
  // destructor joins the worker loops (before `loop` is destroyed).
  logger().info("stopping");
  server.stop(/*close_streams=*/true);
  return 0;
}
