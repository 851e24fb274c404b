// echo_server_lowlevel: sends every byte a client sends straight back to it. The same
// program as examples/echo_server.cc, written on the low-level API for readers who want to
// see what IOStream and TCPServer do for them (it runs one loop; there is no --threads).
//
//   echo_server_lowlevel [--port=5000] [--address=] [--poller=epoll|poll|select] [--log_level=info]
//               [--max_pending=1048576]
//   printf hi | nc -q1 127.0.0.1 5000      # prints "hi"
//
// Written directly on the reactor (IOLoop::add_handler plus net::add_accept_handler), with no
// stream class in between, so every rule of non-blocking I/O is visible here:
//   - read until EAGAIN: the loop is level-triggered, but draining saves wake-ups;
//   - write what the kernel takes now and keep the rest in a per-connection buffer;
//   - watch WRITE only while output is pending (an idle socket is always writable, so
//     watching WRITE all the time would wake the loop on every iteration);
//   - stop reading from a client that sends faster than it reads, once --max_pending bytes
//     wait for it: memory stays bounded and TCP flow control pushes back on the client;
//   - on EOF, finish sending what is pending, then close (a half-closed client still gets
//     its echo);
//   - an error on one connection closes that connection only.
// SIGINT or SIGTERM stops the loop and the program exits 0.
#include <sys/socket.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "example_support.h"
#include "ioloop/io_loop.h"
#include "ioloop/logging.h"
#include "ioloop/net/accept.h"
#include "ioloop/net/bind.h"
#include "ioloop/net/socket.h"
#include "ioloop/rate_limiter.h"

ABSL_FLAG(int, port, 5000, "TCP port; 0 lets the kernel pick one (printed on stdout)");
ABSL_FLAG(std::string, address, "",
          "address to listen on; empty means every local address, IPv4 and IPv6");
ABSL_FLAG(std::string, poller, "epoll", "readiness backend: epoll, poll or select");
ABSL_FLAG(std::string, log_level, "info", "trace, debug, info, warn, error, critical or off");
ABSL_FLAG(int64_t, max_pending, int64_t{1} << 20,
          "stop reading from a client while this many bytes wait to be sent back to it");

namespace {

using ioloop::IOLoop;
using ioloop::logger;
using ioloop::net::Socket;
using ioloop::net::SocketAddress;

class EchoServer {
 public:
  EchoServer(IOLoop& loop, size_t max_pending) : loop_(loop), max_pending_(max_pending) {}
  ~EchoServer() { close_all(); }

  // The accept handler's callback: start watching the new connection.
  void on_connection(Socket socket, SocketAddress peer) {
    const int fd = socket.fd();
    (void)socket.set_nodelay(true);  // echo is interactive: do not wait to fill a segment
    auto conn = std::make_unique<Connection>();
    conn->socket = std::move(socket);
    conn->peer = peer;
    absl::Status s = loop_.add_handler(
        fd, [this](int ready_fd, uint32_t events) { on_events(ready_fd, events); }, IOLoop::READ);
    if (!s.ok()) {
      // Refusals come as fast as clients reconnect (select past FD_SETSIZE): a few lines a
      // second, with the count of those left out.
      uint64_t suppressed = 0;
      if (refusal_log_.allow(loop_.time(), &suppressed)) {
        logger().warn("cannot watch {}: {}{}", peer.to_string(), std::string(s.message()),
                      ioloop::suppressed_note(suppressed));
      }
      return;  // `conn` closes the socket
    }
    logger().debug("{} connected (fd {})", peer.to_string(), fd);
    connections_[fd] = std::move(conn);
  }

  void close_all() {
    while (!connections_.empty()) close(*connections_.begin()->second, "server shutting down");
  }

  size_t connection_count() const { return connections_.size(); }

 private:
  struct Connection {
    Socket socket;
    SocketAddress peer;
    std::string output;     // bytes read but not yet sent back
    size_t output_pos = 0;  // output[0, output_pos) is sent already
    bool eof = false;       // the client shut down its side

    size_t pending() const { return output.size() - output_pos; }
  };

  void on_events(int fd, uint32_t events) {
    auto it = connections_.find(fd);
    if (it == connections_.end()) return;
    Connection& c = *it->second;

    if (events & IOLoop::ERROR) {
      // ERROR (EPOLLERR/EPOLLHUP) is reported even when not asked for. A reset peer leaves
      // its reason in SO_ERROR; otherwise go on and let read/send find out.
      if (absl::Status err = c.socket.take_error(); !err.ok()) {
        return close(c, std::string(err.message()));
      }
    }
    if ((events & (IOLoop::READ | IOLoop::ERROR)) && wants_to_read(c)) {
      if (!read_until_eagain(c)) return;  // closed
    }
    if (c.pending() > 0 && !send_what_fits(c)) return;  // closed
    if (c.eof && c.pending() == 0) return close(c, "client closed, everything echoed");
    update_interest(c);
  }

  bool wants_to_read(const Connection& c) const { return !c.eof && c.pending() < max_pending_; }

  // Appends what the socket has to the output buffer until EAGAIN, EOF or the buffer is full.
  // Returns false if the connection was closed.
  bool read_until_eagain(Connection& c) {
    constexpr size_t kChunk = 64 * 1024;
    while (wants_to_read(c)) {
      const size_t old_size = c.output.size();
      c.output.resize(old_size + kChunk);  // read straight into the buffer's tail
      ssize_t n = ::recv(c.socket.fd(), c.output.data() + old_size, kChunk, 0);
      c.output.resize(old_size + (n > 0 ? static_cast<size_t>(n) : 0));
      if (n > 0) continue;
      if (n == 0) {
        c.eof = true;
        return true;
      }
      if (errno == EAGAIN || errno == EWOULDBLOCK) return true;
      if (errno == EINTR) continue;
      close(c, std::strerror(errno));  // ECONNRESET and friends: this client only
      return false;
    }
    return true;  // buffer full: update_interest() drops READ until it drains
  }

  // Sends pending output until EAGAIN or done. Returns false if the connection was closed.
  bool send_what_fits(Connection& c) {
    while (c.pending() > 0) {
      // MSG_NOSIGNAL: a reset peer gives EPIPE here instead of killing us with SIGPIPE.
      ssize_t n = ::send(c.socket.fd(), c.output.data() + c.output_pos, c.pending(), MSG_NOSIGNAL);
      if (n > 0) {
        c.output_pos += static_cast<size_t>(n);
        continue;
      }
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
      if (n < 0 && errno == EINTR) continue;
      close(c, std::strerror(errno));
      return false;
    }
    // Reclaim the sent prefix: all of it when empty, else once it is over half the buffer,
    // so each byte is moved at most about once.
    if (c.output_pos == c.output.size()) {
      std::string().swap(c.output);  // free it: an idle connection should not keep 64 KiB
      c.output_pos = 0;
    } else if (c.output_pos > c.output.size() / 2) {
      c.output.erase(0, c.output_pos);
      c.output_pos = 0;
    }
    return true;
  }

  // READ while we accept more input, WRITE only while output is pending.
  void update_interest(Connection& c) {
    uint32_t events = 0;
    if (wants_to_read(c)) events |= IOLoop::READ;
    if (c.pending() > 0) events |= IOLoop::WRITE;
    if (absl::Status s = loop_.update_handler(c.socket.fd(), events); !s.ok()) {
      close(c, std::string(s.message()));
    }
  }

  void close(Connection& c, const std::string& reason) {
    const int fd = c.socket.fd();
    logger().debug("{} closed: {}", c.peer.to_string(), reason);
    loop_.remove_handler(fd);  // before the fd is closed (and its number reused)
    connections_.erase(fd);    // destroys the Socket, which closes the fd
  }

  IOLoop& loop_;
  const size_t max_pending_;
  ioloop::LogRateLimiter refusal_log_{5, std::chrono::seconds(1)};
  absl::flat_hash_map<int, std::unique_ptr<Connection>> connections_;
};

}  // namespace

int main(int argc, char** argv) {
  ioloop::examples::hold_standard_fds();
  absl::SetProgramUsageMessage("TCP echo server on the bare ioloop reactor (add_handler level)");
  if (absl::StatusOr<std::vector<std::string>> args =
          ioloop::examples::parse_command_line(argc, argv);
      !args.ok()) {
    std::fprintf(stderr, "echo_server_lowlevel: %s\n",
                 std::string(args.status().message()).c_str());
    return 2;
  }
  namespace ex = ioloop::examples;

  if (absl::Status s = ex::configure_logging(absl::GetFlag(FLAGS_log_level)); !s.ok()) {
    std::fprintf(stderr, "echo_server_lowlevel: %s\n", std::string(s.message()).c_str());
    return 2;
  }
  absl::StatusOr<IOLoop::Options> options = ex::loop_options(absl::GetFlag(FLAGS_poller));
  if (!options.ok()) {
    std::fprintf(stderr, "echo_server_lowlevel: %s\n",
                 std::string(options.status().message()).c_str());
    return 2;
  }
  if (absl::GetFlag(FLAGS_max_pending) <= 0) {
    std::fprintf(stderr, "echo_server_lowlevel: --max_pending must be positive\n");
    return 2;
  }
  if (const int port = absl::GetFlag(FLAGS_port); port < 0 || port > 65535) {
    std::fprintf(stderr, "echo_server_lowlevel: --port must be 0..65535\n");
    return 2;
  }
  // Raises the fd limit, ignores SIGPIPE, stops the loop on SIGINT/SIGTERM; before any
  // thread starts, so that every thread inherits the blocked signals.
  absl::StatusOr<std::unique_ptr<IOLoop>> loop = ex::make_server_loop(*options);
  if (!loop.ok()) {
    logger().critical("{}", std::string(loop.status().message()));
    return 1;
  }

  absl::StatusOr<std::vector<Socket>> sockets =
      ioloop::net::bind_sockets(absl::GetFlag(FLAGS_port), absl::GetFlag(FLAGS_address));
  if (!sockets.ok()) {
    logger().critical("{}", std::string(sockets.status().message()));
    return 1;
  }

  EchoServer server(**loop, static_cast<size_t>(absl::GetFlag(FLAGS_max_pending)));
  std::vector<std::unique_ptr<ioloop::net::Acceptor>> acceptors;
  for (const Socket& listener : *sockets) {
    auto acceptor = ioloop::net::add_accept_handler(**loop, listener.fd(),
                                                    [&server](Socket conn, SocketAddress peer) {
                                                      server.on_connection(std::move(conn), peer);
                                                    });
    if (!acceptor.ok()) {
      logger().critical("{}", std::string(acceptor.status().message()));
      return 1;
    }
    acceptors.push_back(*std::move(acceptor));
  }
  ex::announce_listening(*sockets);
  logger().info("echo server running on {}; Ctrl-C stops it",
                std::string(ioloop::poller_kind_name((*loop)->poller_kind())));

  (*loop)->start();

  logger().info("stopped; closing {} connection(s)", server.connection_count());
  acceptors.clear();   // stop accepting before the listening sockets close
  server.close_all();  // while the loop still exists: connections deregister from it
  return 0;
}
