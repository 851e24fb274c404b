#include "ioloop/net/resolver.h"

#include <netdb.h>
#include <signal.h>

#include <memory>

#include "absl/strings/str_cat.h"

namespace ioloop::net {

Resolver::Resolver(int num_threads) {
  if (num_threads < 1) num_threads = 1;
  // Threads inherit the creator's signal mask; block everything so a signal meant for a
  // loop's signalfd is never delivered to a resolver thread instead.
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, &old);
  for (int i = 0; i < num_threads; ++i) threads_.emplace_back([this] { worker(); });
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
}

Resolver::~Resolver() {
  std::deque<Request> cancelled;
  {
    absl::MutexLock lock(&mu_);
    shutdown_ = true;
    cancelled.swap(queue_);
  }
  for (Request& r : cancelled) {
    r.loop->add_callback([cb = std::move(r.cb)]() mutable {
      std::move(cb)(absl::CancelledError("resolver destroyed"));
    });
  }
  for (std::thread& t : threads_) t.join();
}

void Resolver::resolve(IOLoop& loop, std::string host, uint16_t port, int family, Callback cb) {
  // Numeric addresses skip the pool: no thread hop, no lookup.
  if (auto numeric = SocketAddress::parse(host, port); numeric.ok()) {
    if (family == AF_UNSPEC || family == numeric->family()) {
      loop.add_callback([cb = std::move(cb), addr = *numeric]() mutable {
        std::move(cb)(std::vector<SocketAddress>{addr});
      });
      return;
    }
  }
  absl::MutexLock lock(&mu_);
  if (shutdown_) {
    loop.add_callback([cb = std::move(cb)]() mutable {
      std::move(cb)(absl::CancelledError("resolver destroyed"));
    });
    return;
  }
  queue_.push_back(Request{&loop, std::move(host), port, family, std::move(cb)});
}

void Resolver::worker() {
  for (;;) {
    Request r;
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(
          +[](Resolver* self) ABSL_NO_THREAD_SAFETY_ANALYSIS {
            return self->shutdown_ || !self->queue_.empty();
          },
          this));
      if (queue_.empty()) return;  // shut down
      r = std::move(queue_.front());
      queue_.pop_front();
    }
    auto result = resolve_blocking(r.host, r.port, r.family);
    r.loop->add_callback([cb = std::move(r.cb), result = std::move(result)]() mutable {
      std::move(cb)(std::move(result));
    });
  }
}

absl::StatusOr<std::vector<SocketAddress>> Resolver::resolve_blocking(const std::string& host,
                                                                      uint16_t port, int family) {
  struct addrinfo hints = {};
  hints.ai_family = family;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_ADDRCONFIG;
  struct addrinfo* res = nullptr;
  const std::string service = std::to_string(port);
  int rc = ::getaddrinfo(host.c_str(), service.c_str(), &hints, &res);
  if (rc != 0) {
    return absl::NotFoundError(absl::StrCat("resolve '", host, "': ", ::gai_strerror(rc)));
  }
  std::unique_ptr<struct addrinfo, decltype(&::freeaddrinfo)> owner(res, &::freeaddrinfo);
  std::vector<SocketAddress> out;
  for (struct addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
    out.emplace_back(ai->ai_addr, ai->ai_addrlen);
  }
  if (out.empty()) return absl::NotFoundError(absl::StrCat("resolve '", host, "': no addresses"));
  return out;
}

}  // namespace ioloop::net
