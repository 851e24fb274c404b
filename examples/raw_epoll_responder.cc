// raw_epoll_responder: the source tutorial's HTTP responder, on the bare reactor.
//
//   raw_epoll_responder [--port=8080] [--address=] [--poller=epoll] [--log_level=info]
//   curl -0 http://127.0.0.1:8080/          # Hello, world!
//
// A teaching example: no streams, no parser, just IOLoop::add_handler and add_accept_handler.
// Each connection: read until the blank line that ends the request ("\r\n\r\n", or "\n\n" as
// the tutorial's client sends), answer HTTP/1.0 "Hello, world!", close. The lessons:
//   - every socket is non-blocking; read and write until EAGAIN;
//   - bound what you buffer while you read, not after: a client that sends faster than the
//     loop drains would otherwise grow the buffer (and hold the loop) without limit within
//     one event;
//   - watch READ while waiting for the request, WRITE only while output is pending (an idle
//     socket is always writable: watching WRITE all the time would spin the loop);
//   - remove the handler before closing the fd (the number can be reused at once).
// For a real server (keep-alive, pipelining, limits, timeouts) see http_responder.cc.
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <map>
#include <memory>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "example_support.h"
#include "ioloop/logging.h"
#include "ioloop/net/accept.h"
#include "ioloop/net/bind.h"

ABSL_FLAG(int, port, 8080, "TCP port; 0 lets the kernel pick one (printed on stdout)");
ABSL_FLAG(std::string, address, "", "address to listen on; empty means every local address");
ABSL_FLAG(std::string, poller, "epoll", "readiness backend: epoll, poll or select");
ABSL_FLAG(std::string, log_level, "info", "trace, debug, info, warn, error, critical or off");

namespace {

using ioloop::IOLoop;
using ioloop::net::Socket;

constexpr char kResponse[] =
    "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, world!";
// A request longer than this is not HTTP we answer: the connection is closed.
constexpr size_t kMaxRequest = 64 * 1024;

// Whether the request in `input` has ended; only bytes from `from` on are new, so the search
// starts just before them (a delimiter may straddle two reads).
bool request_ended(const std::string& input, size_t from) {
  from = from >= 3 ? from - 3 : 0;
  return input.find("\r\n\r\n", from) != std::string::npos ||
         input.find("\n\n", from) != std::string::npos;
}

struct Connection {
  Socket socket;
  std::string input;   // the request so far
  std::string output;  // the response, once the request is complete
  size_t sent = 0;
};
std::map<int, std::unique_ptr<Connection>> connections;  // by fd

void close_connection(IOLoop& loop, int fd) {
  loop.remove_handler(fd);  // first: once closed, the fd number may be reused
  connections.erase(fd);    // the Socket closes the fd
}

void on_events(IOLoop& loop, int fd, uint32_t /*events*/) {
  Connection& c = *connections.at(fd);
  if (c.output.empty()) {  // reading the request (READ, or ERROR which read will explain)
    char buf[4096];
    // The size check comes before each recv(), and each recv() asks for no more than the
    // limit leaves, so the buffer never exceeds kMaxRequest + 1 bytes. Reading stops at the
    // end of the request: HTTP/1.0 asks one request per connection.
    bool ended = false;
    while (!ended) {
      if (c.input.size() > kMaxRequest) return close_connection(loop, fd);  // not HTTP
      const size_t room = std::min(sizeof buf, kMaxRequest + 1 - c.input.size());
      const ssize_t n = ::recv(fd, buf, room, 0);
      if (n > 0) {
        const size_t old_size = c.input.size();
        c.input.append(buf, static_cast<size_t>(n));
        ended = request_ended(c.input, old_size);
      } else if (n < 0 && errno == EINTR) {
        continue;
      } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        return;  // wait for more
      } else {
        return close_connection(loop, fd);  // EOF before the request ended, or an error
      }
    }
    c.output = kResponse;
    (void)loop.update_handler(fd, IOLoop::WRITE);  // output pending: now we want WRITE only
  }
  while (c.sent < c.output.size()) {  // writing the response
    ssize_t n = ::send(fd, c.output.data() + c.sent, c.output.size() - c.sent, MSG_NOSIGNAL);
    if (n > 0) {
      c.sent += n;
    } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
      return;  // the kernel's buffer is full: the loop calls us again when it drains
    } else if (errno != EINTR) {
      break;  // the client went away
    }
  }
  close_connection(loop, fd);  // HTTP/1.0: the response ends with the connection
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage("HTTP/1.0 Hello, world! responder on the bare ioloop reactor");
  if (absl::StatusOr<std::vector<std::string>> args =
          ioloop::examples::parse_command_line(argc, argv);
      !args.ok()) {
    std::fprintf(stderr, "raw_epoll_responder: %s\n", std::string(args.status().message()).c_str());
    return 2;
  }
  namespace ex = ioloop::examples;
  // Bad flags exit 2 with the reason, before anything is bound (as the other examples do).
  if (absl::Status s = ex::configure_logging(absl::GetFlag(FLAGS_log_level)); !s.ok()) {
    std::fprintf(stderr, "raw_epoll_responder: %s\n", std::string(s.message()).c_str());
    return 2;
  }
  const int port = absl::GetFlag(FLAGS_port);
  if (port < 0 || port > 65535) {
    std::fprintf(stderr, "raw_epoll_responder: --port must be 0..65535\n");
    return 2;
  }
  ex::raise_fd_limit();
  ex::ignore_sigpipe();
  auto options = ex::loop_options(absl::GetFlag(FLAGS_poller));
  if (!options.ok()) {
    std::fprintf(stderr, "raw_epoll_responder: %s\n",
                 std::string(options.status().message()).c_str());
    return 2;
  }
  IOLoop loop(*options);
  if (absl::Status s = ex::stop_on_signals(loop); !s.ok()) {
    ioloop::logger().critical("{}", s.ToString());
    return 1;
  }

  auto sockets = ioloop::net::bind_sockets(port, absl::GetFlag(FLAGS_address));
  if (!sockets.ok()) {  // e.g. the port in use
    ioloop::logger().critical("{}", sockets.status().ToString());
    return 1;
  }
  std::vector<std::unique_ptr<ioloop::net::Acceptor>> acceptors;
  for (const Socket& listener : *sockets) {
    auto acceptor = ioloop::net::add_accept_handler(
        loop, listener.fd(), [&loop](Socket conn, ioloop::net::SocketAddress) {
          const int fd = conn.fd();
          // READ only: there is nothing to write until the request has arrived.
          auto handler = [&loop](int ready_fd, uint32_t events) {
            on_events(loop, ready_fd, events);
          };
          if (!loop.add_handler(fd, handler, IOLoop::READ).ok()) return;  // `conn` closes
          connections[fd] = std::make_unique<Connection>();
          connections[fd]->socket = std::move(conn);
        });
    if (!acceptor.ok()) {
      ioloop::logger().critical("{}", acceptor.status().ToString());
      return 1;
    }
    acceptors.push_back(*std::move(acceptor));
  }
  ex::announce_listening(*sockets);
  loop.start();  // until SIGINT or SIGTERM
  acceptors.clear();
  while (!connections.empty()) close_connection(loop, connections.begin()->first);
  return 0;
}
