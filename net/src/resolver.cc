#include "ioloop/net/resolver.h"

#include <netdb.h>
#include <signal.h>

#include <cerrno>
#include <memory>
#include <system_error>
#include <utility>

#include "absl/strings/str_cat.h"
#include "gai_status.h"
#include "ioloop/logging.h"
#include "thread_signals.h"

namespace ioloop::net {

namespace {

// Wraps the user's callback and its result into a loop callback.
IOLoop::Callback deliver(Resolver::Callback cb, absl::StatusOr<std::vector<SocketAddress>> result) {
  return [cb = std::move(cb), result = std::move(result)]() mutable {
    std::move(cb)(std::move(result));
  };
}

}  // namespace

namespace internal {

absl::Status gai_error_to_status(int gai_error, int saved_errno, absl::string_view host) {
  const std::string message = absl::StrCat("resolve '", host, "'");
  // An EAI_SYSTEM that left errno at 0 (NSS modules can) would be an OK status: it falls to
  // Unknown below with getaddrinfo's text.
  if (gai_error == EAI_SYSTEM && saved_errno != 0) {
    return absl::ErrnoToStatus(saved_errno, message);
  }
  const std::string text = absl::StrCat(message, ": ", ::gai_strerror(gai_error));
  switch (gai_error) {
    case EAI_AGAIN:  // the name server is unreachable or busy: worth retrying
      return absl::UnavailableError(text);
    case EAI_NONAME:
#ifdef EAI_NODATA
    case EAI_NODATA:
#endif
#ifdef EAI_ADDRFAMILY
    case EAI_ADDRFAMILY:
#endif
    case EAI_FAIL:  // a permanent failure from the name server
      return absl::NotFoundError(text);
    case EAI_FAMILY:
    case EAI_SERVICE:
    case EAI_SOCKTYPE:
    case EAI_BADFLAGS:
      return absl::InvalidArgumentError(text);
    case EAI_MEMORY:
      return absl::ResourceExhaustedError(text);
    default:
      return absl::UnknownError(text);
  }
}

}  // namespace internal

Resolver::Resolver(int num_threads) : Resolver(num_threads, &Resolver::resolve_blocking) {}

Resolver::Resolver(int num_threads, Lookup lookup)
    : lookup_(std::move(lookup)), num_threads_(num_threads < 1 ? 1 : num_threads) {}

absl::Status Resolver::start_threads() {
  // A signal meant for a loop's signalfd is never delivered to a lookup thread instead.
  internal::ScopedLibraryThreadMask mask;
  absl::Status status;
  try {
    while (threads_.size() < static_cast<size_t>(num_threads_)) {
      threads_.emplace_back([this] { worker(); });
    }
  } catch (const std::system_error& e) {  // EAGAIN: the thread or memory limit
    status = absl::ResourceExhaustedError(
        absl::StrCat("resolver: cannot start a lookup thread: ", e.what()));
  }
  return threads_.empty() ? status : absl::OkStatus();  // fewer threads still serve
}

Resolver::~Resolver() {
  std::map<RequestId, Request> cancelled;
  std::vector<std::thread> threads;
  {
    MutexLock lock(&mu_);
    shutdown_ = true;
    cancelled.swap(queue_);
    threads.swap(threads_);
  }
  for (auto& [id, r] : cancelled) {
    r.loop->post(deliver(std::move(r.cb), absl::CancelledError("resolver destroyed")));
  }
  for (std::thread& t : threads) t.join();
}

Resolver& Resolver::instance() {
  static Resolver* const resolver = new Resolver(2);  // never destroyed: see the header
  return *resolver;
}

Resolver::RequestId Resolver::resolve(IOLoop& loop, std::string host, uint16_t port, int family,
                                      Callback cb) {
  return resolve(loop.handle(), std::move(host), port, family, std::move(cb));
}

Resolver::RequestId Resolver::resolve(std::shared_ptr<LoopHandle> loop, std::string host,
                                      uint16_t port, int family, Callback cb) {
  if (!cb || loop == nullptr) {  // no way to answer: a caller's bug, not a crash later
    logger().error("Resolver::resolve: {} ignored", !cb ? "empty callback" : "null loop handle");
    return 0;
  }
  if (host.find('\0') != std::string::npos) {  // getaddrinfo would read up to the NUL only
    loop->post(deliver(std::move(cb),
                       absl::InvalidArgumentError("Resolver: host name contains a NUL byte")));
    return 0;
  }
  // Numeric addresses skip the pool: no thread hop, no lookup.
  if (auto numeric = SocketAddress::parse(host, port); numeric.ok()) {
    if (family == AF_UNSPEC || family == numeric->family()) {
      loop->post(deliver(std::move(cb), std::vector<SocketAddress>{*numeric}));
      return 0;
    }
  }
  absl::Status failed = absl::CancelledError("resolver destroyed");
  {
    MutexLock lock(&mu_);
    if (!shutdown_) {
      failed = threads_.empty() ? start_threads() : absl::OkStatus();
      if (failed.ok()) {
        const RequestId id = next_id_++;
        queue_.emplace(id, Request{std::move(loop), std::move(host), port, family, std::move(cb)});
        return id;
      }
    }
  }
  loop->post(deliver(std::move(cb), std::move(failed)));
  return 0;
}

bool Resolver::cancel(RequestId id) {
  Request dropped;  // destroyed after the lock is released: its callback may call in again
  MutexLock lock(&mu_);
  if (auto it = queue_.find(id); it != queue_.end()) {
    dropped = std::move(it->second);
    queue_.erase(it);
    return true;
  }
  if (auto it = in_progress_.find(id); it != in_progress_.end()) {
    it->second = true;
    return true;
  }
  return false;
}

void Resolver::worker() {
  for (;;) {
    RequestId id;
    Request r;
    {
      MutexLock lock(&mu_);
      mu_.await([this]() ABSL_NO_THREAD_SAFETY_ANALYSIS { return has_work(); });
      if (queue_.empty()) return;  // shut down
      auto first = queue_.begin();
      id = first->first;
      r = std::move(first->second);
      queue_.erase(first);
      in_progress_.emplace(id, false);
    }
    // Nobody would receive the answer of a loop that is gone: skip the lookup.
    absl::StatusOr<std::vector<SocketAddress>> result =
        r.loop->alive() ? lookup_(r.host, r.port, r.family)
                        : absl::CancelledError("loop destroyed");
    bool cancelled;
    {
      MutexLock lock(&mu_);
      auto it = in_progress_.find(id);
      cancelled = it->second;
      in_progress_.erase(it);
    }
    // If the loop is gone, post() destroys the callback here, unrun.
    if (!cancelled) r.loop->post(deliver(std::move(r.cb), std::move(result)));
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
  errno = 0;
  int rc = ::getaddrinfo(host.c_str(), service.c_str(), &hints, &res);
  if (rc != 0) return internal::gai_error_to_status(rc, errno, host);
  std::unique_ptr<struct addrinfo, decltype(&::freeaddrinfo)> owner(res, &::freeaddrinfo);
  std::vector<SocketAddress> out;
  for (struct addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
    out.emplace_back(ai->ai_addr, ai->ai_addrlen);
  }
  if (out.empty()) return absl::NotFoundError(absl::StrCat("resolve '", host, "': no addresses"));
  return out;
}

}  // namespace ioloop::net
