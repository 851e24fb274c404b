// File: ioloop/net/resolver.h
// Resolver: getaddrinfo() on a small pool of threads, so DNS never blocks a loop. Results
// are posted back to the requesting loop with add_callback. Numeric hosts ("127.0.0.1",
// "::1") are answered without a thread hop or any lookup.
//
// Threading: resolve() may be called from any loop thread; the callback runs on `loop`.
// Lifetime: destroying the Resolver cancels queued lookups (their callbacks get Cancelled on
// their loop) and waits for lookups in progress (getaddrinfo cannot be interrupted). The
// loops named in pending requests must outlive the Resolver.
#ifndef IOLOOP_NET_RESOLVER_H_
#define IOLOOP_NET_RESOLVER_H_

#include <sys/socket.h>

#include <cstdint>
#include <deque>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "ioloop/io_loop.h"
#include "ioloop/net/socket_address.h"

namespace ioloop::net {

class Resolver {
 public:
  using Callback = absl::AnyInvocable<void(absl::StatusOr<std::vector<SocketAddress>>) &&>;

  explicit Resolver(int num_threads = 2);
  ~Resolver();
  Resolver(const Resolver&) = delete;
  Resolver& operator=(const Resolver&) = delete;

  // Resolves `host` for SOCK_STREAM connections to `port` (family AF_UNSPEC, AF_INET or
  // AF_INET6), in getaddrinfo's order (RFC 6724 preference). NotFound with gai_strerror's
  // text if the name does not resolve. Thread-safe.
  void resolve(IOLoop& loop, std::string host, uint16_t port, int family, Callback cb)
      ABSL_LOCKS_EXCLUDED(mu_);

  // The synchronous lookup the threads run; also handy in tools and tests.
  static absl::StatusOr<std::vector<SocketAddress>> resolve_blocking(const std::string& host,
                                                                     uint16_t port, int family);

 private:
  struct Request {
    IOLoop* loop;
    std::string host;
    uint16_t port;
    int family;
    Callback cb;
  };
  void worker();

  absl::Mutex mu_;
  std::deque<Request> queue_ ABSL_GUARDED_BY(mu_);
  bool shutdown_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;
};

}  // namespace ioloop::net

#endif  // IOLOOP_NET_RESOLVER_H_
