// File: ioloop/net/tcp_client.h
// TCPClient opens outgoing TCP connections and hands each one over as an IOStream.
//
//   ioloop::net::TCPClient client(loop);
//   client.connect("example.com", 80, [](absl::StatusOr<std::shared_ptr<IOStream>> s) {
//     if (!s.ok()) { log(s.status()); return; }
//     (*s)->write("GET / HTTP/1.0\r\n\r\n");
//   });
//
// Behaviour:
// - connect() never blocks: names are resolved on a Resolver thread pool (numeric addresses
//   skip it) and sockets connect non-blocking.
// - Happy Eyeballs (RFC 8305, as Tornado's _Connector): addresses of the first family in the
//   resolver's order are tried one after another; the other family starts after
//   `happy_eyeballs_delay` or as soon as the first family has failed. The first connection
//   wins, the others are closed.
// - `timeout` bounds the whole attempt, resolution included: DeadlineExceeded.
// - connect_with_retry() retries failed attempts with exponential back-off (muduo's
//   Connector), up to `max_attempts`.
// The callback runs exactly once on the loop thread: with the stream, with the last
// connection error (Unavailable with the errno text, e.g. "Connection refused"), with
// DeadlineExceeded, or with Cancelled if the TCPClient is destroyed first (then it runs
// from the destructor).
//
// Threading: loop thread only. The loop must outlive the client.
#ifndef IOLOOP_NET_TCP_CLIENT_H_
#define IOLOOP_NET_TCP_CLIENT_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "ioloop/io_loop.h"
#include "ioloop/net/io_stream.h"
#include "ioloop/net/resolver.h"

namespace ioloop::net {

struct ConnectOptions {
  absl::Duration timeout = absl::Seconds(20);
  absl::Duration happy_eyeballs_delay = absl::Milliseconds(300);
  int family = AF_UNSPEC;  // or AF_INET / AF_INET6 to use one family only
  bool nodelay = true;     // TCP_NODELAY on the connected socket
  IOStreamOptions stream_options;
};

struct RetryPolicy {
  absl::Duration initial_delay = absl::Milliseconds(500);
  absl::Duration max_delay = absl::Seconds(30);
  double multiplier = 2.0;
  int max_attempts = 0;  // 0: retry until it succeeds or the client is destroyed
};

class TCPClient {
 public:
  using ConnectCallback = absl::AnyInvocable<void(absl::StatusOr<std::shared_ptr<IOStream>>) &&>;

  // `resolver` may be shared between clients; null uses a process-wide resolver with two
  // threads, created on first use.
  explicit TCPClient(IOLoop& loop, Resolver* resolver = nullptr);
  // Completes every pending connect with Cancelled.
  ~TCPClient();
  TCPClient(const TCPClient&) = delete;
  TCPClient& operator=(const TCPClient&) = delete;

  void connect(std::string host, uint16_t port, ConnectCallback cb, ConnectOptions options = {});
  void connect_with_retry(std::string host, uint16_t port, ConnectCallback cb, RetryPolicy retry,
                          ConnectOptions options = {});
  // Skips resolution: Happy Eyeballs over `addresses` (each with its port), in this order.
  // InvalidArgument through `cb` if the list is empty.
  void connect_to(std::vector<SocketAddress> addresses, ConnectCallback cb,
                  ConnectOptions options = {});

  // Connects in progress (including ones waiting to retry).
  size_t pending() const;

 private:
  void begin(std::string host, uint16_t port, std::vector<SocketAddress> addresses,
             ConnectCallback cb, std::optional<RetryPolicy> retry, ConnectOptions options);

  struct State;
  struct Attempt;
  std::shared_ptr<State> state_;
};

}  // namespace ioloop::net

#endif  // IOLOOP_NET_TCP_CLIENT_H_
